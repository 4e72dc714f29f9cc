"""nnumpy gradcheck --loss / --activation: every loss and every MLP activation, from the command line."""
import subprocess
import sys

import pytest

from nnumpy.cli import LOSSES
from nnumpy.nn import ACTIVATIONS


def gradcheck(*args):
    return subprocess.run([sys.executable, "-m", "nnumpy", "gradcheck", "--arch", "12-7-5", "--batch", "5",
                           "--max-checks", "20", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_loss(loss):
    r = gradcheck("--loss", loss, "--activation", "tanh")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASSED" in r.stdout and "FAILED" not in r.stdout
    assert f"loss: {LOSSES[loss][0]}" in r.stdout


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation(activation):
    r = gradcheck("--activation", activation, "--loss", "mse")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"with {activation}" in r.stdout and "PASSED" in r.stdout


@pytest.mark.parametrize("loss", ["nll", "bce", "multi_margin", "huber"])
def test_losses_against_torch(torch, loss):
    r = gradcheck("--loss", loss, "--activation", "gelu", "--torch", "--no-fd", "--dtype", "float64", "float32")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("PASSED") == 2 and f", {LOSSES[loss][0]}, batch 5, float32" in r.stdout


def test_unknown_loss_is_a_usage_error():
    r = gradcheck("--loss", "hinge")
    assert r.returncode == 2 and "invalid choice" in r.stderr and "Traceback" not in r.stderr
