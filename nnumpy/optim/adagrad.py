"""Adagrad: per-element step sizes shrinking with the sum of all past squared gradients."""
from __future__ import annotations

import numpy as np

from .._checks import flag, real
from .optimizer import Optimizer

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad: each entry's steps divided by the root of its summed squared
    gradients; learning-rate decay, L2 weight decay.  PyTorch's Adagrad update (Duchi, Hazan & Singer 2011), per parameter p
    with gradient g at its update number t = 1, 2, ...:

        g <- -g                                          (maximize only)
        g <- g + weight_decay * p                        (L2 penalty)
        clr = lr / (1 + (t - 1) * lr_decay)              (a scalar)
        s <- s + g^2                                     (sum, element by element)
        p <- p - clr * g / (sqrt(s) + eps)

    s starts at ``initial_accumulator_value`` in every element, so each
    element's step size is about clr / sqrt(s): large for elements whose
    gradients have been small, small for those whose gradients have been
    large, and shrinking over time.

    State per parameter: ``step`` (t) and ``sum`` (s).  PyTorch creates both
    in the constructor (step 0, sum full of initial_accumulator_value).
    nnumpy creates them at the parameter's first update, as its other
    optimizers create their state, so a frozen parameter gets none; the
    updates are the same.  Hence:

    * :meth:`state_dict` has no entry for a parameter not yet updated, and
      loading it recreates the same starting sum; :meth:`load_state_dict`
      also accepts PyTorch's form of that state (step 0, sum filled);
    * the sum starts at the parameter's *group's* initial_accumulator_value,
      as it is at the first update.  (PyTorch fills every sum with the
      constructor's value, ignoring a per-group override and later
      changes.)

    ``p.grad`` is never written; frozen parameters are skipped (see
    :meth:`Optimizer.step`).

    Hyper-parameters (checked in the constructor, per group and at every
    step; each a finite number): ``lr >= 0``, ``lr_decay >= 0``,
    ``weight_decay >= 0``, ``initial_accumulator_value >= 0``, ``eps >= 0``;
    ``maximize`` a bool (keyword-only, as in PyTorch).
    """

    _hyper = {
        "lr": lambda n, v, o: real(f"{n} (the learning rate)", v, low=0.0, owner=o),
        "lr_decay": lambda n, v, o: real(n, v, low=0.0, owner=o),
        "weight_decay": lambda n, v, o: real(n, v, low=0.0, owner=o),
        "initial_accumulator_value": lambda n, v, o: real(n, v, low=0.0, owner=o),
        "eps": lambda n, v, o: real(n, v, low=0.0, owner=o),
        "maximize": lambda n, v, o: flag(n, v, owner=o),
    }

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                 *, maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize))

    def _state_spec(self, group):
        return {"step": "count", "sum": "array>=0"}

    def _update_group(self, group, params, ops):
        lr, lr_decay, eps = float(group["lr"]), float(group["lr_decay"]), float(group["eps"])
        wd, maximize = float(group["weight_decay"]), bool(group["maximize"])
        for p in params:
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {"step": 0,
                                         "sum": np.full_like(p.data, float(group["initial_accumulator_value"]))}
            state["step"] += 1
            ops.adagrad_update(p.data, p.grad, state["sum"], state["step"], lr, lr_decay, wd, eps, maximize)
