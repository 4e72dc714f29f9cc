"""Finite-difference gradient checking for any module or loss.

The analytic gradients come from the module's own ``backward``; the
numerical ones from central differences of a scalar function f in float64:

    df/dθ_i ≈ (f(θ + ε e_i) - f(θ - ε e_i)) / (2 ε)      (error O(ε²))

The default ε = 1e-5 balances the O(ε²) truncation error against the
rounding error of f, about 1e-16 |f| / ε; both are then near 1e-10.

For a plain module f(x) = sum(module(x) * dy) with a fixed random upstream
gradient dy, so backward(dy) must return exactly df/dx.  For a loss, f is
the loss itself.  For a model with a loss, f = loss(model(x), target).

Kinks.  ReLU at 0 and max-pooling where two window entries tie are not
differentiable: when θ_i ± ε moves a pre-activation across 0 (or swaps a
window's maximum), the central difference mixes two slopes and disagrees
with the analytic gradient although both are right.  A CNN has so many
pre-activations that some entry of a bias or an input almost always meets
one.  So every entry is also differenced with ε/2: where f is smooth on
[θ_i - ε, θ_i + ε] the two estimates agree to O(ε²) (about 1e-11 of the
tensor's scale), and where a kink lies inside they differ at the scale of
the error itself.  Entries whose two estimates differ by more than a
quarter of the tolerance (relative to the tensor's scale) are not judged
and are counted as ``skipped`` in their row; a tensor all of whose checked
entries sit on kinks fails.  This never hides a wrong analytic gradient: the
test looks at the numeric side only.

The noise floor.  Each f is computed with rounding errors of about
eps_mach |f| (eps_mach = 2.2e-16), so a central difference is only good to
about eps_mach |f| / ε in absolute terms (5e-11 for a loss near 2.3 and ε =
1e-5), whatever the gradient's size.  A tensor whose gradients are small
next to that (the input of a loss averaged over a large batch: entries near
1e-6) cannot be judged to a relative tolerance of 1e-6 by any finite
difference.  So a row also passes when its largest absolute difference is
within ``noise = 8 eps_mach max|f| / ε`` (the row says so, and gives the
figure), and the kink test above allows three times that much between the
two steps.  A wrong gradient differs by far more than this floor unless the
tensor's gradients are themselves near it.
"""
from __future__ import annotations

import copy
import numbers

import numpy as np

from .nn.container import Sequential
from .nn.loss import Loss
from .random import preserve_rng_state
from .report import ErrorReport, check_positive_finite, check_tolerance

__all__ = ["gradcheck", "GradcheckReport"]


class GradcheckReport(ErrorReport):
    """A :class:`~nnumpy.report.ErrorReport` of analytic (``a``) against
    numeric (``b``) gradients, whose rows also say how many entries of each
    tensor were checked (``checked``), how many were not judged (``skipped``,
    kinks) and the finite differences' noise floor (``noise``): a row whose
    largest absolute difference is within it passes (``within_noise``)."""

    labels = ("analytic", "numeric")

    def _finish(self, row):
        row = super()._finish(row)
        noise = row.get("noise")
        row["within_noise"] = bool(not row["ok"] and row["note"] is None and noise is not None
                                   and row["abs_err"] <= noise)
        if row["within_noise"]:
            row["ok"] = True
        return row

    def __str__(self):
        text = super().__str__()
        floor = [r for r in self.rows if r.get("within_noise")]
        if floor:
            text += ("\npassed within the finite differences' noise (8 eps_mach max|f| / eps), the relative "
                     "error being above the tolerance: "
                     + ", ".join(f"{r['name']} (max abs err {r['abs_err']:.3g} <= {r['noise']:.3g})" for r in floor))
        skipped = [(r["name"], r["skipped"]) for r in self.rows if r.get("skipped")]
        if skipped:
            text += ("\nnot judged (f not differentiable within eps of the entry: a ReLU kink or a max-pool tie): "
                     + ", ".join(f"{k} of {name}" for name, k in skipped))
        return text

    __repr__ = __str__


def backward_with_input_grad(module, dy):
    """``module.backward(dy)``, asking a container built with
    ``input_grad=False`` for d(loss)/d(input) anyway (checks compare it)."""
    if isinstance(module, Sequential) and not module.input_grad:
        return module.backward(dy, input_grad=True)
    return module.backward(dy)


def gradient_problem(g, shape, dtype):
    """Why ``g`` is not a gradient of the given shape and dtype (None if it is):
    a backward must return a plain NumPy array of its input's shape and dtype,
    not a list, a scalar, a masked array, or an array of another dtype that
    a conversion would quietly make look right."""
    if type(g) is not np.ndarray:
        return f"backward gave {'None' if g is None else type(g).__name__}, not a NumPy array of shape {shape}"
    if g.dtype != dtype:
        return f"backward gave dtype {g.dtype}, not {np.dtype(dtype)}"
    if g.shape != tuple(shape):
        return f"backward gave an array of shape {g.shape}, not {tuple(shape)}"
    return None


def _copy(g):
    return g.copy() if isinstance(g, np.ndarray) else g


def _scalar(value):
    """The value of a loss as one float: reduction "none" gives per-sample
    losses, whose backward (with dloss = 1) is the gradient of their sum."""
    return float(np.sum(value))


def _check_max_checks(max_checks):
    if max_checks is None:
        return None
    if isinstance(max_checks, bool) or not isinstance(max_checks, numbers.Integral) or max_checks < 1:
        raise ValueError(f"max_checks must be a positive integer (entries checked per tensor) or None "
                         f"(all entries), got {max_checks!r}")
    return int(max_checks)


def gradcheck(module, x, target=None, loss=None, eps=1e-5, tolerance=1e-6, max_checks=None,
              seed=0, check_input=True, verbose=False):
    """Compare ``module``'s analytic gradients with central differences.

    module: any nnumpy Module or Loss.  It is copied and converted to float64;
    the original is not touched.  A Sequential/MLP built with
    ``input_grad=False`` is asked for d f/dx all the same.  x: an input batch
    (converted to float64; at least one entry).  target: the loss target
    (needed when ``module`` is a Loss or ``loss`` is given).  loss: an
    optional Loss applied to the module's output.  eps: the finite-difference
    step (> 0).  tolerance: on the relative error (> 0).  max_checks: check at
    most this many entries per tensor (a seeded random choice; an integer
    >= 1); None checks all.  seed: for the upstream gradient and choices.
    Random layers (Dropout) replay the same mask in every evaluation.

    Each row compares, over the checked entries i of one tensor (the input,
    then every parameter), the analytic gradient a with the numeric one b::

        rel_err = max_i |a_i - b_i| / max(max_i |a_i|, max_i |b_i|)

    normwise, so tiny entries are judged on the scale of the tensor's largest
    one (see :func:`nnumpy.report.tensor_errors` for why).  Any NaN or inf on
    either side fails the row and the report, whatever the tolerance.  A row
    shows its worst entry (the first non-finite one, else the largest
    |a_i - b_i|) by its index in the tensor and both values there.

    Raises ValueError when there is nothing to check (an input with no
    entries, e.g. a batch of 0 samples; a parameter with no entries; no
    parameters and ``check_input=False``) and for a bad eps, tolerance or
    max_checks.  Returns a :class:`GradcheckReport` (printed too with
    ``verbose=True``).
    """
    eps = check_positive_finite("eps", eps)
    tolerance = check_tolerance(tolerance)
    max_checks = _check_max_checks(max_checks)
    x = np.array(x, dtype=np.float64)
    if x.size == 0:
        raise ValueError(f"gradcheck: the input x has shape {x.shape} and no entries (a batch of 0 "
                         f"samples?): every gradient would be zero on both sides and the check would "
                         f"pass whatever backward does; pass at least one sample")
    rng = np.random.default_rng(seed)
    mod = copy.deepcopy(module).to(np.float64)
    crit = copy.deepcopy(loss).to(np.float64) if loss is not None else None
    is_loss = isinstance(mod, Loss)
    if (is_loss or crit is not None) and target is None:
        raise ValueError("gradcheck of a loss needs target=")
    params = list(mod.named_parameters())
    for name, p in params:
        if p.size == 0:
            raise ValueError(f"gradcheck: parameter {name!r} has shape {p.shape} and no entries: "
                             f"there is nothing to check in it")
    if not check_input and not params:
        raise ValueError(f"gradcheck: nothing to check: {type(module).__name__} has no parameters and "
                         f"check_input=False")
    dy = None

    with preserve_rng_state(mod) as rewind:
        def f():
            rewind()
            if is_loss:
                return _scalar(mod(x, target))
            out = mod(x)
            if crit is not None:
                return _scalar(crit(out, target))
            return float(np.sum(out * dy))

        # analytic pass; backward gets a copy of its upstream gradient, so a backward that
        # writes into dy (which the protocol forbids) cannot change what f() computes
        rewind()
        rows = []
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
            given = np.array(dout, copy=True)
            dx = backward_with_input_grad(mod, given)
            if not np.array_equal(given, dout, equal_nan=True):
                rows.append(GradcheckReport.failed_row(
                    "dy", np.shape(dout), "backward wrote into its upstream gradient dy (it must not)", checked=0))

        tensors = [("input", x, dx)] if check_input else []
        tensors += [(name, p.data, _copy(p.grad)) for name, p in params]
        for name, arr, analytic in tensors:
            problem = gradient_problem(analytic, arr.shape, arr.dtype)
            if problem is not None:
                rows.append(GradcheckReport.failed_row(name, arr.shape, problem, checked=0))
                continue
            flat_idx = np.arange(arr.size)
            if max_checks is not None and arr.size > max_checks:
                flat_idx = np.sort(rng.choice(arr.size, size=max_checks, replace=False))
            numeric = np.empty(len(flat_idx))
            half = np.empty(len(flat_idx))               # the same with eps / 2 (kink detection)
            view = arr.reshape(-1)                       # a view: writes reach arr
            f_max = 0.0                                  # the largest |f| met: sets the noise floor
            for j, i in enumerate(flat_idx):
                orig = view[i]
                values = []
                for step in (eps, -eps, eps / 2, -eps / 2):
                    view[i] = orig + step
                    values.append(f())
                view[i] = orig
                numeric[j] = (values[0] - values[1]) / (2 * eps)
                half[j] = (values[2] - values[3]) / eps
                f_max = max(f_max, *(abs(v) if np.isfinite(v) else 0.0 for v in values))
            noise = 8 * np.finfo(np.float64).eps * f_max / eps   # rounding of f, seen through the difference
            a = analytic.reshape(-1)[flat_idx]
            with np.errstate(invalid="ignore", over="ignore"):
                scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(numeric), initial=0.0))
                smooth = ~(np.abs(numeric - half) > max(0.25 * tolerance * scale, 3 * noise))   # NaNs stay judged
            if not smooth.any():
                rows.append(GradcheckReport.failed_row(
                    name, arr.shape, f"all {len(flat_idx)} checked entries sit within eps of a kink "
                                     f"(not differentiable there): check more entries or other inputs",
                    checked=len(flat_idx), skipped=len(flat_idx)))
                continue
            rows.append(GradcheckReport.row(name, a[smooth], numeric[smooth], positions=flat_idx[smooth],
                                            shape=arr.shape, checked=int(smooth.sum()),
                                            skipped=int((~smooth).sum()), noise=float(noise)))
    mod.clear_cache()
    title = f"gradcheck of {type(module).__name__} in float64, central differences, eps={eps:g}"
    report = GradcheckReport(title, rows, tolerance)
    if verbose:
        print(report)
    return report
