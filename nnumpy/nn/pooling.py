"""2-d pooling layers: max, average and adaptive average, as PyTorch's.

Each takes (N, C, H, W) or an unbatched (C, H, W) input (as PyTorch) and
pools every (n, c) plane separately; none has parameters.  The formulas
and the output size are in :mod:`nnumpy.functional.pool`.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from .._checks import ArgumentTypeError, describe, flag, integer
from ..functional.pool import adaptive_output_size, pool2d_output_size, pool2d_params
from .module import CheckedAttribute, Module, check_input

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]


def _as_given(value, normalised):
    """A hyper-parameter as PyTorch keeps it: an int if one was given, else a
    tuple; made of the checked Python ints in ``normalised`` (h, w)."""
    return tuple(normalised) if isinstance(value, (tuple, list)) else normalised[0]


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _pool_input(module, x):
    """Check a pooling input (float array, (N, C, H, W) or (C, H, W), no empty
    dimension but the batch) and return it as a C-contiguous 4-d array."""
    check_input(module, x)
    if x.ndim not in (3, 4):
        raise ValueError(f"{type(module).__name__} expects input of shape (N, C, H, W) or (C, H, W), "
                         f"got {x.shape}")
    if min(x.shape[-3:]) == 0:                                     # an empty batch is fine, as in PyTorch
        raise ValueError(f"{type(module).__name__} got an input of shape {x.shape} with an empty channel, "
                         f"height or width dimension")
    return np.ascontiguousarray(x if x.ndim == 4 else x[None])


class _Pool2d(Module):
    """What the fixed-window pools share: hyper-parameters kept as given (an
    int or a tuple, PyTorch's attributes) and normalised to pairs."""

    # checked whenever set, also after construction; the layer computes from _k, _s, _p, _d
    kernel_size = CheckedAttribute("_set_hyper")
    stride = CheckedAttribute("_set_hyper")
    padding = CheckedAttribute("_set_hyper")

    def _setup(self, kernel_size, stride, padding, dilation, ceil_mode):
        self._set_hyper(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
        self.ceil_mode = flag("ceil_mode", ceil_mode, owner=type(self).__name__)

    def _set_hyper(self, **changes):
        """Set hyper-parameters (as given) after checking all of them together."""
        given = dict(self.__dict__.get("_given", {}), **changes)
        k, s, p, d = pool2d_params(given["kernel_size"], given["stride"], given["padding"],
                                   given.get("dilation", 1), owner=type(self).__name__)
        kernel = _as_given(given["kernel_size"], k)
        stride = given["stride"]
        no_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)   # torch's "default"
        self.__dict__["_given"] = {"kernel_size": kernel, "stride": kernel if no_stride else _as_given(stride, s),
                                   "padding": _as_given(given["padding"], p),
                                   "dilation": _as_given(given.get("dilation", 1), d)}
        self.__dict__.update(_k=k, _s=s, _p=p, _d=d)

    def _out_size(self, x4):
        return pool2d_output_size(x4.shape[2:], self._k, self._s, self._p, self._d, self.ceil_mode,
                                  owner=f"{type(self).__name__}({self.extra_repr()})")

    def _take(self, dy):
        """The cache, with dy checked against forward's output and made 4-d."""
        c = self._take_cache()
        self._check_dy(dy, c["out_shape"], c["dtype"])
        return c, np.ascontiguousarray(dy if dy.ndim == 4 else dy[None])


class MaxPool2d(_Pool2d):
    """``y[n, c, i, j] = max over window (i, j) of x[n, c]`` (padding counts as -inf),
    PyTorch's ``nn.MaxPool2d`` with its arguments and defaults (stride None
    means kernel_size; padding at most half the kernel).

    Backward routes dy to each window's arg-max: ``dx.flat[index] += dy``,
    summed where overlapping windows share a maximum.
    ``return_indices=True``: forward returns ``(y, indices)``, the int64 flat
    position h * W + w of each maximum in its plane, as PyTorch (backward
    still takes dy alone).
    Cache: the indices (int64, the output's shape: 8 bytes per output
    element) and the input's shape.
    """

    dilation = CheckedAttribute("_set_hyper")

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self._setup(kernel_size, stride, padding, dilation, ceil_mode)
        self.return_indices = flag("return_indices", return_indices, owner="MaxPool2d")

    def forward(self, x):
        x4 = _pool_input(self, x)
        self._out_size(x4)                                           # a clear error for a too-small input
        y, idx = backend.ops().max_pool2d_forward(x4, self._k, self._s, self._p, self._d, self.ceil_mode)
        if x.ndim == 3:
            y, idx = y[0], idx[0]
        self._save(indices=idx, in_shape=x.shape, out_shape=y.shape, dtype=x.dtype)
        return (y, idx) if self.return_indices else y

    def backward(self, dy):
        c, dy4 = self._take(dy)
        idx = c["indices"] if len(c["in_shape"]) == 4 else c["indices"][None]
        in4 = c["in_shape"] if len(c["in_shape"]) == 4 else (1,) + c["in_shape"]
        return backend.ops().max_pool2d_backward(dy4, idx, in4).reshape(c["in_shape"])

    def get_config(self):
        return {"kernel_size": _jsonable(self.kernel_size), "stride": _jsonable(self.stride),
                "padding": _jsonable(self.padding), "dilation": _jsonable(self.dilation),
                "return_indices": self.return_indices, "ceil_mode": self.ceil_mode}

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(_Pool2d):
    """``y[n, c, i, j] = (sum over window (i, j) of x[n, c]) / d``, PyTorch's
    ``nn.AvgPool2d``: padding counts as zeros; d is the window's size with
    its padding (``count_include_pad``, default) or without, or
    ``divisor_override``.  Backward: every input of window (i, j) receives
    ``dy[i, j] / d``.  Cache: only the input's shape (and dtype).
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self._setup(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = flag("count_include_pad", count_include_pad, owner="AvgPool2d")
        if divisor_override is not None:
            divisor_override = integer("divisor_override", divisor_override, owner="AvgPool2d")
            if divisor_override == 0:
                raise ValueError("AvgPool2d: divisor_override must not be 0 (None divides by the window size)")
        self.divisor_override = divisor_override

    def _args(self):
        return self._k, self._s, self._p, self.ceil_mode, self.count_include_pad, self.divisor_override

    def forward(self, x):
        x4 = _pool_input(self, x)
        self._out_size(x4)
        args = self._args()                             # backward uses these, whatever is set since
        y = F.avg_pool2d_forward(x4, *args)
        y = y if x.ndim == 4 else y[0]
        self._save(in_shape=x.shape, out_shape=y.shape, dtype=x.dtype, args=args)
        return y

    def backward(self, dy):
        c, dy4 = self._take(dy)
        in4 = c["in_shape"] if len(c["in_shape"]) == 4 else (1,) + c["in_shape"]
        return F.avg_pool2d_backward(dy4, in4, *c["args"]).reshape(c["in_shape"])

    def get_config(self):
        return {"kernel_size": _jsonable(self.kernel_size), "stride": _jsonable(self.stride),
                "padding": _jsonable(self.padding), "ceil_mode": self.ceil_mode,
                "count_include_pad": self.count_include_pad, "divisor_override": self.divisor_override}

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, PyTorch's ``nn.AdaptiveAvgPool2d``:
    output row i averages input rows floor(i H / Ho) ... ceil((i + 1) H / Ho) - 1
    (likewise for columns), so any input size gives (Ho, Wo).

    output_size: an int, or a pair of ints or None (None keeps that input size).
    Backward: every input of bin (i, j) receives dy[i, j] / |bin|, summed
    over the bins that hold it.  Cache: only the input's shape (and dtype).
    """

    def __init__(self, output_size):
        super().__init__()
        if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
            output_size = tuple(None if v is None else integer(f"output_size[{i}]", v, low=1, owner="AdaptiveAvgPool2d")
                                for i, v in enumerate(output_size))
        elif isinstance(output_size, (tuple, list, bool, np.bool_)) or output_size is None:
            raise ArgumentTypeError(f"AdaptiveAvgPool2d: output_size must be an integer or a pair (h, w) of "
                                    f"integers or None, got {describe(output_size)}")
        else:
            output_size = integer("output_size", output_size, low=1, owner="AdaptiveAvgPool2d")
        self.output_size = output_size

    def forward(self, x):
        x4 = _pool_input(self, x)
        out = adaptive_output_size(self.output_size, x4.shape[2:], owner="AdaptiveAvgPool2d")
        y = F.adaptive_avg_pool2d_forward(x4, out)
        y = y if x.ndim == 4 else y[0]
        self._save(in_shape=x.shape, out_shape=y.shape, out=out, dtype=x.dtype)
        return y

    def backward(self, dy):
        c = self._take_cache()
        self._check_dy(dy, c["out_shape"], c["dtype"])
        dy4 = dy if dy.ndim == 4 else dy[None]
        in4 = c["in_shape"] if len(c["in_shape"]) == 4 else (1,) + c["in_shape"]
        return F.adaptive_avg_pool2d_backward(dy4, in4, c["out"]).reshape(c["in_shape"])

    def get_config(self):
        return {"output_size": _jsonable(self.output_size)}

    def extra_repr(self):
        return f"output_size={self.output_size}"
