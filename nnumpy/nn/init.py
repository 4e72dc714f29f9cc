"""Initialisers with PyTorch's names, formulas and fan rules (``torch.nn.init``).

Each ``*_`` function fills a :class:`~nnumpy.nn.Parameter` (its ``.data``)
or a float NumPy array **in place** and returns it; the numbers are drawn in
float64 from a NumPy generator (``rng``: None for nnumpy's global generator,
see :func:`nnumpy.manual_seed`, an int seed or a ``numpy.random.Generator``)
and then cast to the array's dtype, so the same seed gives the same weights.
Arguments are checked before anything is drawn, also for a zero-element
array (which is left as it is): a negative ``gain`` or ``std``, a bound,
mean or value beyond the array's dtype's range (it would become inf), an
interval wider than the largest float, or a bad ``rng`` raise ValueError or
TypeError naming the argument.

Fans, for a weight of shape (out, in, *kernel) (PyTorch's layout: Linear
(out, in), Conv2d (O, C/groups, KH, KW))::

    receptive field r = prod(kernel)  (1 without kernel dimensions)
    fan_in  = in  * r
    fan_out = out * r

Variances (g = :func:`calculate_gain`)::

    xavier (Glorot & Bengio 2010):  std = g * sqrt(2 / (fan_in + fan_out))
    kaiming (He et al. 2015):       std = g / sqrt(fan),  fan = fan_in or fan_out (``mode``)
    uniform versions draw from U(-a, a) with a = sqrt(3) * std (U(-a, a) has variance a^2 / 3)

Examples (Nielsen's "Neural Networks and Deep Learning", chapter 3: weights
N(0, 1/n_in), biases N(0, 1))::

    layer = nnp.Linear(784, 100)
    nnp.nn.init.normal_(layer.weight, std=1 / math.sqrt(784), rng=0)
    nnp.nn.init.normal_(layer.bias, rng=1)
"""
from __future__ import annotations

import math
import numbers
import sys

import numpy as np

from .._checks import ArgumentTypeError, describe
from ..random import resolve_rng
from .module import Parameter

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]

#: Nonlinearities with gain 1 (PyTorch's list).
_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "sigmoid")


def _number(name, value, owner):
    """A finite real number (not a bool), as a Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ArgumentTypeError(f"{owner}: {name} must be a real number, got {describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    return value


def calculate_gain(nonlinearity, param=None):
    """The gain recommended for a nonlinearity (PyTorch's values): 1 for linear,
    the convolutions and the sigmoid; 5/3 for tanh; sqrt(2) for ReLU;
    sqrt(2 / (1 + slope^2)) for leaky ReLU (``param`` is the negative slope,
    default 0.01); 3/4 for SELU.  It keeps the variance of activations about
    constant from layer to layer when weights are drawn with std = gain / sqrt(fan)."""
    if not isinstance(nonlinearity, str):
        raise ArgumentTypeError(f"calculate_gain: nonlinearity must be a name such as 'relu', got "
                                f"{describe(nonlinearity)}")
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else _number("param (the negative slope)", param, "calculate_gain")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; choose from "
                     f"{sorted(_LINEAR + ('tanh', 'relu', 'leaky_relu', 'selu'))}")


def _array(tensor, owner):
    """The float array to fill in place: a Parameter's .data or the array itself."""
    a = tensor.data if isinstance(tensor, Parameter) else tensor
    if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
        raise ArgumentTypeError(f"{owner}: expected a Parameter or a float NumPy array, got {describe(tensor)}")
    if not a.flags.writeable:
        raise ValueError(f"{owner}: the array is read-only, it cannot be filled in place")
    return a


def _fans(a, owner):
    """(fan_in, fan_out) of an array of shape (out, in, *kernel)."""
    if a.ndim < 2:
        raise ValueError(f"{owner}: fan in and fan out need an array of at least 2 dimensions (out, in, ...), "
                         f"got shape {a.shape}")
    r = math.prod(a.shape[2:])
    return a.shape[1] * r, a.shape[0] * r


def _empty(a, owner):
    """Whether there is nothing to fill (the shape is still checked first)."""
    _fans(a, owner)
    return a.size == 0


def _fill(tensor, a, values):
    a[...] = values                                   # cast to the array's dtype, in place
    return tensor


def _fits(name, value, dtype, owner):
    """``value`` (a finite float) when the array's dtype can hold it; else a
    ValueError naming it (it would become inf when cast, as PyTorch refuses too)."""
    largest = float(np.finfo(dtype).max)
    if abs(value) > largest:
        raise ValueError(f"{owner}: {name} is {value!r}, beyond the range of the array's dtype {dtype} "
                         f"(|x| <= {largest:.4g})")
    return value


def _gain(gain, owner):
    """A finite gain >= 0 (PyTorch refuses a negative one too, from inside its samplers)."""
    gain = _number("gain", gain, owner)
    if gain < 0:
        raise ValueError(f"{owner}: gain must be at least 0 (it scales the standard deviation), got {gain!r}")
    return gain


def _uniform(tensor, arr, low, high, rng, owner, names):
    """Fill ``arr`` with U(low, high) draws, low <= high finite floats that the
    array's dtype holds, named ``names`` = (name of low, name of high) in errors."""
    _fits(names[0], low, arr.dtype, owner)
    _fits(names[1], high, arr.dtype, owner)
    if not math.isfinite(high - low):             # NumPy draws low + (high - low) u and refuses an inf width
        raise ValueError(f"{owner}: the interval from {names[0]} = {low!r} to {names[1]} = {high!r} is wider than "
                         f"the largest float ({sys.float_info.max:.4g}); draw from a narrower one")
    return _fill(tensor, arr, rng.uniform(low, high, arr.shape))


def uniform_(tensor, a=0.0, b=1.0, rng=None):
    """Fill with draws from U(a, b): a <= b, both within the array's dtype's
    range and b - a finite (a float64)."""
    arr = _array(tensor, "uniform_")
    a, b = _number("a", a, "uniform_"), _number("b", b, "uniform_")
    if a > b:
        raise ValueError(f"uniform_: a must be at most b, got a={a} and b={b}")
    gen = resolve_rng(rng, owner="uniform_")
    return _uniform(tensor, arr, a, b, gen, "uniform_", ("a", "b"))


def normal_(tensor, mean=0.0, std=1.0, rng=None):
    """Fill with draws from N(mean, std^2): std >= 0, mean and std within
    the array's dtype's range."""
    arr = _array(tensor, "normal_")
    mean, std = _number("mean", mean, "normal_"), _number("std", std, "normal_")
    if std < 0:
        raise ValueError(f"normal_: std must be at least 0, got {std}")
    _fits("mean", mean, arr.dtype, "normal_")
    _fits("std", std, arr.dtype, "normal_")
    return _fill(tensor, arr, resolve_rng(rng, owner="normal_").normal(mean, std, arr.shape))


def constant_(tensor, val):
    """Fill with ``val`` (within the array's dtype's range)."""
    arr = _array(tensor, "constant_")
    return _fill(tensor, arr, _fits("val", _number("val", val, "constant_"), arr.dtype, "constant_"))


def zeros_(tensor):
    """Fill with 0."""
    return _fill(tensor, _array(tensor, "zeros_"), 0.0)


def ones_(tensor):
    """Fill with 1."""
    return _fill(tensor, _array(tensor, "ones_"), 1.0)


def _xavier_std(arr, gain, owner):
    fan_in, fan_out = _fans(arr, owner)
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def xavier_uniform_(tensor, gain=1.0, rng=None):
    """Glorot uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)); gain >= 0."""
    owner = "xavier_uniform_"
    arr = _array(tensor, owner)
    gain, gen = _gain(gain, owner), resolve_rng(rng, owner=owner)
    if _empty(arr, owner):
        return tensor
    bound = _fits(f"a = gain * sqrt(6 / (fan_in + fan_out)) with gain={gain!r}",
                  math.sqrt(3.0) * _xavier_std(arr, gain, owner), arr.dtype, owner)
    return _uniform(tensor, arr, -bound, bound, gen, owner, ("-a", "a"))


def xavier_normal_(tensor, gain=1.0, rng=None):
    """Glorot normal: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)); gain >= 0."""
    owner = "xavier_normal_"
    arr = _array(tensor, owner)
    gain, gen = _gain(gain, owner), resolve_rng(rng, owner=owner)
    if _empty(arr, owner):
        return tensor
    std = _fits(f"std = gain * sqrt(2 / (fan_in + fan_out)) with gain={gain!r}", _xavier_std(arr, gain, owner),
                arr.dtype, owner)
    return _fill(tensor, arr, gen.normal(0.0, std, arr.shape))


def _kaiming_gain(a, mode, nonlinearity, owner):
    """calculate_gain(nonlinearity, a), once ``mode`` is checked."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{owner}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return calculate_gain(nonlinearity, a)


def _kaiming_std(arr, gain, mode, owner):
    fan_in, fan_out = _fans(arr, owner)
    fan = fan_in if mode == "fan_in" else fan_out
    return gain / math.sqrt(fan)                  # gain <= sqrt(2): the dtype holds it


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """He uniform: U(-b, b), b = sqrt(3) * gain / sqrt(fan); ``a`` is the leaky ReLU's
    negative slope (0: ReLU's gain sqrt(2)).  ``Linear`` and ``Conv2d`` default to
    ``a = sqrt(5)``, which gives b = 1 / sqrt(fan_in), as in PyTorch."""
    owner = "kaiming_uniform_"
    arr = _array(tensor, owner)
    gain, gen = _kaiming_gain(a, mode, nonlinearity, owner), resolve_rng(rng, owner=owner)
    if _empty(arr, owner):
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(arr, gain, mode, owner)
    return _fill(tensor, arr, gen.uniform(-bound, bound, arr.shape))


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """He normal: N(0, std^2), std = gain / sqrt(fan)."""
    owner = "kaiming_normal_"
    arr = _array(tensor, owner)
    gain, gen = _kaiming_gain(a, mode, nonlinearity, owner), resolve_rng(rng, owner=owner)
    if _empty(arr, owner):
        return tensor
    return _fill(tensor, arr, gen.normal(0.0, _kaiming_std(arr, gain, mode, owner), arr.shape))
