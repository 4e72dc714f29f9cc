"""The example scripts run end to end on the real data."""
import subprocess
import sys

import nnumpy as nnp
from conftest import ROOT


def test_train_mnist_example(mnist_dir, tmp_path):
    out = tmp_path / "model.npz"
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "train_mnist.py"), "--data-root", str(mnist_dir),
                        "--arch", "784-32-10", "--epochs", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    acc = float(r.stdout.split("test accuracy ")[1].split("%")[0]) / 100
    assert acc > 0.9
    model = nnp.load(out)
    (x, y), (xt, yt) = nnp.datasets.load_mnist(mnist_dir, download=False, flatten=True, scale=True)
    assert abs(nnp.evaluate(model, xt, yt)[1] - acc) <= 5e-5 + 1e-12     # printed as xx.xx %


def test_train_mnist_example_offline_error(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "train_mnist.py"), "--data-root", str(tmp_path),
                        "--offline"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "not available" in r.stderr and "Traceback" not in r.stderr


def test_nielsen_chapter_3_network(mnist_dir):
    """The book's improved network (97.92 % in the book) in 30 epochs: 97.88 % here with seed 0. Plain SGD at a
    constant rate swings by ~0.3 % from epoch to epoch and rounding differs between BLAS builds, so the test
    asks for the level (best epoch >= 97.6 %, last >= 97.2 %: seeds 0-3 give 97.78-98.02 and 97.32-97.88 %)."""
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "nielsen_ch3.py"), "--data-root", str(mnist_dir),
                        "--offline"], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip().splitlines()[-1]
    last = float(line.split("validation accuracy: ")[1].split(" %")[0])
    best = float(line.split("(best ")[1].split(" %")[0])
    assert "after 30 epochs" in line and best >= 97.6 and last >= 97.2, line
