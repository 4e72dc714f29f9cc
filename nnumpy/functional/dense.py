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
    "class_target_weights", "soft_target_weights", "cross_entropy_forward", "cross_entropy_backward",
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


def _reduce(per_sample, reduction, count=None):
    """"mean" (the sum over ``count`` terms, default every element; NaN when
    count is 0, without a warning, as PyTorch's mean of nothing), "sum", or
    the array itself ("none")."""
    if reduction == "mean":
        count = per_sample.size if count is None else count
        total = per_sample.sum()
        return total / count if count > 0 else total.dtype.type(np.nan)
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def class_target_weights(target, weight, ignore_index, dtype):
    """For class-index targets t (N,): which samples count and their weights.

    valid_n = (t_n != ignore_index)                     (N,) bool
    t_safe_n = t_n where valid, else 0                  (N,) int, safe to index with
    w_n = weight[t_n] (1 without weight) where valid, else 0      (N,) of ``dtype``
    The "mean" of a class-index loss divides by W = sum_n w_n, the total weight
    of the targets that are not ignored (PyTorch's rule).
    """
    valid = target != ignore_index                                    # (N,)
    t_safe = np.where(valid, target, 0)                               # (N,)
    if weight is None:
        return valid, t_safe, valid.astype(dtype)
    return valid, t_safe, np.where(valid, weight[t_safe], 0).astype(dtype, copy=False)


def soft_target_weights(target, weight, label_smoothing):
    """The weighted target distribution of class-probability targets y (N, C):

    q_nc = w_c ((1 - eps) y_nc + eps / C)       (N, C), with w_c = 1 without weight
    (eps = label_smoothing mixes y with the uniform distribution)."""
    eps = label_smoothing
    q = target * (1 - eps) + eps / target.shape[1] if eps > 0 else target
    return q if weight is None else q * weight                          # (N, C) * (C,)


def cross_entropy_forward(logits, target, reduction="mean", weight=None, ignore_index=-100,
                          label_smoothing=0.0):
    """Softmax followed by negative log-likelihood, fused on the logits
    (PyTorch's ``cross_entropy``, every option).

    logits z: (N, C) floats; logp = log_softmax(z) (N, C).  target: either
    class indices t (N,) int in [0, C) or equal to ``ignore_index``, or class
    probabilities y (N, C) float (any real numbers, used as they are).
    weight: (C,) class weights w_c >= 0 in the logits' dtype, or None (all 1).
    eps = label_smoothing in [0, 1].

    Class indices, for a sample that is not ignored (an ignored one has loss 0):
        loss_n = (1 - eps) w_{t_n} (-logp_{n,t_n}) + (eps / C) sum_c w_c (-logp_nc)
    and "mean" = sum_n loss_n / W, W = sum of w_{t_n} over the samples not
    ignored (NaN when W = 0: every target ignored, or of weight 0).
    Class probabilities (ignore_index does not apply):
        loss_n = -sum_c q_nc logp_nc,   q_nc = w_c ((1 - eps) y_nc + eps / C)
    and "mean" = sum_n loss_n / N (NaN for N = 0).
    Both are loss_n = -sum_c q_nc logp_nc for a target distribution q (for class
    indices, q_nc = (1 - eps) w_t 1[c = t_n] + (eps / C) w_c, zero when ignored).
    Returns the loss (0-d for "mean"/"sum", (N,) for "none") and the softmax
    probabilities p = exp(logp) (N, C), which backward needs with the target.
    """
    logp = log_softmax(logits)                                   # (N, C)
    n, c = logits.shape
    eps = label_smoothing
    if target.ndim == 2:                                         # class probabilities
        per_sample = -(logp * soft_target_weights(target, weight, eps)).sum(axis=1)   # (N,)
        return _reduce(per_sample, reduction, n), np.exp(logp)
    valid, t, w_t = class_target_weights(target, weight, ignore_index, logits.dtype)
    with np.errstate(invalid="ignore"):                           # 0 * inf of an ignored row: masked out
        per_sample = np.where(valid, w_t * -logp[np.arange(n), t], 0)          # (N,)
    if eps > 0:
        smooth = -(logp.sum(axis=1) if weight is None else logp @ weight)     # (N,): sum_c w_c (-logp_nc)
        per_sample = (1 - eps) * per_sample + (eps / c) * np.where(valid, smooth, 0)
    return _reduce(per_sample.astype(logits.dtype, copy=False), reduction, w_t.sum()), np.exp(logp)


def cross_entropy_backward(probs, target, reduction="mean", dloss=1.0, weight=None, ignore_index=-100,
                           label_smoothing=0.0):
    """Gradient of :func:`cross_entropy_forward` with respect to the logits.

    With loss_n = -sum_c q_nc logp_nc and d logp_nc / d z_nj = 1[c = j] - p_nj:
        d loss_n / d z_nj = S_n p_nj - q_nj,     S_n = sum_c q_nc      (N, C)
    (S_n = 1 and q = onehot(t) without weight and smoothing: dz = p - onehot(t)).
    Then each row is scaled by the upstream gradient: r_n = dloss / W ("mean",
    class indices; NaN when W = 0), dloss / N ("mean", class probabilities),
    dloss ("sum"), dloss_n ("none", dloss of shape (N,)); an ignored sample's
    row is r_n = 0 (its gradient is 0, or NaN where its p is NaN, as PyTorch's):
        dz = (S[:, None] * p - q) * r[:, None]          (N, C)
    probs: (N, C) softmax of the logits; target, weight, ignore_index,
    label_smoothing: as given to the forward.  Returns dz: (N, C).
    """
    n, c = probs.shape
    eps = label_smoothing
    if target.ndim == 2:                                          # class probabilities
        q = soft_target_weights(target, weight, eps)              # (N, C)
        count, valid = n, np.ones(n, dtype=bool)
    else:
        valid, t, w_t = class_target_weights(target, weight, ignore_index, probs.dtype)
        q = np.zeros_like(probs)                                  # (N, C)
        if eps > 0:                                               # (C,) -> every row (r_n = 0 drops ignored ones)
            q += (eps / c) * (1 if weight is None else weight)
        q[np.arange(n), t] += (1 - eps) * w_t
        count = w_t.sum()
    if reduction == "mean":
        scale = float(dloss) / count if count > 0 else np.nan    # 0 / 0: NaN, as the loss
    elif reduction == "sum":
        scale = float(dloss)
    else:
        scale = np.asarray(dloss, dtype=probs.dtype)              # (N,)
    r = np.where(valid, scale, 0).astype(probs.dtype, copy=False)  # (N,)
    S = q.sum(axis=1)                                              # (N,)
    return (S[:, None] * probs - q) * r[:, None]                   # (N, C)


# ---------------------------------------------------------------------------
# Mean squared error
# ---------------------------------------------------------------------------
def mse_forward(pred, target, reduction="mean"):
    """``loss = mean((pred - target)^2)`` over every element (PyTorch's
    convention; NaN for no elements), or the sum, or element-wise ("none").
    Returns loss, diff."""
    diff = pred - target
    return _reduce(diff * diff, reduction), diff


def mse_backward(diff, reduction="mean", dloss=1.0):
    """d/d pred of sum (pred - target)^2 is 2 (pred - target); "mean" divides
    by the number of elements.  diff: pred's shape -> d pred, same shape."""
    if reduction == "mean":
        return diff * (2.0 * float(dloss) / diff.size if diff.size else np.nan)
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
