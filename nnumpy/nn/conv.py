"""The 2-d convolution layer."""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from .._checks import flag, positive_int
from ..functional import conv2d_geometry, conv2d_padding, pair
from ..random import resolve_rng
from .module import CheckedAttribute, Module, Parameter, as_float_dtype, check_input, grad_target

__all__ = ["Conv2d"]


class Conv2d(Module):
    """2-d convolution over (N, C, H, W) batches, PyTorch's ``nn.Conv2d``::

        y[n, o] = bias[o] + sum_{c in o's group} weight[o, c] (*) x[n, c]

    where (*) is the cross-correlation with the given stride, zero padding
    and dilation (see :mod:`nnumpy.functional.conv` for the formula).

    Arguments as PyTorch's: in_channels C, out_channels O, kernel_size
    (int or (KH, KW)), stride, padding (int, (ph, pw), "same" or "valid"),
    dilation, groups (dividing C and O), bias, padding_mode ("zeros" only).
    dtype, rng, init: as :class:`~nnumpy.nn.Linear`.

    Parameters: ``weight`` (O, C/groups, KH, KW) and ``bias`` (O,), both
    from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = C/groups * KH * KW,
    PyTorch's default (its kaiming_uniform with a = sqrt(5) gives exactly
    this bound for the weight), drawn in float64 and then cast.

    Input (N, C, H, W) -> output (N, O, Ho, Wo), with
    Ho = (H + 2 ph - dh (KH - 1) - 1) // sh + 1 (likewise Wo); an unbatched
    (C, H, W) input gives (O, Ho, Wo), as in PyTorch.
    Cache: the input x (by reference, not copied, unless it is not
    C-contiguous: do not write into it between forward and backward; it
    holds N*C*H*W*itemsize bytes, the layer adds nothing to it), its shape
    and the forward's (stride, padding, dilation, groups), which backward
    uses whatever is set on the layer meanwhile.  Backward rebuilds the
    windows from x, so the im2col copy (N*Ho*Wo*C*KH*KW elements) lives only
    during each pass; a ``Sequential`` on the numba backend that fuses this
    layer keeps the im2col matrix from forward to backward instead, where
    both passes use it (see :func:`nnumpy.backend.numba_conv.kept_cols_shape`).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=None, rng=None, init=True):
        super().__init__()
        own = "Conv2d"
        self.in_channels = positive_int("in_channels", in_channels, owner=own)
        self.out_channels = positive_int("out_channels", out_channels, owner=own)
        self.kernel_size = pair("kernel_size", kernel_size, owner=own)
        self.__dict__["_given"] = {"stride": pair("stride", stride, owner=own),
                                   "dilation": pair("dilation", dilation, owner=own)}
        self.groups = positive_int("groups", groups, owner=own)
        if self.in_channels % self.groups:
            raise ValueError(f"Conv2d: in_channels must be divisible by groups, got in_channels="
                             f"{self.in_channels} and groups={self.groups}")
        if self.out_channels % self.groups:
            raise ValueError(f"Conv2d: out_channels must be divisible by groups, got out_channels="
                             f"{self.out_channels} and groups={self.groups}")
        if padding_mode != "zeros":
            raise ValueError(f"Conv2d: only padding_mode='zeros' is supported, got {padding_mode!r} "
                             f"(PyTorch's 'reflect', 'replicate' and 'circular' are not implemented)")
        self.padding_mode = "zeros"
        self._set_geometry(padding=padding)
        bias = flag("bias", bias, owner=own)
        dt = as_float_dtype(dtype)
        kh, kw = self.kernel_size
        shapes = {"weight": (self.out_channels, self.in_channels // self.groups, kh, kw),
                  "bias": (self.out_channels,) if bias else None}
        if flag("init", init, owner=own):
            gen = resolve_rng(rng)
            bound = 1.0 / math.sqrt(self.in_channels // self.groups * kh * kw)      # 1 / sqrt(fan_in)
            draw = {k: gen.uniform(-bound, bound, s).astype(dt) for k, s in shapes.items() if s is not None}
        else:                      # to be overwritten (nnumpy.load): no draw, no memory touched yet
            draw = {k: np.zeros(s, dt) for k, s in shapes.items() if s is not None}
        self.weight = Parameter(draw["weight"], copy=False)
        self.bias = Parameter(draw["bias"], copy=False) if bias else None

    # checked whenever set, also after construction; the layer computes from stride, _pad, dilation
    stride = CheckedAttribute("_set_geometry")
    padding = CheckedAttribute("_set_geometry")
    dilation = CheckedAttribute("_set_geometry")

    def _set_geometry(self, **changes):
        """Set stride, padding and/or dilation (as given) after checking them together."""
        own = "Conv2d"
        given = dict(self.__dict__["_given"], **changes)
        stride, dilation = pair("stride", given["stride"], owner=own), pair("dilation", given["dilation"], owner=own)
        # padding as PyTorch keeps it: (ph, pw), or the string; _pad is the normalised form
        pad = conv2d_padding(given["padding"], self.kernel_size, stride, dilation, owner=own, asymmetric=False)
        padding = given["padding"] if isinstance(given["padding"], str) else (pad[0][0], pad[1][0])
        self.__dict__["_given"] = {"stride": stride, "dilation": dilation, "padding": padding}
        self.__dict__["_pad"] = pad

    def _expected(self):
        return f"(N, {self.in_channels}, H, W) or ({self.in_channels}, H, W)"

    def check_input(self, x):
        """Raise a clear error for input this layer cannot take: not a float
        array of the weights' dtype, not (N, C, H, W) or (C, H, W) with C =
        in_channels, or smaller than the (dilated) kernel after padding."""
        check_input(self, x, self.weight.data.dtype)
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(f"{self.short_repr()} expects input of shape {self._expected()}, got {x.shape}")
        if min(x.shape[-3:]) == 0:                                 # an empty batch is fine, as in PyTorch
            raise ValueError(f"{self.short_repr()} got an input of shape {x.shape} with an empty channel, "
                             f"height or width dimension")
        x4 = x.shape if x.ndim == 4 else (1,) + x.shape
        # the geometry of the last input shape is kept: a training loop asks for the same one every step
        key = (x4, self.weight.shape, self.stride, self._pad, self.dilation, self.groups)
        memo = self.__dict__.get("_geometry_memo")
        if memo is not None and memo[0] == key:
            return memo[1]
        geo = conv2d_geometry(x4, self.weight.shape, self.stride, self._pad, self.dilation, self.groups,
                              owner=self.short_repr())
        self.__dict__["_geometry_memo"] = (key, geo)
        return geo

    def short_repr(self):
        return f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size})"

    def forward(self, x):
        self.check_input(x)
        x4 = np.ascontiguousarray(x if x.ndim == 4 else x[None])    # (N, C, H, W); no copy when contiguous
        b = self.bias.data if self.bias is not None else None
        hyper = (self.stride, self._pad, self.dilation, self.groups)      # backward uses these, whatever is set since
        y = backend.ops().conv2d_act_forward(x4, self.weight.data, b, *hyper, "identity")
        self._save(x=x4, in_shape=x.shape, hyper=hyper)
        return y if x.ndim == 4 else y[0]                            # (N, O, Ho, Wo) or (O, Ho, Wo)

    def backward(self, dy, input_grad=True):
        """dy (N, O, Ho, Wo) -> dx (N, C, H, W) (unbatched: without N); adds dW
        and db into the parameters' gradients.  With ``input_grad=False`` only
        those are computed and None is returned (saves the col2im)."""
        cache = self._take_cache()
        x, in_shape, hyper = cache["x"], cache["in_shape"], cache["hyper"]     # x: (N, C, H, W)
        ho, wo = conv2d_geometry(x.shape, self.weight.shape, *hyper).out_size
        out_shape = (x.shape[0], self.out_channels, ho, wo)
        self._check_dy(dy, out_shape if len(in_shape) == 4 else out_shape[1:], x.dtype)
        dy4 = dy if dy.ndim == 4 else dy[None]
        gW, acc_w = grad_target(self.weight)            # (None for a frozen parameter: not computed)
        gb, acc_b = grad_target(self.bias)
        # gb (+)= sum of dy over N, Ho, Wo; gW (+)= correlation of x with dy; dx = col2im(dy @ W)
        dx = backend.ops().conv2d_act_backward(
            np.ascontiguousarray(dy4), x, self.weight.data, None, gW, gb, *hyper, "identity", 0.0,
            need_dx=bool(input_grad), acc_w=acc_w, acc_b=acc_b)
        if not input_grad:
            return None
        return dx.reshape(in_shape)

    def get_config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
                "dilation": list(self.dilation), "groups": self.groups, "bias": self.bias is not None,
                "padding_mode": self.padding_mode}

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
