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


# -- real data and optional packages ------------------------------------------------
import importlib  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import warnings  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: Extras that a CI run leaves out on purpose (the run in a venv with only ".[test]"):
#: their tests skip there instead of failing.
WITHOUT = set(os.environ.get("NNUMPY_TEST_WITHOUT", "").replace(",", " ").split())
GZ_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def missing(msg, extra=None):
    """Skip for something absent, except in CI, where its absence is a failure
    (unless CI left that extra out on purpose: NNUMPY_TEST_WITHOUT)."""
    if IN_CI and extra not in WITHOUT:
        pytest.fail(f"CI=true but {msg}", pytrace=False)
    pytest.skip(msg)


def require_package(module, extra):
    """Import an optional package, or skip naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        missing(f"{module} is not installed (pip install -e \".[{extra}]\")", extra)


def find_dataset(name, *candidates):
    """A folder holding the four .gz files of dataset ``name``: the first
    candidate that has them, else where nnumpy's own search path finds a
    verified copy ($NNUMPY_DATA, /usr/share/datasets, the download folder).
    None when there is none."""
    for d in candidates:
        if d is not None and all((pathlib.Path(d) / n).is_file() for n in GZ_NAMES):
            return pathlib.Path(d)
    from nnumpy.datasets import DatasetNotFoundError, DatasetWarning, fetch
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DatasetWarning)
            got = fetch(name, download=False)
    except DatasetNotFoundError:
        return None
    folders = {path.parent for _, path, _ in got.values()}
    names = {path.name for _, path, _ in got.values()}
    return folders.pop() if len(folders) == 1 and names == set(GZ_NAMES) else None


@pytest.fixture(scope="session")
def mnist_dir():
    found = find_dataset("mnist", os.environ.get("NNUMPY_TEST_MNIST"), ROOT.parent / "shared" / "datasets" / "mnist")
    if found is None:
        missing("the real MNIST files were not found (set NNUMPY_DATA=DIR with them in DIR/mnist/, or run "
                "python -m nnumpy.datasets download mnist; also looked in $NNUMPY_TEST_MNIST and "
                "../shared/datasets/mnist)")
    return found


@pytest.fixture(scope="session")
def fashion_dir():
    found = find_dataset("fashion-mnist", "/usr/share/datasets/fashion-mnist")
    if found is None:
        missing("Fashion-MNIST was not found (apt-get install -y dataset-fashion-mnist, or "
                "python -m nnumpy.datasets download fashion-mnist)")
    return found


@pytest.fixture(scope="session")
def torch():
    """PyTorch, or a skip (a failure in CI, where .ci/run installs torch==2.13.0)."""
    return require_package("torch", "torch")


@pytest.fixture
def tutorial_env(mnist_dir, monkeypatch):
    """The environment a notebook's kernel inherits in the tests: fast mode (small data, few epochs), the
    real MNIST files, offline, no display."""
    monkeypatch.setenv("NNUMPY_TUTORIAL_FAST", "1")
    monkeypatch.setenv("NNUMPY_DATA", str(mnist_dir.parent))     # finds <dir>/mnist
    monkeypatch.setenv("NNUMPY_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _backend_left_as_found(request):
    """Every test leaves the backend as it found it (``backend.use`` restores it): a test that switches it
    for good would run every later test of the process on the other backend, unseen (an in-process sweep
    then differed from one in worker processes)."""
    before = nnp.get_backend()
    yield
    after = nnp.get_backend()
    if after != before:
        nnp.set_backend(before)
        pytest.fail(f"{request.node.nodeid} left the backend at {after!r} (it was {before!r}): use "
                    f"nnumpy.backend.use(...) to switch it inside a test", pytrace=False)
