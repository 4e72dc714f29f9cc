"""Adam and AdamW."""
from __future__ import annotations

import numpy as np

from .._checks import ArgumentTypeError, describe, flag, real
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


def _betas(name, value, owner):
    """(beta1, beta2), each a finite number in [0, 1)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ArgumentTypeError(f"{owner}: {name} must be a pair (beta1, beta2), got {describe(value)}")
    b1, b2 = value
    return (real(f"{name}[0] (beta1)", b1, 0.0, 1.0, high_open=True, owner=owner),
            real(f"{name}[1] (beta2)", b2, 0.0, 1.0, high_open=True, owner=owner))


class Adam(Optimizer):
    """Adam (Kingma & Ba): steps scaled by running means of the gradient and
    its square, bias-corrected, with L2 weight decay and AMSGrad.  PyTorch's Adam
    update, per parameter p with gradient g at step t = 1, 2, ...:

        g <- -g                                 (maximize only)
        g <- g + weight_decay * p               (Adam: L2 penalty in the gradient)
        m <- m + (1 - beta1) (g - m)            (= beta1 m + (1 - beta1) g)
        v <- beta2 v + (1 - beta2) g^2
        v_max <- max(v_max, v)                  (amsgrad only; then v_max replaces v)
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    State per parameter: ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v) and,
    with amsgrad, ``max_exp_avg_sq``.  Everything is updated in place; frozen
    parameters are skipped (see :meth:`Optimizer.step`).

    Hyper-parameters (checked in the constructor, per group and at every
    step, as ``torch.optim.Adam`` checks them but also refusing NaN and inf):
    ``lr >= 0``, ``betas`` a pair in [0, 1), ``eps >= 0``,
    ``weight_decay >= 0``, ``amsgrad`` a bool; ``maximize`` a bool
    (keyword-only, as in PyTorch).
    """

    _decoupled = False
    _hyper = {
        "lr": lambda n, v, o: real(f"{n} (the learning rate)", v, low=0.0, owner=o),
        "betas": lambda n, v, o: _betas(n, v, o),
        "eps": lambda n, v, o: real(n, v, low=0.0, owner=o),
        "weight_decay": lambda n, v, o: real(n, v, low=0.0, owner=o),
        "amsgrad": lambda n, v, o: flag(n, v, owner=o),
        "maximize": lambda n, v, o: flag(n, v, owner=o),
    }

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _state_spec(self, group):
        spec = {"step": "count", "exp_avg": "array", "exp_avg_sq": "array>=0"}
        if group["amsgrad"]:
            spec["max_exp_avg_sq"] = "array>=0"
        return spec

    def _update_group(self, group, params, ops):
        lr, (b1, b2) = float(group["lr"]), group["betas"]
        eps, wd, maximize = float(group["eps"]), float(group["weight_decay"]), bool(group["maximize"])
        for p in params:
            state = self.state.setdefault(p, {})
            if not state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(p.data)
                state["exp_avg_sq"] = np.zeros_like(p.data)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = np.zeros_like(p.data)
            state["step"] += 1
            ops.adam_update(p.data, p.grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                            state["step"], lr, float(b1), float(b2), eps, wd, self._decoupled, maximize)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's AdamW:
    first ``p <- p * (1 - lr * weight_decay)``, then the Adam step without the
    L2 term.  Default weight_decay 0.01, as in PyTorch.  With ``maximize``
    the gradient is negated, the decay is not: it still shrinks p toward 0."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)
