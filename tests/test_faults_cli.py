"""Faults at the command line and in run folders, by class:

* a bad argument or configuration: exit 2, one line naming it, before any folder is made;
* a run that fails (diverges, corrupt or missing files, a full disk, a path that is no folder):
  exit 1, one line, and no half-written folder;
* run folders are always one run: never replaced without --overwrite, never a folder nnumpy did not
  write, one writer at a time, and an interrupted run keeps the model of its last finished epoch;
* sweeps finish: diverging learning rates are recorded and ruled out, the summary is always written,
  and every key and value of a sweep file is checked before anything trains.
No traceback reaches the user, except with --debug.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import nnumpy as nnp

QUICK = ["--limit-train", "600", "--limit-test", "200", "--quiet"]


def nnumpy(*args, cwd=None, timeout=600, env=None):
    return subprocess.run([sys.executable, "-m", "nnumpy", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env)


def one_line_error(r, code):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines and lines[0].startswith("nnumpy ") and "error" in lines[0], r.stderr
    return r.stderr


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def train(mnist_dir, tmp_path):
    def run(out, *extra, cwd=tmp_path):
        return nnumpy("train", "--arch", "784-16-10", "--epochs", 1, "--data-root", mnist_dir, "--out", out,
                      *QUICK, *extra, cwd=cwd)
    return run


# -- bad arguments: exit 2 before anything is written ----------------------------------------------
@pytest.mark.parametrize("args,words", [
    (["--lr", "nan"], "lr must be a positive finite number"),
    (["--lr", "inf"], "lr must be a positive finite number"),
    (["--lr", "0"], "lr must be a positive finite number"),
    (["--momentum", "-1"], "momentum must lie in [0, 1)"),
    (["--momentum", "1.5"], "momentum must lie in [0, 1)"),
    (["--seed", "-1"], "integer seed >= 0"),
    (["--val-fraction", "1.5"], "val_fraction must lie in (0, 1)"),
    (["--val-fraction", "nan"], "val_fraction must lie in (0, 1)"),
    (["--limit-train", "1"], "limit_train must be an integer >= 2"),
    (["--arch", "784-0-10"], "positive"),
    (["--arch", "784-10.5-10"], "expected layer sizes"),
    (["--epochs", "2.7"], "positive integer"),
    (["--batch-size", "0"], "positive integer"),
])
def test_bad_train_arguments_exit_2_and_write_nothing(args, words, tmp_path):
    r = nnumpy("train", *args, "--offline", "--out", tmp_path / "run", cwd=tmp_path)
    assert words in one_line_error(r, 2)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("toml,words", [
    ("variants = 5", "variants"),
    ("[settings]\nbatchsize = 64\n[[variants]]\nname='a'\narch='784-10'\nlrs=[0.1]", "'batchsize'"),
    ("[settings]\noptimiser = 'sgd'\n[[variants]]\nname='a'\narch='784-10'\nlrs=[0.1]", "'optimiser'"),
    ("[[variants]]\nname='a'\narch='784-10'\nactivaton='relu'\nlrs=[0.1]", "'activaton'"),
    ("[[variants]]\nname='a'\narch='784-10'\nlrs='0.5'", "lrs must be a non-empty list of numbers"),
    ("[[variants]]\nname='a'\narch='784-10'\nlrs=[0.1, -1]", "lr must be a positive finite number"),
    ("[[variants]]\nname='a'\narch='784-10'\nlrs=[]", "lrs must be a non-empty list"),
    ("[[variants]]\nname='a b'\narch='784-10'\nlrs=[0.1]\n[[variants]]\nname='a_b'\narch='784-10'\nlrs=[0.1]",
     "both map to the folder"),
    ("[[variants]]\nname='..'\narch='784-10'\nlrs=[0.1]", "cannot name a folder"),
    ("[[variants]]\nname='a/b'\narch='784-10'\nlrs=[0.1]", "cannot name a folder"),
    ("[settings]\nepochs = 2.5\n[[variants]]\nname='a'\narch='784-10'\nlrs=[0.1]", "epochs must be a positive"),
    ("[settings]\nseed = 'x'\n[[variants]]\nname='a'\narch='784-10'\nlrs=[0.1]", "seed must be an integer"),
    ("[[variants]]\nname='a'\narch='784-10'\nlrs=[0.1]\n[extra]\nx=1", "'extra'"),
])
def test_bad_sweep_files_exit_2_before_training(toml, words, tmp_path):
    (tmp_path / "grid.toml").write_text(toml)
    r = nnumpy("sweep", "--config", "grid.toml", "--out", "s", "--offline", cwd=tmp_path)
    assert words in one_line_error(r, 2)
    assert listing(tmp_path) == ["grid.toml"]


def test_unknown_keys_are_named_with_the_valid_ones(tmp_path):
    (tmp_path / "g.toml").write_text("[settings]\nbatchsize = 64\n[[variants]]\nname='a'\narch='784-10'\nlrs=[0.1]")
    err = one_line_error(nnumpy("sweep", "--config", "g.toml", "--offline", cwd=tmp_path), 2)
    assert "batch_size" in err and "tune_epochs" in err


# -- run folders ------------------------------------------------------------------------------------
def test_a_run_folder_is_replaced_only_when_asked(train, tmp_path):
    assert train("run").returncode == 0
    before = (tmp_path / "run" / "model.npz").read_bytes()
    err = one_line_error(train("run", "--seed", "1"), 2)
    assert "already holds a run" in err and "--overwrite" in err
    assert (tmp_path / "run" / "model.npz").read_bytes() == before
    assert train("run", "--seed", "1", "--overwrite").returncode == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["seed"] == 1
    assert (tmp_path / "run" / "model.npz").read_bytes() != before
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())      # no temporary folder or lock left


def test_a_users_own_folder_or_file_is_never_replaced(train, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    (tmp_path / "afile").write_text("mine too")
    err = one_line_error(train("mine", "--overwrite"), 2)
    assert "was not written by nnumpy" in err
    assert "not a folder" in one_line_error(train("afile", "--overwrite"), 2)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine" and (tmp_path / "afile").read_text() == "mine too"
    assert "is a file, not a folder" in one_line_error(train("afile/run"), 2)


def test_a_killed_run_leaves_nothing_the_next_run_trips_on(train, tmp_path):
    (tmp_path / ".run.nnumpy-abc123.tmp").mkdir()        # what a run killed with -9 leaves
    (tmp_path / ".run.nnumpy-abc123.tmp" / "config.json").write_text("{}")
    (tmp_path / ".run.lock").write_text("")              # its lock file (no process holds the lock)
    assert train("run").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_sigterm_keeps_the_finished_epochs_like_ctrl_c(mnist_dir, tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "nnumpy", "train", "--arch", "784-64-10", "--epochs", "200",
                          "--data-root", str(mnist_dir), "--out", "run", "--limit-train", "20000", "--quiet"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("epoch   1/200"):
            break
    p.terminate()
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143 and "Traceback" not in err, err
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["interrupted"]
    assert sorted(q.name for q in tmp_path.iterdir()) == ["run"]


def test_a_second_run_into_the_same_folder_fails_at_once(mnist_dir, tmp_path):
    cmd = [sys.executable, "-m", "nnumpy", "train", "--arch", "784-64-10", "--epochs", "30", "--data-root",
           str(mnist_dir), "--out", "run", "--limit-train", "20000", "--quiet"]
    first = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / ".run.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        second = nnumpy("train", "--arch", "784-16-10", "--epochs", 1, "--data-root", mnist_dir, "--out", "run",
                        *QUICK, cwd=tmp_path)
        assert "another nnumpy run is writing" in one_line_error(second, 1)
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130


def test_an_interrupted_run_keeps_the_model_of_its_last_finished_epoch(mnist_dir, tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "nnumpy", "train", "--arch", "784-64-10", "--epochs", "200",
                          "--data-root", str(mnist_dir), "--out", "run", "--limit-train", "20000", "--quiet"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:                          # Ctrl-C in the middle of epoch 3
        if line.startswith("epoch   2/200"):
            time.sleep(0.3)
            break
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "Traceback" not in err
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    history = json.loads((run / "history.json").read_text())
    assert metrics["interrupted"] and metrics["epochs_run"] == len(history["epoch"]) >= 2
    from nnumpy.experiments import load_data
    from nnumpy.runconfig import RunConfig
    cfg = RunConfig(**json.loads((run / "config.json").read_text()))
    _, (xv, yv), _ = load_data(cfg)
    val_loss, val_acc = nnp.evaluate(nnp.load(run / "model.npz"), xv, yv)
    assert val_acc == metrics["val_acc"] == history["val_acc"][-1]       # the model is that epoch's
    assert np.isclose(val_loss, metrics["val_loss"], rtol=1e-6)


def test_a_full_disk_leaves_no_half_written_folder(mnist_dir, tmp_path):
    code = ("import errno, numpy as np, sys\n"
            "import nnumpy.serialization as s\n"
            "def full(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')\n"
            "s.np.savez = full\n"
            "from nnumpy.cli import main\n"
            f"sys.exit(main(['train', '--arch', '784-16-10', '--epochs', '1', '--data-root', r'{mnist_dir}', "
            "'--out', 'run', '--limit-train', '600', '--limit-test', '200', '--quiet']))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "No space left on device" in one_line_error(r, 1)
    assert listing(tmp_path) == []


def test_debug_shows_the_traceback(tmp_path):
    r = nnumpy("train", "--lr", "nan", "--offline", "--debug", cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" in r.stderr and "ConfigError" in r.stderr


# -- evaluate --------------------------------------------------------------------------------------
def test_evaluate_on_what_is_not_a_good_run(train, tmp_path):
    assert "not a run folder" in one_line_error(nnumpy("evaluate", tmp_path), 2)
    assert train("run").returncode == 0
    (tmp_path / "run" / "model.npz").write_bytes(b"PK\x03\x04 truncated")
    assert "model.npz" in one_line_error(nnumpy("evaluate", tmp_path / "run"), 1)
    (tmp_path / "run" / "config.json").write_text("{not json")
    assert "config.json" in one_line_error(nnumpy("evaluate", tmp_path / "run"), 2)


# -- sweeps that finish ---------------------------------------------------------------------------------
DIVERGING = """
[settings]
epochs = 1
tune_epochs = 1
[[variants]]
name = "sane"
arch = "784-16-10"
lrs = [0.1, 1e20]
[[variants]]
name = "hopeless"
arch = "784-16-10"
lrs = [1e20, 1e30]
"""


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_sweep_with_diverging_rates_finishes_and_says_so(mnist_dir, tmp_path, jobs):
    (tmp_path / "grid.toml").write_text(DIVERGING)
    r = nnumpy("sweep", "--config", "grid.toml", "--out", "s", "--data-root", mnist_dir, "--jobs", jobs, *QUICK,
               cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    tuning = (tmp_path / "s" / "tuning.csv").read_text().splitlines()
    assert len(tuning) == 5 and sum("diverged (epoch 1, step" in line for line in tuning) == 3
    summary = (tmp_path / "s" / "summary.md").read_text()
    assert "every learning rate diverged" in summary and "favourite: sane" in summary
    assert sorted(p.name for p in (tmp_path / "s" / "variants").iterdir()) == ["sane"]


def test_a_sweep_where_everything_diverges_still_writes_its_summary(mnist_dir, tmp_path):
    (tmp_path / "grid.toml").write_text(DIVERGING.replace("[0.1, 1e20]", "[1e20]"))
    r = nnumpy("sweep", "--config", "grid.toml", "--out", "s", "--data-root", mnist_dir, *QUICK, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "no variant finished" in r.stderr
    assert "No variant finished" in (tmp_path / "s" / "summary.md").read_text()


def test_a_sweep_folder_is_one_sweep(mnist_dir, tmp_path):
    (tmp_path / "grid.toml").write_text(DIVERGING)
    args = ["sweep", "--config", "grid.toml", "--out", "s", "--data-root", mnist_dir, *QUICK]
    assert nnumpy(*args, cwd=tmp_path).returncode == 0
    again = nnumpy(*args, cwd=tmp_path)                  # the same command: the same sweep, read back
    assert again.returncode == 0 and "5 finished trial(s) read back, 0 to train" in again.stdout, again.stdout
    assert "(seed: 0 -> 3)" in one_line_error(nnumpy(*args, "--seed", "3", cwd=tmp_path), 2)
    assert nnumpy(*args, "--restart", "--seed", "3", cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / "s" / "config.json").read_text())["overrides"]["seed"] == 3
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_environment_variables_do_not_leak_into_the_data_search(tmp_path):
    env = {**os.environ, "NNUMPY_DATA": str(tmp_path / "none")}
    r = nnumpy("train", "--offline", "--out", "run", env=env, cwd=tmp_path)
    assert "--data-root" in one_line_error(r, 1)
    assert listing(tmp_path) == []


SANE = """
[settings]
epochs = 2
tune_epochs = 1
[[variants]]
name = "relu"
arch = "784-16-10"
lrs = [0.03, 0.1]
[[variants]]
name = "sigmoid"
arch = "784-16-10"
activation = "sigmoid"
lrs = [0.3]
"""


def test_a_sweep_gives_the_same_numbers_on_one_process_or_two(mnist_dir, tmp_path):
    (tmp_path / "grid.toml").write_text(SANE)
    for jobs in (1, 2):
        r = nnumpy("sweep", "--config", "grid.toml", "--out", f"s{jobs}", "--data-root", mnist_dir, "--jobs", jobs,
                   *QUICK, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    for name in ("summary.csv", "tuning.csv"):
        assert (tmp_path / "s1" / name).read_text() == (tmp_path / "s2" / name).read_text()


def test_sweep_takes_the_dataset_option_and_the_example_grid(fashion_dir, tmp_path):
    from conftest import ROOT
    from nnumpy.runconfig import load_sweep_config
    assert load_sweep_config(ROOT / "examples" / "grid.toml")["variants"]
    (tmp_path / "grid.toml").write_text(SANE)
    r = nnumpy("sweep", "--config", "grid.toml", "--out", "s", "--dataset", "fashion-mnist", "--data-root",
               fashion_dir, *QUICK, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "s" / "variants" / "relu" / "config.json").read_text())
    assert cfg["dataset"] == "fashion-mnist"


@pytest.mark.parametrize("args,words", [
    (["--retries", "-1"], "integer >= 0"), (["--retries", "x"], "integer >= 0"),
    (["--timeout", "0"], "positive number of seconds"), (["--timeout", "nan"], "positive number of seconds"),
    (["--timeout", "inf"], "positive number of seconds"),
])
def test_bad_download_options_exit_2(args, words, tmp_path):
    for cmd in (["-m", "nnumpy", "download"], ["-m", "nnumpy.datasets", "download"]):
        r = subprocess.run([sys.executable, *cmd, "mnist", "--data-root", str(tmp_path), *args],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert listing(tmp_path) == []
