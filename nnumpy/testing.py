"""Checks that say what is wrong: for exercises, notebooks and your own tests.

Each ``assert_*`` function returns None when the check holds and raises
``AssertionError`` otherwise, with a message that names the array, the worst
entry (its index, the value found, the value expected) and, where it can tell,
the likely mistake: a wrong shape or a transpose, a NaN, a flipped sign, a
missing factor such as 1/N.  The tutorials' check cells use them, so a student
learns what is wrong with an answer without reading the solution::

    >>> import numpy as np
    >>> from nnumpy.testing import assert_close, assert_gradient
    >>> W = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> assert_close(W.T @ W, np.array([[10.0, 14.0], [14.0, 20.0]]), "W.T @ W")
    >>> x = np.array([0.5, -1.5])
    >>> assert_gradient(lambda x: (x ** 3).sum(), x, 3 * x ** 2, "d(sum x^3)/dx")

Errors are measured as in :func:`~nnumpy.gradcheck.gradcheck`: normwise, the
largest ``|actual - expected|`` over the largest ``|entry|`` of either array
(see :func:`~nnumpy.report.tensor_errors`), so an entry that should be 0 is
judged on the scale of the rest.  Any NaN or inf fails.
"""
from __future__ import annotations

import math
import numbers
import re

import numpy as np

from .report import check_positive_finite, check_tolerance, tensor_errors

__all__ = ["assert_close", "assert_returns", "numerical_gradient", "assert_gradient"]


def _label(name):
    if not isinstance(name, str):
        raise TypeError(f"name must be a string (the array's name in the message), got {type(name).__name__}")
    if not name.strip():
        raise ValueError("name must not be empty: it is what the message calls the array")
    return name


def _as_array(value, name, side):
    """``value`` as a float64 array, or an AssertionError (the tested side) /
    TypeError (the reference) saying why it is not an array of numbers."""
    err = AssertionError if side == "actual" else TypeError
    what = name if side == "actual" else f"the expected value of {name}"
    if value is None:
        raise err(f"{what} is None: did the function forget to return it?")
    if isinstance(value, (str, bytes, dict, set)):
        raise err(f"{what} should be an array of numbers, got a {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except Exception as exc:                  # ragged lists and the like
        raise err(f"{what} should be an array of numbers, got {type(value).__name__} ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise err(f"{what} should be an array of numbers, got {type(value).__name__} of dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise err(f"{what} should be real, got complex values")
    return arr.astype(np.float64)


def _entry(name, index):
    """``dW[3, 17]`` for a plain name, ``[3, 17]`` after a phrase (``x @ W.T + b``)."""
    if not index:
        return name
    where = ", ".join(map(str, index))
    return f"{name}[{where}]" if re.fullmatch(r"[\w.]+", name) else f"[{where}]"


def _diagnose(a, b, tolerance):
    """A hint for a few classic mistakes, or ''.  A hint is given only when it
    explains every entry (to 10 tolerances of the largest entry, at least 1e-6
    of it), so it never contradicts the numbers before it."""
    with np.errstate(all="ignore"):
        scale = max(np.abs(a).max(), np.abs(b).max())
        if scale == 0 or a.size == 1:                  # (one number: any two differ by "a factor")
            return ""
        slack = max(1e-6, 10 * tolerance) * scale
        if not np.any(a):
            return " It is all zeros."
        if np.abs(a + b).max() <= slack:
            return " Every entry has the opposite sign: is a minus sign missing or extra?"
        if a.ndim == 2 and a.shape[0] == a.shape[1] > 1 and np.abs(a - b.T).max() <= slack:
            return " It is the transpose of the expected value: check the order of the matrix product."
        big = np.abs(b) >= 0.1 * np.abs(b).max()
        if big.any():
            r = float(np.median(a[big] / b[big]))
            if np.isfinite(r) and r != 0 and abs(r - 1) > 1e-3 and np.abs(a - r * b).max() <= slack:
                return (f" Every entry is {r:.6g} times the expected one: a missing or extra factor "
                        f"(1/N of a mean, a 2 of a square, a learning rate, a share assigned instead of "
                        f"added?).")
    return ""


def _pair(x, y):
    """x and y printed with just enough digits to tell them apart."""
    for digits in (6, 10, 17):
        fx, fy = f"{x:.{digits}g}", f"{y:.{digits}g}"
        if fx != fy:
            break
    return fx, fy


def assert_close(actual, expected, name="value", *, tolerance=1e-7):
    """Assert that ``actual`` equals ``expected`` up to a relative error of
    ``tolerance``; else raise AssertionError saying what differs.

    actual: the value under test (an array, a number or a nested list);
    expected: the reference, of the same shape and finite.  name: what the
    message calls ``actual`` (e.g. ``"dW"``).  tolerance: on the normwise
    relative error ``max|actual - expected| / max(max|actual|, max|expected|)``,
    in (0, 1); the default 1e-7 suits float64 values computed two ways.

    The message names, in this order, the first thing that is wrong: None or
    not numbers; a shape that differs (and says when it is the transpose); a
    NaN or inf, with its index; then the worst entry, its value and the
    expected one, the relative error and how many entries are off, with a
    hint when every entry is off by the same factor or has the wrong sign.
    """
    name = _label(name)
    tolerance = check_tolerance(tolerance)
    b = _as_array(expected, name, "expected")
    if not np.isfinite(b).all():
        raise ValueError(f"the expected value of {name} has a NaN or inf: a reference must be finite")
    a = _as_array(actual, name, "actual")
    if a.shape != b.shape:
        hint = ""
        if a.ndim == b.ndim == 2 and a.shape == b.shape[::-1]:
            with np.errstate(all="ignore"):
                same = a.T.shape == b.shape and np.allclose(a.T, b, rtol=1e-6, atol=0)
            hint = (" (the transpose: check the order of the matrix product)" if same else
                    " (the transposed shape: check the order of the matrix product, or a reshape)")
        elif a.size == b.size:
            hint = " (the same number of entries in another layout: check the reshapes and axes)"
        raise AssertionError(f"{name} has shape {a.shape}, expected {b.shape}{hint}")
    if a.size == 0:
        return
    bad = ~np.isfinite(a)
    if bad.any():
        k = tuple(int(i) for i in np.argwhere(bad)[0])
        val = a[k] if k else a.item()
        raise AssertionError(f"{name} has {int(bad.sum())} non-finite entr{'y' if bad.sum() == 1 else 'ies'}, "
                             f"the first {_entry(name, k)} = {val} (expected {b[k] if k else b.item():.6g})")
    e = tensor_errors(a, b)
    if e["rel_err"] <= tolerance:
        return
    with np.errstate(all="ignore"):              # |a - b| of +-1e308 overflows: that entry is off all the same
        scale = max(np.abs(a).max(), np.abs(b).max())
        off = int(np.count_nonzero(~(np.abs(a - b) <= tolerance * scale)))
    got, want = _pair(e["a"], e["b"])
    raise AssertionError(
        f"{name} is wrong: worst entry {_entry(name, e['index'])} = {got}, expected {want} "
        f"(relative error {e['rel_err']:.2e}, tolerance {tolerance:g}); {off} of {a.size} entries are off."
        + _diagnose(a, b, tolerance))


def assert_returns(value, fields, name):
    """Assert that ``value``, what the function ``name`` returned, is a tuple
    of ``len(fields)`` values (``fields``: their names, e.g. ``("y", "cache")``),
    and return it; else raise AssertionError saying what came back instead
    (None: a forgotten ``return``)::

        y, cache = assert_returns(linear_forward(x, W, b), ("y", "cache"), "linear_forward")
    """
    fields = tuple(fields)
    want = f"({', '.join(fields)})"
    if value is None:
        raise AssertionError(f"{name} returned None; it should return {want}: did it forget to return?")
    if not isinstance(value, tuple) or len(value) != len(fields):
        got = f"a tuple of {len(value)}" if isinstance(value, tuple) else f"a {type(value).__name__}"
        raise AssertionError(f"{name} returned {got}; it should return the {len(fields)} values {want}")
    return value


def numerical_gradient(f, x, *, eps=1e-6):
    """The gradient of the scalar function ``f`` at ``x`` by central differences.

    f: a function of one array returning a number; x: a float64 array (it is
    copied; f receives the copy, one entry shifted by ±eps at a time).  For
    every entry i::

        g[i] = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)      # error O(eps^2)

    Returns ``g``, a float64 array of x's shape.  Costs 2 x.size calls of f:
    meant for the small arrays of an exercise.  To check a function with an
    array output y = h(x) against an upstream gradient dy, use
    ``f = lambda x: np.sum(h(x) * dy)``: its gradient is dx.
    """
    if not callable(f):
        raise TypeError(f"f must be a function of one array, got {type(f).__name__}")
    eps = check_positive_finite("eps", eps)
    x = np.asarray(x)
    if x.dtype != np.float64:
        raise TypeError(f"x must be a float64 array (finite differences in float32 are too coarse), got {x.dtype}")
    x = x.copy()
    original = x.copy()
    with np.errstate(over="ignore"):
        step = (x + eps) - (x - eps)             # the step x really takes, after rounding
    coarse = ~(np.abs(step - 2 * eps) <= 1e-3 * 2 * eps)
    if coarse.any():
        k = tuple(int(i) for i in np.argwhere(coarse)[0])
        raise ValueError(f"eps = {eps:g} is too small for x: at x{list(k)} = {x[k]:g} the step x +- eps rounds "
                         f"to {step[k] / 2:g}; use an eps of at least {1e4 * np.spacing(abs(x[k])):.1g}")
    g = np.empty_like(x)

    def value(at):
        v = f(x)
        if isinstance(v, np.ndarray) and v.size == 1:
            v = v.reshape(())[()]
        if isinstance(v, np.floating) and v.dtype != np.float64:
            raise TypeError(f"f returned a {v.dtype} number: compute f in float64 (rounding in {v.dtype} swamps "
                            f"the finite differences)")
        if isinstance(v, bool) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
            raise TypeError(f"f must return a single number, got {type(v).__name__}"
                            + (f" of shape {np.shape(v)}" if hasattr(v, "shape") else ""))
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"f returned {v} at x{list(at)}: the function must be finite near x")
        return v

    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        fp = value(i)
        x[i] = old - eps
        fm = value(i)
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    if not np.array_equal(x, original, equal_nan=True):
        raise ValueError("f changed its argument in place (the entries it was not asked to move differ "
                         "afterwards): the differences are meaningless; let f work on a copy")
    return g


def assert_gradient(f, x, grad, name="gradient", *, eps=1e-6, tolerance=1e-6):
    """Assert that ``grad`` is the gradient of the scalar function ``f`` at ``x``:
    :func:`assert_close` of ``grad`` against :func:`numerical_gradient`.

    The finite differences are accurate to about 1e-9 relative in float64 for
    smooth f, so the default tolerance 1e-6 passes a right gradient with a wide
    margin and fails a wrong one (a real bug is usually off by 1e-2 or more).
    Keep x away from kinks (ReLU's 0, a tie of a max): there the two one-sided
    slopes differ and no finite difference can judge.
    """
    numeric = numerical_gradient(f, x, eps=eps)
    try:
        assert_close(grad, numeric, name, tolerance=tolerance)
    except AssertionError as exc:
        raise AssertionError(f"{exc} (expected = central differences of f)") from None
