"""RMSprop: gradients divided by a running root mean square of their recent values."""
from __future__ import annotations

import numpy as np

from .._checks import flag, real
from .optimizer import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop: steps divided by a running root mean square of the gradient;
    momentum, centering, L2 weight decay.  PyTorch's RMSprop update (Hinton's lecture 6e; centered: Graves 2013),
    per parameter p with gradient g:

        g <- -g                                     (maximize only)
        g <- g + weight_decay * p                   (L2 penalty)
        v <- alpha v + (1 - alpha) g^2              (square_avg)
        a <- alpha a + (1 - alpha) g                (grad_avg, centered only)
        d <- sqrt(v - a^2) + eps   if centered,  else  d <- sqrt(v) + eps
        b <- momentum b + g / d;   p <- p - lr b    (momentum > 0)
        p <- p - lr g / d                           (momentum = 0)

    every operation element by element.  v, a and b start at zero.  The
    square root is taken before eps is added (TensorFlow adds eps inside it).
    Centered RMSprop divides by an estimate of the gradient's standard
    deviation, sqrt(E[g^2] - E[g]^2), instead of its root mean square.

    State per parameter, created at its first update: ``step`` (the number of
    updates; the formulas do not use it), ``square_avg`` (v), with momentum
    > 0 ``momentum_buffer`` (b) and, centered, ``grad_avg`` (a).  The
    buffers follow the group's current settings: switching momentum on (or
    centered) later starts its buffer at zero, as at a first step, and
    switching it off drops it, so :meth:`state_dict` always loads back
    (PyTorch raises a KeyError instead).  ``p.grad`` is never written;
    frozen parameters are skipped (see :meth:`Optimizer.step`).

    Hyper-parameters (checked in the constructor, per group and at every
    step; each a finite number): ``lr >= 0``, ``0 <= alpha <= 1`` (PyTorch
    only asks alpha >= 0; above 1 the weight 1 - alpha of g^2 is negative
    and v, a mean of squares, could turn negative), ``eps >= 0``,
    ``weight_decay >= 0``, ``momentum >= 0``; ``centered`` and
    ``maximize`` bools.  ``maximize`` is keyword-only here (in PyTorch it
    follows ``capturable`` and ``foreach``, which nnumpy does not have, so
    no positional call means the same in both).
    """

    _hyper = {
        "lr": lambda n, v, o: real(f"{n} (the learning rate)", v, low=0.0, owner=o),
        "alpha": lambda n, v, o: real(n, v, low=0.0, high=1.0, owner=o),
        "eps": lambda n, v, o: real(n, v, low=0.0, owner=o),
        "weight_decay": lambda n, v, o: real(n, v, low=0.0, owner=o),
        "momentum": lambda n, v, o: real(n, v, low=0.0, owner=o),
        "centered": lambda n, v, o: flag(n, v, owner=o),
        "maximize": lambda n, v, o: flag(n, v, owner=o),
    }

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, *,
                 maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _state_spec(self, group):
        spec = {"step": "count", "square_avg": "array>=0"}
        if group["momentum"] > 0:
            spec["momentum_buffer"] = "array"
        if group["centered"]:
            spec["grad_avg"] = "array"
        return spec

    def _update_group(self, group, params, ops):
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        wd, mu = float(group["weight_decay"]), float(group["momentum"])
        centered, maximize = bool(group["centered"]), bool(group["maximize"])
        for p in params:
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {"step": 0, "square_avg": np.zeros_like(p.data)}
            for key, wanted in (("momentum_buffer", mu > 0), ("grad_avg", centered)):
                if wanted and key not in state:
                    state[key] = np.zeros_like(p.data)
                elif not wanted and key in state:
                    del state[key]
            state["step"] += 1
            ops.rmsprop_update(p.data, p.grad, state["square_avg"], state.get("grad_avg"),
                               state.get("momentum_buffer"), lr, alpha, eps, wd, mu, maximize)
