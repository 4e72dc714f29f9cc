"""Seeding.  Every random draw in nnumpy comes from a ``numpy.random.Generator``:
either one passed explicitly (``rng=`` / ``seed=`` arguments) or the global
default generator, which :func:`manual_seed` resets.  The same seed gives the
same numbers."""
from __future__ import annotations

import contextlib
import numbers

import numpy as np

from ._checks import ArgumentTypeError, describe, seed_rng

__all__ = ["manual_seed", "default_generator", "resolve_rng", "preserve_rng_state"]

_default = np.random.default_rng(0)


def manual_seed(seed):
    """Reset the global generator used when no ``rng``/``seed`` is given and
    return it.  ``seed``: an integer >= 0, None (fresh entropy from the
    system) or a ``numpy.random.Generator`` (whose state is copied).

    The global generator is reseeded in place, as PyTorch's is: modules that
    draw from it (a ``Dropout`` built without ``rng``, built before or after
    the call) all follow the new seed."""
    fresh = seed_rng("seed", seed, owner="manual_seed")
    if type(fresh.bit_generator) is type(_default.bit_generator):
        _default.bit_generator.state = fresh.bit_generator.state
    else:                                   # another kind of bit generator: adopt it (modules keep the old one)
        globals()["_default"] = fresh
    return _default


def default_generator():
    return _default


def resolve_rng(rng=None, name="rng", owner=None):
    """``None`` -> the global generator; an integer >= 0 -> a new generator
    seeded with it; a ``numpy.random.Generator`` -> itself.

    Anything else raises, naming the argument (``name``, prefixed by
    ``owner:`` when given): :class:`~nnumpy._checks.ArgumentTypeError` for
    another type (a float, a bool, a string), ValueError for a negative
    seed (NumPy's seeds are >= 0)."""
    if rng is None:
        return _default
    if isinstance(rng, np.random.Generator):
        return rng
    wrong_type = isinstance(rng, (bool, np.bool_)) or not isinstance(rng, numbers.Integral)
    if wrong_type or rng < 0:
        raise (ArgumentTypeError if wrong_type else ValueError)(
            f"{owner + ': ' if owner else ''}{name} must be None, an integer seed >= 0 or a "
            f"numpy.random.Generator, got {describe(rng)}")
    return np.random.default_rng(int(rng))


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
