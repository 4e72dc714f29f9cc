"""Smooth and saturating activations, and softmax along any dimension:
forward/backward pairs, the NumPy reference of the numba kernels in
:mod:`nnumpy.backend.numba_act`.

Element-wise ``y = f(x)`` has a diagonal Jacobian, so every backward here
is ``dx = dy * f'(x)``, with dy, x, y and dx all of x's shape (any shape,
0-d included).  A backward that needs x takes it as an argument (the module
keeps it); Hardtanh keeps a boolean mask instead, the softmaxes their
output.  float32 stays float32 and float64 stays float64; the
hyper-parameters are cast to x's dtype first, as PyTorch does.

Special values follow PyTorch 2.13: a NaN input gives NaN (and a NaN
gradient, except where PyTorch passes dy on: ELU and Hardtanh), and
+-inf give what PyTorch's formulas give (GELU(-inf) is NaN, as -inf * 0).
Large *finite* inputs never overflow in an intermediate: where PyTorch's
formula overflows into inf or NaN although the exact result is finite
(Softplus with a ``threshold`` above 88 in float32 or 709 in float64, the
tanh-GELU's derivative beyond |x| = 1.8e19 in float32 and 1.3e154 in float64,
where x^2 overflows), these give the exact result.

Shapes of the softmaxes: ``dim`` is any dimension of an N-d x; the sums run
along it (keepdims), written ``sum_dim``.
"""
from __future__ import annotations

import warnings

import numpy as np

from .._checks import integer
from .dense import masked

__all__ = [
    "gelu_forward", "gelu_backward",
    "elu_forward", "elu_backward",
    "silu_forward", "silu_backward",
    "softplus_forward", "softplus_backward",
    "hardtanh_forward", "hardtanh_backward",
    "softmax_forward", "softmax_backward",
    "log_softmax_forward", "log_softmax_backward",
    "softmax_dim", "normal_cdf",
]

GELU_APPROXIMATIONS = ("none", "tanh")


# ---------------------------------------------------------------------------
# The standard normal distribution, for the exact GELU
# ---------------------------------------------------------------------------
#: Chebyshev coefficients c_0..c_27 of the scaled complementary error function
#: erfcx(z) = exp(z^2) erfc(z) on z in [0, inf), written in t = 2 / (2 + z) in (0, 1]:
#:     erfcx(z) = t * sum_k c_k T_k(2t - 1)
#: (erfcx(z) / t is smooth on the whole of [0, 1], its limit at t = 0 being 1/(2 sqrt(pi)), so
#: 28 terms reach float64's rounding: measured against mpmath, relative error below 5e-16 on
#: [0, 30] and beyond).  Computed by interpolating erfcx(z) / t at 64 Chebyshev nodes with mpmath
#: at 50 digits; tests/test_activations.py recomputes them that way and compares.
ERFCX_CHEBYSHEV = np.array([
    0.5770337386164697, 0.3554369212704985, 0.06509515882878653, 0.003671142395836639,
    -0.0011128447433526325, -0.0001607582991537808, 3.278031574173137e-05, 5.442441645505016e-06,
    -1.5154665553171482e-06, -1.4297608181169865e-07, 8.234608827419493e-08, -1.2962846852306563e-09,
    -4.154721631015199e-09, 6.347058278362811e-10, 1.4320822712256225e-10, -6.160390105204585e-11,
    2.0612138554721698e-12, 3.5714931488477042e-12, -8.586422843251796e-13, -6.14560021379063e-14,
    7.418725748596617e-14, -1.2895042755032325e-14, -2.358726385710632e-15, 1.5729349381685912e-15,
    -2.2782966239546465e-16, -6.31233045075643e-17, 3.5916763531814925e-17, -5.049809149847729e-18,
])
SQRT_HALF = 0.7071067811865476            # 1/sqrt(2), rounded
INV_SQRT_2PI = 0.3989422804014327         # 1/sqrt(2 pi), rounded
VELTKAMP = 134217729.0                    # 2^27 + 1: splits a float64 into two 26-bit halves
#: |x| beyond which exp(-x^2/2) is 0 in float64 (exp(-800) < 5e-324): x is clipped to it first.
EXP_HALF_SQUARE_CLIP = 40.0


def _erfcx(z):
    """``erfcx(z) = exp(z^2) erfc(z)`` for float64 z >= 0 (+inf gives 0): the
    Chebyshev series of :data:`ERFCX_CHEBYSHEV`, summed by Clenshaw's
    recurrence b_k = 2y b_{k+1} - b_{k+2} + c_k, sum = y b_1 - b_2 + c_0."""
    t = 2.0 / (2.0 + z)
    y = 2.0 * t - 1.0
    y2 = 2.0 * y
    b1 = np.zeros_like(y)
    b2 = np.zeros_like(y)
    for c in ERFCX_CHEBYSHEV[:0:-1]:
        b1, b2 = y2 * b1 - b2 + c, b1
    return t * (y * b1 - b2 + ERFCX_CHEBYSHEV[0])


def _exp_minus_half_square(x):
    """``exp(-x^2 / 2)`` for float64 x, to about an ulp even where x^2 is large.

    Rounding x^2 would cost a relative error of up to (x^2/2) * 1.1e-16 in
    the result (7.5e-14 at x = 37).  Instead x = hi + lo with hi of 26 significant bits
    (Veltkamp's split), so hi^2 / 2 is exact and x^2/2 = hi^2/2 - r with
    r = -lo (x + hi) / 2, |r| < 2^-27 x^2 < 1.2e-5 (x clipped to +-40, where
    the result is 0 already): exp(-x^2/2) = exp(-hi^2/2) * exp(r), the second
    factor by its Taylor series to r^3 (the next term is below 1e-21).
    """
    xs = np.clip(x, -EXP_HALF_SQUARE_CLIP, EXP_HALF_SQUARE_CLIP)
    c = xs * VELTKAMP
    hi = c - (c - xs)
    lo = xs - hi
    r = -0.5 * lo * (xs + hi)
    return np.exp(-0.5 * hi * hi) * (1.0 + r * (1.0 + r * (0.5 + r / 6.0)))


def _normal_cdf_and_density(x):
    """``(Phi(x), phi(x))`` for float64 x: the standard normal CDF and density
    (x, Phi, phi: any shape, same).

    With e = exp(-x^2/2) and h = Phi(-|x|) = erfc(|x|/sqrt 2) / 2 = e * erfcx(|x|/sqrt 2) / 2
    (the smaller tail, never computed as a difference): Phi(x) = h for x < 0,
    1 - h for x >= 0; phi(x) = e / sqrt(2 pi).  Both accurate to a few ulps
    relative to each element (the usual (1 + erf(x/sqrt 2)) / 2 cancels for x < 0:
    relative error 2e-10 at x = -5, 7 % at x = -8.3, and 0 instead of
    Phi(x) ~ 3e-17 from x = -8.37 on).
    """
    e = _exp_minus_half_square(x)
    h = 0.5 * e * _erfcx(np.abs(x) * SQRT_HALF)
    return np.where(x < 0, h, 1.0 - h), e * INV_SQRT_2PI


def normal_cdf(x):
    """``Phi(x) = P(X <= x)`` for X ~ N(0, 1), element-wise, in x's dtype
    (float32 input is computed in float64 and rounded once).  Accurate to a
    few ulps relative to each element, in both tails (see
    :func:`_normal_cdf_and_density`); NaN gives NaN."""
    x = np.asarray(x)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    return np.asarray(_normal_cdf_and_density(x.astype(np.float64))[0], dtype=dtype)


def _sigmoid_pair(z):
    """``(sigmoid(z), sigmoid(-z))`` (z's shape and dtype), the second being
    1 - sigmoid(z) without the cancellation of that difference, and neither
    overflowing: with e = exp(-|z|) in (0, 1], sigmoid(z) = 1/(1 + e) for
    z >= 0 and e/(1 + e) for z < 0, and the mirror image for sigmoid(-z).
    NaN gives (NaN, NaN)."""
    e = np.exp(-np.abs(z))
    d = 1 + e
    pos = z >= 0
    one = z.dtype.type(1)
    return np.where(pos, one, e) / d, np.where(pos, e, one) / d


# ---------------------------------------------------------------------------
# GELU
# ---------------------------------------------------------------------------
#: sqrt(2/pi) and the cubic coefficient of the tanh approximation (PyTorch's constants).
GELU_TANH_SCALE = 0.7978845608028654
GELU_TANH_CUBIC = 0.044715
#: |x| beyond which the tanh-GELU's sigmoid(2u) is exactly 0 or 1 in float32 and float64 (11 and 22
#: would do); u(x) and u'(x) are evaluated at x clipped to it, so x^3 never overflows.
GELU_TANH_CLIP = 30.0


def gelu_forward(x, approximate="none"):
    """``y = x * Phi(x)``, Phi the standard normal CDF (``approximate="none"``), or
    PyTorch's tanh approximation (``"tanh"``)::

        y = x/2 * (1 + tanh(u)) = x * sigmoid(2u),   u = sqrt(2/pi) * (x + 0.044715 x^3)

    x, y: any shape, same.  Backward needs x.

    Exact form: Phi(x) = erfc(-x/sqrt 2) / 2 from a Chebyshev series of
    erfcx, in float64 (float32 input is computed in float64 and rounded
    once): y is within a few ulps of x Phi(x) for every x, including the
    negative tail, where PyTorch's x/2 (1 + erf(x/sqrt 2)) cancels (its
    relative error is 2e-10 at x = -5, 7 % at x = -8.3; it gives 0 from
    x = -8.37 on, where y is -2.4e-16 .. -1e-308 until it underflows near
    x = -38.5).
    Tanh form, in x's dtype: x sigmoid(2u) is the same function as
    x/2 (1 + tanh u) without the cancellation of 1 + tanh u for u << 0.
    """
    if approximate == "none":
        xd = x.astype(np.float64, copy=False)
        with np.errstate(invalid="ignore"):                   # -inf * Phi(-inf) = -inf * 0 = NaN, as PyTorch
            y = xd * _normal_cdf_and_density(xd)[0]
        return np.asarray(y, dtype=x.dtype)
    if approximate == "tanh":
        dt = x.dtype.type
        xc = np.clip(x, dt(-GELU_TANH_CLIP), dt(GELU_TANH_CLIP))
        u = dt(GELU_TANH_SCALE) * (xc + dt(GELU_TANH_CUBIC) * (xc * xc * xc))
        s = _sigmoid_pair(dt(2) * u)[0]
        with np.errstate(invalid="ignore"):
            return np.asarray(x * s)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu_backward(dy, x, approximate="none"):
    """``dx = dy * f'(x)``; dy, x, dx: x's shape.

    Exact form:  f'(x) = Phi(x) + x phi(x),  phi(x) = exp(-x^2/2) / sqrt(2 pi)
    (in float64, with the same Phi and an exp(-x^2/2) accurate for large x).

    Tanh form, with s = sigmoid(2u) and 1 - s = sigmoid(-2u) (no cancellation):
    d/dx [x s] = s + x * 2 s (1 - s) * u'(x),   u'(x) = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    (1 + tanh u = 2s and 1 - tanh^2 u = 4 s (1 - s)).

    For finite x both are finite: x phi(x) and s (1 - s) x are 0 where phi
    and s (1 - s) underflow.  At x = +-inf they are inf * 0 = NaN, as in PyTorch.
    """
    if approximate == "none":
        xd = x.astype(np.float64, copy=False)
        cdf, pdf = _normal_cdf_and_density(xd)
        with np.errstate(invalid="ignore"):                   # x = +-inf: inf * 0, as PyTorch
            dx = dy * (cdf + xd * pdf)
        return np.asarray(dx, dtype=x.dtype)
    if approximate == "tanh":
        dt = x.dtype.type
        xc = np.clip(x, dt(-GELU_TANH_CLIP), dt(GELU_TANH_CLIP))
        x2 = xc * xc
        u = dt(GELU_TANH_SCALE) * (xc + dt(GELU_TANH_CUBIC) * (x2 * xc))
        du = dt(GELU_TANH_SCALE) * (dt(1) + dt(3 * GELU_TANH_CUBIC) * x2)
        s, s_minus = _sigmoid_pair(dt(2) * u)
        with np.errstate(invalid="ignore"):
            return np.asarray(dy * (s + dt(2) * s * s_minus * x * du))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


# ---------------------------------------------------------------------------
# ELU, SiLU, Softplus
# ---------------------------------------------------------------------------
def elu_forward(x, alpha=1.0):
    """``y = x`` for x > 0, ``alpha * (exp(x) - 1)`` for x <= 0 (expm1: exact
    near 0, where exp(x) - 1 cancels).  x, y: any shape, same.  Backward needs x.
    (exp sees min(x, 0): no overflow for large x; NaN stays NaN.)"""
    a = x.dtype.type(alpha)
    return np.asarray(np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))))


def elu_backward(dy, x, alpha=1.0):
    """``f'(x) = 1`` for x > 0, ``alpha * exp(x)`` for x <= 0; dy, x, dx: x's shape.

    From x, not from the output: alpha exp(x) = y + alpha would cancel for
    x << 0 (at x = -30 the relative error would be 1e-3).  As PyTorch's, the
    test is ``x <= 0``, so a NaN input passes dy on (f' = 1) and x = 0 gets alpha.
    """
    a = x.dtype.type(alpha)
    return np.asarray(np.where(x <= 0, dy * a * np.exp(np.minimum(x, 0)), dy))


def silu_forward(x):
    """``y = x * sigmoid(x)`` (SiLU, or swish), with the overflow-free sigmoid.
    x, y: any shape, same.  Backward needs x.  y(-inf) = -inf * 0 = NaN, as PyTorch."""
    s = _sigmoid_pair(x)[0]
    with np.errstate(invalid="ignore"):
        return np.asarray(x * s)


def silu_backward(dy, x):
    """``f'(x) = s (1 + x (1 - s))``, s = sigmoid(x), with 1 - s = sigmoid(-x)
    computed directly (no cancellation); dy, x, dx: x's shape."""
    s, s_minus = _sigmoid_pair(x)
    with np.errstate(invalid="ignore"):                       # x = +-inf: inf * 0 = NaN, as PyTorch
        return np.asarray(dy * s * (1 + x * s_minus))


def softplus_forward(x, beta=1.0, threshold=20.0):
    """``y = log(1 + exp(beta x)) / beta``, and ``y = x`` where beta x > threshold
    (PyTorch's switch to the linear asymptote).  x, y: any shape, same.
    Backward needs x.

    With z = beta x: log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)), so exp
    never overflows, whatever the threshold (PyTorch's log1p(exp(z)) gives
    inf for z > 709 in float64, 88 in float32, when the threshold lets such z
    through) and nothing cancels for z << 0 (log1p).
    """
    dt = x.dtype.type
    b, th = dt(beta), dt(threshold)
    z = x * b
    soft = (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))) / b
    return np.asarray(np.where(z > th, x, soft))


def softplus_backward(dy, x, beta=1.0, threshold=20.0):
    """``f'(x) = sigmoid(beta x)`` (= exp(z) / (1 + exp(z)), z = beta x), and 1
    where z > threshold; dy, x, dx: x's shape.  The sigmoid is overflow-free."""
    dt = x.dtype.type
    z = x * dt(beta)
    return np.asarray(np.where(z > dt(threshold), dy, dy * _sigmoid_pair(z)[0]))


# ---------------------------------------------------------------------------
# Hardtanh
# ---------------------------------------------------------------------------
def hardtanh_forward(x, min_val=-1.0, max_val=1.0):
    """``y = min(max(x, min_val), max_val)`` (NaN stays NaN).  Returns y and the
    mask ``not (x <= min_val or x >= max_val)`` (bool, x's shape: true strictly
    inside, and for NaN), all that backward needs.  min_val and max_val are
    cast to x's dtype first (as PyTorch: a float32 x equal to float32(0.1)
    lies *on* the bound 0.1)."""
    dt = x.dtype.type
    lo, hi = dt(min_val), dt(max_val)
    mask = np.logical_not((x <= lo) | (x >= hi))
    return np.asarray(np.clip(x, lo, hi)), np.asarray(mask)


def hardtanh_backward(dy, mask):
    """``f'(x) = 1`` strictly inside (min_val, max_val), 0 on and beyond the
    bounds (PyTorch's convention at the kinks); a NaN input passes dy on.
    ``dx = dy * mask`` (0 also where dy is inf or NaN outside, as PyTorch).
    dy: x's shape; mask: x's shape, bool (from the forward); dx: x's shape."""
    return masked(dy, mask)


# ---------------------------------------------------------------------------
# Softmax and log-softmax along a dimension
# ---------------------------------------------------------------------------
def softmax_dim(dim, ndim, owner="softmax", stacklevel=2):
    """``dim`` normalised to ``0 <= dim < max(ndim, 1)`` for an ndim-d input.

    None follows PyTorch's deprecated implicit choice (dim 0 for 0-, 1- and
    3-d input, else 1), with a UserWarning (``stacklevel`` as for
    warnings.warn, counted from the caller); an integer must lie in
    [-max(ndim, 1), max(ndim, 1) - 1] (a 0-d input counts as one dimension,
    as in PyTorch), else ValueError; anything else is an ArgumentTypeError."""
    if dim is None:
        dim = 0 if ndim in (0, 1, 3) else 1
        warnings.warn(f"{owner}(dim=None) chose dim={dim} for a {ndim}-d input (PyTorch's deprecated rule: dim 0 "
                      f"for 0-, 1- and 3-d input, else 1); pass dim explicitly", UserWarning,
                      stacklevel=stacklevel + 1)
        return dim
    dim = integer("dim", dim, owner=owner)
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ValueError(f"{owner}: dim={dim} is out of range for a {ndim}-d input (dim must be in "
                         f"[{-n}, {n - 1}])")
    return dim % n


def _at_least_1d(x):
    """x, or a 0-d x as shape (1,) (its softmax is 1, its log-softmax 0)."""
    return x.reshape(1) if x.ndim == 0 else x


def softmax_forward(x, dim):
    """``y_i = exp(x_i - m) / sum_j exp(x_j - m)`` along ``dim``, m = max_j x_j.

    x, y: any shape, same; the sum and the max run over dim (keepdims), so
    every exponent is <= 0 (no overflow) and the sum is >= 1.  A slice
    holding NaN or +inf, or only -inf, gives NaN, as PyTorch.  Backward needs y.
    """
    dim = softmax_dim(dim, x.ndim)
    if x.size == 0:
        return x.copy()
    xs = _at_least_1d(x)
    with np.errstate(invalid="ignore"):                       # inf - inf = NaN, as PyTorch
        e = np.exp(xs - xs.max(axis=dim, keepdims=True))
        return (e / e.sum(axis=dim, keepdims=True)).reshape(x.shape)


def softmax_backward(dy, y, dim):
    """``dx = y * (dy - sum_dim(dy * y))``; dy, y, dx: x's shape.

    The Jacobian of a softmax slice is dy_i/dx_j = y_i (1[i = j] - y_j), so
    dx_j = sum_i dy_i y_i (1[i = j] - y_j) = y_j (dy_j - sum_i dy_i y_i).
    """
    dim = softmax_dim(dim, y.ndim)
    if y.size == 0:
        return dy.copy()
    ys, dys = _at_least_1d(y), _at_least_1d(dy)
    return (ys * (dys - (dys * ys).sum(axis=dim, keepdims=True))).reshape(y.shape)


def log_softmax_forward(x, dim):
    """``y_i = x_i - m - log(sum_j exp(x_j - m))`` along ``dim``, m = max_j x_j
    (log softmax without overflow, and without the log(0) = -inf that
    log(softmax(x)) gives where a probability underflows).  x, y: any shape,
    same.  Backward needs y.

    The sum is 1 (the maximum's term, exp(0)) plus the rest r, and
    log(1 + r) is computed as log1p(r): where the maximum dominates (r ~ 1e-11,
    a confident prediction) log(sum) would keep only the rounding of 1 + r,
    and the largest y_i (= -log(1 + r)) would be off by 1e-16 absolute, 1e-5
    relative (as PyTorch's is).  r sums the terms below 1, plus one for every
    further term equal to 1 (ties of the maximum); a NaN term stays in r.
    """
    dim = softmax_dim(dim, x.ndim)
    if x.size == 0:
        return x.copy()
    xs = _at_least_1d(x)
    with np.errstate(invalid="ignore"):                       # inf - inf = NaN, as PyTorch
        shifted = xs - xs.max(axis=dim, keepdims=True)        # <= 0, and exactly 0 at the maximum
        e = np.exp(shifted)
        ones = (e == 1).sum(axis=dim, keepdims=True) - 1      # ties of the maximum, beyond the first
        rest = np.where(e >= 1, e.dtype.type(0), e).sum(axis=dim, keepdims=True) + ones.astype(e.dtype)
        return (shifted - np.log1p(rest)).reshape(x.shape)


def log_softmax_backward(dy, y, dim):
    """``dx = dy - exp(y) * sum_dim(dy)``; dy, y, dx: x's shape.

    dy_i/dx_j = 1[i = j] - softmax_j, so dx_j = dy_j - softmax_j sum_i dy_i,
    with softmax = exp(y) from the saved output.
    """
    dim = softmax_dim(dim, y.ndim)
    if y.size == 0:
        return dy.copy()
    ys, dys = _at_least_1d(y), _at_least_1d(dy)
    return (dys - np.exp(ys) * dys.sum(axis=dim, keepdims=True)).reshape(y.shape)
