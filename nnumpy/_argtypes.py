"""argparse types shared by the command lines: a bad value exits with code 2
and one line naming it (argparse reports the ArgumentTypeError)."""
from __future__ import annotations

import argparse
import math

__all__ = ["integer", "positive_int", "count", "seed", "seconds"]


def integer(low, what, high=None):
    """An argparse type for integers in [low, high): ``what`` names them in the error."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < low or (high is not None and v >= high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v
    return parse


positive_int = integer(1, "a positive integer")
count = integer(0, "an integer >= 0")
seed = integer(0, "an integer seed >= 0", high=2 ** 63)     # what numpy.random.default_rng takes


def seconds(text):
    """A positive finite number of seconds."""
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return v
