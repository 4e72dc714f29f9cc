"""The backend switch and the Numba kernels against their NumPy references."""
import subprocess
import sys

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import backend
from nnumpy.backend import numpy_ops as ref

numba_ops = pytest.importorskip("nnumpy.backend.numba_ops", reason="Numba is not installed")

SHAPES = [(1, 1, 1), (7, 13, 5), (1, 784, 10), (1000, 3, 4), (64, 784, 100)]   # (N, K, M)
ACTS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh"]
TOL = {np.float64: 1e-12, np.float32: 1e-5}


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(a).max(initial=0), np.abs(b).max(initial=0), 1e-300)
    return np.abs(a - b).max(initial=0) / scale


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
    y_ref = ref.linear_act_forward(x, W, b, act, 0.1)
    y = numba_ops.linear_act_forward(wrap(x), wrap(W), b, act, 0.1)
    assert y.dtype == dtype and rel_err(y, y_ref) <= TOL[dtype]
    gw0, gb0 = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal(m).astype(dtype)
    for acc in (True, False):
        gw_r, gb_r, gw_n, gb_n = gw0.copy(), gb0.copy(), gw0.copy(), gb0.copy()
        dx_r = ref.linear_act_backward(dy, x, W, y_ref, gw_r, gb_r, act, 0.1, acc_w=acc, acc_b=acc)
        dy_in = wrap(dy)
        dy_before = np.array(dy_in)
        dx_n = numba_ops.linear_act_backward(dy_in, wrap(x), wrap(W), wrap(y_ref), gw_n, gb_n, act, 0.1,
                                             acc_w=acc, acc_b=acc)
        assert np.array_equal(dy_in, dy_before)                  # dy is never written
        for a, r in ((dx_n, dx_r), (gw_n, gw_r), (gb_n, gb_r)):
            assert a.dtype == dtype and rel_err(a, r) <= TOL[dtype]
    assert numba_ops.linear_act_backward(dy, x, W, y_ref, gw_n, None, act, 0.1, need_dx=False) is None
    other = np.float32 if dtype == np.float64 else np.float64
    with pytest.raises(TypeError, match="one dtype"):
        numba_ops.linear_act_forward(x, W.astype(other), b, act)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (1, 784), (1000, 3)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_kernel_matches_reference(shape, reduction, dtype):
    rng = np.random.default_rng(shape[0] + shape[1])
    z = (5 * rng.standard_normal(shape)).astype(dtype)
    t = rng.integers(0, shape[1], shape[0])
    loss_r, dz_r = ref.cross_entropy(z, t, reduction)
    loss_n, dz_n = numba_ops.cross_entropy(noncontig(z), t, reduction)
    assert rel_err(loss_n, loss_r) <= TOL[dtype] and rel_err(dz_n, dz_r) <= TOL[dtype]
    assert dz_n.dtype == dtype
    with pytest.raises(ValueError, match=r"target values must lie in \[0, "):
        numba_ops.cross_entropy(z, np.full(shape[0], shape[1]), reduction)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (1, 784), (1000, 3)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("cfg", [dict(), dict(momentum=0.9), dict(momentum=0.9, dampening=0.2, weight_decay=0.01),
                                 dict(momentum=0.8, nesterov=True, weight_decay=0.1), dict(weight_decay=0.05)],
                         ids=["plain", "momentum", "dampening-wd", "nesterov-wd", "wd"])
def test_sgd_kernel_matches_reference(shape, cfg, dtype):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(shape).astype(dtype)
    p_r, p_n, buf_r, buf_n = p0.copy(), p0.copy(), None, None
    for _ in range(3):
        g = rng.standard_normal(shape).astype(dtype)
        buf_r = ref.sgd_update(p_r, g, buf_r, 0.05, **cfg)
        buf_n = numba_ops.sgd_update(p_n, noncontig(g), buf_n, 0.05, **cfg)
    assert rel_err(p_n, p_r) <= TOL[dtype]
    if "momentum" in cfg:
        assert rel_err(buf_n, buf_r) <= TOL[dtype]


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
    assert rel_err(p["n"], p["r"]) <= TOL[dtype]
    for a, b in zip(state["n"], state["r"]):
        assert rel_err(a, b) <= TOL[dtype]


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
        assert rel_err(m_nb.state_dict()[k], v) <= tol, k


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


def test_jit_cache_lets_a_new_process_start_warm():
    code = ("import time, nnumpy.backend.numba_ops as k; t = time.perf_counter(); k.warm_up(); "
            "print(time.perf_counter() - t)")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=600)   # fill the cache
    warm = float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                                timeout=600).stdout)
    assert warm < 20            # generous: compiling everything from scratch takes far longer
    import pathlib
    cache = pathlib.Path(numba_ops.__file__).parent / "__pycache__"
    assert any(cache.glob("numba_ops.*.nbi")), "no on-disk JIT cache next to the kernels"
