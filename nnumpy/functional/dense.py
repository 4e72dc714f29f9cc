"""Pure forward/backward pairs: the mathematics of every layer, with no state.

Each ``*_forward`` function computes a layer's output and returns what its
``*_backward`` partner needs; each ``*_backward`` function takes the upstream
gradient ``dy = dL/dy`` (same shape as the forward output) and returns the
gradients with respect to the inputs.  Nothing here mutates its arguments.

Shapes use ``N`` for the batch size, ``D_in``/``D_out`` for feature sizes and
``C`` for the number of classes.  The modules in :mod:`nnumpy.nn` wrap these
functions, keep the cache between forward and backward, and own the
parameters.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "linear_forward", "linear_backward",
    "relu_forward", "relu_backward",
    "leaky_relu_forward", "leaky_relu_backward",
    "sigmoid", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
    "dropout_mask", "dropout_forward", "dropout_backward",
    "log_softmax", "softmax",
    "cross_entropy_forward", "cross_entropy_backward",
    "mse_forward", "mse_backward",
    "one_hot",
]


# ---------------------------------------------------------------------------
# Linear: y = x W^T + b
# ---------------------------------------------------------------------------
def linear_forward(x, W, b=None):
    """Affine map ``y = x @ W.T + b``.

    x: (N, D_in); W: (D_out, D_in), PyTorch's layout; b: (D_out,) or None.
    Returns y: (N, D_out).  Backward needs x (and W, which the layer owns).
    """
    y = x @ W.T                      # (N, D_in) @ (D_in, D_out) -> (N, D_out)
    if b is not None:
        y += b                       # (N, D_out) + (D_out,) broadcast over rows
    return y


def linear_backward(dy, x, W, need_bias=True, need_dx=True, need_weight=True):
    """Gradients of ``y = x @ W.T + b``.

    With y_nj = sum_i x_ni W_ji + b_j:
        dL/dx_ni = sum_j dy_nj W_ji   ->  dx = dy @ W
        dL/dW_ji = sum_n dy_nj x_ni   ->  dW = dy.T @ x
        dL/db_j  = sum_n dy_nj        ->  db = dy.sum(axis=0)

    dy: (N, D_out), x: (N, D_in), W: (D_out, D_in).
    Returns dx (N, D_in) or None (without need_dx: the input needs no
    gradient), dW (D_out, D_in) or None (without need_weight: a frozen
    weight), db (D_out,) or None.
    """
    dx = dy @ W if need_dx else None  # (N, D_out) @ (D_out, D_in) -> (N, D_in)
    dW = dy.T @ x if need_weight else None   # (D_out, N) @ (N, D_in) -> (D_out, D_in)
    db = dy.sum(axis=0) if need_bias else None  # (N, D_out) -> (D_out,)
    return dx, dW, db


# ---------------------------------------------------------------------------
# Element-wise activations.  For y = f(x) applied element by element the
# Jacobian is diagonal, so dx = dy * f'(x) with every array of x's shape.
# ---------------------------------------------------------------------------
def masked(a, mask):
    """``a`` where ``mask`` is true, else 0: ``np.where(mask, a, 0)``, computed as
    the product ``a * mask`` (exact: a * 1 = a, a * 0 = 0).  The product is the
    fast form: with a mask that changes from element to element, as an
    activation's is, np.where branches on every element and measured ~20x
    slower than the multiply.  The two differ only where ``a`` is inf or NaN
    and the mask false (inf * 0 and NaN * 0 are NaN, where must give 0), so an
    array whose product is not all finite is redone with np.where."""
    out = np.asarray(a * mask)           # (asarray: a 0-d input gives a 0-d array, not a scalar)
    if not np.isfinite(out).all():
        out = np.asarray(np.where(mask, a, a.dtype.type(0)))
    return out


def relu_forward(x):
    """``y = max(x, 0)``, with NaN kept as NaN (as in PyTorch: a NaN input must
    not turn into a harmless-looking 0; np.maximum propagates NaN).  Returns y
    and the mask ``not x <= 0`` (bool, x's shape: true where x > 0 or x is NaN),
    one byte per element: all that backward needs."""
    mask = np.logical_not(x <= 0)    # x <= 0 is false for NaN, so NaN passes through
    return np.asarray(np.maximum(x, x.dtype.type(0))), np.asarray(mask)


def relu_backward(dy, mask):
    """``f'(x) = 1[x > 0]``, so ``dx = dy * mask`` (the kink at 0 gets 0; a
    NaN input passes dy on, like PyTorch's ReLU backward; where the mask is
    false dx is 0 even for an inf or NaN dy, as PyTorch's)."""
    return masked(dy, mask)


def leaky_relu_forward(x, negative_slope):
    """``y = x`` where x > 0, else ``negative_slope * x``.  Returns y, mask."""
    mask = np.asarray(x > 0)
    return np.asarray(masked(x, mask) + masked(x, ~mask) * negative_slope), mask


def leaky_relu_backward(dy, mask, negative_slope):
    """``f'(x) = 1`` where x > 0, else ``negative_slope``: ``dx = dy * f'(x)``."""
    return np.asarray(masked(dy, mask) + masked(dy, ~mask) * negative_slope)


def sigmoid(x):
    """``y = 1 / (1 + exp(-x))``, computed without overflow for any x.  x, y: any shape, same.

    With e = exp(-|x|) in (0, 1]: y = 1/(1+e) for x >= 0 and e/(1+e) for x < 0,
    so exp never sees a positive argument and nothing cancels: every element
    whose result is a normal number is within a few ulps of the exact sigmoid
    (measured over [-80, 80] in float32 and [-700, 700] in float64: relative
    error below 3e-7 and 5e-16).  The tempting 1/2 + tanh(x/2)/2 cancels for
    x < 0 (in float32 it returns 0 for x <= -17).
    """
    e = np.exp(-np.abs(x))
    one = x.dtype.type(1)
    return np.where(x >= 0, one, e) / (one + e)


def sigmoid_backward(dy, y):
    """``f'(x) = y (1 - y)``, written with the saved output y; dy, y, dx: x's shape.

    Two roundings (1 - y is exact for y >= 1/2), so dx is as accurate as the
    stored y allows, which near saturation is not much: where y rounds
    towards 1 (x >> 0, f'(x) ~ exp(-x)), 1 - y is mostly y's rounding error
    (float32: y = 1, so f' = 0, from x = 16.6 on).
    """
    return dy * y * (y.dtype.type(1) - y)


def tanh_forward(x):
    """``y = tanh(x)`` (NumPy's tanh: relative error below 2e-7 in float32 and
    3e-16 in float64, measured); backward keeps y.  x, y: any shape, same."""
    return np.tanh(x)


def tanh_backward(dy, y):
    """``f'(x) = 1 - tanh(x)^2 = (1 - y)(1 + y)``; dy, y, dx: x's shape.

    In the factored form one factor is exact (1 - y for y >= 1/2, 1 + y for
    y <= -1/2) and the other is rounded once, whereas 1 - y*y would add the
    rounding of y*y (up to 3e-8 absolute in float32), which dominates 1 - y^2
    near saturation.  What remains there is the rounding of the stored y
    itself (float32: y = +-1, so f' = 0, from |x| = 10 on), which no function
    of y can undo.
    """
    one = y.dtype.type(1)
    return dy * ((one - y) * (one + y))


# ---------------------------------------------------------------------------
# Dropout (inverted): y = x * m / (1 - p),  m_i ~ Bernoulli(1 - p)
# ---------------------------------------------------------------------------
def dropout_mask(shape, p, rng, dtype):
    """The scaled keep-mask ``m / (1 - p)`` of the given shape and dtype.

    Each element is kept with probability 1 - p.  Scaling the survivors by
    1 / (1 - p) keeps E[y] = x, so evaluation needs no rescaling.  p = 1
    drops everything (mask of zeros), as in PyTorch.
    """
    if p >= 1.0:
        return np.zeros(shape, dtype=dtype)
    keep = rng.random(shape) >= p
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))


def dropout_forward(x, mask):
    """``y = x * mask``, mask from :func:`dropout_mask` (x's shape)."""
    return x * mask


def dropout_backward(dy, mask):
    """y = x * mask is linear in x with a diagonal Jacobian: ``dx = dy * mask``."""
    return dy * mask


# ---------------------------------------------------------------------------
# Softmax cross-entropy on logits
# ---------------------------------------------------------------------------
def log_softmax(z):
    """Row-wise ``log softmax(z) = z - logsumexp(z)``, stable for any logits.

    logsumexp(z) = m + log(sum_j exp(z_j - m)) with m = max_j z_j, so every
    exponent is <= 0 and the sum is >= 1: no overflow, no log(0).
    z: (N, C) -> (N, C).
    """
    shifted = z - z.max(axis=1, keepdims=True)                  # (N, C)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(z):
    """Row-wise softmax, ``exp(log_softmax(z))``.  z: (N, C) -> (N, C)."""
    return np.exp(log_softmax(z))


def _reduce(per_sample, reduction):
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def cross_entropy_forward(logits, target, reduction="mean"):
    """Softmax followed by negative log-likelihood, fused on the logits.

    loss_n = -log softmax(z_n)[t_n] = logsumexp(z_n) - z_n[t_n]
    logits: (N, C) floats; target: (N,) integer class indices in [0, C).
    Returns the loss (0-d array for "mean"/"sum", (N,) for "none") and the
    softmax probabilities p (N, C), which are all backward needs.
    """
    logp = log_softmax(logits)                                   # (N, C)
    per_sample = -logp[np.arange(logits.shape[0]), target]      # (N,)
    return _reduce(per_sample, reduction), np.exp(logp)


def cross_entropy_backward(probs, target, reduction="mean", dloss=1.0):
    """Gradient of softmax cross-entropy with respect to the logits.

    d loss_n / d z_nj = p_nj - 1[j == t_n]   (softmax Jacobian times -1/p_t)
    so dz = (p - onehot(t)) scaled by the upstream gradient: dloss / N for
    "mean", dloss for "sum", dloss[:, None] for "none" (dloss of shape (N,)).
    probs: (N, C); target: (N,).  Returns dz: (N, C).
    """
    n = probs.shape[0]
    dz = probs.copy()                                            # (N, C)
    dz[np.arange(n), target] -= 1
    if reduction == "mean":
        dz *= float(dloss) / n
    elif reduction == "sum":
        dz *= float(dloss)
    else:
        d = np.asarray(dloss, dtype=dz.dtype)                     # (N,) or a scalar
        dz *= d[:, None] if d.ndim else d                          # (N, C) * (N, 1)
    return dz


# ---------------------------------------------------------------------------
# Mean squared error
# ---------------------------------------------------------------------------
def mse_forward(pred, target, reduction="mean"):
    """``loss = mean((pred - target)^2)`` over every element (PyTorch's
    convention), or the sum, or element-wise ("none").  Returns loss, diff."""
    diff = pred - target
    sq = diff * diff
    if reduction == "mean":
        return sq.mean(), diff
    if reduction == "sum":
        return sq.sum(), diff
    return sq, diff


def mse_backward(diff, reduction="mean", dloss=1.0):
    """d/d pred of sum (pred - target)^2 is 2 (pred - target); "mean" divides
    by the number of elements.  diff: pred's shape -> d pred, same shape."""
    if reduction == "mean":
        return diff * (2.0 * float(dloss) / diff.size)
    if reduction == "sum":
        return diff * (2.0 * float(dloss))
    return diff * 2.0 * np.asarray(dloss, dtype=diff.dtype)


def one_hot(labels, num_classes, dtype=np.float32):
    """Integer labels (N,) -> one-hot rows (N, num_classes) of ``dtype``.

    The targets of an MSE classifier, as in LeCun et al.'s networks.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"one_hot expects a 1-d array of integer labels, got shape "
                         f"{labels.shape} and dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes}), got range "
                         f"[{labels.min()}, {labels.max()}]")
    out = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out
