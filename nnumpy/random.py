"""Seeding.  Every random draw in nnumpy comes from a ``numpy.random.Generator``:
either one passed explicitly (``rng=`` / ``seed=`` arguments) or the global
default generator, which :func:`manual_seed` resets.  The same seed gives the
same numbers."""
from __future__ import annotations

import contextlib

import numpy as np

__all__ = ["manual_seed", "default_generator", "resolve_rng", "preserve_rng_state"]

_default = np.random.default_rng(0)


def manual_seed(seed):
    """Reset the global generator used when no ``rng``/``seed`` is given."""
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_generator():
    return _default


def resolve_rng(rng=None):
    """``None`` -> the global generator; an int -> a new seeded generator;
    a ``numpy.random.Generator`` -> itself."""
    if rng is None:
        return _default
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {rng!r}")


@contextlib.contextmanager
def preserve_rng_state(module):
    """Snapshot the generators of every sub-module that has one (``.rng``,
    e.g. Dropout) and restore them on exit, so inspecting a model (summary,
    gradcheck) does not change the random numbers training will draw.

    The context yields a function that rewinds the generators to the
    snapshot, so that repeated forwards can draw the same masks.
    """
    gens = {id(m.rng): m.rng for m in module.modules()
            if isinstance(getattr(m, "rng", None), np.random.Generator)}
    saved = {k: g.bit_generator.state for k, g in gens.items()}

    def rewind():
        for k, g in gens.items():
            g.bit_generator.state = saved[k]

    try:
        yield rewind
    finally:
        rewind()
