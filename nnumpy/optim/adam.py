"""Adam and AdamW."""
from __future__ import annotations

import numpy as np

from .. import backend
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """PyTorch's Adam update, per parameter p with gradient g at step t = 1, 2, ...:

        g <- g + weight_decay * p               (Adam: L2 penalty in the gradient)
        m <- m + (1 - beta1) (g - m)            (= beta1 m + (1 - beta1) g)
        v <- beta2 v + (1 - beta2) g^2
        v_max <- max(v_max, v)                  (amsgrad only; then v_max replaces v)
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    State per parameter: ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v) and,
    with amsgrad, ``max_exp_avg_sq``.  Everything is updated in place.
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        b1, b2 = (float(b) for b in betas)
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"invalid betas {betas}: each must lie in [0, 1)")
        if eps < 0.0:
            raise ValueError(f"invalid eps: {eps}")
        super().__init__(params, dict(lr=float(lr), betas=(b1, b2), eps=float(eps),
                                      weight_decay=float(weight_decay), amsgrad=bool(amsgrad)))

    def step(self):
        update = backend.ops().adam_update     # the formulas above: see backend/numpy_ops.py
        for group in self.param_groups:
            lr, (b1, b2) = float(group["lr"]), group["betas"]
            eps, wd = float(group["eps"]), float(group["weight_decay"])
            for p in group["params"]:
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                update(p.data, p.grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                       state["step"], lr, b1, b2, eps, wd, self._decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's AdamW:
    first ``p <- p * (1 - lr * weight_decay)``, then the Adam step without the
    L2 term.  Default weight_decay 0.01, as in PyTorch."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
