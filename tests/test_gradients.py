"""Finite differences in float64 against every backward pass."""
import numpy as np
import pytest

import nnumpy as nnp
from conftest import KINK_MARGIN, away_from_zero, kink_distance

TOL = 1e-6


def check(module, x, tol=TOL, **kw):
    """gradcheck at tolerance ``tol``; the report's own verdict decides."""
    report = nnp.gradcheck(module, x, tolerance=tol, **kw)
    assert report, "\n" + str(report)
    return report


@pytest.mark.parametrize("make", [
    lambda: nnp.Linear(7, 5, rng=0, dtype=np.float64),
    lambda: nnp.Linear(7, 5, bias=False, rng=1, dtype=np.float64),
    lambda: nnp.Linear(1, 1, rng=2, dtype=np.float64),
    nnp.ReLU, lambda: nnp.LeakyReLU(0.1), nnp.Sigmoid, nnp.Tanh, nnp.Identity,
    lambda: nnp.Dropout(0.3, rng=5), lambda: nnp.Dropout(0.0), lambda: nnp.Dropout(1.0, rng=0),
], ids=["linear", "linear-nobias", "linear-1x1", "relu", "leaky", "sigmoid", "tanh",
        "identity", "dropout", "dropout-p0", "dropout-p1"])
def test_layer_gradients(make, rng):
    module = make()
    x = away_from_zero((6, getattr(module, "in_features", 7)), rng)
    r = check(module, x)
    names = [row["name"] for row in r.rows]
    assert names[0] == "input" and len(names) == 1 + len(module.parameters())


def test_linear_on_3d_input(rng):
    check(nnp.Linear(4, 3, rng=0, dtype=np.float64), rng.standard_normal((2, 5, 4)))


def test_flatten_gradient(rng):
    model = nnp.Sequential(nnp.Flatten(), nnp.Linear(12, 3, rng=0, dtype=np.float64))
    check(model, rng.standard_normal((5, 3, 4)))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_gradient(reduction, rng):
    logits = 3 * rng.standard_normal((9, 4))
    check(nnp.CrossEntropyLoss(reduction), logits, target=rng.integers(0, 4, 9))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_gradient(reduction, rng):
    pred = rng.standard_normal((6, 3))
    check(nnp.MSELoss(reduction), pred, target=rng.standard_normal((6, 3)))


def test_reduction_none_backward_takes_per_sample_upstream(rng):
    logits, t = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    w = rng.standard_normal(5)
    crit_none, crit_sum = nnp.CrossEntropyLoss("none"), nnp.CrossEntropyLoss("sum")
    per = crit_none(logits, t)
    assert per.shape == (5,)
    crit_sum(logits, t)
    # d/dz sum_n w_n loss_n, checked against the weighted sum's finite differences
    dz = crit_none.backward(w)
    eps, num = 1e-6, np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        lp, lm = logits.copy(), logits.copy()
        lp[idx] += eps
        lm[idx] -= eps
        num[idx] = (w @ nnp.CrossEntropyLoss("none")(lp, t) - w @ nnp.CrossEntropyLoss("none")(lm, t)) / (2 * eps)
    np.testing.assert_allclose(dz, num, rtol=1e-6, atol=1e-9)


MIXED = ["relu", "sigmoid", "tanh", "leaky_relu", "identity"]


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("with_loss", [False, True])
def test_mlp_gradients_any_depth(depth, with_loss):
    rng = np.random.default_rng(100 + depth)
    sizes = [int(s) for s in rng.integers(2, 9, depth + 1)]
    acts = [MIXED[(i + depth) % len(MIXED)] for i in range(depth - 1)]
    for seed in range(50):          # choose inputs whose pre-activations avoid the kinks
        model = nnp.MLP(sizes, activation=acts, dtype=np.float64, rng=seed)
        x = rng.standard_normal((5, sizes[0]))
        if kink_distance(model, x) > KINK_MARGIN:
            break
    else:
        pytest.fail("no input away from the ReLU kinks")
    kw = dict(loss=nnp.CrossEntropyLoss(), target=rng.integers(0, sizes[-1], 5)) if with_loss else {}
    check(model, x, **kw)


def test_gradcheck_catches_a_wrong_backward(rng):
    class BadTanh(nnp.Tanh):
        def backward(self, dy):
            return super().backward(dy) * 1.001     # a 0.1 % error
    report = nnp.gradcheck(nnp.Sequential(BadTanh()), rng.standard_normal((3, 4)))
    assert not report.ok and report.max_rel_error > 1e-4
    assert "FAILED" in str(report) and "NO" in str(report)


def test_gradcheck_does_not_touch_the_module(rng):
    model = nnp.MLP([4, 5, 3], rng=0)
    before = model.state_dict()
    nnp.gradcheck(model, rng.standard_normal((2, 4)), max_checks=5)
    assert model.dtype == np.float32
    for k, v in model.state_dict().items():
        assert np.array_equal(v, before[k])
    assert all(not p.grad.any() for p in model.parameters())


def test_gradcheck_max_checks_samples_entries(rng):
    r = check(nnp.Linear(30, 20, rng=0), rng.standard_normal((2, 30)), max_checks=10)
    assert [row["checked"] for row in r.rows] == [10, 10, 10]


class _Scale(nnp.nn.Module):
    """y = 2 x, with a backward off by ``factor`` (1: correct)."""

    def __init__(self, factor=1.0):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        self._save(shape=x.shape)
        return 2.0 * x

    def backward(self, dy):
        self._take_cache()
        return 2.0 * self.factor * dy


@pytest.mark.parametrize("factor,ok", [(1.0, True), (1.5, False), (1.01, False)])
def test_gradcheck_judges_tiny_gradients_by_the_finite_difference_noise(factor, ok):
    """A loss averaged over 4096 samples: input gradients of 1e-6 to 5e-4, so the central
    difference's rounding (about 2.2e-16 |f| / eps, 2e-11 here) is 5e-8 of the scale, above
    a tolerance of 1e-8.  A correct backward passes, its row saying so; a wrong one (50 % or
    1 % off) still fails: those differences are far above the noise floor."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4096, 10))
    t = rng.integers(0, 10, 4096)
    rep = nnp.gradcheck(_Scale(factor), x, target=t, loss=nnp.CrossEntropyLoss(), max_checks=40,
                        tolerance=1e-8)
    row = rep.rows[0]
    assert rep.ok is ok
    assert row["noise"] > 0 and row["skipped"] == 0          # rounding noise is no kink either
    if ok:
        assert row["rel_err"] > 1e-8 and row["within_noise"] and "within the finite differences' noise" in str(rep)
    else:
        assert not row["within_noise"] and row["abs_err"] > 100 * row["noise"]
