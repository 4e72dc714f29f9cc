"""Loading the real datasets, the registry and the command line."""
import subprocess
import sys

import numpy as np
import pytest

from nnumpy.datasets import DATASETS, get_spec, load_fashion_mnist, load_mnist
from nnumpy.datasets import loaders
from nnumpy.datasets.registry import ChecksumError


def test_load_mnist_from_a_folder(mnist_dir):
    (x, y), (xt, yt) = load_mnist(root=mnist_dir, download=False)
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert xt.shape == (10000, 28, 28) and yt.shape == (10000,)
    assert y.dtype == np.int64 and y.min() == 0 and y.max() == 9
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    (xf, _), _ = load_mnist(root=mnist_dir, download=False, flatten=True, scale=True)
    assert xf.shape == (60000, 784) and xf.dtype == np.float32
    assert xf.min() == 0.0 and xf.max() == 1.0
    np.testing.assert_array_equal(xf[123], x[123].reshape(-1) / np.float32(255))


def test_fashion_mnist_from_the_system_folder(fashion_dir, monkeypatch):
    monkeypatch.delenv("NNUMPY_DATA", raising=False)
    monkeypatch.setattr(loaders, "SYSTEM_DATA_DIRS", (str(fashion_dir.parent),))
    got = loaders.fetch("fashion-mnist", download=False)
    for _, path, how in got.values():
        assert path.parent == fashion_dir
        assert how.startswith("sha256")      # Debian recompressed: the payload check accepts it
    (x, y), (xt, yt) = load_fashion_mnist(download=False)
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10


def test_recompressed_kmnist_cannot_be_verified():
    fs = get_spec("kmnist").files["train_labels"]
    import gzip
    fake = gzip.compress(b"\x00\x00\x08\x01" + (60000).to_bytes(4, "big") + bytes(60000))
    with pytest.raises(ChecksumError, match="no payload checksum is known"):
        fs.verify(fake, "labels.gz")


def test_registry_is_consistent():
    for name, spec in DATASETS.items():
        assert spec.mirrors and spec.mirrors[0].startswith("https://"), name
        assert len(spec.classes) == 10
        for role, fs in spec.files.items():
            assert len(fs.md5) == 32 and (fs.sha256 is None or len(fs.sha256) == 64)
            assert fs.filename.endswith(".gz")
    assert get_spec("MNIST") is get_spec("mnist") and get_spec("fashion_mnist").name == "fashion-mnist"
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'; known: mnist"):
        get_spec("cifar10")
    assert get_spec("mnist").files["train_images"].payload_bytes == 47040016


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "nnumpy.datasets", *args], capture_output=True, text=True)


def test_cli_verify_and_list(mnist_dir, tmp_path):
    r = run_cli("verify", "mnist", "--root", str(mnist_dir))
    assert r.returncode == 0, r.stderr
    assert "mnist: verified" in r.stdout and "(60000, 28, 28)" in r.stdout
    r = run_cli("verify", "mnist", "--root", str(tmp_path))
    assert r.returncode == 1 and "4 file(s) not available" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("list")
    assert r.returncode == 0 and all(n in r.stdout for n in DATASETS)
    r = run_cli("download", "cifar10")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_cli_download_from_a_local_mirror(mnist_dir, tmp_path):
    from httpmirror import Mirror
    files = {p.name: p.read_bytes() for p in mnist_dir.iterdir() if p.name.endswith(".gz")}
    with Mirror(files) as m:
        m.fault("first", "404")
        r = run_cli("download", "mnist", "--root", str(tmp_path), "--mirror", m.url("first"),
                    "--mirror", m.url("second"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)
