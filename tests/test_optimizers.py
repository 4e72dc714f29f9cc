"""RMSprop, Adagrad, ``maximize``, frozen parameters and gradient clipping, against PyTorch 2.13.

* every optimizer configuration follows torch's trajectory for 50 steps (float64, rtol 1e-10), with two
  parameter groups of different hyper-parameters, on both backends, and ends with torch's state;
* the fused numba kernels equal the NumPy reference (1e-12 float64, 1e-5 float32) on odd shapes;
* a state dict taken mid-trajectory continues bit for bit; old state dicts without ``maximize`` load;
* frozen parameters (``requires_grad`` False) are not touched, get no state, and the others move as
  torch moves them when its copy of the parameter has requires_grad=False;
* clip_grad_norm_ / clip_grad_value_ equal torch's (norms 1, 2, 3.5, inf);
* bad arguments raise clear errors naming them.
"""
import math
import pickle
import warnings

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import backend
from nnumpy.backend import numba_ops
from nnumpy.backend import numpy_ops as ref
from nnumpy.nn.utils import NonFiniteNormError, clip_grad_norm_, clip_grad_value_
from nnumpy.optim import SGD, Adagrad, Adam, AdamW, RMSprop

BACKENDS = ["numpy", "numba"]
SHAPES = [(3, 5), (7,), (2, 1, 3)]          # group 0: the first two, group 1: the last
STEPS = 50
RTOL, ATOL = 1e-10, 1e-13


@pytest.fixture(params=BACKENDS)
def on_backend(request):
    with backend.use(request.param):
        yield request.param


# name: (nnumpy class, defaults, overrides of group 1).  torch's class has the same name and arguments.
CONFIGS = {
    "sgd": (SGD, dict(lr=0.1), dict(lr=0.05)),
    "sgd-momentum-dampening-wd-maximize": (SGD, dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2,
                                                     maximize=True), dict(momentum=0.5, weight_decay=0.0)),
    "sgd-nesterov-wd": (SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                        dict(lr=0.01, maximize=True)),
    "adam": (Adam, dict(lr=1e-2), dict(betas=(0.8, 0.99), eps=1e-6)),
    "adam-wd-amsgrad-maximize": (Adam, dict(lr=1e-2, weight_decay=1e-2, amsgrad=True, maximize=True),
                                 dict(amsgrad=False, weight_decay=0.1)),
    "adamw": (AdamW, dict(lr=1e-2, weight_decay=0.1), dict(maximize=True, amsgrad=True)),
    "adamw-maximize-amsgrad": (AdamW, dict(lr=1e-2, weight_decay=0.05, amsgrad=True, maximize=True),
                               dict(lr=3e-3, betas=(0.5, 0.9))),
    "rmsprop": (RMSprop, dict(), dict(alpha=0.9, eps=1e-6)),
    "rmsprop-momentum-centered-wd": (RMSprop, dict(lr=1e-2, momentum=0.9, centered=True, weight_decay=1e-2),
                                     dict(centered=False, momentum=0.0)),
    "rmsprop-maximize-momentum": (RMSprop, dict(lr=5e-3, momentum=0.5, maximize=True),
                                  dict(centered=True, maximize=False, alpha=0.4, weight_decay=0.1)),
    "adagrad": (Adagrad, dict(), dict(lr=0.1, lr_decay=0.01)),
    "adagrad-initial-accumulator": (Adagrad, dict(lr=0.05, initial_accumulator_value=0.3), dict(eps=1e-6)),
    "adagrad-decay-wd-maximize-per-group-accumulator": (
        Adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=1e-2, initial_accumulator_value=0.1, maximize=True),
        dict(initial_accumulator_value=0.5, maximize=False, lr_decay=0.0)),
}


def arrays(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def gradients(seed=1, steps=STEPS):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


def groups(ps, overrides):
    return [{"params": ps[:2]}, {"params": ps[2:], **overrides}]


def make_torch_optimizer(torch, cls, tps, defaults, overrides):
    topt = getattr(torch.optim, cls.__name__)(groups(tps, overrides), **defaults)
    if cls is Adagrad:
        # torch fills every sum with the constructor's initial_accumulator_value and ignores a per-group
        # override; nnumpy uses the group's (see Adagrad's docstring): give torch the group's value.
        for g in topt.param_groups:
            for tp in g["params"]:
                topt.state[tp]["sum"].fill_(g["initial_accumulator_value"])
    return topt


def torch_params(torch, values, frozen=()):
    return [torch.tensor(v.copy(), dtype=torch.float64, requires_grad=i not in frozen) for i, v in enumerate(values)]


def assert_state_matches_torch(opt, topt, ps, tps):
    for p, tp in zip(ps, tps):
        theirs = topt.state.get(tp, {})
        ours = opt.state.get(p, {})
        assert set(ours) == set(theirs), (sorted(ours), sorted(theirs))
        for k, v in theirs.items():
            if k == "step":
                assert ours[k] == float(v), k
            else:
                np.testing.assert_allclose(ours[k], v.numpy(), rtol=RTOL, atol=ATOL, err_msg=k)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_trajectory_matches_torch_over_50_steps(torch, on_backend, name):
    cls, defaults, overrides = CONFIGS[name]
    values = arrays()
    ps = [nnp.Parameter(v) for v in values]
    tps = torch_params(torch, values)
    opt = cls(groups(ps, overrides), **defaults)
    topt = make_torch_optimizer(torch, cls, tps, defaults, overrides)
    for t, gs in enumerate(gradients(), start=1):
        for p, tp, g in zip(ps, tps, gs):
            p.grad[...] = g
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
        for i, (p, tp) in enumerate(zip(ps, tps)):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name}: parameter {i} after step {t}")
    assert_state_matches_torch(opt, topt, ps, tps)
    moved = max(np.abs(p.data - v).max() for p, v in zip(ps, values))
    assert moved > 1e-2                                     # the updates were not negligible


def test_adagrad_with_one_accumulator_value_matches_torch_without_help(torch):
    """With no per-group override nnumpy's lazily created sums equal torch's eagerly created ones."""
    values = arrays()
    ps = [nnp.Parameter(v) for v in values]
    tps = torch_params(torch, values)
    opt = Adagrad(ps, lr=0.1, initial_accumulator_value=0.7, lr_decay=0.02)
    topt = torch.optim.Adagrad(tps, lr=0.1, initial_accumulator_value=0.7, lr_decay=0.02)
    for gs in gradients(steps=10):
        for p, tp, g in zip(ps, tps, gs):
            p.grad[...] = g
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=RTOL, atol=ATOL)
    assert_state_matches_torch(opt, topt, ps, tps)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop, Adagrad])
def test_maximize_is_minimizing_the_negated_objective(on_backend, cls):
    """maximize=True on g is, bit for bit, maximize=False on -g (torch's definition)."""
    kw = dict(lr=0.05, weight_decay=0.1) if cls is not SGD else dict(lr=0.05, weight_decay=0.1, momentum=0.9)
    a, b = nnp.Parameter(arrays()[0]), nnp.Parameter(arrays()[0])
    up, down = cls([a], maximize=True, **kw), cls([b], **kw)
    for gs in gradients(steps=5):
        a.grad[...], b.grad[...] = gs[0], -gs[0]
        up.step()
        down.step()
    np.testing.assert_array_equal(a.data, b.data)
    assert up.param_groups[0]["maximize"] is True and down.param_groups[0]["maximize"] is False


# ---------------------------------------------------------------------------------------------
# Kernels against the reference
# ---------------------------------------------------------------------------------------------
KERNEL_SHAPES = [(1, 1), (7, 13), (1, 784), (1000, 3), (2, 3, 5)]
TOL = {np.float64: 1e-12, np.float32: 1e-5}


def noncontig(a):
    """The same values in a non-contiguous array (every other element of the last axis of a wider one)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


def assert_kernel_close(actual, expected, dtype):
    assert actual.dtype == expected.dtype == dtype
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(actual, expected, rtol=TOL[dtype], atol=TOL[dtype] * 1e-3)


RMSPROP_CFGS = {"plain": dict(), "wd": dict(weight_decay=0.1), "momentum": dict(momentum=0.9),
                "centered": dict(centered=True), "centered-momentum-wd-maximize":
                    dict(centered=True, momentum=0.8, weight_decay=0.05, maximize=True),
                "alpha-0.3-maximize": dict(alpha=0.3, maximize=True)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", KERNEL_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("cfg", list(RMSPROP_CFGS))
def test_rmsprop_kernel_matches_reference(shape, cfg, dtype):
    cfg = dict(RMSPROP_CFGS[cfg])
    centered, alpha = cfg.pop("centered", False), cfg.pop("alpha", 0.99)
    rng = np.random.default_rng(2)
    p0 = rng.standard_normal(shape).astype(dtype)
    runs = {}
    for ops in (ref, numba_ops):
        p = p0.copy()
        v = np.zeros(shape, dtype)
        a = np.zeros(shape, dtype) if centered else None
        b = np.zeros(shape, dtype) if cfg.get("momentum") else None
        grads = np.random.default_rng(3)
        for _ in range(4):
            g = grads.standard_normal(shape).astype(dtype)
            g0 = g.copy()
            ops.rmsprop_update(p, g if ops is ref else noncontig(g), v, a, b, 0.01, alpha, 1e-8, **cfg)
            np.testing.assert_array_equal(g, g0)                   # the gradient is never written
        runs[ops] = (p, v, a, b)
    for x, y in zip(runs[numba_ops], runs[ref]):
        if y is not None:
            assert_kernel_close(x, y, dtype)


ADAGRAD_CFGS = {"plain": dict(), "lr_decay": dict(lr_decay=0.1), "wd-maximize": dict(weight_decay=0.1, maximize=True),
                "initial-accumulator-eps": dict(initial=0.5, eps=1e-3)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", KERNEL_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("cfg", list(ADAGRAD_CFGS))
def test_adagrad_kernel_matches_reference(shape, cfg, dtype):
    cfg = dict(ADAGRAD_CFGS[cfg])
    initial = cfg.pop("initial", 0.0)
    rng = np.random.default_rng(4)
    p0 = rng.standard_normal(shape).astype(dtype)
    runs = {}
    for ops in (ref, numba_ops):
        p, s = p0.copy(), np.full(shape, initial, dtype)
        grads = np.random.default_rng(5)
        for step in range(1, 5):
            g = grads.standard_normal(shape).astype(dtype)
            g0 = g.copy()
            ops.adagrad_update(p, g if ops is ref else noncontig(g), s, step, 0.1, **cfg)
            np.testing.assert_array_equal(g, g0)
        runs[ops] = (p, s)
    for x, y in zip(runs[numba_ops], runs[ref]):
        assert_kernel_close(x, y, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", KERNEL_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("cfg", [dict(), dict(momentum=0.9, weight_decay=0.1), dict(weight_decay=0.1),
                                 dict(momentum=0.8, nesterov=True)], ids=["plain", "momentum-wd", "wd", "nesterov"])
def test_sgd_kernel_maximize_matches_reference(shape, cfg, dtype):
    rng = np.random.default_rng(6)
    p0 = rng.standard_normal(shape).astype(dtype)
    out = {}
    for ops in (ref, numba_ops):
        p, buf, grads = p0.copy(), None, np.random.default_rng(7)
        for _ in range(3):
            buf = ops.sgd_update(p, noncontig(grads.standard_normal(shape).astype(dtype)), buf, 0.05, maximize=True,
                                 **cfg)
        out[ops] = (p, buf)
    assert_kernel_close(out[numba_ops][0], out[ref][0], dtype)
    if "momentum" in cfg:
        assert_kernel_close(out[numba_ops][1], out[ref][1], dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", KERNEL_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("cfg", [dict(weight_decay=0.1), dict(weight_decay=0.1, decoupled=True),
                                 dict(amsgrad=True)], ids=["adam-l2", "adamw", "amsgrad"])
def test_adam_kernel_maximize_matches_reference(shape, cfg, dtype):
    cfg = dict(cfg)
    ams = cfg.pop("amsgrad", False)
    rng = np.random.default_rng(8)
    p0 = rng.standard_normal(shape).astype(dtype)
    out = {}
    for ops in (ref, numba_ops):
        p, grads = p0.copy(), np.random.default_rng(9)
        m, v, vmax = (np.zeros(shape, dtype) for _ in range(3))
        for step in range(1, 5):
            ops.adam_update(p, grads.standard_normal(shape).astype(dtype), m, v, vmax if ams else None, step,
                            0.01, 0.9, 0.999, 1e-8, maximize=True, **cfg)
        out[ops] = (p, m, v, vmax)
    for x, y in zip(out[numba_ops], out[ref]):
        assert_kernel_close(x, y, dtype)


@pytest.mark.parametrize("make", [lambda ps: RMSprop(ps, momentum=0.9, centered=True, weight_decay=1e-3),
                                  lambda ps: Adagrad(ps, lr_decay=0.1, initial_accumulator_value=0.1)],
                         ids=["rmsprop", "adagrad"])
def test_float32_parameters_and_state_stay_float32(on_backend, make):
    ps = [nnp.Parameter(v.astype(np.float32)) for v in arrays()]
    opt = make(ps)
    for gs in gradients(steps=3):
        for p, g in zip(ps, gs):
            p.grad[...] = g
        opt.step()
    assert all(p.data.dtype == np.float32 for p in ps)
    assert all(v.dtype == np.float32 for s in opt.state.values() for v in s.values() if isinstance(v, np.ndarray))
    assert all(np.isfinite(p.data).all() for p in ps)


# ---------------------------------------------------------------------------------------------
# State dicts
# ---------------------------------------------------------------------------------------------
def run(opt, ps, grads):
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad[...] = g
        opt.step()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_state_dict_round_trip_mid_trajectory_continues_identically(on_backend, name):
    cls, defaults, overrides = CONFIGS[name]
    grads = gradients(steps=12)
    ps = [nnp.Parameter(v) for v in arrays()]
    opt = cls(groups(ps, overrides), **defaults)
    run(opt, ps, grads[:6])
    saved = opt.state_dict()
    twin_ps = [nnp.Parameter(p.data) for p in ps]
    twin = cls(groups(twin_ps, {}), lr=0.5)                 # other hyper-parameters: the state dict brings them
    twin.load_state_dict(saved)
    run(opt, ps, grads[6:])
    run(twin, twin_ps, grads[6:])
    for p, q in zip(ps, twin_ps):
        np.testing.assert_array_equal(p.data, q.data)
    assert repr(opt) == repr(twin)


def test_adagrad_state_dict_before_the_first_step_and_torch_form_load():
    """No state before a parameter's first update; loading that (or torch's step-0 form) changes nothing."""
    grads = gradients(steps=4)
    ps = [nnp.Parameter(v) for v in arrays()]
    opt = Adagrad(ps, lr=0.1, initial_accumulator_value=0.25)
    fresh = opt.state_dict()
    assert fresh["state"] == {}
    torch_form = {"state": {i: {"step": 0, "sum": np.full(s, 0.25)} for i, s in enumerate(SHAPES)},
                  "param_groups": fresh["param_groups"]}
    twins = []
    for sd in (fresh, torch_form):
        qs = [nnp.Parameter(v) for v in arrays()]
        o = Adagrad(qs, lr=0.1)
        o.load_state_dict(sd)
        twins.append((o, qs))
    run(opt, ps, grads)
    for o, qs in twins:
        run(o, qs, grads)
        for p, q in zip(ps, qs):
            np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("name", ["sgd-momentum-dampening-wd-maximize", "adam", "rmsprop-momentum-centered-wd",
                                  "adagrad"])
def test_state_dicts_written_before_maximize_existed_still_load(name):
    cls, defaults, overrides = CONFIGS[name]
    defaults = {k: v for k, v in defaults.items() if k != "maximize"}
    overrides = {k: v for k, v in overrides.items() if k != "maximize"}
    grads = gradients(steps=6)
    ps = [nnp.Parameter(v) for v in arrays()]
    opt = cls(groups(ps, overrides), **defaults)
    run(opt, ps, grads[:3])
    old = opt.state_dict()
    for g in old["param_groups"]:
        del g["maximize"]                                     # as nnumpy wrote them before
    qs = [nnp.Parameter(p.data) for p in ps]
    twin = cls(groups(qs, {}), maximize=True)
    twin.load_state_dict(old)
    assert all(g["maximize"] is False for g in twin.param_groups)
    run(opt, ps, grads[3:])
    run(twin, qs, grads[3:])
    for p, q in zip(ps, qs):
        np.testing.assert_array_equal(p.data, q.data)


def test_rmsprop_buffers_follow_the_group_and_the_state_dict_loads_back():
    ps = [nnp.Parameter(v) for v in arrays()]
    opt = RMSprop(ps, lr=1e-2)
    run(opt, ps, gradients(steps=2))
    assert set(opt.state[ps[0]]) == {"step", "square_avg"}
    opt.param_groups[0]["momentum"], opt.param_groups[0]["centered"] = 0.9, True
    run(opt, ps, gradients(seed=2, steps=1))
    assert set(opt.state[ps[0]]) == {"step", "square_avg", "momentum_buffer", "grad_avg"}
    assert opt.state[ps[0]]["step"] == 3
    opt.param_groups[0]["momentum"] = 0.0
    run(opt, ps, gradients(seed=3, steps=1))
    assert set(opt.state[ps[0]]) == {"step", "square_avg", "grad_avg"}
    twin = RMSprop([nnp.Parameter(v) for v in arrays()])
    twin.load_state_dict(opt.state_dict())
    assert set(twin.state_dict()["state"][0]) == {"step", "square_avg", "grad_avg"}


# ---------------------------------------------------------------------------------------------
# Frozen parameters
# ---------------------------------------------------------------------------------------------
FROZEN_CONFIGS = ["sgd-momentum-dampening-wd-maximize", "adam-wd-amsgrad-maximize", "adamw",
                  "rmsprop-momentum-centered-wd", "adagrad-decay-wd-maximize-per-group-accumulator"]


@pytest.mark.parametrize("name", FROZEN_CONFIGS)
def test_frozen_parameters_are_untouched_and_the_others_move_as_in_torch(torch, on_backend, name):
    cls, defaults, overrides = CONFIGS[name]
    values = arrays()
    frozen = (1, 2)                                           # one in each group
    ps = [nnp.Parameter(v) for v in values]
    for i in frozen:
        ps[i].requires_grad = False
    tps = torch_params(torch, values, frozen)
    opt = cls(groups(ps, overrides), **defaults)
    topt = make_torch_optimizer(torch, cls, tps, defaults, overrides)
    before = [ps[i].data.copy() for i in frozen]
    for gs in gradients(steps=20):
        for i, (p, tp, g) in enumerate(zip(ps, tps, gs)):
            p.grad[...] = g                                   # a stale gradient on a frozen one must not be used
            if i not in frozen:
                tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for i, b in zip(frozen, before):
        assert ps[i].data.tobytes() == b.tobytes()            # bit for bit (weight decay would have moved it)
        assert ps[i] not in opt.state
        assert i not in opt.state_dict()["state"]
    np.testing.assert_allclose(ps[0].data, tps[0].detach().numpy(), rtol=RTOL, atol=ATOL)
    assert not np.array_equal(ps[0].data, values[0])


@pytest.mark.parametrize("name", FROZEN_CONFIGS)
def test_freezing_mid_training_keeps_the_state_and_unfreezing_resumes(on_backend, name):
    cls, defaults, overrides = CONFIGS[name]
    grads = gradients(steps=6)
    ps = [nnp.Parameter(v) for v in arrays()]
    opt = cls(groups(ps, overrides), **defaults)
    run(opt, ps, grads[:2])
    state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in opt.state[ps[0]].items()}
    data = ps[0].data.copy()
    ps[0].requires_grad = False
    run(opt, ps, grads[2:4])
    assert ps[0].data.tobytes() == data.tobytes()
    assert opt.state[ps[0]].keys() == state.keys()
    for k, v in state.items():
        np.testing.assert_array_equal(opt.state[ps[0]][k], v)
    # unfrozen, it continues as a twin that never saw the two frozen steps
    ps[0].requires_grad = True
    twin_p = nnp.Parameter(data)
    twin = cls([twin_p], **defaults)
    twin.state[twin_p] = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}
    run(opt, ps, grads[4:])
    run(twin, [twin_p], [[g[0]] for g in grads[4:]])
    np.testing.assert_array_equal(ps[0].data, twin_p.data)


def test_module_requires_grad_freezes_through_the_optimizer(on_backend):
    model = nnp.MLP([4, 5, 3], dtype=np.float64, rng=0)
    model[0].requires_grad_(False)
    frozen = {id(p) for p in model[0].parameters()}
    before = {id(p): p.data.copy() for p in model.parameters()}
    opt = Adam(model.parameters(), lr=0.1, weight_decay=0.1)
    for p in model.parameters():
        p.grad[...] = 1.0
    opt.step()
    for p in model.parameters():
        assert np.array_equal(p.data, before[id(p)]) == (id(p) in frozen)
    assert set(map(id, opt.state)) == {id(p) for p in model.parameters()} - frozen


# ---------------------------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------------------------
def clip_setup(torch, dtype=np.float64, frozen=(1,), seed=10, scale=1.0):
    rng = np.random.default_rng(seed)
    grads = [scale * rng.standard_normal(s).astype(dtype) for s in [(4, 3), (5,), (2, 2, 2), (1,)]]
    ps, tps = [], []
    for i, g in enumerate(grads):
        p = nnp.Parameter(np.zeros(g.shape, dtype))
        p.grad[...] = g
        tp = torch.zeros(g.shape, dtype=getattr(torch, np.dtype(dtype).name))
        if i in frozen:
            p.requires_grad = False
        else:
            tp.requires_grad_(True)
            tp.grad = torch.tensor(g)
        ps.append(p)
        tps.append(tp)
    return ps, tps, grads


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5, math.inf, "inf"], ids=repr)
@pytest.mark.parametrize("max_norm", [0.5, 1e3, math.inf], ids=["clipping", "no-clipping", "only-measuring"])
def test_clip_grad_norm_matches_torch(torch, norm_type, max_norm):
    ps, tps, grads = clip_setup(torch)
    total = clip_grad_norm_(ps, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type=float(norm_type))
    assert isinstance(total, float)
    assert total == pytest.approx(float(ttotal), rel=1e-12, abs=0)
    p = float(norm_type)
    flat = np.concatenate([g.ravel() for i, g in enumerate(grads) if i != 1])
    direct = np.abs(flat).max() if p == math.inf else (np.abs(flat) ** p).sum() ** (1 / p)
    assert total == pytest.approx(direct, rel=1e-12)          # the norm of all gradients as one vector
    for i, (q, tq) in enumerate(zip(ps, tps)):
        if i == 1:
            np.testing.assert_array_equal(q.grad, grads[1])     # frozen: not scaled
        else:
            np.testing.assert_allclose(q.grad, tq.grad.numpy(), rtol=1e-12, atol=0)
    clipped = [q.grad for i, q in enumerate(ps) if i != 1]
    flat = np.concatenate([g.ravel() for g in clipped])
    after = np.abs(flat).max() if p == math.inf else (np.abs(flat) ** p).sum() ** (1 / p)
    assert after <= max_norm * (1 + 1e-12)
    if max_norm > total:
        assert all(np.array_equal(q.grad, g) for q, g in zip(ps, grads))


def test_clip_grad_norm_float32_stays_float32_and_close_to_torch(torch):
    ps, tps, _ = clip_setup(torch, np.float32, frozen=())
    total = clip_grad_norm_(ps, 0.5, 3.0)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, 0.5, 3.0)
    assert total == pytest.approx(float(ttotal), rel=1e-6)
    for q, tq in zip(ps, tps):
        assert q.grad.dtype == np.float32
        np.testing.assert_allclose(q.grad, tq.grad.numpy(), rtol=1e-6, atol=0)


def test_clip_grad_norm_single_parameter_empty_list_and_duplicates(torch):
    ps, tps, grads = clip_setup(torch, frozen=())
    assert clip_grad_norm_(ps[0], 0.1) == pytest.approx(float(torch.nn.utils.clip_grad_norm_(tps[0], 0.1)),
                                                         rel=1e-12)
    np.testing.assert_allclose(ps[0].grad, tps[0].grad.numpy(), rtol=1e-12)
    assert clip_grad_norm_([], 1.0) == 0.0
    with pytest.warns(UserWarning, match="empty generator"):
        assert clip_grad_norm_((p for p in []), 1.0) == 0.0
    qs, _, _ = clip_setup(torch, frozen=())
    assert clip_grad_norm_([qs[2], qs[2], qs[3]], 1e3) == pytest.approx(clip_grad_norm_([qs[2], qs[3]], 1e3))
    all_frozen, _, grads = clip_setup(torch, frozen=(0, 1, 2, 3))
    assert clip_grad_norm_(all_frozen, 0.1) == 0.0
    assert all(np.array_equal(q.grad, g) for q, g in zip(all_frozen, grads))


def test_clip_grad_norm_non_finite(torch):
    ps, tps, grads = clip_setup(torch, frozen=())
    ps[2].grad[0, 0, 0] = np.nan
    tps[2].grad[0, 0, 0] = float("nan")
    before = [q.grad.copy() for q in ps]
    with pytest.raises(NonFiniteNormError, match="nan") as info:
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, ValueError)
    assert math.isnan(info.value.total_norm) and info.value.norm_type == 2.0
    for q, b in zip(ps, before):
        np.testing.assert_array_equal(q.grad, b)                 # nothing scaled (NaN == NaN here)
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_(tps, 1.0, error_if_nonfinite=True)
    total = clip_grad_norm_(ps, 1.0)                              # as torch: scaled by NaN
    ttotal = torch.nn.utils.clip_grad_norm_(tps, 1.0)
    assert math.isnan(total) and math.isnan(float(ttotal))
    for q, tq in zip(ps, tps):
        np.testing.assert_array_equal(np.isnan(q.grad), np.isnan(tq.grad.numpy()))
    ps, tps, _ = clip_setup(torch, frozen=())
    ps[0].grad[1, 2], tps[0].grad[1, 2] = np.inf, float("inf")
    total = clip_grad_norm_(ps, 1.0, norm_type="inf")
    ttotal = torch.nn.utils.clip_grad_norm_(tps, 1.0, norm_type="inf")
    assert total == float(ttotal) == math.inf
    for q, tq in zip(ps, tps):                                     # coef 0: zeros, and NaN where inf was
        np.testing.assert_array_equal(q.grad, tq.grad.numpy())


def test_non_finite_norm_error_pickles():
    e = NonFiniteNormError(math.inf, 2.0)
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is NonFiniteNormError and str(back) == str(e)
    assert back.total_norm == math.inf and back.norm_type == 2.0


@pytest.mark.parametrize("clip_value", [0.0, 0.3, 10.0])
def test_clip_grad_value_matches_torch(torch, clip_value):
    ps, tps, grads = clip_setup(torch)
    ps[0].grad[0, 0] = tps[0].grad[0, 0] = np.nan
    assert clip_grad_value_(ps, clip_value) is None
    torch.nn.utils.clip_grad_value_(tps, clip_value)
    for i, (q, tq) in enumerate(zip(ps, tps)):
        if i == 1:
            np.testing.assert_array_equal(q.grad, grads[1])      # frozen
        else:
            np.testing.assert_array_equal(q.grad, tq.grad.numpy())   # NaN where torch has NaN
    assert np.abs(ps[2].grad).max() <= clip_value
    p32 = nnp.Parameter(np.zeros(3, np.float32))
    p32.grad[...] = [-2.0, 0.1, 5.0]
    clip_grad_value_(p32, 1.0)
    assert p32.grad.dtype == np.float32 and p32.grad.tolist() == pytest.approx([-1.0, 0.1, 1.0])


# ---------------------------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
BAD_HYPER = {
    RMSprop: {"lr": [-0.1], "alpha": [-0.1, 1.5], "eps": [-1e-8], "weight_decay": [-1e-4], "momentum": [-0.5]},
    Adagrad: {"lr": [-0.1], "lr_decay": [-0.1], "weight_decay": [-1e-4], "initial_accumulator_value": [-1.0],
              "eps": [-1e-10]},
}
HYPER_CASES = [(c, k, v) for c, ks in BAD_HYPER.items() for k, extra in ks.items()
               for v in [NAN, INF, -INF, None, "0.1", True] + extra]


def params():
    return [nnp.Parameter(v) for v in arrays()]


def shown(value):
    """How an error message shows a bad value."""
    return "nan" if isinstance(value, float) and math.isnan(value) else repr(value)


@pytest.mark.parametrize("cls,key,value", HYPER_CASES, ids=[f"{c.__name__}-{k}-{v!r}" for c, k, v in HYPER_CASES])
def test_bad_hyper_parameters_are_refused_naming_them(cls, key, value):
    with pytest.raises((ValueError, TypeError)) as info:
        cls(params(), **{key: value})
    assert key in str(info.value) and shown(value) in str(info.value), str(info.value)
    ps = params()
    with pytest.raises((ValueError, TypeError), match=rf"param_groups\[1\]\['{key}'\]"):
        cls([{"params": ps[:1]}, {"params": ps[1:], key: value}])
    if value is None or isinstance(value, str):
        return
    opt = cls(ps)
    run(opt, ps, gradients(steps=1))
    saved = [p.data.copy() for p in ps]
    opt.param_groups[0][key] = value                                    # as a scheduler could write it
    with pytest.raises(ValueError, match=rf"step: param_groups\[0\]\['{key}'\]"):
        opt.step()
    assert all(np.array_equal(p.data, s) for p, s in zip(ps, saved))


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop, Adagrad])
@pytest.mark.parametrize("value", ["True", 1, None], ids=repr)
def test_maximize_must_be_a_bool(cls, value):
    with pytest.raises(TypeError, match=rf"maximize must be True or False, got {value!r}"):
        cls(params(), lr=0.1, maximize=value)


KEYWORD_ONLY = {SGD: (0.1, 0.0, 0.0, 0.0, False), Adam: (0.1, (0.9, 0.999), 1e-8, 0.0, False),
                AdamW: (0.1, (0.9, 0.999), 1e-8, 0.0, False), RMSprop: (0.01, 0.99, 1e-8, 0.0, 0.0, False),
                Adagrad: (0.01, 0.0, 0.0, 0.0, 1e-10)}


@pytest.mark.parametrize("cls", list(KEYWORD_ONLY), ids=lambda c: c.__name__)
def test_maximize_is_keyword_only(cls):
    cls(params(), *KEYWORD_ONLY[cls], maximize=True)       # every other argument can be positional
    with pytest.raises(TypeError, match="positional argument"):
        cls(params(), *KEYWORD_ONLY[cls], True)


def test_centered_must_be_a_bool():
    with pytest.raises(TypeError, match="centered must be True or False"):
        RMSprop(params(), centered="yes")


def test_load_state_dict_checks_the_new_optimizers_state():
    ps = params()
    rms = RMSprop(ps, momentum=0.9)
    run(rms, ps, gradients(steps=2))
    sd = rms.state_dict()
    del sd["state"][0]["momentum_buffer"]
    with pytest.raises(ValueError, match="missing momentum_buffer"):
        RMSprop(params(), momentum=0.9).load_state_dict(sd)
    ada = Adagrad(ps)
    run(ada, ps, gradients(steps=1))
    sd = ada.state_dict()
    sd["state"][1]["sum"] = -np.ones(SHAPES[1])
    target = Adagrad(params())
    with pytest.raises(ValueError, match=r"state\[1\]\['sum'\] holds negative values"):
        target.load_state_dict(sd)
    assert target.state == {}
    with pytest.raises(ValueError, match="looks like the state of RMSprop"):
        Adagrad(params()).load_state_dict(rms.state_dict())


CLIP_BAD = [
    (lambda ps: clip_grad_norm_(ps, -1.0), ValueError, "max_norm must be a finite number >= 0, got -1.0"),
    (lambda ps: clip_grad_norm_(ps, NAN), ValueError, "max_norm .* got nan"),
    (lambda ps: clip_grad_norm_(ps, -INF), ValueError, "max_norm .* got -inf"),   # (+inf: only measures)
    (lambda ps: clip_grad_norm_(ps, "1"), TypeError, "max_norm .* got '1'"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=0), ValueError, r"norm_type must be .* > 0, got 0 \(or inf"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=-2.0), ValueError, "norm_type .* got -2.0"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=-INF), ValueError, "norm_type .* got -inf"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=NAN), ValueError, "norm_type .* got nan"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type="two"), TypeError, "norm_type .* got 'two'"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=True), TypeError, "norm_type .* got True"),
    (lambda ps: clip_grad_norm_(ps, 1.0, error_if_nonfinite="yes"), TypeError, "error_if_nonfinite must be True"),
    (lambda ps: clip_grad_norm_(ps, 1.0, foreach="no"), TypeError, "foreach must be True or False"),
    (lambda ps: clip_grad_norm_(nnp.MLP([3, 2]), 1.0), TypeError, r"model\.parameters\(\), not the model"),
    (lambda ps: clip_grad_norm_([ps[0].data], 1.0), TypeError, r"parameters\[0\] must be a Parameter"),
    (lambda ps: clip_grad_norm_(5, 1.0), TypeError, "parameters must be a Parameter or an iterable"),
    (lambda ps: clip_grad_value_(ps, -1.0), ValueError, "clip_value must be a finite number >= 0, got -1.0"),
    (lambda ps: clip_grad_value_(ps, NAN), ValueError, "clip_value .* got nan"),
    (lambda ps: clip_grad_value_(ps, None), TypeError, "clip_value .* got None"),
    (lambda ps: clip_grad_value_(ps, 1.0, foreach=1), TypeError, "foreach must be True or False"),
    (lambda ps: clip_grad_value_([ps[0], "w"], 1.0), TypeError, r"parameters\[1\] must be a Parameter"),
]


@pytest.mark.parametrize("i", range(len(CLIP_BAD)))
def test_clipping_refuses_bad_arguments_before_touching_a_gradient(i):
    call, kind, pattern = CLIP_BAD[i]
    ps = params()
    for p, g in zip(ps, gradients(steps=1)[0]):
        p.grad[...] = 100 * g
    before = [p.grad.copy() for p in ps]
    with pytest.raises(kind, match=pattern):
        call(ps)
    assert all(np.array_equal(p.grad, b) for p, b in zip(ps, before))


def test_clipping_accepts_torch_spellings():
    ps = params()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clip_grad_norm_(ps, 1, norm_type=2, error_if_nonfinite=False, foreach=True)
        clip_grad_norm_(iter(ps), np.float32(1.0), norm_type=np.inf, foreach=False)
        clip_grad_value_(tuple(ps), 1)
    assert nnp.nn.utils.clip_grad_norm_ is clip_grad_norm_ and nnp.nn.utils.clip_grad_value_ is clip_grad_value_
