"""Normalisation layers: BatchNorm1d, BatchNorm2d, LayerNorm and GroupNorm.

Each standardises groups of values with their mean and (biased) variance,
then scales and shifts per feature; the mathematics and the backward passes
are in :mod:`nnumpy.functional.norm`.  They differ in what is grouped:

* batch norm: one channel over the whole batch (and space), so training
  couples the samples of a batch, and keeps running statistics for
  evaluation;
* layer norm: one sample's trailing dimensions;
* group norm: one sample's group of channels.

Parameters, buffers, state-dict keys and defaults are PyTorch's.  There is
no random initialisation (weight = 1, bias = 0): ``rng`` is accepted, and
unused, so that every layer with weights takes the same keyword arguments
(``dtype``, ``rng``, ``init``); ``init=False`` leaves every float array at
zero (for a state dict about to be loaded).
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .._checks import ArgumentTypeError, describe, flag, positive_int, real
from ..random import resolve_rng
from .module import Module, Parameter, as_float_dtype, check_input

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm"]


def _affine_params(module, shape, dt, weight, bias, init):
    """Register ``weight`` (ones) and ``bias`` (zeros) of ``shape``, or None."""
    fill = np.ones if init else np.zeros
    module.weight = Parameter(fill(shape, dt), copy=False) if weight else None
    module.bias = Parameter(np.zeros(shape, dt), copy=False) if bias else None


def _eps(owner, eps, positive):
    return real("eps", eps, 0.0, low_open=positive, owner=owner)


class _BatchNorm(Module):
    """Batch normalisation over x (N, C, *): the shared body of BatchNorm1d/2d.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel c, with
    mean and var over x[:, c, ...].

    * Training (``module.train()``): the batch's mean and biased variance
      normalise; with ``track_running_stats`` the buffers are updated in
      place: ``running = (1 - momentum) * running + momentum * batch`` (the
      running variance takes the *unbiased* batch variance), or with
      ``momentum=None`` the cumulative average, momentum = 1 /
      num_batches_tracked; num_batches_tracked counts the training batches.
      A training batch needs more than one value per channel (as PyTorch).
    * Evaluation (``module.eval()``): the running statistics normalise, and
      nothing is updated.  Without ``track_running_stats`` there are none,
      and the batch statistics are used in both modes (as PyTorch).

    Parameters (``affine=True``): ``weight`` (C,) ones, ``bias`` (C,) zeros
    (``bias=False``: no bias, as in PyTorch 2.13).  Buffers
    (``track_running_stats=True``): ``running_mean`` (C,) zeros,
    ``running_var`` (C,) ones in the model's dtype, ``num_batches_tracked``
    int64 0-d.  State dict: weight, bias, running_mean, running_var,
    num_batches_tracked, PyTorch's keys and order.

    The input's dtype must be the layer's (weights or buffers); a layer with
    neither (affine=False, track_running_stats=False) takes either float dtype.

    Cache: xhat (x's shape, x.nbytes bytes) and 1/sigma per channel (C
    values), plus the input's shape and dtype; in evaluation without
    ``affine`` only 1/sigma (backward then needs no xhat).
    """

    _NDIMS = ()
    _SHAPES = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=None, rng=None, init=True, *, bias=True):
        super().__init__()
        name = type(self).__name__
        self.num_features = positive_int("num_features", num_features, owner=name)
        self.eps = _eps(name, eps, positive=False)         # eps = 0 as PyTorch allows (a constant channel gives NaN)
        self.momentum = None if momentum is None else real("momentum", momentum, 0.0, 1.0, owner=name)
        self.affine = flag("affine", affine, owner=name)
        self.track_running_stats = flag("track_running_stats", track_running_stats, owner=name)
        bias = flag("bias", bias, owner=name)
        init = flag("init", init, owner=name)
        dt = as_float_dtype(dtype)
        resolve_rng(rng)                      # checked, not used: nothing is random here
        _affine_params(self, (self.num_features,), dt, self.affine, self.affine and bias, init)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dt))
            self.register_buffer("running_var", (np.ones if init else np.zeros)(self.num_features, dt))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def check_state_entry(self, name, value):
        """num_batches_tracked must be a whole number in [0, 2**62] (it divides
        the cumulative average); running_var must not be negative (its square
        root normalises in evaluation)."""
        v = np.asarray(value)
        if name == "num_batches_tracked":
            if v.dtype.kind not in "iuf":
                return f"the batch counter must be an integer, got dtype {v.dtype}"
            with np.errstate(invalid="ignore"):
                ok = bool(np.isfinite(v).all() and (v == np.floor(v)).all() and (v >= 0).all()
                          and (v <= 2 ** 62).all())
            if not ok:
                return f"the batch counter must be a whole number >= 0, got {v.item() if v.size == 1 else v}"
        elif name == "running_var" and v.dtype.kind in "iuf":
            with np.errstate(invalid="ignore"):
                negative = int((v < 0).sum())
            if negative:
                return f"{negative} running variance(s) are negative (at index {int(np.argmax(v < 0))})"
        return None

    def _state_dtype(self):
        if self.weight is not None:
            return self.weight.data.dtype
        return self.running_mean.dtype if self.track_running_stats else None

    def check_input(self, x):
        """Raise a clear error for input this layer cannot take."""
        check_input(self, x, self._state_dtype())
        name = type(self).__name__
        if x.ndim not in self._NDIMS:
            raise ValueError(f"{name}({self.num_features}) expects input of shape {self._SHAPES}, "
                             f"got a {x.ndim}-d input of shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}({self.num_features}) expects {self.num_features} channels "
                             f"(x.shape[1]), got input of shape {x.shape}")

    def forward(self, x):
        self.check_input(x)
        batch_stats = self.training or not self.track_running_stats   # PyTorch's rule
        update = self.training and self.track_running_stats
        w = self.weight.data if self.weight is not None else None
        b = self.bias.data if self.bias is not None else None
        if batch_stats and x.size == 0:
            raise ValueError(f"{type(self).__name__}: the input of shape {x.shape} is empty: a batch "
                             f"needs at least 2 values per channel for its statistics")
        y, (xhat, inv_std), new = F.batch_norm_forward(
            x, w, b, self.running_mean, self.running_var, training=batch_stats, momentum=self.momentum,
            eps=self.eps, num_batches_tracked=int(self.num_batches_tracked) if update else 0)
        if update:                            # in place: the buffers keep their identity
            self.running_mean[...] = new[0]
            self.running_var[...] = new[1]
            self.num_batches_tracked[...] = new[2]
        keep_xhat = batch_stats or w is not None
        self._save(xhat=xhat if keep_xhat else None, inv_std=inv_std, batch_stats=batch_stats,
                   shape=x.shape, dtype=x.dtype)
        return y

    def backward(self, dy):
        """dy (N, C, *) -> dx (N, C, *); adds dL/dweight and dL/dbias (C,) into
        their ``.grad``.  Training: the coupled formula of
        :func:`~nnumpy.functional.batch_norm_backward`; evaluation: ``dx = dy *
        weight / sqrt(running_var + eps)`` (:func:`~nnumpy.functional.batch_norm_eval_backward`)."""
        c = self._take_cache()
        self._check_dy(dy, c["shape"], c["dtype"])
        w = self.weight.data if self.weight is not None else None
        grads = F.batch_norm_backward if c["batch_stats"] else F.batch_norm_eval_backward
        dx, dgamma, dbeta = grads(dy, c["xhat"], c["inv_std"], w)   # (N, C, *), (C,), (C,)
        if self.weight is not None and self.weight.requires_grad:      # (frozen: left alone)
            self.weight.grad += dgamma
        if self.bias is not None and self.bias.requires_grad:
            self.bias.grad += dbeta
        return dx

    def get_config(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "track_running_stats": self.track_running_stats,
                "bias": self.bias is not None}

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    __doc__ = ("Batch normalisation of (N, C) or (N, C, L) input, PyTorch's ``nn.BatchNorm1d``: "
               "statistics per channel over N (and L).\n\n    " + _BatchNorm.__doc__)
    _NDIMS = (2, 3)
    _SHAPES = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    __doc__ = ("Batch normalisation of (N, C, H, W) input, PyTorch's ``nn.BatchNorm2d``: "
               "statistics per channel over N, H and W.\n\n    " + _BatchNorm.__doc__)
    _NDIMS = (4,)
    _SHAPES = "(N, C, H, W)"


def _normalized_shape(value):
    """normalized_shape as a non-empty tuple of positive ints (an int or a sequence)."""
    items = [value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        items = list(items)
    except TypeError:
        items = None
    if not items or isinstance(value, (str, bytes)):
        raise ArgumentTypeError(f"LayerNorm: normalized_shape must be a positive integer or a non-empty "
                                f"sequence of them (the trailing dimensions), got {describe(value)}")
    return tuple(positive_int(f"normalized_shape[{i}]", v, owner="LayerNorm") for i, v in enumerate(items))


class _PerSampleNorm(Module):
    """What LayerNorm and GroupNorm share: statistics of each sample alone (no
    running statistics, the same in training and evaluation) and an optional
    affine ``weight``/``bias``.  Subclasses give ``_normalize(x, w, b) -> (y,
    (xhat, inv_std))`` and ``_grads(dy, xhat, inv_std, w) -> (dx, dweight,
    dbias)``, their functional pair.  Cache: xhat (x.nbytes bytes) and
    1/sigma per standardised set, plus the input's shape and dtype."""

    def forward(self, x):
        self.check_input(x)
        w = self.weight.data if self.weight is not None else None
        b = self.bias.data if self.bias is not None else None
        y, (xhat, inv_std) = self._normalize(x, w, b)
        self._save(xhat=xhat, inv_std=inv_std, shape=x.shape, dtype=x.dtype)
        return y

    def backward(self, dy):
        """dy (x's shape) -> dx (x's shape); adds dL/dweight and dL/dbias into their ``.grad``:
        dx = (1/sigma) (g - mean(g) - xhat mean(g xhat)) with g = weight * dy, means over each set."""
        c = self._take_cache()
        self._check_dy(dy, c["shape"], c["dtype"])
        w = self.weight.data if self.weight is not None else None
        dx, dgamma, dbeta = self._grads(dy, c["xhat"], c["inv_std"], w)
        if self.weight is not None and self.weight.requires_grad:      # (frozen: left alone)
            self.weight.grad += dgamma
        if self.bias is not None and self.bias.requires_grad:
            self.bias.grad += dbeta
        return dx


class LayerNorm(_PerSampleNorm):
    """Layer normalisation, PyTorch's ``nn.LayerNorm``: each sample is
    standardised over its trailing dimensions ``normalized_shape`` (D1..Dk)
    with its own mean and biased variance, the same in training and
    evaluation (no running statistics)::

        y = (x - mean) / sqrt(var + eps) * weight + bias     x, y: (*, D1..Dk)

    Parameters (``elementwise_affine=True``): ``weight`` (D1..Dk) ones and,
    with ``bias=True``, ``bias`` (D1..Dk) zeros.  Backward:
    :func:`~nnumpy.functional.layer_norm_backward`.

    Cache: xhat (x's shape, x.nbytes bytes) and 1/sigma per sample
    (prod(*) values), plus the input's shape and dtype.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=None,
                 rng=None, init=True):
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps = _eps("LayerNorm", eps, positive=False)
        self.elementwise_affine = flag("elementwise_affine", elementwise_affine, owner="LayerNorm")
        bias = flag("bias", bias, owner="LayerNorm")
        init = flag("init", init, owner="LayerNorm")
        dt = as_float_dtype(dtype)
        resolve_rng(rng)                      # checked, not used
        _affine_params(self, self.normalized_shape, dt, self.elementwise_affine,
                       self.elementwise_affine and bias, init)

    def check_input(self, x):
        check_input(self, x, self.weight.data.dtype if self.weight is not None else None)
        k = len(self.normalized_shape)
        if x.shape[x.ndim - k:] != self.normalized_shape or x.ndim < k:
            want = ", ".join(map(str, self.normalized_shape))
            raise ValueError(f"LayerNorm({list(self.normalized_shape)}) expects input of shape (*, {want}), "
                             f"got {x.shape}")

    def _normalize(self, x, w, b):
        """(y, (xhat, inv_std)): x, y, xhat (*, D1..Dk); inv_std one per sample (prod(*))."""
        return F.layer_norm_forward(x, self.normalized_shape, w, b, self.eps)

    def _grads(self, dy, xhat, inv_std, w):
        """dy (*, D1..Dk) -> dx (*, D1..Dk), dL/dweight and dL/dbias (D1..Dk)."""
        return F.layer_norm_backward(dy, xhat, inv_std, w, self.normalized_shape)

    def get_config(self):
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, "bias": self.bias is not None}

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(_PerSampleNorm):
    """Group normalisation, PyTorch's ``nn.GroupNorm``: the C channels are
    split into ``num_groups`` groups of C/G consecutive channels, and each
    (sample, group) is standardised over its C/G * prod(*) values, the same
    in training and evaluation; then a per-channel scale and shift::

        y = (x - mean) / sqrt(var + eps) * weight_c + bias_c    x, y: (N, C, *)

    Parameters (``affine=True``): ``weight`` (C,) ones and, with ``bias=True``
    (keyword, as PyTorch 2.13), ``bias`` (C,) zeros.  Backward:
    :func:`~nnumpy.functional.group_norm_backward`.

    Cache: xhat (x's shape, x.nbytes bytes, held as (N, G, C/G * prod(*)))
    and 1/sigma per (sample, group) (N * G values), plus the input's shape
    and dtype.
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None, rng=None, init=True,
                 *, bias=True):
        super().__init__()
        self.num_groups = positive_int("num_groups", num_groups, owner="GroupNorm")
        self.num_channels = positive_int("num_channels", num_channels, owner="GroupNorm")
        if self.num_channels % self.num_groups:
            raise ValueError(f"GroupNorm: num_channels ({self.num_channels}) must be divisible by "
                             f"num_groups ({self.num_groups})")
        self.eps = _eps("GroupNorm", eps, positive=False)
        self.affine = flag("affine", affine, owner="GroupNorm")
        bias = flag("bias", bias, owner="GroupNorm")
        init = flag("init", init, owner="GroupNorm")
        dt = as_float_dtype(dtype)
        resolve_rng(rng)                      # checked, not used
        _affine_params(self, (self.num_channels,), dt, self.affine, self.affine and bias, init)

    def check_input(self, x):
        check_input(self, x, self.weight.data.dtype if self.weight is not None else None)
        head = f"GroupNorm({self.num_groups}, {self.num_channels})"
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"{head} expects input of shape (N, {self.num_channels}, *), got {x.shape}")
        if x.size == 0:
            raise ValueError(f"{head}: the input of shape {x.shape} is empty")
        if x.size // self.num_groups == 1:      # PyTorch refuses this one case too
            raise ValueError(f"{head}: the input of shape {x.shape} has a single value per group in the "
                             f"whole batch (Expected more than 1 value per channel, as PyTorch says)")

    def _normalize(self, x, w, b):
        """(y, (xhat, inv_std)): x, y (N, C, *), xhat as (N, G, C/G * prod(*)), inv_std (N, G)."""
        return F.group_norm_forward(x, self.num_groups, w, b, self.eps)

    def _grads(self, dy, xhat, inv_std, w):
        """dy (N, C, *) -> dx (N, C, *), dL/dweight and dL/dbias (C,)."""
        return F.group_norm_backward(dy, xhat, inv_std, w)

    def get_config(self):
        return {"num_groups": self.num_groups, "num_channels": self.num_channels, "eps": self.eps,
                "affine": self.affine, "bias": self.bias is not None}

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
