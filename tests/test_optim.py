"""Optimizers and schedulers against hand-computed updates."""
import math

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy.optim import SGD, Adam, AdamW, CosineAnnealingLR, StepLR


def param(values, dtype=np.float64):
    return nnp.Parameter(np.array(values, dtype=dtype))


def steps(opt, p, grads):
    for g in grads:
        p.grad[...] = g
        opt.step()
    return p.data


G = [0.5, 0.25]


def test_sgd_plain():
    p = param([1.0, -2.0])
    steps(SGD([p], lr=0.1), p, [G, G])
    np.testing.assert_allclose(p.data, [1 - 0.1, -2 - 0.05], rtol=0, atol=1e-15)


def test_sgd_momentum_with_weight_decay():
    p = param([1.0, -2.0])
    steps(SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1), p, [G, G])
    # step 1: g' = g + 0.1 p = [0.6, 0.05]; buf = g'; p = [0.94, -2.005]
    # step 2: g' = [0.594, 0.0495]; buf = 0.9 [0.6, 0.05] + g' = [1.134, 0.0945]
    np.testing.assert_allclose(p.data, [0.94 - 0.1134, -2.005 - 0.00945], rtol=0, atol=1e-14)


def test_sgd_nesterov():
    p = param([1.0, -2.0])
    steps(SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, [G, G])
    # step 1: buf = g; update g + 0.9 g = [0.95, 0.475] -> p = [0.905, -2.0475]
    # step 2: buf = 1.9 g = [0.95, 0.475]; update g + 0.9 buf = [1.355, 0.6775]
    np.testing.assert_allclose(p.data, [0.905 - 0.1355, -2.0475 - 0.06775], rtol=0, atol=1e-14)


def test_sgd_dampening():
    p = param([0.0, 0.0])
    steps(SGD([p], lr=1.0, momentum=0.9, dampening=0.5), p, [G, G])
    # buf1 = g (no dampening on the first step); buf2 = 0.9 g + 0.5 g = 1.4 g
    np.testing.assert_allclose(p.data, [-(1 + 1.4) * 0.5, -(1 + 1.4) * 0.25], atol=1e-15)


def test_sgd_leaves_grad_alone_and_updates_in_place():
    p = param([1.0, 2.0])
    data_id = id(p.data)
    p.grad[...] = G
    SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5).step()
    assert id(p.data) == data_id
    np.testing.assert_array_equal(p.grad, G)


def adam_reference(p0, grads, lr, b1, b2, eps, wd=0.0, decoupled=False):
    """Textbook Adam with bias-corrected moments, in plain Python floats."""
    p, m, v = p0, 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        elif wd:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * m_hat / (math.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("cls,wd", [(Adam, 0.0), (Adam, 0.1), (AdamW, 0.1), (AdamW, 0.0)])
def test_adam_matches_textbook(cls, wd):
    grads = [0.5, 0.25, -1.0, 0.1, 2.0]
    p = param([1.0])
    opt = cls([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    steps(opt, p, [[g] for g in grads])
    expect = adam_reference(1.0, grads, 0.1, 0.9, 0.999, 1e-8, wd, decoupled=cls is AdamW)
    assert p.data[0] == pytest.approx(expect, rel=1e-13)
    assert opt.state[p]["step"] == len(grads)


def test_adam_first_step_moves_by_lr():
    p = param([1.0, 1.0])
    steps(Adam([p], lr=0.01), p, [[3.0, -1e-3]])
    np.testing.assert_allclose(p.data, [0.99, 1.01], atol=1e-7)


def test_amsgrad_uses_running_max():
    p = param([0.0])
    opt = Adam([p], lr=0.1, amsgrad=True)
    steps(opt, p, [[2.0], [0.0]])       # v: 0.004 then 0.999 * 0.004 = 0.003996
    assert opt.state[p]["max_exp_avg_sq"][0] == pytest.approx(0.001 * 4.0)


def test_float32_parameters_stay_float32():
    p = param([1.0, 2.0], dtype=np.float32)
    for opt in (SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-4), Adam([p]), AdamW([p])):
        p.grad[...] = G
        opt.step()
        assert p.data.dtype == np.float32
        assert all(v.dtype == np.float32 for s in opt.state.values() for v in s.values()
                   if isinstance(v, np.ndarray))


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
                                  lambda ps: Adam(ps, lr=0.01), lambda ps: AdamW(ps, lr=0.01)])
def test_optimizer_state_dict_round_trip(make):
    rng = np.random.default_rng(0)
    a, b = param(rng.standard_normal(3)), param(rng.standard_normal((2, 2)))
    opt = make([a, b])
    grads = [(rng.standard_normal(3), rng.standard_normal((2, 2))) for _ in range(6)]
    for ga, gb in grads[:3]:
        a.grad[...], b.grad[...] = ga, gb
        opt.step()
    a2, b2 = param(a.data), param(b.data)
    opt2 = make([a2, b2])
    opt2.load_state_dict(opt.state_dict())
    for ga, gb in grads[3:]:
        for pa, pb, o in ((a, b, opt), (a2, b2, opt2)):
            pa.grad[...], pb.grad[...] = ga, gb
            o.step()
    np.testing.assert_array_equal(a.data, a2.data)
    np.testing.assert_array_equal(b.data, b2.data)


def test_param_groups_have_their_own_lr():
    a, b = param([1.0]), param([1.0])
    opt = SGD([{"params": [a], "lr": 1.0}, {"params": [b]}], lr=0.1)
    a.grad[...], b.grad[...] = 1.0, 1.0
    opt.step()
    assert a.data[0] == 0.0 and b.data[0] == pytest.approx(0.9)


def test_bad_hyperparameters_are_rejected():
    p = param([1.0])
    with pytest.raises(ValueError, match="learning rate"):
        SGD([p], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        Adam([p], betas=(1.0, 0.999))
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        SGD([p, p], lr=0.1)


def test_step_lr():
    opt = SGD([param([0.0])], lr=1.0)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125]
    assert sched.get_last_lr() == [0.125]     # epoch 7


def test_cosine_annealing_lr_follows_closed_form_past_t_max():
    opt = SGD([param([0.0])], lr=1.0)
    sched = CosineAnnealingLR(opt, T_max=4, eta_min=0.1)
    for e in range(13):
        expect = 0.1 + 0.9 * (1 + math.cos(math.pi * e / 4)) / 2
        assert opt.param_groups[0]["lr"] == pytest.approx(expect, abs=1e-12), e
        sched.step()


@pytest.mark.parametrize("make, key, bad", [
    (lambda p: SGD([p], lr=0.1), "lr", float("nan")),
    (lambda p: SGD([p], lr=0.1), "lr", -0.5),
    (lambda p: SGD([p], lr=0.1), "lr", np.float64("nan")),
    (lambda p: SGD([p], lr=0.1), "lr", "0.1"),
    (lambda p: SGD([p], lr=0.1, momentum=0.9, nesterov=True), "dampening", 0.5),   # a combination check
    (lambda p: Adam([p], lr=0.1), "betas", (0.9, 1.5)),
    (lambda p: Adam([p], lr=0.1), "betas", (0.9, float("nan"))),
])
def test_remembered_checks_never_let_a_bad_value_through(make, key, bad):
    """step() skips the checks of hyper-parameters that passed them before (a per-step saving): a bad
    value written into a group after many good steps is still refused, with nothing moved, and a good
    value seen before is taken again."""
    p = param([1.0, -2.0])
    opt = make(p)
    good = opt.param_groups[0][key]
    for _ in range(3):
        p.grad[:] = 1.0
        opt.step()
    opt.param_groups[0][key] = bad
    before = p.data.copy()
    with pytest.raises((ValueError, TypeError), match=key):
        opt.step()
    assert np.array_equal(p.data, before)
    opt.param_groups[0][key] = good
    opt.step()
    assert not np.array_equal(p.data, before)
    opt.param_groups[0][key] = bad                    # refused every time, not only the first
    with pytest.raises((ValueError, TypeError), match=key):
        opt.step()
