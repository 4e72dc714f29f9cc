"""Argument checks at the boundary, one helper per concept.

Every public entry point that takes a size, a count, a flag or a
hyper-parameter passes it through one of these helpers, so a bad value is
refused where it enters, with a message that names the argument and the
value, never deep inside NumPy (and never truncated or clipped silently).

Two error types:

* :class:`ValueError` for a value of the right type that is out of range
  (0 where a positive size is needed, NaN, inf, a negative learning rate);
* :class:`ArgumentTypeError` for a value of the wrong type (a string, a
  bool, None, a float where an integer is needed).  It subclasses both
  ``TypeError`` (what it is) and ``ValueError`` (so ``except ValueError``
  catches every bad argument, as it always has in nnumpy).

Numbers: an *integer* is a Python or NumPy integer, or a float with an
integral value (``3.0``; ``2.7`` is refused: no silent truncation); never a
bool.  A *real* is a Python or NumPy int or float (or a 0-d NumPy array of
one), never a bool; reals are always required to be finite.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["ArgumentTypeError", "integer", "positive_int", "real", "flag", "seed_rng", "describe"]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (e.g. ``epochs="3"``, ``lr=None``,
    ``batch_size=2.7``).  Both a TypeError and a ValueError."""


def describe(value):
    """``value`` as a message shows it: its repr (shortened), with the type
    for what is neither a number nor a string; arrays by shape and dtype."""
    if isinstance(value, np.ndarray) and value.size != 1:
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.item()
    text = repr(value)
    if len(text) > 80:
        text = text[:76] + " ..."
    if isinstance(value, (bool, str, bytes, numbers.Real)) or value is None:
        return text
    return f"{text} (a {type(value).__name__})"


def _prefix(owner):
    return f"{owner}: " if owner else ""


def _as_number(value):
    """A Python int/float for a real number (bools excluded), else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return None


def integer(name, value, low=None, owner=None):
    """``value`` as a Python int, checked to be ``>= low`` (if given).

    Accepts Python/NumPy integers and integral floats (3.0); refuses bools,
    strings, None, non-integral or non-finite floats (:class:`ArgumentTypeError`)
    and values below ``low`` (ValueError)."""
    n = _as_number(value)
    what = "an integer" if low is None else ("a positive integer" if low == 1 else f"an integer >= {low}")
    if n is None or (isinstance(n, float) and not (math.isfinite(n) and n.is_integer())):
        raise ArgumentTypeError(f"{_prefix(owner)}{name} must be {what}, got {describe(value)}")
    n = int(n)
    if low is not None and n < low:
        raise ValueError(f"{_prefix(owner)}{name} must be {what}, got {describe(value)}")
    return n


def positive_int(name, value, owner=None):
    """``value`` as a Python int >= 1 (see :func:`integer`)."""
    return integer(name, value, low=1, owner=owner)


def _range_text(low, high, low_open, high_open):
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def real(name, value, low=None, high=None, low_open=False, high_open=False, owner=None):
    """``value`` as a finite Python float, checked against the range.

    low/high: bounds (None: unbounded); low_open/high_open: whether the bound
    itself is excluded.  NaN and +-inf are always refused (ValueError), as
    are values outside the range; bools, strings, None and other types raise
    :class:`ArgumentTypeError`."""
    x = _as_number(value)
    if x is not None:
        try:
            x = float(x)
        except OverflowError:             # an int beyond float's range
            x = math.inf
    ok = x is not None and math.isfinite(x)
    if ok and low is not None:
        ok = x > low if low_open else x >= low
    if ok and high is not None:
        ok = x < high if high_open else x <= high
    if ok:                                # the common case: no message is built
        return float(x)
    rng = _range_text(low, high, low_open, high_open)
    msg = f"{_prefix(owner)}{name} must be a finite number{f' {rng}' if rng else ''}, got {describe(value)}"
    raise (ArgumentTypeError if x is None else ValueError)(msg)


def flag(name, value, owner=None):
    """``value`` as a bool: only True/False (and NumPy bools) are accepted, so
    a string such as "False" is not silently true."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ArgumentTypeError(f"{_prefix(owner)}{name} must be True or False, got {describe(value)}")


def seed_rng(name, value, owner=None):
    """A ``numpy.random.Generator`` from a seed: None (fresh entropy), an
    integer >= 0, or a Generator (used as it is)."""
    if value is None or isinstance(value, np.random.Generator):
        return np.random.default_rng(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{_prefix(owner)}{name} must be an integer seed >= 0, None or a "
                                f"numpy.random.Generator, got {describe(value)}")
    return np.random.default_rng(integer(name, value, low=0, owner=owner))
