"""Gradient clipping, as ``torch.nn.utils``: :func:`clip_grad_norm_` and :func:`clip_grad_value_`.

Call them between the backward pass and ``optimizer.step()``:

    optimizer.zero_grad()
    loss = loss_fn(model(xb), yb)
    model.backward(loss_fn.backward())                 # gradients in every param.grad
    nnumpy.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()

Both change ``param.grad`` in place and skip frozen parameters
(``requires_grad`` False), whose gradients PyTorch leaves at None.
"""
from __future__ import annotations

import math
import numbers
import types
import warnings
from collections.abc import Mapping

import numpy as np

from .._checks import ArgumentTypeError, describe, flag, real
from .module import Module, Parameter

__all__ = ["clip_grad_norm_", "clip_grad_value_", "NonFiniteNormError"]


class NonFiniteNormError(RuntimeError, ValueError):
    """:func:`clip_grad_norm_` with ``error_if_nonfinite=True`` found a total
    gradient norm that is NaN or inf.  Attributes: ``total_norm`` (a float)
    and ``norm_type``.  A RuntimeError (what PyTorch raises) and a ValueError
    (what nnumpy raises for bad values)."""

    def __init__(self, total_norm, norm_type):
        super().__init__(f"clip_grad_norm_: the total norm of order {norm_type:g} of the gradients is "
                         f"{total_norm}, so it cannot be clipped (a NaN or inf in some param.grad; look for "
                         f"it before clipping, or pass error_if_nonfinite=False to scale by the non-finite "
                         f"norm anyway)")
        self.total_norm, self.norm_type = total_norm, norm_type

    def __reduce__(self):                 # pickled with its fields, not with the message as an argument
        return type(self), (self.total_norm, self.norm_type), self.__dict__


def _trainable_grads(parameters, owner):
    """The gradient arrays of the trainable Parameters in ``parameters`` (one
    Parameter or an iterable of them; a Parameter listed twice counts once)."""
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    elif isinstance(parameters, (Module, Mapping, str, bytes, np.ndarray)):
        hint = " (pass model.parameters(), not the model)" if isinstance(parameters, Module) else ""
        raise ArgumentTypeError(f"{owner}: parameters must be a Parameter or an iterable of Parameters, got "
                                f"{describe(parameters)}{hint}")
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        try:
            parameters = list(parameters)
        except TypeError:
            raise ArgumentTypeError(f"{owner}: parameters must be a Parameter or an iterable of Parameters, "
                                    f"got {describe(parameters)}") from None
        if is_generator and not parameters:       # an exhausted model.parameters(), most likely (as PyTorch warns)
            warnings.warn(f"{owner}: `parameters` is an empty generator, no gradient clipping will occur",
                          UserWarning, stacklevel=3)
    seen, grads = set(), []
    for i, p in enumerate(parameters):
        if not isinstance(p, Parameter):
            raise ArgumentTypeError(f"{owner}: parameters[{i}] must be a Parameter, got {describe(p)}")
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            grads.append(p.grad)
    return grads


def _norm_type(value, owner):
    """A p > 0 as a float, or math.inf (also from the string "inf", as PyTorch's docs allow)."""
    if isinstance(value, str) and value.strip().lower() == "inf":
        return math.inf
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and value == math.inf:
        return math.inf
    try:
        return real("norm_type", value, low=0.0, low_open=True, owner=owner)
    except ValueError as e:               # (ArgumentTypeError too): say that inf is allowed
        raise type(e)(f"{e} (or inf, for the largest |element|)") from None


def _max_norm(value, owner):
    """A finite number >= 0 as a float, or math.inf (no clipping: only measure the norm)."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and value == math.inf:
        return math.inf
    try:
        return real("max_norm", value, low=0.0, owner=owner)
    except ValueError as e:               # (ArgumentTypeError too): say that inf is allowed
        raise type(e)(f"{e} (or inf, to measure the norm without clipping)") from None


def _vector_norm(x, p):
    """||x||_p of a float64 vector x: max |x_i| for p = inf, else (sum |x_i|^p)^(1/p)."""
    if x.size == 0:
        return 0.0
    if p == math.inf:
        return float(np.max(np.abs(x)))
    if p == 1.0:
        return float(np.sum(np.abs(x)))
    if p == 2.0:
        return math.sqrt(np.dot(x, x))
    return float(np.sum(np.abs(x) ** p) ** (1.0 / p))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale the gradients of ``parameters`` in place so that their total norm
    is at most ``max_norm``, and return the total norm from before scaling.

    The total norm treats all the gradients as one long vector: with n_i the
    p-norm of gradient i (p = ``norm_type``),

        total = (sum_i n_i^p)^(1/p)      = (sum over every element |g|^p)^(1/p)
        total = max_i n_i                 for p = inf (n_i = max |g_i|)
        coef  = min(max_norm / (total + 1e-6), 1)
        g    <- coef * g                  for every gradient g

    The 1e-6 keeps the division finite when every gradient is zero and makes
    the clipped norm a hair below max_norm; coef is at most 1, so small
    gradients are never scaled up.

    Args:
        parameters: a Parameter or an iterable of Parameters (e.g.
            ``model.parameters()``); frozen ones (``requires_grad`` False)
            are left out of the norm and not scaled; one listed twice
            counts once.
        max_norm: the largest total norm allowed, a finite number >= 0, or
            ``inf`` (``math.inf``, ``float("inf")``) to only measure the
            norm: coef is then 1 and nothing is scaled, unless the norm
            itself is inf or NaN (inf / inf is NaN: see error_if_nonfinite).
            NaN and negative values are refused.
        norm_type: p, a finite number > 0, or ``inf`` (``math.inf`` or
            ``"inf"``) for the largest |element|.  Default 2.0.
        error_if_nonfinite: if True, a NaN or inf total norm raises
            :class:`NonFiniteNormError` before any gradient changes; if
            False (the default) the gradients are scaled anyway, as in
            PyTorch (by NaN, or by 0 for an inf norm, which makes an inf
            element NaN).
        foreach: accepted for PyTorch compatibility (None, True or False);
            nnumpy has one implementation.

    Returns:
        The total norm as a Python float, computed in float64 whatever the
        gradients' dtype (PyTorch returns a 0-d tensor in the gradients'
        dtype; ``float()`` of it is this number, for float64 gradients).
        0.0 when there is no trainable parameter.  The gradients keep their
        dtype (float32 ones are scaled by coef rounded to float32).
    """
    owner = "clip_grad_norm_"
    max_norm = _max_norm(max_norm, owner)
    p = _norm_type(norm_type, owner)
    error_if_nonfinite = flag("error_if_nonfinite", error_if_nonfinite, owner=owner)
    if foreach is not None:
        flag("foreach", foreach, owner=owner)
    grads = _trainable_grads(parameters, owner)
    if not grads:
        return 0.0
    # per-gradient norms n_i, then the norm of (n_1, n_2, ...): PyTorch's order of summation
    norms = np.array([_vector_norm(np.asarray(g, np.float64).reshape(-1), p) for g in grads])
    total = _vector_norm(norms, p)
    if error_if_nonfinite and not math.isfinite(total):
        raise NonFiniteNormError(total, p)
    coef = max_norm / (total + 1e-6)
    if coef > 1.0:                    # (a NaN coef stays NaN, as torch.clamp leaves it)
        coef = 1.0
    if coef != 1.0:                   # scaling by 1 would change nothing
        with np.errstate(invalid="ignore"):          # inf * 0 = NaN is documented above, not a surprise
            for g in grads:
                g *= g.dtype.type(coef)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clip every gradient element of ``parameters`` into
    [-clip_value, clip_value], in place:

        g <- min(max(g, -clip_value), clip_value)      element by element

    (NaN stays NaN, as in PyTorch.)  ``parameters``: a Parameter or an
    iterable of Parameters; frozen ones are skipped.  ``clip_value``: a
    finite number >= 0 (PyTorch accepts a negative one, which sets every
    element to it).  ``foreach``: accepted for PyTorch compatibility.
    Returns None.
    """
    owner = "clip_grad_value_"
    clip_value = real("clip_value", clip_value, low=0.0, owner=owner)
    if foreach is not None:
        flag("foreach", foreach, owner=owner)
    for g in _trainable_grads(parameters, owner):
        np.clip(g, -clip_value, clip_value, out=g)
