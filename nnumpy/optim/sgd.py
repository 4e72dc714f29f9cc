"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""
from __future__ import annotations

from .. import backend
from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """PyTorch's SGD update, per parameter p with gradient g:

        g <- g + weight_decay * p                        (L2 penalty)
        b <- g                       on the first step   (momentum buffer)
        b <- momentum * b + (1 - dampening) * g          afterwards
        g <- g + momentum * b   if nesterov,  else g <- b
        p <- p - lr * g

    (the momentum lines only when momentum != 0).  ``p`` is updated in place;
    ``p.grad`` is left as it was.  State per parameter: ``momentum_buffer``.
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        defaults = dict(lr=float(lr), momentum=float(momentum), dampening=float(dampening),
                        weight_decay=float(weight_decay), nesterov=bool(nesterov))
        if momentum < 0.0:
            raise ValueError(f"invalid momentum: {momentum}")
        if nesterov and (momentum <= 0.0 or dampening != 0.0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, defaults)

    def step(self):
        update = backend.ops().sgd_update      # the formulas above: see backend/numpy_ops.py
        for group in self.param_groups:
            lr, mu = float(group["lr"]), float(group["momentum"])
            damp, wd, nesterov = float(group["dampening"]), float(group["weight_decay"]), group["nesterov"]
            for p in group["params"]:
                state = self.state.get(p)
                buf = update(p.data, p.grad, state["momentum_buffer"] if state else None,
                             lr, mu, damp, wd, nesterov)
                if buf is not None and not state:
                    self.state[p] = {"momentum_buffer": buf}
