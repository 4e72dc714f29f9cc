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


# -- real data -----------------------------------------------------------------
import os  # noqa: E402
import pathlib  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
MNIST_DIR = pathlib.Path(os.environ.get("NNUMPY_TEST_MNIST", ROOT.parent / "shared" / "datasets" / "mnist"))
FASHION_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_dir(path, what, how):
    """Skip when real data is absent, except in CI, where its absence is a failure."""
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    if all((path / n).is_file() for n in names):
        return path
    msg = f"{what} not found in {path} ({how})"
    if IN_CI:
        pytest.fail(f"CI=true but {msg}", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def mnist_dir():
    return require_dir(MNIST_DIR, "the real MNIST files",
                       "they sit in ../shared/datasets/mnist beside the checkout; or set NNUMPY_TEST_MNIST")


@pytest.fixture(scope="session")
def fashion_dir():
    return require_dir(FASHION_DIR, "Fashion-MNIST", "apt-get install -y dataset-fashion-mnist")


@pytest.fixture(scope="session")
def torch():
    """PyTorch, or a skip (a failure in CI, where .ci/run installs torch==2.13.0)."""
    try:
        import torch
    except ImportError:
        if IN_CI:
            pytest.fail("CI=true but PyTorch is not installed (.ci/run installs torch==2.13.0)", pytrace=False)
        pytest.skip("PyTorch is not installed: pip install -e \".[torch]\"")
    return torch
