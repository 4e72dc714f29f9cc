"""Bad input meets a clear error at the boundary, or a correct result.

Written from the classes of fault, not from single examples:

* every size / count argument refuses 0, -1, 2.7, True, "3", None;
* every hyper-parameter of every optimizer and scheduler refuses NaN, +-inf,
  out-of-range values and wrong types: in the constructor, as a per-group
  override, written into a group before ``step()``, and in a loaded state dict;
* state dicts that do not fit are refused and leave the optimizer/scheduler as
  it was;
* NaN and inf propagate through every layer and loss as in PyTorch, on both
  backends and both dtypes;
* ``fit`` stops on a non-finite training loss, validation loss or parameters,
  naming the epoch, the step and the cause; refuses empty data; reports losses
  of every reduction as per-sample means; Ctrl-C hands back the model's state
  after the last finished epoch.

Every error must be a ValueError or a TypeError whose message names the
argument and shows the bad value.
"""
import copy
import math
import pickle

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import backend
from nnumpy.optim import SGD, Adam, AdamW, CosineAnnealingLR, StepLR

#: NaN and inf make NumPy warn ("invalid value encountered in matmul"); PyTorch does not. Expected here.
pytestmark = [pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")]

BACKENDS = ["numpy", "numba"]
DTYPES = [np.float32, np.float64]
NAN, INF = float("nan"), float("inf")


@pytest.fixture(params=BACKENDS)
def on_backend(request):
    with backend.use(request.param):
        yield request.param


def shown(value):
    """How a message must show the bad value."""
    if isinstance(value, (str, bool)) or value is None:
        return repr(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return repr(value)                    # inf, -inf, -1, 2.7, ...


def assert_refused(fn, name, value=None, show_value=True):
    """fn() raises a ValueError/TypeError naming ``name`` and showing ``value``."""
    with pytest.raises((ValueError, TypeError)) as info:
        fn()
    msg = str(info.value)
    assert name in msg, msg
    if show_value:
        assert shown(value) in msg, msg
    return info.value


def params(n=2, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [nnp.Parameter(rng.standard_normal((3, 2)).astype(dtype)) for _ in range(n)]


def set_grads(ps, seed=1):
    rng = np.random.default_rng(seed)
    for p in ps:
        p.grad[...] = rng.standard_normal(p.shape)


def snapshot(opt):
    """Everything about an optimizer, comparable with ``same``."""
    return ([p.data.copy() for g in opt.param_groups for p in g["params"]], opt.state_dict())


def same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------------------------------------
# Sizes and counts: every integer argument
# ---------------------------------------------------------------------------------------------
BAD_COUNTS = [0, -1, 2.7, True, "3", None]
X = np.random.default_rng(0).standard_normal((12, 4))
Y = np.arange(12) % 3


def _model():
    return nnp.MLP([4, 5, 3], dtype=np.float64, rng=0)


def _fit(**kw):
    m = _model()
    return nnp.fit(m, nnp.CrossEntropyLoss(), SGD(m.parameters(), lr=0.1), (X, Y), progress=False,
                   **{"epochs": 1, **kw})


SIZE_ARGS = {
    "Linear in_features": ("in_features", lambda v: nnp.Linear(v, 3)),
    "Linear out_features": ("out_features", lambda v: nnp.Linear(3, v)),
    "MLP sizes": ("sizes[1]", lambda v: nnp.MLP([4, v, 3])),
    "MLP output size": ("sizes[1]", lambda v: nnp.MLP([4, v])),
    "fit epochs": ("epochs", lambda v: _fit(epochs=v)),
    "fit batch_size": ("batch_size", lambda v: _fit(batch_size=v)),
    "evaluate batch_size": ("batch_size", lambda v: nnp.evaluate(_model(), X, Y, batch_size=v)),
    "predict batch_size": ("batch_size", lambda v: nnp.predict(_model(), X, batch_size=v)),
    "iterate_minibatches batch_size": ("batch_size", lambda v: nnp.iterate_minibatches(X, Y, v)),
    "num_batches batch_size": ("batch_size", lambda v: nnp.datasets.num_batches(10, v)),
    "StepLR step_size": ("step_size", lambda v: StepLR(SGD(params(), lr=0.1), step_size=v)),
    "CosineAnnealingLR T_max": ("T_max", lambda v: CosineAnnealingLR(SGD(params(), lr=0.1), T_max=v)),
}


@pytest.mark.parametrize("value", BAD_COUNTS, ids=repr)
@pytest.mark.parametrize("arg", list(SIZE_ARGS))
def test_every_size_argument_refuses_non_positive_or_non_integer_values(arg, value):
    name, call = SIZE_ARGS[arg]
    assert_refused(lambda: call(value), name, value)


@pytest.mark.parametrize("arg", list(SIZE_ARGS))
def test_every_size_argument_takes_numpy_integers(arg):
    _, call = SIZE_ARGS[arg]
    call(np.int64(3))                     # no error


def test_integral_floats_are_taken_exactly_and_nothing_is_truncated():
    assert nnp.MLP([4, 10.0, 3])[0].out_features == 10
    assert len(_fit(epochs=2.0)) == 2
    for bad in (10.9, 2.5, 1e-9 + 3):
        assert_refused(lambda: nnp.MLP([4, bad]), "sizes[1]", bad)


def test_epochs_zero_is_refused_and_the_model_is_untouched():
    m = _model()
    before = m.state_dict()
    assert_refused(lambda: nnp.fit(m, nnp.CrossEntropyLoss(), SGD(m.parameters(), lr=0.1), (X, Y), epochs=0),
                   "epochs", 0)
    assert same(before, m.state_dict())


@pytest.mark.parametrize("value", [NAN, INF, -INF, 0.0, 1.0, -0.1, 1.5, "0.1", True, None], ids=repr)
def test_val_fraction_must_be_a_finite_fraction(value):
    assert_refused(lambda: nnp.train_val_split(X, Y, value), "val_fraction", value)


@pytest.mark.parametrize("call,name", [
    (lambda v: nnp.train_val_split(X, Y, 0.25, seed=v), "seed"),
    (lambda v: _fit(seed=v), "seed"),
    (lambda v: nnp.iterate_minibatches(X, Y, 4, shuffle=v), "shuffle"),
    (lambda v: nnp.iterate_minibatches(X, Y, 4, drop_last=v), "drop_last"),
    (lambda v: _fit(drop_last=v), "drop_last"),
    (lambda v: nnp.train_val_split(X, Y, 0.25, stratify=v), "stratify"),
], ids=["split-seed", "fit-seed", "shuffle", "drop_last", "fit-drop_last", "stratify"])
@pytest.mark.parametrize("value", [2.7, "yes", -1], ids=repr)
def test_seeds_and_flags_are_checked(call, name, value):
    assert_refused(lambda: call(value), name, value)


@pytest.mark.parametrize("call,name,value", [
    (lambda v: nnp.LeakyReLU(v), "negative_slope", NAN),
    (lambda v: nnp.LeakyReLU(v), "negative_slope", INF),
    (lambda v: nnp.LeakyReLU(v), "negative_slope", "0.1"),
    (lambda v: nnp.Dropout(v), "Dropout probability", NAN),
    (lambda v: nnp.Dropout(v), "Dropout probability", 1.5),
    (lambda v: nnp.Dropout(v), "Dropout probability", -0.1),
    (lambda v: nnp.Dropout(v), "Dropout probability", "0.5"),
    (lambda v: nnp.MLP([4, 5, 3], dropout=v), "dropout", NAN),
    (lambda v: nnp.MLP([4, 5, 3], dropout=v), "dropout", 2.0),
    (lambda v: nnp.MLP([4, 5, 3], activation=v), "activation", 3),
    (lambda v: nnp.MLP(v), "sizes", 784),
    (lambda v: nnp.MLP(v), "sizes", "784-10"),
    (lambda v: nnp.Linear(4, 3, bias=v), "bias", "False"),
    (lambda v: nnp.MLP([4, 3], bias=v), "bias", "False"),
    (lambda v: nnp.Flatten(start_dim=v), "start_dim", 1.5),
    (lambda v: nnp.Sequential(nnp.ReLU(), input_grad=v), "input_grad", "no"),
])
def test_module_arguments_are_checked(call, name, value):
    assert_refused(lambda: call(value), name, value, show_value=not isinstance(value, str) or name != "sizes")


# ---------------------------------------------------------------------------------------------
# Hyper-parameters of every optimizer
# ---------------------------------------------------------------------------------------------
OPTIMIZERS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}
#: name -> values that must be refused (beyond NaN, +-inf, None and a string, refused for all)
HYPER = {
    "SGD": {"lr": [-0.1], "momentum": [-0.5], "dampening": [-0.1, 1.5], "weight_decay": [-1e-4]},
    "Adam": {"lr": [-0.1], "eps": [-1e-8], "weight_decay": [-1e-4]},
    "AdamW": {"lr": [-0.1], "eps": [-1e-8], "weight_decay": [-1e-4]},
}
NOT_FINITE_OR_TYPE = [NAN, INF, -INF, None, "0.1", True]
CASES = [(o, k, v) for o, ks in HYPER.items() for k, extra in ks.items() for v in NOT_FINITE_OR_TYPE + extra]
BETA_CASES = [(o, i, v) for o in ("Adam", "AdamW") for i in (0, 1) for v in [NAN, INF, -INF, 1.0, -0.1, "0.9", None]]
FLAG_CASES = [("SGD", "nesterov"), ("Adam", "amsgrad"), ("AdamW", "amsgrad")]


def make(opt, ps=None, **kw):
    kw = {"lr": 0.1, **kw}
    if opt == "SGD" and kw.get("nesterov"):
        kw.setdefault("momentum", 0.9)
    return OPTIMIZERS[opt](ps or params(), **kw)


def betas_with(i, v):
    b = [0.9, 0.999]
    b[i] = v
    return tuple(b)


@pytest.mark.parametrize("opt,key,value", CASES, ids=[f"{o}-{k}-{v!r}" for o, k, v in CASES])
def test_constructor_refuses_bad_hyper_parameters(opt, key, value):
    assert_refused(lambda: make(opt, **{key: value}), key, value)


@pytest.mark.parametrize("opt,i,value", BETA_CASES, ids=[f"{o}-beta{i + 1}-{v!r}" for o, i, v in BETA_CASES])
def test_constructor_refuses_bad_betas(opt, i, value):
    assert_refused(lambda: make(opt, betas=betas_with(i, value)), f"betas[{i}]", value)


@pytest.mark.parametrize("opt", ["Adam", "AdamW"])
@pytest.mark.parametrize("value", [0.9, (0.9,), (0.9, 0.99, 0.999), "ab"], ids=repr)
def test_betas_must_be_a_pair(opt, value):
    assert_refused(lambda: make(opt, betas=value), "betas", show_value=False)


@pytest.mark.parametrize("opt,key", FLAG_CASES)
@pytest.mark.parametrize("value", ["False", 1, None], ids=repr)
def test_flags_must_be_bools(opt, key, value):
    assert_refused(lambda: make(opt, **{key: value}), key, value)


def test_nesterov_needs_momentum_and_no_dampening_in_every_group():
    with pytest.raises(ValueError, match="Nesterov"):
        SGD(params(), lr=0.1, nesterov=True)
    a, b = params()
    with pytest.raises(ValueError, match=r"Nesterov.*param_groups\[1\]"):
        SGD([{"params": [a]}, {"params": [b], "dampening": 0.5}], lr=0.1, momentum=0.9, nesterov=True)


@pytest.mark.parametrize("opt,key,value", CASES, ids=[f"{o}-{k}-{v!r}" for o, k, v in CASES])
def test_per_group_overrides_are_checked_and_name_the_group(opt, key, value):
    a, b = params()
    groups = [{"params": [a]}, {"params": [b], key: value}]
    assert_refused(lambda: make(opt, groups), f"param_groups[1]['{key}']", value)
    o = make(opt, [a])
    assert_refused(lambda: o.add_param_group({"params": [b], key: value}), f"param_groups[1]['{key}']", value)
    assert len(o.param_groups) == 1


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_misspelt_group_keys_and_wrong_params_are_refused(opt):
    a, b = params()
    assert_refused(lambda: make(opt, [{"params": [a], "lrr": 0.5}]), "lrr", show_value=False)
    assert_refused(lambda: make(opt, [{"lr": 0.5}]), "params", show_value=False)
    with pytest.raises(TypeError, match="model.parameters"):
        make(opt, nnp.MLP([3, 2]))
    with pytest.raises(TypeError, match="Parameter"):
        make(opt, [a.data])


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("opt,key,value", [c for c in CASES if c[2] is not None and not isinstance(c[2], str)],
                         ids=[f"{o}-{k}-{v!r}" for o, k, v in CASES if v is not None and not isinstance(v, str)])
def test_a_bad_value_written_into_a_group_is_caught_at_step_before_any_update(opt, key, value, backend_name):
    ps = params(3)
    o = make(opt, [{"params": ps[:1]}, {"params": ps[1:]}])
    set_grads(ps)
    with backend.use(backend_name):
        o.step()
        before = snapshot(o)
        o.param_groups[1][key] = value
        set_grads(ps, 2)
        assert_refused(o.step, f"param_groups[1]['{key}']", value)
    o.param_groups[1][key] = before[1]["param_groups"][1][key]
    assert same(before, snapshot(o))             # not one parameter (not even group 0's) moved


def test_a_nan_learning_rate_from_a_scheduler_stops_at_step():
    ps = params()
    o = SGD(ps, lr=0.1)
    sched = StepLR(o, step_size=1, gamma=0.5)
    o.param_groups[0]["lr"] = NAN                    # as a buggy schedule would write it
    with pytest.raises(ValueError, match=r"StepLR: the learning rate of epoch 1 for param_groups\[0\] would be nan"):
        sched.step()                                 # the scheduler refuses to pass it on, changing nothing
    set_grads(ps)
    before = [p.data.copy() for p in ps]
    with pytest.raises(ValueError, match=r"SGD\.step: param_groups\[0\]\['lr'\].*nan"):
        o.step()
    assert all(np.array_equal(p.data, b) for p, b in zip(ps, before))


# ---------------------------------------------------------------------------------------------
# Schedulers
# ---------------------------------------------------------------------------------------------
SCHED_CASES = [("StepLR", "gamma", v) for v in [NAN, INF, -INF, 0.0, -1.0, "0.5", None, True]] + \
              [("CosineAnnealingLR", "eta_min", v) for v in [NAN, INF, -INF, -0.1, "0", None, True]]


def make_sched(name, opt, **kw):
    if name == "StepLR":
        return StepLR(opt, **{"step_size": 2, **kw})
    return CosineAnnealingLR(opt, **{"T_max": 4, **kw})


@pytest.mark.parametrize("name,key,value", SCHED_CASES, ids=[f"{n}-{k}-{v!r}" for n, k, v in SCHED_CASES])
def test_scheduler_factors_are_checked_before_the_optimizer_is_touched(name, key, value):
    o = SGD(params(), lr=0.1)
    assert_refused(lambda: make_sched(name, o, **{key: value}), key, value)
    assert o.param_groups[0]["lr"] == 0.1 and "initial_lr" not in o.param_groups[0]


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR"])
@pytest.mark.parametrize("value", [-2, 1.5, "0", None, True], ids=repr)
def test_last_epoch_must_be_an_integer_from_minus_one(name, value):
    assert_refused(lambda: make_sched(name, SGD(params(), lr=0.1), last_epoch=value), "last_epoch", value)


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR"])
@pytest.mark.parametrize("last_epoch", [0, 5])
def test_resuming_a_schedule_on_a_fresh_optimizer_says_what_to_do(name, last_epoch):
    o = SGD(params(), lr=0.1)
    with pytest.raises(ValueError) as info:
        make_sched(name, o, last_epoch=last_epoch)
    msg = str(info.value)
    assert f"last_epoch={last_epoch}" in msg and "initial_lr" in msg
    assert "last_epoch=-1" in msg and "load_state_dict" in msg
    assert o.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR"])
def test_resuming_a_schedule_reproduces_it(name):
    o = SGD(params(), lr=0.1)
    s = make_sched(name, o)
    for _ in range(5):
        s.step()
    saved = o.state_dict()                      # at epoch 5, with the groups' initial_lr
    s.step()
    o2 = SGD(params(), lr=0.1)
    o2.load_state_dict(saved)
    s2 = make_sched(name, o2, last_epoch=5)     # PyTorch's convention: creating it steps to epoch 6
    assert s2.last_epoch == 6 and o2.param_groups[0]["lr"] == pytest.approx(o.param_groups[0]["lr"], rel=1e-12)
    s3 = make_sched(name, SGD(params(), lr=0.1))
    s3.load_state_dict(s.state_dict())
    assert s3.get_last_lr() == s.get_last_lr() and s3.last_epoch == s.last_epoch


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR"])
def test_scheduler_load_state_dict_checks_keys_and_values_and_changes_nothing_on_failure(name):
    o = SGD(params(), lr=0.1)
    s = make_sched(name, o)
    good = s.state_dict()
    before = dict(s.state_dict())
    other = make_sched("CosineAnnealingLR" if name == "StepLR" else "StepLR", SGD(params(), lr=0.1)).state_dict()
    key = "gamma" if name == "StepLR" else "eta_min"
    bad_dicts = {
        "another scheduler's": (other, "gamma" if name == "CosineAnnealingLR" else "T_max"),
        "missing key": ({k: v for k, v in good.items() if k != "last_epoch"}, "last_epoch"),
        "unexpected key": ({**good, "verbose": False}, "verbose"),
        "bad last_epoch": ({**good, "last_epoch": 2.5}, "last_epoch"),
        "bad factor": ({**good, key: NAN}, key),
        "base_lrs per group": ({**good, "base_lrs": [0.1, 0.1]}, "base_lrs"),
        "nan base_lr": ({**good, "base_lrs": [NAN]}, "base_lrs[0]"),
        "not a dict": ([1, 2], "dict"),
    }
    for what, (d, named) in bad_dicts.items():
        assert_refused(lambda: s.load_state_dict(d), named, show_value=False)
        assert same(before, s.state_dict()), what


# ---------------------------------------------------------------------------------------------
# Optimizer state dicts
# ---------------------------------------------------------------------------------------------
def trained(opt_name, ps=None, steps=2, **kw):
    ps = ps or params()
    o = make(opt_name, ps, **kw)
    for i in range(steps):
        set_grads(ps, i)
        o.step()
    return o


def _with(sd, path, value):
    """A deep copy of a state dict with ``path`` set (or removed when value is ...)."""
    d = copy.deepcopy(sd)
    target = d
    for k in path[:-1]:
        target = target[k]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


def mismatches():
    sgd = trained("SGD", momentum=0.9).state_dict()
    adam = trained("Adam").state_dict()
    ams = trained("Adam", amsgrad=True).state_dict()
    one = trained("SGD", params(1), momentum=0.9).state_dict()
    three = trained("SGD", params(3), momentum=0.9).state_dict()
    return {
        # name: (target optimizer, state dict, words the message must contain)
        "adam-into-sgd": ("SGD", adam, ["betas", "momentum", "Adam"]),
        "sgd-into-adam": ("Adam", sgd, ["momentum", "betas", "SGD"]),
        "amsgrad-state-into-adam": ("Adam", _with(ams, ("param_groups", 0, "amsgrad"), False), ["max_exp_avg_sq"]),
        "adam-state-missing-key": ("Adam", _with(adam, ("state", 0, "exp_avg_sq"), ...), ["exp_avg_sq"]),
        "sgd-state-wrong-key": ("SGD", _with(sgd, ("state", 1), {"exp_avg": np.zeros((3, 2))}), ["exp_avg"]),
        "fewer-params": ("SGD", one, ["1 parameter", "2 in this SGD"]),
        "more-params": ("SGD", three, ["3 parameter"]),
        "two-groups": ("SGD", {**sgd, "param_groups": sgd["param_groups"] * 2}, ["2 parameter group"]),
        "wrong-shape": ("SGD", _with(sgd, ("state", 0, "momentum_buffer"), np.zeros((2, 3))), ["shape (2, 3)"]),
        "nan-buffer": ("SGD", _with(sgd, ("state", 0, "momentum_buffer"), np.full((3, 2), NAN)), ["NaN"]),
        "negative-v": ("Adam", _with(adam, ("state", 0, "exp_avg_sq"), -np.ones((3, 2))), ["exp_avg_sq"]),
        "string-buffer": ("SGD", _with(sgd, ("state", 0, "momentum_buffer"), "zeros"), ["momentum_buffer"]),
        "bad-step": ("Adam", _with(adam, ("state", 0, "step"), -1), ["step"]),
        "nan-lr": ("SGD", _with(sgd, ("param_groups", 0, "lr"), NAN), ["param_groups[0]['lr']", "nan"]),
        "negative-momentum": ("SGD", _with(sgd, ("param_groups", 0, "momentum"), -1.0), ["momentum", "-1.0"]),
        "bad-betas": ("Adam", _with(adam, ("param_groups", 0, "betas"), (0.9, INF)),
                      ["param_groups[0]['betas'][1]", "inf"]),
        "unknown-param-index": ("SGD", _with(sgd, ("state", 7), sgd["state"][0]), ["7"]),
        "missing-state": ("SGD", {"param_groups": sgd["param_groups"]}, ["state"]),
        "extra-top-level-key": ("SGD", {**sgd, "defaults": {}}, ["defaults"]),
        "not-a-dict": ("SGD", [sgd], ["dict"]),
    }


MISMATCH = mismatches()


@pytest.mark.parametrize("case", list(MISMATCH))
def test_state_dict_mismatches_are_refused_and_change_nothing(case):
    target, sd, words = MISMATCH[case]
    ps = params()
    o = trained(target, ps, momentum=0.9) if target == "SGD" else trained(target, ps)
    before = snapshot(o)
    with pytest.raises((ValueError, TypeError)) as info:
        o.load_state_dict(sd)
    for w in words:
        assert w in str(info.value), str(info.value)
    assert same(before, snapshot(o))
    # and it still trains exactly as an untouched twin
    twin_ps = [nnp.Parameter(p.data) for p in ps]
    twin = make(target, twin_ps, **({"momentum": 0.9} if target == "SGD" else {}))
    twin.load_state_dict(before[1])
    for q in (ps, twin_ps):
        set_grads(q, 9)
    o.step()
    twin.step()
    assert all(np.array_equal(p.data, q.data) for p, q in zip(ps, twin_ps))


@pytest.mark.parametrize("opt", ["SGD", "Adam", "AdamW"])
def test_matching_state_dicts_still_load(opt):
    kw = {"momentum": 0.9} if opt == "SGD" else {"amsgrad": True}
    o = trained(opt, **kw)
    o2 = make(opt, params(), **kw)
    o2.load_state_dict(o.state_dict())
    assert same(o.state_dict(), o2.state_dict())


# ---------------------------------------------------------------------------------------------
# NaN and inf propagate as in PyTorch, on both backends and dtypes
# ---------------------------------------------------------------------------------------------
SPECIAL = np.array([NAN, INF, -INF, 0.0, -0.0, 1.5, -2.0, 30.0, -30.0, 0.25, 800.0, -800.0])


def special_input(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    flat = x.reshape(-1)
    idx = rng.choice(flat.size, size=min(flat.size // 2, len(SPECIAL)), replace=False)
    flat[idx] = SPECIAL[:len(idx)]
    return x.astype(dtype)


def close(ours, theirs, dtype):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isposinf(ours), np.isposinf(theirs))
    np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(theirs))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol, equal_nan=True)


ELEMENTWISE = {
    "relu": (lambda: nnp.ReLU(), lambda t, x: t.relu(x)),
    "leaky_relu": (lambda: nnp.LeakyReLU(0.1), lambda t, x: t.nn.functional.leaky_relu(x, 0.1)),
    "sigmoid": (lambda: nnp.Sigmoid(), lambda t, x: t.sigmoid(x)),
    "tanh": (lambda: nnp.Tanh(), lambda t, x: t.tanh(x)),
    "identity": (lambda: nnp.Identity(), lambda t, x: x * 1),
    "dropout-eval": (lambda: nnp.Dropout(0.5).eval(), lambda t, x: t.nn.functional.dropout(x, 0.5, training=False)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_special_values_through_elementwise_layers_match_torch(torch, on_backend, name, dtype):
    make_mod, ref = ELEMENTWISE[name]
    x = special_input((4, 6), dtype)
    dy = np.ones_like(x)
    m = make_mod()
    y = m(x)
    dx = m.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(torch, xt)
    yt.backward(torch.tensor(dy))
    close(y, yt, dtype)
    close(dx, xt.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_special_upstream_gradients_through_piecewise_activations_match_torch(torch, on_backend, name, dtype):
    """inf and NaN in dy, where the input is negative (ReLU's gradient is then exactly
    0, whatever dy holds) and where it is positive (they pass on), as PyTorch."""
    make_mod, ref = ELEMENTWISE[name]
    x = np.array([[-1.0, -2.0, -3.0, 1.0, 2.0, 3.0, -0.5, 0.5]], dtype=dtype)
    dy = np.array([[INF, NAN, -INF, INF, NAN, -INF, 2.0, 3.0]], dtype=dtype)
    m = make_mod()
    m(x)
    dx = m.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    ref(torch, xt).backward(torch.tensor(dy))
    close(dx, xt.grad, dtype)
    if name == "relu":
        assert np.array_equal(dx[0, :3], np.zeros(3)) and np.isnan(dx[0, 4])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_special_values_through_dropout_in_training_match_torch(torch, on_backend, dtype):
    x = special_input((7, 11), dtype)
    torch.manual_seed(3)
    mask = torch.nn.functional.dropout(torch.ones(7, 11, dtype=torch.float64), 0.5, training=True).numpy() != 0
    assert 0 < mask.mean() < 1
    torch.manual_seed(3)
    yt = torch.nn.functional.dropout(torch.tensor(x), 0.5, training=True)
    close(nnp.Dropout(0.5)(x, mask=mask), yt, dtype)      # NaN and inf stay NaN (inf * 0) where dropped


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("act", ["relu", "leaky_relu", "sigmoid", "tanh", "identity"])
def test_special_values_through_linear_and_fused_stacks_match_torch(torch, on_backend, act, dtype):
    """Linear alone and Linear + activation (one fused kernel on the numba
    backend), forward and backward, with NaN/inf inputs in some rows only."""
    x = np.random.default_rng(1).standard_normal((6, 5)).astype(dtype)
    x[1, 2], x[3, 0], x[4, 4] = NAN, INF, -INF
    activation = nnp.LeakyReLU(0.1) if act == "leaky_relu" else nnp.nn.ACTIVATIONS[act]()
    model = nnp.Sequential(nnp.Linear(5, 4, dtype=dtype, rng=0), activation,
                           nnp.Linear(4, 3, dtype=dtype, rng=1))
    tm = nnp.interop.to_torch(model)
    y = model(x)
    dy = np.ones_like(y)
    dx = model.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = tm(xt)
    yt.backward(torch.tensor(dy))
    close(y, yt, dtype)
    close(dx, xt.grad, dtype)
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2, 5]]).all()     # a bad row spoils its own output only
    for p, tp in zip(model.parameters(), tm.parameters()):
        close(p.grad, tp.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_special_logits_through_cross_entropy_match_torch(torch, on_backend, reduction, dtype):
    z = np.array([[INF, 0.0, 1.0], [-INF, 0.0, 1.0], [-INF, 0.0, 1.0], [NAN, 0.0, 1.0], [0.0, NAN, 1.0],
                  [1.0, 2.0, 3.0], [-INF, -INF, 0.0], [800.0, -800.0, 0.0]], dtype=dtype)
    t = np.array([0, 1, 0, 2, 0, 2, 2, 1])
    crit = nnp.CrossEntropyLoss(reduction=reduction)
    for sel in (slice(None), [1, 2, 5, 6, 7]):           # every row, and the rows with a finite loss
        loss = crit(z[sel], t[sel])
        dz = crit.backward()
        zt = torch.tensor(z[sel], requires_grad=True)
        lt = torch.nn.functional.cross_entropy(zt, torch.tensor(t[sel]), reduction=reduction)
        lt.backward(torch.ones_like(lt))
        close(np.asarray(loss, dtype=np.float64), lt.double(), dtype)
        close(dz, zt.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_special_values_through_mse_match_torch(torch, on_backend, reduction, dtype):
    pred = special_input((4, 3), dtype, seed=1)
    target = special_input((4, 3), dtype, seed=2)
    crit = nnp.MSELoss(reduction=reduction)
    loss = crit(pred, target)
    dp = crit.backward()
    pt = torch.tensor(pred, requires_grad=True)
    lt = torch.nn.functional.mse_loss(pt, torch.tensor(target), reduction=reduction)
    lt.backward(torch.ones_like(lt))
    close(np.asarray(loss, dtype=np.float64), lt.double(), dtype)
    close(dp, pt.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_one_nan_pixel_reaches_the_loss(on_backend, dtype):
    """The testers' example: one NaN pixel must not vanish in a ReLU."""
    model = nnp.MLP([5, 8, 8, 3], dtype=dtype, rng=0)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(dtype)
    x[2, 3] = NAN
    loss = nnp.CrossEntropyLoss()(model(x), np.array([0, 1, 2, 0]))
    assert math.isnan(loss)


# ---------------------------------------------------------------------------------------------
# fit: divergence, empty data, reductions, interruption
# ---------------------------------------------------------------------------------------------
def blobs(n=48, d=6, classes=3, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, classes, n)


def setup(dtype, lr=0.1, **mlp):
    model = nnp.MLP([6, 8, 3], dtype=dtype, rng=0, **mlp)
    return model, SGD(model.parameters(), lr=lr, momentum=0.9)


class CountingLoss(nnp.CrossEntropyLoss):
    """Cross-entropy that does something on its N-th forward (1-based)."""

    def __init__(self, n, action, **kw):
        super().__init__(**kw)
        self.n, self.action, self.calls = n, action, 0

    def forward(self, logits, target):
        self.calls += 1
        loss = super().forward(logits, target)
        if self.calls == self.n:
            return self.action(self, loss)
        return loss


def _interrupt(self, loss):
    raise KeyboardInterrupt


def _explode(self, loss):
    """Make this step's gradient infinite (the loss stays finite): the update
    then leaves NaN/inf parameters behind."""
    c = self._cache
    key = "dlogits" if "dlogits" in c else "probs"
    c[key] = np.full_like(c[key], INF)
    if key == "probs":
        c["probs"][:, 0] = -INF
    return loss


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_divergence_of_the_training_loss_names_epoch_and_step(on_backend, dtype):
    x, y = blobs(dtype=dtype)
    x *= 1e3
    model = nnp.MLP([6, 3], dtype=dtype, rng=0)
    opt = SGD(model.parameters(), lr=1e6)            # each step multiplies the error by ~1e11
    with pytest.raises(nnp.TrainingDivergedError) as info, np.errstate(all="ignore"):
        nnp.fit(model, nnp.MSELoss(), opt, (x, nnp.one_hot(y, 3, dtype=dtype)), epochs=30, batch_size=16,
                progress=False)
    e = info.value
    assert e.what == "training loss" and e.epoch >= 1 and 1 <= e.step <= 3
    assert f"epoch {e.epoch}, step {e.step} of 3" in str(e) and "lower learning rate" in str(e)
    back = pickle.loads(pickle.dumps(e))
    assert (back.epoch, back.step, back.what, str(back)) == (e.epoch, e.step, e.what, str(e))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("bad", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
def test_nan_or_inf_input_stops_fit_naming_the_step_and_the_sample(on_backend, dtype, bad):
    x, y = blobs(dtype=dtype)
    x[29, 4] = bad
    model, opt = setup(dtype)
    with pytest.raises(nnp.TrainingDivergedError) as info:
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, (x, y), epochs=3, batch_size=16, seed=0, progress=False)
    e = info.value
    order = np.random.default_rng(0).permutation(len(x))          # epoch 1's batch order
    step = int(np.flatnonzero(order == 29)[0]) // 16 + 1
    assert (e.epoch, e.step, e.what) == (1, step, "training loss")
    assert "input" in str(e) and "NaN or inf" in str(e) and "training sample 29" in str(e)
    assert f"epoch 1, step {step} of 3" in str(e)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_nan_targets_stop_fit_naming_the_sample(on_backend, dtype):
    x, y = blobs(dtype=dtype)
    t = nnp.one_hot(y, 3, dtype=dtype)
    t[5, 1] = NAN
    model, opt = setup(dtype)
    with pytest.raises(nnp.TrainingDivergedError, match=r"targets hold NaN or inf \(training sample 5\)"):
        nnp.fit(model, nnp.MSELoss(), opt, (x, t), epochs=2, batch_size=16, progress=False)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_non_finite_validation_loss_stops_fit_after_the_epoch(on_backend, dtype):
    x, y = blobs(dtype=dtype)
    xv, yv = blobs(12, dtype=dtype, seed=1)
    xv[3, 0] = NAN
    model, opt = setup(dtype)
    with pytest.raises(nnp.TrainingDivergedError) as info:
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, (x, y), val=(xv, yv), epochs=3, batch_size=16,
                progress=False)
    e = info.value
    assert (e.epoch, e.step, e.what) == (1, None, "validation loss")
    assert "validation loss" in str(e) and "epoch 1" in str(e) and "validation sample 3" in str(e)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("with_val", [True, False], ids=["val", "no-val"])
def test_parameters_spoilt_by_the_last_step_of_an_epoch_are_caught(on_backend, dtype, with_val):
    """The training loss of every step is finite, but the last update of
    epoch 2 leaves NaN/inf weights: the validation loss (or, without
    validation data, the parameters) stop fit after epoch 2."""
    x, y = blobs(dtype=dtype)
    val = blobs(12, dtype=dtype, seed=1) if with_val else None
    model, opt = setup(dtype)
    loss = CountingLoss(6, _explode)             # 3 steps per epoch (+1 validation call after epoch 1)
    if with_val:
        loss.n = 7
    with pytest.raises(nnp.TrainingDivergedError) as info, np.errstate(all="ignore"):
        nnp.fit(model, loss, opt, (x, y), val=val, epochs=4, batch_size=16, progress=False)
    e = info.value
    assert e.epoch == 2 and e.step is None
    assert e.what == ("validation loss" if with_val else "parameters")
    assert "parameters became NaN or inf" in str(e) and "lower learning rate" in str(e)


def test_parameters_that_were_not_finite_before_training_are_named():
    x, y = blobs()
    model, opt = setup(np.float32)
    model[0].weight.data[0, 0] = NAN
    with pytest.raises(nnp.TrainingDivergedError, match="before training began") as info:
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, (x, y), epochs=1, progress=False)
    assert (info.value.epoch, info.value.step) == (1, 1)


def test_empty_data_is_refused():
    x, y = blobs()
    model, opt = setup(np.float32)
    crit = nnp.CrossEntropyLoss()
    with pytest.raises(ValueError, match="training set has 0 samples"):
        nnp.fit(model, crit, opt, (x[:0], y[:0]), progress=False)
    with pytest.raises(ValueError, match="validation set has 0 samples"):
        nnp.fit(model, crit, opt, (x, y), val=(x[:0], y[:0]), progress=False)
    with pytest.raises(ValueError, match="at least one sample"):
        nnp.evaluate(model, x[:0], y[:0])
    with pytest.raises(ValueError, match="drop_last"):
        nnp.fit(model, crit, opt, (x[:10], y[:10]), batch_size=16, drop_last=True, progress=False)
    with pytest.raises(TypeError, match=r"\(x, y\) pair"):
        nnp.fit(model, crit, opt, x, progress=False)


def test_fit_refuses_mismatched_objects():
    x, y = blobs()
    model, opt = setup(np.float32)
    other, other_opt = setup(np.float32)
    crit = nnp.CrossEntropyLoss()
    with pytest.raises(ValueError, match="none of the model's parameters"):
        nnp.fit(model, crit, other_opt, (x, y), progress=False)
    with pytest.raises(ValueError, match="another optimizer"):
        nnp.fit(model, crit, opt, (x, y), scheduler=StepLR(other_opt, 1), progress=False)
    with pytest.raises(TypeError, match=r"CrossEntropyLoss\(\)"):
        nnp.fit(model, nnp.CrossEntropyLoss, opt, (x, y), progress=False)
    with pytest.raises(TypeError, match="optimizer"):
        nnp.fit(model, crit, 0.1, (x, y), progress=False)
    with pytest.raises(TypeError, match="float32"):                # dtypes are still checked
        nnp.fit(model, crit, opt, (x.astype(np.float64), y), progress=False)
    with pytest.raises(ValueError, match="differ in length"):
        nnp.fit(model, crit, opt, (x, y[:-1]), progress=False)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("loss_cls,targets", [(nnp.CrossEntropyLoss, "labels"), (nnp.MSELoss, "one-hot")])
def test_evaluate_reports_the_per_sample_mean_for_every_reduction(on_backend, dtype, loss_cls, targets):
    x, y = blobs(50, dtype=dtype)
    t = y if targets == "labels" else nnp.one_hot(y, 3, dtype=dtype)
    model, _ = setup(dtype)
    mean = nnp.evaluate(model, x, t, loss_cls(), batch_size=16)
    for reduction in ("sum", "none"):
        got = nnp.evaluate(model, x, t, loss_cls(reduction=reduction), batch_size=16)
        assert got[0] == pytest.approx(mean[0], rel=1e-5) and got[1] == mean[1]
    whole = loss_cls()(model(x), t)
    assert mean[0] == pytest.approx(whole, rel=1e-5)       # independent of the batch size


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("loss_cls,targets", [(nnp.CrossEntropyLoss, "labels"), (nnp.MSELoss, "one-hot")])
def test_fit_trains_on_sum_but_reports_per_sample_means(on_backend, dtype, loss_cls, targets):
    """SGD on the sum with lr / (terms per batch) is SGD on the mean with lr:
    the same weights, and the History must report the same losses."""
    x, y = blobs(48, dtype=dtype)
    t = y if targets == "labels" else nnp.one_hot(y, 3, dtype=dtype)
    terms = 16 if targets == "labels" else 16 * 3
    runs = {}
    for reduction, lr in (("mean", 0.1), ("sum", 0.1 / terms)):
        model = nnp.MLP([6, 8, 3], dtype=dtype, rng=0)
        opt = SGD(model.parameters(), lr=lr)
        runs[reduction] = nnp.fit(model, loss_cls(reduction=reduction), opt, (x, t), val=(x[:20], t[:20]),
                                  epochs=3, batch_size=16, progress=False)
    rel = 1e-4 if dtype == np.float32 else 1e-9
    for field in ("train_loss", "val_loss"):
        np.testing.assert_allclose(getattr(runs["sum"], field), getattr(runs["mean"], field), rtol=rel)
    with pytest.raises(ValueError, match="reduction='none'"):
        model = nnp.MLP([6, 8, 3], dtype=dtype, rng=0)
        nnp.fit(model, loss_cls(reduction="none"), SGD(model.parameters(), lr=0.1), (x, t), progress=False)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("where", ["step", "validation"])
def test_interrupt_hands_back_the_state_of_the_last_finished_epoch(on_backend, dtype, where):
    """Ctrl-C in the middle of epoch 2 (a training step, or the validation
    after it): .state is the model after epoch 1, .history has epoch 1 only,
    and both survive pickling."""
    x, y = blobs(dtype=dtype)
    val = blobs(12, dtype=dtype, seed=1)

    def run(loss, epochs):
        model, opt = setup(dtype, dropout=0.2)
        try:
            return model, nnp.fit(model, loss, opt, (x, y), val=val, epochs=epochs, batch_size=16, seed=4,
                                  progress=False)
        except nnp.TrainingInterrupted as e:
            return model, e

    ref_model, ref_hist = run(nnp.CrossEntropyLoss(), 1)
    n = 4 + 2 if where == "step" else 4 + 4       # epoch 1: 3 steps + validation; then step 2 / validation
    model, e = run(CountingLoss(n, _interrupt), 3)
    assert isinstance(e, nnp.TrainingInterrupted) and isinstance(e, KeyboardInterrupt)
    assert len(e.history) == 1 and e.history.train_loss == ref_hist.train_loss
    assert same(dict(e.state), dict(ref_model.state_dict()))
    assert not same(dict(e.state), dict(model.state_dict()))      # the model moved on in epoch 2
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is nnp.TrainingInterrupted and back.history == e.history
    assert same(dict(back.state), dict(e.state))
    model.load_state_dict(e.state)                 # what a caller saves: model and history agree
    assert nnp.evaluate(model, *val)[0] == pytest.approx(e.history.val_loss[-1])


def test_interrupt_in_the_first_epoch_has_no_state():
    x, y = blobs()
    model, opt = setup(np.float32)
    with pytest.raises(nnp.TrainingInterrupted) as info:
        nnp.fit(model, CountingLoss(2, _interrupt), opt, (x, y), epochs=2, batch_size=16, progress=False)
    assert info.value.state is None and len(info.value.history) == 0
    back = pickle.loads(pickle.dumps(info.value))
    assert back.state is None and len(back.history) == 0


def test_training_diverged_error_pickles_with_its_fields():
    e = nnp.TrainingDivergedError("the validation loss became nan after epoch 3", epoch=3, step=None,
                                  what="validation loss")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is nnp.TrainingDivergedError and vars(back) == vars(e) and back.args == e.args
    plain = nnp.TrainingDivergedError("old-style message only")
    assert pickle.loads(pickle.dumps(plain)).args == plain.args


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_a_child_replaced_by_assignment_is_the_one_that_runs(name):
    """setattr(seq, "0", layer) replaces the layer in what forward runs (the numba backend's fused plan
    included), not only in the module table."""
    with backend.use(name):
        s = nnp.nn.Sequential(nnp.nn.Linear(3, 2, rng=0), nnp.nn.ReLU())
        x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
        s(x)
        new = nnp.nn.Linear(3, 2, rng=5)
        setattr(s, "0", new)
        expected = np.maximum(x @ new.weight.data.T + new.bias.data, 0)
        np.testing.assert_allclose(s(x), expected, rtol=1e-6)
        assert s[0] is new and list(s.state_dict()) == ["0.weight", "0.bias"]


@pytest.mark.parametrize("name", ["numpy", "numba"])
@pytest.mark.parametrize("n", [1, 2])
def test_a_weight_of_another_shape_swapped_in_before_backward_is_refused(name, n):
    """A Linear's weight replaced by one of another shape between forward and backward: a clear
    ValueError, not a gradient broadcast into the new shape (numpy) or read past an array's end (numba)."""
    with backend.use(name):
        m = nnp.nn.Sequential(nnp.nn.Linear(1, 3, rng=0), nnp.nn.ReLU(), nnp.nn.Linear(3, 2, rng=0),
                              input_grad=False)
        out = m(np.ones((n, 1), np.float32))
        m[0].weight = nnp.nn.Parameter(np.zeros((3, 5), np.float32))
        with pytest.raises(ValueError, match=r"shape|replaced"):
            m.backward(np.ones_like(out))
        assert not m[0].weight.grad.any()
