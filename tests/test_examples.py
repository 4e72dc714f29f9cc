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
