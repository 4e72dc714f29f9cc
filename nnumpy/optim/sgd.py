"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""
from __future__ import annotations

from .._checks import flag, real
from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov momentum
    and L2 weight decay.  PyTorch's SGD update, per parameter p with gradient g:

        g <- -g                                          (maximize only)
        g <- g + weight_decay * p                        (L2 penalty)
        b <- g                       on the first step   (momentum buffer)
        b <- momentum * b + (1 - dampening) * g          afterwards
        g <- g + momentum * b   if nesterov,  else g <- b
        p <- p - lr * g

    (the momentum lines only when momentum != 0).  ``p`` is updated in place;
    ``p.grad`` is left as it was.  State per parameter: ``momentum_buffer``
    (only with momentum).  Frozen parameters are skipped (see
    :meth:`Optimizer.step`).

    Hyper-parameters (checked in the constructor, per group and at every
    step; each must be a finite number): ``lr >= 0``, ``momentum >= 0``,
    ``0 <= dampening <= 1`` (PyTorch does not check dampening; outside
    [0, 1] the gradient's weight 1 - dampening would be negative or above
    one), ``weight_decay >= 0``; ``nesterov`` (a bool) needs momentum > 0
    and dampening = 0; ``maximize`` (a bool, keyword-only as in PyTorch).
    """

    _hyper = {
        "lr": lambda n, v, o: real(f"{n} (the learning rate)", v, low=0.0, owner=o),
        "momentum": lambda n, v, o: real(n, v, low=0.0, owner=o),
        "dampening": lambda n, v, o: real(n, v, low=0.0, high=1.0, owner=o),
        "weight_decay": lambda n, v, o: real(n, v, low=0.0, owner=o),
        "nesterov": lambda n, v, o: flag(n, v, owner=o),
        "maximize": lambda n, v, o: flag(n, v, owner=o),
    }

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _check_combination(self, values, prefix, owner):
        if values["nesterov"] and (values["momentum"] <= 0.0 or values["dampening"] != 0.0):
            where = f" ({prefix})" if prefix else ""
            raise ValueError(f"{owner}: Nesterov momentum needs momentum > 0 and dampening = 0{where}, got "
                             f"momentum={values['momentum']:g}, dampening={values['dampening']:g}")

    def _state_spec(self, group):
        return {"momentum_buffer": "array"}

    def _update_group(self, group, params, ops):
        lr, mu = float(group["lr"]), float(group["momentum"])
        damp, wd, nesterov = float(group["dampening"]), float(group["weight_decay"]), bool(group["nesterov"])
        maximize = bool(group["maximize"])
        for p in params:
            state = self.state.get(p)
            buf = ops.sgd_update(p.data, p.grad, state["momentum_buffer"] if state else None,
                                 lr, mu, damp, wd, nesterov, maximize)   # the formulas above: backend/numpy_ops.py
            if buf is not None and not state:
                self.state[p] = {"momentum_buffer": buf}
