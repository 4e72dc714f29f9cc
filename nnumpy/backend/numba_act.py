"""Numba kernels for the activations and softmaxes of
:mod:`nnumpy.functional.activation`, which is their reference (read it
first: it is the mathematics).

Every public function has the signature, the meaning and the special-value
behaviour of its namesake there, and the same arithmetic, in the same order,
so results agree with the reference to a few ulps element by element (most
are bit-identical; the softmax sums are added in another order).  What
changes is the arrangement:

* NumPy's SIMD exp, expm1 and log1p run between the passes (measured 6-40x
  faster than the scalar libm calls a Numba loop would make, on an AVX-512
  machine); every other step of a forward or backward is fused into one
  loop over the elements, with no temporary arrays;
* the exact GELU sums its Chebyshev series in that loop, which LLVM
  vectorises (the coefficients are compile-time constants);
* the softmaxes work on x viewed as (outer, n, inner), ``n`` along ``dim``:
  for the last dimension (inner = 1) the row maximum and sums use 16
  independent accumulators, which LLVM vectorises without reassociating
  anything; otherwise the inner dimension is the vector.

Inputs that are not C-contiguous are copied to contiguous arrays first.
Kernels are compiled on first use per dtype and cached on disk
(``cache=True``); no ``fastmath``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..functional.activation import (ERFCX_CHEBYSHEV, EXP_HALF_SQUARE_CLIP, GELU_TANH_CLIP, GELU_TANH_CUBIC,
                                     GELU_TANH_SCALE, INV_SQRT_2PI, SQRT_HALF, VELTKAMP, softmax_dim)

__all__ = ["gelu_forward", "gelu_backward", "elu_forward", "elu_backward", "silu_forward", "silu_backward",
           "softplus_forward", "softplus_backward", "hardtanh_forward", "hardtanh_backward",
           "softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward", "warm_up"]

_C = ERFCX_CHEBYSHEV.copy()         # a global array: Numba freezes it into the kernel as constants
_NC = _C.size
_LANES = 16                         # independent accumulators of the row reductions


def _flat(a):
    """``a`` as a 1-d C-contiguous array (a view when it already is contiguous)."""
    return np.ascontiguousarray(a).reshape(-1)


# ---------------------------------------------------------------------------
# GELU, exact: y = x Phi(x), f'(x) = Phi(x) + x phi(x), all in float64
# ---------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _half_square_exponent(x, out):
    """out <- -hi^2 / 2 (float64), hi = x clipped to +-40 and rounded to 26
    bits (Veltkamp), so that exp(out) * exp(r) is exp(-x^2/2) (see
    ``_exp_minus_half_square`` in the reference)."""
    for i in range(x.size):
        xs = np.float64(x[i])
        if xs > EXP_HALF_SQUARE_CLIP:
            xs = EXP_HALF_SQUARE_CLIP
        elif xs < -EXP_HALF_SQUARE_CLIP:
            xs = -EXP_HALF_SQUARE_CLIP
        c = xs * VELTKAMP
        hi = c - (c - xs)
        out[i] = -0.5 * hi * hi


@njit(cache=True, error_model="numpy", inline="always")
def _cdf_pdf(v, exp_hi):
    """(Phi(v), phi(v)) for float64 v, given exp(-hi^2/2) from the pass above:
    the reference's _normal_cdf_and_density, operation for operation."""
    xs = v
    if xs > EXP_HALF_SQUARE_CLIP:
        xs = EXP_HALF_SQUARE_CLIP
    elif xs < -EXP_HALF_SQUARE_CLIP:
        xs = -EXP_HALF_SQUARE_CLIP
    c = xs * VELTKAMP
    hi = c - (c - xs)
    lo = xs - hi
    r = -0.5 * lo * (xs + hi)
    e = exp_hi * (1.0 + r * (1.0 + r * (0.5 + r / 6.0)))
    # erfcx(|v| / sqrt 2) by Clenshaw's recurrence over the Chebyshev coefficients
    t = 2.0 / (2.0 + abs(v) * SQRT_HALF)
    y = 2.0 * t - 1.0
    y2 = 2.0 * y
    b1 = 0.0
    b2 = 0.0
    for k in range(_NC - 1, 0, -1):
        b1, b2 = y2 * b1 - b2 + _C[k], b1
    h = 0.5 * e * (t * (y * b1 - b2 + _C[0]))
    cdf = h if v < 0 else 1.0 - h
    return cdf, e * INV_SQRT_2PI


@njit(cache=True, error_model="numpy")
def _gelu_forward(x, exp_hi, y):
    """y <- x Phi(x); exp_hi (float64) holds exp(-hi^2/2) per element."""
    for i in range(x.size):
        v = np.float64(x[i])
        cdf, _ = _cdf_pdf(v, exp_hi[i])
        y[i] = v * cdf


@njit(cache=True, error_model="numpy")
def _gelu_backward(dy, x, exp_hi, dx):
    """dx <- dy (Phi(x) + x phi(x)), in float64, rounded once to dx's dtype."""
    for i in range(x.size):
        v = np.float64(x[i])
        cdf, pdf = _cdf_pdf(v, exp_hi[i])
        dx[i] = dy[i] * (cdf + v * pdf)


def _exp_half_square_hi(xf):
    e = np.empty(xf.size, np.float64)
    _half_square_exponent(xf, e)
    return np.exp(e, out=e)


# ---------------------------------------------------------------------------
# GELU, tanh approximation: y = x s, s = sigmoid(2u), in x's dtype
# ---------------------------------------------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def _gelu_tanh_u(v, k):
    """(u, u') at v clipped to +-30, in v's dtype, in the reference's order of
    operations; k = (sqrt(2/pi), 0.044715, 3 * 0.044715, 30, 1) in v's dtype."""
    xc = v
    if xc > k[3]:
        xc = k[3]
    elif xc < -k[3]:
        xc = -k[3]
    x2 = xc * xc
    return k[0] * (xc + k[1] * (x2 * xc)), k[0] * (k[4] + k[2] * x2)


def _gelu_tanh_constants(dtype):
    t = dtype.type
    return (t(GELU_TANH_SCALE), t(GELU_TANH_CUBIC), t(3 * GELU_TANH_CUBIC), t(GELU_TANH_CLIP), t(1))


@njit(cache=True, error_model="numpy")
def _gelu_tanh_exponent(x, k, out):
    """out <- -|2u(x)| (x's dtype), the argument of the sigmoid's exp."""
    two = x.dtype.type(2)
    for i in range(x.size):
        u, _ = _gelu_tanh_u(x[i], k)
        out[i] = -abs(two * u)


@njit(cache=True, error_model="numpy")
def _gelu_tanh_forward(x, e, y):
    """y <- x s, s = sigmoid(2u) from e = exp(-|2u|) (may be y itself)."""
    one = x.dtype.type(1)
    for i in range(x.size):
        v = x[i]
        ei = e[i]
        s = (one if v >= 0 else ei) / (one + ei)        # 2u >= 0 exactly when x >= 0 (also for -0.0, NaN)
        y[i] = v * s


@njit(cache=True, error_model="numpy")
def _gelu_tanh_backward(dy, x, k, e, dx):
    """dx <- dy (s + 2 s (1 - s) x u'(x)), 1 - s = sigmoid(-2u); e = exp(-|2u|) (may be dx)."""
    one = x.dtype.type(1)
    two = x.dtype.type(2)
    for i in range(x.size):
        v = x[i]
        _, du = _gelu_tanh_u(v, k)
        ei = e[i]
        d = one + ei
        pos = v >= 0
        s = (one if pos else ei) / d
        sm = (ei if pos else one) / d
        dx[i] = dy[i] * (s + two * s * sm * v * du)


# ---------------------------------------------------------------------------
# SiLU, Softplus: sigmoids from e = exp(-|z|)
# ---------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _neg_abs_scaled(x, b, out):
    """out <- -|x b|."""
    for i in range(x.size):
        out[i] = -abs(x[i] * b)


@njit(cache=True, error_model="numpy")
def _silu_forward(x, e, y):
    """y <- x sigmoid(x), e = exp(-|x|) (may be y)."""
    one = x.dtype.type(1)
    for i in range(x.size):
        v = x[i]
        ei = e[i]
        y[i] = v * ((one if v >= 0 else ei) / (one + ei))


@njit(cache=True, error_model="numpy")
def _silu_backward(dy, x, e, dx):
    """dx <- dy s (1 + x (1 - s)), s = sigmoid(x), 1 - s = sigmoid(-x); e = exp(-|x|) (may be dx)."""
    one = x.dtype.type(1)
    for i in range(x.size):
        v = x[i]
        ei = e[i]
        d = one + ei
        pos = v >= 0
        s = (one if pos else ei) / d
        sm = (ei if pos else one) / d
        dx[i] = dy[i] * s * (one + v * sm)


@njit(cache=True, error_model="numpy")
def _softplus_forward(x, b, th, l, y):
    """y <- x where z = x b > th, else (max(z, 0) + l) / b, l = log1p(exp(-|z|)) (may be y)."""
    zero = x.dtype.type(0)
    for i in range(x.size):
        v = x[i]
        z = v * b
        if z > th:
            y[i] = v
        else:
            y[i] = ((z if z > zero else zero) + l[i]) / b     # a NaN z: l is NaN too


@njit(cache=True, error_model="numpy")
def _softplus_backward(dy, x, b, th, e, dx):
    """dx <- dy where z = x b > th, else dy sigmoid(z); e = exp(-|z|) (may be dx)."""
    one = x.dtype.type(1)
    for i in range(x.size):
        z = x[i] * b
        ei = e[i]
        if z > th:
            dx[i] = dy[i]
        else:
            dx[i] = dy[i] * ((one if z >= 0 else ei) / (one + ei))


# ---------------------------------------------------------------------------
# ELU: expm1 / exp of min(x, 0) by NumPy, the rest here
# ---------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _elu_forward(x, a, y):
    """y <- x where x > 0, else a * y (y holds expm1(min(x, 0)) on entry)."""
    for i in range(x.size):
        v = x[i]
        y[i] = v if v > 0 else a * y[i]


@njit(cache=True, error_model="numpy")
def _elu_backward(dy, x, a, dx):
    """dx <- dy a exp(x) where x <= 0, else dy (dx holds exp(min(x, 0)) on entry)."""
    for i in range(x.size):
        dx[i] = dy[i] * a * dx[i] if x[i] <= 0 else dy[i]


# ---------------------------------------------------------------------------
# Hardtanh: one pass each way
# ---------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _hardtanh_forward(x, lo, hi, y, mask):
    """y <- clip(x, lo, hi) (NaN stays NaN); mask <- not (x <= lo or x >= hi)."""
    for i in range(x.size):
        v = x[i]
        mask[i] = not (v <= lo or v >= hi)
        y[i] = lo if v < lo else (hi if v > hi else v)


@njit(cache=True, error_model="numpy")
def _hardtanh_backward(dy, mask, dx):
    """dx <- dy where mask, else 0 (also for an inf or NaN dy)."""
    zero = dy.dtype.type(0)
    for i in range(dy.size):
        dx[i] = dy[i] if mask[i] else zero


# ---------------------------------------------------------------------------
# Softmax and log-softmax on x viewed as (outer, n, inner)
# ---------------------------------------------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def _row_max(x, o, acc):
    """max_j x[o, j], in the 16 lanes of the scratch acc (NaN is skipped: a
    NaN makes its row NaN through the sum anyway)."""
    n = x.shape[1]
    acc[:] = -np.inf
    nb = n - n % _LANES
    for j in range(0, nb, _LANES):
        for k in range(_LANES):
            v = x[o, j + k]
            acc[k] = v if v > acc[k] else acc[k]
    m = acc[0]
    for k in range(1, _LANES):
        m = acc[k] if acc[k] > m else m
    for j in range(nb, n):
        m = x[o, j] if x[o, j] > m else m
    return m


@njit(cache=True, error_model="numpy", inline="always")
def _row_sum(x, o, acc):
    """sum_j x[o, j], in the 16 lanes of the scratch acc."""
    n = x.shape[1]
    acc[:] = 0
    nb = n - n % _LANES
    for j in range(0, nb, _LANES):
        for k in range(_LANES):
            acc[k] += x[o, j + k]
    s = acc[0]
    for k in range(1, _LANES):
        s += acc[k]
    for j in range(nb, n):
        s += x[o, j]
    return s


@njit(cache=True, error_model="numpy", inline="always")
def _row_dot(x, w, o, acc):
    """sum_j x[o, j] w[o, j], in the 16 lanes of the scratch acc."""
    n = x.shape[1]
    acc[:] = 0
    nb = n - n % _LANES
    for j in range(0, nb, _LANES):
        for k in range(_LANES):
            acc[k] += x[o, j + k] * w[o, j + k]
    s = acc[0]
    for k in range(1, _LANES):
        s += acc[k]
    for j in range(nb, n):
        s += x[o, j] * w[o, j]
    return s


@njit(cache=True, error_model="numpy")
def _rows_shift(x, y):
    """y[o, :] <- x[o, :] - max x[o, :]  (x, y (outer, n))."""
    acc = np.empty(_LANES, x.dtype)
    for o in range(x.shape[0]):
        m = _row_max(x, o, acc)
        for j in range(x.shape[1]):
            y[o, j] = x[o, j] - m


@njit(cache=True, error_model="numpy")
def _cols_shift(x, y):
    """y[o, :, i] <- x[o, :, i] - max_j x[o, j, i]  (x, y (outer, n, inner))."""
    outer, n, inner = x.shape
    m = np.empty(inner, x.dtype)
    for o in range(outer):
        m[:] = -np.inf
        for j in range(n):
            for i in range(inner):
                v = x[o, j, i]
                m[i] = v if v > m[i] else m[i]
        for j in range(n):
            for i in range(inner):
                y[o, j, i] = x[o, j, i] - m[i]


@njit(cache=True, error_model="numpy")
def _rows_normalise(e):
    """e[o, :] <- e[o, :] / sum e[o, :]."""
    acc = np.empty(_LANES, e.dtype)
    for o in range(e.shape[0]):
        s = _row_sum(e, o, acc)
        for j in range(e.shape[1]):
            e[o, j] = e[o, j] / s


@njit(cache=True, error_model="numpy")
def _cols_normalise(e):
    outer, n, inner = e.shape
    s = np.empty(inner, e.dtype)
    for o in range(outer):
        s[:] = 0
        for j in range(n):
            for i in range(inner):
                s[i] += e[o, j, i]
        for j in range(n):
            for i in range(inner):
                e[o, j, i] = e[o, j, i] / s[i]


@njit(cache=True, error_model="numpy", inline="always")
def _row_rest(e, o, acc, ties):
    """r = sum_j e[o, j] - 1 as the reference forms it: the terms below 1, plus
    one per further term equal to 1 (NaN stays in), in the 16 lanes of acc and ties."""
    n = e.shape[1]
    acc[:] = 0
    ties[:] = 0
    nb = n - n % _LANES
    for j in range(0, nb, _LANES):
        for k in range(_LANES):
            v = e[o, j + k]
            acc[k] += 0 if v >= 1 else v
            ties[k] += 1 if v == 1 else 0
    r = acc[0]
    c = ties[0]
    for k in range(1, _LANES):
        r += acc[k]
        c += ties[k]
    for j in range(nb, n):
        v = e[o, j]
        r += 0 if v >= 1 else v
        c += 1 if v == 1 else 0
    return r + (c - 1)


@njit(cache=True, error_model="numpy")
def _rows_subtract_log_sum(y, e):
    """y[o, :] <- y[o, :] - log1p(r), r = sum e[o, :] - 1 (see _row_rest; y holds x - max, e = exp(y))."""
    acc = np.empty(_LANES, e.dtype)
    ties = np.empty(_LANES, e.dtype)
    for o in range(y.shape[0]):
        ls = math.log1p(_row_rest(e, o, acc, ties))
        for j in range(y.shape[1]):
            y[o, j] = y[o, j] - ls


@njit(cache=True, error_model="numpy")
def _cols_subtract_log_sum(y, e):
    outer, n, inner = y.shape
    r = np.empty(inner, y.dtype)
    c = np.empty(inner, y.dtype)
    for o in range(outer):
        r[:] = 0
        c[:] = 0
        for j in range(n):
            for i in range(inner):
                v = e[o, j, i]
                r[i] += 0 if v >= 1 else v
                c[i] += 1 if v == 1 else 0
        for i in range(inner):
            r[i] = math.log1p(r[i] + (c[i] - 1))
        for j in range(n):
            for i in range(inner):
                y[o, j, i] = y[o, j, i] - r[i]


@njit(cache=True, error_model="numpy")
def _rows_softmax_backward(dy, y, dx):
    """dx[o, :] <- y (dy - sum(dy y)) per row."""
    acc = np.empty(_LANES, y.dtype)
    for o in range(y.shape[0]):
        s = _row_dot(dy, y, o, acc)
        for j in range(y.shape[1]):
            dx[o, j] = y[o, j] * (dy[o, j] - s)


@njit(cache=True, error_model="numpy")
def _cols_softmax_backward(dy, y, dx):
    outer, n, inner = y.shape
    s = np.empty(inner, y.dtype)
    for o in range(outer):
        s[:] = 0
        for j in range(n):
            for i in range(inner):
                s[i] += dy[o, j, i] * y[o, j, i]
        for j in range(n):
            for i in range(inner):
                dx[o, j, i] = y[o, j, i] * (dy[o, j, i] - s[i])


@njit(cache=True, error_model="numpy")
def _rows_log_softmax_backward(dy, dx):
    """dx[o, :] <- dy - dx * sum(dy) per row (dx holds exp(y) on entry)."""
    acc = np.empty(_LANES, dy.dtype)
    for o in range(dy.shape[0]):
        s = _row_sum(dy, o, acc)
        for j in range(dy.shape[1]):
            dx[o, j] = dy[o, j] - dx[o, j] * s


@njit(cache=True, error_model="numpy")
def _cols_log_softmax_backward(dy, dx):
    outer, n, inner = dy.shape
    s = np.empty(inner, dy.dtype)
    for o in range(outer):
        s[:] = 0
        for j in range(n):
            for i in range(inner):
                s[i] += dy[o, j, i]
        for j in range(n):
            for i in range(inner):
                dx[o, j, i] = dy[o, j, i] - dx[o, j, i] * s[i]


def _slices(a, dim):
    """``a`` (C-contiguous) viewed as (outer, n) when dim is its last
    dimension, else (outer, n, inner); n = a.shape[dim] (a 0-d a as (1, 1))."""
    shape = a.shape or (1,)
    outer = math.prod(shape[:dim])
    inner = math.prod(shape[dim + 1:])
    if inner == 1:
        return a.reshape(outer, shape[dim])
    return a.reshape(outer, shape[dim], inner)


# ---------------------------------------------------------------------------
# The public functions: the reference's signatures
# ---------------------------------------------------------------------------
def gelu_forward(x, approximate="none"):
    """See :func:`nnumpy.functional.activation.gelu_forward`."""
    xf = _flat(x)
    y = np.empty(x.shape, x.dtype)
    if approximate == "none":
        _gelu_forward(xf, _exp_half_square_hi(xf), y.reshape(-1))
    elif approximate == "tanh":
        e = y.reshape(-1)
        _gelu_tanh_exponent(xf, _gelu_tanh_constants(x.dtype), e)
        np.exp(e, out=e)
        _gelu_tanh_forward(xf, e, e)
    else:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return y


def gelu_backward(dy, x, approximate="none"):
    """See :func:`nnumpy.functional.activation.gelu_backward`."""
    xf, dyf = _flat(x), _flat(dy)
    dx = np.empty(x.shape, x.dtype)
    if approximate == "none":
        _gelu_backward(dyf, xf, _exp_half_square_hi(xf), dx.reshape(-1))
    elif approximate == "tanh":
        k = _gelu_tanh_constants(x.dtype)
        e = dx.reshape(-1)
        _gelu_tanh_exponent(xf, k, e)
        np.exp(e, out=e)
        _gelu_tanh_backward(dyf, xf, k, e, e)
    else:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return dx


def elu_forward(x, alpha=1.0):
    """See :func:`nnumpy.functional.activation.elu_forward`."""
    xf = _flat(x)
    y = np.empty(x.shape, x.dtype)
    yf = y.reshape(-1)
    np.minimum(xf, 0, out=yf)
    np.expm1(yf, out=yf)
    _elu_forward(xf, x.dtype.type(alpha), yf)
    return y


def elu_backward(dy, x, alpha=1.0):
    """See :func:`nnumpy.functional.activation.elu_backward`."""
    xf = _flat(x)
    dx = np.empty(x.shape, x.dtype)
    dxf = dx.reshape(-1)
    np.minimum(xf, 0, out=dxf)
    np.exp(dxf, out=dxf)
    _elu_backward(_flat(dy), xf, x.dtype.type(alpha), dxf)
    return dx


def silu_forward(x):
    """See :func:`nnumpy.functional.activation.silu_forward`."""
    xf = _flat(x)
    y = np.empty(x.shape, x.dtype)
    e = y.reshape(-1)
    _neg_abs_scaled(xf, x.dtype.type(1), e)
    np.exp(e, out=e)
    _silu_forward(xf, e, e)
    return y


def silu_backward(dy, x):
    """See :func:`nnumpy.functional.activation.silu_backward`."""
    xf = _flat(x)
    dx = np.empty(x.shape, x.dtype)
    e = dx.reshape(-1)
    _neg_abs_scaled(xf, x.dtype.type(1), e)
    np.exp(e, out=e)
    _silu_backward(_flat(dy), xf, e, e)
    return dx


def softplus_forward(x, beta=1.0, threshold=20.0):
    """See :func:`nnumpy.functional.activation.softplus_forward`."""
    xf = _flat(x)
    b, th = x.dtype.type(beta), x.dtype.type(threshold)
    y = np.empty(x.shape, x.dtype)
    l = y.reshape(-1)
    _neg_abs_scaled(xf, b, l)
    np.exp(l, out=l)
    np.log1p(l, out=l)
    _softplus_forward(xf, b, th, l, l)
    return y


def softplus_backward(dy, x, beta=1.0, threshold=20.0):
    """See :func:`nnumpy.functional.activation.softplus_backward`."""
    xf = _flat(x)
    b, th = x.dtype.type(beta), x.dtype.type(threshold)
    dx = np.empty(x.shape, x.dtype)
    e = dx.reshape(-1)
    _neg_abs_scaled(xf, b, e)
    np.exp(e, out=e)
    _softplus_backward(_flat(dy), xf, b, th, e, e)
    return dx


def hardtanh_forward(x, min_val=-1.0, max_val=1.0):
    """See :func:`nnumpy.functional.activation.hardtanh_forward`."""
    y = np.empty(x.shape, x.dtype)
    mask = np.empty(x.shape, np.bool_)
    _hardtanh_forward(_flat(x), x.dtype.type(min_val), x.dtype.type(max_val), y.reshape(-1), mask.reshape(-1))
    return y, mask


def hardtanh_backward(dy, mask):
    """See :func:`nnumpy.functional.activation.hardtanh_backward`."""
    dx = np.empty(dy.shape, dy.dtype)
    _hardtanh_backward(_flat(dy), _flat(mask), dx.reshape(-1))
    return dx


def softmax_forward(x, dim):
    """See :func:`nnumpy.functional.activation.softmax_forward`."""
    dim = softmax_dim(dim, x.ndim)
    if x.size == 0:
        return x.copy()
    x3 = _slices(np.ascontiguousarray(x), dim)
    y = np.empty(x3.shape, x.dtype)
    (_rows_shift if y.ndim == 2 else _cols_shift)(x3, y)
    np.exp(y, out=y)
    (_rows_normalise if y.ndim == 2 else _cols_normalise)(y)
    return y.reshape(x.shape)


def softmax_backward(dy, y, dim):
    """See :func:`nnumpy.functional.activation.softmax_backward`."""
    dim = softmax_dim(dim, y.ndim)
    if y.size == 0:
        return dy.copy()
    y3 = _slices(np.ascontiguousarray(y), dim)
    dy3 = _slices(np.ascontiguousarray(dy), dim)
    dx = np.empty(y3.shape, y.dtype)
    (_rows_softmax_backward if dx.ndim == 2 else _cols_softmax_backward)(dy3, y3, dx)
    return dx.reshape(y.shape)


def log_softmax_forward(x, dim):
    """See :func:`nnumpy.functional.activation.log_softmax_forward`."""
    dim = softmax_dim(dim, x.ndim)
    if x.size == 0:
        return x.copy()
    x3 = _slices(np.ascontiguousarray(x), dim)
    y = np.empty(x3.shape, x.dtype)
    (_rows_shift if y.ndim == 2 else _cols_shift)(x3, y)
    e = np.exp(y)
    (_rows_subtract_log_sum if y.ndim == 2 else _cols_subtract_log_sum)(y, e)
    return y.reshape(x.shape)


def log_softmax_backward(dy, y, dim):
    """See :func:`nnumpy.functional.activation.log_softmax_backward`."""
    dim = softmax_dim(dim, y.ndim)
    if y.size == 0:
        return dy.copy()
    y3 = _slices(np.ascontiguousarray(y), dim)
    dy3 = _slices(np.ascontiguousarray(dy), dim)
    dx = np.exp(y3)
    (_rows_log_softmax_backward if dx.ndim == 2 else _cols_log_softmax_backward)(dy3, dx)
    return dx.reshape(y.shape)


def warm_up(dtypes=(np.float32, np.float64)):
    """Compile (or load from the disk cache) every kernel for ``dtypes``."""
    for dt in dtypes:
        x = np.linspace(-2, 2, 6, dtype=dt).reshape(2, 3)
        dy = np.ones_like(x)
        for approximate in ("none", "tanh"):
            gelu_backward(dy, x, approximate), gelu_forward(x, approximate)
        elu_backward(dy, x), elu_forward(x)
        silu_backward(dy, x), silu_forward(x)
        softplus_backward(dy, x), softplus_forward(x)
        hardtanh_backward(dy, hardtanh_forward(x)[1])
        for dim in (0, 1):                              # (outer, n, inner) and (outer, n) layouts
            softmax_backward(dy, softmax_forward(x, dim), dim)
            log_softmax_backward(dy, log_softmax_forward(x, dim), dim)
