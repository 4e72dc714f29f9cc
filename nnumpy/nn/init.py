"""Initialisers with PyTorch's names, formulas and fan rules (``torch.nn.init``).

Each ``*_`` function fills a :class:`~nnumpy.nn.Parameter` (its ``.data``)
or a float NumPy array **in place** and returns it; the numbers are drawn in
float64 from a NumPy generator (``rng``: None for nnumpy's global generator,
see :func:`nnumpy.manual_seed`, an int seed or a ``numpy.random.Generator``)
and then cast to the array's dtype, so the same seed gives the same weights.

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


def uniform_(tensor, a=0.0, b=1.0, rng=None):
    """Fill with draws from U(a, b) (a <= b)."""
    arr = _array(tensor, "uniform_")
    a, b = _number("a", a, "uniform_"), _number("b", b, "uniform_")
    if a > b:
        raise ValueError(f"uniform_: a must be at most b, got a={a} and b={b}")
    return _fill(tensor, arr, resolve_rng(rng).uniform(a, b, arr.shape))


def normal_(tensor, mean=0.0, std=1.0, rng=None):
    """Fill with draws from N(mean, std^2) (std >= 0)."""
    arr = _array(tensor, "normal_")
    mean, std = _number("mean", mean, "normal_"), _number("std", std, "normal_")
    if std < 0:
        raise ValueError(f"normal_: std must be at least 0, got {std}")
    return _fill(tensor, arr, resolve_rng(rng).normal(mean, std, arr.shape))


def constant_(tensor, val):
    """Fill with ``val``."""
    arr = _array(tensor, "constant_")
    return _fill(tensor, arr, _number("val", val, "constant_"))


def zeros_(tensor):
    """Fill with 0."""
    return _fill(tensor, _array(tensor, "zeros_"), 0.0)


def ones_(tensor):
    """Fill with 1."""
    return _fill(tensor, _array(tensor, "ones_"), 1.0)


def _xavier_std(arr, gain, owner):
    fan_in, fan_out = _fans(arr, owner)
    return _number("gain", gain, owner) * math.sqrt(2.0 / (fan_in + fan_out))


def xavier_uniform_(tensor, gain=1.0, rng=None):
    """Glorot uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    arr = _array(tensor, "xavier_uniform_")
    if _empty(arr, "xavier_uniform_"):
        return tensor
    bound = math.sqrt(3.0) * _xavier_std(arr, gain, "xavier_uniform_")
    return _fill(tensor, arr, resolve_rng(rng).uniform(-bound, bound, arr.shape))


def xavier_normal_(tensor, gain=1.0, rng=None):
    """Glorot normal: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    arr = _array(tensor, "xavier_normal_")
    if _empty(arr, "xavier_normal_"):
        return tensor
    return _fill(tensor, arr, resolve_rng(rng).normal(0.0, _xavier_std(arr, gain, "xavier_normal_"), arr.shape))


def _kaiming_std(arr, a, mode, nonlinearity, owner):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{owner}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(arr, owner)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """He uniform: U(-b, b), b = sqrt(3) * gain / sqrt(fan); ``a`` is the leaky ReLU's
    negative slope (0: ReLU's gain sqrt(2)).  ``Linear`` and ``Conv2d`` default to
    ``a = sqrt(5)``, which gives b = 1 / sqrt(fan_in), as in PyTorch."""
    arr = _array(tensor, "kaiming_uniform_")
    if _empty(arr, "kaiming_uniform_"):
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(arr, a, mode, nonlinearity, "kaiming_uniform_")
    return _fill(tensor, arr, resolve_rng(rng).uniform(-bound, bound, arr.shape))


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """He normal: N(0, std^2), std = gain / sqrt(fan)."""
    arr = _array(tensor, "kaiming_normal_")
    if _empty(arr, "kaiming_normal_"):
        return tensor
    std = _kaiming_std(arr, a, mode, nonlinearity, "kaiming_normal_")
    return _fill(tensor, arr, resolve_rng(rng).normal(0.0, std, arr.shape))
