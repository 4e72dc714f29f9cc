"""The backend switch and the Numba kernels against their NumPy references."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import backend
from nnumpy import functional as F
from nnumpy.backend import numpy_ops as ref

numba_ops = pytest.importorskip("nnumpy.backend.numba_ops", reason="Numba is not installed")

SHAPES = [(1, 1, 1), (7, 13, 5), (1, 784, 10), (1000, 3, 4), (64, 784, 100)]   # (N, K, M)
ACTS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh"]
TOL = {np.float64: 1e-12, np.float32: 1e-5}


def assert_close(actual, expected, tol, scale=None, at=None):
    """Element by element: |actual - expected| <= tol * scale, with scale = |expected|
    (relative to each element) unless given.  For an element that is a sum of terms
    (a GEMM entry, a bias gradient) pass the sum of the terms' absolute values: its
    rounding error is proportional to that, not to the sum, which may cancel.
    ``at``: the inputs (actual's shape), to name the worst element's input.
    Arithmetic in the widest of float64 and the arguments' types."""
    dt = np.result_type(actual, expected, np.float64)
    a, e = np.asarray(actual, dt), np.asarray(expected, dt)
    assert a.shape == e.shape, (a.shape, e.shape)
    err = np.abs(a - e)
    limit = tol * (np.abs(e) if scale is None else np.asarray(scale, dt))
    ok = np.asarray(err <= limit, bool)                         # NaN is never ok
    if not ok.all():
        with np.errstate(divide="ignore", invalid="ignore"):
            excess = np.nan_to_num(np.asarray(err / limit, np.float64), nan=np.inf)
        i = np.unravel_index(np.argmax(np.where(ok, 0.0, excess)), ok.shape)
        where = "" if at is None else f" (input {np.asarray(at)[i]!r})"
        pytest.fail(f"{np.count_nonzero(~ok)} of {ok.size} elements off by more than {tol:g} x scale; "
                    f"worst, {excess[i]:.3g} x the limit: element {i}{where}: {a[i]!r}, expected {e[i]!r}")


def noncontig(a):
    """The same values in a non-contiguous array (every other column of a wider one)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    view = wide[..., ::2]
    assert not view.flags.c_contiguous or a.shape[-1] == 1
    return view


@pytest.mark.parametrize("contiguous", [True, False], ids=["contig", "strided"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_linear_act_kernels_match_reference(shape, act, dtype, contiguous):
    n, k, m = shape
    rng = np.random.default_rng(n * 1000 + k)
    x, W = rng.standard_normal((n, k)).astype(dtype), (rng.standard_normal((m, k)) / np.sqrt(k)).astype(dtype)
    b, dy = rng.standard_normal(m).astype(dtype), rng.standard_normal((n, m)).astype(dtype)
    wrap = (lambda a: a) if contiguous else noncontig
    tol = TOL[dtype]
    y_ref = ref.linear_act_forward(x, W, b, act, 0.1)
    y = numba_ops.linear_act_forward(wrap(x), wrap(W), b, act, 0.1)
    assert y.dtype == dtype

    def slope(v):                                                                   # |f'| through y
        return np.abs(ref.activation_backward(np.ones_like(v), v, act, 0.1))

    # y = f(z) with z = x @ W.T + b, a sum whose rounding is ~ |x| @ |W|.T + |b| (N, M); that reaches
    # y times |f'| (the larger side's, for a kink between them), on top of y's own rounding
    z_terms = np.abs(x) @ np.abs(W).T + np.abs(b)                                   # (N, M)
    assert_close(y, y_ref, tol, np.abs(y_ref) + np.maximum(slope(y_ref), slope(y)) * z_terms)
    abs_dz = np.abs(ref.activation_backward(dy, y_ref, act, 0.1))                  # (N, M)
    gw0, gb0 = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal(m).astype(dtype)
    for acc in (True, False):
        gw_r, gb_r, gw_n, gb_n = gw0.copy(), gb0.copy(), gw0.copy(), gb0.copy()
        dx_r = ref.linear_act_backward(dy, x, W, y_ref, gw_r, gb_r, act, 0.1, acc_w=acc, acc_b=acc)
        dy_in = wrap(dy)
        dy_before = np.array(dy_in)
        dx_n = numba_ops.linear_act_backward(dy_in, wrap(x), wrap(W), wrap(y_ref), gw_n, gb_n, act, 0.1,
                                             acc_w=acc, acc_b=acc)
        assert np.array_equal(dy_in, dy_before)                  # dy is never written
        assert dx_n.dtype == gw_n.dtype == gb_n.dtype == dtype
        # each element relative to the sum of its terms' magnitudes (gW, gb: plus the old value)
        old_w, old_b = (np.abs(gw0), np.abs(gb0)) if acc else (0, 0)
        assert_close(dx_n, dx_r, tol, abs_dz @ np.abs(W))                  # (N, M) @ (M, K) -> (N, K)
        assert_close(gw_n, gw_r, tol, old_w + abs_dz.T @ np.abs(x))        # (M, N) @ (N, K) -> (M, K)
        assert_close(gb_n, gb_r, tol, old_b + abs_dz.sum(axis=0))          # (M,)
    assert numba_ops.linear_act_backward(dy, x, W, y_ref, gw_n, None, act, 0.1, need_dx=False) is None
    other = np.float32 if dtype == np.float64 else np.float64
    with pytest.raises(TypeError, match="one dtype"):
        numba_ops.linear_act_forward(x, W.astype(other), b, act)


# ---------------------------------------------------------------------------
# Sigmoid and tanh on every path, against a reference more precise than float64
# ---------------------------------------------------------------------------
#: dtype -> (z range [-R, R], element-wise relative error bound)
EXACT = {np.float32: (80.0, 1e-6), np.float64: (700.0, 1e-14)}


def wide_math():
    """(to_wide, exp, expm1) in a precision beyond float64: np.longdouble where it is
    wider (80-bit on x86-64 Linux), else mpmath at 40 digits, else the test is skipped."""
    if np.finfo(np.longdouble).eps < np.finfo(np.float64).eps:
        return (lambda a: np.asarray(a, np.longdouble)), np.exp, np.expm1
    mpmath = pytest.importorskip("mpmath", reason="np.longdouble is no wider than float64 here and mpmath "
                                 "is not installed: no reference precise enough for a 1e-14 bound")
    ctx = mpmath.MPContext()
    ctx.dps = 40
    return np.frompyfunc(ctx.mpf, 1, 1), np.frompyfunc(ctx.exp, 1, 1), np.frompyfunc(ctx.expm1, 1, 1)


def exact_activation(act, z):
    """f(z), f'(z) (z's shape) in wide precision, z (float32/float64) taken as exact.
    sigmoid: e = exp(-|z|), f = 1/(1+e) (z >= 0) or e/(1+e), f' = e/(1+e)^2;
    tanh: u = expm1(-2|z|), tanh|z| = -u/(2+u), f' = 4(1+u)/(2+u)^2.  Nothing cancels."""
    wide, exp, expm1 = wide_math()
    a = wide(np.abs(z))
    if act == "sigmoid":
        e = exp(-a)
        return np.where(z >= 0, 1, e) / (1 + e), e / (1 + e) ** 2
    u = expm1(-2 * a)
    t = -u / (2 + u)
    return np.where(z < 0, -t, t), 4 * (1 + u) / (2 + u) ** 2


def derivative_at_output(act, y):
    """f' written through the output, y (1 - y) or (1 - y)(1 + y), exactly at the stored y."""
    w = wide_math()[0](y)
    return w * (1 - w) if act == "sigmoid" else (1 - w) * (1 + w)


def z_grid(dtype):
    """z over [-R, R]: a dense uniform grid, |z| geometrically from the smallest normal
    number up (both signs), and the points where the tanh-based sigmoid failed."""
    r = EXACT[dtype][0]
    mags = np.geomspace(np.finfo(dtype).tiny, r, 2001)
    special = [0.0, -10.0, -17.0, -36.0, 1e-30, -1e-30]
    return np.concatenate([np.linspace(-r, r, 100_001), mags, -mags, special]).astype(dtype)


def through_kernel(ops):
    def run(act, z):
        """The fused kernel with x = z as a column, W = [[1]], b = [0], so z enters exactly;
        with dy = 1 its dx = dz @ W is f'(z) as computed."""
        x, W, b = z[:, None], np.ones((1, 1), z.dtype), np.zeros(1, z.dtype)     # (N, 1), (1, 1), (1,)
        y = ops.linear_act_forward(x, W, b, act)                                  # (N, 1)
        dx = ops.linear_act_backward(np.ones_like(y), x, W, y, np.zeros_like(W), np.zeros_like(b), act)
        return y[:, 0], dx[:, 0]
    return run


def through_module(name):
    def run(act, z):
        """nnp.Sigmoid / nnp.Tanh on backend ``name``: forward, then backward with dy = 1."""
        with backend.use(name):
            module = {"sigmoid": nnp.Sigmoid, "tanh": nnp.Tanh}[act]()
            y = module(z[:, None])                                                # (N, 1)
            return y[:, 0], module.backward(np.ones_like(y))[:, 0]
    return run


def through_mlp(name):
    def run(act, z):
        """MLP([1, 1, 1]) with weights 1 and biases 0 (output = f(z), d input = f'(z)) on
        backend ``name``: on numba, Sequential's fused path (Linear + act, then Linear)."""
        with backend.use(name):
            model = nnp.MLP([1, 1, 1], activation=act, dtype=z.dtype, rng=0)
            for linear in (model[0], model[2]):
                linear.weight.data[...] = 1
                linear.bias.data[...] = 0
            y = model(z[:, None])                                                 # (N, 1)
            return y[:, 0], model.backward(np.ones_like(y))[:, 0]
    return run


PATHS = {"kernel-numpy": through_kernel(ref), "kernel-numba": through_kernel(numba_ops),
         "module-numpy": through_module("numpy"), "module-numba": through_module("numba"),
         "mlp-numpy": through_mlp("numpy"), "mlp-numba": through_mlp("numba")}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
@pytest.mark.parametrize("path", list(PATHS))
def test_sigmoid_and_tanh_are_accurate_element_by_element(path, act, dtype):
    """Each path's y = f(z) and dz = f'(z) (dy = 1), element by element against the exact
    values, relative to each element, rtol = 1e-6 over z in [-80, 80] (float32) and 1e-14
    over [-700, 700] (float64).

    Forward: |y - f(z)| <= rtol |f(z)|.

    Backward: the module protocol keeps y, not z, and computes f' from it: f'(y) = y (1 - y)
    or (1 - y)(1 + y).  That carries y's own rounding, exactly f'(y) - f'(z) = (y - f(z))
    (1 - y - f(z)) for the sigmoid and (f(z) - y)(y + f(z)) for tanh.  Where f(z) is within an
    ulp of 1 (or -1), i.e. the sigmoid for z >> 0 and tanh for |z| >> 0, f'(z) is smaller
    than y's rounding error and no computation from y can get it (float32: y = 1, so dz = 0,
    for the sigmoid from z = 16.6 and tanh from |z| = 10).  So the bound asserted is

        |dz - f'(z)| <= rtol f'(z) + |f'(y) - f'(z)|   (f'(y) exact at the stored y)

    the backward adds at most rtol relative error to what the stored y costs.  Where the
    stored y fixes f' well, the sigmoid for y <= 1/2 (z <= 0, f' >= y/2) and tanh for
    |y| <= 1/2 (f' >= 3/4), y's relative error reaches f' at most doubled, and the plain
    |dz - f'(z)| <= rtol f'(z) is asserted as well.
    """
    rtol = EXACT[dtype][1]
    z = z_grid(dtype)
    y, dz = PATHS[path](act, z)
    assert y.dtype == dz.dtype == dtype
    f, df = exact_activation(act, z)
    assert_close(y, f, rtol, at=z)
    stored_y_cost = np.abs(derivative_at_output(act, y) - df)                       # |f'(y) - f'(z)|
    assert_close(dz, df, rtol, df + stored_y_cost / rtol, at=z)
    well = np.abs(y) <= 0.5
    assert_close(dz[well], df[well], rtol, at=z[well])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (1, 784), (1000, 3)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_kernel_matches_reference(shape, reduction, dtype):
    rng = np.random.default_rng(shape[0] + shape[1])
    z = (5 * rng.standard_normal(shape)).astype(dtype)
    t = rng.integers(0, shape[1], shape[0])
    loss_r, dz_r = ref.cross_entropy(z, t, reduction)
    loss_n, dz_n = numba_ops.cross_entropy(noncontig(z), t, reduction)
    # loss_n = m_n + log s_n - z_n[t_n] (m_n = max_j z_nj, s_n = sum_j exp(z_nj - m_n)) and
    # dz_nj = (p_nj - 1[j = t_n]) * f (f = 1/N for "mean"), each relative to its terms' magnitudes
    z64, rows = z.astype(np.float64), np.arange(shape[0])
    m = z64.max(axis=1)                                                          # (N,)
    terms = np.abs(m) + np.log(np.exp(z64 - m[:, None]).sum(axis=1)) + np.abs(z64[rows, t])
    f = 1.0 / shape[0] if reduction == "mean" else 1.0
    assert_close(loss_n, loss_r, TOL[dtype], {"mean": terms.mean(), "sum": terms.sum(), "none": terms}[reduction])
    assert_close(dz_n, dz_r, TOL[dtype], (F.softmax(z64) + F.one_hot(t, shape[1], np.float64)) * f)  # (N, C)
    assert dz_n.dtype == dtype
    with pytest.raises(ValueError, match=r"target values must lie in \[0, "):
        numba_ops.cross_entropy(z, np.full(shape[0], shape[1]), reduction)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (1, 784), (1000, 3)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("cfg", [dict(), dict(momentum=0.9), dict(momentum=0.9, dampening=0.2, weight_decay=0.01),
                                 dict(momentum=0.8, nesterov=True, weight_decay=0.1), dict(weight_decay=0.05),
                                 dict(maximize=True)],
                         ids=["plain", "momentum", "dampening-wd", "nesterov-wd", "wd", "plain-maximize"])
def test_sgd_kernel_matches_reference(shape, cfg, dtype):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(shape).astype(dtype)
    p_r, p_n, buf_r, buf_n = p0.copy(), p0.copy(), None, None
    for _ in range(3):
        g = rng.standard_normal(shape).astype(dtype)
        buf_r = ref.sgd_update(p_r, g, buf_r, 0.05, **cfg)
        buf_n = numba_ops.sgd_update(p_n, noncontig(g), buf_n, 0.05, **cfg)
    assert_close(p_n, p_r, TOL[dtype])
    if "momentum" in cfg:
        assert_close(buf_n, buf_r, TOL[dtype])
    else:                                    # plain SGD (its own short kernel): the reference's bits
        assert buf_n is None and np.array_equal(p_n, p_r)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (1, 784), (1000, 3)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("cfg", [dict(), dict(weight_decay=0.1), dict(weight_decay=0.1, decoupled=True),
                                 dict(amsgrad=True)], ids=["adam", "adam-l2", "adamw", "amsgrad"])
def test_adam_kernel_matches_reference(shape, cfg, dtype):
    rng = np.random.default_rng(1)
    cfg = dict(cfg)
    ams = cfg.pop("amsgrad", False)
    p0 = rng.standard_normal(shape).astype(dtype)
    state = {k: [np.zeros(shape, dtype) for _ in range(3)] for k in ("r", "n")}
    p = {"r": p0.copy(), "n": p0.copy()}
    for step in range(1, 5):
        g = rng.standard_normal(shape).astype(dtype)
        for key, ops in (("r", ref), ("n", numba_ops)):
            m, v, vmax = state[key]
            ops.adam_update(p[key], g if key == "r" else noncontig(g), m, v, vmax if ams else None, step,
                            0.01, 0.9, 0.999, 1e-8, **cfg)
    assert_close(p["n"], p["r"], TOL[dtype])
    for a, b in zip(state["n"], state["r"]):
        assert_close(a, b, TOL[dtype])


def test_backend_switch(monkeypatch):
    start = backend.get_backend()
    with backend.use("numpy"):
        assert nnp.get_backend() == "numpy"
        with backend.use("numba"):
            assert nnp.get_backend() == "numba"
        assert nnp.get_backend() == "numpy"
    assert nnp.get_backend() == start
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        nnp.set_backend("cuda")
    assert set(backend.available_backends()) == {"numpy", "numba"}


def test_default_backend_and_environment(monkeypatch):
    monkeypatch.setitem(backend._state, "name", None)
    monkeypatch.setenv("NNUMPY_BACKEND", "numpy")
    assert backend.get_backend() == "numpy"
    monkeypatch.setitem(backend._state, "name", None)
    monkeypatch.delenv("NNUMPY_BACKEND")
    assert backend.get_backend() == "numba"
    monkeypatch.setitem(backend._state, "name", None)
    monkeypatch.setitem(backend._state, "warned", False)
    monkeypatch.setattr(backend, "_numba_importable", lambda: False)
    with pytest.warns(RuntimeWarning, match="Numba is not available"):
        assert backend.get_backend() == "numpy"
    with pytest.raises(ImportError, match="pip install numba"):
        backend.set_backend("numba")
    monkeypatch.setitem(backend._state, "name", None)
    monkeypatch.setenv("NNUMPY_BACKEND", "bogus")
    with pytest.raises(ValueError, match="unknown backend 'bogus'"):
        backend.get_backend()


def train(backend_name, dtype):
    rng = np.random.default_rng(0)
    x, y = rng.random((500, 20)).astype(dtype), rng.integers(0, 4, 500)
    with backend.use(backend_name):
        model = nnp.MLP([20, 32, 16, 4], activation=["relu", "tanh"], dtype=dtype, rng=1)
        opt = nnp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        hist = nnp.fit(model, nnp.CrossEntropyLoss(), opt, (x[:400], y[:400]), val=(x[400:], y[400:]),
                       epochs=4, batch_size=64, seed=3, progress=False)
    return hist, model


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-4)], ids=["f64", "f32"])
def test_training_is_the_same_on_both_backends(dtype, tol):
    (h_np, m_np), (h_nb, m_nb) = train("numpy", dtype), train("numba", dtype)
    for field in ("train_loss", "val_loss"):
        np.testing.assert_allclose(getattr(h_nb, field), getattr(h_np, field), rtol=tol)
    for k, v in m_np.state_dict().items():
        assert_close(m_nb.state_dict()[k], v, tol)


@pytest.fixture
def numba_backend():
    with backend.use("numba"):
        yield


def test_outputs_and_input_grads_are_not_reused_buffers(numba_backend):
    model = nnp.MLP([6, 5, 4, 3], rng=0)
    rng = np.random.default_rng(0)
    x1, x2 = rng.random((8, 6), dtype=np.float32), rng.random((8, 6), dtype=np.float32)
    y1 = model(x1)
    keep = y1.copy()
    dx1 = model.backward(np.ones_like(y1))
    keep_dx = dx1.copy()
    model(x2)
    model.backward(np.full_like(y1, 2.0))
    assert np.array_equal(y1, keep) and np.array_equal(dx1, keep_dx)
    # a Flatten before the fused layers returns a view of a buffer: handed out as a copy
    seq = nnp.Sequential(nnp.Flatten(), nnp.Linear(6, 4, rng=0), nnp.ReLU(), nnp.Linear(4, 2, rng=1))
    seq(x1.reshape(8, 2, 3))
    d1 = seq.backward(np.ones((8, 2), np.float32))
    keep = d1.copy()
    seq(x2.reshape(8, 2, 3))
    seq.backward(np.full((8, 2), 3.0, np.float32))
    assert np.array_equal(d1, keep)


def test_fused_layers_say_how_to_backpropagate(numba_backend):
    model = nnp.MLP([4, 3, 2], rng=0)
    model(np.ones((2, 4), np.float32))
    with pytest.raises(RuntimeError, match="ran fused"):
        model[1].backward(np.ones((2, 3), np.float32))


def test_input_grad_false_skips_dx_and_keeps_param_grads():
    for name in ("numpy", "numba"):
        with backend.use(name):
            x = np.random.default_rng(0).random((5, 6))
            a = nnp.MLP([6, 5, 3], dtype=np.float64, rng=0)
            b = nnp.MLP([6, 5, 3], dtype=np.float64, rng=0, input_grad=False)
            dx = a.backward(np.ones_like(a(x)))
            assert dx.shape == (5, 6)
            assert b.backward(np.ones_like(b(x))) is None
            assert a.backward(np.ones_like(a(x)), input_grad=False) is None
            for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
                np.testing.assert_allclose(pa.grad, 2 * pb.grad, rtol=1e-12, err_msg=n)


def test_unfusable_cases_still_work(numba_backend):
    rng = np.random.default_rng(0)
    for model in (nnp.Sequential(nnp.Linear(4, 3, rng=0, dtype=np.float64), nnp.LeakyReLU(-0.5),
                                 nnp.Linear(3, 2, rng=1, dtype=np.float64)),
                  nnp.Sequential(nnp.Linear(4, 3, rng=0, dtype=np.float64), nnp.Tanh())):
        r = nnp.gradcheck(model, rng.standard_normal((5, 4)))
        assert r.ok, str(r)
    lin = nnp.Sequential(nnp.Linear(4, 3, rng=0, dtype=np.float64), nnp.ReLU())
    r = nnp.gradcheck(lin, 1 + rng.random((2, 5, 4)))               # 3-d input: runs unfused
    assert r.ok, str(r)


def test_lazy_zero_grad():
    p = nnp.Parameter(np.ones(3))
    p.grad[...] = 5
    arr = p.grad
    p.zero_grad()
    assert p.grad is arr and not p.grad.any()
    p.zero_grad()
    g, accumulate = p.grad_for_update()
    assert g is arr and accumulate is False
    g, accumulate = p.grad_for_update()
    assert accumulate is True


#: Run in a new process: warm_up(), then every Numba dispatcher in numba_ops with its cache statistics.
KERNEL_CACHE_STATS = """
import json
from numba.core.dispatcher import Dispatcher
import nnumpy.backend.numba_ops as k
k.warm_up()
print(json.dumps({name: {"hits": sum(f.stats.cache_hits.values()), "misses": sum(f.stats.cache_misses.values()),
                         "inlined": f.targetoptions.get("inline") == "always"}
                  for name, f in vars(k).items() if isinstance(f, Dispatcher)}))
"""


def test_jit_cache_lets_a_new_process_start_warm(tmp_path):
    """Two new processes share an empty NUMBA_CACHE_DIR.  The first compiles every kernel
    (cache misses, no hits) and writes it there; the second loads every kernel from there
    (hits) and compiles none (no misses).  Kernels with inline="always" are compiled into
    their callers, never on their own, so they have no statistics and are left out."""
    assert not any(tmp_path.iterdir())
    package_root = os.path.dirname(os.path.dirname(nnp.__file__))        # import this very nnumpy
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}

    def kernel_stats():
        out = subprocess.run([sys.executable, "-c", KERNEL_CACHE_STATS], env=env, check=True,
                             capture_output=True, text=True, timeout=600).stdout
        return {name: s for name, s in json.loads(out.splitlines()[-1]).items() if not s["inlined"]}

    cold = kernel_stats()
    assert cold, "no Numba kernels found in numba_ops"
    not_compiled = {name: s for name, s in cold.items() if s["misses"] == 0 or s["hits"]}
    assert not not_compiled, f"not compiled on the cold start (empty cache): {not_compiled}"
    indexed = {p.name.split(".")[1].split("-")[0] for p in tmp_path.rglob("numba_ops.*.nbi")}
    assert indexed == set(cold), f"cache index files for {sorted(indexed)}, kernels {sorted(cold)}"
    warm = kernel_stats()
    assert warm.keys() == cold.keys()
    compiled = {name: s for name, s in warm.items() if s["misses"] or not s["hits"]}
    assert not compiled, f"compiled again instead of loaded from the cache: {compiled}"
