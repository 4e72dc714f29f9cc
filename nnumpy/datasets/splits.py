"""Splitting a data set and iterating over it in mini-batches."""
from __future__ import annotations

import math

import numpy as np

from .._checks import flag, positive_int, real, seed_rng
from ..random import resolve_rng

__all__ = ["train_val_split", "iterate_minibatches", "num_batches"]


def _check_pair(x, y, what="x and y"):
    if not hasattr(x, "shape") or not hasattr(y, "shape"):
        raise TypeError(f"{what} must be NumPy arrays, got {type(x).__name__} and {type(y).__name__}")
    if len(x.shape) == 0 or len(y.shape) == 0:
        raise ValueError(f"{what} must be arrays with one row per sample, got shapes {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{what} differ in length: {len(x)} samples vs {len(y)} targets")


def train_val_split(x, y, val_fraction=0.1, seed=0, stratify=False):
    """Split ``(x, y)`` into a training and a validation part.

    ``round(len(x) * val_fraction)`` samples (at least 1, at most all but
    one) go to validation, chosen by a permutation seeded with ``seed``:
    60,000 images at 0.1 give 54,000 / 6,000.  With ``stratify=True`` (``y``
    must be integer labels) each class contributes in proportion to its
    size (the largest-remainder rounding of ``n_c * k / n``, so the parts
    still add up to exactly k), and the class balance of both parts matches
    the whole.  Returns ``(x_train, y_train), (x_val, y_val)``, each part
    in shuffled order.
    """
    _check_pair(x, y)
    val_fraction = real("val_fraction", val_fraction, 0.0, 1.0, low_open=True, high_open=True,
                        owner="train_val_split")
    stratify = flag("stratify", stratify, owner="train_val_split")
    n = len(x)
    if n < 2:
        raise ValueError(f"cannot split {n} sample(s) into training and validation parts")
    k = min(max(int(round(n * float(val_fraction))), 1), n - 1)       # validation size
    rng = seed_rng("seed", seed, owner="train_val_split")
    if stratify:
        y = np.asarray(y)
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError("stratify=True needs 1-d integer labels y")
        classes, counts = np.unique(y, return_counts=True)
        quota = counts * k / n                                      # exact shares, summing to k
        take = np.floor(quota).astype(np.int64)
        by_remainder = np.argsort(-(quota - take), kind="stable")   # ties: the smaller class label first
        take[by_remainder[:k - int(take.sum())]] += 1
        val_parts, train_parts = [], []
        for c, t in zip(classes, take):
            idx = rng.permutation(np.flatnonzero(y == c))
            val_parts.append(idx[:t])
            train_parts.append(idx[t:])
        val_idx = rng.permutation(np.concatenate(val_parts))
        train_idx = rng.permutation(np.concatenate(train_parts))
    else:
        perm = rng.permutation(n)
        val_idx, train_idx = perm[:k], perm[k:]
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def num_batches(n, batch_size, drop_last=False):
    """How many mini-batches :func:`iterate_minibatches` yields for n samples."""
    batch_size = positive_int("batch_size", batch_size, owner="num_batches")
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def iterate_minibatches(x, y, batch_size=64, shuffle=True, rng=None, drop_last=False):
    """Yield ``(x_batch, y_batch)`` pairs covering the data once (one epoch).

    shuffle: visit the samples in an order drawn from ``rng`` (an int seed or
    a Generator; a Generator carried across epochs gives a new order each
    epoch, reproducibly).  drop_last: skip the final partial batch.
    batch_size: a positive integer (checked when the call is made, not at
    the first batch).
    """
    _check_pair(x, y)
    batches = _batch_indices(len(x), batch_size, shuffle, rng, drop_last, "iterate_minibatches")
    return ((x[idx], y[idx]) for idx in batches)


def _batch_indices(n, batch_size, shuffle, rng, drop_last, owner):
    """The checked arguments' batches: an iterator of slices (no shuffle) or
    index arrays into the n samples, drawing the order from ``rng`` now."""
    batch_size = positive_int("batch_size", batch_size, owner=owner)
    shuffle = flag("shuffle", shuffle, owner=owner)
    drop_last = flag("drop_last", drop_last, owner=owner)
    order = resolve_rng(rng).permutation(n) if shuffle else None
    stop = (n // batch_size) * batch_size if drop_last else n
    if order is None:
        return (slice(start, start + batch_size) for start in range(0, stop, batch_size))
    return (order[start:start + batch_size] for start in range(0, stop, batch_size))
