"""The losses against PyTorch 2.13 (values and gradients, float64 and float32,
every reduction, both backends), finite differences, the numba kernels
against the NumPy reference, the loss protocol, and bad arguments."""
import copy
import inspect
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import backend
from nnumpy import functional as F
from nnumpy.backend import numpy_ops

BACKENDS = ["numpy", "numba"]
REDUCTIONS = ["mean", "sum", "none"]
TOL = {np.float64: 1e-12, np.float32: 1e-5}
N, C = 13, 7


def rel_error(ours, theirs):
    """max |ours - theirs| / max |theirs| over one tensor (normwise: each entry
    judged on the tensor's scale), after asserting that both have NaN and
    +-inf at the same places; the absolute error when theirs is all 0."""
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(theirs.detach().numpy() if hasattr(theirs, "detach") else theirs, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    for special in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(special(a), special(b), err_msg=f"{special.__name__} differs")
    fin = np.isfinite(b)
    if not fin.any():
        return 0.0
    err = np.max(np.abs(a[fin] - b[fin]))
    scale = np.max(np.abs(b[fin]))
    return float(err / scale) if scale > 0 else float(err)


def class_targets(rng, ignored=(), n=N, c=C):
    t = rng.integers(0, c, n)
    t[list(ignored)] = -100
    return t


def probabilities(rng, shape):
    y = rng.random(shape)
    return y / y.sum(axis=-1, keepdims=True)


def saturated(rng, shape):
    """Logits of +-1e4 and 0, with small noise: exp(z - max) under- and overflows
    for every naive formula."""
    return 1e4 * rng.choice([-1.0, 0.0, 1.0], shape) + rng.standard_normal(shape)


# Each case: (the loss class name, its keyword arguments, a function of rng -> (input, target)).
CASES = {
    # CrossEntropyLoss: class indices
    "ce": ("CrossEntropyLoss", {}, lambda r: (3 * r.standard_normal((N, C)), class_targets(r))),
    "ce-ignore": ("CrossEntropyLoss", {}, lambda r: (3 * r.standard_normal((N, C)), class_targets(r, (1, 4, 5)))),
    "ce-ignore-index-3": ("CrossEntropyLoss", {"ignore_index": 3},
                          lambda r: (3 * r.standard_normal((N, C)), class_targets(r))),
    "ce-weight": ("CrossEntropyLoss", {"weight": [0.2, 1.0, 3.0, 0.0, 1.5, 0.7, 2.2]},
                  lambda r: (3 * r.standard_normal((N, C)), class_targets(r, (2,)))),
    "ce-smoothing": ("CrossEntropyLoss", {"label_smoothing": 0.15},
                     lambda r: (3 * r.standard_normal((N, C)), class_targets(r, (0, 7)))),
    "ce-weight-smoothing": ("CrossEntropyLoss", {"weight": [0.2, 1.0, 3.0, 0.5, 1.5, 0.7, 2.2], "label_smoothing": 0.3},
                            lambda r: (3 * r.standard_normal((N, C)), class_targets(r, (3, 9)))),
    "ce-smoothing-1": ("CrossEntropyLoss", {"label_smoothing": 1.0},
                       lambda r: (3 * r.standard_normal((N, C)), class_targets(r))),
    "ce-saturated": ("CrossEntropyLoss", {"weight": [0.2, 1.0, 3.0, 0.5, 1.5, 0.7, 2.2], "label_smoothing": 0.1},
                     lambda r: (saturated(r, (N, C)), class_targets(r, (4,)))),
    "ce-saturated-plain": ("CrossEntropyLoss", {}, lambda r: (saturated(r, (N, C)), class_targets(r))),
    "ce-one-class": ("CrossEntropyLoss", {}, lambda r: (r.standard_normal((5, 1)), np.zeros(5, np.int64))),
    # CrossEntropyLoss: class probabilities
    "ce-soft": ("CrossEntropyLoss", {}, lambda r: (3 * r.standard_normal((N, C)), probabilities(r, (N, C)))),
    "ce-soft-weight-smoothing": ("CrossEntropyLoss",
                                 {"weight": [0.2, 1.0, 3.0, 0.5, 1.5, 0.7, 2.2], "label_smoothing": 0.2,
                                  "ignore_index": -1},
                                 lambda r: (3 * r.standard_normal((N, C)), probabilities(r, (N, C)))),
    "ce-soft-saturated": ("CrossEntropyLoss", {"label_smoothing": 0.05},
                          lambda r: (saturated(r, (N, C)), probabilities(r, (N, C)))),
    # NLLLoss on log-probabilities
    "nll": ("NLLLoss", {}, lambda r: (F.log_softmax(3 * r.standard_normal((N, C))), class_targets(r))),
    "nll-weight-ignore": ("NLLLoss", {"weight": [0.2, 1.0, 3.0, 0.5, 1.5, 0.7, 2.2], "ignore_index": 2},
                          lambda r: (r.standard_normal((N, C)), class_targets(r))),
    # BCEWithLogitsLoss
    "bcel": ("BCEWithLogitsLoss", {}, lambda r: (3 * r.standard_normal((N, C)), r.random((N, C)))),
    "bcel-weight-pos": ("BCEWithLogitsLoss", {"weight": np.linspace(0.1, 2, C), "pos_weight": np.linspace(3, 0.5, C)},
                        lambda r: (3 * r.standard_normal((N, C)), r.random((N, C)))),
    "bcel-row-weight": ("BCEWithLogitsLoss", {"weight": np.linspace(0.1, 2, N)[:, None], "pos_weight": 2.5},
                        lambda r: (3 * r.standard_normal((N, C)), (r.random((N, C)) > 0.5).astype(float))),
    "bcel-3d": ("BCEWithLogitsLoss", {"pos_weight": [[0.5], [2.0], [1.0]]},
                lambda r: (3 * r.standard_normal((4, 3, 5)), r.random((4, 3, 5)))),
    "bcel-saturated": ("BCEWithLogitsLoss", {"pos_weight": np.linspace(3, 0.5, C)},
                       lambda r: (saturated(r, (N, C)), r.choice([0.0, 0.3, 1.0], (N, C)))),
    # BCELoss
    "bce": ("BCELoss", {}, lambda r: (r.uniform(0.02, 0.98, (N, C)), r.random((N, C)))),
    "bce-weight": ("BCELoss", {"weight": np.linspace(0.1, 2, C)},
                   lambda r: (r.uniform(0.02, 0.98, (N, C)), (r.random((N, C)) > 0.5).astype(float))),
    "bce-clamped": ("BCELoss", {}, lambda r: (r.choice([0.0, 1e-300, 0.5, 1.0], (N, C)),
                                              r.choice([0.0, 1.0], (N, C)))),
    # MultiMarginLoss
    "margin": ("MultiMarginLoss", {}, lambda r: (r.standard_normal((N, C)), class_targets(r))),
    "margin-p2-weight": ("MultiMarginLoss", {"p": 2, "margin": 0.7, "weight": np.linspace(0.1, 2, C)},
                         lambda r: (r.standard_normal((N, C)), class_targets(r))),
    "margin-negative": ("MultiMarginLoss", {"margin": -0.5}, lambda r: (r.standard_normal((N, C)), class_targets(r))),
    "margin-ties": ("MultiMarginLoss", {}, lambda r: margin_ties(r)),
    # element-wise regression losses (a 3-d input, with exact ties)
    "mse": ("MSELoss", {}, lambda r: (r.standard_normal((4, 3, 5)), r.standard_normal((4, 3, 5)))),
    "mse-large": ("MSELoss", {},                       # from 4096 elements MSE runs its numba kernel
                  lambda r: (r.standard_normal((50, 100)), r.standard_normal((50, 100)))),
    "l1": ("L1Loss", {}, lambda r: ties(r.standard_normal((4, 3, 5)), r.standard_normal((4, 3, 5)), 1.0)),
    "huber": ("HuberLoss", {}, lambda r: ties(2 * r.standard_normal((4, 3, 5)), r.standard_normal((4, 3, 5)), 1.0)),
    "huber-delta": ("HuberLoss", {"delta": 0.4},
                    lambda r: ties(r.standard_normal((4, 3, 5)), r.standard_normal((4, 3, 5)), 0.4)),
    "smoothl1": ("SmoothL1Loss", {},
                 lambda r: ties(2 * r.standard_normal((4, 3, 5)), r.standard_normal((4, 3, 5)), 1.0)),
    "smoothl1-beta": ("SmoothL1Loss", {"beta": 0.3},
                      lambda r: ties(r.standard_normal((4, 3, 5)), r.standard_normal((4, 3, 5)), 0.3)),
    "smoothl1-beta0": ("SmoothL1Loss", {"beta": 0.0},
                       lambda r: ties(r.standard_normal((4, 3, 5)), r.standard_normal((4, 3, 5)), 0.0)),
}


def ties(x, y, k):
    """Put exact ties where the subgradient is defined by convention:
    d = 0, d = +-k (the Huber/smooth-L1 joints)."""
    x, y = x.copy(), y.copy()
    y[0, 0, :] = 0.0
    x[0, 0, :] = [0.0, k, -k, 0.0, 2 * k][:x.shape[2]]
    x[1, 0, :] = y[1, 0, :]
    return x, y


def margin_ties(rng):
    """Scores where some margin terms are exactly 0 (margin - x_t + x_j = 0: not active)."""
    x = rng.standard_normal((N, C))
    t = class_targets(rng)
    x[np.arange(N), t] = 1.0
    x[:, 0] = np.where(t == 0, 1.0, 0.0)                # h = 1 - 1 + 0 = 0
    return x, t


def make(name, reduction="mean"):
    cls_name, kwargs, data = CASES[name]
    return getattr(nnp.nn, cls_name)(**kwargs, reduction=reduction), data


def torch_twin(torch, crit, tdtype):
    """The PyTorch loss with the same class name and configuration."""
    kw = {k: (torch.tensor(np.asarray(v), dtype=tdtype) if k in ("weight", "pos_weight") and v is not None else v)
          for k, v in crit.get_config().items()}
    return getattr(torch.nn, type(crit).__name__)(**kw)


def torch_target(torch, target, dtype):
    t = np.asarray(target)
    return torch.from_numpy(t.astype(np.int64) if np.issubdtype(t.dtype, np.integer) else t.astype(dtype))


def run_pair(torch, crit, x, target, dtype, dloss):
    """Our loss and d(dloss * loss)/dx, and PyTorch's, in ``dtype``."""
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    x = x.astype(dtype)
    target = target.astype(dtype) if np.issubdtype(np.asarray(target).dtype, np.floating) else target
    loss = crit(x, target)
    dx = crit.backward(dloss)
    xt = torch.tensor(x, requires_grad=True)
    lt = torch_twin(torch, crit, tdtype)(xt, torch_target(torch, target, dtype))
    lt.backward(torch.ones_like(lt) if dloss is None else torch.tensor(np.asarray(dloss, dtype=dtype)))
    return loss, dx, lt, xt.grad


def upstreams(reduction, shape, rng, dtype):
    """dloss = None (1), and a random one: a number, or per term for "none"."""
    if reduction == "none":
        return [None, rng.uniform(-2, 2, shape).astype(dtype)]
    return [None, float(rng.uniform(0.3, 3))]


@pytest.mark.parametrize("bk", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(torch, case, reduction, dtype, bk):
    rng = np.random.default_rng(sum(map(ord, case)))
    crit, data = make(case, reduction)
    x, target = data(rng)
    x0, t0 = x.copy(), np.array(target, copy=True)
    per_sample = type(crit).__name__ in ("CrossEntropyLoss", "NLLLoss", "MultiMarginLoss")
    loss_shape = (x.shape[0],) if per_sample else x.shape
    with backend.use(bk):
        for dloss in upstreams(reduction, loss_shape, rng, dtype):
            loss, dx, lt, gt = run_pair(torch, crit, x, target, dtype, dloss)
            assert (isinstance(loss, float) if reduction != "none" else loss.dtype == dtype)
            assert dx.dtype == dtype and dx.shape == x.shape
            assert rel_error(loss, lt) <= TOL[dtype], (rel_error(loss, lt), loss, lt)
            assert rel_error(dx, gt) <= TOL[dtype], rel_error(dx, gt)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(target, t0)


# ---------------------------------------------------------------------------
# Edge cases against PyTorch
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("bk", BACKENDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("cls,kwargs", [
    ("CrossEntropyLoss", {}), ("CrossEntropyLoss", {"weight": [1.0, 2.0, 0.5]}),
    ("CrossEntropyLoss", {"label_smoothing": 0.2}),
    ("CrossEntropyLoss", {"weight": [1.0, 2.0, 0.5], "label_smoothing": 0.2}),
    ("NLLLoss", {}), ("NLLLoss", {"weight": [1.0, 2.0, 0.5]})], ids=str)
def test_every_target_ignored(torch, cls, kwargs, reduction, bk):
    """Mean: NaN (0 / 0) with a zero gradient; sum: 0; none: zeros (PyTorch's)."""
    crit = getattr(nnp.nn, cls)(**kwargs, reduction=reduction)
    x = np.random.default_rng(3).standard_normal((4, 3))
    with backend.use(bk):
        loss, dx, lt, gt = run_pair(torch, crit, x, np.full(4, -100), np.float64, None)
    if reduction == "mean":
        assert np.isnan(loss) and np.isnan(lt.item())
    assert rel_error(loss, lt) == 0.0
    assert rel_error(dx, gt) == 0.0 and not dx.any()


@pytest.mark.parametrize("bk", BACKENDS)
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_zero_total_weight_gives_nan_like_torch(torch, smoothing, bk):
    """Targets not ignored but all of weight 0: W = 0, the mean and those rows'
    gradients are NaN (0 / 0), ignored rows stay 0, as in PyTorch."""
    crit = nnp.CrossEntropyLoss([0.0, 1.0, 2.0], label_smoothing=smoothing)
    x = np.random.default_rng(4).standard_normal((3, 3))
    with backend.use(bk):
        loss, dx, lt, gt = run_pair(torch, crit, x, np.array([0, 0, -100]), np.float64, None)
    assert np.isnan(loss)
    assert np.isnan(dx[:2]).all() and np.array_equal(dx[2], np.zeros(3))
    assert rel_error(dx, gt) == 0.0


@pytest.mark.parametrize("bk", BACKENDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kwargs", [{}, {"weight": [1.0, 2.0, 0.5]}, {"label_smoothing": 0.2}], ids=str)
def test_ignored_samples_with_non_finite_logits(torch, kwargs, reduction, bk):
    """An ignored sample adds nothing to the loss whatever its logits (PyTorch's
    masks), while its gradient row is 0 * softmax: NaN where the softmax is."""
    x = np.array([[np.inf, 0.0, 1.0], [np.nan, 0.0, 1.0], [-np.inf, 2.0, 1.0], [0.5, -1.0, 2.0]])
    crit = nnp.CrossEntropyLoss(**kwargs, reduction=reduction)
    with backend.use(bk), np.errstate(invalid="ignore"):     # NumPy's log-softmax of inf - inf
        loss, dx, lt, gt = run_pair(torch, crit, x, np.array([-100, -100, -100, 2]), np.float64, None)
    assert np.isfinite(loss).all()
    assert rel_error(loss, lt) <= 1e-15 and rel_error(dx, gt) <= 1e-15


@pytest.mark.parametrize("bk", BACKENDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", ["ce", "ce-soft", "nll", "bcel", "bce", "l1", "huber", "smoothl1", "mse"])
def test_empty_batch(torch, case, reduction, bk):
    """No samples: mean NaN, sum 0, none empty; the gradient is empty."""
    crit, data = make(case, reduction)
    x, target = data(np.random.default_rng(0))
    with backend.use(bk):
        loss, dx, lt, gt = run_pair(torch, crit, x[:0], target[:0], np.float64, None)
    assert dx.shape == x[:0].shape
    assert rel_error(loss, lt) == 0.0


@pytest.mark.parametrize("bk", BACKENDS)
def test_multi_margin_empty_batch_mean_is_nan(bk):
    """(PyTorch returns an uninitialised number here.)"""
    with backend.use(bk):
        crit = nnp.MultiMarginLoss()
        assert np.isnan(crit(np.zeros((0, 3)), np.zeros(0, np.int64)))
        assert crit.backward().shape == (0, 3)


@pytest.mark.parametrize("bk", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_saturated_logits_stay_finite(bk, dtype):
    """Logits of +-1e4: every loss on logits stays finite, with no overflow."""
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0], [1e4, 1e4, -1e4]], dtype=dtype)
    t = np.array([1, 1, 0])
    crits = [(nnp.CrossEntropyLoss([1.0, 2.0, 0.5], label_smoothing=0.2), t),
             (nnp.CrossEntropyLoss(label_smoothing=0.1), F.softmax(z.astype(np.float64)).astype(dtype)),
             (nnp.BCEWithLogitsLoss(pos_weight=[2.0, 1.0, 0.5]), np.array([[1, 0, 1], [1, 1, 0], [0, 1, 1]], dtype)),
             (nnp.MultiMarginLoss(p=2), t)]
    with backend.use(bk), np.errstate(over="raise", invalid="raise", divide="raise"):
        for crit, target in crits:
            loss = crit(z, target)
            dz = crit.backward()
            assert np.isfinite(loss) and np.isfinite(dz).all() and dz.dtype == dtype, type(crit).__name__


def test_cross_entropy_saturated_values():
    """Sample 0: loss = logsumexp - z_t = 1e4 - (-1e4); smoothing adds the mean of -logp."""
    z = np.array([[1e4, -1e4, 0.0]])
    for bk in BACKENDS:
        with backend.use(bk):
            assert nnp.CrossEntropyLoss()(z, np.array([1])) == 2e4
            # -logp = [0, 2e4, 1e4]: (1 - 0.3) 2e4 + 0.3 / 3 (0 + 2e4 + 1e4)
            assert nnp.CrossEntropyLoss(label_smoothing=0.3)(z, np.array([1])) == pytest.approx(0.7 * 2e4 + 0.1 * 3e4,
                                                                                                rel=1e-15)


# ---------------------------------------------------------------------------
# Finite differences
# ---------------------------------------------------------------------------
GRADCHECK = ["ce", "ce-ignore", "ce-weight-smoothing", "ce-soft-weight-smoothing", "nll-weight-ignore", "bcel",
             "bcel-weight-pos", "bcel-3d", "bce-weight", "margin", "margin-p2-weight", "l1", "huber-delta",
             "smoothl1-beta", "mse"]


@pytest.mark.parametrize("bk", BACKENDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", GRADCHECK)
def test_gradcheck(case, reduction, bk):
    crit, data = make(case, reduction)
    x, target = data(np.random.default_rng(7))
    if case in ("l1", "huber-delta", "smoothl1-beta"):      # the ties are kinks: move off them
        x = x + 0.05
    with backend.use(bk):
        report = nnp.gradcheck(crit, x, target=target)
    assert report.ok, report
    assert report.rows[0]["checked"] >= x.size // 2


def test_gradcheck_catches_a_wrong_gradient(monkeypatch):
    """The finite-difference check can fail: a weight applied to the loss only."""
    crit, data = make("ce-weight")
    x, target = data(np.random.default_rng(7))
    with backend.use("numpy"):
        assert nnp.gradcheck(crit, x, target=target).ok
        real = F.cross_entropy_backward
        monkeypatch.setattr(F, "cross_entropy_backward", lambda p, t, r, d, w, i, s: real(p, t, r, d, None, i, s))
        assert not nnp.gradcheck(crit, x, target=target).ok


# ---------------------------------------------------------------------------
# The numba kernels against the NumPy reference (forward, then backward with dloss = 1)
# ---------------------------------------------------------------------------
def noncontig(a):
    """The same values in a non-C-contiguous array."""
    b = np.empty((a.shape[0], 2 * a.shape[1]) + a.shape[2:], a.dtype) if a.ndim >= 2 else None
    if b is None:
        return a
    b[:, ::2] = a
    return b[:, ::2]


def reference(name, x, target, reduction, **kw):
    """(loss, d loss/dx for dloss = 1) from the functional pair."""
    if name == "cross_entropy":
        return numpy_ops.cross_entropy(x, target, reduction, kw.get("weight"), kw.get("ignore_index", -100),
                                       kw.get("label_smoothing", 0.0))
    if name == "nll_loss":
        args = (kw.get("weight"), kw.get("ignore_index", -100))
        return (F.nll_loss_forward(x, target, reduction, *args),
                F.nll_loss_backward(target, x.shape[1], x.dtype, reduction, 1.0, *args))
    if name == "multi_margin_loss":
        args = (kw.get("p", 1), kw.get("margin", 1.0), kw.get("weight"))
        return (F.multi_margin_loss_forward(x, target, reduction, *args),
                F.multi_margin_loss_backward(x, target, reduction, 1.0, *args))
    if name == "binary_cross_entropy_with_logits":
        args = (kw.get("weight"), kw.get("pos_weight"))
        return (F.binary_cross_entropy_with_logits_forward(x, target, reduction, *args),
                F.binary_cross_entropy_with_logits_backward(x, target, reduction, 1.0, *args))
    if name == "binary_cross_entropy":
        return (F.binary_cross_entropy_forward(x, target, reduction, kw.get("weight")),
                F.binary_cross_entropy_backward(x, target, reduction, 1.0, kw.get("weight")))
    extra = list(kw.values())
    name = "mse" if name == "mse_loss" else name
    loss, d = getattr(F, f"{name}_forward")(x, target, reduction, *extra)
    return loss, getattr(F, f"{name}_backward")(d, reduction, 1.0, *extra)


SHAPES = [(1, 1), (7, 13), (1, 784), (300, 3), (0, 4)]


def kernel_cases(shape, dtype, rng):
    n, c = shape
    z = 4 * rng.standard_normal(shape)
    t = rng.integers(0, c, n)
    t_ign = t.copy()
    t_ign[::3] = -100
    w = rng.uniform(0.1, 2, c)
    y = rng.random(shape)
    soft = y / np.maximum(y.sum(axis=1, keepdims=True), 1e-300)
    out = [("cross_entropy", z, t, {}), ("cross_entropy", z, t_ign, {"weight": w, "label_smoothing": 0.2}),
           ("cross_entropy", z, t_ign, {"label_smoothing": 0.1}), ("cross_entropy", z, t_ign, {"weight": w}),
           ("cross_entropy", z, soft, {"weight": w, "label_smoothing": 0.3}), ("cross_entropy", z, soft, {}),
           ("nll_loss", z, t_ign, {"weight": w}), ("nll_loss", z, t, {}),
           ("multi_margin_loss", z, t, {}), ("multi_margin_loss", z, t, {"p": 2, "margin": 0.5, "weight": w}),
           ("binary_cross_entropy_with_logits", z, y, {}),
           ("binary_cross_entropy_with_logits", z, y, {"weight": w, "pos_weight": w[::-1].copy()}),
           ("binary_cross_entropy_with_logits", z, y, {"weight": rng.random((n, 1)), "pos_weight": np.array(2.0)}),
           ("binary_cross_entropy", rng.uniform(0.01, 0.99, shape), y, {}),
           ("binary_cross_entropy", rng.choice([0.0, 0.3, 1.0], shape), rng.choice([0.0, 1.0], shape), {"weight": w}),
           ("mse_loss", z, y, {}),
           ("l1_loss", z, np.where(rng.random(shape) < 0.2, z, y), {}), ("huber_loss", z, y, {"delta": 0.7}),
           ("smooth_l1_loss", z, y, {"beta": 0.5}), ("smooth_l1_loss", z, y, {"beta": 0.0})]
    cast = lambda a: a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a  # noqa: E731
    return [(name, cast(x), cast(tg), {k: cast(v) for k, v in kw.items()}) for name, x, tg, kw in out]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kernels_match_reference(shape, reduction, dtype):
    numba_loss = pytest.importorskip("nnumpy.backend.numba_loss", reason="Numba is not installed")
    rng = np.random.default_rng(sum(shape))
    for name, x, target, kw in kernel_cases(shape, dtype, rng):
        loss_r, dx_r = reference(name, x, target, reduction, **kw)
        loss_k, dx_k = getattr(numba_loss, name)(noncontig(x), noncontig(target) if target.ndim == 2 else target,
                                                 reduction, **kw)
        assert dx_k.dtype == dtype and dx_k.shape == x.shape, name
        if reduction == "none":
            assert loss_k.dtype == dtype, name
        assert rel_error(loss_k, loss_r) <= TOL[dtype], (name, kw, rel_error(loss_k, loss_r))
        assert rel_error(dx_k, dx_r) <= TOL[dtype], (name, kw, rel_error(dx_k, dx_r))


def test_numba_ops_cross_entropy_is_the_loss_kernel():
    numba_ops = pytest.importorskip("nnumpy.backend.numba_ops", reason="Numba is not installed")
    from nnumpy.backend import numba_loss
    assert numba_ops.cross_entropy is numba_loss.cross_entropy


@pytest.mark.parametrize("name,x,target", [
    ("cross_entropy", np.zeros((3, 4)), np.array([0, 4, 1])),
    ("cross_entropy", np.zeros((3, 4)), np.array([0, -1, 1])),
    ("nll_loss", np.zeros((3, 4)), np.array([0, 1, 9])),
    ("multi_margin_loss", np.zeros((3, 4)), np.array([-100, 1, 2])),
])
def test_kernels_refuse_bad_class_indices(name, x, target):
    """Numba does not check bounds: the kernels check the indices themselves."""
    numba_loss = pytest.importorskip("nnumpy.backend.numba_loss", reason="Numba is not installed")
    with pytest.raises(ValueError, match=r"target values must lie in \[0, 4\)"):
        getattr(numba_loss, name)(x, target)


def test_kernel_refuses_probabilities_outside_0_1():
    numba_loss = pytest.importorskip("nnumpy.backend.numba_loss", reason="Numba is not installed")
    with pytest.raises(ValueError, match=r"input values must lie in \[0, 1\]"):
        numba_loss.binary_cross_entropy(np.array([[0.5, 1.5]]), np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"target values must lie in \[0, 1\]"):
        numba_loss.binary_cross_entropy(np.array([[0.5, 0.5]]), np.array([[0.0, np.nan]]))


# ---------------------------------------------------------------------------
# The loss protocol
# ---------------------------------------------------------------------------
PROTOCOL = ["ce-weight-smoothing", "ce-soft", "nll-weight-ignore", "bcel-weight-pos", "bce-weight",
            "margin-p2-weight", "l1", "huber", "smoothl1", "mse"]


@pytest.mark.parametrize("bk", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", PROTOCOL)
def test_loss_protocol(case, reduction, dtype, bk):
    crit, data = make(case, reduction)
    x, target = data(np.random.default_rng(5))
    x = x.astype(dtype)
    x0, t0 = x.copy(), np.array(target, copy=True)
    with backend.use(bk):
        with pytest.raises(RuntimeError, match="without a preceding forward"):
            crit.backward()
        loss = crit(x, target)
        if reduction == "none":
            assert isinstance(loss, np.ndarray) and loss.dtype == dtype
            dloss = np.random.default_rng(6).uniform(0.5, 2, loss.shape).astype(dtype)
        else:
            assert isinstance(loss, float)
            dloss = 1.7
        d0 = np.array(dloss, copy=True)
        dx = crit.backward(dloss)
        assert type(dx) is np.ndarray and dx.dtype == dtype and dx.shape == x.shape
        with pytest.raises(RuntimeError, match="without a preceding forward"):
            crit.backward()
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(target, t0)
        np.testing.assert_array_equal(dloss, d0)
        # backward(dloss) is dloss times backward() (dloss = 1)
        crit(x, target)
        dx1 = crit.backward()
        expected = dx1 * (dloss[:, None] if reduction == "none" and dloss.ndim < x.ndim else dloss)
        np.testing.assert_allclose(dx, expected, rtol=TOL[dtype] * 10, atol=0)
        expected_terms = x.size if case.startswith(("bce", "l1", "huber", "smoothl1", "mse")) else x.shape[0]
        assert crit.num_terms(x) == expected_terms


@pytest.mark.parametrize("bk", BACKENDS)
def test_backward_uses_the_forwards_hyper_parameters(bk):
    """Changing a hyper-parameter between forward and backward does not change the gradient."""
    rng = np.random.default_rng(8)
    x, t = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    with backend.use(bk):
        for make_crit, change in [
                (lambda: nnp.CrossEntropyLoss([1.0, 2.0, 3.0, 4.0], label_smoothing=0.1),
                 dict(label_smoothing=0.5, weight=None, reduction="sum", ignore_index=0)),
                (lambda: nnp.NLLLoss(ignore_index=1), dict(ignore_index=2, reduction="none")),
                (lambda: nnp.MultiMarginLoss(p=2, margin=0.5), dict(p=1, margin=3.0, reduction="sum")),
                (lambda: nnp.HuberLoss(delta=0.5), dict(delta=2.0)),
                (lambda: nnp.SmoothL1Loss(beta=0.5), dict(beta=0.0))]:
            a, b = make_crit(), make_crit()
            target = t if not isinstance(a, (nnp.HuberLoss, nnp.SmoothL1Loss)) else rng.standard_normal((6, 4))
            a(x, target)
            b(x, target)
            for k, v in change.items():
                setattr(b, k, v)
            np.testing.assert_array_equal(a.backward(), b.backward())


def test_mse_uses_its_kernel_from_4096_elements():
    """Below, MSE's three ufunc calls are as fast as the kernel (benchmarks/kernels.py)."""
    pytest.importorskip("nnumpy.backend.numba_loss", reason="Numba is not installed")
    crit = nnp.MSELoss()
    with backend.use("numba"):
        for shape, fused in (((40, 100), False), ((50, 100), True)):
            crit(np.zeros(shape), np.ones(shape))
            assert ("dinput" in crit._cache) == fused
            np.testing.assert_allclose(crit.backward(), np.full(shape, -2 / np.prod(shape)), rtol=1e-15)


def test_hyper_parameters_are_checked_when_set():
    crit = nnp.CrossEntropyLoss(label_smoothing=0.1)
    with pytest.raises(ValueError, match="label_smoothing"):
        crit.label_smoothing = 1.5
    assert crit.label_smoothing == 0.1
    crit.weight = [1, 2, 3]
    assert crit.weight.dtype == np.float64 and not crit.weight.flags.writeable
    with pytest.raises(ValueError, match="weight"):
        crit.weight = [1, -2, 3]
    assert crit.weight.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="reduction"):
        crit.reduction = "avg"
    # the set value is used
    z, t = np.zeros((2, 3)), np.array([0, 2])
    assert crit(z, t) == pytest.approx(np.log(3))


def test_weights_are_copied():
    w = np.array([1.0, 2.0, 3.0])
    crit = nnp.CrossEntropyLoss(w)
    w[0] = -5.0
    assert crit.weight.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("case", list(CASES))
def test_config_rebuilds_the_loss_and_pickles(case):
    crit, data = make(case, "sum")
    x, target = data(np.random.default_rng(9))
    config = crit.get_config()
    twin = type(crit)(**config)
    assert twin.get_config() == config
    assert repr(twin) == repr(crit) and type(crit).__name__ in repr(crit)
    clone = pickle.loads(pickle.dumps(crit))
    deep = copy.deepcopy(crit)
    with backend.use("numpy"):
        assert crit(x, target) == twin(x, target) == clone(x, target) == deep(x, target)


def test_old_positional_reduction_of_cross_entropy():
    assert nnp.CrossEntropyLoss("sum").reduction == "sum" and nnp.CrossEntropyLoss("sum").weight is None
    with pytest.raises(ValueError, match="reduction"):
        nnp.CrossEntropyLoss("average")
    with pytest.raises(TypeError, match="weight"):
        nnp.CrossEntropyLoss("sum", reduction="none")


def test_torch_signatures(torch):
    """Same argument names and defaults as PyTorch (its deprecated size_average and reduce aside)."""
    for name in ["CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "MultiMarginLoss", "L1Loss",
                 "HuberLoss", "SmoothL1Loss", "MSELoss"]:
        ours = {k: p.default for k, p in inspect.signature(getattr(nnp.nn, name)).parameters.items()}
        theirs = {k: p.default for k, p in inspect.signature(getattr(torch.nn, name)).parameters.items()
                  if k not in ("size_average", "reduce")}
        assert ours == theirs, name
        assert set(getattr(nnp.nn, name)().get_config()) == set(theirs), name


# ---------------------------------------------------------------------------
# Bad arguments: clear errors naming them
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("make_loss,exc,match", [
    (lambda: nnp.NLLLoss(reduction="avg"), ValueError, "reduction must be one of"),
    (lambda: nnp.L1Loss(None), ValueError, "reduction"),
    (lambda: nnp.NLLLoss("sum"), TypeError, "weight must be an array of real numbers"),
    (lambda: nnp.NLLLoss([[1.0, 2.0]]), ValueError, "weight must be a 1-d array"),
    (lambda: nnp.NLLLoss([]), ValueError, "weight must be a 1-d array"),
    (lambda: nnp.CrossEntropyLoss([1.0, np.nan]), ValueError,
     r"weight must be finite and >= 0, got nan at index \(1,\)"),
    (lambda: nnp.CrossEntropyLoss([1.0, np.inf]), ValueError, "weight must be finite"),
    (lambda: nnp.CrossEntropyLoss([1.0, -1.0]), ValueError, r"weight must be finite and >= 0, got -1.0"),
    (lambda: nnp.CrossEntropyLoss([True, False]), TypeError, "weight"),
    (lambda: nnp.CrossEntropyLoss(ignore_index=1.5), TypeError, "ignore_index must be an integer"),
    (lambda: nnp.CrossEntropyLoss(ignore_index="0"), TypeError, "ignore_index"),
    (lambda: nnp.NLLLoss(ignore_index=2**63), ValueError, "ignore_index must fit in 64 bits"),
    (lambda: nnp.CrossEntropyLoss(label_smoothing=-0.1), ValueError,
     r"label_smoothing must be a finite number in \[0, 1\]"),
    (lambda: nnp.CrossEntropyLoss(label_smoothing=1.01), ValueError, "label_smoothing"),
    (lambda: nnp.CrossEntropyLoss(label_smoothing=np.nan), ValueError, "label_smoothing"),
    (lambda: nnp.CrossEntropyLoss(label_smoothing="0.1"), TypeError, "label_smoothing"),
    (lambda: nnp.CrossEntropyLoss(None, -1), TypeError, "positional"),
    (lambda: nnp.BCEWithLogitsLoss(pos_weight=[1.0, -2.0]), ValueError, "pos_weight must be finite and >= 0"),
    (lambda: nnp.BCEWithLogitsLoss(pos_weight=np.nan), ValueError, "pos_weight must be finite"),
    (lambda: nnp.BCEWithLogitsLoss(weight="x"), TypeError, "weight"),
    (lambda: nnp.BCELoss(weight=[[0.5, -0.1]]), ValueError, "weight must be finite and >= 0"),
    (lambda: nnp.MultiMarginLoss(p=3), ValueError, "p must be 1 or 2"),
    (lambda: nnp.MultiMarginLoss(p=1.5), TypeError, "p must be an integer"),
    (lambda: nnp.MultiMarginLoss(margin=np.inf), ValueError, "margin must be a finite number"),
    (lambda: nnp.MultiMarginLoss(margin=None), TypeError, "margin"),
    (lambda: nnp.MultiMarginLoss(weight=[1.0, np.nan]), ValueError, "weight"),
    (lambda: nnp.HuberLoss(delta=0.0), ValueError, "delta must be a finite number > 0"),
    (lambda: nnp.HuberLoss(delta=-1.0), ValueError, "delta"),
    (lambda: nnp.HuberLoss(delta=np.nan), ValueError, "delta"),
    (lambda: nnp.SmoothL1Loss(beta=-0.5), ValueError, "beta must be a finite number >= 0"),
    (lambda: nnp.SmoothL1Loss(beta=np.inf), ValueError, "beta"),
])
def test_bad_hyper_parameters(make_loss, exc, match):
    with pytest.raises(exc, match=match) as info:
        make_loss()
    err = pickle.loads(pickle.dumps(info.value))                 # exceptions survive pickling
    assert type(err) is type(info.value) and str(err) == str(info.value)


Z = np.zeros((3, 4))
P = np.full((3, 4), 0.5)


@pytest.mark.parametrize("bk", BACKENDS)
@pytest.mark.parametrize("crit,x,target,exc,match", [
    (nnp.CrossEntropyLoss(), Z, np.array([0, 4, 1]), ValueError, r"target values must lie in \[0, 4\) or equal "
                                                                 r"ignore_index=-100; sample 1 has target 4$"),
    (nnp.CrossEntropyLoss(), Z, np.array([0, -100, -1]), ValueError, r"target values must lie in \[0, 4\)"),
    (nnp.CrossEntropyLoss(ignore_index=9), Z, np.array([0, 9, 9]), None, None),
    (nnp.CrossEntropyLoss(), Z, np.array([0.0, 1.0, 2.0]), TypeError, "integer class indices"),
    (nnp.CrossEntropyLoss(), Z, np.array([True, False, True]), TypeError, "integer class indices"),
    (nnp.CrossEntropyLoss(), Z, np.array([0, 1]), ValueError, r"target has shape \(2,\), expected \(3,\)"),
    (nnp.CrossEntropyLoss(), Z, np.zeros((3, 5)), ValueError, r"class-probability target has shape \(3, 5\)"),
    (nnp.CrossEntropyLoss(), Z, np.zeros((3, 4), np.int64), ValueError, r"target has shape \(3, 4\)"),
    (nnp.CrossEntropyLoss(ignore_index=0), Z, np.zeros((3, 4)), ValueError, "ignore_index=0 is not supported"),
    (nnp.CrossEntropyLoss([1.0, 2.0, 3.0]), Z, np.array([0, 1, 2]), ValueError,
     "weight has 3 entries but the input has 4 classes"),
    (nnp.CrossEntropyLoss(), np.zeros(4), np.array([0]), ValueError, r"logits of shape \(N, C\)"),
    (nnp.CrossEntropyLoss(), np.zeros((3, 0)), np.array([0, 0, 0]), ValueError, "C >= 1"),
    (nnp.CrossEntropyLoss(), np.zeros((3, 4), np.int64), np.array([0, 1, 2]), TypeError, "float32 or float64"),
    (nnp.CrossEntropyLoss(), [[0.0, 1.0]], np.array([0]), TypeError, "NumPy array"),
    (nnp.NLLLoss(), Z, np.array([0, 1, 7]), ValueError, r"NLLLoss: target values must lie in \[0, 4\)"),
    (nnp.NLLLoss(), Z, np.zeros((3, 4)), TypeError, r"integer class indices \(N,\) as target"),
    (nnp.NLLLoss(), np.zeros((2, 3, 4)), np.zeros(2, np.int64), ValueError, r"input of shape \(N, C\)"),
    (nnp.MultiMarginLoss(), Z, np.array([0, -100, 1]), ValueError, r"MultiMarginLoss: target values must lie in "
                                                                   r"\[0, 4\); sample 1 has target -100"),
    (nnp.MultiMarginLoss(weight=[1.0, 1.0]), Z, np.array([0, 1, 1]), ValueError, "weight has 2 entries"),
    (nnp.BCELoss(), P + 0.6, P, ValueError, r"BCELoss: input values must lie in \[0, 1\], got 12 outside it"),
    (nnp.BCELoss(), np.where(np.eye(3, 4) > 0, np.nan, P), P, ValueError, r"input values must lie in \[0, 1\]"),
    (nnp.BCELoss(), P, P - 0.6, ValueError, r"target values must lie in \[0, 1\]"),
    (nnp.BCELoss(), P, P[:2], ValueError, r"target has shape \(2, 4\), the input \(3, 4\)"),
    (nnp.BCELoss(weight=np.ones(3)), P, P, ValueError, r"weight of shape \(3,\) does not broadcast to the input's "
                                                       r"shape \(3, 4\)"),
    (nnp.BCEWithLogitsLoss(pos_weight=np.ones(3)), Z, P, ValueError, r"pos_weight of shape \(3,\) does not broadcast"),
    (nnp.BCEWithLogitsLoss(weight=np.ones((2, 3, 4))), Z, P, ValueError, r"weight of shape \(2, 3, 4\)"),
    (nnp.BCEWithLogitsLoss(), Z, P.astype(bool), TypeError, "target must be an array of integers or floats"),
    (nnp.BCEWithLogitsLoss(), Z, np.array([[0, 1, 1, 0]] * 3), None, None),
    (nnp.L1Loss(), Z, np.zeros(3), ValueError, r"target has shape \(3,\), the input \(3, 4\) \(integer labels\? "
                                               r"use nnumpy.one_hot"),
    (nnp.HuberLoss(), Z, np.array([["a"] * 4] * 3), TypeError, "target must be an array of integers or floats"),
    (nnp.SmoothL1Loss(), Z.astype(np.float16), Z, TypeError, "float32 or float64"),
])
def test_bad_inputs(bk, crit, x, target, exc, match):
    with backend.use(bk):
        if exc is None:
            crit(x, target)
            crit.backward()
            return
        with pytest.raises(exc, match=match):
            crit(x, target)
        with pytest.raises(RuntimeError, match="without a preceding forward"):
            crit.backward()                   # a refused forward keeps nothing


@pytest.mark.parametrize("bk", BACKENDS)
def test_bad_upstream_gradients(bk):
    x, t = np.zeros((3, 4)), np.array([0, 1, 2])
    with backend.use(bk):
        for crit, target in ((nnp.CrossEntropyLoss(reduction="none"), t), (nnp.L1Loss("none"), x + 1)):
            shape = (3,) if target.ndim == 1 else (3, 4)
            crit(x, target)
            with pytest.raises(ValueError, match=rf"expects dloss of shape \({shape[0]},"):
                crit.backward(np.ones(5))
            crit(x, target)
            with pytest.raises(TypeError, match="dloss as an array of numbers"):
                crit.backward(np.array(["a"] * 3))
        crit = nnp.BCEWithLogitsLoss()
        crit(x, x)
        with pytest.raises(TypeError, match=r"BCEWithLogitsLoss\(reduction='mean'\).backward expects dloss as a "
                                            r"number"):
            crit.backward("1")
        crit(x, x)
        with pytest.raises(TypeError, match="dloss as a number"):
            crit.backward(np.ones(2))
        crit(x, x)
        assert crit.backward(np.array(2.0)).shape == x.shape


#: Run in a new process: the loss kernels' warm_up(), then every Numba dispatcher of numba_loss
#: with its cache statistics.
KERNEL_CACHE_STATS = """
import json
from numba.core.dispatcher import Dispatcher
import nnumpy.backend.numba_loss as k
k.warm_up()
print(json.dumps({name: [sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values())]
                  for name, f in vars(k).items()
                  if isinstance(f, Dispatcher) and f.targetoptions.get("inline") != "always"}))
"""


def test_warm_up_compiles_every_loss_kernel_and_the_cache_keeps_them(tmp_path):
    """A new process with an empty NUMBA_CACHE_DIR compiles every loss kernel in warm_up
    (misses, no hits); a second one loads them all from there (hits, no misses).  Helpers
    with inline="always" are compiled into their callers, never on their own: left out."""
    pytest.importorskip("nnumpy.backend.numba_loss", reason="Numba is not installed")
    root = os.path.dirname(os.path.dirname(nnp.__file__))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}

    def stats():
        out = subprocess.run([sys.executable, "-c", KERNEL_CACHE_STATS], env=env, check=True,
                             capture_output=True, text=True, timeout=600).stdout
        return json.loads(out.splitlines()[-1])

    cold = stats()
    assert len(cold) >= 10
    assert all(misses > 0 and hits == 0 for hits, misses in cold.values()), cold
    warm = stats()
    assert warm.keys() == cold.keys()
    assert all(misses == 0 and hits > 0 for hits, misses in warm.values()), warm
