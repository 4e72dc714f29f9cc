"""Element-wise activations.  Each keeps the smallest thing its derivative
needs: ReLU and LeakyReLU a boolean mask (1 byte per element), Sigmoid and
Tanh their output.  Input and output have the same shape and dtype."""
from __future__ import annotations

from .. import functional as F
from .._checks import real
from .module import Module, check_input

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity"]




class ReLU(Module):
    """``y = max(x, 0)``; backward ``dx = dy * 1[x > 0]``.  Cache: mask (x's shape, bool)."""

    def forward(self, x):
        check_input(self, x)
        y, mask = F.relu_forward(x)
        self._save(mask=mask, dtype=x.dtype)
        return y

    def backward(self, dy):
        c = self._take_cache()
        self._check_dy(dy, c["mask"].shape, c["dtype"])
        return F.relu_backward(dy, c["mask"])                  # (x's shape)


class LeakyReLU(Module):
    """``y = x if x > 0 else negative_slope * x``; backward ``dx = dy * (1 or
    negative_slope)``.  Cache: mask (x's shape, bool)."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = real("negative_slope", negative_slope, owner="LeakyReLU")

    def forward(self, x):
        check_input(self, x)
        y, mask = F.leaky_relu_forward(x, self.negative_slope)
        self._save(mask=mask, dtype=x.dtype, slope=self.negative_slope)   # the forward's slope, for backward
        return y

    def backward(self, dy):
        c = self._take_cache()
        self._check_dy(dy, c["mask"].shape, c["dtype"])
        return F.leaky_relu_backward(dy, c["mask"], c["slope"])

    def get_config(self):
        return {"negative_slope": self.negative_slope}

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """``y = 1 / (1 + exp(-x))`` (overflow-free); backward ``dx = dy * y * (1 - y)``.
    Cache: y (x's shape)."""

    def forward(self, x):
        check_input(self, x)
        y = F.sigmoid(x)
        self._save(y=y)
        return y

    def backward(self, dy):
        y = self._take_cache()["y"]
        self._check_dy(dy, y.shape, y.dtype)
        return F.sigmoid_backward(dy, y)


class Tanh(Module):
    """``y = tanh(x)``; backward ``dx = dy * (1 - y^2)``.  Cache: y (x's shape)."""

    def forward(self, x):
        check_input(self, x)
        y = F.tanh_forward(x)
        self._save(y=y)
        return y

    def backward(self, dy):
        y = self._take_cache()["y"]
        self._check_dy(dy, y.shape, y.dtype)
        return F.tanh_backward(dy, y)


class Identity(Module):
    """``y = x``; ``dx = dy`` (a copy, so dx can be written to freely).
    Cache: only the input's shape and dtype, to check dy."""

    def forward(self, x):
        check_input(self, x)
        self._save(shape=x.shape, dtype=x.dtype)
        return x

    def backward(self, dy):
        c = self._take_cache()
        self._check_dy(dy, c["shape"], c["dtype"])
        return dy.copy()
