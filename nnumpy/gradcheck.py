"""Finite-difference gradient checking for any module or loss.

The analytic gradients come from the module's own ``backward``; the
numerical ones from central differences of a scalar function f in float64:

    df/dθ_i ≈ (f(θ + ε e_i) - f(θ - ε e_i)) / (2 ε)      (error O(ε²))

The default ε = 1e-5 balances the O(ε²) truncation error against the
rounding error of f, about 1e-16 |f| / ε; both are then near 1e-10.

For a plain module f(x) = sum(module(x) * dy) with a fixed random upstream
gradient dy, so backward(dy) must return exactly df/dx.  For a loss, f is
the loss itself.  For a model with a loss, f = loss(model(x), target).
"""
from __future__ import annotations

import copy

import numpy as np

from .nn.loss import Loss
from .random import preserve_rng_state
from .report import ErrorReport, tensor_errors

__all__ = ["gradcheck", "GradcheckReport"]


class GradcheckReport(ErrorReport):
    """A :class:`~nnumpy.report.ErrorReport` whose rows also say how many
    entries of each tensor were checked."""


def gradcheck(module, x, target=None, loss=None, eps=1e-5, tolerance=1e-6, max_checks=None,
              seed=0, check_input=True, verbose=False):
    """Compare ``module``'s analytic gradients with central differences.

    module: any nnumpy Module or Loss.  It is copied and converted to float64;
    the original is not touched.  x: an input batch (converted to float64).
    target: the loss target (needed when ``module`` is a Loss or ``loss`` is
    given).  loss: an optional Loss applied to the module's output.
    max_checks: check at most this many entries per tensor (a seeded random
    choice); None checks all.  seed: for the upstream gradient and choices.
    Random layers (Dropout) replay the same mask in every evaluation.

    Returns a :class:`GradcheckReport` (printed too with ``verbose=True``).
    """
    rng = np.random.default_rng(seed)
    mod = copy.deepcopy(module).to(np.float64)
    crit = copy.deepcopy(loss).to(np.float64) if loss is not None else None
    x = np.array(x, dtype=np.float64)
    is_loss = isinstance(mod, Loss)
    if (is_loss or crit is not None) and target is None:
        raise ValueError("gradcheck of a loss needs target=")
    dy = None

    with preserve_rng_state(mod) as rewind:
        def f():
            rewind()
            if is_loss:
                return float(mod(x, target))
            out = mod(x)
            if crit is not None:
                return float(crit(out, target))
            return float(np.sum(out * dy))

        # analytic pass
        rewind()
        if is_loss:
            mod(x, target)
            dx = mod.backward()
        else:
            out = mod(x)
            if crit is not None:
                crit(out, target)
                dout = crit.backward()
            else:
                dy = rng.standard_normal(out.shape)
                dout = dy
            mod.zero_grad()
            dx = mod.backward(dout)

        tensors = []
        if check_input:
            tensors.append(("input", x, dx))
        tensors += [(name, p.data, p.grad.copy()) for name, p in mod.named_parameters()]

        rows = []
        for name, arr, analytic in tensors:
            flat_idx = np.arange(arr.size)
            if max_checks is not None and arr.size > max_checks:
                flat_idx = np.sort(rng.choice(arr.size, size=max_checks, replace=False))
            numeric = np.empty(len(flat_idx))
            view = arr.reshape(-1)                       # a view: writes reach arr
            for j, i in enumerate(flat_idx):
                orig = view[i]
                view[i] = orig + eps
                fp = f()
                view[i] = orig - eps
                fm = f()
                view[i] = orig
                numeric[j] = (fp - fm) / (2 * eps)
            abs_err, rel_err = tensor_errors(analytic.reshape(-1)[flat_idx], numeric)
            rows.append({"name": name, "shape": arr.shape, "checked": len(flat_idx),
                         "abs_err": abs_err, "rel_err": rel_err})
    mod.clear_cache()
    title = f"gradcheck of {type(module).__name__} in float64, central differences, eps={eps:g}"
    report = GradcheckReport(title, rows, tolerance)
    if verbose:
        print(report)
    return report
