"""Sweeps on a real Dask cluster on this machine: a scheduler and two workers on 127.0.0.1.

Each is a separate process started with Dask's own command line, each worker
in its own working folder with its own (empty) NNUMPY_DATA, as separate
machines would be: the workers get the data from the client (scattered once),
never from the client's files.  The sweep run through them must equal the
same sweep run in local processes, also when a worker is killed midway and
when the client is killed and the command run again.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import require_package
from sweeptools import closed_port, command, figures, run, trial_files

pytestmark = pytest.mark.backend_independent          # (both runs in a test use the same backend)

GRID = """
[settings]
epochs = 4
tune_epochs = 2
seed = 3
[[variants]]
name = "relu"
arch = "784-100-10"
lrs = [0.03, 0.1, 0.3]
[[variants]]
name = "sigmoid"
arch = "784-100-10"
activation = "sigmoid"
lrs = [0.3, 1.0, 1e20]
[[variants]]
name = "two layers"
arch = "784-128-64-10"
lrs = [0.05, 0.2]
"""
N_TRIALS = 3 + 3 + 2 + 3


def dask_command(name):
    return [sys.executable, "-m", f"distributed.cli.dask_{name}"]


class Cluster:
    """A Dask scheduler and workers, each a process group of its own (a worker runs under a nanny)."""

    def __init__(self, root):
        self.root, self.workers = root, []
        self.file = root / "scheduler.json"
        env = {**os.environ, "NNUMPY_DATA": str(root / "no-data")}
        self.env = env
        self.scheduler = subprocess.Popen(
            dask_command("scheduler") + ["--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
                                         "--scheduler-file", str(self.file)],
            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=open(root / "scheduler.log", "w"),
            start_new_session=True)
        deadline = time.monotonic() + 60
        while not self.file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]
        for _ in range(2):
            self.start_worker()
        self.wait_for(2)

    def start_worker(self):
        folder = self.root / f"worker{len(self.workers)}"
        folder.mkdir()
        p = subprocess.Popen(dask_command("worker") + [self.address, "--nthreads", "1", "--local-directory",
                                                       str(folder), "--name", folder.name],
                             cwd=folder, env=self.env, stdout=subprocess.DEVNULL,
                             stderr=open(folder / "worker.log", "w"), start_new_session=True)
        self.workers.append(p)
        return p

    def n_workers(self):
        from distributed import Client
        with Client(self.address, timeout=20) as c:
            return len(c.scheduler_info()["workers"])

    def wait_for(self, n, timeout=90):
        deadline = time.monotonic() + timeout
        while self.n_workers() != n:
            assert time.monotonic() < deadline, f"the cluster did not get to {n} workers"
            time.sleep(0.5)

    def kill(self, p):
        os.killpg(p.pid, signal.SIGKILL)             # the worker and its nanny: gone for good
        p.wait()

    def close(self):
        for p in self.workers + [self.scheduler]:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.workers + [self.scheduler]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_package("distributed", "distributed")
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    yield c
    c.close()


def pids(out):
    return {json.loads(p.read_text())["diagnostics"]["pid"] for p in trial_files(out)}


@pytest.fixture(scope="module")
def local(tmp_path_factory, mnist_dir):
    folder = tmp_path_factory.mktemp("local")
    (folder / "grid.toml").write_text(GRID)
    r = run(command(folder / "grid.toml", mnist_dir, folder / "s", "--jobs", "2"))
    assert r.returncode == 0, r.stderr
    assert len(trial_files(folder / "s")) == N_TRIALS
    return folder / "s"


def test_a_sweep_on_the_cluster_equals_the_same_sweep_run_locally(cluster, local, tmp_path, mnist_dir):
    (tmp_path / "grid.toml").write_text(GRID)
    out = tmp_path / "s"
    r = run(command(tmp_path / "grid.toml", mnist_dir, out, "--scheduler", cluster.address))
    assert r.returncode == 0, r.stderr
    assert f"on the Dask cluster at {cluster.address}" in r.stdout
    assert "2 worker(s), 2 thread(s); dashboard http://127.0.0.1:" in r.stdout, r.stdout
    assert figures(out) == figures(local)
    assert len(pids(out)) == 2 and not pids(out) & pids(local)           # both workers ran trials
    # NNUMPY_SCHEDULER does the same as --scheduler; the workers had no data of their own
    r = run(command(tmp_path / "grid.toml", mnist_dir, tmp_path / "env"), env={**os.environ,
                                                                           "NNUMPY_SCHEDULER": cluster.address})
    assert r.returncode == 0, r.stderr
    assert figures(tmp_path / "env") == figures(local)
    assert not (cluster.root / "no-data").exists()


def test_a_worker_killed_midway_the_sweep_completes_with_the_same_results(cluster, local, tmp_path, mnist_dir):
    (tmp_path / "grid.toml").write_text(GRID)
    out = tmp_path / "s"
    p = subprocess.Popen(command(tmp_path / "grid.toml", mnist_dir, out, "--scheduler", cluster.address),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(trial_files(out) if out.exists() else []) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = cluster.workers[0]
    cluster.kill(victim)                              # while both workers are training
    stdout, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert figures(out) == figures(local)
    assert len(trial_files(out)) == N_TRIALS
    cluster.start_worker()                            # (two workers again for the next test)
    cluster.wait_for(2)


def test_a_killed_client_resumes_on_the_cluster(cluster, local, tmp_path, mnist_dir):
    (tmp_path / "grid.toml").write_text(GRID)
    out = tmp_path / "s"
    cmd = command(tmp_path / "grid.toml", mnist_dir, out, "--scheduler", cluster.address)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(trial_files(out) if out.exists() else []) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    p.kill()
    p.communicate()
    done = len(trial_files(out))
    assert 3 <= done < N_TRIALS
    r = run(cmd)
    assert r.returncode == 0, r.stderr
    assert f"{done} finished trial(s) read back" in r.stdout or f"{done + 1} finished trial(s) read back" in r.stdout
    assert figures(out) == figures(local)


def test_an_unreachable_scheduler_is_a_clear_error_within_the_timeout(tmp_path, mnist_dir):
    require_package("distributed", "distributed")
    (tmp_path / "grid.toml").write_text(GRID)
    port = closed_port()
    t0 = time.monotonic()
    r = run(command(tmp_path / "grid.toml", mnist_dir, tmp_path / "s", "--scheduler", f"tcp://127.0.0.1:{port}",
                    "--connect-timeout", "3"))
    assert time.monotonic() - t0 < 30
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"nnumpy sweep: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: "
                               f"nothing listens at 127.0.0.1:{port} (connection refused)"), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml"]      # nothing written
    for address, words in (("http://127.0.0.1:8786", "unknown scheme 'http://'"),
                           ("tcp://127.0.0.1", "has no valid host and port"),
                           ("tcp://127.0.0.1:99999", "has no valid host and port")):
        r = run(command(tmp_path / "grid.toml", mnist_dir, tmp_path / "s", "--scheduler", address))
        assert r.returncode == 2 and f"--scheduler {address!r}" in r.stderr and words in r.stderr, r.stderr
    r = run(command(tmp_path / "grid.toml", mnist_dir, tmp_path / "s"), env={**os.environ, "NNUMPY_SCHEDULER": "x://y"})
    assert r.returncode == 2 and "NNUMPY_SCHEDULER 'x://y': unknown scheme" in r.stderr, r.stderr
    r = run(command(tmp_path / "grid.toml", mnist_dir, tmp_path / "s", "--scheduler", "tcp://x:1", "--jobs", "2"))
    assert r.returncode == 2 and "give one of the two" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml"]


def test_a_scheduler_without_workers_is_a_clear_error(tmp_path, mnist_dir):
    require_package("distributed", "distributed")
    lonely = Cluster.__new__(Cluster)                 # a scheduler alone
    lonely.root, lonely.workers, lonely.file = tmp_path, [], tmp_path / "scheduler.json"
    lonely.env = {**os.environ}
    lonely.scheduler = subprocess.Popen(
        dask_command("scheduler") + ["--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
                                     "--scheduler-file", str(lonely.file)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not lonely.file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(lonely.file.read_text())["address"]
        (tmp_path / "grid.toml").write_text(GRID)
        r = run(command(tmp_path / "grid.toml", mnist_dir, tmp_path / "s", "--scheduler", address,
                        "--connect-timeout", "2"))
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"the Dask scheduler at {address} has no workers (waited 2 s); start some: dask worker" in r.stderr
        assert not (tmp_path / "s").exists()
    finally:
        lonely.close()
