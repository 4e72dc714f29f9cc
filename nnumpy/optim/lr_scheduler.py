"""Learning-rate schedules, stepped once per epoch after ``optimizer.step()``."""
from __future__ import annotations

import math
from collections.abc import Mapping

from .._checks import ArgumentTypeError, describe, integer, positive_int, real
from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR"]


def _lr_list(name, value, n, owner):
    if not isinstance(value, (list, tuple)):
        raise ArgumentTypeError(f"{owner}: {name} must be a list of {n} learning rate(s), got {describe(value)}")
    if len(value) != n:
        raise ValueError(f"{owner}: {name} holds {len(value)} learning rate(s), the optimizer has {n} "
                         f"parameter group(s)")
    return [real(f"{name}[{i}]", v, low=0.0, owner=owner) for i, v in enumerate(value)]


class LRScheduler:
    """Sets ``group["lr"]`` of each parameter group from the epoch counter
    ``last_epoch``.  Creating a scheduler applies epoch 0; each ``step()``
    advances one epoch.  Schedules are chainable like PyTorch's: each new
    rate is computed from the current one, so they agree with torch's
    rates to the last bits.

    last_epoch: -1 (the default) starts a new schedule and records each
    group's rate as ``group["initial_lr"]``; an integer >= 0 resumes a
    schedule, which needs the ``"initial_lr"`` of every group (an optimizer
    that already had a scheduler, or whose state dict was loaded with them):
    without it a ValueError says what to do.  All arguments are checked
    before the optimizer is touched.
    """

    #: constructor arguments kept as attributes: name -> check(name, value, owner)
    _args = {}

    def __init__(self, optimizer, last_epoch=-1):
        owner = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise ArgumentTypeError(f"{owner} needs an nnumpy optimizer (e.g. nnumpy.optim.SGD), got "
                                    f"{describe(optimizer)}")
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
            for g, lr in zip(optimizer.param_groups, base):
                g.setdefault("initial_lr", lr)
        self.optimizer = optimizer
        self.base_lrs = list(base)
        self.last_epoch = last_epoch
        self._step_count = 0
        self.step()

    def get_lr(self):
        raise NotImplementedError

    def step(self):
        self._step_count += 1
        self.last_epoch += 1
        lrs = self.get_lr()
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = float(lr)
        self._last_lr = [float(lr) for lr in lrs]

    def get_last_lr(self):
        return list(self._last_lr)

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        """Load a :meth:`state_dict` of a scheduler of the same type.  Its keys
        and values are checked (same keys as this scheduler's, one rate per
        parameter group, the constructor's checks for its arguments) before
        anything changes."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise ArgumentTypeError(f"{owner}: expected a dict (from scheduler.state_dict()), got "
                                    f"{describe(state_dict)}")
        expected, got = set(self.state_dict()), set(state_dict)
        if got != expected:
            missing = sorted(expected - got)
            extra = sorted(map(str, got - expected))
            raise ValueError(f"{owner}: the state dict does not fit a {type(self).__name__}"
                             + (f"; missing {', '.join(missing)}" if missing else "")
                             + (f"; unexpected {', '.join(extra)}" if extra else "")
                             + " (is it another scheduler's?)")
        n = len(self.optimizer.param_groups)
        new = dict(state_dict)
        new["last_epoch"] = integer("last_epoch", state_dict["last_epoch"], low=-1, owner=owner)
        new["_step_count"] = integer("_step_count", state_dict["_step_count"], low=0, owner=owner)
        new["base_lrs"] = _lr_list("base_lrs", state_dict["base_lrs"], n, owner)
        new["_last_lr"] = _lr_list("_last_lr", state_dict["_last_lr"], n, owner)
        for k, check in self._args.items():
            new[k] = check(k, state_dict[k], owner)
        self.__dict__.update(new)


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs:
    ``lr_e = lr_0 * gamma ** (e // step_size)``.

    step_size: a positive integer; gamma: a finite number > 0 (a negative or
    zero factor would make the rate negative or stop training)."""

    _args = {"step_size": lambda n, v, o: positive_int(n, v, owner=o),
             "gamma": lambda n, v, o: real(n, v, low=0.0, low_open=True, owner=o)}

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = self._args["step_size"]("step_size", step_size, "StepLR")
        self.gamma = self._args["gamma"]("gamma", gamma, "StepLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the initial rate to ``eta_min`` over ``T_max`` epochs:

        lr_e = eta_min + (lr_0 - eta_min) * (1 + cos(pi * e / T_max)) / 2

    computed recursively from lr_{e-1}, as PyTorch does (the closed form and
    the recursion agree to rounding).  T_max: a positive integer; eta_min: a
    finite number >= 0."""

    _args = {"T_max": lambda n, v, o: positive_int(n, v, owner=o),
             "eta_min": lambda n, v, o: real(n, v, low=0.0, owner=o)}

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
            return [lo + (base - lo) * (1 + math.cos(e * math.pi / T)) / 2 for base in self.base_lrs]
        if (e - 1 - T) % (2 * T) == 0:
            return [g["lr"] + (base - lo) * (1 - math.cos(math.pi / T)) / 2
                    for base, g in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (g["lr"] - lo) + lo
                for g in groups]
