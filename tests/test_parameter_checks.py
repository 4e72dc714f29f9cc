"""Bad input found by a tester (issue 14), refused at the boundary with a clear message:

* ``Parameter.data`` / ``Parameter.grad`` assignments (the fused kernels index them without bounds
  checks, so a gradient of another shape or dtype corrupted memory on the numba backend);
* optimizer state that overflows the parameter's dtype when loaded;
* a scheduler step whose rate comes out as inf or NaN;
* ``clip_grad_norm_(max_norm=inf)`` (accepted: it only measures the norm, as in PyTorch);
* ``nn.init`` arguments that failed deep inside NumPy (negative gain, overflowing bounds, bad rng);
* CrossEntropyLoss's message for a string weight, and BCELoss's message on both backends.
"""
import copy
import json
import math
import pickle

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import backend, nn, optim
from nnumpy._checks import ArgumentTypeError
from nnumpy.nn import init
from nnumpy.nn.utils import clip_grad_norm_
from nnumpy.optim import ExponentialLR, LambdaLR, OneCycleLR, SequentialLR, StepLR
from nnumpy.random import resolve_rng

BACKENDS = backend.available_backends()
DTYPES = [np.float32, np.float64]


def other(dtype):
    return np.float64 if dtype == np.float32 else np.float32


def param(dtype=np.float64, shape=(4, 3), seed=0):
    p = nn.Parameter(np.random.default_rng(seed).standard_normal(shape).astype(dtype))
    p.grad[...] = np.random.default_rng(seed + 1).standard_normal(shape)
    return p


def raises_and_pickles(exc, pattern, call):
    """``call()`` raises ``exc`` matching ``pattern``; the error survives pickling."""
    with pytest.raises(exc, match=pattern) as info:
        call()
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is type(info.value) and str(back) == str(info.value)
    return info.value


# ---------------------------------------------------------------------------------------------
# Parameter.grad
# ---------------------------------------------------------------------------------------------
BAD_GRADS = {
    "one element": (lambda p: np.ones(1, p.dtype), ValueError, r"Parameter\.grad must have the parameter's "
                                                               r"shape \(4, 3\), got shape \(1,\)"),
    "transposed shape": (lambda p: np.ones((3, 4), p.dtype), ValueError, r"shape \(4, 3\), got shape \(3, 4\)"),
    "other float dtype": (lambda p: np.ones(p.shape, other(p.dtype)), TypeError,
                          r"Parameter\.grad must have the parameter's dtype float(32|64), got dtype float"),
    "int dtype": (lambda p: np.ones(p.shape, np.int64), TypeError, "got dtype int64"),
    "None": (lambda p: None, TypeError, r"cannot be set to None.*param\.zero_grad\(\).*optimizer\.zero_grad\(\)"),
    "list": (lambda p: np.ones(p.shape).tolist(), TypeError, r"must be a NumPy array of shape \(4, 3\).*list"),
    "float": (lambda p: 0.0, TypeError, "must be a NumPy array.*got 0.0"),
    "masked": (lambda p: np.ma.masked_array(np.zeros(p.shape, p.dtype)), TypeError, "MaskedArray"),
}


def refused_and_unchanged(attr, bad, dtype, be):
    """Assigning ``bad[0](p)`` to ``p.<attr>`` raises ``bad[1]`` matching ``bad[2]`` (a ValueError, or an
    ArgumentTypeError for a TypeError, which pickles) and leaves the parameter exactly as it was.
    Returns the parameter and copies of its data and gradient from before."""
    make, exc, pattern = bad
    with backend.use(be):
        p = param(dtype)
        data, grad = p.data, p.grad
        data0, grad0 = data.copy(), grad.copy()
        err = raises_and_pickles(exc, pattern, lambda: setattr(p, attr, make(p)))
        assert isinstance(err, ValueError)                   # type errors are ArgumentTypeErrors: ValueErrors too
        assert isinstance(err, ArgumentTypeError) == (exc is TypeError)
        assert p.data is data and p.grad is grad and p.dtype == dtype
        np.testing.assert_array_equal(p.data, data0)
        np.testing.assert_array_equal(p.grad, grad0)
    return p, data0, grad0


@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(BAD_GRADS))
def test_a_bad_gradient_is_refused_and_changes_nothing(case, dtype, be):
    p, data0, grad0 = refused_and_unchanged("grad", BAD_GRADS[case], dtype, be)
    with backend.use(be):
        optim.SGD([p], lr=0.5).step()                       # the kernel sees the parameter's own gradient
    np.testing.assert_array_equal(p.data, (data0 - dtype(0.5) * grad0).astype(dtype))


@pytest.mark.parametrize("be", BACKENDS)
def test_the_testers_reproductions_are_refused_at_assignment(be):
    with backend.use(be):
        p = nn.Parameter(np.zeros((300, 300), np.float32))
        with pytest.raises(ValueError, match=r"shape \(300, 300\), got shape \(1,\)"):
            p.grad = np.ones(1, np.float32)
        optim.SGD([p], lr=1.0).step()
        assert not p.data.any()                              # zero gradient: nothing moved, nothing garbage

        model = nnp.Sequential(nnp.Linear(3, 5, rng=0), nnp.ReLU(), nnp.Linear(5, 2, rng=1))
        with pytest.raises(ValueError, match=r"shape \(5,\), got shape \(1,\)"):
            model[0].bias.grad = np.zeros(1, np.float32)
        x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
        model.zero_grad()
        model.backward(np.ones_like(model(x)))
        assert model[0].bias.grad.shape == (5,) and np.isfinite(model[0].bias.grad).all()

        q = nn.Parameter(np.zeros((3, 2), np.float32))
        with pytest.raises(TypeError, match="float32 or float64, got dtype int64"):
            q.data = np.ones((3, 2), int)
        q.grad[...] = 1
        optim.Adam([q], lr=0.1).step()
        np.testing.assert_allclose(q.data, -0.1, rtol=1e-6)  # Adam's first step: -lr * sign(grad)

        for target in (p, model[0].weight):
            with pytest.raises(TypeError, match="cannot be set to None"):
                target.grad = None
        nnp.nn.utils.clip_grad_norm_(model.parameters(), 1.0)   # every gradient still an array


def test_the_gradients_match_torch_on_both_backends_after_refused_assignments(torch, rng):
    x = rng.standard_normal((6, 3))
    for be in BACKENDS:
        with backend.use(be):
            model = nnp.Sequential(nnp.Linear(3, 5, rng=0, dtype=np.float64), nnp.Tanh(),
                                   nnp.Linear(5, 2, rng=1, dtype=np.float64))
            for bad in (np.zeros(1), np.zeros(5, np.float32), None):
                with pytest.raises(ValueError):          # TypeErrors here are ArgumentTypeErrors: ValueErrors too
                    model[0].bias.grad = bad
            model.zero_grad()
            model.backward(np.ones_like(model(x)) / 6)
        tmodel = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
        with torch.no_grad():
            for t, p in zip(tmodel.parameters(), model.parameters()):
                t.copy_(torch.tensor(p.data))
        tmodel(torch.tensor(x)).mean(dim=0).sum().backward()    # d/dy = 1/6 everywhere, as above
        for t, p in zip(tmodel.parameters(), model.parameters()):
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_torch_refuses_such_gradients_too(torch):
    """nnumpy follows PyTorch here: a gradient of another shape or dtype cannot be assigned."""
    t = torch.nn.Parameter(torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="same size"):
        t.grad = torch.zeros(1, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="dtype"):
        t.grad = torch.zeros(4, 3, dtype=torch.float32)


def test_a_good_gradient_keeps_its_identity_or_is_copied_to_c_order():
    p = param(np.float64, (3, 3))
    g = np.arange(9.0).reshape(3, 3)
    p.grad = g
    assert p.grad is g                                       # C-contiguous and writeable: adopted as it is
    g[0, 0] = 100.0
    assert p.grad[0, 0] == 100.0
    ro = np.ones((3, 3))
    ro.flags.writeable = False
    for given in (g.T, np.asfortranarray(g), np.arange(18.0).reshape(3, 6)[:, ::2], ro):
        p.grad = given
        assert p.grad is not given and p.grad.flags.c_contiguous and p.grad.flags.writeable
        np.testing.assert_array_equal(p.grad, given)


def test_lazy_zeroing_and_grad_for_update_follow_an_assigned_gradient():
    p = param()
    p.zero_grad()
    g = np.full(p.shape, 2.0)
    p.grad = g                                                # the zero mark belongs to the old array
    assert p.grad is g and (p.grad == 2).all()
    arr, accumulate = p.grad_for_update()
    assert arr is g and accumulate
    p.zero_grad()
    arr, accumulate = p.grad_for_update()
    assert arr is g and not accumulate


# ---------------------------------------------------------------------------------------------
# Parameter.data
# ---------------------------------------------------------------------------------------------
BAD_DATA = {
    "int": (lambda p: np.ones(p.shape, np.int64), TypeError, r"Parameter\.data must be float32 or float64, "
                                                            r"got dtype int64"),
    "float16": (lambda p: np.ones(p.shape, np.float16), TypeError, "got dtype float16"),
    "other shape": (lambda p: np.ones((3, 2), p.dtype), ValueError,
                    r"Parameter\.data must keep the parameter's shape \(4, 3\), got shape \(3, 2\).*new Parameter"),
    "other shape and dtype": (lambda p: np.ones((2000,), other(p.dtype)), ValueError, "keep the parameter's shape"),
    "None": (lambda p: None, TypeError, "must be a NumPy array of float32 or float64, got None"),
    "list": (lambda p: np.ones(p.shape).tolist(), TypeError, "must be a NumPy array.*list"),
    "matrix": (lambda p: np.ones(p.shape, p.dtype).view(np.matrix), TypeError, "matrix"),
}


@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_is_refused_and_changes_nothing(case, dtype, be):
    p, data0, _ = refused_and_unchanged("data", BAD_DATA[case], dtype, be)
    with backend.use(be):
        optim.Adam([p], lr=0.1).step()
        assert np.isfinite(p.data).all() and (np.abs(p.data - data0) <= 0.1 + 1e-6).all()


@pytest.mark.parametrize("be", BACKENDS)
def test_new_data_of_the_same_dtype_is_adopted_and_keeps_the_gradient(be):
    with backend.use(be):
        p = param(np.float32)
        grad = p.grad
        g0 = grad.copy()
        a = np.zeros(p.shape, np.float32)
        p.data = a
        assert p.data is a and p.grad is grad
        optim.SGD([p], lr=1.0).step()                     # updates the adopted array in place
        np.testing.assert_array_equal(a, -g0)
        f = np.asfortranarray(np.ones(p.shape, np.float32))
        p.data = f
        assert p.data is not f and p.data.flags.c_contiguous and p.grad is grad
        np.testing.assert_array_equal(p.data, f)


@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_new_data_of_another_dtype_gets_a_zero_gradient_of_that_dtype(dtype, be):
    with backend.use(be):
        p = param(dtype)
        p.zero_grad()                                          # a pending lazy reset must not touch the new array
        new = np.full(p.shape, 2.0, other(dtype))
        p.data = new
        assert p.data is new and p.dtype == other(dtype)
        assert p.grad.dtype == other(dtype) and p.grad.shape == p.shape and not p.grad.any()
        p.grad[...] = 1
        optim.SGD([p], lr=0.5).step()
        np.testing.assert_array_equal(p.data, np.full(p.shape, 1.5))


@pytest.mark.parametrize("be", BACKENDS)
def test_module_to_keeps_the_gradients_and_load_state_dict_still_works(be, rng):
    x = rng.standard_normal((5, 3)).astype(np.float32)
    with backend.use(be):
        model = nnp.MLP([3, 4, 2], dtype=np.float32, rng=0)
        model.zero_grad()
        model.backward(np.ones_like(model(x)))
        before = [(p.data.copy(), p.grad.copy()) for p in model.parameters()]
        assert all(g.any() for _, g in before)
        model.to(np.float64)
        for p, (d, g) in zip(model.parameters(), before):
            assert p.dtype == p.grad.dtype == np.float64
            np.testing.assert_array_equal(p.data, d.astype(np.float64))
            np.testing.assert_array_equal(p.grad, g.astype(np.float64))
        model.zero_grad()
        model.to(np.float32)
        assert all(p.grad.dtype == np.float32 and not p.grad.any() for p in model.parameters())
        state = {k: v * 2 for k, v in model.state_dict().items()}
        ids = [(id(p.data), id(p.grad)) for p in model.parameters()]
        model.load_state_dict(state)                           # in place: same arrays
        assert ids == [(id(p.data), id(p.grad)) for p in model.parameters()]
        for (k, v), p in zip(state.items(), model.parameters()):
            np.testing.assert_array_equal(p.data, v)


def test_parameters_copy_and_pickle_with_their_checks():
    p = param(np.float32)
    p.requires_grad = False
    for q in (copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        np.testing.assert_array_equal(q.data, p.data)
        np.testing.assert_array_equal(q.grad, p.grad)
        assert q.data is not p.data and q.grad is not p.grad and not q.requires_grad
        with pytest.raises(ValueError, match="shape"):
            q.grad = np.ones(1, np.float32)
        with pytest.raises(ValueError, match="shape"):
            q.data = np.ones(1, np.float32)


# ---------------------------------------------------------------------------------------------
# Optimizer.load_state_dict: finite in the parameter's dtype
# ---------------------------------------------------------------------------------------------
def stepped(cls, dtype, **kw):
    p = param(dtype, (3,))
    opt = cls([p], lr=0.1, **kw)
    opt.step()
    return opt


OVERFLOW = [
    (optim.Adam, {}, "exp_avg_sq", np.full(3, 1e300)),
    (optim.Adam, {}, "exp_avg", np.array([0.5, -1e300, 1.0])),
    (optim.Adam, {"amsgrad": True}, "max_exp_avg_sq", np.array([1.0, 2.0, 3.5e38])),
    (optim.SGD, {"momentum": 0.9}, "momentum_buffer", np.array([1e39, 0.0, 0.0])),
    (optim.RMSprop, {}, "square_avg", np.full(3, 1e300)),
    (optim.Adagrad, {}, "sum", np.full(3, 1e300)),
]


@pytest.mark.parametrize("cls,kw,key,value", OVERFLOW, ids=[f"{c.__name__}-{k}" for c, _, k, _ in OVERFLOW])
def test_state_that_overflows_the_parameters_dtype_is_refused(cls, kw, key, value):
    opt = stepped(cls, np.float32, **kw)
    sd = opt.state_dict()
    before = opt.state_dict()
    sd["state"][0][key] = value
    raises_and_pickles(ValueError, rf"state\[0\]\['{key}'\] holds 1 value\(s\)|state\[0\]\['{key}'\] holds 3 value",
                       lambda: opt.load_state_dict(sd))
    err = pytest.raises(ValueError, opt.load_state_dict, sd).value
    assert "float32" in str(err) and "inf" in str(err)
    after = opt.state_dict()
    for k, v in before["state"][0].items():
        np.testing.assert_array_equal(after["state"][0][k], v)      # nothing changed
    opt64 = stepped(cls, np.float64, **kw)                 # the same values fit a float64 parameter
    sd64 = opt64.state_dict()
    sd64["state"][0][key] = value
    opt64.load_state_dict(sd64)
    np.testing.assert_array_equal(opt64.state[opt64.param_groups[0]["params"][0]][key], value)


def test_state_at_the_edge_of_float32_loads():
    opt = stepped(optim.Adam, np.float32)
    sd = opt.state_dict()
    sd["state"][0]["exp_avg_sq"] = np.full(3, float(np.finfo(np.float32).max))
    opt.load_state_dict(sd)
    loaded = opt.state[opt.param_groups[0]["params"][0]]["exp_avg_sq"]
    assert loaded.dtype == np.float32 and (loaded == np.finfo(np.float32).max).all()


# ---------------------------------------------------------------------------------------------
# Schedulers: no inf or NaN rate reaches the optimizer
# ---------------------------------------------------------------------------------------------
def two_groups(lrs=(1.0, 1e-3), momentum=0.0):
    return optim.SGD([{"params": [param(seed=i)], "lr": lr} for i, lr in enumerate(lrs)], lr=0.1,
                     momentum=momentum)


def test_an_overflowing_rate_is_refused_and_everything_stays():
    opt = two_groups()
    sched = ExponentialLR(opt, 1e200)
    sched.step()
    lrs = [g["lr"] for g in opt.param_groups]
    state = sched.state_dict()
    err = raises_and_pickles(ValueError, r"ExponentialLR: the learning rate of epoch 2 for param_groups\[0\] "
                                         r"would be inf, not a finite number >= 0", sched.step)
    assert "left as they were (at epoch 1)" in str(err)
    assert [g["lr"] for g in opt.param_groups] == lrs == [1e200, 1e197]
    assert sched.state_dict() == state and sched.last_epoch == 1 and sched.get_last_lr() == lrs
    again = ExponentialLR(two_groups(), 1e200)
    again.load_state_dict(json.loads(json.dumps(sched.state_dict())))   # its own state still loads
    assert again.state_dict() == state


def test_a_lambda_factor_that_overflows_the_rate_is_refused_also_at_creation():
    opt = two_groups(lrs=(10.0, 1.0))
    sched = LambdaLR(opt, lambda e: [1.0, 1e300, 1e308][e])
    sched.step()                                           # 1e301 and 1e300: finite
    with pytest.raises(ValueError, match=r"LambdaLR: .* epoch 2 for param_groups\[0\] would be inf"):
        sched.step()
    assert sched.last_epoch == 1 and [g["lr"] for g in opt.param_groups] == [1e301, 1e300]
    fresh = two_groups(lrs=(10.0, 1.0))
    with pytest.raises(ValueError, match=r"epoch 0 for param_groups\[0\] would be inf"):
        LambdaLR(fresh, lambda e: 1e308)
    assert [g["lr"] for g in fresh.param_groups] == [10.0, 1.0]
    assert all("initial_lr" not in g for g in fresh.param_groups)


def test_a_nan_written_into_a_group_is_refused_by_the_next_step():
    opt = two_groups()
    sched = StepLR(opt, step_size=1, gamma=0.5)
    opt.param_groups[1]["lr"] = float("nan")
    with pytest.raises(ValueError, match=r"StepLR: the learning rate of epoch 1 for param_groups\[1\] would be nan"):
        sched.step()
    assert sched.last_epoch == 0 and sched._step_count == 1 and opt.param_groups[0]["lr"] == 1.0
    with pytest.raises(ValueError, match=r"SGD\.step: param_groups\[1\]\['lr'\]"):
        opt.step()                                          # and the optimizer refuses it too


def test_sequential_lr_keeps_its_epoch_when_a_child_refuses():
    opt = two_groups()
    a, b = ExponentialLR(opt, 1e200), StepLR(opt, step_size=1)
    seq = SequentialLR(opt, [a, b], milestones=[5])
    seq.step()
    with pytest.raises(ValueError, match="ExponentialLR: the learning rate of epoch 2"):
        seq.step()
    assert seq.last_epoch == 1 and a.last_epoch == 1 and seq.get_last_lr() == [1e200, 1e197]


def test_one_cycle_momentum_is_rolled_back_with_the_rate():
    opt = two_groups(lrs=(0.1, 0.1), momentum=0.9)
    sched = OneCycleLR(opt, max_lr=1e300, total_steps=10, final_div_factor=1e-300)   # min_lr = inf
    while True:
        moms = [g["momentum"] for g in opt.param_groups]
        lrs = [g["lr"] for g in opt.param_groups]
        epoch = sched.last_epoch
        try:
            sched.step()
        except ValueError as e:
            assert "OneCycleLR: the learning rate of epoch" in str(e) and "nan" in str(e)
            break
        assert epoch < 9, "no step was refused"
    assert [g["momentum"] for g in opt.param_groups] == moms and [g["lr"] for g in opt.param_groups] == lrs
    assert sched.last_epoch == epoch


# ---------------------------------------------------------------------------------------------
# clip_grad_norm_(max_norm=inf): measure only
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_an_infinite_max_norm_only_measures_as_in_torch(torch, norm_type):
    ps = [param(np.float64, (4, 3), seed=s) for s in (0, 5)]
    tps = []
    for p in ps:
        t = torch.nn.Parameter(torch.tensor(p.data))
        t.grad = torch.tensor(p.grad)
        tps.append(t)
    grads = [p.grad.copy() for p in ps]
    total = clip_grad_norm_(ps, math.inf, norm_type=norm_type)
    ttotal = float(torch.nn.utils.clip_grad_norm_(tps, math.inf, norm_type=norm_type))
    assert math.isfinite(total) and total == pytest.approx(ttotal, rel=1e-14, abs=0)
    for p, g, t in zip(ps, grads, tps):
        np.testing.assert_array_equal(p.grad, g)                  # untouched, bit for bit
        np.testing.assert_array_equal(t.grad.numpy(), g)          # (torch leaves them too)
    assert clip_grad_norm_(ps, np.float64(np.inf)) == clip_grad_norm_(ps, float("inf"))


def test_an_infinite_max_norm_with_an_infinite_norm_behaves_as_torch(torch):
    p = param(np.float64, (3,))
    p.grad[1] = np.inf
    t = torch.nn.Parameter(torch.tensor(p.data))
    t.grad = torch.tensor(p.grad)
    assert clip_grad_norm_(p, math.inf) == float(torch.nn.utils.clip_grad_norm_(t, math.inf)) == math.inf
    np.testing.assert_array_equal(p.grad, t.grad.numpy())        # inf / inf: NaN in both
    with pytest.raises(ValueError, match="total norm"):
        clip_grad_norm_(p, math.inf, error_if_nonfinite=True)


@pytest.mark.parametrize("value,exc", [(float("nan"), ValueError), (-1.0, ValueError), (-math.inf, ValueError),
                                       ("inf", TypeError), (None, TypeError)], ids=repr)
def test_max_norm_still_refuses_nan_negatives_and_non_numbers(value, exc):
    p = param()
    g = p.grad.copy()
    err = raises_and_pickles(exc, "max_norm must be a finite number >= 0", lambda: clip_grad_norm_(p, value))
    assert "or inf, to measure the norm without clipping" in str(err)
    np.testing.assert_array_equal(p.grad, g)


# ---------------------------------------------------------------------------------------------
# nn.init and resolve_rng: the argument is named
# ---------------------------------------------------------------------------------------------
F32 = np.float32
INIT_BAD = {        # name: (call on the array, the array's dtype, error, message)
    "xavier_uniform negative gain": (lambda a: init.xavier_uniform_(a, gain=-1), None, ValueError,
                                     r"xavier_uniform_: gain must be at least 0.*got -1\.0"),
    "xavier_normal negative gain": (lambda a: init.xavier_normal_(a, gain=-0.5), None, ValueError,
                                    "xavier_normal_: gain must be at least 0"),
    "xavier nan gain": (lambda a: init.xavier_uniform_(a, gain=float("nan")), None, ValueError,
                        "gain must be finite"),
    "uniform overflowing width": (lambda a: init.uniform_(a, -1e308, 1e308), None, ValueError,
                                  "uniform_: the interval from a = -1e[+]308 to b = 1e[+]308 is wider"),
    "uniform beyond float32": (lambda a: init.uniform_(a, -1e39, 0.0), F32, ValueError,
                               r"uniform_: a is -1e\+39, beyond the range of the array's dtype float32"),
    "normal std beyond float32": (lambda a: init.normal_(a, std=1e39), F32, ValueError,
                                  "normal_: std is 1e[+]39, beyond"),
    "normal mean beyond float32": (lambda a: init.normal_(a, mean=-4e38), F32, ValueError,
                                   "normal_: mean is -4e[+]38, beyond"),
    "constant beyond float32": (lambda a: init.constant_(a, 1e39), F32, ValueError, "constant_: val is 1e[+]39"),
    "xavier bound overflows": (lambda a: init.xavier_uniform_(a, gain=1e308), None, ValueError,
                               "xavier_uniform_: the interval from -a"),
    "xavier bound beyond float32": (lambda a: init.xavier_normal_(a, gain=1e39), F32, ValueError,
                                    r"xavier_normal_: std = gain \* sqrt\(2 / \(fan_in \+ fan_out\)\) "
                                    r"with gain=1e\+39"),
    "normal negative seed": (lambda a: init.normal_(a, rng=-1), None, ValueError,
                             "normal_: rng must be None, an integer seed >= 0 or a numpy.random.Generator, got -1"),
    "kaiming float seed": (lambda a: init.kaiming_uniform_(a, rng=1.5), None, TypeError,
                           "kaiming_uniform_: rng must be"),
    "xavier bool seed": (lambda a: init.xavier_normal_(a, rng=True), None, TypeError, "xavier_normal_: rng must be"),
    "empty array, bad gain": (lambda a: init.xavier_uniform_(a[:0], gain=-1), None, ValueError,
                              "gain must be at least 0"),
    "empty array, bad rng": (lambda a: init.kaiming_normal_(a[:0], rng="x"), None, TypeError, "rng must be"),
    "empty array, bad mode": (lambda a: init.kaiming_normal_(a[:0], mode="fan"), None, ValueError, "mode"),
}


@pytest.mark.parametrize("case", list(INIT_BAD))
def test_init_arguments_are_named_and_nothing_is_filled(case):
    call, dtype, exc, pattern = INIT_BAD[case]
    a = np.full((3, 2), 7.0, dtype or np.float64)
    raises_and_pickles(exc, pattern, lambda: call(a))
    assert (a == 7.0).all()


def test_torch_refuses_a_negative_gain_and_overflowing_bounds_too(torch):
    with pytest.raises(RuntimeError):
        torch.nn.init.xavier_uniform_(torch.zeros(3, 2), gain=-1)
    with pytest.raises(RuntimeError):
        torch.nn.init.xavier_normal_(torch.zeros(3, 2), gain=-1)
    with pytest.raises(RuntimeError):
        torch.nn.init.uniform_(torch.zeros(3, dtype=torch.float64), -1e308, 1e308)
    with pytest.raises(RuntimeError):
        torch.nn.init.uniform_(torch.zeros(3), -1e39, 0.0)
    with pytest.raises(RuntimeError):
        torch.nn.init.constant_(torch.zeros(3), 1e39)


def test_init_edges_that_fit_are_accepted(torch):
    a = np.zeros((3, 2))
    assert not init.xavier_uniform_(a, gain=0.0, rng=0).any()       # gain 0: zeros, as torch
    assert not torch.nn.init.xavier_uniform_(torch.ones(3, 2), gain=0.0).any()
    b = init.uniform_(np.zeros(1000, np.float32), -3e38, 3e38, rng=1)
    assert np.isfinite(b).all() and b.min() < -1e38 and b.max() > 1e38
    assert (init.constant_(np.zeros(2, np.float32), float(np.finfo(np.float32).max)) ==
            np.finfo(np.float32).max).all()


def test_resolve_rng_and_manual_seed_name_their_argument():
    assert resolve_rng(3).random() == np.random.default_rng(3).random()
    assert resolve_rng(np.uint8(3)).random() == np.random.default_rng(3).random()
    with pytest.raises(ValueError, match="^rng must be None, an integer seed >= 0"):
        resolve_rng(-1)
    with pytest.raises(TypeError, match="^Linear: rng must be None"):
        resolve_rng(2.0, owner="Linear")
    with pytest.raises(ValueError, match="rng must be"):
        nnp.Linear(2, 3, rng=-5)
    with pytest.raises(ValueError, match="manual_seed: seed must be an integer >= 0, got -1"):
        nnp.manual_seed(-1)
    with pytest.raises(TypeError, match="manual_seed: seed must be"):
        nnp.manual_seed("7")
    nnp.manual_seed(7)
    first = nnp.Linear(2, 3).weight.data.copy()
    nnp.manual_seed(7)
    np.testing.assert_array_equal(nnp.Linear(2, 3).weight.data, first)


# ---------------------------------------------------------------------------------------------
# Loss messages
# ---------------------------------------------------------------------------------------------
def test_a_string_weight_says_what_weight_is():
    err = raises_and_pickles(TypeError, r"CrossEntropyLoss: weight must be an array of class weights or None, "
                                        r"got 'abc'; a string in first position is read as nnumpy's older "
                                        r"positional reduction", lambda: nnp.CrossEntropyLoss(weight="abc"))
    assert "('mean', 'sum', 'none')" in str(err)
    with pytest.raises(TypeError, match="got 'Sum'; a string in first position"):
        nnp.CrossEntropyLoss("Sum")
    with pytest.raises(TypeError, match=r"got 'sum' \(and reduction='none' as well\)"):
        nnp.CrossEntropyLoss("sum", reduction="none")
    assert nnp.CrossEntropyLoss("sum").reduction == "sum"     # the old positional form still works


BCE_BAD = {
    "input above 1": (np.array([[0.5, 2.0]]), np.array([[0.0, 1.0]])),
    "input nan": (np.array([[np.nan, 0.5]]), np.array([[0.0, 1.0]])),
    "target below 0": (np.array([[0.5, 0.5]]), np.array([[0.0, -1.0]])),
}


@pytest.mark.parametrize("case", list(BCE_BAD))
def test_bce_says_the_same_on_both_backends(case):
    p, y = BCE_BAD[case]
    messages = {}
    for be in BACKENDS:
        with backend.use(be), pytest.raises(ValueError) as info:
            nnp.BCELoss()(p, y)
        messages[be] = str(info.value)
    assert len(set(messages.values())) == 1, messages
    if case.startswith("input"):
        assert messages["numpy"].endswith("for logits use BCEWithLogitsLoss)")
