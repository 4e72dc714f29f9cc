"""Splitting a data set and iterating over it in mini-batches."""
from __future__ import annotations

import math

import numpy as np

from ..random import resolve_rng

__all__ = ["train_val_split", "iterate_minibatches", "num_batches"]


def _check_pair(x, y, what="x and y"):
    if not hasattr(x, "shape") or not hasattr(y, "shape"):
        raise TypeError(f"{what} must be NumPy arrays")
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
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    n = len(x)
    if n < 2:
        raise ValueError(f"cannot split {n} sample(s) into training and validation parts")
    k = min(max(int(round(n * float(val_fraction))), 1), n - 1)       # validation size
    rng = np.random.default_rng(seed)
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
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def iterate_minibatches(x, y, batch_size=64, shuffle=True, rng=None, drop_last=False):
    """Yield ``(x_batch, y_batch)`` pairs covering the data once (one epoch).

    shuffle: visit the samples in an order drawn from ``rng`` (an int seed or
    a Generator; a Generator carried across epochs gives a new order each
    epoch, reproducibly).  drop_last: skip the final partial batch.
    """
    _check_pair(x, y)
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)
    n = len(x)
    order = resolve_rng(rng).permutation(n) if shuffle else None
    stop = (n // batch_size) * batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            sl = slice(start, start + batch_size)
            yield x[sl], y[sl]
        else:
            idx = order[start:start + batch_size]
            yield x[idx], y[idx]
