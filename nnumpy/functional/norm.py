"""Normalisation and channel dropout: batch, layer and group normalisation,
and dropout of whole channels (Dropout2d).

All three normalisations share one shape of computation.  A set S of m
values (a channel over the batch, a sample's trailing dimensions, a group of
channels in one sample) is standardised with its own mean and *biased*
variance, then scaled and shifted per feature::

    mu = (1/m) sum_{i in S} x_i          var = (1/m) sum_{i in S} (x_i - mu)^2
    sigma = sqrt(var + eps)              xhat_i = (x_i - mu) / sigma
    y_i = gamma * xhat_i + beta

and share one backward (derived in :func:`batch_norm_backward`): with
g_i = dL/dxhat_i = gamma * dy_i,

    dx_i = (1/sigma) * (g_i - mean_S(g) - xhat_i * mean_S(g * xhat))

Each forward returns the output and what backward needs (xhat and
1/sigma); nothing here mutates its arguments.  ``N`` is the batch size,
``C`` the number of channels (features), ``*`` any spatial dimensions.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "batch_norm_forward", "batch_norm_backward", "batch_norm_eval_backward",
    "layer_norm_forward", "layer_norm_backward",
    "group_norm_forward", "group_norm_backward",
    "dropout2d_mask", "dropout2d_forward", "dropout2d_backward",
]


def _channel_axes(ndim):
    """The axes batch norm reduces over for x (N, C, *): every axis but 1."""
    return (0,) + tuple(range(2, ndim))


def _per_channel(v, ndim):
    """A (C,) vector as (1, C, 1, ..., 1), to broadcast against x (N, C, *)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _standardise(x, axes, eps):
    """xhat = (x - mu) / sqrt(var + eps) over ``axes``, two-pass (the centred
    values are squared, so no cancellation as in E[x^2] - E[x]^2).  Returns
    xhat (x's shape), mu and 1/sigma (x's shape with ``axes`` kept as 1) and
    the biased variance (same shape)."""
    mu = x.mean(axis=axes, keepdims=True)
    xhat = x - mu                                  # a new array: centred in place below
    var = np.mean(xhat * xhat, axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat *= inv_std
    return xhat, mu, inv_std, var


def _standardise_backward(g, xhat, inv_std, axes):
    """dx = inv_std * (g - mean(g) - xhat * mean(g * xhat)), means over ``axes``;
    g = dL/dxhat and xhat of x's shape, inv_std broadcastable (axes kept as 1)."""
    m = xhat.size // inv_std.size                  # values per standardised set
    mean_g = g.sum(axis=axes, keepdims=True) / m
    mean_gx = (g * xhat).sum(axis=axes, keepdims=True) / m
    return inv_std * (g - mean_g - xhat * mean_gx)


# ---------------------------------------------------------------------------
# Batch normalisation: statistics per channel, over the batch (and space)
# ---------------------------------------------------------------------------
def batch_norm_forward(x, gamma, beta, running_mean=None, running_var=None, training=True,
                       momentum=0.1, eps=1e-5, num_batches_tracked=0):
    """Batch normalisation of x (N, C, *) per channel, as ``torch.nn.functional.batch_norm``.

    x: (N, C) or (N, C, L) (BatchNorm1d) or (N, C, H, W) (BatchNorm2d); any
    number of trailing dimensions works.  The statistics of channel c are
    taken over the m = N * prod(*) values x[:, c, ...].  gamma, beta: (C,) or
    None (no scale: 1, no shift: 0).  running_mean, running_var: (C,) or None.

    training=True: normalise with the batch mean mu_c and the *biased*
    batch variance var_c (divide by m).  If running statistics are given,
    return them updated (they are not modified), PyTorch's rule, with the
    *unbiased* variance (divide by m - 1)::

        f = momentum              (exponential moving average), or
        f = 1 / (num_batches_tracked + 1)   when momentum is None
                                  (cumulative average of every batch so far)
        new_mean = (1 - f) * running_mean + f * mu
        new_var  = (1 - f) * running_var  + f * var * m / (m - 1)

    Training needs m >= 2 (one value per channel has no variance: PyTorch
    refuses it too) and no empty batch.

    training=False: normalise with the running statistics (both required):
    xhat = (x - running_mean) / sqrt(running_var + eps).

    y = gamma * xhat + beta, x's shape.  Returns ``(y, (xhat, inv_std),
    new_stats)``: xhat (x's shape) and inv_std = 1/sqrt(var + eps) (C,) are
    what the backward passes need; new_stats is ``(new_mean, new_var,
    num_batches_tracked + 1)`` when training with running statistics, else None.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm_forward expects x of shape (N, C, *), got shape {x.shape}")
    axes, nd = _channel_axes(x.ndim), x.ndim
    m = x.size // x.shape[1] if x.shape[1] else 0     # values per channel
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm_forward: evaluation (training=False) normalises with the "
                             "running statistics; pass running_mean and running_var")
        inv_std = 1.0 / np.sqrt(running_var + eps)                         # (C,)
        xhat = (x - _per_channel(running_mean, nd)) * _per_channel(inv_std, nd)
        new_stats = None
    else:
        if m <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input of "
                             f"shape {x.shape} ({m} value(s) per channel: the batch statistics of a "
                             f"channel need at least 2)")
        xhat, mu, inv_std, var = _standardise(x, axes, eps)   # mu, inv_std, var: (1, C, 1, ...)
        mu, inv_std, var = mu.reshape(-1), inv_std.reshape(-1), var.reshape(-1)          # (C,)
        new_stats = None
        if running_mean is not None and running_var is not None:
            f = 1.0 / (num_batches_tracked + 1) if momentum is None else momentum
            new_mean = (1.0 - f) * running_mean + f * mu
            new_var = (1.0 - f) * running_var + f * (var * (m / (m - 1)))        # unbiased
            new_stats = (new_mean.astype(running_mean.dtype, copy=False),
                         new_var.astype(running_var.dtype, copy=False), num_batches_tracked + 1)
    y = xhat * _per_channel(gamma, nd) if gamma is not None else xhat.copy()
    if beta is not None:
        y += _per_channel(beta, nd)
    return y, (xhat, inv_std), new_stats


def batch_norm_backward(dy, xhat, inv_std, gamma):
    """Gradients of batch normalisation in training mode (batch statistics).

    dy, xhat: (N, C, *); inv_std = 1/sigma: (C,); gamma: (C,) or None (1).
    Returns dx (N, C, *), dgamma (C,), dbeta (C,).

    Per channel, over its m values i (every sample and position):

        dbeta  = sum_i dy_i                       (N, C, *) -> (C,)
        dgamma = sum_i dy_i * xhat_i              (N, C, *) -> (C,)
        dx_j   = (gamma / sigma) * (dy_j - mean_i(dy_i) - xhat_j * mean_i(dy_i * xhat_i))
               = (gamma / sigma) * (dy_j - dbeta / m - xhat_j * dgamma / m)

    Why every sample of the batch is coupled: mu and sigma are computed from
    all m values of the channel, so each output xhat_i depends on every
    input x_j, not on x_i alone; the Jacobian is dense within a channel.
    With d mu / d x_j = 1/m and d sigma / d x_j = (x_j - mu) / (m sigma)
    (the derivative of var is 2 (x_j - mu) / m; the mu term drops because
    the centred values sum to 0)::

        d xhat_i / d x_j = (delta_ij - 1/m - xhat_i * xhat_j / m) / sigma

    and with g_i = dL/dxhat_i = gamma * dy_i the chain rule sums over i::

        dx_j = sum_i g_i d xhat_i / d x_j = (1/sigma) (g_j - mean(g) - xhat_j mean(g xhat))

    That is g with its components along 1 and along xhat removed (divided by
    sigma): shifting a channel's inputs or scaling them about their mean
    leaves xhat unchanged, so those directions get no gradient.
    """
    axes, nd = _channel_axes(dy.ndim), dy.ndim
    m = dy.size // dy.shape[1]
    dbeta = dy.sum(axis=axes)                                      # (C,)
    dgamma = (dy * xhat).sum(axis=axes)                            # (C,)
    scale = inv_std if gamma is None else gamma * inv_std          # gamma / sigma: (C,)
    dx = _per_channel(scale, nd) * (dy - _per_channel(dbeta / m, nd) - xhat * _per_channel(dgamma / m, nd))
    return dx, dgamma, dbeta


def batch_norm_eval_backward(dy, xhat, inv_std, gamma):
    """Gradients of batch normalisation in evaluation mode (running statistics).

    The running statistics are constants here, so the layer is an affine map
    applied to each element on its own (no coupling across the batch):

        dx     = dy * gamma / sqrt(running_var + eps)   (N, C, *) * (1, C, 1..)
        dgamma = sum_i dy_i * xhat_i                     (C,)
        dbeta  = sum_i dy_i                              (C,)

    dy: (N, C, *); xhat: (N, C, *), or None when gamma is None (then dgamma
    is None); inv_std: (C,).  Returns dx, dgamma, dbeta.
    """
    axes, nd = _channel_axes(dy.ndim), dy.ndim
    scale = inv_std if gamma is None else gamma * inv_std                 # (C,)
    dx = dy * _per_channel(scale, nd)
    dgamma = (dy * xhat).sum(axis=axes) if gamma is not None else None
    return dx, dgamma, dy.sum(axis=axes)


# ---------------------------------------------------------------------------
# Layer normalisation: statistics per sample, over the trailing dimensions
# ---------------------------------------------------------------------------
def layer_norm_forward(x, normalized_shape, gamma, beta, eps=1e-5):
    """Layer normalisation, as ``torch.nn.functional.layer_norm``.

    x: (*, D1..Dk) where (D1..Dk) = normalized_shape (a tuple of k ints).
    Each sample (each index of *) is standardised over its prod(D) trailing
    values with its own mean and biased variance; gamma, beta: (D1..Dk) or
    None.  y = gamma * xhat + beta, x's shape.

    Returns ``(y, (xhat, inv_std))``: xhat (x's shape) and inv_std (*, 1..1)
    (k ones) for the backward pass.
    """
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    xhat, _, inv_std, _ = _standardise(x, axes, eps)
    y = xhat * gamma if gamma is not None else xhat.copy()         # (D,) broadcasts over *
    if beta is not None:
        y += beta
    return y, (xhat, inv_std)


def layer_norm_backward(dy, xhat, inv_std, gamma, normalized_shape):
    """Gradients of layer normalisation.

    dy, xhat: (*, D1..Dk); inv_std: (*, 1..1); gamma: (D1..Dk) or None.
    With g = dy * gamma and the means over each sample's trailing values
    (the derivation of :func:`batch_norm_backward`, on other axes):

        dx     = inv_std * (g - mean(g) - xhat * mean(g * xhat))    (*, D)
        dgamma = sum over * of dy * xhat                           (D,)
        dbeta  = sum over * of dy                                  (D,)

    Returns dx, dgamma, dbeta.
    """
    k = len(normalized_shape)
    axes, lead = tuple(range(dy.ndim - k, dy.ndim)), tuple(range(dy.ndim - k))
    g = dy * gamma if gamma is not None else dy
    dx = _standardise_backward(g, xhat, inv_std, axes)
    return dx, (dy * xhat).sum(axis=lead), dy.sum(axis=lead)


# ---------------------------------------------------------------------------
# Group normalisation: statistics per sample and group of channels
# ---------------------------------------------------------------------------
def group_norm_forward(x, num_groups, gamma, beta, eps=1e-5):
    """Group normalisation, as ``torch.nn.functional.group_norm``.

    x: (N, C, *) with C divisible by G = num_groups.  The channels are split
    into G groups of C/G consecutive channels; each (sample, group) is
    standardised over its m = C/G * prod(*) values, i.e. over the last axis of
    x viewed as (N, G, m).  gamma, beta: (C,) or None, applied per channel:
    y = gamma_c * xhat + beta_c, x's shape.

    Returns ``(y, (xhat, inv_std))``: xhat (N, G, m) and inv_std (N, G, 1).
    """
    n, c = x.shape[0], x.shape[1]
    m = (x.size // (n * c) if n * c else 0) * (c // num_groups)
    xhat, _, inv_std, _ = _standardise(x.reshape(n, num_groups, m), (2,), eps)   # (N, G, m)
    xh = xhat.reshape(x.shape)
    y = xh * _per_channel(gamma, x.ndim) if gamma is not None else xh.copy()
    if beta is not None:
        y += _per_channel(beta, x.ndim)
    return y, (xhat, inv_std)


def group_norm_backward(dy, xhat, inv_std, gamma):
    """Gradients of group normalisation.

    dy: (N, C, *); xhat: (N, G, m); inv_std: (N, G, 1); gamma: (C,) or None.
    With g = dy * gamma_c viewed as (N, G, m), means over each group's m values:

        dx     = inv_std * (g - mean(g) - xhat * mean(g * xhat))   -> (N, C, *)
        dgamma = sum over N and * of dy * xhat                     (C,)
        dbeta  = sum over N and * of dy                            (C,)

    Returns dx, dgamma, dbeta.
    """
    axes, nd = _channel_axes(dy.ndim), dy.ndim
    g = dy * _per_channel(gamma, nd) if gamma is not None else dy
    dx = _standardise_backward(g.reshape(xhat.shape), xhat, inv_std, (2,)).reshape(dy.shape)
    dgamma = (dy * xhat.reshape(dy.shape)).sum(axis=axes)
    return dx, dgamma, dy.sum(axis=axes)


# ---------------------------------------------------------------------------
# Channel dropout: y = x * m_{n,c} / (1 - p),  m_{n,c} ~ Bernoulli(1 - p)
# ---------------------------------------------------------------------------
def dropout2d_mask(shape, p, rng, dtype):
    """The scaled keep-mask of channel dropout for an input of ``shape`` (N, C, *).

    One Bernoulli draw per (sample, channel): the mask has shape
    (N, C, 1, ..., 1) and broadcasts over the spatial dimensions, so a
    channel is kept or dropped as a whole.  Kept channels are scaled by
    1 / (1 - p) (E[y] = x); p = 1 drops everything, as in PyTorch.  The draw
    is ``rng.random((N, C)) >= p``, as :func:`dropout_mask` draws per element.
    """
    dtype = np.dtype(dtype)
    noise = tuple(shape[:2]) + (1,) * (len(shape) - 2)
    if p >= 1.0:
        return np.zeros(noise, dtype=dtype)
    keep = rng.random(tuple(shape[:2])) >= p
    return (keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))).reshape(noise)


def dropout2d_forward(x, mask):
    """``y = x * mask``: x (N, C, *), mask (N, C, 1..) from :func:`dropout2d_mask`."""
    return x * mask


def dropout2d_backward(dy, mask):
    """y = x * mask is linear in x, each element scaled by its channel's mask
    value: ``dx = dy * mask``, dy (N, C, *) * mask (N, C, 1..) -> (N, C, *)."""
    return dy * mask
