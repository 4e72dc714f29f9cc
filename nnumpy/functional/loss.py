"""Losses: forward/backward pairs of the losses beyond softmax cross-entropy
and MSE (those two live in :mod:`~nnumpy.functional.dense`).

Each ``*_forward`` returns the loss (a 0-d array for ``reduction="mean"`` or
``"sum"``; per sample or per element for ``"none"``); its ``*_backward``
partner returns d(dloss * loss)/d(input) for the upstream gradient ``dloss``
of the loss (a number for "mean"/"sum", an array of the loss's shape for
"none").  The formulas and the reductions are PyTorch's (2.13), checked
against it in ``tests/test_losses.py``.  Nothing here checks its arguments
(the modules in :mod:`nnumpy.nn.loss` do, at the boundary) or mutates them;
the weights are arrays already in the input's dtype.

Shapes: ``N`` samples, ``C`` classes; element-wise losses take any shape.
"""
from __future__ import annotations

import numpy as np

from .dense import _reduce, class_target_weights, sigmoid

__all__ = [
    "check_class_targets", "check_probabilities",
    "nll_loss_forward", "nll_loss_backward",
    "binary_cross_entropy_forward", "binary_cross_entropy_backward",
    "binary_cross_entropy_with_logits_forward", "binary_cross_entropy_with_logits_backward",
    "multi_margin_loss_forward", "multi_margin_loss_backward",
    "l1_loss_forward", "l1_loss_backward",
    "huber_loss_forward", "huber_loss_backward",
    "smooth_l1_loss_forward", "smooth_l1_loss_backward",
]


def check_class_targets(target, num_classes, ignore_index=None, owner="loss"):
    """Raise ValueError unless every class index in ``target`` lies in
    [0, num_classes) or equals ``ignore_index`` (None: no index is ignored).
    The one owner of this message: the modules and the numba kernels use it."""
    t = np.asarray(target)
    if t.size == 0 or (t.min() >= 0 and t.max() < num_classes):     # the common case: two passes
        return
    bad = (t < 0) | (t >= num_classes)
    if ignore_index is not None:
        bad &= t != ignore_index
    if bad.any():
        wrong = t[bad]
        also = f" or equal ignore_index={ignore_index}" if ignore_index is not None else ""
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{owner}: target values must lie in [0, {num_classes}){also}; sample {first} has "
                         f"target {t.reshape(-1)[first]}" + (f" ({wrong.size} samples in all, with targets from "
                                                            f"{wrong.min()} to {wrong.max()})" if wrong.size > 1 else ""))


def check_probabilities(name, a, owner="loss", hint=""):
    """Raise ValueError unless every value of ``a`` lies in [0, 1] (NaN does
    not), naming the argument, how many values are outside and the first."""
    a = np.asarray(a)
    ok = (a >= 0) & (a <= 1)
    if not ok.all():
        i = np.unravel_index(int(np.argmin(ok)), a.shape) if a.ndim else ()
        raise ValueError(f"{owner}: {name} values must lie in [0, 1], got {int((~ok).sum())} outside it "
                         f"(the first, at index {tuple(int(k) for k in i)}, is {a[i].item()!r}){hint}")


def _scaled(grad, reduction, dloss, count):
    """grad * (dloss / count) for "mean", * dloss for "sum", * dloss (the
    loss's shape) for "none"; grad keeps its dtype."""
    if reduction == "mean":
        return grad * grad.dtype.type(float(dloss) / count if count else np.nan)
    if reduction == "sum":
        return grad * grad.dtype.type(dloss)
    return grad * np.asarray(dloss, dtype=grad.dtype)


# ---------------------------------------------------------------------------
# Negative log-likelihood on log-probabilities
# ---------------------------------------------------------------------------
def nll_loss_forward(logp, target, reduction="mean", weight=None, ignore_index=-100):
    """PyTorch's ``nll_loss``: the loss of log-probabilities (a LogSoftmax's output).

    logp: (N, C); target t: (N,) int in [0, C) or ``ignore_index``; weight:
    (C,) or None (all 1).
        loss_n = -w_{t_n} logp_{n, t_n}    (0 for an ignored sample)
    "mean" divides the sum by W = sum of w_{t_n} over the samples not ignored
    (NaN when W = 0).  Returns the loss (0-d, or (N,) for "none").
    """
    valid, t, w_t = class_target_weights(target, weight, ignore_index, logp.dtype)   # (N,) each
    per_sample = np.where(valid, w_t * -logp[np.arange(len(t)), t], 0)              # (N,)
    return _reduce(per_sample, reduction, w_t.sum())


def nll_loss_backward(target, num_classes, dtype, reduction="mean", dloss=1.0, weight=None, ignore_index=-100):
    """d loss_n / d logp_nj = -w_{t_n} 1[j = t_n]: one entry per row that is not
    ignored, scaled by dloss / W ("mean"), dloss ("sum") or dloss_n ("none").

    target: (N,); num_classes: C; dtype: logp's.  Returns dlogp: (N, C).
    """
    dtype = np.dtype(dtype)
    valid, t, w_t = class_target_weights(target, weight, ignore_index, dtype)   # (N,) each
    n = len(t)
    dlogp = np.zeros((n, num_classes), dtype=dtype)                               # (N, C)
    if reduction == "none":
        coeff = np.asarray(dloss, dtype=dtype)                                   # (N,)
    else:
        count = w_t.sum() if reduction == "mean" else 1
        coeff = dtype.type(float(dloss) / count if count > 0 else np.nan)       # 0 / 0: NaN, as the loss
    dlogp[np.arange(n), t] = np.where(valid, -w_t * coeff, 0)                    # (N,) entries
    return dlogp


# ---------------------------------------------------------------------------
# Binary cross-entropy, on probabilities and on logits
# ---------------------------------------------------------------------------
#: PyTorch clamps each log of BCELoss at -100 (so the loss is finite at p = 0 or 1) ...
BCE_LOG_FLOOR = -100.0
#: ... and divides its gradient by max(p (1 - p), 1e-12), 1e-12 being a float32
#: constant there (9.99999996e-13, also in float64): the same number here.
BCE_EPSILON = float(np.float32(1e-12))


def binary_cross_entropy_forward(p, y, reduction="mean", weight=None):
    """PyTorch's ``binary_cross_entropy`` on probabilities p in [0, 1].

    p, y: the same shape (any); weight: broadcastable to it, or None.
        loss = -w (y max(log p, -100) + (1 - y) max(log(1 - p), -100))
    elementwise (log(1 - p) as log1p(-p)); "mean" is over every element.
    """
    with np.errstate(divide="ignore"):                                   # log(0) = -inf, then clamped
        log_p = np.maximum(np.log(p), BCE_LOG_FLOOR)
        log_q = np.maximum(np.log1p(-p), BCE_LOG_FLOOR)
    loss = (y - 1) * log_q - y * log_p                                   # p's shape
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_backward(p, y, reduction="mean", dloss=1.0, weight=None):
    """dp = w (p - y) / max(p (1 - p), 1e-12), times dloss (/ p.size for "mean").

    That is d loss / dp = -w (y / p - (1 - y) / (1 - p)) where p (1 - p) >=
    1e-12; near p = 0 or 1 it is PyTorch's bounded form (the gradient of the
    clamped loss would be 0 there).  p, y, dp: p's shape.
    """
    one = p.dtype.type(1)
    dp = (p - y) / np.maximum((one - p) * p, p.dtype.type(BCE_EPSILON))
    if weight is not None:
        dp = dp * weight
    return _scaled(dp, reduction, dloss, p.size)


def binary_cross_entropy_with_logits_forward(x, y, reduction="mean", weight=None, pos_weight=None):
    """PyTorch's ``binary_cross_entropy_with_logits``: a sigmoid and BCE, fused.

    x (logits), y (targets): the same shape (any); weight: broadcastable to
    it; pos_weight: the weight of the positive term, broadcastable to it
    (usually (C,), one per class); None means 1.
        loss = w ((1 - y) x - l log sigmoid(x)),   l = 1 + (pos_weight - 1) y
    which is -w (pos_weight y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))),
    since log(1 - sigmoid(x)) = log sigmoid(x) - x.  log sigmoid(x) =
    min(x, 0) - log1p(exp(-|x|)): exp never overflows, and the loss stays
    exact for saturated logits (x = +-1e4 gives 0 or |x|).
    """
    log_sig = np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))          # log sigmoid(x), x's shape
    if pos_weight is not None:
        log_sig = log_sig * ((pos_weight - 1) * y + 1)
    loss = (1 - y) * x - log_sig
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits_backward(x, y, reduction="mean", dloss=1.0, weight=None, pos_weight=None):
    """dx = w (sigmoid(x) - y), or with pos_weight pw:
        dx = w ((pw y + 1 - y) sigmoid(x) - pw y)
    (d/dx of (1 - y) x - l log sigmoid(x) is (1 - y) - l (1 - sigmoid(x))),
    times dloss (/ x.size for "mean").  x, y, dx: x's shape.
    """
    s = sigmoid(x)                                                       # x's shape
    if pos_weight is None:
        dx = s - y
    else:
        t = pos_weight * y
        dx = (t + 1 - y) * s - t
    if weight is not None:
        dx = dx * weight
    return _scaled(dx, reduction, dloss, x.size)


# ---------------------------------------------------------------------------
# Multi-class margin (SVM) loss
# ---------------------------------------------------------------------------
def _margins(x, target, margin):
    """h_nj = margin - x_{n,t_n} + x_nj (N, C), and the rows' indices (N,)."""
    rows = np.arange(x.shape[0])
    return x.dtype.type(margin) - x[rows, target][:, None] + x, rows


def multi_margin_loss_forward(x, target, reduction="mean", p=1, margin=1.0, weight=None):
    """PyTorch's ``multi_margin_loss``, the multiclass SVM (hinge) loss of CS231n.

    x: scores (N, C); target t: (N,) int in [0, C); p: 1 or 2; weight: (C,) or None.
        loss_n = w_{t_n} / C * sum_{j != t_n} max(0, h_nj)^p,   h_nj = margin - x_{n,t_n} + x_nj
    A term counts where h_nj > 0 (so, as in PyTorch, a NaN h_nj counts as 0).
    "mean" divides by N (the weights do not enter the divisor; NaN for N = 0).
    """
    h, rows = _margins(x, target, margin)                               # (N, C)
    active = h > 0
    active[rows, target] = False                                        # j = t_n is not a term
    terms = np.where(active, h if p == 1 else h * h, 0)                 # (N, C)
    per_sample = terms.sum(axis=1) / x.dtype.type(x.shape[1])           # (N,)
    if weight is not None:
        per_sample = per_sample * weight[target]
    return _reduce(per_sample, reduction)


def multi_margin_loss_backward(x, target, reduction="mean", dloss=1.0, p=1, margin=1.0, weight=None):
    """For each active term (h_nj > 0, j != t_n), with g = w_{t_n} / C:
        dx_nj = g (p = 1) or 2 g h_nj (p = 2),   dx_{n,t_n} = -sum_j dx_nj
    (h_nj rises with x_nj and falls with x_{n,t_n}), times dloss (/ N for
    "mean"; dloss_n per row for "none").  x, dx: (N, C); target: (N,).
    """
    h, rows = _margins(x, target, margin)                               # (N, C)
    active = h > 0
    active[rows, target] = False
    g = np.where(active, x.dtype.type(1) if p == 1 else 2 * h, 0) / x.dtype.type(x.shape[1])   # (N, C)
    if weight is not None:
        g = g * weight[target][:, None]
    g[rows, target] = -g.sum(axis=1)
    if reduction == "none":
        d = np.asarray(dloss, dtype=x.dtype)                             # (N,) or a number
        return g * (d[:, None] if d.ndim else d)                         # (N, C) * (N, 1)
    return _scaled(g, reduction, dloss, x.shape[0])


# ---------------------------------------------------------------------------
# Element-wise regression losses: L1, Huber, smooth L1 (d = pred - target)
# ---------------------------------------------------------------------------
def _sign(d):
    """sign(d), with sign(0) = 0 and, as PyTorch's, sign(NaN) = 0."""
    return (d > 0).astype(d.dtype) - (d < 0).astype(d.dtype)


def l1_loss_forward(pred, target, reduction="mean"):
    """loss = |pred - target| elementwise ("mean" over every element).
    pred, target: the same shape.  Returns the loss and d = pred - target."""
    d = pred - target
    return _reduce(np.abs(d), reduction), d


def l1_loss_backward(d, reduction="mean", dloss=1.0):
    """d pred = sign(d) (0 where d = 0, PyTorch's subgradient), times dloss
    (/ d.size for "mean").  d, d pred: pred's shape."""
    return _scaled(_sign(d), reduction, dloss, d.size)


def huber_loss_forward(pred, target, reduction="mean", delta=1.0):
    """loss = d^2 / 2 where |d| < delta, else delta (|d| - delta / 2), d = pred - target
    (quadratic near 0, linear beyond delta; delta > 0).  Returns the loss and d."""
    d = pred - target
    a = np.abs(d)
    delta = d.dtype.type(delta)
    loss = np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))
    return _reduce(loss, reduction), d


def huber_loss_backward(d, reduction="mean", dloss=1.0, delta=1.0):
    """d pred = clip(d, -delta, delta) (d inside, +-delta outside; NaN stays
    NaN), times dloss (/ d.size for "mean").  d, d pred: pred's shape."""
    delta = d.dtype.type(delta)
    g = np.where(d < -delta, -delta, np.where(d > delta, delta, d))
    return _scaled(g, reduction, dloss, d.size)


def smooth_l1_loss_forward(pred, target, reduction="mean", beta=1.0):
    """loss = d^2 / (2 beta) where |d| < beta, else |d| - beta / 2, d = pred - target
    (the Huber loss divided by beta; beta = 0 gives the L1 loss).  Returns
    the loss and d."""
    d = pred - target
    a = np.abs(d)
    if beta == 0:
        return _reduce(a, reduction), d
    beta = d.dtype.type(beta)
    loss = np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)
    return _reduce(loss, reduction), d


def smooth_l1_loss_backward(d, reduction="mean", dloss=1.0, beta=1.0):
    """d pred = d / beta where |d| <= beta, else sign(d) (beta = 0: sign(d),
    0 at d = 0), times dloss (/ d.size for "mean").  d, d pred: pred's shape."""
    if beta == 0:
        return l1_loss_backward(d, reduction, dloss)
    beta = d.dtype.type(beta)
    one = d.dtype.type(1)
    g = np.where(d < -beta, -one, np.where(d > beta, one, d / beta))
    return _scaled(g, reduction, dloss, d.size)
