"""Shape and regularisation layers: Flatten and Dropout."""
from __future__ import annotations

from .. import functional as F
from .._checks import integer, real
from ..random import resolve_rng
from .module import Module, check_input

__all__ = ["Flatten", "Dropout"]


class Flatten(Module):
    """Merge dimensions ``start_dim..end_dim`` into one, as ``torch.nn.Flatten``
    (default: (N, 28, 28) -> (N, 784)).  Backward reshapes dy back to the
    input's shape: ``dx = dy.reshape(x.shape)``.  Cache: the input's shape."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = integer("start_dim", start_dim, owner="Flatten")
        self.end_dim = integer("end_dim", end_dim, owner="Flatten")

    def forward(self, x):
        check_input(self, x)
        nd = x.ndim
        s = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        e = self.end_dim + nd if self.end_dim < 0 else self.end_dim
        if not (0 <= s < max(nd, 1) and 0 <= e < max(nd, 1) and s <= e):
            raise ValueError(f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}) cannot "
                             f"flatten an input of shape {x.shape}")
        shape = x.shape[:s] + (-1,) + x.shape[e + 1:]
        y = x.reshape(shape)
        self._save(shape=x.shape, out_shape=y.shape, dtype=x.dtype)
        return y

    def backward(self, dy):
        c = self._take_cache()
        self._check_dy(dy, c["out_shape"], c["dtype"])
        return dy.reshape(c["shape"])

    def get_config(self):
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Inverted dropout: in training mode ``y = x * m / (1 - p)`` with each
    ``m_i ~ Bernoulli(1 - p)``; in evaluation mode ``y = x``.

    Backward: ``dx = dy * m / (1 - p)`` (the same scaled mask).
    Cache: the scaled mask (x's shape; None in eval mode).
    ``rng`` (an int seed or a Generator) makes the masks reproducible; with
    None the global generator of :mod:`nnumpy.random` is used.  ``mask=`` in
    :meth:`forward` supplies a given 0/1 keep-mask instead of drawing one
    (to reproduce another framework's mask).
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        self.p = real("p (the Dropout probability)", p, 0.0, 1.0, owner="Dropout")
        self.rng = resolve_rng(rng)

    def forward(self, x, mask=None):
        check_input(self, x)
        if not self.training or self.p == 0.0:
            self._save(mask=None, shape=x.shape, dtype=x.dtype)
            return x.copy()
        if mask is None:
            scaled = F.dropout_mask(x.shape, self.p, self.rng, x.dtype)
        else:
            if mask.shape != x.shape:
                raise ValueError(f"Dropout: mask has shape {mask.shape}, input {x.shape}")
            scale = 0.0 if self.p >= 1.0 else 1.0 / (1.0 - self.p)
            scaled = (mask != 0).astype(x.dtype) * x.dtype.type(scale)
        self._save(mask=scaled, shape=x.shape, dtype=x.dtype)
        return F.dropout_forward(x, scaled)

    def backward(self, dy):
        c = self._take_cache()
        self._check_dy(dy, c["shape"], c["dtype"])
        if c["mask"] is None:
            return dy.copy()
        return F.dropout_backward(dy, c["mask"])

    def get_config(self):
        return {"p": self.p}

    def extra_repr(self):
        return f"p={self.p}"
