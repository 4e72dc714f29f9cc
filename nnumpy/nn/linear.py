"""The fully connected layer."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .._checks import flag, positive_int
from ..random import resolve_rng
from .module import Module, Parameter, as_float_dtype, check_input

__all__ = ["Linear"]


class Linear(Module):
    """``y = x @ W.T + b``, PyTorch's ``nn.Linear``.

    Parameters: ``weight`` (out_features, in_features) and ``bias``
    (out_features,), both initialised from U(-1/sqrt(in), 1/sqrt(in)) like
    PyTorch's default (kaiming_uniform with a = sqrt(5) gives exactly this
    bound for the weight).  Draws are made in float64 and then cast, so a
    float32 and a float64 layer from the same seed hold the same numbers.
    ``init=False`` skips the draw and leaves the weights at zero (for a
    state dict about to be loaded: :func:`nnumpy.load` uses it).

    Input (*, in_features) -> output (*, out_features).
    Cache: the input x, reshaped to (N, in_features) where N is the product
    of the leading dimensions (dW needs it; W is the layer's own weight), and
    the input's shape.  The input is kept by reference, not copied: do not
    write into it between forward and backward.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None, rng=None, init=True):
        super().__init__()
        self.in_features = positive_int("in_features", in_features, owner="Linear")
        self.out_features = positive_int("out_features", out_features, owner="Linear")
        bias = flag("bias", bias, owner="Linear")
        dt = as_float_dtype(dtype)
        shapes = {"weight": (self.out_features, self.in_features), "bias": (self.out_features,) if bias else None}
        if flag("init", init, owner="Linear"):
            gen = resolve_rng(rng)
            bound = 1.0 / math.sqrt(self.in_features)
            draw = {k: gen.uniform(-bound, bound, s).astype(dt) for k, s in shapes.items() if s is not None}
        else:                      # to be overwritten (nnumpy.load): no draw, no memory touched yet
            draw = {k: np.zeros(s, dt) for k, s in shapes.items() if s is not None}
        self.weight = Parameter(draw["weight"], copy=False)
        self.bias = Parameter(draw["bias"], copy=False) if bias else None

    def check_input(self, x):
        """Raise a clear error for input this layer cannot take."""
        check_input(self, x, self.weight.data.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) expects input of shape "
                             f"(N, {self.in_features}), got {x.shape}")

    def forward(self, x):
        self.check_input(x)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)                        # (N, in)
        b = self.bias.data if self.bias is not None else None
        y = F.linear_forward(x2, self.weight.data, b)               # (N, out)
        self._save(x=x2, in_shape=x.shape)
        return y.reshape(lead + (self.out_features,))

    def backward(self, dy, input_grad=True):
        """dy (*, out) -> dx (*, in); with ``input_grad=False`` only the parameter
        gradients are computed and None is returned (the input needs no gradient,
        e.g. the data entering the first layer: this saves the GEMM dy @ W)."""
        cache = self._take_cache()
        x, in_shape = cache["x"], cache["in_shape"]                 # x: (N, in)
        self._check_dy(dy, in_shape[:-1] + (self.out_features,), x.dtype)
        if self.weight.data.shape != (self.out_features, x.shape[1]):
            raise ValueError(f"Linear.backward: the weight has shape {self.weight.data.shape}, but forward ran "
                             f"with {x.shape[1]} input features and {self.out_features} outputs: was the weight "
                             f"replaced between forward and backward?")
        dy2 = dy.reshape(-1, self.out_features)                     # (N, out)
        # dx = dy @ W (N, in); dW = dy.T @ x (out, in); db = sum_n dy (out,)
        # (a frozen parameter, requires_grad False, gets no gradient work)
        w_on = self.weight.requires_grad
        b_on = self.bias is not None and self.bias.requires_grad
        dx, dW, db = F.linear_backward(dy2, x, self.weight.data, need_bias=b_on, need_dx=input_grad,
                                       need_weight=w_on)
        if w_on:
            self.weight.grad += dW
        if b_on:
            self.bias.grad += db
        return dx.reshape(in_shape) if input_grad else None

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None}

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
