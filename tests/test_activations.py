"""GELU, ELU, SiLU, Softplus, Hardtanh, Softmax and LogSoftmax: PyTorch 2.13
parity (float64 and float32, forward and backward, wide input ranges, around
the kinks and thresholds, special values), the numba kernels against the
NumPy reference, accuracy against mpmath, finite differences, save/load, and
bad hyper-parameters.

How parity is measured.  An element that PyTorch's formula forms as a sum or
difference of larger terms (GELU's x/2 (1 + erf), the softmax backward's
y (dy - sum dy y)) is compared relative to the sum of those terms'
magnitudes, the project's convention for sums (see numpy_ops); every other
element relative to its own value.  Where PyTorch's formula cancels (GELU's
negative tail) its own value is the inaccurate one, so accuracy there is
checked against mpmath instead.  Run with ``-s`` to see the figures.
"""
import json
import math
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import backend
from nnumpy.functional import activation as FA

BACKENDS = ["numpy", "numba"]
TOL = {np.float64: 1e-12, np.float32: 1e-5}
TINY = np.finfo(np.float64).tiny


@pytest.fixture(params=BACKENDS)
def on_backend(request):
    if request.param not in backend.available_backends():
        pytest.skip(f"the {request.param} backend is not available")
    with backend.use(request.param):
        yield request.param


def numba_kernels():
    pytest.importorskip("numba")
    from nnumpy.backend import numba_act
    return numba_act


# ---------------------------------------------------------------------------
# Inputs: wide ranges, and each activation's kinks and thresholds
# ---------------------------------------------------------------------------
def ulps_around(v, k=3, dtype=np.float64):
    """v and the k representable numbers on each side of it (in dtype)."""
    v = dtype(v)
    out, lo, hi = [v], v, v
    for _ in range(k):
        lo, hi = np.nextafter(lo, dtype(-np.inf)), np.nextafter(hi, dtype(np.inf))
        out += [lo, hi]
    return np.array(out, dtype)


def wide(seed=0, dtype=np.float64):
    """Random numbers at several scales, a grid over [-50, 50], +-1e4 and beyond,
    the GELU's negative tail, and numbers near 0 (every activation's kink)."""
    rng = np.random.default_rng(seed)
    parts = [3 * rng.standard_normal(300), rng.standard_normal(100) * 1e-3, np.linspace(-50, 50, 401),
             np.linspace(-38, -3, 71), [1e4, -1e4, 1e3, -1e3, 300.0, -300.0, 100.0, -100.0],
             ulps_around(0.0), [1e-300, -1e-300, 1e-8, -1e-8, -0.0]]
    return np.concatenate([np.asarray(p, np.float64) for p in parts]).astype(dtype)


def special_points(name, dtype):
    """Inputs right at and around where an activation changes formula."""
    if name == "hardtanh":
        return np.concatenate([ulps_around(-2.0, dtype=dtype), ulps_around(0.5, dtype=dtype),
                               ulps_around(0.1, dtype=dtype)])
    if name == "softplus":                 # beta 2, threshold 5: beta x = 5 at x = 2.5
        return np.concatenate([ulps_around(2.5, dtype=dtype), ulps_around(-2.5, dtype=dtype)])
    if name == "elu":
        return ulps_around(0.0, dtype=dtype)
    return np.array([-0.75179, -1.2785, 0.0], dtype)        # near the roots of f' (GELU, SiLU)


# name -> (nnumpy module, torch function, scale(x, dy, torch) -> (terms of y, terms of dx) or None)
def _gelu_terms(x, dy, torch):
    erf = np.abs(torch.erf(torch.tensor(x / math.sqrt(2))).numpy())
    pdf = np.exp(-0.5 * np.minimum(x * x, 1e300)) / math.sqrt(2 * math.pi)
    return 0.5 * np.abs(x) * (1 + erf), np.abs(dy) * (0.5 * (1 + erf) + np.abs(x) * pdf)


def _gelu_tanh_terms(x, dy, torch):
    xc = np.clip(x, -60, 60)
    u = math.sqrt(2 / math.pi) * (xc + 0.044715 * xc ** 3)
    th = np.abs(np.tanh(u))
    du = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * xc * xc)
    return 0.5 * np.abs(x) * (1 + th), np.abs(dy) * (0.5 * (1 + th) + 0.5 * np.abs(x) * (1 + th * th) * du)


def _silu_terms(x, dy, torch):
    s = 1 / (1 + np.exp(-np.clip(x, -700, 700)))
    return None, np.abs(dy) * s * (1 + np.abs(x) * (1 + s))


ELEMENTWISE = {
    "gelu": (lambda: nnp.GELU(), lambda F, t: F.gelu(t), _gelu_terms),
    "gelu-tanh": (lambda: nnp.GELU(approximate="tanh"), lambda F, t: F.gelu(t, approximate="tanh"),
                  _gelu_tanh_terms),
    "elu": (lambda: nnp.ELU(alpha=0.7), lambda F, t: F.elu(t, 0.7), None),
    "elu-negative-alpha": (lambda: nnp.ELU(alpha=-1.5), lambda F, t: F.elu(t, -1.5), None),
    "silu": (lambda: nnp.SiLU(), lambda F, t: F.silu(t), _silu_terms),
    "softplus": (lambda: nnp.Softplus(beta=2.0, threshold=5.0), lambda F, t: F.softplus(t, 2.0, 5.0), None),
    "softplus-default": (lambda: nnp.Softplus(), lambda F, t: F.softplus(t), None),
    "hardtanh": (lambda: nnp.Hardtanh(-2.0, 0.5), lambda F, t: F.hardtanh(t, -2.0, 0.5), None),
    "hardtanh-default": (lambda: nnp.Hardtanh(), lambda F, t: F.hardtanh(t), None),
}


def torch_run(torch, tfn, x, dy):
    """PyTorch's output and input gradient for upstream gradient dy."""
    xt = torch.tensor(x, requires_grad=True)
    yt = tfn(torch.nn.functional, xt)
    yt.backward(torch.tensor(dy))
    return yt.detach().numpy(), xt.grad.numpy()


def ours_run(module, x, dy):
    y = module(x)
    return y, module.backward(dy)


def max_error(ours, theirs, scale=None, what=""):
    """max |ours - theirs| / scale (scale: |theirs| by default), after checking
    that both are finite at the same places (and equal where not) and equal
    where scale is 0.  Differences within the subnormal range of ``ours``'
    dtype count as none (there a value holds fewer bits, and PyTorch's float32
    formulas flush some to 0 through an overflow: x / (1 + exp(-x)) at x = -100)."""
    tiny = np.finfo(np.asarray(ours).dtype).tiny
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, what
    assert np.array_equal(np.isfinite(ours), np.isfinite(theirs)), f"{what}: finite in one, not the other"
    np.testing.assert_array_equal(ours[~np.isfinite(ours)], theirs[~np.isfinite(theirs)], err_msg=what)
    fin = np.isfinite(ours)
    scale = np.abs(theirs) if scale is None else np.maximum(np.asarray(scale, np.float64), np.abs(theirs))
    diff = np.abs(ours - theirs)[fin]
    diff[diff < tiny] = 0
    s = np.broadcast_to(scale, ours.shape)[fin]
    zero = s == 0
    assert np.all(diff[zero] == 0), f"{what}: differs where the exact value is 0: {diff[zero].max()}"
    return float(np.max(diff[~zero] / s[~zero])) if np.any(~zero) else 0.0


def record(key, value):
    """Show a measured figure (visible with pytest -s)."""
    print(f"{key}: {value:.3g}")


# ---------------------------------------------------------------------------
# PyTorch parity, element-wise activations
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_match_torch(torch, on_backend, name, dtype):
    make, tfn, terms = ELEMENTWISE[name]
    x = np.concatenate([wide(1, dtype), special_points(name.split("-")[0], dtype)])
    dy = np.random.default_rng(2).standard_normal(x.shape).astype(dtype)
    y, dx = ours_run(make(), x, dy)
    assert y.dtype == dtype and dx.dtype == dtype
    yt, dxt = torch_run(torch, tfn, x, dy)
    sy, sdx = terms(x.astype(np.float64), dy.astype(np.float64), torch) if terms else (None, None)
    ey = max_error(y, yt, sy, f"{name} forward")
    edx = max_error(dx, dxt, sdx, f"{name} backward")
    record(f"{name} {np.dtype(dtype).name} forward vs torch", ey)
    record(f"{name} {np.dtype(dtype).name} backward vs torch", edx)
    assert ey <= TOL[dtype] and edx <= TOL[dtype]


@pytest.mark.parametrize("name", ["gelu", "gelu-tanh", "silu"])
def test_where_torch_does_not_cancel_the_match_is_per_element(torch, on_backend, name):
    """Away from the negative tail (where PyTorch's 1 + erf and 1 + tanh cancel)
    and from the roots of f', each element is within 1e-12 of PyTorch's, relative to itself."""
    make, tfn, _ = ELEMENTWISE[name]
    x = np.concatenate([np.linspace(-3, 50, 2001), [1e3, 1e4]])
    x = x[(np.abs(x + 0.7518) > 0.05) & (np.abs(x + 1.2785) > 0.05)]
    dy = np.random.default_rng(3).standard_normal(x.shape)
    y, dx = ours_run(make(), x, dy)
    yt, dxt = torch_run(torch, tfn, x, dy)
    ey, edx = max_error(y, yt), max_error(dx, dxt)
    record(f"{name} float64 per-element forward vs torch (x >= -3)", ey)
    record(f"{name} float64 per-element backward vs torch (x >= -3, off the root of f')", edx)
    assert ey <= 1e-12 and edx <= 1e-12


SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_special_values_as_torch(torch, on_backend, name, dtype):
    """NaN gives NaN (and the gradient PyTorch gives: NaN, or dy for ELU and
    Hardtanh); +-inf give PyTorch's values (GELU(-inf) = NaN, inf * 0).  One
    documented exception: PyTorch's float32 GELU(+inf) is NaN (its float64 one
    is inf, as is ours in both)."""
    make, tfn, _ = ELEMENTWISE[name]
    x = SPECIAL.astype(dtype)
    dy = np.linspace(0.5, 2, x.size).astype(dtype)
    y, dx = ours_run(make(), x, dy)
    yt, dxt = torch_run(torch, tfn, x, dy)
    if name == "gelu" and dtype == np.float32:
        assert np.isnan(yt[1]) and y[1] == np.inf
        yt = yt.copy()
        yt[1] = np.inf
    tol = TOL[dtype]
    for ours, theirs in ((y, yt), (dx, dxt)):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_large_finite_inputs_never_overflow(on_backend, dtype):
    """Where PyTorch's formula overflows (inf or NaN) although the result is
    finite, ours gives the exact result: Softplus with a large threshold, the
    tanh-GELU's derivative for huge |x|, the exact GELU's for |x| > 1e154."""
    big = 1e20 if dtype == np.float32 else 1e200
    x = np.array([big, -big, 80.0, -80.0], dtype)
    m = nnp.Softplus(beta=1.0, threshold=1e6)
    y = m(np.array([800.0, 100.0], dtype) if dtype == np.float64 else np.array([100.0, 90.0], dtype))
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y, [800.0, 100.0] if dtype == np.float64 else [100.0, 90.0])
    np.testing.assert_array_equal(m.backward(np.ones(2, dtype)), [1.0, 1.0])
    for approximate in ("none", "tanh"):
        g = nnp.GELU(approximate)
        np.testing.assert_array_equal(g(x), [x[0], -0.0, 80.0, -0.0])
        np.testing.assert_array_equal(g.backward(np.ones_like(x)), [1.0, 0.0, 1.0, 0.0])
    s = nnp.SiLU()
    np.testing.assert_allclose(s(x), [x[0], -0.0, 80.0, -80.0 * math.exp(-80)], rtol=TOL[dtype], atol=0)
    np.testing.assert_allclose(s.backward(np.ones_like(x)), [1.0, 0.0, 1.0, -79 * math.exp(-80)],
                               rtol=TOL[dtype], atol=0)


# ---------------------------------------------------------------------------
# PyTorch parity, softmax and log-softmax
# ---------------------------------------------------------------------------
def softmax_terms(x, y, dy, dim, log):
    """(terms of y, terms of dx) in PyTorch's formulas (see the module docstring).
    Log-softmax: y = (x - m) - log(s), and log(s) of a rounded s (s >= 1, the
    maximum's term being 1) is good to eps absolute, so that term counts as
    1 + |log s| (ours is accurate relative to y itself: see the mpmath test)."""
    if not log:
        return None, np.abs(y) * (np.abs(dy) + np.sum(np.abs(dy * y), axis=dim, keepdims=True))
    m = np.max(x, axis=dim, keepdims=True)
    lse = np.log(np.sum(np.exp(x - m), axis=dim, keepdims=True))
    return (np.abs(x - m) + np.abs(lse) + 1,
            np.abs(dy) + np.exp(y) * np.sum(np.abs(dy), axis=dim, keepdims=True))


SOFTMAX_SHAPES = [((7,), [0, -1]), ((5, 9), [0, 1, -1, -2]), ((3, 4, 6), [0, 1, 2, -1]),
                  ((2, 3, 4, 5), [0, 1, 2, 3, -3]), ((4, 1), [1]), ((1, 6), [0])]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_matches_torch_along_every_dim(torch, on_backend, log, dtype):
    rng = np.random.default_rng(4)
    for shape, dims in SOFTMAX_SHAPES:
        for scale in (1.0, 10.0, 1e4):
            x = (scale * rng.standard_normal(shape)).astype(dtype)
            dy = rng.standard_normal(shape).astype(dtype)
            for dim in dims:
                m = nnp.LogSoftmax(dim=dim) if log else nnp.Softmax(dim=dim)
                y, dx = ours_run(m, x, dy)
                tfn = (lambda F, t: F.log_softmax(t, dim)) if log else (lambda F, t: F.softmax(t, dim))
                yt, dxt = torch_run(torch, tfn, x, dy)
                sy, sdx = softmax_terms(x.astype(np.float64), yt.astype(np.float64), dy.astype(np.float64),
                                        dim, log)
                what = f"{type(m).__name__}(dim={dim}) on {shape} x {scale}"
                ey, edx = max_error(y, yt, sy, what), max_error(dx, dxt, sdx, what)
                assert ey <= TOL[dtype] and edx <= TOL[dtype], what
                name = "log_softmax" if log else "softmax"
                record(f"{name} {np.dtype(dtype).name} forward vs torch", ey)
                record(f"{name} {np.dtype(dtype).name} backward vs torch", edx)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_special_values_as_torch(torch, on_backend, log):
    """A slice holding NaN or +inf, or only -inf, is NaN; -inf entries among
    finite ones give probability 0 (log-probability -inf)."""
    inf, nan = np.inf, np.nan
    x = np.array([[inf, 0, 1], [-inf, 0, 1], [-inf, -inf, -inf], [nan, 0, 1], [inf, inf, 0], [0, 0, 0]])
    dy = np.linspace(-1, 1, x.size).reshape(x.shape)
    m = nnp.LogSoftmax(1) if log else nnp.Softmax(1)
    y, dx = ours_run(m, x, dy)
    yt, dxt = torch_run(torch, (lambda F, t: F.log_softmax(t, 1)) if log else (lambda F, t: F.softmax(t, 1)), x, dy)
    for ours, theirs in ((y, yt), (dx, dxt)):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15, equal_nan=True)


def test_softmax_degenerate_shapes(torch, on_backend):
    """0-d input (softmax 1, log-softmax 0, gradient 0), empty inputs, and size-1 slices."""
    for log in (False, True):
        tf = torch.log_softmax if log else torch.softmax
        for x, dim in ((np.array(3.0), 0), (np.array(3.0), -1), (np.zeros((2, 0)), 1), (np.zeros((0, 3)), 1),
                       (np.ones((3, 1)), 1)):
            m = nnp.LogSoftmax(dim) if log else nnp.Softmax(dim)
            y = m(x)
            dy = np.ones_like(y)
            dx = m.backward(dy)
            xt = torch.tensor(x, requires_grad=True)
            yt = tf(xt, dim)
            yt.backward(torch.tensor(dy))
            assert y.shape == x.shape and type(y) is np.ndarray and dx.shape == x.shape
            np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-15, atol=0)
            np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
def test_dim_none_follows_torch_legacy_rule_with_a_warning(torch, on_backend, ndim):
    x = np.random.default_rng(5).standard_normal((3, 4, 2, 5)[:ndim])
    for ours, theirs in ((nnp.Softmax(), torch.nn.Softmax()), (nnp.LogSoftmax(), torch.nn.LogSoftmax())):
        with pytest.warns(UserWarning, match=r"dim=None\) chose dim="):
            y = ours(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yt = theirs(torch.tensor(x)).numpy()
        np.testing.assert_allclose(y, yt, rtol=1e-12, atol=1e-300)
        ours.backward(np.ones_like(y))                  # uses the dim the forward chose, silently


# ---------------------------------------------------------------------------
# The numba kernels against the NumPy reference
# ---------------------------------------------------------------------------
KERNEL_CASES = {
    "gelu": (lambda x: (x, "none"), "x"), "gelu-tanh": (lambda x: (x, "tanh"), "x"),
    "elu": (lambda x: (x, 0.7), "x"), "silu": (lambda x: (x,), "x"),
    "softplus": (lambda x: (x, 2.0, 5.0), "x"), "hardtanh": (lambda x: (x, -2.0, 0.5), "mask"),
}


def kernel_inputs(dtype):
    """Odd, strided, Fortran-ordered, size-1, empty and 0-d arrays of wide-range values."""
    w = wide(6, dtype)
    base = w[: 31 * 17].reshape(31, 17)
    return [w, base, base[:, ::3], np.asfortranarray(base), base[::-2, 1:2], w[:1], w[:0], np.array(w[5]),
            w[: 2 * 3 * 4 * 5].reshape(2, 3, 4, 5)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(KERNEL_CASES))
def test_numba_kernels_match_the_reference(name, dtype):
    K = numba_kernels()
    args_of, saved = KERNEL_CASES[name]
    fwd = name.split("-")[0] + "_forward"
    bwd = name.split("-")[0] + "_backward"
    worst = 0.0
    for x in kernel_inputs(dtype):
        args = args_of(x)
        dy = np.random.default_rng(7).standard_normal(x.shape).astype(dtype)
        ref, fast = getattr(FA, fwd)(*args), getattr(K, fwd)(*args)
        if saved == "mask":
            (ref, ref_mask), (fast, fast_mask) = ref, fast
            np.testing.assert_array_equal(fast_mask, ref_mask)
            bargs = (dy, ref_mask)
        else:
            bargs = (dy, x) + args[1:]
        ref_dx, fast_dx = getattr(FA, bwd)(*bargs), getattr(K, bwd)(*bargs)
        for a, b in ((fast, ref), (fast_dx, ref_dx)):
            assert type(a) is np.ndarray and a.shape == b.shape and a.dtype == b.dtype == dtype
            worst = max(worst, max_error(a, b, what=f"{name} {x.shape}"))
    record(f"{name} {np.dtype(dtype).name} numba vs numpy (per element)", worst)
    assert worst <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_numba_softmax_kernels_match_the_reference(log, dtype):
    K = numba_kernels()
    fwd, bwd = ("log_softmax_forward", "log_softmax_backward") if log else ("softmax_forward", "softmax_backward")
    rng = np.random.default_rng(8)
    worst = 0.0
    for x in kernel_inputs(dtype):
        x = x / np.abs(x).max() * 30 if x.size else x          # wide but with several non-negligible terms
        for dim in range(-max(x.ndim, 1), max(x.ndim, 1)):
            dy = rng.standard_normal(x.shape).astype(dtype)
            y_ref, y_fast = getattr(FA, fwd)(x, dim), getattr(K, fwd)(x, dim)
            dx_ref, dx_fast = getattr(FA, bwd)(dy, y_ref, dim), getattr(K, bwd)(dy, y_ref, dim)
            x64, y64, dy64 = (a.astype(np.float64) for a in (x, y_ref, dy))
            sy, sdx = softmax_terms(x64, y64, dy64, dim % x.ndim, log) if x.ndim and x.size else (None, None)
            for a, b, s in ((y_fast, y_ref, sy), (dx_fast, dx_ref, sdx)):
                assert type(a) is np.ndarray and a.shape == b.shape and a.dtype == dtype
                worst = max(worst, max_error(a, b, s, f"{fwd} {x.shape} dim={dim}"))
    record(f"{'log_softmax' if log else 'softmax'} {np.dtype(dtype).name} numba vs numpy", worst)
    assert worst <= TOL[dtype]


KERNEL_CACHE_STATS = """
import json
from numba.core.dispatcher import Dispatcher
import nnumpy.backend.numba_act as k
k.warm_up()
print(json.dumps({name: {"hits": sum(f.stats.cache_hits.values()), "misses": sum(f.stats.cache_misses.values()),
                         "inlined": f.targetoptions.get("inline") == "always"}
                  for name, f in vars(k).items() if isinstance(f, Dispatcher)}))
"""


def test_numba_act_kernels_are_cached_on_disk(tmp_path):
    """A new process compiles every kernel once into an empty NUMBA_CACHE_DIR;
    the next loads every one from it (cache=True on each)."""
    numba_kernels()
    package_root = os.path.dirname(os.path.dirname(nnp.__file__))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}

    def stats():
        out = subprocess.run([sys.executable, "-c", KERNEL_CACHE_STATS], env=env, check=True,
                             capture_output=True, text=True, timeout=600).stdout
        return {n: s for n, s in json.loads(out.splitlines()[-1]).items() if not s["inlined"]}

    cold = stats()
    assert cold and all(s["misses"] and not s["hits"] for s in cold.values()), cold
    warm = stats()
    assert warm.keys() == cold.keys()
    assert all(s["hits"] and not s["misses"] for s in warm.values()), warm


# ---------------------------------------------------------------------------
# Accuracy of the exact GELU (float64) against mpmath
# ---------------------------------------------------------------------------
def test_erfcx_coefficients_are_the_chebyshev_interpolant():
    """ERFCX_CHEBYSHEV is what its comment says: erfcx(z)/t, t = 2/(2 + z),
    interpolated at 64 Chebyshev nodes (mpmath, 50 digits), first 28 coefficients."""
    mp = pytest.importorskip("mpmath")
    with mp.workdps(50):
        def g(y):
            t = (y + 1) / 2
            if t == 0:
                return 1 / (2 * mp.sqrt(mp.pi))
            z = 2 * (1 - t) / t
            return mp.exp(z * z) * mp.erfc(z) / t
        nodes = 64
        theta = [mp.pi * (j + mp.mpf(1) / 2) / nodes for j in range(nodes)]
        gs = [g(mp.cos(th)) for th in theta]
        c = [2 * mp.fsum(gj * mp.cos(k * th) for gj, th in zip(gs, theta)) / nodes for k in range(28)]
        c[0] /= 2
    np.testing.assert_array_equal(FA.ERFCX_CHEBYSHEV, np.array([float(v) for v in c]))


def test_gelu_and_normal_cdf_are_accurate_to_a_few_ulps():
    """Against mpmath at 40 digits, relative to each element whose value is a
    normal float64 (below, subnormals hold fewer bits); f' relative to
    Phi + |x| phi (it has a root near x = -0.75, where any formula cancels)."""
    mp = pytest.importorskip("mpmath")
    x = np.concatenate([np.linspace(-37.5, 9, 1861), -np.geomspace(1e-300, 37, 120), np.geomspace(1e-300, 40, 80),
                        ulps_around(-0.7518), [-8.3, -5.0, -1.0, 1.0]])
    with mp.workdps(40):
        cdf = np.array([float(mp.ncdf(v)) for v in x])
        y = np.array([float(mp.mpf(v) * mp.ncdf(v)) for v in x])
        pdf_terms = np.array([float(mp.ncdf(v) + abs(mp.mpf(v)) * mp.npdf(v)) for v in x])
        dy = np.array([float(mp.ncdf(v) + mp.mpf(v) * mp.npdf(v)) for v in x])
    normal = (np.abs(y) >= TINY) & (np.abs(cdf) >= TINY)
    kernels = [("numpy", FA)] + ([("numba", numba_kernels())] if "numba" in backend.available_backends() else [])
    for where, K in kernels:
        e_cdf = max_error(FA.normal_cdf(x)[normal], cdf[normal])
        e_y = max_error(K.gelu_forward(x)[normal], y[normal])
        e_dy = max_error(K.gelu_backward(np.ones_like(x), x), dy, pdf_terms)
        record("normal_cdf vs mpmath (relative)", e_cdf)
        record(f"gelu {where} forward vs mpmath (relative)", e_y)
        record(f"gelu {where} backward vs mpmath (relative to Phi + |x| phi)", e_dy)
        assert e_cdf < 1e-15 and e_y < 3e-15 and e_dy < 1e-15
    # PyTorch's formula x/2 (1 + erf(x/sqrt 2)), for comparison: 7 % off at x = -8.3, 0 from x = -8.37 on
    assert x[-4] == -8.3 and abs(x[-4] * 0.5 * (1 + math.erf(x[-4] / math.sqrt(2))) / y[-4] - 1) > 0.05
    assert -8.5 * 0.5 * (1 + math.erf(-8.5 / math.sqrt(2))) == 0


@pytest.mark.parametrize("name", ["elu", "silu", "softplus"])
def test_smooth_activations_are_accurate_to_a_few_ulps(name):
    """The other smooth ones, against mpmath (float64, normal results)."""
    mp = pytest.importorskip("mpmath")
    x = np.concatenate([np.linspace(-700, 700, 1401), np.linspace(-40, 40, 801), -np.geomspace(1e-300, 700, 200),
                        np.geomspace(1e-300, 700, 200)])
    with mp.workdps(40):
        if name == "elu":
            f = [float(v if v > 0 else 0.7 * mp.expm1(v)) for v in x]
            d = [float(1 if v > 0 else 0.7 * mp.exp(v)) for v in x]
        elif name == "silu":
            f = [float(mp.mpf(v) / (1 + mp.exp(-v))) for v in x]
            s = [1 / (1 + mp.exp(-v)) for v in x]
            d = [float(si * (1 + mp.mpf(v) * (1 - si))) for v, si in zip(x, s)]
        else:
            f = [float(v if 2 * v > 5 else mp.log1p(mp.exp(2 * mp.mpf(v))) / 2) for v in x]
            d = [float(1 if 2 * v > 5 else 1 / (1 + mp.exp(-2 * mp.mpf(v)))) for v in x]
    f, d = np.array(f), np.array(d)
    args = {"elu": (0.7,), "silu": (), "softplus": (2.0, 5.0)}[name]
    for where in ("numpy", "numba"):
        K = FA if where == "numpy" else numba_kernels()
        y = getattr(K, f"{name}_forward")(x, *args)
        dx = getattr(K, f"{name}_backward")(np.ones_like(x), x, *args)
        ok_y, ok_d = np.abs(f) >= TINY, np.abs(d) >= TINY
        scale_d = None
        if name == "silu":             # f' has a root near x = -1.28
            with mp.workdps(40):
                scale_d = np.array([float(si * (1 + abs(mp.mpf(v)) * (1 - si))) for v, si in zip(x, s)])[ok_d]
        e_y, e_d = max_error(y[ok_y], f[ok_y]), max_error(dx[ok_d], d[ok_d], scale_d)
        record(f"{name} {where} vs mpmath forward", e_y)
        record(f"{name} {where} vs mpmath backward", e_d)
        assert e_y < 1e-15 and e_d < 1e-15


def test_log_softmax_is_accurate_to_a_few_ulps():
    """Against mpmath, relative to each element, also the largest log-probability
    of a slice whose maximum dominates (y ~ -1e-11, where log(sum) would be off by
    1e-5 relative); ties of the maximum; both backends."""
    mp = pytest.importorskip("mpmath")
    rng = np.random.default_rng(11)
    rows = [[30.0, 0.9, 3.0, -2.0], [25.0, 25.0, 1.0, -700.0], [0.0, 0.0, 0.0, 0.0], [1e-3, -1e-3, 2e-3, 0.0],
            [5.0, 5.0 - 1e-15, -5.0, 2.0]] + list(3 * rng.standard_normal((20, 4)))
    x = np.array(rows)
    with mp.workdps(40):
        ref = np.array([[float(mp.mpf(v) - mp.log(mp.fsum(mp.exp(mp.mpf(w)) for w in row))) for v in row]
                        for row in x])
    kernels = [("numpy", FA)] + ([("numba", numba_kernels())] if "numba" in backend.available_backends() else [])
    for where, K in kernels:
        for dim, xx, rr in ((1, x, ref), (0, x.T.copy(), ref.T)):
            e = max_error(K.log_softmax_forward(xx, dim), rr)
            record(f"log_softmax {where} vs mpmath (relative, dim={dim})", e)
            assert e < 1e-15


# ---------------------------------------------------------------------------
# Finite differences
# ---------------------------------------------------------------------------
def away_from(points, x, margin=0.05):
    """x with every element at least ``margin`` from each of ``points`` (moved past it)."""
    x = x.copy()
    for p in points:
        near = np.abs(x - p) < margin
        x[near] = p + np.where(x[near] >= p, margin, -margin) * 2
    return x


GRAD_CASES = {
    "gelu": (lambda: nnp.GELU(), ()), "gelu-tanh": (lambda: nnp.GELU("tanh"), ()),
    "elu": (lambda: nnp.ELU(0.5), (0.0,)), "elu-alpha1": (lambda: nnp.ELU(), ()),
    "silu": (lambda: nnp.SiLU(), ()), "softplus": (lambda: nnp.Softplus(2.0, 3.0), (1.5,)),
    "hardtanh": (lambda: nnp.Hardtanh(-1.5, 0.5), (-1.5, 0.5)),
    "softmax": (lambda: nnp.Softmax(dim=1), ()), "softmax-dim0": (lambda: nnp.Softmax(dim=0), ()),
    "log_softmax": (lambda: nnp.LogSoftmax(dim=-1), ()), "log_softmax-dim1-3d": (lambda: nnp.LogSoftmax(1), ()),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradcheck(on_backend, name):
    make, kinks = GRAD_CASES[name]
    shape = (3, 4, 5) if name.endswith("3d") else (6, 7)
    x = away_from(kinks, 2 * np.random.default_rng(9).standard_normal(shape))
    report = nnp.gradcheck(make(), x, tolerance=1e-6)
    assert report, "\n" + str(report)
    assert report.rows[0]["checked"] == x.size and not report.rows[0].get("skipped")


def test_gradcheck_catches_a_wrong_derivative(monkeypatch):
    """The finite-difference test can fail: a GELU whose backward drops the x phi(x) term."""
    monkeypatch.setattr(FA, "gelu_backward", lambda dy, x, approximate="none": dy * FA.normal_cdf(x))
    with backend.use("numpy"):
        report = nnp.gradcheck(nnp.GELU(), np.random.default_rng(0).standard_normal((3, 4)))
    assert not report


# ---------------------------------------------------------------------------
# Hyper-parameters: checks, after construction too; the forward's are used by backward
# ---------------------------------------------------------------------------
BAD = [
    (lambda: nnp.ELU(alpha=float("nan")), "alpha", "nan"),
    (lambda: nnp.ELU(alpha=float("inf")), "alpha", "inf"),
    (lambda: nnp.ELU(alpha="1"), "alpha", "'1'"),
    (lambda: nnp.ELU(alpha=None), "alpha", "None"),
    (lambda: nnp.Softplus(beta=0), "beta", "0"),
    (lambda: nnp.Softplus(beta=-1.0), "beta", "-1.0"),
    (lambda: nnp.Softplus(beta=float("nan")), "beta", "nan"),
    (lambda: nnp.Softplus(threshold=float("inf")), "threshold", "inf"),
    (lambda: nnp.Softplus(threshold=True), "threshold", "True"),
    (lambda: nnp.Hardtanh(min_val=2.0, max_val=1.0), "max_val", "1.0"),
    (lambda: nnp.Hardtanh(min_val=1.0, max_val=1.0), "max_val", "1.0"),
    (lambda: nnp.Hardtanh(min_val=float("nan")), "min_val", "nan"),
    (lambda: nnp.Hardtanh(max_val=float("-inf")), "max_val", "-inf"),
    (lambda: nnp.GELU(approximate="exact"), "approximate", "'exact'"),
    (lambda: nnp.GELU(approximate=None), "approximate", "None"),
    (lambda: nnp.GELU(approximate=True), "approximate", "True"),
    (lambda: nnp.Softmax(dim=1.5), "dim", "1.5"),
    (lambda: nnp.Softmax(dim="1"), "dim", "'1'"),
    (lambda: nnp.LogSoftmax(dim=True), "dim", "True"),
]


@pytest.mark.parametrize("make,name,shown", BAD, ids=[f"{n}={s}" for _, n, s in BAD])
def test_bad_hyper_parameters_are_refused(make, name, shown):
    with pytest.raises((ValueError, TypeError)) as info:
        make()
    assert name in str(info.value) and shown in str(info.value), str(info.value)
    restored = pickle.loads(pickle.dumps(info.value))           # errors survive pickling
    assert type(restored) is type(info.value) and str(restored) == str(info.value)


@pytest.mark.parametrize("make,attr,bad", [
    (lambda: nnp.ELU(0.5), "alpha", float("nan")), (lambda: nnp.Softplus(), "beta", 0.0),
    (lambda: nnp.Hardtanh(-1.0, 1.0), "min_val", 1.0), (lambda: nnp.GELU(), "approximate", "fast"),
    (lambda: nnp.Softmax(1), "dim", 0.5),
])
def test_setting_a_bad_value_later_is_refused_and_changes_nothing(make, attr, bad):
    m = make()
    before = m.get_config()
    with pytest.raises((ValueError, TypeError), match=attr):
        setattr(m, attr, bad)
    assert m.get_config() == before


def test_out_of_range_dim_is_a_clear_error(on_backend):
    for m in (nnp.Softmax(dim=2), nnp.LogSoftmax(dim=-3)):
        with pytest.raises(ValueError, match=r"dim=-?\d+ is out of range for a 2-d input .*\[-2, 1\]"):
            m(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"dim=1 is out of range for a 0-d input"):
        nnp.Softmax(1)(np.array(1.0))


def test_backward_uses_the_forwards_hyper_parameters(on_backend):
    x = np.linspace(-3, 3, 13)
    dy = np.ones_like(x)
    for m, attr, new in ((nnp.ELU(0.5), "alpha", 2.0), (nnp.Softplus(1.0, 20.0), "beta", 3.0),
                         (nnp.Softplus(1.0, 20.0), "threshold", -1.0), (nnp.GELU(), "approximate", "tanh")):
        m(x)
        expected = m.backward(dy)
        m(x)
        setattr(m, attr, new)
        np.testing.assert_array_equal(m.backward(dy), expected)
    x2 = x.reshape(13, 1)
    dy2 = np.linspace(-1, 1, 13).reshape(13, 1)
    s, fresh = nnp.Softmax(0), nnp.Softmax(0)
    s(x2), fresh(x2)
    s.dim = 1
    np.testing.assert_array_equal(s.backward(dy2), fresh.backward(dy2))


def test_setting_a_good_value_changes_what_forward_computes(torch):
    x = np.linspace(-3, 3, 13)
    m = nnp.ELU()
    m.alpha = 0.25
    np.testing.assert_allclose(m(x), torch.nn.functional.elu(torch.tensor(x), 0.25).numpy(), rtol=1e-15)
    h = nnp.Hardtanh()
    h.max_val = 2.0
    np.testing.assert_array_equal(h(x), np.clip(x, -1, 2))


def test_repr_and_config_follow_torch(torch):
    pairs = [(nnp.GELU(), torch.nn.GELU()), (nnp.GELU("tanh"), torch.nn.GELU("tanh")),
             (nnp.ELU(0.5), torch.nn.ELU(0.5)), (nnp.SiLU(), torch.nn.SiLU()),
             (nnp.Softplus(2.0, 10.0), torch.nn.Softplus(2.0, 10.0)),
             (nnp.Hardtanh(-2.0, 3.0), torch.nn.Hardtanh(-2.0, 3.0)),
             (nnp.Softmax(1), torch.nn.Softmax(1)), (nnp.LogSoftmax(), torch.nn.LogSoftmax()),
             (nnp.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1))]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
    assert nnp.Softplus(beta=2).get_config() == {"beta": 2.0, "threshold": 20.0}
    assert nnp.Hardtanh().get_config() == {"min_val": -1.0, "max_val": 1.0}
    assert nnp.Softmax().get_config() == {"dim": None}
    assert nnp.GELU("tanh").get_config() == {"approximate": "tanh"}


# ---------------------------------------------------------------------------
# save / load
# ---------------------------------------------------------------------------
def model_with_every_new_module(dtype):
    return nnp.Sequential(
        nnp.Linear(6, 8, rng=0, dtype=dtype), nnp.GELU(), nnp.Linear(8, 8, rng=1, dtype=dtype),
        nnp.GELU(approximate="tanh"), nnp.ELU(alpha=0.3), nnp.SiLU(), nnp.Softplus(beta=2.5, threshold=7.0),
        nnp.Hardtanh(-0.75, 2.0), nnp.Linear(8, 5, rng=2, dtype=dtype), nnp.Softmax(dim=1), nnp.LogSoftmax(dim=-1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_save_load_round_trip(tmp_path, on_backend, dtype):
    model = model_with_every_new_module(dtype)
    x = np.random.default_rng(10).standard_normal((4, 6)).astype(dtype)
    nnp.save(model, tmp_path / "m.npz")
    loaded = nnp.load(tmp_path / "m.npz")
    assert repr(loaded) == repr(model) and loaded.dtype == dtype
    assert [m.get_config() for m in loaded] == [m.get_config() for m in model]
    y = model(x)
    np.testing.assert_array_equal(loaded(x), y)
    dy = np.ones_like(y)
    np.testing.assert_array_equal(loaded.backward(dy), model.backward(dy))
    nnp.save(nnp.Sequential(nnp.Softmax()), tmp_path / "none.npz")       # dim=None survives as null
    assert nnp.load(tmp_path / "none.npz")[0].dim is None


@pytest.mark.parametrize("kind,config,words", [
    ("Softplus", {"beta": 0}, "beta must be > 0"),
    ("Softplus", {"beta": "1"}, "beta must be a finite number"),
    ("Hardtanh", {"min_val": 1.0, "max_val": -1.0}, "max_val"),
    ("GELU", {"approximate": "fast"}, "approximate must be 'none' or 'tanh'"),
    ("Softmax", {"dim": 1.5}, "dim must be an integer"),
    ("ELU", {"alpha": None}, "alpha must be a finite number"),
    ("SiLU", {"inplace": True}, "unknown key"),
])
def test_bad_configuration_in_a_file_is_refused(tmp_path, kind, config, words):
    path = tmp_path / "m.npz"
    nnp.save(nnp.Sequential(nnp.Linear(2, 2, rng=0), nnp.ReLU()), path)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["__nnumpy__"]))
    meta["architecture"]["children"][1] = {"type": kind, "config": config}
    arrays["__nnumpy__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises(nnp.ModelFileError, match=words):
        nnp.load(path)


# ---------------------------------------------------------------------------
# In an MLP (the Linear runs alone, fused with the identity on numba, the activation after it)
# ---------------------------------------------------------------------------
MLP_ACTIVATIONS = {"gelu": "GELU", "elu": "ELU", "silu": "SiLU", "softplus": "Softplus", "hardtanh": "Hardtanh"}


@pytest.mark.parametrize("act", list(MLP_ACTIVATIONS))
def test_mlp_with_the_new_activations_matches_torch(torch, on_backend, act):
    model = nnp.MLP([6, 9, 8, 4], activation=act, dtype=np.float64, rng=0)
    layers = []
    for m in model:
        if isinstance(m, nnp.Linear):
            t = torch.nn.Linear(m.in_features, m.out_features, dtype=torch.float64)
            with torch.no_grad():
                t.weight.copy_(torch.from_numpy(m.weight.data))
                t.bias.copy_(torch.from_numpy(m.bias.data))
            layers.append(t)
        else:
            assert type(m).__name__ == MLP_ACTIVATIONS[act]
            layers.append(getattr(torch.nn, MLP_ACTIVATIONS[act])())
    tm = torch.nn.Sequential(*layers)
    x = 2 * np.random.default_rng(12).standard_normal((5, 6))
    dy = np.random.default_rng(13).standard_normal((5, 4))
    for _ in range(2):                                   # twice: the reused buffers must not leak between steps
        model.zero_grad()
        y = model(x)
        dx = model.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = tm(xt)
    yt.backward(torch.tensor(dy))
    pairs = [(y, yt.detach()), (dx, xt.grad)] + [(p.grad, tp.grad) for p, tp in zip(model.parameters(), tm.parameters())]
    for a, b in pairs:
        b = b.numpy()
        assert np.isfinite(a).all()
        assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(b))


def test_mlp_with_the_new_activations_saves_and_loads(tmp_path, on_backend):
    model = nnp.MLP([5, 7, 7, 7, 7, 7, 3], activation=list(MLP_ACTIVATIONS), dropout=0.1, rng=1)
    nnp.save(model, tmp_path / "mlp.npz")
    loaded = nnp.load(tmp_path / "mlp.npz")
    assert repr(loaded) == repr(model) and loaded.activations == list(MLP_ACTIVATIONS)
    x = np.random.default_rng(14).standard_normal((4, 5)).astype(np.float32)
    model.eval(), loaded.eval()
    np.testing.assert_array_equal(loaded(x), model(x))
    report = nnp.gradcheck(nnp.MLP([5, 7, 6, 3], activation=["gelu", "silu"], rng=2),
                           np.random.default_rng(15).standard_normal((4, 5)))
    assert report, str(report)
