"""nnumpy train / sweep / evaluate end to end on a small slice of the real MNIST."""
import csv
import json
import signal
import struct
import subprocess
import sys
import time

import pytest

from nnumpy.plots import FIG_PX

SLICE = ["--limit-train", "2000", "--limit-test", "500", "--quiet"]


def nnumpy(*args, timeout=600, cwd=None):
    return subprocess.run([sys.executable, "-m", "nnumpy", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("train") / "run"
    r = nnumpy("train", "--arch", "784-32-10", "--epochs", 3, "--lr", 0.05, "--data-root", mnist_dir,
               "--out", out, *SLICE)
    assert r.returncode == 0, r.stderr
    return out, r.stdout


def test_train_writes_every_file(trained):
    out, stdout = trained
    for name in ("config.json", "history.csv", "history.json", "curves.png", "model.npz", "metrics.json"):
        assert (out / name).is_file(), name
    hist = json.loads((out / "history.json").read_text())
    assert hist["epoch"] == [1, 2, 3]
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert len(rows) == 3 and set(rows[0]) >= {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    assert png_size(out / "curves.png") == FIG_PX["curves"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.5 < metrics["test_acc"] <= 1 and metrics["epochs_run"] == 3 and not metrics["interrupted"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["arch"] == [784, 32, 10] and cfg["batch_size"] == 64 and cfg["limit_train"] == 2000
    assert "test accuracy" in stdout


def test_evaluate_reproduces_the_test_accuracy(trained):
    out, _ = trained
    r = nnumpy("evaluate", out)
    assert r.returncode == 0, r.stderr
    ev = json.loads((out / "evaluation" / "evaluation.json").read_text())
    assert ev["test_acc"] == json.loads((out / "metrics.json").read_text())["test_acc"]
    assert sum(map(sum, ev["confusion_matrix"])) == 500 and len(ev["per_class_acc"]) == 10
    assert png_size(out / "evaluation" / "confusion.png") == FIG_PX["confusion"]
    assert png_size(out / "evaluation" / "misclassified.png") == FIG_PX["grid"]
    assert "per-class accuracy" in (out / "evaluation" / "confusion.txt").read_text()


def test_train_is_reproducible(trained, tmp_path, mnist_dir):
    out, _ = trained
    r = nnumpy("train", "--arch", "784-32-10", "--epochs", 3, "--lr", 0.05, "--data-root", mnist_dir,
               "--out", tmp_path / "again", *SLICE)
    assert r.returncode == 0, r.stderr
    a = json.loads((out / "history.json").read_text())
    b = json.loads((tmp_path / "again" / "history.json").read_text())
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert a[key] == b[key]


SWEEP = """
[settings]
epochs = 2
tune_epochs = 1
batch_size = 64
seed = 0

[[variants]]
name = "small relu"
arch = "784-16-10"
activation = "relu"
lrs = [0.01, 0.1]

[[variants]]
name = "two-layer sigmoid"
arch = "784-32-16-10"
activation = "sigmoid"
lrs = [0.1, 0.3]
"""


def check_sweep(out, n_variants, n_trials):
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert len(rows) == n_variants + 1 and rows[-1]["variant"].startswith("favourite: ")
    assert rows[-1]["test_acc"] and not any(r["test_acc"] for r in rows[:-1])
    assert all(r["best_lr"] and r["val_acc"] and r["train_acc"] for r in rows)
    md = (out / "summary.md").read_text()
    assert md.count("\n|") == n_variants + 2 and "Favourite by validation accuracy" in md
    assert len(list(csv.DictReader(open(out / "tuning.csv")))) == n_trials
    assert png_size(out / "comparison.png") == FIG_PX["compare"]
    assert len(list((out / "variants").iterdir())) == n_variants
    return rows


def test_sweep_from_a_config_file(tmp_path, mnist_dir):
    (tmp_path / "grid.toml").write_text(SWEEP)
    r = nnumpy("sweep", "--config", tmp_path / "grid.toml", "--out", tmp_path / "s", "--data-root", mnist_dir,
               *SLICE)
    assert r.returncode == 0, r.stderr
    rows = check_sweep(tmp_path / "s", 2, 4)
    assert {r["activation"] for r in rows} == {"relu", "sigmoid"}
    fav = rows[-1]["variant"].removeprefix("favourite: ")
    run = next(p for p in (tmp_path / "s" / "variants").iterdir() if p.name.startswith(fav.split()[0]))
    r = nnumpy("evaluate", run)                  # a sweep's variant folder is a run folder
    assert r.returncode == 0, r.stderr


def test_practical_preset_in_parallel(tmp_path, mnist_dir):
    r = nnumpy("sweep", "--preset", "practical", "--epochs", 1, "--tune-epochs", 1, "--jobs", 2,
               "--out", tmp_path / "p", "--data-root", mnist_dir, "--limit-train", 1000, "--limit-test", 300,
               "--quiet")
    assert r.returncode == 0, r.stderr
    rows = check_sweep(tmp_path / "p", 6, 24)
    assert any(r["units"] == "100-200-50" for r in rows)
    assert {r["activation"] for r in rows} == {"relu", "sigmoid"}


@pytest.mark.parametrize("args,message", [
    (["train", "--arch", "784-x"], "expected layer sizes"),
    (["train", "--arch", "100-10"], "must start with 784"),
    (["train", "--lr", "-1"], "lr must be a positive finite number"),
    (["train", "--epochs", "0"], "positive integer"),
    (["train", "--activation", "swish"], "invalid choice"),
    (["sweep"], "one of the arguments --preset --config is required"),
    (["sweep", "--preset", "huge"], "invalid choice"),
    (["evaluate", "/nonexistent/run"], "does not exist"),
])
def test_bad_arguments_exit_2(args, message, tmp_path):
    r = nnumpy(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr


def test_bad_sweep_file_exits_2(tmp_path):
    (tmp_path / "bad.toml").write_text("[[variants]]\nname = 'x'\narch = 784-10\n")
    r = nnumpy("sweep", "--config", tmp_path / "bad.toml", "--offline")
    assert r.returncode == 2 and "not valid TOML" in r.stderr
    (tmp_path / "empty.toml").write_text("[settings]\nepochs = 1\n")
    r = nnumpy("sweep", "--config", tmp_path / "empty.toml", "--offline")
    assert r.returncode == 2 and "no [[variants]]" in r.stderr


def test_ctrl_c_keeps_the_finished_epochs(tmp_path, mnist_dir):
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "nnumpy", "train", "--arch", "784-64-10", "--epochs", "200",
                          "--data-root", str(mnist_dir), "--out", str(out), "--limit-train", "20000", "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    for line in p.stdout:                          # wait for the second finished epoch
        if line.startswith("epoch   2/200") or time.time() > deadline:
            break
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] and metrics["epochs_run"] >= 2
    assert len(json.loads((out / "history.json").read_text())["epoch"]) == metrics["epochs_run"]
    assert (out / "model.npz").is_file() and (out / "curves.png").is_file()


def test_resume_after_ctrl_c_equals_an_uninterrupted_run(tmp_path, mnist_dir):
    """Ctrl-C after epoch 2 of 6, then 'nnumpy train --resume RUN': the same model, bit for bit, and the
    same history (but for the seconds) as a run that never stopped."""
    import numpy as np
    common = ["--arch", "784-64-10", "--epochs", "6", "--data-root", str(mnist_dir), "--limit-train", "20000",
              "--limit-test", "500", "--quiet", "--offline"]
    straight = tmp_path / "straight"
    r = nnumpy("train", *common, "--out", straight)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "nnumpy", "train", *common, "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("epoch   2/6"):
            break
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    stopped = json.loads((out / "metrics.json").read_text())
    assert stopped["interrupted"] and 2 <= stopped["epochs_run"] < 6
    r = nnumpy("train", "--resume", out, "--quiet", "--offline", "--data-root", mnist_dir)
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 6 and metrics["resumed_after"] == stopped["epochs_run"]
    a, b = np.load(straight / "model.npz"), np.load(out / "model.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a.files if k != "__nnumpy__")
    ha, hb = (json.loads((d / "history.json").read_text()) for d in (straight, out))
    assert {k: v for k, v in ha.items() if k != "seconds"} == {k: v for k, v in hb.items() if k != "seconds"}
    assert metrics["test_acc"] == json.loads((straight / "metrics.json").read_text())["test_acc"]
    # a finished run with a cosine schedule cannot be stretched; other options are the run's own
    r = nnumpy("train", "--resume", out, "--epochs", "8", "--quiet", "--offline", "--data-root", mnist_dir)
    assert r.returncode == 2 and "anneals its learning rate over 6 epochs" in r.stderr
    r = nnumpy("train", "--resume", out, "--lr", "0.2", "--quiet")
    assert r.returncode == 2 and "--lr cannot be given with it" in r.stderr
    r = nnumpy("train", "--resume", tmp_path / "nothing", "--quiet")
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    # config.json edited after the run: refused, naming the change; an unknown key too
    cfg = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**cfg, "lr": 0.5, "activation": "gelu"}))
    r = nnumpy("train", "--resume", out, "--quiet", "--offline", "--data-root", mnist_dir)
    assert r.returncode == 2 and "no longer describes the run" in r.stderr and "lr 0.05 -> 0.5" in r.stderr, r.stderr
    (out / "config.json").write_text(json.dumps({**cfg, "colour": "red"}))
    r = nnumpy("train", "--resume", out, "--quiet", "--offline", "--data-root", mnist_dir)
    assert r.returncode == 2 and "colour" in r.stderr, r.stderr
