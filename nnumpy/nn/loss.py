"""Losses.  ``loss = crit(output, target)`` returns a Python float (or, with
``reduction="none"``, an array: one loss per sample, or per element for the
element-wise losses); ``crit.backward()`` then returns d(loss)/d(output),
the gradient that starts back-propagation.

Every loss has PyTorch's (2.13) name, arguments, defaults and formulas; the
mathematics is in :mod:`nnumpy.functional` (``*_forward``/``*_backward``
pairs), checked against PyTorch in ``tests/test_losses.py``.  Differences
from PyTorch, all at the boundary:

* PyTorch's deprecated ``size_average`` and ``reduce`` do not exist, so in
  the losses that take a ``weight`` the arguments after it (after
  MultiMarginLoss's ``p, margin, weight``) are keyword-only: a call written
  for PyTorch's positional order fails instead of setting the wrong
  argument.  (``CrossEntropyLoss("sum")``, nnumpy's older positional
  reduction, still works; MSELoss, L1Loss, HuberLoss and SmoothL1Loss take
  ``reduction`` first.)
* Inputs are (N, C) for the class losses (no unbatched (C,) or (N, C, d1, ...)
  inputs); class indices may be any integer dtype, and targets of the
  element-wise losses integers or floats (converted to the input's dtype).
* Class weights and ``pos_weight`` must be finite and >= 0 (PyTorch takes
  negative ones, which make the loss unbounded below); they are copied (and
  kept read-only) when set.
* Bad arguments raise ValueError/TypeError naming them, when they are set
  (also after construction: ``crit.label_smoothing = 2`` raises) or, for
  what depends on the input (a weight's length, a class index out of
  range, probabilities outside [0, 1]), in forward.
* The mean of no terms is NaN for every loss (PyTorch's MultiMarginLoss
  returns an uninitialised number for an empty batch).

On the numba backend each forward computes the loss and its gradient at once
(:mod:`nnumpy.backend.numba_loss`; MSELoss from 4096 elements), and backward
scales that gradient by dloss; on the numpy backend forward and backward run
the functional pair.
Both keep what backward needs, the hyper-parameters included, so changing
one between forward and backward does not change the gradient.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from .. import functional as F
from .._checks import ArgumentTypeError, describe, integer, real
from .module import CheckedAttribute, Module, check_input

__all__ = ["Loss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "MultiMarginLoss",
           "MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _kernels():
    """The fused loss kernels on the numba backend, None on the numpy backend."""
    if backend.get_backend() != "numba":
        return None
    if _numba_loss is None:                   # imported on first use: Numba is optional
        from ..backend import numba_loss
        globals()["_numba_loss"] = numba_loss
    return _numba_loss


_numba_loss = None


# ---------------------------------------------------------------------------
# Hyper-parameter checks (one per kind; each returns the normalised value)
# ---------------------------------------------------------------------------
def _reduction(name, value, owner):
    if not isinstance(value, str) or value not in _REDUCTIONS:
        raise ValueError(f"{owner}: {name} must be one of {_REDUCTIONS}, got {describe(value)}")
    return value


def _weight_array(name, value, owner):
    """``value`` as a read-only float64 copy, every entry finite and >= 0 (None stays None)."""
    if value is None:
        return None
    if hasattr(value, "detach"):                  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    a = np.asarray(value)
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ArgumentTypeError(f"{owner}: {name} must be an array of real numbers or None, got {describe(value)}")
    a = np.array(a, dtype=np.float64)
    bad = ~np.isfinite(a) | (a < 0)
    if bad.any():
        i = np.unravel_index(int(np.argmax(bad)), a.shape) if a.ndim else ()
        raise ValueError(f"{owner}: {name} must be finite and >= 0, got {a[i].item()!r}"
                         + (f" at index {tuple(int(k) for k in i)}" if a.ndim else ""))
    a.flags.writeable = False
    return a


def _class_weight(name, value, owner):
    """None, or (C,) class weights (C >= 1)."""
    a = _weight_array(name, value, owner)
    if a is not None and (a.ndim != 1 or a.size == 0):
        raise ValueError(f"{owner}: {name} must be a 1-d array with one weight per class, got shape {a.shape}")
    return a


def _ignore_index(name, value, owner):
    value = integer(name, value, owner=owner)
    if not -2**63 <= value < 2**63:                 # class indices are int64, as in PyTorch
        raise ValueError(f"{owner}: {name} must fit in 64 bits, got {value}")
    return value


def _label_smoothing(name, value, owner):
    return real(name, value, low=0.0, high=1.0, owner=owner)


def _margin(name, value, owner):
    return real(name, value, owner=owner)


def _norm_p(name, value, owner):
    p = integer(name, value, owner=owner)
    if p not in (1, 2):
        raise ValueError(f"{owner}: {name} must be 1 or 2 (PyTorch supports only these), got {describe(value)}")
    return p


def _delta(name, value, owner):
    return real(name, value, low=0.0, low_open=True, owner=owner)


def _beta(name, value, owner):
    return real(name, value, low=0.0, owner=owner)


def _weight_repr(w):
    if w is None:
        return "None"
    return repr(w.tolist()) if w.size <= 6 else f"<array of shape {w.shape}>"


# ---------------------------------------------------------------------------
# Input and target checks at the boundary
# ---------------------------------------------------------------------------
def _class_input(module, x, what="input"):
    """(N, C) of a float (N, C) input with C >= 1."""
    check_input(module, x)
    name = type(module).__name__
    if x.ndim != 2:
        raise ValueError(f"{name} expects {what} of shape (N, C), got {x.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} expects {what} of shape (N, C) with C >= 1 classes, got {x.shape}")
    return x.shape


def _class_indices(module, target, n, c, soft_ok=False):
    """Integer class indices (N,) as given; with ``soft_ok``, float class
    probabilities (N, C) too (returned as they are)."""
    name = type(module).__name__
    target = np.asarray(target)
    if soft_ok and np.issubdtype(target.dtype, np.floating) and target.ndim == 2:
        if target.shape != (n, c):
            raise ValueError(f"{name}: class-probability target has shape {target.shape}, expected the "
                             f"logits' shape ({n}, {c})")
        return target
    if target.dtype == np.bool_ or not np.issubdtype(target.dtype, np.integer):
        soft = " or class probabilities (N, C) of floats" if soft_ok else ""
        raise TypeError(f"{name} expects integer class indices (N,){soft} as target, got dtype "
                        f"{target.dtype} and shape {target.shape}")
    if target.shape != (n,):
        raise ValueError(f"{name}: target has shape {target.shape}, expected ({n},) for input of "
                         f"shape ({n}, {c})")
    return target


def _same_shape_target(module, x, target):
    """A numeric target of the input's shape, in the input's dtype."""
    name = type(module).__name__
    target = np.asarray(target)
    if target.shape != x.shape:
        hint = (" (integer labels? use nnumpy.one_hot(labels, num_classes))"
                if target.ndim == 1 and x.ndim == 2 and isinstance(module, (MSELoss, L1Loss, HuberLoss,
                                                                           SmoothL1Loss)) else "")
        raise ValueError(f"{name}: target has shape {target.shape}, the input {x.shape}{hint}")
    if target.dtype == np.bool_ or not (np.issubdtype(target.dtype, np.floating)
                                        or np.issubdtype(target.dtype, np.integer)):
        raise TypeError(f"{name}: target must be an array of integers or floats, got dtype {target.dtype}")
    return target.astype(x.dtype, copy=False)


def _class_weight_for(module, w, c, dtype):
    """The class weights (C,) in the input's dtype, checked against C."""
    if w is None:
        return None
    if w.shape != (c,):
        raise ValueError(f"{type(module).__name__}: weight has {w.size} entries but the input has "
                         f"{c} classes")
    return w.astype(dtype)


def _broadcast_weight_for(module, name, w, shape, dtype):
    """A weight that broadcasts to the input's shape (without enlarging it), in its dtype."""
    if w is None:
        return None
    try:
        fits = np.broadcast_shapes(w.shape, shape) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{type(module).__name__}: {name} of shape {w.shape} does not broadcast to the "
                         f"input's shape {tuple(shape)}")
    return w.astype(dtype)


# ---------------------------------------------------------------------------
# The base class
# ---------------------------------------------------------------------------
class Loss(Module):
    """Base class: a module of (output, target) whose backward starts from the loss.

    ``forward(output, target)`` returns a float ("mean", "sum") or an array
    ("none"); ``backward(dloss=None)`` returns d(dloss * loss)/d(output), with
    dloss = 1 by default (a number, or for "none" an array of the loss's
    shape).  Hyper-parameters are checked whenever they are set.
    """

    #: name -> check(name, value, owner) -> normalised value, for every hyper-parameter
    _checks = {"reduction": _reduction}
    reduction = CheckedAttribute("_set_options")

    def __init__(self, reduction="mean"):
        super().__init__()
        self.__dict__["_given"] = {}
        self._set_options(reduction=reduction)

    def forward(self, output, target):
        """The loss of ``output`` against ``target``: a float ("mean", "sum") or an array ("none"),
        both checked at the boundary.  Keeps what backward needs.  The class's docstring gives the
        formula and the shapes."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def backward(self, dloss=None):
        """d(dloss * loss)/d(output), of the output's shape and dtype, with dloss = 1 by default (a
        number, or for "none" an array of the loss's shape); consumes what forward kept.  The class's
        docstring gives the formula."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    def _set_options(self, **changes):
        """Check and store hyper-parameters (nothing changes if one is bad)."""
        owner = type(self).__name__
        checked = {name: self._checks[name](name, value, owner) for name, value in changes.items()}
        self.__dict__["_given"] = {**self.__dict__["_given"], **checked}

    def _options(self):
        """The hyper-parameters now (a snapshot: forward saves what it used)."""
        return self.__dict__["_given"]

    def num_terms(self, output):
        """How many terms ``reduction="mean"`` averages over for this output:
        one per sample (``len(output)``) unless a loss says otherwise.  A
        ``"sum"`` loss divided by this is the per-sample mean (what
        :func:`~nnumpy.fit` and :func:`~nnumpy.evaluate` report); for the
        class losses with weights or ignored targets, whose "mean" divides by
        the targets' total weight, that differs from their "mean"."""
        return len(output)

    @staticmethod
    def _result(loss, reduction):
        # a NumPy float64 scalar: a Python float (float subclass) that also has PyTorch's loss.item()
        return np.float64(loss) if reduction != "none" else loss

    def _upstream(self, dloss, reduction, shape, dtype):
        """The upstream gradient of the loss: a float for "mean"/"sum" (1.0 by
        default), an array of the loss's ``shape`` in ``dtype`` for "none"."""
        owner = type(self).__name__
        if reduction == "none":
            if dloss is None:
                return np.ones(shape, dtype=dtype)
            d = np.asarray(dloss)
            if d.dtype == np.bool_ or not (np.issubdtype(d.dtype, np.floating) or np.issubdtype(d.dtype, np.integer)):
                raise TypeError(f"{owner}(reduction='none').backward expects dloss as an array of numbers, "
                                f"got {describe(dloss)}")
            if d.shape != tuple(shape):
                raise ValueError(f"{owner}(reduction='none').backward expects dloss of shape "
                                 f"{tuple(shape)} (the loss's), got {d.shape}")
            return d.astype(dtype, copy=False)
        if dloss is None:
            return 1.0
        if isinstance(dloss, np.ndarray) and dloss.ndim == 0:
            dloss = dloss[()]
        if isinstance(dloss, (bool, np.bool_)) or not isinstance(dloss, numbers.Real):
            raise ArgumentTypeError(f"{owner}(reduction={reduction!r}).backward expects dloss as a number, "
                                    f"got {describe(dloss)}")
        return float(dloss)

    def _fused_backward(self, grad, dloss, reduction, loss_shape):
        """d(dloss * loss)/d(input) from the fused kernel's gradient for dloss = 1."""
        if dloss is None:
            return grad
        d = self._upstream(dloss, reduction, loss_shape, grad.dtype)
        if reduction == "none":
            return grad * (d[:, None] if len(loss_shape) == 1 and grad.ndim == 2 else d)
        return grad if d == 1.0 else grad * grad.dtype.type(d)

    def get_config(self):
        out = {}
        for name, value in self._options().items():
            out[name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    def extra_repr(self):
        parts = []
        for name, value in self._options().items():
            parts.append(f"{name}={_weight_repr(value) if name in ('weight', 'pos_weight') else repr(value)}")
        return ", ".join(parts)


# ---------------------------------------------------------------------------
# Class losses: (N, C) scores and (N,) class indices
# ---------------------------------------------------------------------------
class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits, ``loss_n = -log softmax(z_n)[t_n]``, with
    class weights, ignored targets, label smoothing and class-probability targets.

    PyTorch's ``nn.CrossEntropyLoss(weight=None, ignore_index=-100,
    reduction='mean', label_smoothing=0.0)``.

    forward(logits (N, C) float, target): target is either class indices
    (N,) int in [0, C) (or equal to ``ignore_index``: that sample counts
    neither in the loss nor in the mean's divisor) or class probabilities
    (N, C) float (soft targets, not checked to be distributions, as in
    PyTorch; ``ignore_index`` must then be negative, as there).  With
    logp = log_softmax(z), eps = label_smoothing, w = weight (C,) (1 if None):

        class indices:  loss_n = (1 - eps) w_t (-logp_{n,t}) + eps/C sum_c w_c (-logp_nc)
        probabilities:  loss_n = -sum_c w_c ((1 - eps) y_nc + eps/C) logp_nc

    "mean" divides the sum by the total weight W of the targets that are
    not ignored (class indices; N when unweighted and nothing is ignored) or
    by N (probabilities).  A batch whose targets are all ignored (W = 0) has
    mean loss NaN and gradient 0, as in PyTorch ("sum" gives 0).

    backward(dloss=1.0) -> dz (N, C):  dz_n = (S_n p_n - q_n) * dloss / W
    ("mean"), with p = softmax(z), q_n the target distribution above
    (q_nc = (1 - eps) w_t 1[c = t] + eps/C w_c; y's mix for probabilities)
    and S_n = sum_c q_nc; without weight and smoothing, dz = (p - onehot(t)) / N.

    Cache: numpy backend: p (N, C), the target, and the weight (C,),
    ignore_index, label_smoothing and reduction the forward used; numba
    backend: dz for dloss = 1 (N, C) and the reduction.
    Finite for any finite logits (log-sum-exp after subtracting the row max).
    """

    _checks = {**Loss._checks, "weight": _class_weight, "ignore_index": _ignore_index,
               "label_smoothing": _label_smoothing}
    weight = CheckedAttribute("_set_options")
    ignore_index = CheckedAttribute("_set_options")
    label_smoothing = CheckedAttribute("_set_options")

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        if isinstance(weight, str):           # nnumpy's earlier positional reduction: CrossEntropyLoss("sum")
            if reduction != "mean" or weight not in _REDUCTIONS:
                raise ArgumentTypeError(
                    f"CrossEntropyLoss: weight must be an array of class weights or None, got {weight!r}"
                    + (f" (and reduction={reduction!r} as well)" if reduction != "mean" else "")
                    + f"; a string in first position is read as nnumpy's older positional reduction, "
                      f"which must then be one of {_REDUCTIONS} (clearer: reduction=...)")
            weight, reduction = None, weight
        super().__init__(reduction)
        self._set_options(weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing)

    def forward(self, logits, target):
        n, c = _class_input(self, logits, "logits")
        o = self._options()
        target = _class_indices(self, target, n, c, soft_ok=True)
        soft = target.ndim == 2
        if soft:
            if o["ignore_index"] >= 0:
                raise ValueError(f"CrossEntropyLoss: ignore_index={o['ignore_index']} is not supported with "
                                 f"class-probability targets (as in PyTorch); leave it negative")
            target = target.astype(logits.dtype, copy=False)
        weight = _class_weight_for(self, o["weight"], c, logits.dtype)
        args = (o["reduction"], weight, o["ignore_index"], o["label_smoothing"])
        kernels = _kernels()
        if kernels is not None:               # numba: loss and d(loss)/d(logits) in one call
            loss, dz = kernels.cross_entropy(logits, target, *args)
            self._save(dlogits=dz, reduction=o["reduction"])
            return self._result(loss, o["reduction"])
        if not soft:
            F.check_class_targets(target, c, o["ignore_index"], "CrossEntropyLoss")
        loss, probs = F.cross_entropy_forward(logits, target, *args)
        self._save(probs=probs, target=target, args=args)
        return self._result(loss, o["reduction"])

    def backward(self, dloss=None):
        c = self._take_cache()
        if "dlogits" in c:                    # fused forward: d(loss)/d(logits) for dloss = 1
            dz = c["dlogits"]
            return self._fused_backward(dz, dloss, c["reduction"], (dz.shape[0],))
        probs, (reduction, weight, ignore_index, smoothing) = c["probs"], c["args"]
        d = self._upstream(dloss, reduction, (probs.shape[0],), probs.dtype)
        return F.cross_entropy_backward(probs, c["target"], reduction, d, weight, ignore_index, smoothing)


class NLLLoss(Loss):
    """Negative log-likelihood of log-probabilities, ``loss_n = -w[t_n] logp[n, t_n]``.

    PyTorch's ``nn.NLLLoss(weight=None, ignore_index=-100, reduction='mean')``.
    Put after a log-softmax; ``CrossEntropyLoss`` is the two fused, on logits.

    forward(logp (N, C) float, target (N,) int in [0, C) or ignore_index):
        loss_n = -w_{t_n} logp_{n, t_n}     (0 for an ignored sample)
    "mean" divides the sum by W = sum of w_{t_n} over the samples not ignored
    (N without weight and ignored targets; NaN when W = 0).
    backward(dloss=1.0) -> dlogp (N, C): -w_{t_n} dloss / W at (n, t_n), 0 elsewhere.
    Cache: numpy backend: the target, C, the dtype, and the weight,
    ignore_index and reduction used; numba backend: dlogp for dloss = 1.
    """

    _checks = {**Loss._checks, "weight": _class_weight, "ignore_index": _ignore_index}
    weight = CheckedAttribute("_set_options")
    ignore_index = CheckedAttribute("_set_options")

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self._set_options(weight=weight, ignore_index=ignore_index)

    def forward(self, logp, target):
        n, c = _class_input(self, logp)
        o = self._options()
        target = _class_indices(self, target, n, c)
        args = (o["reduction"], _class_weight_for(self, o["weight"], c, logp.dtype), o["ignore_index"])
        kernels = _kernels()
        if kernels is not None:
            loss, dx = kernels.nll_loss(logp, target, *args)
            self._save(dinput=dx, reduction=o["reduction"])
            return self._result(loss, o["reduction"])
        F.check_class_targets(target, c, o["ignore_index"], "NLLLoss")
        loss = F.nll_loss_forward(logp, target, *args)
        self._save(target=target, num_classes=c, dtype=logp.dtype, args=args)
        return self._result(loss, o["reduction"])

    def backward(self, dloss=None):
        c = self._take_cache()
        if "dinput" in c:
            return self._fused_backward(c["dinput"], dloss, c["reduction"], (c["dinput"].shape[0],))
        target, (reduction, weight, ignore_index) = c["target"], c["args"]
        d = self._upstream(dloss, reduction, target.shape, c["dtype"])
        return F.nll_loss_backward(target, c["num_classes"], c["dtype"], reduction, d, weight, ignore_index)


class MultiMarginLoss(Loss):
    """The multiclass SVM (hinge) loss of CS231n's first assignment,
    ``loss_n = w[t_n] / C * sum_{j != t_n} max(0, margin - x[n, t_n] + x[n, j])^p``.

    PyTorch's ``nn.MultiMarginLoss(p=1, margin=1.0, weight=None, reduction='mean')``.

    forward(scores x (N, C) float, target (N,) int in [0, C)):
        loss_n = w_{t_n} / C * sum_{j != t_n} max(0, margin - x_{n,t_n} + x_nj)^p
    with p 1 or 2 and w = weight (C,) (1 if None).  A term counts where
    margin - x_t + x_j > 0 (strictly: its subgradient at 0 is 0; as in
    PyTorch, a NaN score other than the target's makes its term 0, not NaN).
    "mean" divides by N.  (CS231n's SVM is p=1, margin=1, reduction="sum"
    times C, or equivalently "mean" times C.)
    backward(dloss=1.0) -> dx (N, C): for each active term h = margin - x_t + x_j,
    dx_nj = w_t / C * (1 or 2h) * dloss / N, and dx_{n,t} = -sum_j dx_nj.
    Cache: numpy backend: x, the target, and p, margin, weight and reduction;
    numba backend: dx for dloss = 1.
    """

    _checks = {**Loss._checks, "p": _norm_p, "margin": _margin, "weight": _class_weight}
    p = CheckedAttribute("_set_options")
    margin = CheckedAttribute("_set_options")
    weight = CheckedAttribute("_set_options")

    def __init__(self, p=1, margin=1.0, weight=None, *, reduction="mean"):
        super().__init__(reduction)
        self._set_options(p=p, margin=margin, weight=weight)

    def forward(self, input, target):
        n, c = _class_input(self, input)
        o = self._options()
        target = _class_indices(self, target, n, c)
        args = (o["reduction"], o["p"], o["margin"], _class_weight_for(self, o["weight"], c, input.dtype))
        kernels = _kernels()
        if kernels is not None:
            loss, dx = kernels.multi_margin_loss(input, target, *args)
            self._save(dinput=dx, reduction=o["reduction"])
            return self._result(loss, o["reduction"])
        F.check_class_targets(target, c, None, "MultiMarginLoss")
        loss = F.multi_margin_loss_forward(input, target, *args)
        self._save(x=input, target=target, args=args)
        return self._result(loss, o["reduction"])

    def backward(self, dloss=None):
        c = self._take_cache()
        if "dinput" in c:
            return self._fused_backward(c["dinput"], dloss, c["reduction"], (c["dinput"].shape[0],))
        x, (reduction, p, margin, weight) = c["x"], c["args"]
        d = self._upstream(dloss, reduction, (x.shape[0],), x.dtype)
        return F.multi_margin_loss_backward(x, c["target"], reduction, d, p, margin, weight)


# ---------------------------------------------------------------------------
# Binary cross-entropy: every element is a term
# ---------------------------------------------------------------------------
class BCEWithLogitsLoss(Loss):
    """A sigmoid and binary cross-entropy fused on logits,
    ``loss = -w (pos_weight y log sigmoid(x) + (1 - y) log(1 - sigmoid(x)))``, exact for any logits.

    PyTorch's ``nn.BCEWithLogitsLoss(weight=None, reduction='mean', pos_weight=None)``.

    forward(x (any shape) float logits, target y (x's shape), usually in [0, 1]):
        loss = w ((1 - y) x - l log sigmoid(x)),  l = 1 + (pos_weight - 1) y,
    i.e. -w (pos_weight y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))),
    elementwise, with log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)): exact and
    finite for any finite x (x = +-1e4 gives 0 or 1e4).  weight and
    pos_weight broadcast to x's shape (pos_weight usually (C,), one per
    class, for x of shape (N, C)).  "mean" is over every element.
    backward(dloss=1.0) -> dx (x's shape) = w (sigmoid(x) - y) * dloss / x.size,
    or with pos_weight pw: w ((pw y + 1 - y) sigmoid(x) - pw y) * dloss / x.size.
    Cache: numpy backend: x, y, and the weight, pos_weight and reduction;
    numba backend: dx for dloss = 1.
    """

    _checks = {**Loss._checks, "weight": _weight_array, "pos_weight": _weight_array}
    weight = CheckedAttribute("_set_options")
    pos_weight = CheckedAttribute("_set_options")

    def __init__(self, weight=None, *, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self._set_options(weight=weight, pos_weight=pos_weight)

    def num_terms(self, output):
        """Every element is a term of the mean."""
        return int(np.size(output))

    def forward(self, input, target):
        check_input(self, input)
        o = self._options()
        target = _same_shape_target(self, input, target)
        args = (o["reduction"], _broadcast_weight_for(self, "weight", o["weight"], input.shape, input.dtype),
                _broadcast_weight_for(self, "pos_weight", o["pos_weight"], input.shape, input.dtype))
        kernels = _kernels()
        if kernels is not None:
            loss, dx = kernels.binary_cross_entropy_with_logits(input, target, *args)
            self._save(dinput=dx, reduction=o["reduction"])
            return self._result(loss, o["reduction"])
        loss = F.binary_cross_entropy_with_logits_forward(input, target, *args)
        self._save(x=input, y=target, args=args)
        return self._result(loss, o["reduction"])

    def backward(self, dloss=None):
        c = self._take_cache()
        if "dinput" in c:
            return self._fused_backward(c["dinput"], dloss, c["reduction"], c["dinput"].shape)
        x, (reduction, weight, pos_weight) = c["x"], c["args"]
        d = self._upstream(dloss, reduction, x.shape, x.dtype)
        return F.binary_cross_entropy_with_logits_backward(x, c["y"], reduction, d, weight, pos_weight)


class BCELoss(Loss):
    """Binary cross-entropy on probabilities, ``loss = -w (y log p + (1 - y) log(1 - p))``,
    each log clamped at -100.

    PyTorch's ``nn.BCELoss(weight=None, reduction='mean')``.  Put after a
    Sigmoid; ``BCEWithLogitsLoss`` is the two fused, on logits, and more accurate.

    forward(p (any shape) float in [0, 1], target y (p's shape) in [0, 1]):
        loss = -w (y max(log p, -100) + (1 - y) max(log(1 - p), -100))
    elementwise; PyTorch's clamp keeps the loss finite (at most 100 w) at
    p = 0 or 1.  Values outside [0, 1] (or NaN) in p or y raise ValueError,
    as PyTorch does.  weight broadcasts to p's shape; "mean" is over every element.
    backward(dloss=1.0) -> dp = w (p - y) / max(p (1 - p), 1e-12) * dloss / p.size
    (PyTorch's form: bounded by 1e12 w at p = 0 or 1).
    Cache: numpy backend: p, y, and the weight and reduction; numba backend:
    dp for dloss = 1.
    """

    _checks = {**Loss._checks, "weight": _weight_array}
    weight = CheckedAttribute("_set_options")

    def __init__(self, weight=None, *, reduction="mean"):
        super().__init__(reduction)
        self._set_options(weight=weight)

    def num_terms(self, output):
        """Every element is a term of the mean."""
        return int(np.size(output))

    def forward(self, input, target):
        check_input(self, input)
        o = self._options()
        target = _same_shape_target(self, input, target)
        args = (o["reduction"], _broadcast_weight_for(self, "weight", o["weight"], input.shape, input.dtype))
        kernels = _kernels()
        if kernels is not None:               # the kernel checks the ranges on its way
            loss, dx = kernels.binary_cross_entropy(input, target, *args, input_hint=_BCE_HINT)
            self._save(dinput=dx, reduction=o["reduction"])
            return self._result(loss, o["reduction"])
        F.check_probabilities("input", input, "BCELoss", _BCE_HINT)
        F.check_probabilities("target", target, "BCELoss")
        loss = F.binary_cross_entropy_forward(input, target, *args)
        self._save(p=input, y=target, args=args)
        return self._result(loss, o["reduction"])

    def backward(self, dloss=None):
        c = self._take_cache()
        if "dinput" in c:
            return self._fused_backward(c["dinput"], dloss, c["reduction"], c["dinput"].shape)
        p, (reduction, weight) = c["p"], c["args"]
        d = self._upstream(dloss, reduction, p.shape, p.dtype)
        return F.binary_cross_entropy_backward(p, c["y"], reduction, d, weight)


_BCE_HINT = " (BCELoss takes probabilities, e.g. a Sigmoid's output; for logits use BCEWithLogitsLoss)"


# ---------------------------------------------------------------------------
# Element-wise regression losses: every element is a term
# ---------------------------------------------------------------------------
class _ElementwiseLoss(Loss):
    """A loss of d = pred - target, element by element (MSE, L1, Huber, smooth L1).

    Subclasses name their functional pair (``_functional``: ``F.<name>_forward``,
    ``F.<name>_backward``), their numba kernel (``_kernel``) and their hyper-parameter, if any
    (``_param``: delta, beta); forward keeps d (numpy) or d pred for dloss = 1 (numba)
    and the hyper-parameter it ran with, and backward uses those."""

    _functional, _kernel, _param, _kernel_from = None, None, None, 0

    def num_terms(self, output):
        """Every element of the prediction is a term of the mean."""
        return int(np.size(output))

    def forward(self, pred, target):
        check_input(self, pred)
        target = _same_shape_target(self, pred, target)
        reduction = self.reduction
        extra = (getattr(self, self._param),) if self._param else ()
        kernels = _kernels() if pred.size >= self._kernel_from else None
        if kernels is not None:
            loss, dx = getattr(kernels, self._kernel)(pred, target, reduction, *extra)
            self._save(dinput=dx, reduction=reduction)
            return self._result(loss, reduction)
        loss, d = getattr(F, f"{self._functional}_forward")(pred, target, reduction, *extra)
        self._save(d=d, reduction=reduction, extra=extra)
        return self._result(loss, reduction)

    def backward(self, dloss=None):
        """dpred from the cache of a forward that kept d (numpy) or the gradient (numba)."""
        c = self._take_cache()
        if "dinput" in c:
            return self._fused_backward(c["dinput"], dloss, c["reduction"], c["dinput"].shape)
        d = c["d"]
        return getattr(F, f"{self._functional}_backward")(
            d, c["reduction"], self._upstream(dloss, c["reduction"], d.shape, d.dtype), *c["extra"])


#: MSE's NumPy form is three ufunc calls: the kernel pays from about this many
#: elements (measured: 0.97x at 640, 1.01x at 2560, 1.07x at 10240; 1.36x at 1024 x 1000).
_MSE_KERNEL_FROM = 4096


class MSELoss(_ElementwiseLoss):
    """Mean squared error, ``loss = (pred - target)^2`` elementwise.

    PyTorch's ``nn.MSELoss(reduction='mean')``.

    forward(pred (any shape), target (same shape)): mean((pred - target)^2).
    backward(dloss=1.0) -> d pred = 2 (pred - target) * dloss / pred.size.
    Cache: the difference pred - target, or on the numba backend from 4096
    elements d pred for dloss = 1.  For classification use one-hot targets:
    ``nnumpy.one_hot(labels, 10)``.
    """

    _functional, _kernel = "mse", "mse_loss"
    _kernel_from = _MSE_KERNEL_FROM


class L1Loss(_ElementwiseLoss):
    """Mean absolute error, ``loss = |pred - target|`` elementwise.

    PyTorch's ``nn.L1Loss(reduction='mean')``.

    forward(pred (any shape), target (same shape)): loss = |pred - target|
    elementwise, "mean" over every element.
    backward(dloss=1.0) -> d pred = sign(pred - target) * dloss / pred.size,
    with sign(0) = 0 (PyTorch's subgradient; also 0 where d is NaN, as there).
    Cache: numpy backend: d = pred - target; numba backend: d pred for dloss = 1.
    """

    _functional, _kernel = "l1_loss", "l1_loss"


class HuberLoss(_ElementwiseLoss):
    """The Huber loss, ``d^2 / 2`` for ``|d| < delta`` and ``delta (|d| - delta / 2)``
    beyond, d = pred - target elementwise.

    PyTorch's ``nn.HuberLoss(reduction='mean', delta=1.0)``.

    forward(pred, target (same shape)), d = pred - target elementwise:
        loss = d^2 / 2 where |d| < delta, else delta (|d| - delta / 2)
    (delta > 0), "mean" over every element.
    backward(dloss=1.0) -> d pred = clip(d, -delta, delta) * dloss / pred.size.
    Cache: numpy backend: d and the delta used; numba backend: d pred for dloss = 1.
    """

    _functional, _kernel = "huber_loss", "huber_loss"
    _param = "delta"

    _checks = {**Loss._checks, "delta": _delta}
    delta = CheckedAttribute("_set_options")

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self._set_options(delta=delta)


class SmoothL1Loss(_ElementwiseLoss):
    """The smooth L1 loss, ``d^2 / (2 beta)`` for ``|d| < beta`` and ``|d| - beta / 2``
    beyond, d = pred - target elementwise: the Huber loss divided by beta.

    PyTorch's ``nn.SmoothL1Loss(reduction='mean', beta=1.0)``.

    forward(pred, target (same shape)), d = pred - target elementwise:
        loss = d^2 / (2 beta) where |d| < beta, else |d| - beta / 2
    (beta >= 0; the Huber loss divided by beta; beta = 0 is the L1 loss),
    "mean" over every element.
    backward(dloss=1.0) -> d pred = (d / beta inside [-beta, beta], else
    sign(d)) * dloss / pred.size.
    Cache: numpy backend: d and the beta used; numba backend: d pred for dloss = 1.
    """

    _functional, _kernel = "smooth_l1_loss", "smooth_l1_loss"
    _param = "beta"

    _checks = {**Loss._checks, "beta": _beta}
    beta = CheckedAttribute("_set_options")

    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self._set_options(beta=beta)
