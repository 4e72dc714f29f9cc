"""Learning-rate schedulers against PyTorch 2.13: rate (and momentum) trajectories over 50 steps with two
parameter groups, ReduceLROnPlateau on fixed metric sequences, JSON-safe state dicts that resume a schedule
exactly, and clear errors for bad arguments and bad state dicts."""
import copy
import json
import math
import pickle

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import optim as O
from nnumpy.optim import (CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR, MultiStepLR, OneCycleLR,
                          ReduceLROnPlateau, SequentialLR, StepLR)

NAN, INF = float("nan"), float("inf")
LRS = (0.1, 0.03)                 # two parameter groups with different rates
STEPS = 50


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def nnp_opt(name="SGD", lrs=LRS, **kw):
    rng = np.random.default_rng(0)
    groups = [{"params": [nnp.Parameter(rng.standard_normal((2, 3)))], "lr": lr} for lr in lrs]
    return getattr(O, name)(groups, **kw)


def torch_opt(torch, name="SGD", lrs=LRS, **kw):
    torch.manual_seed(0)
    groups = [{"params": [torch.nn.Parameter(torch.randn(2, 3, dtype=torch.float64))], "lr": lr} for lr in lrs]
    return getattr(torch.optim, name)(groups, **kw)


def momenta(opt):
    """Each group's momentum (SGD, RMSprop) or beta1 (Adam, AdamW)."""
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def lrs_of(opt):
    return [g["lr"] for g in opt.param_groups]


def plain(value, where="state"):
    """Assert ``value`` is made of JSON's plain values only."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), f"{where}: key {k!r} is not a str"
            plain(v, f"{where}[{k!r}]")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            plain(v, f"{where}[{i}]")
    else:
        assert value is None or type(value) in (int, float, str, bool), f"{where} is a {type(value).__name__}"


def json_copy(d):
    plain(d)
    return json.loads(json.dumps(d))


def assert_refused(fn, *names):
    """fn() raises a ValueError/TypeError whose message names every one of ``names``."""
    with pytest.raises((ValueError, TypeError)) as info:
        fn()
    msg = str(info.value)
    for name in names:
        assert name in msg, msg
    back = pickle.loads(pickle.dumps(info.value))          # errors survive pickling
    assert type(back) is type(info.value) and str(back) == msg
    return info.value


# ---------------------------------------------------------------------------------------------
# Schedules built the same way on both sides: make(M, opt) with M = nnumpy.optim or torch's lr_scheduler
# ---------------------------------------------------------------------------------------------
def _lambdas():
    return [lambda e: 0.95 ** e, lambda e: 1.0 / (1 + e // 5)]


SCHEDULES = {
    "StepLR": ("SGD", lambda M, o: M.StepLR(o, step_size=7, gamma=0.5)),
    "MultiStepLR": ("SGD", lambda M, o: M.MultiStepLR(o, milestones=[3, 10, 11, 30], gamma=0.3)),
    "ExponentialLR": ("SGD", lambda M, o: M.ExponentialLR(o, gamma=0.93)),
    "LinearLR-default": ("SGD", lambda M, o: M.LinearLR(o)),
    "LinearLR-warmup": ("SGD", lambda M, o: M.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=20)),
    "LinearLR-decay": ("Adam", lambda M, o: M.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=35)),
    "CosineAnnealingLR": ("SGD", lambda M, o: M.CosineAnnealingLR(o, T_max=15, eta_min=0.001)),
    "LambdaLR-list": ("SGD", lambda M, o: M.LambdaLR(o, _lambdas())),
    "LambdaLR-one": ("Adam", lambda M, o: M.LambdaLR(o, lambda e: 1.0 / math.sqrt(e + 1))),
    "SequentialLR-linear-cosine": ("SGD", lambda M, o: M.SequentialLR(
        o, [M.LinearLR(o, start_factor=0.1, total_iters=5), M.CosineAnnealingLR(o, T_max=30, eta_min=1e-4)],
        milestones=[5])),
    "SequentialLR-linear-exponential": ("SGD", lambda M, o: M.SequentialLR(
        o, [M.LinearLR(o, start_factor=0.25, total_iters=8), M.ExponentialLR(o, gamma=0.9)], milestones=[8])),
    "SequentialLR-three": ("Adam", lambda M, o: M.SequentialLR(
        o, [M.LinearLR(o, start_factor=0.5, total_iters=4), M.MultiStepLR(o, [3, 9], gamma=0.5),
            M.CosineAnnealingLR(o, T_max=10)], milestones=[6, 20])),
    "SequentialLR-exponential-linear-step": ("SGD", lambda M, o: M.SequentialLR(
        o, [M.ExponentialLR(o, gamma=0.95), M.LinearLR(o, start_factor=0.5, total_iters=10),
            M.StepLR(o, step_size=5, gamma=0.5)], milestones=[10, 30])),
    "SequentialLR-step-lambda": ("Adam", lambda M, o: M.SequentialLR(
        o, [M.StepLR(o, step_size=3, gamma=0.7), M.LambdaLR(o, _lambdas())], milestones=[7])),
    "OneCycleLR-sgd": ("SGD", lambda M, o: M.OneCycleLR(o, max_lr=[1.0, 0.3], total_steps=STEPS)),
    "OneCycleLR-adam-three-linear": ("Adam", lambda M, o: M.OneCycleLR(
        o, max_lr=[0.01, 0.004], epochs=5, steps_per_epoch=10, pct_start=0.25, anneal_strategy="linear",
        base_momentum=[0.8, 0.85], max_momentum=0.9, div_factor=10.0, final_div_factor=100.0, three_phase=True)),
    "OneCycleLR-adamw-three-cos": ("AdamW", lambda M, o: M.OneCycleLR(
        o, max_lr=[0.02, 0.01], total_steps=STEPS, pct_start=0.4, three_phase=True)),
    "OneCycleLR-no-momentum": ("SGD", lambda M, o: M.OneCycleLR(
        o, max_lr=[0.5, 0.2], total_steps=STEPS, cycle_momentum=False, pct_start=0.0)),
}
OPT_KW = {"SGD": {"momentum": 0.9}, "Adam": {}, "AdamW": {"betas": (0.9, 0.98)}}


def build(torch_mod, name):
    """(nnumpy optimizer, scheduler) or, with torch_mod, torch's."""
    opt_name, make = SCHEDULES[name]
    if torch_mod is None:
        o = nnp_opt(opt_name, **OPT_KW[opt_name])
        return o, make(O, o)
    o = torch_opt(torch_mod, opt_name, **OPT_KW[opt_name])
    return o, make(torch_mod.optim.lr_scheduler, o)


def trajectory(opt, sched, steps=STEPS, before_step=None):
    """Rates and momenta after creation and after each step."""
    lrs, moms = [sched.get_last_lr()], [momenta(opt)]
    for _ in range(steps):
        if before_step is not None:
            before_step()
        sched.step()
        lrs.append(sched.get_last_lr())
        moms.append(momenta(opt))
        assert lrs[-1] == lrs_of(opt)
    return np.array(lrs, dtype=float), np.array(moms, dtype=float)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_rates_and_momenta_match_torch_over_50_steps_with_two_groups(torch, name):
    opt, sched = build(None, name)
    topt, tsched = build(torch, name)
    lrs, moms = trajectory(opt, sched)
    tlrs, tmoms = trajectory(topt, tsched, before_step=topt.step)    # no grads: torch's step moves nothing
    assert lrs.shape == (STEPS + 1, 2) and np.isfinite(lrs).all() and np.isfinite(tlrs).all()
    assert len(np.unique(lrs[:, 0])) > 2                              # the schedule really changes the rate
    assert not np.array_equal(lrs[:, 0], lrs[:, 1])                   # and the groups are distinct
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-10, atol=0)
    np.testing.assert_allclose(moms, tmoms, rtol=1e-10, atol=0)
    if name.startswith("OneCycleLR") and "no-momentum" not in name:
        assert len(np.unique(moms[:, 0])) > 2                         # the momentum really cycles
    if "betas" in opt.param_groups[0]:                                # beta2 is left alone
        beta2 = OPT_KW[SCHEDULES[name][0]].get("betas", (0.9, 0.999))[1]
        assert [g["betas"][1] for g in opt.param_groups] == [g["betas"][1] for g in topt.param_groups] == [beta2] * 2


def test_one_cycle_past_total_steps_raises_torchs_error_and_keeps_the_state(torch):
    opt, sched = build(None, "OneCycleLR-sgd")
    topt, tsched = build(torch, "OneCycleLR-sgd")
    for _ in range(STEPS):                      # total_steps calls of step() are allowed, as in torch
        sched.step()
        topt.step()
        tsched.step()
    before, lrs, moms = sched.state_dict(), lrs_of(opt), momenta(opt)
    with pytest.raises(ValueError) as mine:
        sched.step()
    with pytest.raises(ValueError) as theirs:
        tsched.step()
    expected = "Tried to step 51 times. The specified number of total steps is 50"
    assert str(mine.value) == str(theirs.value) == expected
    assert sched.state_dict() == before and lrs_of(opt) == lrs and momenta(opt) == moms


@pytest.mark.parametrize("opt_name,kw", [("RMSprop", {"momentum": 0.5}), ("SGD", {})])
def test_one_cycle_cycles_any_optimizers_momentum_like_torch(torch, opt_name, kw):
    if not hasattr(O, opt_name):
        pytest.skip(f"nnumpy.optim has no {opt_name} yet")
    opt, topt = nnp_opt(opt_name, **kw), torch_opt(torch, opt_name, **kw)
    sched = OneCycleLR(opt, max_lr=0.2, total_steps=30, base_momentum=0.7, max_momentum=0.9)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.2, total_steps=30, base_momentum=0.7,
                                                 max_momentum=0.9)
    lrs, moms = trajectory(opt, sched, 30)
    tlrs, tmoms = trajectory(topt, tsched, 30, before_step=topt.step)
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-10, atol=0)
    np.testing.assert_allclose(moms, tmoms, rtol=1e-10, atol=0)
    assert moms.min() == pytest.approx(0.7) and moms[0, 0] == pytest.approx(0.9)


def test_one_cycle_without_momentum_or_betas_needs_cycle_momentum_false(torch):
    if not hasattr(O, "Adagrad"):
        pytest.skip("nnumpy.optim has no Adagrad yet")
    opt = nnp_opt("Adagrad")
    with pytest.raises(ValueError) as mine:
        OneCycleLR(opt, max_lr=0.1, total_steps=10)
    assert "cycle_momentum" in str(mine.value) and "Adagrad" in str(mine.value)
    with pytest.raises(ValueError, match="momentum"):
        torch.optim.lr_scheduler.OneCycleLR(torch_opt(torch, "Adagrad"), max_lr=0.1, total_steps=10)
    assert lrs_of(opt) == list(LRS) and all("initial_lr" not in g for g in opt.param_groups)
    sched = OneCycleLR(opt, max_lr=0.1, total_steps=10, cycle_momentum=False)
    for _ in range(10):
        sched.step()
    assert set(opt.param_groups[0]) == set(nnp_opt("Adagrad").param_groups[0]) | {"initial_lr"}


# ---------------------------------------------------------------------------------------------
# ReduceLROnPlateau
# ---------------------------------------------------------------------------------------------
def metric_sequence(kind, n=STEPS, seed=3):
    """Plateaus (exact repeats and changes below the threshold), improvements and set-backs."""
    rng = np.random.default_rng(seed)
    level, out = 1.0, []
    for i in range(n):
        r = rng.random()
        if r < 0.25:
            level *= 0.8                                   # a clear improvement
        elif r < 0.35:
            level *= 1.2                                   # a set-back
        jitter = rng.choice([0.0, 0.0, -1e-6 * level, 1e-3 * level])   # exact plateau / below threshold / worse
        out.append(level + jitter)
    return [-v for v in out] if kind == "max" else out


PLATEAU_CASES = {
    "min-rel": dict(mode="min", factor=0.5, patience=2),
    "min-rel-cooldown": dict(mode="min", factor=0.5, patience=1, cooldown=3, threshold=1e-2),
    "min-abs-minlr-list": dict(mode="min", factor=0.3, patience=0, threshold=1e-3, threshold_mode="abs",
                               min_lr=[0.01, 0.0]),
    "max-rel": dict(mode="max", factor=0.7, patience=1, cooldown=1),
    "max-abs-minlr": dict(mode="max", factor=0.1, patience=1, threshold=0.05, threshold_mode="abs", min_lr=1e-3),
    "big-eps": dict(mode="min", factor=0.9, patience=0, eps=0.005),
    "defaults": dict(),
}


@pytest.mark.parametrize("case", list(PLATEAU_CASES))
@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_reduce_on_plateau_matches_torch(torch, case, opt_name):
    kw = PLATEAU_CASES[case]
    opt, topt = nnp_opt(opt_name), torch_opt(torch, opt_name)
    sched = ReduceLROnPlateau(opt, **kw)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    metrics = metric_sequence(kw.get("mode", "min"))
    if case == "defaults":
        metrics = [1.0] * 5 + [0.5] + [0.5] * 20 + [0.4] + [0.45] * 23      # patience 10 needs long plateaus
    lrs, tlrs = [sched.get_last_lr()], [tsched.get_last_lr()]
    counters = []
    for m in metrics:
        sched.step(m)
        tsched.step(m)
        lrs.append(sched.get_last_lr())
        tlrs.append(tsched.get_last_lr())
        counters.append((sched.best, sched.num_bad_epochs, sched.cooldown_counter, sched.in_cooldown))
        assert counters[-1] == (tsched.best, tsched.num_bad_epochs, tsched.cooldown_counter, tsched.in_cooldown)
        assert lrs[-1] == lrs_of(opt)
    lrs, tlrs = np.array(lrs), np.array(tlrs)
    assert np.isfinite(lrs).all()
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-10, atol=0)
    assert sched.last_epoch == tsched.last_epoch == len(metrics)
    if case != "big-eps":
        assert len(np.unique(lrs[:, 0])) >= 2                 # the rate was reduced at least once
    if "cooldown" in kw:
        assert any(c[3] for c in counters)                    # a cooldown happened
    if "min_lr" in kw:                                        # the floor was reached
        floor = kw["min_lr"] if isinstance(kw["min_lr"], list) else [kw["min_lr"]] * 2
        assert lrs[-1, 0] == pytest.approx(floor[0], rel=1e-12)


def test_reduce_on_plateau_accepts_numpy_and_torch_numbers_and_inf(torch):
    opt = nnp_opt()
    sched = ReduceLROnPlateau(opt, patience=0)
    sched.step(np.float32(2.0))
    sched.step(np.array(1.5))
    sched.step(torch.tensor(1.0, dtype=torch.float64))
    sched.step(np.array([0.5]))
    assert sched.best == 0.5 and sched.num_bad_epochs == 0
    sched.step(INF)                                           # worse than best: a bad epoch, the rate drops
    assert sched.get_last_lr() == pytest.approx([0.01, 0.003])


BAD_METRICS = [(NAN, ValueError), ("0.5", TypeError), (None, TypeError), (True, TypeError), ([1.0, 2.0], TypeError),
               (np.array([1.0, 2.0]), TypeError)]


@pytest.mark.parametrize("metric,error", BAD_METRICS, ids=repr)
def test_reduce_on_plateau_refuses_a_nan_or_non_number_metric_and_changes_nothing(metric, error):
    opt = nnp_opt()
    sched = ReduceLROnPlateau(opt, patience=0)
    sched.step(1.0)
    sched.step(2.0)
    before, lrs = sched.state_dict(), lrs_of(opt)
    with pytest.raises(error) as info:
        sched.step(metric)
    assert "metrics" in str(info.value) and ("nan" in str(info.value) if metric is NAN else True)
    assert sched.state_dict() == before and lrs_of(opt) == lrs
    pickle.loads(pickle.dumps(info.value))


@pytest.mark.parametrize("opt_name,kw", [("Adam", {}), ("AdamW", {}), ("RMSprop", {}), ("Adagrad", {}),
                                         ("SGD", {"nesterov": True, "momentum": 0.9})])
def test_reduce_on_plateau_works_with_every_optimizer(opt_name, kw):
    if not hasattr(O, opt_name):
        pytest.skip(f"nnumpy.optim has no {opt_name} yet")
    opt = nnp_opt(opt_name, **kw)
    keys = [set(g) for g in opt.param_groups]
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=0)
    for m in [1.0, 1.0, 1.0]:
        sched.step(m)
    assert sched.get_last_lr() == [0.1 * 0.25, 0.03 * 0.25] == lrs_of(opt)
    assert [set(g) for g in opt.param_groups] == keys          # no key added to the groups


def test_reduce_on_plateau_is_not_an_lr_scheduler():
    """Its step needs a metric: code that steps an LRScheduler without one (SequentialLR) tells them apart."""
    assert not isinstance(ReduceLROnPlateau(nnp_opt()), O.LRScheduler)


# ---------------------------------------------------------------------------------------------
# state_dict: plain values, JSON round trip, exact resume
# ---------------------------------------------------------------------------------------------
def _continue(opt, sched, steps):
    out = []
    for _ in range(steps):
        sched.step()
        out.append((sched.get_last_lr(), lrs_of(opt), momenta(opt)))
    return out


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_resuming_from_a_json_state_dict_gives_the_same_rates(name):
    opt, sched = build(None, name)
    ref_opt, ref = build(None, name)
    _continue(opt, sched, 20)
    _continue(ref_opt, ref, 20)
    saved_sched = json_copy(sched.state_dict())
    saved_opt = copy.deepcopy(opt.state_dict())
    opt2, sched2 = build(None, name)              # fresh: creating the scheduler writes epoch 0's rates
    opt2.load_state_dict(saved_opt)               # then the optimizer's rates and momenta
    sched2.load_state_dict(saved_sched)           # then the schedule
    assert sched2.state_dict() == sched.state_dict()
    assert _continue(opt2, sched2, 30) == _continue(ref_opt, ref, 30)      # identical, not approximately


@pytest.mark.parametrize("case", list(PLATEAU_CASES))
def test_reduce_on_plateau_resumes_from_a_json_state_dict(case):
    kw = PLATEAU_CASES[case]
    metrics = metric_sequence(kw.get("mode", "min"))
    opt = nnp_opt()
    sched = ReduceLROnPlateau(opt, **kw)
    ref = ReduceLROnPlateau(nnp_opt(), **kw)
    for m in metrics[:20]:
        sched.step(m)
        ref.step(m)
    saved = json_copy(sched.state_dict())
    if kw.get("mode", "min") == "min":
        assert saved["mode_worse"] == INF
    opt2 = nnp_opt()
    sched2 = ReduceLROnPlateau(opt2, **kw)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    sched2.load_state_dict(saved)
    assert sched2.state_dict() == sched.state_dict()
    for m in metrics[20:]:
        sched2.step(m)
        ref.step(m)
        assert sched2.get_last_lr() == ref.get_last_lr() == lrs_of(opt2)
        assert (sched2.best, sched2.num_bad_epochs, sched2.cooldown_counter) == \
               (ref.best, ref.num_bad_epochs, ref.cooldown_counter)


def test_a_fresh_reduce_on_plateau_state_holds_inf_and_survives_json():
    sd = ReduceLROnPlateau(nnp_opt(), mode="max").state_dict()
    assert sd["best"] == -INF and json_copy(sd) == sd


def test_state_dict_is_a_copy():
    opt, sched = build(None, "SequentialLR-three")
    sd = sched.state_dict()
    sd["_last_lr"][0] = 5.0
    sd["_schedulers"][1]["milestones"].append(99)
    assert sched.get_last_lr()[0] != 5.0 and sched._schedulers[1].milestones == [3, 9]


RESUMABLE = {
    "ExponentialLR": lambda o, **kw: ExponentialLR(o, gamma=0.93, **kw),
    "MultiStepLR": lambda o, **kw: MultiStepLR(o, milestones=[3, 7, 10], gamma=0.3, **kw),
    "LinearLR": lambda o, **kw: LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=20, **kw),
    "StepLR": lambda o, **kw: StepLR(o, step_size=7, gamma=0.5, **kw),
    "CosineAnnealingLR": lambda o, **kw: CosineAnnealingLR(o, T_max=15, eta_min=0.001, **kw),
}


@pytest.mark.parametrize("name", list(RESUMABLE))
def test_last_epoch_resumes_at_the_next_epoch(name):
    """nnumpy's convention for last_epoch=k (every chainable schedule): creating the scheduler applies
    epoch k + 1 to the rates of epoch k found in the optimizer (loaded with its state dict)."""
    opt = nnp_opt()
    sched = RESUMABLE[name](opt)
    _continue(opt, sched, 6)
    saved = copy.deepcopy(opt.state_dict())
    _continue(opt, sched, 1)                       # epoch 7
    opt2 = nnp_opt()
    opt2.load_state_dict(saved)
    sched2 = RESUMABLE[name](opt2, last_epoch=6)
    assert sched2.last_epoch == 7
    np.testing.assert_allclose(lrs_of(opt2), lrs_of(opt), rtol=1e-13, atol=0)


# ---------------------------------------------------------------------------------------------
# Bad state dicts: refused with a clear error, nothing changed
# ---------------------------------------------------------------------------------------------
def _bad_states(name, good):
    """{what: (state dict, a word the message must contain)} for scheduler ``name``."""
    n = len(good["_last_lr"])
    bad = {
        "not a dict": ([1, 2], "dict"),
        "missing key": ({k: v for k, v in good.items() if k != "last_epoch"}, "last_epoch"),
        "unexpected key": ({**good, "verbose": False}, "verbose"),
        "bad last_epoch": ({**good, "last_epoch": 2.5}, "last_epoch"),
        "one group too many": ({**good, "_last_lr": [0.1] * (n + 1)}, "_last_lr"),
        "nan rate": ({**good, "_last_lr": [NAN] * n}, "_last_lr[0]"),
    }
    if "base_lrs" in good:
        bad["base_lrs not a list"] = ({**good, "base_lrs": 0.1}, "base_lrs")
    if "gamma" in good:
        bad["nan gamma"] = ({**good, "gamma": NAN}, "gamma")
        bad["zero gamma"] = ({**good, "gamma": 0.0}, "gamma")
    if "milestones" in good:
        bad["decreasing milestones"] = ({**good, "milestones": [5, 2]}, "milestones")
    if "start_factor" in good:
        bad["start_factor 0"] = ({**good, "start_factor": 0.0}, "start_factor")
        bad["total_iters 0"] = ({**good, "total_iters": 0}, "total_iters")
    if "total_steps" in good:
        bad["past the end"] = ({**good, "last_epoch": good["total_steps"] + 1}, "total_steps")
        bad["strategy"] = ({**good, "anneal_strategy": "cosine"}, "anneal_strategy")
        bad["max_lrs per group"] = ({**good, "max_lrs": [1.0]}, "max_lrs")
        bad["use_beta1 flipped"] = ({**good, "use_beta1": not good["use_beta1"]}, "use_beta1")
        bad["zero-length phase"] = ({**good, "pct_start": 1 / good["total_steps"]}, "pct_start")
    if "_schedulers" in good:
        child = copy.deepcopy(good["_schedulers"])
        child[-1] = {**child[-1], "last_epoch": "3"}
        bad["bad last child"] = ({**good, "_schedulers": child}, "_schedulers[")
        bad["children count"] = ({**good, "_schedulers": good["_schedulers"][:1]}, "_schedulers")
        bad["milestones count"] = ({**good, "_milestones": good["_milestones"] + [99]}, "_milestones")
        other = copy.deepcopy(good["_schedulers"])
        other[0], other[1] = other[1], other[0]
        bad["children swapped"] = ({**good, "_schedulers": other}, "_schedulers[0]")
    return bad


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_load_state_dict_refuses_bad_states_and_changes_nothing(name):
    opt, sched = build(None, name)
    _continue(opt, sched, 3)
    good = sched.state_dict()
    lrs = lrs_of(opt)
    for what, (d, word) in _bad_states(name, good).items():
        assert_refused(lambda: sched.load_state_dict(d), word)
        assert sched.state_dict() == good, what
        assert lrs_of(opt) == lrs, what
    sched.load_state_dict(json_copy(good))        # and the good one loads
    assert sched.state_dict() == good


def test_a_state_of_another_scheduler_is_refused():
    opt, exp = build(None, "ExponentialLR")
    states = {n: build(None, n)[1].state_dict() for n in ["StepLR", "LinearLR-warmup", "OneCycleLR-sgd",
                                                          "LambdaLR-list"]}
    for n, d in states.items():
        assert_refused(lambda: exp.load_state_dict(d), "ExponentialLR", "another scheduler")
    plateau = ReduceLROnPlateau(nnp_opt())
    assert_refused(lambda: plateau.load_state_dict(exp.state_dict()), "ReduceLROnPlateau")


def test_one_cycle_state_of_sgd_does_not_load_into_adam():
    sgd_state = build(None, "OneCycleLR-sgd")[1].state_dict()
    _, adam_sched = build(None, "OneCycleLR-adamw-three-cos")
    before = adam_sched.state_dict()
    assert_refused(lambda: adam_sched.load_state_dict({**sgd_state, "three_phase": True}), "use_beta1")
    assert_refused(lambda: adam_sched.load_state_dict({**before, "max_momentums": [1.0, 0.9]}),
                   "max_momentums[0]")
    assert adam_sched.state_dict() == before


@pytest.mark.parametrize("key,value,word", [
    ("best", NAN, "best"), ("best", "0.1", "best"), ("mode", "minimum", "mode"), ("mode_worse", -INF, "mode_worse"),
    ("factor", 1.0, "factor"), ("patience", -1, "patience"), ("threshold_mode", "relative", "threshold_mode"),
    ("min_lrs", [0.0], "min_lrs"), ("min_lrs", [0.0, NAN], "min_lrs[1]"), ("num_bad_epochs", 1.5, "num_bad_epochs"),
    ("cooldown_counter", -1, "cooldown_counter"), ("default_min_lr", "0", "default_min_lr"),
    ("_last_lr", [0.1], "_last_lr"), ("eps", INF, "eps")], ids=repr)
def test_reduce_on_plateau_load_state_dict_refuses_bad_values(key, value, word):
    sched = ReduceLROnPlateau(nnp_opt(), patience=1)
    for m in [1.0, 0.5, 0.6]:
        sched.step(m)
    good = sched.state_dict()
    assert_refused(lambda: sched.load_state_dict({**good, key: value}), word)
    assert sched.state_dict() == good


def test_lambda_lr_state_holds_no_functions_and_keeps_the_constructors():
    opt, sched = build(None, "LambdaLR-list")
    _continue(opt, sched, 4)
    sd = sched.state_dict()
    assert "lr_lambdas" not in sd and sd["last_epoch"] == 4
    fns = _lambdas()
    opt2 = nnp_opt(momentum=0.9)
    sched2 = LambdaLR(opt2, fns)
    sched2.load_state_dict(json_copy(sd))
    assert sched2.lr_lambdas == fns and sched2.last_epoch == 4
    sched2.step()
    sched.step()
    assert sched2.get_last_lr() == sched.get_last_lr()


# ---------------------------------------------------------------------------------------------
# Bad constructor arguments: a clear error naming the argument, the optimizer untouched
# ---------------------------------------------------------------------------------------------
def _seq(o, schedulers=None, milestones=(3,), **kw):
    return SequentialLR(o, schedulers if schedulers is not None else
                        [LinearLR(o, total_iters=3), ExponentialLR(o, 0.9)], list(milestones), **kw)


BAD_ARGS = {
    # what: (make(opt), words the message must contain)
    "MultiStepLR decreasing": (lambda o: MultiStepLR(o, [5, 3]), ["milestones", "increasing"]),
    "MultiStepLR repeated": (lambda o: MultiStepLR(o, [3, 3]), ["milestones", "increasing"]),
    "MultiStepLR float": (lambda o: MultiStepLR(o, [2.5]), ["milestones[0]", "2.5"]),
    "MultiStepLR negative": (lambda o: MultiStepLR(o, [-1, 4]), ["milestones[0]", "-1"]),
    "MultiStepLR not a list": (lambda o: MultiStepLR(o, 5), ["milestones", "5"]),
    "MultiStepLR str": (lambda o: MultiStepLR(o, "35"), ["milestones", "'35'"]),
    "MultiStepLR gamma 0": (lambda o: MultiStepLR(o, [3], gamma=0.0), ["gamma", "0.0"]),
    "MultiStepLR gamma nan": (lambda o: MultiStepLR(o, [3], gamma=NAN), ["gamma", "nan"]),
    "MultiStepLR gamma str": (lambda o: MultiStepLR(o, [3], gamma="0.1"), ["gamma", "'0.1'"]),
    "ExponentialLR gamma -1": (lambda o: ExponentialLR(o, -1.0), ["gamma", "-1.0"]),
    "ExponentialLR gamma inf": (lambda o: ExponentialLR(o, INF), ["gamma", "inf"]),
    "ExponentialLR gamma None": (lambda o: ExponentialLR(o, None), ["gamma", "None"]),
    "ExponentialLR gamma bool": (lambda o: ExponentialLR(o, True), ["gamma", "True"]),
    "LinearLR start 0": (lambda o: LinearLR(o, start_factor=0.0), ["start_factor", "0.0"]),
    "LinearLR start 1.5": (lambda o: LinearLR(o, start_factor=1.5), ["start_factor", "1.5"]),
    "LinearLR start nan": (lambda o: LinearLR(o, start_factor=NAN), ["start_factor", "nan"]),
    "LinearLR end -0.1": (lambda o: LinearLR(o, end_factor=-0.1), ["end_factor", "-0.1"]),
    "LinearLR end 2": (lambda o: LinearLR(o, end_factor=2), ["end_factor", "2"]),
    "LinearLR total 0": (lambda o: LinearLR(o, total_iters=0), ["total_iters", "0"]),
    "LinearLR total 2.5": (lambda o: LinearLR(o, total_iters=2.5), ["total_iters", "2.5"]),
    "LinearLR last_epoch": (lambda o: LinearLR(o, last_epoch=-2), ["last_epoch", "-2"]),
    "LinearLR resume fresh": (lambda o: LinearLR(o, last_epoch=3), ["last_epoch=3", "initial_lr"]),
    "LambdaLR not callable": (lambda o: LambdaLR(o, 0.5), ["lr_lambda", "0.5"]),
    "LambdaLR list length": (lambda o: LambdaLR(o, [lambda e: 1.0]), ["lr_lambda", "1 function", "2 parameter"]),
    "LambdaLR list entry": (lambda o: LambdaLR(o, [lambda e: 1.0, "x"]), ["lr_lambda[1]", "'x'"]),
    "LambdaLR returns nan": (lambda o: LambdaLR(o, lambda e: NAN), ["lr_lambda", "nan", "epoch 0"]),
    "LambdaLR returns negative": (lambda o: LambdaLR(o, [lambda e: 1.0, lambda e: -0.5]),
                                  ["lr_lambda[1]", "-0.5", "epoch 0"]),
    "LambdaLR returns str": (lambda o: LambdaLR(o, lambda e: "1"), ["lr_lambda", "'1'"]),
    "OneCycleLR max_lr nan": (lambda o: OneCycleLR(o, NAN, 10), ["max_lr", "nan"]),
    "OneCycleLR max_lr negative": (lambda o: OneCycleLR(o, [0.1, -1.0], 10), ["max_lr[1]", "-1.0"]),
    "OneCycleLR max_lr groups": (lambda o: OneCycleLR(o, [0.1], 10), ["max_lr", "1 learning rate", "2 parameter"]),
    "OneCycleLR max_lr str": (lambda o: OneCycleLR(o, "0.1", 10), ["max_lr", "'0.1'"]),
    "OneCycleLR total_steps 0": (lambda o: OneCycleLR(o, 0.1, 0), ["total_steps", "0"]),
    "OneCycleLR total_steps float": (lambda o: OneCycleLR(o, 0.1, 2.5), ["total_steps", "2.5"]),
    "OneCycleLR no length": (lambda o: OneCycleLR(o, 0.1), ["total_steps", "epochs", "steps_per_epoch"]),
    "OneCycleLR only epochs": (lambda o: OneCycleLR(o, 0.1, epochs=3), ["total_steps", "steps_per_epoch"]),
    "OneCycleLR epochs 0": (lambda o: OneCycleLR(o, 0.1, epochs=0, steps_per_epoch=3), ["epochs", "0"]),
    "OneCycleLR steps str": (lambda o: OneCycleLR(o, 0.1, epochs=2, steps_per_epoch="3"),
                             ["steps_per_epoch", "'3'"]),
    "OneCycleLR pct_start 1.5": (lambda o: OneCycleLR(o, 0.1, 10, pct_start=1.5), ["pct_start", "1.5"]),
    "OneCycleLR pct_start nan": (lambda o: OneCycleLR(o, 0.1, 10, pct_start=NAN), ["pct_start", "nan"]),
    "OneCycleLR zero first phase": (lambda o: OneCycleLR(o, 0.1, 10, pct_start=0.1), ["pct_start=0.1", "first"]),
    "OneCycleLR zero last phase": (lambda o: OneCycleLR(o, 0.1, 10, pct_start=1.0), ["pct_start=1.0", "last"]),
    "OneCycleLR zero last of three": (lambda o: OneCycleLR(o, 0.1, 9, pct_start=10 / 18, three_phase=True),
                                      ["pct_start", "three_phase", "last"]),
    "OneCycleLR strategy": (lambda o: OneCycleLR(o, 0.1, 10, anneal_strategy="cosine"),
                            ["anneal_strategy", "'cosine'", "'cos' or 'linear'"]),
    "OneCycleLR strategy type": (lambda o: OneCycleLR(o, 0.1, 10, anneal_strategy=None), ["anneal_strategy"]),
    "OneCycleLR cycle_momentum": (lambda o: OneCycleLR(o, 0.1, 10, cycle_momentum="yes"),
                                  ["cycle_momentum", "'yes'"]),
    "OneCycleLR three_phase": (lambda o: OneCycleLR(o, 0.1, 10, three_phase=1), ["three_phase", "1"]),
    "OneCycleLR div_factor": (lambda o: OneCycleLR(o, 0.1, 10, div_factor=0), ["div_factor", "0"]),
    "OneCycleLR final_div_factor": (lambda o: OneCycleLR(o, 0.1, 10, final_div_factor=INF),
                                    ["final_div_factor", "inf"]),
    "OneCycleLR base_momentum": (lambda o: OneCycleLR(o, 0.1, 10, base_momentum=-0.1), ["base_momentum", "-0.1"]),
    "OneCycleLR max_momentum list": (lambda o: OneCycleLR(o, 0.1, 10, max_momentum=[0.9, NAN]),
                                     ["max_momentum[1]", "nan"]),
    "OneCycleLR last_epoch": (lambda o: OneCycleLR(o, 0.1, 10, last_epoch=2.5), ["last_epoch", "2.5"]),
    "OneCycleLR resume fresh": (lambda o: OneCycleLR(o, 0.1, 10, last_epoch=4), ["last_epoch=4", "initial_lr"]),
    "Plateau mode": (lambda o: ReduceLROnPlateau(o, mode="minimum"), ["mode", "'minimum'", "'min' or 'max'"]),
    "Plateau factor 1": (lambda o: ReduceLROnPlateau(o, factor=1.0), ["factor", "1.0", "[0, 1)"]),
    "Plateau factor 2": (lambda o: ReduceLROnPlateau(o, factor=2), ["factor", "2"]),
    "Plateau factor -0.1": (lambda o: ReduceLROnPlateau(o, factor=-0.1), ["factor", "-0.1"]),
    "Plateau factor nan": (lambda o: ReduceLROnPlateau(o, factor=NAN), ["factor", "nan"]),
    "Plateau patience": (lambda o: ReduceLROnPlateau(o, patience=-1), ["patience", "-1"]),
    "Plateau patience float": (lambda o: ReduceLROnPlateau(o, patience=2.5), ["patience", "2.5"]),
    "Plateau threshold": (lambda o: ReduceLROnPlateau(o, threshold=NAN), ["threshold", "nan"]),
    "Plateau threshold_mode": (lambda o: ReduceLROnPlateau(o, threshold_mode="relative"),
                               ["threshold_mode", "'relative'"]),
    "Plateau cooldown": (lambda o: ReduceLROnPlateau(o, cooldown=-2), ["cooldown", "-2"]),
    "Plateau min_lr": (lambda o: ReduceLROnPlateau(o, min_lr=-1e-3), ["min_lr", "-0.001"]),
    "Plateau min_lr groups": (lambda o: ReduceLROnPlateau(o, min_lr=[0.0]), ["min_lr", "2 parameter"]),
    "Plateau min_lr list nan": (lambda o: ReduceLROnPlateau(o, min_lr=[0.0, NAN]), ["min_lr[1]", "nan"]),
    "Plateau eps": (lambda o: ReduceLROnPlateau(o, eps=-INF), ["eps", "-inf"]),
    "Plateau optimizer": (lambda o: ReduceLROnPlateau([o]), ["ReduceLROnPlateau", "optimizer"]),
    "Sequential empty": (lambda o: SequentialLR(o, [], []), ["schedulers", "empty"]),
    "Sequential not a list": (lambda o: SequentialLR(o, ExponentialLR(o, 0.9), []), ["schedulers"]),
    "Sequential milestones count": (lambda o: _seq(o, milestones=(2, 4)),
                                    ["milestones", "2 scheduler", "2 milestone"]),
    "Sequential milestones order": (lambda o: _seq(o, [LinearLR(o), ExponentialLR(o, 0.9), StepLR(o, 2)], (5, 2)),
                                    ["milestones", "increasing"]),
    "Sequential milestone 0": (lambda o: _seq(o, milestones=(0,)), ["milestones[0]", "0"]),
    "Sequential other optimizer": (lambda o: _seq(o, [LinearLR(o), ExponentialLR(nnp_opt(), 0.9)]),
                                   ["schedulers[1]", "ExponentialLR", "another optimizer"]),
    "Sequential plateau": (lambda o: _seq(o, [LinearLR(o), ReduceLROnPlateau(o)]),
                           ["schedulers[1]", "ReduceLROnPlateau"]),
    "Sequential not a scheduler": (lambda o: _seq(o, [LinearLR(o), "cos"]), ["schedulers[1]", "'cos'"]),
    "Sequential nested": (lambda o: _seq(o, [LinearLR(o), _seq(o)]), ["schedulers[1]", "SequentialLR"]),
    "Sequential twice": (lambda o: (lambda s: _seq(o, [s, s]))(ExponentialLR(o, 0.9)), ["schedulers[1]", "same"]),
    "Sequential last_epoch": (lambda o: _seq(o, last_epoch=3), ["last_epoch", "3", "load_state_dict"]),
    "StepLR optimizer": (lambda o: StepLR("sgd", 3), ["StepLR", "optimizer", "'sgd'"]),
}


@pytest.mark.parametrize("what", list(BAD_ARGS))
def test_bad_arguments_are_refused_before_the_optimizer_is_touched(what):
    make, words = BAD_ARGS[what]
    opt = nnp_opt(momentum=0.9)
    if what.startswith("Sequential"):
        assert_refused(lambda: make(opt), *words)
        return                                  # the schedulers made for it already set the rates
    before = copy.deepcopy(opt.state_dict())
    assert_refused(lambda: make(opt), *words)
    assert opt.state_dict() == before and all("initial_lr" not in g for g in opt.param_groups)


def test_one_cycle_beta1_must_stay_below_one():
    opt = nnp_opt("Adam")
    assert_refused(lambda: OneCycleLR(opt, 0.1, 10, max_momentum=1.0), "max_momentum", "beta1", "1.0")
    assert [g["betas"] for g in opt.param_groups] == [(0.9, 0.999)] * 2


def test_a_failing_lambda_leaves_the_schedule_as_it_was():
    opt = nnp_opt()
    sched = LambdaLR(opt, [lambda e: 1.0, lambda e: 0.5 if e < 3 else NAN])
    sched.step()
    sched.step()
    before, lrs = sched.state_dict(), lrs_of(opt)
    assert_refused(sched.step, "lr_lambda[1]", "nan", "epoch 3")
    assert sched.state_dict() == before and lrs_of(opt) == lrs


def test_sequential_lr_load_checks_every_child_before_changing_any():
    opt, sched = build(None, "SequentialLR-three")
    _continue(opt, sched, 7)
    good = sched.state_dict()
    bad = copy.deepcopy(good)
    bad["_schedulers"][0]["last_epoch"] = 1            # fine on its own
    bad["_schedulers"][2]["T_max"] = 0                 # refused
    assert_refused(lambda: sched.load_state_dict(bad), "_schedulers[2]", "CosineAnnealingLR", "T_max")
    assert sched.state_dict() == good
