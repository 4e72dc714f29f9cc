"""A sweep stopped in any way resumes to the summary of a sweep that never stopped.

The sweep runs as `nnumpy sweep` in a subprocess; it is stopped by Ctrl-C or
by `kill -9` at random moments (while trials train, while a trial folder is
written, while the summary is written), and the same command is run again
until it finishes.  The summary, tuning table and every trial's figures must
then equal those of an uninterrupted sweep, the trials that had finished must
not be trained again, and the folder must never show a half-written trial.
"""
import json
import os
import random
import signal
import subprocess
import time

import pytest

import workers
from sweeptools import command, figures, run, trial_files
from nnumpy import sweeps
from nnumpy.runconfig import ConfigError

pytestmark = pytest.mark.backend_independent          # the same on both backends: run once in CI

GRID = """
[settings]
epochs = 6
tune_epochs = 2
seed = 0
[[variants]]
name = "small relu"
arch = "784-100-10"
lrs = [0.03, 0.1, 0.3]
[[variants]]
name = "small sigmoid"
arch = "784-100-10"
activation = "sigmoid"
lrs = [0.3, 1.0]
[[variants]]
name = "wide"
arch = "784-200-10"
lrs = [0.1, 1e20]
"""
N_TRIALS = 3 + 2 + 2 + 3                               # tuning trials + one final per variant


@pytest.fixture(scope="module")
def straight(tmp_path_factory, mnist_dir):
    """The sweep, run once without a stop."""
    folder = tmp_path_factory.mktemp("straight")
    (folder / "grid.toml").write_text(GRID)
    r = run(command(folder / "grid.toml", mnist_dir, folder / "s", "--jobs", "2"))
    assert r.returncode == 0, r.stderr
    assert len(trial_files(folder / "s")) == N_TRIALS
    return folder / "s"


def check_whole(out):
    """What a stopped sweep leaves: only whole trials, no temporary folder in sight."""
    for d in (out / "trials").glob("*/*"):
        assert not d.is_dir() or d.name.startswith(".") or (d / "trial.json").is_file(), f"half-written trial {d}"
    for d in (out / "variants").glob("*") if (out / "variants").is_dir() else ():
        assert d.name.startswith(".") or (d / "model.npz").is_file(), f"half-written run folder {d}"


def test_ctrl_c_then_the_same_command_resumes_to_the_same_summary(straight, tmp_path, mnist_dir):
    (tmp_path / "grid.toml").write_text(GRID)
    out = tmp_path / "s"
    cmd = command(tmp_path / "grid.toml", mnist_dir, out, "--jobs", "2")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:                               # the first variant has finished
        if line.startswith("  small relu:"):
            break
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "run the same command again to resume" in err, err
    kept = {str(p): p.stat().st_mtime_ns for p in trial_files(out)}
    assert 4 <= len(kept) < N_TRIALS
    model = out / "variants" / "small_relu" / "model.npz"
    stamp = model.stat().st_mtime_ns
    assert "small relu" in (out / "summary.md").read_text()         # the interrupted summary lists it
    r = run(cmd)
    assert r.returncode == 0, r.stderr
    assert f"resuming {out}: {len(kept)} finished trial(s) read back" in r.stdout, r.stdout
    assert model.stat().st_mtime_ns == stamp                         # read back, not trained again
    assert all(os.stat(p).st_mtime_ns == t for p, t in kept.items())
    assert figures(out) == figures(straight)


def test_kill_9_at_any_moment_resumes_to_the_same_summary(straight, tmp_path, mnist_dir):
    """kill -9 of the sweep again and again, until a run gets to the end: first during its start-up,
    then each time a random moment after one more trial has been written (while the next trials
    train, or one is being stored).  The folder never holds a half-written trial, a finished trial is
    never lost, and the end is the uninterrupted sweep's."""
    (tmp_path / "grid.toml").write_text(GRID)
    out = tmp_path / "s"
    cmd = command(tmp_path / "grid.toml", mnist_dir, out, "--jobs", "2")
    rng = random.Random(16)
    kills, finished_before = 0, []
    for attempt in range(3 * N_TRIALS):
        before = len(trial_files(out)) if out.exists() else 0
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + (rng.uniform(0.2, 1.5) if attempt == 0 else 120)
        while p.poll() is None and time.monotonic() < deadline:
            if attempt and out.exists() and len(trial_files(out)) > before:
                time.sleep(rng.uniform(0.0, 0.8))
                break
            time.sleep(0.02)
        if p.poll() is None:
            p.kill()
            kills += 1
        out_text, err = p.communicate()
        if p.returncode == 0:
            break
        assert p.returncode == -signal.SIGKILL, err
        check_whole(out)
        now = {str(f.parent.relative_to(out)) for f in trial_files(out)}
        lost = finished_before[-1] - now if finished_before else set()
        assert not lost, f"attempt {attempt} lost the finished trial(s) {lost}"
        finished_before.append(now)
    assert p.returncode == 0, err
    assert kills >= 4, "the sweep was hardly stopped"
    assert figures(out) == figures(straight)
    assert not [p for p in out.rglob(".*") if p.name not in (".nnumpy-run",)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]    # no lock or temporary folder


def test_a_damaged_or_missing_trial_is_trained_again(straight, tmp_path, mnist_dir):
    import shutil
    (tmp_path / "grid.toml").write_text(GRID)
    out = tmp_path / "s"
    shutil.copytree(straight, out)
    (out / "trials" / "small_relu" / "lr-0.1" / "trial.json").write_text("{not json")
    shutil.rmtree(out / "trials" / "wide" / "final")
    (out / "variants" / "small_sigmoid" / "model.npz").write_bytes(b"damaged")
    kept = out / "variants" / "small_relu" / "model.npz"
    stamp = kept.stat().st_mtime_ns
    r = run(command(tmp_path / "grid.toml", mnist_dir, out))
    assert r.returncode == 0, r.stderr
    # read back: 10 - the three damaged - small relu's final (known only once its tuning is whole again)
    assert "6 finished trial(s) read back, 3 to train" in r.stdout, r.stdout
    assert kept.stat().st_mtime_ns == stamp            # its tuning retrained chose the same rate: read back
    assert figures(out) == figures(straight)


def test_edited_trial_records_are_trained_again_and_nothing_else_is_touched(straight, tmp_path, mnist_dir):
    """Figures out of range (an accuracy of -5 or 1e308, an integer too large for a float), a history
    that is not the trial's, odd diagnostics: those trials are trained again, not believed, and the
    sweep ends as the uninterrupted one; a user's own dot-file in the folder stays."""
    import shutil
    (tmp_path / "grid.toml").write_text(GRID)
    out = tmp_path / "s"
    shutil.copytree(straight, out)

    def edit(path, change):
        meta = json.loads(path.read_text())
        change(meta)
        path.write_text(json.dumps(meta))
    edit(out / "trials" / "small_relu" / "lr-0.03" / "trial.json", lambda m: m["metrics"].update(val_acc=-5))
    edit(out / "trials" / "small_relu" / "lr-0.3" / "trial.json", lambda m: m["metrics"].update(val_acc=10 ** 400))
    edit(out / "trials" / "small_sigmoid" / "lr-0.3" / "trial.json", lambda m: m["history"]["val_acc"].__setitem__(0, 1e308))
    edit(out / "trials" / "wide" / "final" / "trial.json", lambda m: m.update(diagnostics="oops"))
    (out / "variants" / "small_sigmoid" / "history.json").write_text("{}")
    (out / "trials" / "small_relu" / ".my_notes").write_text("mine")
    r = run(command(tmp_path / "grid.toml", mnist_dir, out))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    # read back: wide's three, small relu's lr-0.1, small sigmoid's lr-1.0; trained: the three edited
    # tuning trials and small sigmoid's final (its history); small relu's final is read back once its
    # tuning is whole again
    assert "5 finished trial(s) read back, 3 to train" in r.stdout and "(4 trial(s) trained" in r.stdout, r.stdout
    assert figures(out) == figures(straight)
    assert (out / "trials" / "small_relu" / ".my_notes").read_text() == "mine"
    # a config.json that nnumpy did not write: refused, not a traceback
    cfg = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**cfg, "trials": {"x": 1}, "variants": [{"name": ["x"]}]}))
    r = run(command(tmp_path / "grid.toml", mnist_dir, out))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "holds another sweep" in r.stderr, r.stderr


def test_a_changed_sweep_is_refused_naming_what_changed_and_restart_starts_over(straight, tmp_path, mnist_dir):
    import shutil
    grid = tmp_path / "changed.toml"
    grid.write_text(GRID.replace("lrs = [0.3, 1.0]", "lrs = [0.3, 3.0]"))
    out = tmp_path / "s"
    shutil.copytree(straight, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    r = run(command(grid, mnist_dir, out))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "holds another sweep (lrs: [0.3, 1.0] -> [0.3, 3.0] (variant 'small sigmoid'))" in r.stderr, r.stderr
    assert "--restart to start over" in r.stderr
    (tmp_path / "grid.toml").write_text(GRID)
    same = command(tmp_path / "grid.toml", tmp_path / "no-data", out)
    r = run(same + ["--seed", "4"])                   # refused before the data is looked for
    assert r.returncode == 2 and "holds another sweep (seed: 0 -> 4)" in r.stderr, r.stderr
    r = run(same + ["--resume", "--restart"])
    assert r.returncode == 2 and "exclude each other" in r.stderr, r.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before        # untouched
    # an option given with the value the sweep had is the same sweep: read back, nothing trained
    r = run(command(tmp_path / "grid.toml", mnist_dir, out, "--seed", "0", "--dataset", "mnist", "--epochs", "6"))
    assert r.returncode == 0 and f"{N_TRIALS} finished trial(s) read back, 0 to train" in r.stdout, r.stderr
    r = run(command(grid, mnist_dir, out, "--restart"))
    assert r.returncode == 0, r.stderr
    assert "read back" not in r.stdout
    assert "lr-3.0" in {p.parent.name for p in trial_files(out)}
    assert "lr-1.0" not in {p.parent.name for p in trial_files(out)}
    # --resume insists; a folder that is not nnumpy's is never touched
    r = run(command(grid, mnist_dir, tmp_path / "nothing", "--resume"))
    assert r.returncode == 2 and "no stopped sweep to resume" in r.stderr and not (tmp_path / "nothing").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for extra in ((), ("--restart",)):
        r = run(command(grid, mnist_dir, mine, *extra))
        assert r.returncode == 2 and "not written by nnumpy" in r.stderr, r.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_data_location_change_still_resumes(straight, tmp_path, mnist_dir):
    import shutil
    (tmp_path / "grid.toml").write_text(GRID)
    out = tmp_path / "s"
    shutil.copytree(straight, out)
    data = tmp_path / "elsewhere"
    shutil.copytree(mnist_dir, data)
    r = run(command(tmp_path / "grid.toml", data, out))
    assert r.returncode == 0, r.stderr
    assert f"{N_TRIALS} finished trial(s) read back, 0 to train" in r.stdout


def test_a_trial_that_raises_is_recorded_the_sweep_goes_on_and_a_rerun_tries_it_again(straight, tmp_path,
                                                                                       mnist_dir, monkeypatch):
    """One tuning trial raises (in its worker process): it is recorded in tuning.csv and in its variant's
    note, not retried in that run, the other variants finish and the favourite is tested; the next run
    tries it again and ends as the uninterrupted sweep."""
    from nnumpy.runconfig import load_sweep_config
    (tmp_path / "grid.toml").write_text(GRID)
    spec = load_sweep_config(tmp_path / "grid.toml")
    overrides = {"data_root": str(mnist_dir), "limit_train": 12000, "limit_test": 300, "download": False}
    out = tmp_path / "s"
    calls = tmp_path / "calls.txt"
    monkeypatch.setattr(sweeps, "run_trial", workers.FailingTrial("small_sigmoid/lr-1.0", str(calls)))
    results = sweeps.sweep(spec, out, jobs=2, overrides=dict(overrides), progress=False, log=lambda s: None)
    sig = next(r for r in results if r["variant"] == "small sigmoid")
    assert sig["status"].startswith("1 tuning trial(s) failed (RuntimeError: trial small_sigmoid/lr-1.0 failed")
    assert sig["run"] is None and any("test_acc" in r for r in results)
    tuning = (out / "tuning.csv").read_text()
    assert "RuntimeError: trial small_sigmoid/lr-1.0 failed on purpose" in tuning
    assert not (out / "trials" / "small_sigmoid" / "lr-1.0").exists()        # a trial folder is a done trial
    meta = json.loads((out / "trials" / "small_sigmoid" / "lr-1.0.error.json").read_text())
    assert meta["status"] == "error" and "on purpose" in meta["error"]
    assert calls.read_text().split().count("small_sigmoid/lr-1.0") == 1      # recorded, not retried
    assert "1 tuning trial(s) failed" in (out / "summary.md").read_text()
    monkeypatch.undo()
    logged = []
    sweeps.sweep(spec, out, jobs=2, overrides=dict(overrides), progress=False, log=logged.append)
    assert any("8 finished trial(s) read back, 1 to train" in s for s in logged), logged
    assert figures(out) == figures(straight)
    assert not list((out / "trials").glob("*/*.error.json"))                # the error is gone with it


def test_the_progress_line_says_done_running_left_and_the_time(tmp_path, mnist_dir, capsys):
    from nnumpy.runconfig import load_sweep_config
    (tmp_path / "grid.toml").write_text(GRID)
    spec = load_sweep_config(tmp_path / "grid.toml")
    overrides = {"data_root": str(mnist_dir), "limit_train": 12000, "limit_test": 300, "download": False}
    sweeps.sweep(spec, tmp_path / "s", jobs=2, overrides=overrides, progress=True)
    err = capsys.readouterr().err
    assert "trials: 0 done, 2 running, 8 left" in err, err[-2000:]
    assert "trials: 9 done, 0 running, 0 left" in err or "trials: 9 done, 1 running, 0 left" in err
    assert " elapsed, ~" in err and " to go" in err


def test_bad_sweep_arguments_are_refused_before_anything_is_written(tmp_path, mnist_dir):
    from nnumpy.runconfig import load_sweep_config
    (tmp_path / "grid.toml").write_text(GRID)
    spec = load_sweep_config(tmp_path / "grid.toml")
    for kwargs, words in (({"scheduler": ""}, "scheduler must be an address"),
                          ({"scheduler": "tcp://h"}, "has no valid host and port"),
                          ({"connect_timeout": float("nan")}, r"connect_timeout must be a number of seconds in \(0"),
                          ({"connect_timeout": 0}, "connect_timeout must be a number of seconds"),
                          ({"connect_timeout": True}, "connect_timeout must be a number of seconds"),
                          ({"jobs": 0}, "jobs must be a positive integer"),
                          ({"jobs": "2"}, "jobs must be a positive integer"),
                          ({"overrides": "x"}, "overrides must be a dict"),
                          ({"restart": True, "resume": True}, "exclude each other")):
        with pytest.raises(ConfigError, match=words):
            sweeps.sweep(spec, tmp_path / "s", **{"overrides": {"data_root": str(mnist_dir)}, **kwargs})
    assert not (tmp_path / "s").exists()
