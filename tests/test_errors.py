"""Failures reach the user from any process: every public exception survives
pickling, a parallel sweep stops at its first failure with the message a
serial one gives, and an offline first run fails fast, clearly and cleanly."""
import importlib
import inspect
import multiprocessing as mp
import os
import pickle
import pkgutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nnumpy
import workers
from sweeptools import closed_port
from nnumpy._checks import ArgumentTypeError
from nnumpy.datasets import ChecksumError, DatasetNotFoundError, DatasetWarning, DownloadError, IDXFormatError
from nnumpy.experiments import ConfigError, SweepInterrupted
from nnumpy.parallel import ClusterError, LocalExecutor, WorkerDied
from nnumpy.rundir import RunFolderError, RunFolderExistsError
from nnumpy.nn import StateDictError
from nnumpy.serialization import ModelFileError, NotDescribable
from nnumpy.checkpoint import CheckpointError
from nnumpy.nn.utils import NonFiniteNormError
from nnumpy.training import History, ResumeError, StopTraining, TrainingDivergedError, TrainingInterrupted

HISTORY = History(epoch=[1, 2], train_loss=[0.5, 0.25], train_acc=[0.8, 0.9], val_loss=[0.6, 0.3],
                  val_acc=[0.7, 0.85], lr=[0.1, 0.05], seconds=[1.0, 1.1])
#: One instance of every public exception (and warning) class nnumpy defines.
EXAMPLES = {
    StateDictError: lambda: StateDictError("cannot load state dict into MLP: missing key(s): 0.bias"),
    ModelFileError: lambda: ModelFileError("m.npz: not a readable .npz model file"),
    NotDescribable: lambda: NotDescribable("save() can rebuild nnumpy's modules and registered custom modules, not Block"),
    IDXFormatError: lambda: IDXFormatError("x.idx: bad leading bytes"),
    ChecksumError: lambda: ChecksumError("x.gz: checksum mismatch"),
    ConfigError: lambda: ConfigError("lr must be positive, got -1.0"),
    TrainingDivergedError: lambda: TrainingDivergedError("the training loss became nan at epoch 2, step 7 of 844",
                                                         epoch=2, step=7, what="training loss"),
    TrainingInterrupted: lambda: TrainingInterrupted(HISTORY),
    SweepInterrupted: lambda: SweepInterrupted("sweep interrupted; 2 of 6 variant(s) finished"),
    WorkerDied: lambda: WorkerDied("a worker process died while running task 3 (exit code -9)"),
    ClusterError: lambda: ClusterError("cannot reach the Dask scheduler at tcp://127.0.0.1:1 (gave up after 10 s)"),
    ArgumentTypeError: lambda: ArgumentTypeError("fit: epochs must be a positive integer, got 2.7"),
    CheckpointError: lambda: CheckpointError("ck.npz: the checkpoint's model does not fit the model given"),
    ResumeError: lambda: ResumeError("fit(resume=...): ck.npz was written by a run with other settings"),
    StopTraining: lambda: StopTraining("enough"),
    NonFiniteNormError: lambda: NonFiniteNormError(float("inf"), 2.0),
    RunFolderError: lambda: RunFolderError("another nnumpy run is writing runs/a"),
    RunFolderExistsError: lambda: RunFolderExistsError("runs/a already exists; pass --overwrite"),
    DatasetWarning: lambda: DatasetWarning("not using /data/x.gz: checksum mismatch"),
    DownloadError: lambda: DownloadError("train-images-idx3-ubyte.gz",
                                         [("https://a/x.gz", "HTTP 500"), ("https://a/x.gz", "HTTP 500"),
                                          ("https://b/x.gz", "HTTP 404")], dataset="mnist", root="/data/mnist"),
    DatasetNotFoundError: lambda: DatasetNotFoundError("mnist", {"t10k-labels-idx1-ubyte.gz": ["bad checksum"],
                                                                 "train-images-idx3-ubyte.gz": []},
                                                       ["/a/mnist", "/b/mnist"], "download=False"),
}


def public_exception_classes():
    found = set()
    for info in pkgutil.walk_packages(nnumpy.__path__, "nnumpy."):
        if info.name.endswith("__main__"):
            continue
        for name, obj in vars(importlib.import_module(info.name)).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException) and not name.startswith("_")
                    and obj.__module__.startswith("nnumpy")):
                found.add(obj)
    return found


def test_every_public_exception_class_has_an_example():
    assert public_exception_classes() == set(EXAMPLES)


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda c: c.__name__)
def test_exceptions_survive_pickling(cls):
    e = EXAMPLES[cls]()
    e.added = {"note": "an attribute set after construction"}
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is cls and str(back) == str(e) and back.args == e.args
    assert vars(back) == vars(e)
    if hasattr(e, "message"):
        assert back.message(cli=True) == e.message(cli=True)


def test_data_errors_speak_the_interface_in_use():
    for e in (EXAMPLES[DatasetNotFoundError](), DownloadError("x.gz", [("u", "HTTP 404")], dataset="mnist")):
        py, cli = e.message(), e.message(cli=True)
        assert "root=DIR" in py and "--data-root" not in py
        assert "--data-root DIR" in cli and "root=DIR" not in cli
        assert "NNUMPY_DATA" in py and "NNUMPY_DATA" in cli
    text = str(EXAMPLES[DownloadError]())
    assert "https://a/x.gz: HTTP 500 (2 attempts)" in text and text.count("https://a/x.gz") == 1


# -- parallel execution -------------------------------------------------------------------
def wait_no_children(seconds=10):
    deadline = time.monotonic() + seconds
    while mp.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    return mp.active_children()


@pytest.mark.parametrize("fn,error", [(workers.fail_after, DownloadError),
                                      (workers.fail_unpicklably, RuntimeError)],
                         ids=["exception", "unpicklable"])
def test_a_task_that_raises_reaches_its_future_with_the_workers_traceback(fn, error):
    with LocalExecutor(2) as ex:
        bad, good = ex.submit(workers.call, fn, 0.2), ex.submit(workers.sleep_then, 0.1, "fine")
        assert good.result(timeout=60) == "fine"
        with pytest.raises(error) as info:
            bad.result(timeout=60)
    assert "Traceback" in str(info.value.__cause__) and fn.__name__ in str(info.value.__cause__)
    if error is DownloadError:
        assert info.value.failures == [("http://127.0.0.1:9/x.gz", "HTTP 404 Not Found")]
    else:
        assert "Unpicklable: carries a lambda" in str(info.value)
    assert wait_no_children() == []


def test_a_dead_worker_is_replaced_and_its_task_run_again(tmp_path):
    """A worker killed while running a task: a new worker takes its place and runs the task again
    (the task here dies on its first two tries only); a task that kills every worker it runs in
    ends as WorkerDied after max_failures tries, and the executor keeps working."""
    marker = tmp_path / "tries"
    with LocalExecutor(2, max_failures=3) as ex:
        flaky = ex.submit(workers.die_first, str(marker), 2, "survived")
        doomed = ex.submit(workers.die, 0.1)
        assert flaky.result(timeout=120) == "survived"
        with pytest.raises(WorkerDied, match="4 time"):
            doomed.result(timeout=120)
        assert ex.submit(workers.sleep_then, 0, "still here").result(timeout=60) == "still here"
    assert marker.read_text() == "xxx"
    assert wait_no_children() == []


def test_an_unpicklable_task_is_refused_and_the_executor_goes_on():
    with LocalExecutor(1) as ex:
        bad = ex.submit(lambda: 1)
        with pytest.raises(TypeError, match="must be picklable"):
            bad.result(timeout=60)
        assert ex.submit(workers.sleep_then, 0, "next").result(timeout=60) == "next"
    for jobs, failures, words in ((0, 3, "jobs must be an integer >= 1"), (1.5, 3, "jobs must be an integer"),
                                  (True, 3, "jobs must be an integer"), (2, -1, "max_failures must be an integer >= 0")):
        with pytest.raises(ValueError, match=words):
            LocalExecutor(jobs, max_failures=failures)
    assert wait_no_children() == []


def test_cancelling_stops_every_worker_at_once():
    t0 = time.monotonic()
    ex = LocalExecutor(2)
    futures = [ex.submit(workers.sleep_then, 120, i) for i in range(4)]
    time.sleep(1)
    ex.shutdown(cancel_futures=True)
    assert time.monotonic() - t0 < 30                 # not the 120 s of a task: the workers were stopped
    assert all(f.done() for f in futures)
    assert wait_no_children() == []
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(workers.sleep_then, 0, 0)


def test_results_arrive_from_every_worker():
    with LocalExecutor(2) as ex:
        futures = [ex.submit(workers.sleep_then, 0.1, i) for i in range(5)]
        assert [f.result(timeout=60) for f in futures] == [0, 1, 2, 3, 4]
    assert wait_no_children() == []


def test_workers_end_with_their_parent(tmp_path):
    """kill -9 of the process that started the workers: they end too (no orphan trains on)."""
    script = tmp_path / "parent.py"
    script.write_text(f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
import workers
from nnumpy.parallel import LocalExecutor
if __name__ == "__main__":
    ex = LocalExecutor(2)
    f = ex.submit(workers.sleep_then, 300, 0)
    time.sleep(2)
    print(" ".join(str(p.pid) for p, _, _ in ex._workers), flush=True)
    time.sleep(300)
""")
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    pids = [int(x) for x in p.stdout.readline().split()]
    assert len(pids) == 2
    p.kill()
    p.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:                                              # a zombie (ended, not yet reaped by init) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return True
    return True


# -- the README's main command, offline ------------------------------------------------------
def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def offline_sweep(tmp_path, jobs):
    """The README's main command on a machine without the data or a network
    (the mirror is a closed port on 127.0.0.1); returns its stderr."""
    work = tmp_path / "work"
    work.mkdir(parents=True)
    env = {**os.environ, "NNUMPY_DATA": str(tmp_path / "nowhere" / "data")}
    env.pop("NNUMPY_OFFLINE", None)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "nnumpy", "sweep", "--preset", "practical", "--out", "runs/practical",
                        "--jobs", str(jobs), "--mirror", f"http://127.0.0.1:{closed_port()}/mnist/"],
                       cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - t0 < 60
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("nnumpy sweep: error: could not download train-images-idx3-ubyte.gz")
    assert "--data-root DIR" in r.stderr and "NNUMPY_DATA=DIR" in r.stderr and "root=DIR" not in r.stderr
    assert listing(tmp_path) == ["work"]          # no data folder, no run folder, nothing half-made
    return r.stderr


def test_offline_first_run_fails_fast_clearly_and_cleanly_serial_or_parallel(tmp_path):
    a = offline_sweep(tmp_path / "a", 1)
    b = offline_sweep(tmp_path / "b", 2)
    port = lambda text: text.split("127.0.0.1:")[1].split("/")[0]     # noqa: E731
    assert a.replace(port(a), "PORT") == b.replace(port(b), "PORT")


def test_ctrl_c_stops_a_parallel_sweep_with_one_message(tmp_path, mnist_dir):
    out = tmp_path / "sweep"
    p = subprocess.Popen([sys.executable, "-m", "nnumpy", "sweep", "--preset", "practical", "--jobs", "2",
                          "--out", str(out), "--data-root", str(mnist_dir), "--limit-train", "5000", "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / ".sweep.lock").exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.2)
    time.sleep(3)                                 # the workers are training now
    os.killpg(p.pid, signal.SIGINT)               # Ctrl-C in a terminal reaches the whole process group
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "interrupted" in err, err
