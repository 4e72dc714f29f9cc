import numpy as np
import pytest

import nnumpy as nnp

KINK_MARGIN = 1e-3   # every ReLU/LeakyReLU pre-activation stays this far from 0


def away_from_zero(shape, rng, margin=0.1):
    """Standard normal numbers with |x| >= margin (kept off the ReLU kink)."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < margin, np.sign(x + 1e-300) * margin + x, x)


def kink_distance(model, x):
    """Smallest |pre-activation| entering a ReLU/LeakyReLU in ``model`` on ``x``."""
    smallest = np.inf
    h = x
    for m in model:
        if isinstance(m, (nnp.ReLU, nnp.LeakyReLU)):
            smallest = min(smallest, np.abs(h).min())
        h = m(h)
    model.clear_cache()
    return smallest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
