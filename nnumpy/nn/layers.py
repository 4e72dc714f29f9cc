"""Shape and regularisation layers: Flatten, Dropout and Dropout2d."""
from __future__ import annotations

import warnings

import numpy as np

from .. import functional as F
from .._checks import integer, real
from ..random import resolve_rng
from .module import Module, check_input

__all__ = ["Flatten", "Dropout", "Dropout2d"]


def _keep_mask(owner, mask, shapes, expected):
    """A given keep-mask as a bool array: a NumPy array of one of ``shapes``
    holding only 0 and 1 (or booleans), else a clear error."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{owner}: mask must be a NumPy array of 0s and 1s, got {type(mask).__name__}")
    if mask.shape not in shapes:
        raise ValueError(f"{owner}: mask has shape {mask.shape}, expected {expected}")
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in "iuf":
            raise TypeError(f"{owner}: mask must hold 0s and 1s (bool, integer or float), got dtype {mask.dtype}")
        with np.errstate(invalid="ignore"):
            bad = ~((mask == 0) | (mask == 1))
        if bad.any():
            raise ValueError(f"{owner}: mask must hold only 0 (drop) and 1 (keep), got {mask.reshape(-1)[bad.reshape(-1)][0].item()!r} "
                             f"at index {tuple(int(i) for i in np.argwhere(bad)[0])}")
    return mask != 0


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
        merged = 1
        for d in x.shape[s:e + 1]:
            merged *= d                    # not -1: reshape cannot infer it for an empty batch
        y = x.reshape(x.shape[:s] + (merged,) + x.shape[e + 1:])
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
        keep = None if mask is None else _keep_mask("Dropout", mask, (x.shape,), f"the input's shape {x.shape}")
        if not self.training or self.p == 0.0:          # a given mask is checked, and nothing is dropped
            self._save(mask=None, shape=x.shape, dtype=x.dtype)
            return x.copy()
        if keep is None:
            scaled = F.dropout_mask(x.shape, self.p, self.rng, x.dtype)
        else:
            scale = 0.0 if self.p >= 1.0 else 1.0 / (1.0 - self.p)
            scaled = keep.astype(x.dtype) * x.dtype.type(scale)
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


class Dropout2d(Module):
    """Channel dropout, PyTorch's ``nn.Dropout2d``: in training mode each
    channel of each sample is zeroed as a whole with probability p, and the
    kept ones are scaled by 1 / (1 - p)::

        y[n, c, ...] = x[n, c, ...] * m[n, c] / (1 - p),   m[n, c] ~ Bernoulli(1 - p)

    one draw per (sample, channel), broadcast over the spatial dimensions
    (neighbouring pixels of a feature map are strongly correlated, so
    dropping single pixels would hardly regularise a convolutional network).
    In evaluation mode ``y = x``.  Backward: ``dx = dy * m / (1 - p)``.

    Input: (N, C, H, W).  A 3-d input is treated as PyTorch 2.13 treats it:
    as (N, C, L), one draw per x[i, j, :], *not* as an unbatched (C, H, W)
    (PyTorch warns that this will change, and so does nnumpy); add the batch
    dimension, ``x[None]``, for channel dropout of a single (C, H, W) image.
    Other ranks are refused (PyTorch deprecates them).

    Cache: the scaled mask (N, C, 1, 1) (or (N, C, 1): N * C values; None in
    evaluation mode or with p = 0), and the input's shape and dtype.
    ``rng`` (an int seed or a Generator) makes the masks reproducible; with
    None the global generator of :mod:`nnumpy.random` is used.  ``mask=`` in
    :meth:`forward` supplies a given 0/1 keep-mask of shape (N, C) (or
    (N, C, 1, 1), (N, C, 1)) instead of drawing one, e.g. to reproduce
    another framework's mask.
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        self.p = real("p (the Dropout2d probability)", p, 0.0, 1.0, owner="Dropout2d")
        self.rng = resolve_rng(rng)

    def check_input(self, x):
        check_input(self, x)
        if x.ndim not in (3, 4):
            raise ValueError(f"Dropout2d expects input of shape (N, C, H, W) (or (N, C, L)), got a "
                             f"{x.ndim}-d input of shape {x.shape}; use Dropout for element-wise dropout")
        if x.ndim == 3:
            warnings.warn(f"Dropout2d: a 3-d input {x.shape} is taken as (N, C, L), one draw per "
                          f"x[i, j, :], as PyTorch 2.13 does, not as an unbatched (C, H, W) image; pass "
                          f"x[None] for channel dropout of one image", UserWarning, stacklevel=4)

    def forward(self, x, mask=None):
        self.check_input(x)
        noise = x.shape[:2] + (1,) * (x.ndim - 2)               # (N, C, 1, 1) or (N, C, 1)
        keep = None if mask is None else _keep_mask(
            "Dropout2d", mask, (x.shape[:2], noise),
            f"{x.shape[:2]} or {noise} (one value per sample and channel) for input {x.shape}")
        if not self.training or self.p == 0.0:          # a given mask is checked, and nothing is dropped
            self._save(mask=None, shape=x.shape, dtype=x.dtype)
            return x.copy()
        if keep is None:
            scaled = F.dropout2d_mask(x.shape, self.p, self.rng, x.dtype)
        else:
            scale = 0.0 if self.p >= 1.0 else 1.0 / (1.0 - self.p)
            scaled = keep.reshape(noise).astype(x.dtype) * x.dtype.type(scale)
        self._save(mask=scaled, shape=x.shape, dtype=x.dtype)
        return F.dropout2d_forward(x, scaled)

    def backward(self, dy):
        c = self._take_cache()
        self._check_dy(dy, c["shape"], c["dtype"])
        if c["mask"] is None:
            return dy.copy()
        return F.dropout2d_backward(dy, c["mask"])             # (N, C, H, W) * (N, C, 1, 1)

    def get_config(self):
        return {"p": self.p}

    def extra_repr(self):
        return f"p={self.p}"
