"""Cut the learning rate when a metric stops improving (:class:`ReduceLROnPlateau`).

Also importable as ``nnumpy.optim.lr_scheduler.ReduceLROnPlateau`` (PyTorch's
path); the argument checks are in :mod:`nnumpy.optim.lr_scheduler`.
"""
from __future__ import annotations

import copy
import math
import numbers

import numpy as np

from .._checks import ArgumentTypeError, describe, real
from .lr_scheduler import _check_keys, _check_optimizer, _choice, _count, _group_list, _lr_list, _nonneg

__all__ = ["ReduceLROnPlateau"]


def _metric(value):
    """``metrics`` of ReduceLROnPlateau.step as a float: a real number (Python,
    NumPy, a 0-d or 1-element array or tensor), +-inf allowed, NaN refused."""
    if hasattr(value, "detach"):                    # a torch tensor: no torch import needed
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(())[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"ReduceLROnPlateau.step: metrics must be a number (e.g. the validation "
                                f"loss), got {describe(value)}")
    x = float(value)
    if math.isnan(x):
        raise ValueError("ReduceLROnPlateau.step: metrics is nan (did the training diverge?); the schedule "
                         "was left as it was")
    return x


class ReduceLROnPlateau:
    """Multiply the rate by ``factor`` when a metric has stopped improving for
    more than ``patience`` epochs.  Call ``step(metrics)`` once per epoch with
    the monitored value (e.g. the validation loss).

    Each step: the metric is *better* when

        mode="min", threshold_mode="rel":  metric < best * (1 - threshold)
        mode="min", threshold_mode="abs":  metric < best - threshold
        mode="max", threshold_mode="rel":  metric > best * (1 + threshold)
        mode="max", threshold_mode="abs":  metric > best + threshold

    (``best`` starts at +inf for "min", -inf for "max"); a better metric
    becomes ``best`` and resets ``num_bad_epochs`` to 0, any other adds one.
    During a cooldown (``cooldown_counter > 0``) the counter counts down and
    bad epochs are not counted.  When ``num_bad_epochs > patience`` each
    group's rate becomes ``max(lr * factor, min_lr)`` (unless that changes it
    by ``eps`` or less), the cooldown starts (``cooldown_counter = cooldown``)
    and ``num_bad_epochs`` returns to 0.

    Arguments (PyTorch's names and defaults): mode: "min" or "max"; factor:
    in [0, 1); patience, cooldown: integers >= 0; threshold: a number >= 0;
    threshold_mode: "rel" or "abs"; min_lr: a number >= 0 or one per
    parameter group; eps: a number >= 0.  ``step(metrics)`` takes a number
    (Python, NumPy, or a one-element array/tensor); NaN and non-numbers are
    refused before anything changes (+-inf are numbers and count as usual).

    Works with every nnumpy optimizer (only ``group["lr"]`` is read and
    written).  Its step needs a metric, so SequentialLR refuses it (as in
    PyTorch); unlike PyTorch 2.13 it is not an :class:`LRScheduler`
    subclass, so code that steps an LRScheduler without arguments tells the
    two apart.  State: ``factor``, ``min_lrs``,
    ``default_min_lr`` (min_lr when given as one number, else None),
    ``patience``, ``cooldown``, ``eps``, ``mode``, ``threshold``,
    ``threshold_mode``, ``mode_worse``, ``best``, ``num_bad_epochs``,
    ``cooldown_counter``, ``last_epoch``, ``_last_lr``.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0, eps=1e-8):
        owner = "ReduceLROnPlateau"
        n = len(_check_optimizer(optimizer, owner).param_groups)
        checked = self._check_args(owner, mode=mode, factor=factor, patience=patience, threshold=threshold,
                                   threshold_mode=threshold_mode, cooldown=cooldown, eps=eps)
        if isinstance(min_lr, (list, tuple)):
            default_min_lr = None
            min_lrs = _group_list("min_lr", min_lr, n, owner, lambda k, v: _nonneg(k, v, owner), "rate")
        else:
            default_min_lr = _nonneg("min_lr", min_lr, owner)
            min_lrs = [default_min_lr] * n
        self.optimizer = optimizer
        self.__dict__.update(checked)
        self.default_min_lr = default_min_lr
        self.min_lrs = min_lrs
        self.last_epoch = 0
        self._last_lr = [float(g["lr"]) for g in optimizer.param_groups]
        self.mode_worse = math.inf if self.mode == "min" else -math.inf
        self._reset()

    _ARGS = {"mode": lambda n, v, o: _choice(n, v, ("min", "max"), o),
             "factor": lambda n, v, o: real(n, v, low=0.0, high=1.0, high_open=True, owner=o),
             "patience": _count, "threshold": _nonneg,
             "threshold_mode": lambda n, v, o: _choice(n, v, ("rel", "abs"), o),
             "cooldown": _count, "eps": _nonneg}

    @classmethod
    def _check_args(cls, owner, **values):
        return {k: cls._ARGS[k](k, v, owner) for k, v in values.items()}

    def _reset(self):
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def _is_better(self, a, best):
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics):
        """Count one epoch with the monitored value ``metrics``; reduce the
        rates after more than ``patience`` epochs without improvement."""
        current = _metric(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau: the optimizer has {len(groups)} parameter group(s), "
                                   f"{len(self.min_lrs)} when the scheduler was created with one min_lr per "
                                   f"group (a group was added?); set scheduler.min_lrs to one rate per group")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for g, lo in zip(groups, self.min_lrs):
            old = float(g["lr"])
            new = max(old * self.factor, lo)
            if old - new > self.eps:
                g["lr"] = new

    def get_last_lr(self):
        """The rates after the last step (the optimizer's rates at creation before any)."""
        return list(self._last_lr)

    def state_dict(self):
        """A copy of the state: plain values only (JSON-safe; ``best`` may be +-inf)."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        """Load a :meth:`state_dict`; keys, types, ranges and the group count
        are checked before anything changes."""
        owner = "ReduceLROnPlateau.load_state_dict"
        _check_keys(state_dict, self.state_dict(), owner, "ReduceLROnPlateau")
        n = len(self.optimizer.param_groups)
        sd = state_dict
        new = self._check_args(owner, **{k: sd[k] for k in self._ARGS})
        new["min_lrs"] = _group_list("min_lrs", sd["min_lrs"], n, owner, lambda k, v: _nonneg(k, v, owner), "rate")
        new["default_min_lr"] = None if sd["default_min_lr"] is None else _nonneg("default_min_lr",
                                                                                  sd["default_min_lr"], owner)
        new["_last_lr"] = _lr_list("_last_lr", sd["_last_lr"], n, owner)
        for k in ("last_epoch", "num_bad_epochs", "cooldown_counter"):
            new[k] = _count(k, sd[k], owner)
        worse = math.inf if new["mode"] == "min" else -math.inf
        if sd["mode_worse"] != worse or isinstance(sd["mode_worse"], bool):
            raise ValueError(f"{owner}: mode_worse must be {worse} for mode={new['mode']!r}, got "
                             f"{describe(sd['mode_worse'])}")
        new["mode_worse"] = worse
        best = sd["best"]
        if isinstance(best, (bool, np.bool_)) or not isinstance(best, numbers.Real):
            raise ArgumentTypeError(f"{owner}: best must be a number, got {describe(best)}")
        if math.isnan(best):
            raise ValueError(f"{owner}: best must be a number, got nan")
        new["best"] = float(best)
        self.__dict__.update(new)
