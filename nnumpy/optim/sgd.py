"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""
from __future__ import annotations

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
        for group in self.param_groups:
            lr, mu = float(group["lr"]), float(group["momentum"])
            damp, wd = float(group["dampening"]), float(group["weight_decay"])
            for p in group["params"]:
                g = p.grad
                if wd != 0.0:
                    g = g + wd * p.data
                if mu != 0.0:
                    state = self.state.setdefault(p, {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = g.copy()
                    else:
                        buf *= mu
                        buf += (1.0 - damp) * g
                    g = g + mu * buf if group["nesterov"] else buf
                p.data -= lr * g
