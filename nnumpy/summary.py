"""``summary``: what each layer computes, holds and remembers for backward."""
from __future__ import annotations

import math

import numpy as np

from . import backend
from ._checks import ArgumentTypeError, describe, positive_int
from .nn.container import Sequential
from .random import preserve_rng_state

__all__ = ["summary", "Summary"]


class Summary:
    """Rows (one per leaf module, in forward order) and totals; ``str()`` is a table.

    Each row: name, type, output_shape (batch dimension as -1), params, and
    saved: a list of (array name, per-sample shape, dtype, bytes per sample)
    that the layer keeps between forward and backward, and fixed: the same
    for arrays whose size does not grow with the batch (batch norm's 1/sigma
    per channel), with their whole shape and bytes.
    """

    def __init__(self, rows, input_shape, dtype):
        self.rows = rows
        self.input_shape = input_shape
        self.dtype = dtype
        self.total_params = sum(r["params"] for r in rows)
        self.saved_bytes_per_sample = sum(b for r in rows for *_, b in r["saved"])
        self.saved_bytes_fixed = sum(b for r in rows for *_, b in r.get("fixed", ()))

    def __str__(self):
        head = f"{'layer':<24}{'output shape':<16}{'params':>10}   saved for backward (per sample)"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            saved = ", ".join([f"{n} {s} {d} = {b:,} B" for n, s, d, b in r["saved"]]
                              + [f"{n} {s} {d} = {b:,} B per batch" for n, s, d, b in r.get("fixed", ())]) or "-"
            lines.append(f"{r['name'] + ' (' + r['type'] + ')':<24}{str(r['output_shape']):<16}"
                         f"{r['params']:>10,}   {saved}")
        lines.append("-" * len(head))
        itemsize = np.dtype(self.dtype).itemsize
        lines.append(f"total parameters: {self.total_params:,} "
                     f"({self.total_params * itemsize:,} bytes as {np.dtype(self.dtype).name})")
        fixed = f" + {self.saved_bytes_fixed:,} bytes per batch" if self.saved_bytes_fixed else ""
        lines.append(f"saved for backward: {self.saved_bytes_per_sample:,} bytes per sample{fixed}, "
                     f"{64 * self.saved_bytes_per_sample + self.saved_bytes_fixed:,} bytes for a batch of 64")
        return "\n".join(lines)

    def __repr__(self):
        return str(self)


def _leaves(module, prefix=""):
    """The rows of the table: the layers inside containers (Sequential, MLP), each layer or block that is
    not a container as one row (a custom block counts its own parameters and all it keeps for backward)."""
    if not isinstance(module, Sequential):
        yield prefix or type(module).__name__, module
        return
    for name, child in module.named_children():
        yield from _leaves(child, f"{prefix}.{name}" if prefix else name)


def _saved(mod, prefix=""):
    """What ``mod`` and the modules inside it keep for backward, named by where they are."""
    out = {f"{prefix}{k}": a for k, a in mod.saved_arrays().items()}
    for name, child in mod.named_children():
        out.update(_saved(child, f"{prefix}{name}."))
    return out


def _check_input_shape(input_shape):
    """``input_shape`` as a tuple of positive ints of modest total size, or a clear error."""
    if isinstance(input_shape, (int, np.integer)) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    if not isinstance(input_shape, (tuple, list)) or not input_shape:
        raise ArgumentTypeError(f"summary: input_shape must be the shape of one sample, without the batch "
                                f"dimension, such as (784,) or (1, 28, 28), got {describe(input_shape)}")
    shape = tuple(positive_int(f"input_shape[{i}]", d, owner="summary") for i, d in enumerate(input_shape))
    if math.prod(shape) > 1 << 26:
        raise ValueError(f"summary: input_shape {shape} has {math.prod(shape):,} values per sample, more than "
                         f"summary's probe batches can hold (at most {1 << 26:,})")
    return shape


def summary(model, input_shape, dtype=None, print_table=False):
    """Run forward passes on small batches of random inputs of ``input_shape``
    (without the batch dimension, e.g. ``(784,)`` or ``(1, 28, 28)``) in
    training mode and report, per leaf layer, the output shape, the
    parameter count and the arrays kept for backward: those that grow with
    the batch per sample, the others (batch norm's 1/sigma per channel) per
    batch, told apart by running batches of 2 and of 3.  The model's random
    generators, buffers (running statistics), mode and caches are left as
    they were found (the caches emptied).

    The passes run on the NumPy backend, layer by layer, so each layer's
    own needs are shown; the numba backend's fused Linear/Conv2d+activation
    keeps the layer's input and the activation's output instead.
    """
    shape = _check_input_shape(input_shape)
    dtype = np.dtype(dtype or model.dtype or np.float32)
    leaves = list(_leaves(model))
    shapes = {}

    def recorder(name, mod):
        cls_forward = type(mod).forward

        def forward(*args):
            out = cls_forward(mod, *args)
            shapes[name] = (-1,) + tuple(out.shape[1:])
            return out
        return forward

    def saved_by_layer(batch):
        x = np.random.default_rng(0).standard_normal((batch,) + shape).astype(dtype)
        with backend.use("numpy"):
            model(x)
        found = {name: {k: (a.shape, a.dtype.name, a.nbytes) for k, a in _saved(mod).items()}
                 for name, mod in leaves}
        model.clear_cache()
        return found

    was_training = model.training
    buffers = [(b, b.copy()) for b in model.buffers()]     # batch norm's running statistics move in training mode
    with preserve_rng_state(model) as rewind:
        try:
            for name, mod in leaves:
                mod.__dict__["forward"] = recorder(name, mod)
            model.train()
            two = saved_by_layer(2)
            rewind()
            three = saved_by_layer(3)
            rows = []
            for name, mod in leaves:
                saved, fixed = [], []
                for k, (a_shape, dt, nbytes3) in three[name].items():
                    per_sample = nbytes3 - two[name].get(k, (None, None, 0))[2]
                    if per_sample > 0:
                        saved.append((k, tuple(a_shape[1:]), dt, per_sample))
                    else:
                        fixed.append((k, tuple(a_shape), dt, nbytes3))
                rows.append({"name": name, "type": type(mod).__name__,
                             "output_shape": shapes.get(name), "params": mod.num_parameters(),
                             "saved": saved, "fixed": fixed})
        finally:
            for _, mod in leaves:
                mod.__dict__.pop("forward", None)
            model.train(was_training)
            model.clear_cache()
            for b, saved_b in buffers:
                b[...] = saved_b
    result = Summary(rows, shape, dtype)
    if print_table:
        print(result)
    return result
