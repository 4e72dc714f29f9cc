"""The 1cycle learning-rate policy (:class:`OneCycleLR`), stepped after every batch.

Also importable as ``nnumpy.optim.lr_scheduler.OneCycleLR`` (PyTorch's path); the
base class and the argument checks are in :mod:`nnumpy.optim.lr_scheduler`.
"""
from __future__ import annotations

import copy
import math

from .._checks import describe, flag, integer, positive_int, real
from .lr_scheduler import LRScheduler, _positive, _check_optimizer, _choice, _nonneg, _per_group

__all__ = ["OneCycleLR"]


def _anneal(strategy, start, end, pct):
    """From ``start`` (pct = 0) to ``end`` (pct = 1): along half a cosine, or a line."""
    if strategy == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, "Super-Convergence"), stepped after
    every *batch*.  Over ``total_steps`` steps the rate rises from
    ``initial_lr = max_lr / div_factor`` to ``max_lr`` during the first
    ``pct_start`` of the steps, then falls to ``min_lr = initial_lr /
    final_div_factor``; with ``cycle_momentum`` the momentum moves the
    opposite way, between ``max_momentum`` and ``base_momentum``.

    Phases (step s; each phase runs from the previous phase's end step, 0 for
    the first, to its own end step; pct = (s - start) / (end - start)):

        two phases (default):  end pct_start*total_steps - 1:   lr initial_lr -> max_lr, momentum max -> base
                               end total_steps - 1:             lr max_lr -> min_lr,     momentum base -> max
        three_phase=True:      end pct_start*total_steps - 1:   lr initial_lr -> max_lr, momentum max -> base
                               end 2*pct_start*total_steps - 2: lr max_lr -> initial_lr, momentum base -> max
                               end total_steps - 1:             lr initial_lr -> min_lr, momentum max -> max

    and within a phase ``value = end + (start - end) / 2 * (1 + cos(pi * pct))``
    (anneal_strategy="cos") or ``value = start + (end - start) * pct``
    ("linear").  The schedule is not chainable: each rate is computed from the
    values above, not from the current rate.

    Creating it applies step 0; ``step()`` may be called ``total_steps``
    times, so a loop that steps the scheduler after each of its
    ``total_steps`` optimizer steps works; one more call raises PyTorch's
    ValueError "Tried to step ... times" and leaves the scheduler as it was.
    The last call extrapolates one step past the end, as PyTorch does: with
    anneal_strategy="linear" its rate lies below min_lr and can be negative
    (a rate such a loop never uses; ``optimizer.step()`` would refuse it).

    Arguments (PyTorch's names and defaults): max_lr: a number >= 0 or one
    per parameter group; total_steps, or else epochs and steps_per_epoch
    (total_steps = epochs * steps_per_epoch): positive integers; pct_start:
    in [0, 1]; anneal_strategy: "cos" or "linear"; cycle_momentum: a bool;
    base_momentum, max_momentum: numbers >= 0 (below 1 for Adam's beta1) or
    one per group; div_factor, final_div_factor: numbers > 0; three_phase: a
    bool.  A pct_start that makes a phase zero steps long where a step falls
    (PyTorch's ZeroDivisionError) is refused at creation.

    Momentum: with cycle_momentum=True the optimizer must have a
    ``momentum`` hyper-parameter (SGD, RMSprop), whose value is set, or
    ``betas`` (Adam, AdamW), whose first entry is set; otherwise a ValueError
    (as in PyTorch).  Creating it with last_epoch=-1 sets each group's
    ``initial_lr`` to max_lr / div_factor (and the momentum to max_momentum).

    Unlike PyTorch, which adds ``max_lr``, ``min_lr``, ``max_momentum`` and
    ``base_momentum`` to every parameter group, the per-group values are kept
    by the scheduler (``max_lrs``, ``min_lrs``, ``max_momentums``,
    ``base_momentums``, and ``base_lrs`` = the initial rates) and saved in its
    state dict; ``get_lr()`` has no side effect (PyTorch's sets the momentum).
    """

    _args = {"total_steps": lambda n, v, o: positive_int(n, v, owner=o),
             "pct_start": lambda n, v, o: real(n, v, low=0.0, high=1.0, owner=o),
             "anneal_strategy": lambda n, v, o: _choice(n, v, ("cos", "linear"), o),
             "cycle_momentum": lambda n, v, o: flag(n, v, owner=o),
             "use_beta1": lambda n, v, o: flag(n, v, owner=o),
             "div_factor": _positive,
             "final_div_factor": _positive,
             "three_phase": lambda n, v, o: flag(n, v, owner=o)}
    _last_lr_low = None
    _group_args = {"max_lrs": _nonneg, "min_lrs": _nonneg, "base_momentums": _nonneg, "max_momentums": _nonneg}

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        owner = "OneCycleLR"
        groups = _check_optimizer(optimizer, owner).param_groups
        n, a = len(groups), self._args
        if epochs is not None:
            epochs = positive_int("epochs", epochs, owner=owner)
        if steps_per_epoch is not None:
            steps_per_epoch = positive_int("steps_per_epoch", steps_per_epoch, owner=owner)
        if total_steps is not None:
            total_steps = a["total_steps"]("total_steps", total_steps, owner)
        elif epochs is not None and steps_per_epoch is not None:
            total_steps = epochs * steps_per_epoch
        else:
            raise ValueError(f"{owner}: give total_steps, or both epochs and steps_per_epoch (got "
                             f"epochs={describe(epochs)}, steps_per_epoch={describe(steps_per_epoch)})")
        self.total_steps = total_steps
        self.pct_start = a["pct_start"]("pct_start", pct_start, owner)
        self.anneal_strategy = a["anneal_strategy"]("anneal_strategy", anneal_strategy, owner)
        self.cycle_momentum = a["cycle_momentum"]("cycle_momentum", cycle_momentum, owner)
        self.div_factor = a["div_factor"]("div_factor", div_factor, owner)
        self.final_div_factor = a["final_div_factor"]("final_div_factor", final_div_factor, owner)
        self.three_phase = a["three_phase"]("three_phase", three_phase, owner)
        self.use_beta1 = self.cycle_momentum and "betas" in optimizer.defaults
        self._check_phases(owner)
        if self.cycle_momentum and "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
            raise ValueError(f"{owner}: cycle_momentum=True, but {type(optimizer).__name__} has neither "
                             f"'momentum' nor 'betas' (the optimizer must support momentum or beta1 with "
                             f"cycle_momentum); pass cycle_momentum=False")
        mom = self._momentum_check(owner)
        self.max_lrs = _per_group("max_lr", max_lr, n, owner, lambda k, v: _nonneg(k, v, owner), "learning rate")
        self.base_momentums = _per_group("base_momentum", base_momentum, n, owner, mom)
        self.max_momentums = _per_group("max_momentum", max_momentum, n, owner, mom)
        last_epoch = integer("last_epoch", last_epoch, low=-1, owner=owner)
        if last_epoch != -1 and any("initial_lr" not in g for g in groups):
            super().__init__(optimizer, last_epoch)      # raises its "resumes a schedule" error
        # -- everything checked: set the groups' starting values (undone if the first step refuses them,
        # e.g. a rate that is not finite) ----------------------------------------------------------
        saved = [dict(g) for g in groups]
        try:
            if last_epoch == -1:
                for g, top in zip(groups, self.max_lrs):
                    g["initial_lr"] = top / self.div_factor
                if self.cycle_momentum:
                    for g, m in zip(groups, self.max_momentums):
                        self._set_momentum(g, m)
            self.min_lrs = [float(g["initial_lr"]) / self.final_div_factor for g in groups]
            super().__init__(optimizer, last_epoch)
        except BaseException:
            for g, before in zip(groups, saved):
                g.clear()
                g.update(before)
            raise

    def _momentum_check(self, owner):
        if self.use_beta1:
            return lambda k, v: real(f"{k} (beta1)", v, low=0.0, high=1.0, high_open=True, owner=owner)
        return lambda k, v: _nonneg(k, v, owner)

    def _set_momentum(self, group, m):
        if self.use_beta1:
            group["betas"] = (m, *group["betas"][1:])
        else:
            group["momentum"] = m

    def _phases(self):
        """[(end_step, lr from, lr to, momentum from, momentum to)], the names
        indexing :meth:`_group_values`."""
        T, p = self.total_steps, self.pct_start
        if self.three_phase:
            return [(p * T - 1, "initial", "max", "max_m", "base_m"),
                    (2 * p * T - 2, "max", "initial", "base_m", "max_m"),
                    (T - 1, "initial", "min", "max_m", "max_m")]
        return [(p * T - 1, "initial", "max", "max_m", "base_m"),
                (T - 1, "max", "min", "base_m", "max_m")]

    def _check_phases(self, owner):
        """Refuse a phase of zero length that a step falls into (a division by zero)."""
        ends = [ph[0] for ph in self._phases()]
        if ends[0] == 0.0 or ends[-1] == ends[-2]:
            which = "first" if ends[0] == 0.0 else "last"
            raise ValueError(f"{owner}: pct_start={self.pct_start!r} with total_steps={self.total_steps}"
                             f"{' and three_phase=True' if self.three_phase else ''} makes the {which} phase "
                             f"zero steps long (its end step equals its start step); choose another pct_start")

    def _group_values(self, i):
        return {"initial": self.base_lrs[i], "max": self.max_lrs[i], "min": self.min_lrs[i],
                "max_m": self.max_momentums[i], "base_m": self.base_momentums[i]}

    def _next(self, closed_form=False):
        """(rates, momenta) of step ``last_epoch``; momenta None without cycle_momentum."""
        s = self.last_epoch
        if s > self.total_steps:
            raise ValueError(f"Tried to step {s} times. The specified number of total steps is "
                             f"{self.total_steps}")
        phases, start = self._phases(), 0.0
        for k, phase in enumerate(phases):
            if s <= phase[0] or k == len(phases) - 1:
                break
            start = phase[0]
        end, lr_from, lr_to, m_from, m_to = phase
        pct = (s - start) / (end - start)
        lrs, moms = [], []
        for i in range(len(self.optimizer.param_groups)):
            v = self._group_values(i)
            lrs.append(_anneal(self.anneal_strategy, v[lr_from], v[lr_to], pct))
            moms.append(_anneal(self.anneal_strategy, v[m_from], v[m_to], pct))
        return lrs, (moms if self.cycle_momentum else None)

    def get_lr(self):
        return self._next()[0]

    def _commit(self, values):
        lrs, moms = values
        if moms is not None:
            for g, m in zip(self.optimizer.param_groups, moms):
                self._set_momentum(g, float(m))
        super()._commit(lrs)

    def _check_state(self, new, owner):
        o = self.optimizer
        if new["last_epoch"] > new["total_steps"]:
            raise ValueError(f"{owner}: last_epoch={new['last_epoch']} is past total_steps={new['total_steps']}")
        if new["cycle_momentum"] and "momentum" not in o.defaults and "betas" not in o.defaults:
            raise ValueError(f"{owner}: the state cycles the momentum, but {type(o).__name__} has neither "
                             f"'momentum' nor 'betas'")
        beta1 = new["cycle_momentum"] and "betas" in o.defaults
        if new["use_beta1"] != beta1:
            raise ValueError(f"{owner}: use_beta1={new['use_beta1']} does not fit {type(o).__name__} with "
                             f"cycle_momentum={new['cycle_momentum']} (expected {beta1})")
        if beta1:
            for key in ("base_momentums", "max_momentums"):
                for i, m in enumerate(new[key]):
                    real(f"{key}[{i}] (beta1)", m, high=1.0, high_open=True, owner=owner)
        probe = copy.copy(self)
        probe.__dict__.update(new)
        probe._check_phases(owner)
