"""Extreme inputs stay finite."""
import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import functional as F


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_on_huge_logits(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0], [1e4, 1e4, -1e4]], dtype=dtype)
    target = np.array([1, 1, 0])
    crit = nnp.CrossEntropyLoss()
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # underflow to 0 is fine
        loss = crit(logits, target)
        dz = crit.backward()
    # sample 0: lse = 1e4, loss = 1e4 - (-1e4) = 2e4; sample 1: 0; sample 2: log 2
    assert loss == pytest.approx((2e4 + 0.0 + np.log(2)) / 3, rel=1e-6)
    assert np.isfinite(dz).all() and dz.dtype == dtype
    np.testing.assert_allclose(dz[0], np.array([1, -1, 0]) / 3, atol=1e-7)
    np.testing.assert_allclose(dz[2], np.array([-0.5, 0.5, 0]) / 3, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_on_huge_inputs(dtype):
    x = np.array([-1e3, -100.0, -1.0, 0.0, 1.0, 100.0, 1e3], dtype=dtype)[None, :]
    s = nnp.Sigmoid()
    with np.errstate(over="raise", invalid="raise"):
        y = s(x)
        dx = s.backward(np.ones_like(y))
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    assert y[0, 0] == 0.0 and y[0, -1] == 1.0 and y[0, 3] == 0.5
    np.testing.assert_allclose(y[0, 2] + y[0, 4], 1.0, rtol=1e-6)


def test_log_softmax_is_normalised_and_shift_invariant():
    z = np.random.default_rng(0).standard_normal((4, 6)) * 50
    lp = F.log_softmax(z)
    np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(z + 1e6), lp, atol=1e-6)


def test_tanh_saturates_without_nan():
    t = nnp.Tanh()
    y = t(np.array([[-1e4, 1e4]]))
    assert np.array_equal(y, [[-1.0, 1.0]])
    assert np.array_equal(t.backward(np.ones((1, 2))), [[0.0, 0.0]])


def test_loss_input_validation():
    crit = nnp.CrossEntropyLoss()
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"target values must lie in \[0, 4\)"):
        crit(z, np.array([0, 4, 1]))
    with pytest.raises(TypeError, match="integer class indices"):
        crit(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"target has shape \(2,\), expected \(3,\)"):
        crit(z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\)"):
        crit(np.zeros(4, np.float32), np.array([0]))
    with pytest.raises(ValueError, match="one_hot"):
        nnp.MSELoss()(z, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        nnp.CrossEntropyLoss("average")
