"""Learning-rate schedules, stepped once per epoch (or per batch: OneCycleLR)
after ``optimizer.step()``.

Every scheduler follows PyTorch's names, defaults and formulas.  The chainable
schedules (StepLR, MultiStepLR, ExponentialLR, LinearLR, CosineAnnealingLR)
compute each new rate from the optimizer's current ``group["lr"]``, exactly
as PyTorch does, so they agree with torch's rates to the last bits and can be
combined with other changes to the rate.

Saving: every ``state_dict()`` holds plain values only (ints, floats, inf
included, strings, bools, None, lists and dicts with string keys), so it can be
stored as JSON.  ``load_state_dict`` checks the keys, types, ranges and the
number of parameter groups and raises ValueError (or
:class:`~nnumpy._checks.ArgumentTypeError`) before anything changes.  A
chainable schedule continues from the optimizer's ``group["lr"]``: resume by
creating the optimizer and the scheduler, then loading the optimizer's state
dict and the scheduler's (in this order: creating a scheduler writes the rate
of epoch 0 into the groups).
"""
from __future__ import annotations

import copy
import math
from bisect import bisect_right
from collections.abc import Mapping

import numpy as np

from .._checks import ArgumentTypeError, describe, integer, positive_int, real
from .optimizer import Optimizer

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "CosineAnnealingLR",
           "SequentialLR", "OneCycleLR", "ReduceLROnPlateau"]


# -- argument checks (one helper per concept) ---------------------------------------------------
def _lr_list(name, value, n, owner):
    return _group_list(name, value, n, owner, lambda k, v: real(k, v, low=0.0, owner=owner), "learning rate")


def _group_list(name, value, n, owner, check, what="value"):
    """A list/tuple of one checked value per parameter group (``check(name[i], v)``)."""
    if not isinstance(value, (list, tuple)):
        raise ArgumentTypeError(f"{owner}: {name} must be a list of {n} {what}(s), got {describe(value)}")
    if len(value) != n:
        raise ValueError(f"{owner}: {name} holds {len(value)} {what}(s), the optimizer has {n} "
                         f"parameter group(s)")
    return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]


def _per_group(name, value, n, owner, check, what="value"):
    """One value for every group, or a list/tuple of one value per group (PyTorch's
    "float or list" arguments), each passed through ``check(name, v)``."""
    if isinstance(value, (list, tuple)):
        return _group_list(name, value, n, owner, check, what)
    return [check(name, value)] * n


def _choice(name, value, options, owner):
    if isinstance(value, str) and value in options:
        return value
    listed = " or ".join(repr(o) for o in options)
    err = ValueError if isinstance(value, str) else ArgumentTypeError
    raise err(f"{owner}: {name} must be {listed}, got {describe(value)}")


def _increasing_ints(name, value, owner, low):
    """A list of strictly increasing integers >= ``low`` (a list, tuple, range or 1-d array)."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (list, tuple, range)):
        raise ArgumentTypeError(f"{owner}: {name} must be a list of increasing integers, got {describe(value)}")
    out = [integer(f"{name}[{i}]", v, low=low, owner=owner) for i, v in enumerate(value)]
    for i in range(1, len(out)):
        if out[i] <= out[i - 1]:
            raise ValueError(f"{owner}: {name} must be strictly increasing, got {list(out)} "
                             f"({name}[{i}]={out[i]} after {out[i - 1]})")
    return out


def _check_optimizer(optimizer, owner):
    if not isinstance(optimizer, Optimizer):
        raise ArgumentTypeError(f"{owner} needs an nnumpy optimizer (e.g. nnumpy.optim.SGD), got "
                                f"{describe(optimizer)}")
    return optimizer


def _check_keys(state_dict, expected, owner, kind):
    """``state_dict`` is a Mapping with exactly the keys ``expected``."""
    if not isinstance(state_dict, Mapping):
        raise ArgumentTypeError(f"{owner}: expected a dict (from scheduler.state_dict()), got "
                                f"{describe(state_dict)}")
    got = set(state_dict)
    if got != set(expected):
        missing = sorted(set(expected) - got)
        extra = sorted(map(str, got - set(expected)))
        raise ValueError(f"{owner}: the state dict does not fit a {kind}"
                         + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; unexpected {', '.join(extra)}" if extra else "")
                         + " (is it another scheduler's?)")


def _nonneg(n, v, o):
    return real(n, v, low=0.0, owner=o)


def _positive(n, v, o):
    return real(n, v, low=0.0, low_open=True, owner=o)


def _count(n, v, o):
    return integer(n, v, low=0, owner=o)


class LRScheduler:
    """Sets ``group["lr"]`` of each parameter group from the epoch counter
    ``last_epoch``.  Creating a scheduler applies epoch 0; each ``step()``
    advances one epoch.  Subclasses give the rates of epoch ``last_epoch``
    in ``get_lr()``; the chainable ones compute them from the current
    rates, as PyTorch does, so they agree with torch's to the last bits.

    last_epoch: -1 (the default) starts a new schedule and records each
    group's rate as ``group["initial_lr"]``; an integer >= 0 resumes a
    schedule, which needs the ``"initial_lr"`` of every group (an optimizer
    that already had a scheduler, or whose state dict was loaded with them):
    without it a ValueError says what to do.  Creating a scheduler with
    ``last_epoch=k`` sets the rates of epoch k + 1: a chainable schedule
    computes them from the rates it finds (those of epoch k, e.g. from the
    optimizer's loaded state dict), CosineAnnealingLR from its closed form.
    (PyTorch 2.13's ExponentialLR, LinearLR and CosineAnnealingLR instead
    keep the rates they find while counting epoch k + 1.)  All arguments are
    checked before the optimizer is touched.

    State (``state_dict()``): ``last_epoch``, ``_step_count`` (calls of
    ``step``, the one at creation included), ``base_lrs`` (each group's
    initial rate), ``_last_lr`` (the rates of the last step) and the
    constructor's arguments.  A step whose rate cannot be computed, or
    comes out as NaN, inf or (except in OneCycleLR) negative, raises a
    ValueError and leaves the counters and the optimizer's rates as they
    were (PyTorch writes such a rate into the optimizer).
    """

    #: constructor arguments kept as attributes: name -> check(name, value, owner)
    _args = {}
    #: per-group lists kept as attributes: name -> check(name, value, owner) of one entry
    _group_args = {}
    #: attributes that are not part of the state dict
    _not_state = ("optimizer",)
    #: the lowest rate a step can write (None: no bound; OneCycleLR's last, extrapolated step)
    _last_lr_low = 0.0

    def __init__(self, optimizer, last_epoch=-1):
        owner = type(self).__name__
        _check_optimizer(optimizer, owner)
        last_epoch = integer("last_epoch", last_epoch, low=-1, owner=owner)
        if last_epoch != -1:
            lacking = [i for i, g in enumerate(optimizer.param_groups) if "initial_lr" not in g]
            if lacking:
                raise ValueError(
                    f"{owner}: last_epoch={last_epoch} resumes a schedule, but the optimizer's "
                    f"{', '.join(f'param_groups[{i}]' for i in lacking)} ha{'s' if len(lacking) == 1 else 've'} "
                    f"no 'initial_lr' (the rate the schedule started from). Pass last_epoch=-1 to start a new "
                    f"schedule, or create the scheduler "
                    f"with last_epoch=-1 and load the saved schedule with scheduler.load_state_dict(...)")
            base = [real(f"param_groups[{i}]['initial_lr']", g["initial_lr"], low=0.0, owner=owner)
                    for i, g in enumerate(optimizer.param_groups)]
        else:
            base = [real(f"param_groups[{i}][{k!r}]", g[k], low=0.0, owner=owner)
                    for i, g in enumerate(optimizer.param_groups)
                    for k in ["initial_lr" if "initial_lr" in g else "lr"]]
        added = [g for g in optimizer.param_groups if "initial_lr" not in g] if last_epoch == -1 else []
        for g, lr in zip(optimizer.param_groups, base):
            g.setdefault("initial_lr", lr)
        self.optimizer = optimizer
        self.base_lrs = list(base)
        self.last_epoch = last_epoch
        try:
            self._initial_step()
        except Exception:                # e.g. a LambdaLR function refusing epoch 0: leave the groups as they were
            for g in added:
                del g["initial_lr"]
            raise

    # -- the schedule ------------------------------------------------------------------
    def get_lr(self):
        """The rates of epoch ``last_epoch`` (one per group), without applying them."""
        raise NotImplementedError

    def _closed_form_lr(self):
        """The rates of epoch ``last_epoch`` from ``base_lrs`` alone (used when
        :class:`SequentialLR` hands over to this schedule); the chainable
        schedules override it, the others compute ``get_lr()``."""
        return self.get_lr()

    def _next(self, closed_form):
        """What :meth:`_commit` applies: the new rates."""
        return self._closed_form_lr() if closed_form else self.get_lr()

    def _commit(self, lrs):
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = float(lr)
        self._last_lr = [float(lr) for lr in lrs]

    def _move(self, before, closed_form=False):
        """Apply the epoch already set in ``last_epoch``; on an error restore the
        counters ``before`` = (last_epoch, _step_count) and re-raise it.

        A new rate that is not a finite number (at least ``_last_lr_low``,
        when that is set) is refused with a ValueError naming the scheduler,
        the epoch and the group, and the groups' values (rate, momentum),
        ``_last_lr`` and the counters are put back as they were: a rate that
        overflowed (``ExponentialLR(opt, 1e200)`` reaches inf at its second
        step) would otherwise reach the optimizer and make the scheduler's own
        state impossible to load."""
        try:
            values = self._next(closed_form)
        except Exception:
            self.last_epoch, self._step_count = before
            raise
        groups = self.optimizer.param_groups
        saved = [{k: v for k, v in g.items() if k != "params"} for g in groups]
        last = self.__dict__.get("_last_lr")
        self._commit(values)              # subclasses commit more than rates (OneCycleLR: momenta), so check after
        low = self._last_lr_low
        bad = [(i, lr) for i, lr in enumerate(self._last_lr)
               if not (math.isfinite(lr) and (low is None or lr >= low))]
        if bad:
            for g, s in zip(groups, saved):
                g.update(s)
            if last is None:
                del self._last_lr
            else:
                self._last_lr = last
            epoch = self.last_epoch
            self.last_epoch, self._step_count = before
            i, lr = bad[0]
            bound = "a finite number" + ("" if low is None else f" >= {low:g}")
            raise ValueError(f"{type(self).__name__}: the learning rate of epoch {epoch} for param_groups[{i}] "
                             f"would be {lr!r}, not {bound}; the rates and the epoch counter are left as they "
                             f"were (at epoch {before[0]})")

    def _initial_step(self):
        self._step_count = 0
        self.step()

    def _restart(self):
        """Jump to epoch 0 by the closed form (PyTorch's ``_update_lr(0)``,
        what :class:`SequentialLR` does at a milestone)."""
        before = (self.last_epoch, self._step_count)
        self.last_epoch = 0
        self._move(before, closed_form=True)

    def step(self):
        """Advance one epoch and write its rates into the optimizer's groups."""
        before = (self.last_epoch, self._step_count)
        self._step_count += 1
        self.last_epoch += 1
        self._move(before)

    def get_last_lr(self):
        """The rates the last step wrote, one per parameter group."""
        return list(self._last_lr)

    # -- state -------------------------------------------------------------------------
    def state_dict(self):
        """A copy of the schedule's state: plain values only (JSON-safe)."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in self._not_state}

    def load_state_dict(self, state_dict):
        """Load a :meth:`state_dict` of a scheduler of the same type.  Its keys
        and values are checked (same keys as this scheduler's, one rate per
        parameter group, the constructor's checks for its arguments) before
        anything changes.  The optimizer's rates are not touched: load the
        optimizer's own state dict for them."""
        self.__dict__.update(self._parse_state(state_dict))

    def _parse_state(self, state_dict, owner=None):
        """The checked attributes that loading ``state_dict`` sets."""
        owner = owner or f"{type(self).__name__}.load_state_dict"
        _check_keys(state_dict, self.state_dict(), owner, type(self).__name__)
        n = len(self.optimizer.param_groups)
        new = {}
        new["last_epoch"] = integer("last_epoch", state_dict["last_epoch"], low=-1, owner=owner)
        new["_step_count"] = integer("_step_count", state_dict["_step_count"], low=0, owner=owner)
        new["base_lrs"] = _lr_list("base_lrs", state_dict["base_lrs"], n, owner)
        new["_last_lr"] = _group_list("_last_lr", state_dict["_last_lr"], n, owner,
                                      lambda k, v: real(k, v, low=self._last_lr_low, owner=owner), "learning rate")
        for k, check in self._args.items():
            new[k] = check(k, state_dict[k], owner)
        for k, check in self._group_args.items():
            new[k] = _group_list(k, state_dict[k], n, owner, lambda name, v, c=check: c(name, v, owner))
        unchecked = set(state_dict) - set(new)
        if unchecked:                    # a subclass attribute without a check in _args/_group_args: a bug here
            raise NotImplementedError(f"{type(self).__name__}: no check for state key(s) {sorted(unchecked)}")
        self._check_state(new, owner)
        return new

    def _check_state(self, new, owner):
        """Constraints between the loaded values (overridden by subclasses)."""


class LambdaLR(LRScheduler):
    """Set each group's rate to its initial rate times a factor given by a function
    of the epoch:

        lr_e = lr_0 * lr_lambda(e)

    lr_lambda: a function ``epoch -> factor`` (an int in, a finite number >= 0
    out), or a list of such functions, one per parameter group.  A factor that
    is not a finite number >= 0 raises a ValueError naming the function and the
    epoch, and the rates stay as they were.

    Saving: functions cannot be saved as plain values, so ``state_dict()``
    holds everything else (the counters, ``base_lrs``, ``_last_lr``) and no
    ``lr_lambdas`` (PyTorch saves the attributes of callable *objects*; here
    neither functions nor callable objects are saved).  ``load_state_dict``
    restores the counters and keeps the functions given to the constructor:
    create the scheduler with the same functions before loading."""

    _not_state = ("optimizer", "lr_lambdas", "_lambda_names")

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        owner = "LambdaLR"
        n = len(_check_optimizer(optimizer, owner).param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"{owner}: lr_lambda holds {len(lr_lambda)} function(s), the optimizer has "
                                 f"{n} parameter group(s)")
            fns, names = list(lr_lambda), [f"lr_lambda[{i}]" for i in range(n)]
        else:
            fns, names = [lr_lambda] * n, ["lr_lambda"] * n
        for fn, name in zip(fns, names):
            if not callable(fn):
                raise ArgumentTypeError(f"{owner}: {name} must be a function of the epoch, got {describe(fn)}")
        self.lr_lambdas = fns
        self._lambda_names = names
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        e, out = self.last_epoch, []
        for base, fn, name in zip(self.base_lrs, self.lr_lambdas, self._lambda_names):
            factor = fn(e)
            try:
                real(f"{name}({e})", factor, low=0.0)
            except ValueError as err:          # ArgumentTypeError included
                raise type(err)(f"LambdaLR: {name} returned {describe(factor)} at epoch {e}; it must return "
                                f"a finite number >= 0 (the factor of the initial rate)") from None
            out.append(base * factor)
        return out


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs:
    ``lr_e = lr_0 * gamma ** (e // step_size)``.

    step_size: a positive integer; gamma: a finite number > 0 (a negative or
    zero factor would make the rate negative or stop training)."""

    _args = {"step_size": lambda n, v, o: positive_int(n, v, owner=o), "gamma": _positive}

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = self._args["step_size"]("step_size", step_size, "StepLR")
        self.gamma = self._args["gamma"]("gamma", gamma, "StepLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]

    def _closed_form_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each milestone epoch:
    ``lr_e = lr_0 * gamma ** (number of milestones <= e)``.

    milestones: strictly increasing integers >= 0 (a list, tuple or range;
    PyTorch documents "must be increasing" without checking it, and counts a
    repeated milestone twice: here a repeat is refused); gamma: a finite
    number > 0."""

    _args = {"milestones": lambda n, v, o: _increasing_ints(n, v, o, low=0), "gamma": _positive}

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = self._args["milestones"]("milestones", milestones, "MultiStepLR")
        self.gamma = self._args["gamma"]("gamma", gamma, "MultiStepLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        if self.last_epoch not in self.milestones:
            return lrs
        return [lr * self.gamma for lr in lrs]

    def _closed_form_lr(self):
        k = bisect_right(self.milestones, self.last_epoch)
        return [base * self.gamma ** k for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every epoch: ``lr_e = lr_0 * gamma ** e``.

    gamma: a finite number > 0 (above 1 the rate grows)."""

    _args = {"gamma": _positive}

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = self._args["gamma"]("gamma", gamma, "ExponentialLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        if self.last_epoch == 0:
            return lrs
        return [lr * self.gamma for lr in lrs]

    def _closed_form_lr(self):
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the rate by a factor that moves linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` epochs, then stays (a warm-up when
    start_factor < end_factor):

        lr_e = lr_0 * (s + (t - s) * min(e, T) / T)        s = start_factor, t = end_factor, T = total_iters

    computed recursively as PyTorch does: lr_0' = lr_0 * s at epoch 0, then for
    1 <= e <= T

        lr_e = lr_{e-1} * (1 + (t - s) / (T * s + (e - 1) * (t - s)))

    start_factor: in (0, 1]; end_factor: in [0, 1]; total_iters: a positive
    integer."""

    _args = {"start_factor": lambda n, v, o: real(n, v, low=0.0, high=1.0, low_open=True, owner=o),
             "end_factor": lambda n, v, o: real(n, v, low=0.0, high=1.0, owner=o),
             "total_iters": lambda n, v, o: positive_int(n, v, owner=o)}

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        self.start_factor = self._args["start_factor"]("start_factor", start_factor, "LinearLR")
        self.end_factor = self._args["end_factor"]("end_factor", end_factor, "LinearLR")
        self.total_iters = self._args["total_iters"]("total_iters", total_iters, "LinearLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        e, s, t, T = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        if e == 0:
            return [lr * s for lr in lrs]
        if e > T:
            return lrs
        return [lr * (1.0 + (t - s) / (T * s + (e - 1) * (t - s))) for lr in lrs]

    def _closed_form_lr(self):
        e, s, t, T = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
        return [base * (s + (t - s) * min(T, e) / T) for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the initial rate to ``eta_min`` over ``T_max`` epochs:

        lr_e = eta_min + (lr_0 - eta_min) * (1 + cos(pi * e / T_max)) / 2

    computed recursively from lr_{e-1}, as PyTorch does (the closed form and
    the recursion agree to rounding).  T_max: a positive integer; eta_min: a
    finite number >= 0."""

    _args = {"T_max": lambda n, v, o: positive_int(n, v, owner=o), "eta_min": _nonneg}

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = self._args["T_max"]("T_max", T_max, "CosineAnnealingLR")
        self.eta_min = self._args["eta_min"]("eta_min", eta_min, "CosineAnnealingLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        e, T, lo = self.last_epoch, self.T_max, self.eta_min
        groups = self.optimizer.param_groups
        if e == 0:
            return [g["lr"] for g in groups]
        if self._step_count == 1 and e > 0:
            return self._closed_form_lr()
        if (e - 1 - T) % (2 * T) == 0:
            return [g["lr"] + (base - lo) * (1 - math.cos(math.pi / T)) / 2
                    for base, g in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (g["lr"] - lo) + lo
                for g in groups]

    def _closed_form_lr(self):
        e, T, lo = self.last_epoch, self.T_max, self.eta_min
        return [lo + (base - lo) * (1 + math.cos(math.pi * e / T)) / 2 for base in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after another, handing over at the ``milestones``:
    ``schedulers[i]`` drives epochs ``milestones[i-1] <= e < milestones[i]``.

    At a milestone the next scheduler restarts at its own epoch 0 from its
    closed form (from the groups' ``initial_lr``), as PyTorch does; e.g. a
    LinearLR warm-up over 5 epochs, then CosineAnnealingLR::

        warm = LinearLR(opt, start_factor=0.1, total_iters=5)
        cos = CosineAnnealingLR(opt, T_max=45)
        sched = SequentialLR(opt, [warm, cos], milestones=[5])

    schedulers: a non-empty list of nnumpy schedulers of this same optimizer
    (not ReduceLROnPlateau, whose step needs a metric, nor SequentialLR; each
    only once), created just before with last_epoch=-1.  milestones:
    ``len(schedulers) - 1`` strictly increasing positive integers.
    last_epoch: only -1 (PyTorch's other values restart the schedulers
    inconsistently): resume with :meth:`load_state_dict`.  Creating it resets
    each group's rate to its ``initial_lr`` and applies epoch 0 of
    ``schedulers[0]``.

    State: ``last_epoch``, ``_milestones``, ``_last_lr`` and ``_schedulers``,
    the list of the schedulers' own state dicts."""

    _not_state = ("optimizer", "_schedulers")

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        owner = "SequentialLR"
        _check_optimizer(optimizer, owner)
        if not isinstance(schedulers, (list, tuple)):
            raise ArgumentTypeError(f"{owner}: schedulers must be a list of schedulers, got "
                                    f"{describe(schedulers)}")
        if not schedulers:
            raise ValueError(f"{owner}: schedulers is empty; it needs at least one scheduler")
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau):
                raise ValueError(f"{owner}: schedulers[{i}] is a ReduceLROnPlateau, whose step needs a metric; "
                                 f"SequentialLR cannot step it")
            if isinstance(s, SequentialLR) or not isinstance(s, LRScheduler):
                raise ArgumentTypeError(f"{owner}: schedulers[{i}] must be an nnumpy learning-rate scheduler "
                                        f"(not a SequentialLR), got {describe(s)}")
            if s.optimizer is not optimizer:
                raise ValueError(f"{owner}: schedulers[{i}] ({type(s).__name__}) drives another optimizer than "
                                 f"the one given to SequentialLR; all schedulers must belong to the same optimizer")
            if any(s is t for t in schedulers[:i]):
                raise ValueError(f"{owner}: schedulers[{i}] is the same object as an earlier entry")
        milestones = _increasing_ints("milestones", milestones, owner, low=1)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"{owner}: milestones must hold one fewer entry than schedulers (the epochs where "
                             f"each next scheduler takes over): got {len(schedulers)} scheduler(s) and "
                             f"{len(milestones)} milestone(s)")
        last_epoch = integer("last_epoch", last_epoch, low=-1, owner=owner)
        if last_epoch != -1:
            raise ValueError(f"{owner}: last_epoch must be -1 (got {last_epoch}); to resume, create it with "
                             f"last_epoch=-1 and load the saved schedule with load_state_dict(...)")
        # -- everything checked: reset the rates and start schedulers[0] ----------------------
        self.optimizer = optimizer
        self._schedulers = list(schedulers)
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"]
        for s in self._schedulers:        # undo the step each one made when it was created
            s.last_epoch -= 1
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self):
        """Advance one epoch: the scheduler in charge steps, or, at a milestone,
        the next one restarts at its epoch 0."""
        self.last_epoch += 1
        i = bisect_right(self._milestones, self.last_epoch)
        s = self._schedulers[i]
        try:
            if i > 0 and self._milestones[i - 1] == self.last_epoch:
                s._restart()
            else:
                s.step()
        except Exception:
            self.last_epoch -= 1
            raise
        self._last_lr = s.get_last_lr()

    def state_dict(self):
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def _parse_state(self, state_dict, owner=None):
        owner = owner or "SequentialLR.load_state_dict"
        _check_keys(state_dict, self.state_dict(), owner, "SequentialLR")
        n = len(self.optimizer.param_groups)
        subs = state_dict["_schedulers"]
        if not isinstance(subs, (list, tuple)):
            raise ArgumentTypeError(f"{owner}: _schedulers must be a list of state dicts, got {describe(subs)}")
        if len(subs) != len(self._schedulers):
            raise ValueError(f"{owner}: _schedulers holds {len(subs)} state dict(s), this SequentialLR has "
                             f"{len(self._schedulers)} scheduler(s)")
        milestones = _increasing_ints("_milestones", state_dict["_milestones"], owner, low=1)
        if len(milestones) != len(self._schedulers) - 1:
            raise ValueError(f"{owner}: _milestones holds {len(milestones)} milestone(s), this SequentialLR "
                             f"needs {len(self._schedulers) - 1}")
        children = [s._parse_state(d, f"{owner}: _schedulers[{i}] ({type(s).__name__})")
                    for i, (s, d) in enumerate(zip(self._schedulers, subs))]
        return {"last_epoch": integer("last_epoch", state_dict["last_epoch"], low=0, owner=owner),
                "_milestones": milestones,
                "_last_lr": _lr_list("_last_lr", state_dict["_last_lr"], n, owner),
                "_children": children}

    def load_state_dict(self, state_dict):
        """Load a :meth:`state_dict`: every scheduler's state is checked before
        any of them (or this one) changes."""
        new = self._parse_state(state_dict)
        for s, child in zip(self._schedulers, new.pop("_children")):
            s.__dict__.update(child)
        self.__dict__.update(new)


# The two schedules of their own rooms, under PyTorch's import path too (imported last: they build on the above).
from .one_cycle import OneCycleLR  # noqa: E402
from .plateau import ReduceLROnPlateau  # noqa: E402
