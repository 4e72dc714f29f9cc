"""Fused loss kernels, JIT-compiled by Numba: each loss and its gradient in
one call.

Every public function ``f(input, target, reduction, ...)`` returns
``(loss, d loss / d input)`` for an upstream gradient dloss = 1, with the
meaning of its namesakes in :mod:`nnumpy.functional` (``f_forward``, then
``f_backward`` with dloss = 1; :func:`cross_entropy` is also
:func:`nnumpy.backend.numpy_ops.cross_entropy`).  The loss module then
scales the gradient by the dloss its backward receives.  Arguments are
checked by the modules (:mod:`nnumpy.nn.loss`); the wrappers here only make
arrays contiguous, and the kernels refuse out-of-range class indices
themselves (numba does not check bounds) with the modules' message.

How the work is split.  Numba compiles ``exp``/``log`` element by element,
about 5x slower than NumPy's SIMD loops (no SVML here), and a loop that also
sums its results neither vectorises nor keeps its selects branch-free.  So
NumPy keeps what it does best: ``exp``/``log``/``log1p`` of whole arrays and
the final reductions (SIMD); each kernel fuses everything in between into
one pass: the row maxima and sums of the softmax (in four running values;
NumPy's reductions along short rows cost far more), the target gathers and
checks, weights, label smoothing, clamps and the gradient.  Measured on float32
(``benchmarks/kernels.py``, which times each call here against the numpy
backend's checks + forward + backward): from about 1.1x (MSE) to 7x faster
at (64, 10), and from 1.3x (MSE) to 50x (Huber and smooth L1: NumPy's
``where`` on random masks is slow) at (1024, 1000).

Reductions: a kernel writes the per-sample (or per-element) losses, and the
sum or mean is NumPy's over that array, as in the reference.  Arithmetic on
elements is in the input's dtype where the reference's is, so the kernels
agree with it to rounding (``tests/test_losses.py`` holds them to 1e-12 in
float64 and 1e-5 in float32, relative to each tensor's largest entry).
No ``fastmath``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..functional.dense import _reduce
from ..functional.loss import BCE_EPSILON, BCE_LOG_FLOOR, check_class_targets, check_probabilities

__all__ = ["cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "multi_margin_loss", "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "warm_up"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_L1, _HUBER, _SMOOTH_L1, _MSE = 0, 1, 2, 3


def _c(a, dtype=None):
    """``a`` as a C-contiguous array (of ``dtype``), copied only when needed."""
    return np.ascontiguousarray(a, dtype=dtype)


def _float(x):
    if not isinstance(x, np.ndarray) or x.dtype not in _FLOATS:
        raise TypeError(f"numba loss kernels need a float32 or float64 array, got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    return _c(x)


def _class_weight(weight, c, dtype):
    """(C,) weights in the input's dtype (all 1 without weight)."""
    return np.ones(c, dtype) if weight is None else _c(weight, dtype)


def _indices(target):
    return _c(target, np.int64)


def _mean_scale(reduction, count):
    """What "mean" divides the gradient by: 1 / count (NaN for 0 / 0), else 1."""
    if reduction != "mean":
        return 1.0
    return 1.0 / count if count > 0 else math.nan


def _finish(per, reduction, count, dtype):
    """The reduction of the per-sample (or per-element) losses ``per``."""
    if reduction == "none":
        return per.astype(dtype, copy=False)
    return _reduce(per, reduction, count)


# ---------------------------------------------------------------------------
# Class-index targets
# ---------------------------------------------------------------------------
@njit(cache=True)
def _class_targets(t, c, ignore_index, w):
    """First sample whose class index is outside [0, c) and not ignore_index
    (-1 if none), and W = sum of w[t_n] over the samples not ignored (float64)."""
    total = 0.0
    for i in range(t.shape[0]):
        ti = t[i]
        if ti == ignore_index:
            continue
        if ti < 0 or ti >= c:
            return i, 0.0
        total += w[ti]
    return -1, total


def _checked_targets(target, c, ignore_index, w, owner):
    """int64 targets and their total weight W; raises for an index out of range."""
    t = _indices(target)
    bad, total = _class_targets(t, c, ignore_index, w)
    if bad >= 0:
        check_class_targets(target, c, ignore_index, owner)      # raises, with the message
    return t, total


# ---------------------------------------------------------------------------
# Softmax cross-entropy: kernel 1 (row max, shift, target sums), exp of the
# whole array (NumPy), kernel 2 (row sums, loss, gradient).  The row maxima
# and sums are the kernels' own, in four independent running values: NumPy's
# reductions along short rows cost far more than the work (1024 x 10: 40 us
# for z.max(axis=1), against 2 us here).
# ---------------------------------------------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def _row_max(z, i):
    """max_j z[i, j] (NaN entries make the row's softmax NaN anyway)."""
    c = z.shape[1]
    m0 = m1 = m2 = m3 = z[i, 0]
    j = 0
    while j + 4 <= c:
        m0 = max(m0, z[i, j])
        m1 = max(m1, z[i, j + 1])
        m2 = max(m2, z[i, j + 2])
        m3 = max(m3, z[i, j + 3])
        j += 4
    while j < c:
        m0 = max(m0, z[i, j])
        j += 1
    return max(max(m0, m1), max(m2, m3))


@njit(cache=True, error_model="numpy", inline="always")
def _row_sum(e, i):
    """sum_j e[i, j], in float64."""
    c = e.shape[1]
    s0 = s1 = s2 = s3 = 0.0
    j = 0
    while j + 4 <= c:
        s0 += e[i, j]
        s1 += e[i, j + 1]
        s2 += e[i, j + 2]
        s3 += e[i, j + 3]
        j += 4
    while j < c:
        s0 += e[i, j]
        j += 1
    return (s0 + s1) + (s2 + s3)


@njit(cache=True, error_model="numpy")
def _ce_shift_hard(z, dz, t, ignore_index, w, smoothing, picked, wsh):
    """dz = z - max_j z[:, j] (N, C); picked_n = dz[n, t_n] (0 if ignored);
    wsh_n = sum_c w_c dz_nc (only when smoothing)."""
    n, c = z.shape
    for i in range(n):
        mi = _row_max(z, i)
        for j in range(c):
            dz[i, j] = z[i, j] - mi
        ti = t[i]
        picked[i] = dz[i, ti] if ti != ignore_index else 0.0
        if smoothing:
            acc = 0.0
            for j in range(c):
                acc += w[j] * dz[i, j]
            wsh[i] = acc


@njit(cache=True, error_model="numpy")
def _ce_finish_hard(e, t, ignore_index, w, eps, scale, picked, wsh, per):
    """With e = exp(z - m) (N, C), in place, and s_n its row sums:
    log p_nc = dz_nc - log s_n, so for a sample that is not ignored
        loss_n = (1 - eps) w_t (log s_n - picked_n) + eps / C (log s_n sum_c w_c - wsh_n)
        dz_nc = scale (S_n e_nc / s_n - q_nc),  S_n = (1 - eps) w_t + eps / C sum_c w_c,
        q_nc = eps / C w_c + (1 - eps) w_t 1[c = t_n]
    and an ignored sample has loss 0 and gradient 0 * p (NaN where p is)."""
    n, c = e.shape
    wsum = 0.0
    for j in range(c):
        wsum += w[j]
    g = eps / c
    for i in range(n):
        ti = t[i]
        s = _row_sum(e, i)
        log_s = math.log(s)
        if ti == ignore_index:
            per[i] = 0.0
            f = 0.0 / s
            for j in range(c):
                e[i, j] = e[i, j] * f
            continue
        wt = w[ti]
        if eps > 0.0:
            per[i] = (1.0 - eps) * wt * (log_s - picked[i]) + g * (log_s * wsum - wsh[i])
            f = scale * ((1.0 - eps) * wt + g * wsum) / s
            for j in range(c):
                e[i, j] = e[i, j] * f - scale * g * w[j]
        else:
            per[i] = wt * (log_s - picked[i])
            f = scale * wt / s
            for j in range(c):
                e[i, j] = e[i, j] * f
        e[i, ti] -= scale * (1.0 - eps) * wt


@njit(cache=True, error_model="numpy")
def _ce_shift_soft(z, dz, y, w, eps, qsh, qsum):
    """dz = z - max_j z[:, j]; with q_nc = w_c ((1 - eps) y_nc + eps / C):
    qsh_n = sum_c q_nc dz_nc and qsum_n = sum_c q_nc (N,)."""
    n, c = z.shape
    g = eps / c
    for i in range(n):
        mi = _row_max(z, i)
        for j in range(c):
            dz[i, j] = z[i, j] - mi
        a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = 0.0  # four running sums each: no wait on every addition
        one_eps = y.dtype.type(1.0 - eps)
        gc = y.dtype.type(g)
        j = 0
        while j + 4 <= c:
            q0 = w[j] * (y[i, j] * one_eps + gc)
            q1 = w[j + 1] * (y[i, j + 1] * one_eps + gc)
            q2 = w[j + 2] * (y[i, j + 2] * one_eps + gc)
            q3 = w[j + 3] * (y[i, j + 3] * one_eps + gc)
            a0 += q0 * dz[i, j]
            a1 += q1 * dz[i, j + 1]
            a2 += q2 * dz[i, j + 2]
            a3 += q3 * dz[i, j + 3]
            b0 += q0
            b1 += q1
            b2 += q2
            b3 += q3
            j += 4
        while j < c:
            q0 = w[j] * (y[i, j] * one_eps + gc)
            a0 += q0 * dz[i, j]
            b0 += q0
            j += 1
        qsh[i] = (a0 + a1) + (a2 + a3)
        qsum[i] = (b0 + b1) + (b2 + b3)


@njit(cache=True, error_model="numpy")
def _ce_finish_soft(e, y, w, eps, scale, qsh, qsum, per):
    """loss_n = log s_n qsum_n - qsh_n (= -sum_c q_nc log p_nc) and
    dz_nc = scale (qsum_n e_nc / s_n - q_nc), e and s as in the hard case."""
    n, c = e.shape
    g = eps / c
    for i in range(n):
        s = _row_sum(e, i)
        per[i] = math.log(s) * qsum[i] - qsh[i]
        f = scale * qsum[i] / s
        for j in range(c):
            e[i, j] = e[i, j] * f - scale * w[j] * (y[i, j] * (1.0 - eps) + g)


def cross_entropy(logits, target, reduction="mean", weight=None, ignore_index=-100, label_smoothing=0.0):
    """Loss and d(loss)/d(logits) (dloss = 1) of softmax cross-entropy with
    class indices (N,) or class probabilities (N, C) as target; see
    :func:`nnumpy.functional.cross_entropy_forward` for the formulas."""
    z = _float(logits)
    n, c = z.shape
    if c == 0:
        raise ValueError("cross_entropy: logits of shape (N, 0) have no classes")
    dt = z.dtype
    w = _class_weight(weight, c, dt)
    eps = float(label_smoothing)
    dz = np.empty_like(z)
    per = np.empty(n)
    if target.ndim == 2:                                         # class probabilities
        y = _c(target, dt)
        qsh, qsum = np.empty(n), np.empty(n)
        _ce_shift_soft(z, dz, y, w, eps, qsh, qsum)
        np.exp(dz, out=dz)
        count = n
        _ce_finish_soft(dz, y, w, eps, _mean_scale(reduction, count), qsh, qsum, per)
    else:
        t, count = _checked_targets(target, c, ignore_index, w, "CrossEntropyLoss")
        picked, wsh = np.empty(n), np.empty(n)
        _ce_shift_hard(z, dz, t, ignore_index, w, eps > 0.0, picked, wsh)
        np.exp(dz, out=dz)
        _ce_finish_hard(dz, t, ignore_index, w, eps, _mean_scale(reduction, count), picked, wsh, per)
    return _finish(per, reduction, count, dt), dz


# ---------------------------------------------------------------------------
# Negative log-likelihood
# ---------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _nll(logp, t, ignore_index, w, scale, dx, per):
    """per_n = -w_t logp[n, t_n], dx[n, t_n] = -w_t scale (dx zero elsewhere,
    ignored samples 0)."""
    for i in range(logp.shape[0]):
        ti = t[i]
        if ti == ignore_index:
            per[i] = 0.0
            continue
        wt = w[ti]
        per[i] = -wt * logp[i, ti]
        dx[i, ti] = -wt * scale


def nll_loss(logp, target, reduction="mean", weight=None, ignore_index=-100):
    """Loss and d(loss)/d(logp) (dloss = 1) of :func:`nnumpy.functional.nll_loss_forward`."""
    x = _float(logp)
    n, c = x.shape
    w = _class_weight(weight, c, x.dtype)
    t, count = _checked_targets(target, c, ignore_index, w, "NLLLoss")
    dx = np.zeros(x.shape, x.dtype)                              # calloc: pages zeroed on first touch
    per = np.empty(n)
    _nll(x, t, ignore_index, w, _mean_scale(reduction, count), dx, per)
    return _finish(per, reduction, count, x.dtype), dx


# ---------------------------------------------------------------------------
# Multi-class margin loss
# ---------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _multi_margin(x, t, p, margin, w, scale, dx, per):
    """Per row: h_j = margin - x_t + x_j for j != t; active where h_j > 0:
    per_n = w_t / C sum_j h_j^p, dx_j = scale w_t / C (p = 1) or scale w_t / C 2 h_j
    (p = 2), dx_t = -sum_j dx_j.  Returns the first bad target's row or -1."""
    n, c = x.shape
    for i in range(n):
        if t[i] < 0 or t[i] >= c:
            return i
    for i in range(n):
        ti = t[i]
        xt = x[i, ti]
        g = w[ti] / c
        acc = 0.0
        gt = 0.0
        for j in range(c):
            h = margin - xt + x[i, j]
            if j != ti and h > 0:
                if p == 1:
                    acc += h
                    d = scale * g
                else:
                    acc += h * h
                    d = scale * g * 2.0 * h
                dx[i, j] = d
                gt -= d
            else:
                dx[i, j] = 0.0
        dx[i, ti] = gt
        per[i] = g * acc
    return -1


def multi_margin_loss(x, target, reduction="mean", p=1, margin=1.0, weight=None):
    """Loss and d(loss)/dx (dloss = 1) of :func:`nnumpy.functional.multi_margin_loss_forward`."""
    x = _float(x)
    n, c = x.shape
    w = _class_weight(weight, c, x.dtype)
    t = _indices(target)
    dx = np.empty_like(x)
    per = np.empty(n)
    if _multi_margin(x, t, int(p), x.dtype.type(margin), w, _mean_scale(reduction, n), dx, per) >= 0:
        check_class_targets(target, c, None, "MultiMarginLoss")
    return _finish(per, reduction, n, x.dtype), dx


# ---------------------------------------------------------------------------
# Binary cross-entropies: the logs and exps by NumPy (SIMD), the rest in one
# pass over (R, L) views of the inputs (L = the last axis).  A weight that
# broadcasts to the input is passed as an (Rw, Lw) array with Rw in {1, R}
# and Lw in {1, L} (read at [i * (Rw > 1), j * (Lw > 1)]), or broadcast out
# to (R, L) when its axes cannot be put so.
# ---------------------------------------------------------------------------
def _rows_shape(shape):
    """(R, L): ``shape`` seen as rows of its last axis (L = 1 for 0-d or an empty last axis)."""
    last = shape[-1] if len(shape) and shape[-1] else 1
    return (math.prod(shape) // last, last)


_ONES = {dt: np.ones((1, 1), dt) for dt in _FLOATS}


def _weight_rows(w, shape, rows, dtype):
    """A weight broadcastable to ``shape`` as a C-contiguous (Rw, Lw) array (see above)."""
    if w is None:
        return _ONES[dtype]
    w = np.asarray(w, dtype)
    lead = (1,) * (len(shape) - w.ndim) + w.shape[:-1] if w.ndim else (1,) * max(len(shape) - 1, 0)
    last = w.shape[-1] if w.ndim and len(shape) else 1
    if all(k == 1 for k in lead):
        return _c(w).reshape(1, last)
    if lead == tuple(shape[:-1]):
        return _c(w).reshape(rows[0], last)
    return np.ascontiguousarray(np.broadcast_to(w, shape)).reshape(rows)


def _same(y, dtype):
    """``y`` as a C-contiguous array of ``dtype`` (no copy when it is one)."""
    return y if y.dtype == dtype and y.flags.c_contiguous else np.ascontiguousarray(y, dtype)


@njit(cache=True, error_model="numpy")
def _bce_logits(x, y, e, lg, w, pw, has_pw, scale_f, dx):
    """Given e = exp(-|x|) and lg = log1p(e) (so log sigmoid(x) = min(x, 0) - lg
    and sigmoid(x) = 1 / (1 + e) for x >= 0, else e / (1 + e)), writes into lg
        loss = w ((1 - y) x - l log sigmoid(x)),   l = 1 + (pw - 1) y
    and into dx  scale w (sigmoid(x) - y), or with pos_weight
    scale w ((pw y + 1 - y) sigmoid(x) - pw y).  All (R, L); w, pw (Rw, Lw)."""
    r, c = x.shape
    one = x.dtype.type(1.0)
    zero = x.dtype.type(0.0)
    scale = x.dtype.type(scale_f)
    wr, wc = w.shape[0] > 1, w.shape[1] > 1
    pr, pc = pw.shape[0] > 1, pw.shape[1] > 1
    for i in range(r):
        for j in range(c):
            xi = x[i, j]
            yi = y[i, j]
            ei = e[i, j]
            wi = w[i * wr, j * wc]
            log_sig = min(xi, zero) - lg[i, j]
            sig = one / (one + ei) if xi >= zero else ei / (one + ei)
            if has_pw:
                pwi = pw[i * pr, j * pc]
                t = pwi * yi
                lg[i, j] = wi * ((one - yi) * xi - log_sig * ((pwi - one) * yi + one))
                dx[i, j] = scale * (wi * ((t + one - yi) * sig - t))
            else:
                lg[i, j] = wi * ((one - yi) * xi - log_sig)
                dx[i, j] = scale * (wi * (sig - yi))


def binary_cross_entropy_with_logits(x, y, reduction="mean", weight=None, pos_weight=None):
    """Loss and d(loss)/dx (dloss = 1) of
    :func:`nnumpy.functional.binary_cross_entropy_with_logits_forward`."""
    x = _float(x)
    dt, shape = x.dtype, x.shape
    rows = _rows_shape(shape)
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)                                             # exp(-|x|) <= 1: no overflow
    lg = np.log1p(e)
    dx = np.empty_like(x)
    _bce_logits(x.reshape(rows), _same(y, dt).reshape(rows), e.reshape(rows), lg.reshape(rows),
                _weight_rows(weight, shape, rows, dt), _weight_rows(pos_weight, shape, rows, dt),
                pos_weight is not None, _mean_scale(reduction, x.size), dx.reshape(rows))
    return _finish(lg, reduction, x.size, dt), dx


@njit(cache=True, error_model="numpy")
def _bce(p, y, lp, lq, w, scale_f, floor_f, eps_f, dx):
    """Given lp = log p and lq = log1p(-p), writes into lp
        loss = w ((y - 1) max(lq, floor) - y max(lp, floor))
    and into dx  scale w (p - y) / max(p (1 - p), eps).  Returns how many
    p or y lie outside [0, 1] (or are NaN): the caller raises if any do.
    (Counting instead of returning at the first lets the loop vectorise.)"""
    r, c = p.shape
    one = p.dtype.type(1.0)
    zero = p.dtype.type(0.0)
    scale = p.dtype.type(scale_f)
    floor = p.dtype.type(floor_f)
    eps = p.dtype.type(eps_f)
    wr, wc = w.shape[0] > 1, w.shape[1] > 1
    bad = 0
    for i in range(r):
        for j in range(c):
            pi = p[i, j]
            yi = y[i, j]
            bad += not (pi >= zero and pi <= one and yi >= zero and yi <= one)
            wi = w[i * wr, j * wc]
            lp[i, j] = wi * ((yi - one) * max(lq[i, j], floor) - yi * max(lp[i, j], floor))
            dx[i, j] = scale * (wi * ((pi - yi) / max((one - pi) * pi, eps)))
    return bad


def binary_cross_entropy(p, y, reduction="mean", weight=None, input_hint=""):
    """Loss and d(loss)/dp (dloss = 1) of :func:`nnumpy.functional.binary_cross_entropy_forward`.
    Raises ValueError if p or y has a value outside [0, 1] (or NaN): the message
    of :func:`nnumpy.functional.check_probabilities`, with ``input_hint`` added
    for p (BCELoss passes the hint its numpy path gives, so both backends say the same)."""
    p = _float(p)
    dt, shape = p.dtype, p.shape
    rows = _rows_shape(shape)
    y = _same(y, dt)
    with np.errstate(divide="ignore", invalid="ignore"):          # log(0) = -inf (clamped); bad p: checked
        lp = np.log(p)
        lq = np.negative(p)
        np.log1p(lq, out=lq)
    dx = np.empty_like(p)
    if _bce(p.reshape(rows), y.reshape(rows), lp.reshape(rows), lq.reshape(rows),
            _weight_rows(weight, shape, rows, dt), _mean_scale(reduction, p.size), BCE_LOG_FLOOR, BCE_EPSILON,
            dx.reshape(rows)):
        check_probabilities("input", p, "BCELoss", input_hint)    # raises, with the module's messages
        check_probabilities("target", y, "BCELoss")
    return _finish(lp, reduction, p.size, dt), dx


# ---------------------------------------------------------------------------
# Element-wise regression losses: one pass over the flattened arrays
# ---------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _regression(x, y, kind, k_f, scale_f, dx, per):
    """d = x - y elementwise (1-d arrays); kind _MSE: per = d^2, dx = 2 d;
    _L1: per = |d|, dx = sign(d) (0 at 0 and NaN); _HUBER (k = delta):
    per = d^2 / 2 (|d| < k) else k (|d| - k / 2), dx = clip(d, -k, k);
    _SMOOTH_L1 (k = beta > 0): per = d^2 / (2 k) (|d| < k) else |d| - k / 2,
    dx = d / k inside [-k, k], else sign(d).  dx is times scale.  (The sum
    of per is NumPy's: a sum inside this loop would keep it from vectorising,
    and its selects would become mispredicted branches.)"""
    one = x.dtype.type(1.0)
    zero = x.dtype.type(0.0)
    half = x.dtype.type(0.5)
    k = x.dtype.type(k_f)
    scale = x.dtype.type(scale_f)
    for i in range(x.shape[0]):
        d = x[i] - y[i]
        a = abs(d)
        if kind == _MSE:
            per[i] = d * d
            g = d + d
        elif kind == _L1:
            per[i] = a
            g = one if d > zero else (-one if d < zero else zero)
        elif kind == _HUBER:
            per[i] = half * d * d if a < k else k * (a - half * k)
            g = -k if d < -k else (k if d > k else d)
        else:
            per[i] = half * d * d / k if a < k else a - half * k
            g = -one if d < -k else (one if d > k else d / k)
        dx[i] = scale * g


def _elementwise(pred, target, reduction, kind, k):
    x = _float(pred)
    dt = x.dtype
    dx, per = np.empty_like(x), np.empty_like(x)
    _regression(x.reshape(-1), _same(target, dt).reshape(-1), kind, k, _mean_scale(reduction, x.size),
                dx.reshape(-1), per.reshape(-1))
    return _finish(per, reduction, x.size, dt), dx


def mse_loss(pred, target, reduction="mean"):
    """Loss and d(loss)/d(pred) (dloss = 1) of :func:`nnumpy.functional.mse_forward`."""
    return _elementwise(pred, target, reduction, _MSE, 0.0)


def l1_loss(pred, target, reduction="mean"):
    """Loss and d(loss)/d(pred) (dloss = 1) of :func:`nnumpy.functional.l1_loss_forward`."""
    return _elementwise(pred, target, reduction, _L1, 0.0)


def huber_loss(pred, target, reduction="mean", delta=1.0):
    """Loss and d(loss)/d(pred) (dloss = 1) of :func:`nnumpy.functional.huber_loss_forward`."""
    return _elementwise(pred, target, reduction, _HUBER, float(delta))


def smooth_l1_loss(pred, target, reduction="mean", beta=1.0):
    """Loss and d(loss)/d(pred) (dloss = 1) of :func:`nnumpy.functional.smooth_l1_loss_forward`
    (beta = 0 is the L1 loss)."""
    if beta == 0:
        return _elementwise(pred, target, reduction, _L1, 0.0)
    return _elementwise(pred, target, reduction, _SMOOTH_L1, float(beta))


def warm_up(dtypes=(np.float32, np.float64)):
    """Compile (or load from the disk cache) every loss kernel for ``dtypes``."""
    for dt in dtypes:
        z = np.ones((2, 3), dt)
        t = np.array([0, 2])
        for eps in (0.0, 0.1):
            cross_entropy(z, t, label_smoothing=eps)
        cross_entropy(z, np.full((2, 3), 1 / 3, dt))
        nll_loss(z, t)
        multi_margin_loss(z, t)
        multi_margin_loss(z, t, p=2)
        binary_cross_entropy_with_logits(z, z)
        binary_cross_entropy_with_logits(z, z, pos_weight=np.ones(3))
        binary_cross_entropy(z / 2, z / 2)
        for f in (mse_loss, l1_loss, huber_loss, smooth_l1_loss):
            f(z, z)
        smooth_l1_loss(z, z, beta=0.0)
