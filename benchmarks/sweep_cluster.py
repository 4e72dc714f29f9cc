"""What running a sweep's trials on a Dask cluster costs, measured on this
machine, and what a large sweep would take on more workers.

    python benchmarks/sweep_cluster.py --rounds 5          # ~20 minutes of both cores
    python benchmarks/sweep_cluster.py --quick --out /tmp/sc  # a smoke test (~40 s), not a claim

1. Dask vs local processes on the practical preset.  Two contenders, each a
   fresh ``nnumpy sweep --preset practical`` subprocess writing a fresh
   folder: ``local`` (``--jobs 2``) and ``dask`` (``--scheduler
   tcp://127.0.0.1:PORT``).  The cluster is started once, before the rounds
   (one ``dask scheduler`` and two ``dask worker --nthreads 1`` processes,
   each in its own folder, all on 127.0.0.1); its start-up is not part of any
   sweep's time.  The wall time of a sweep is measured around its subprocess
   (so it includes Python's start-up, loading and checking the data, and
   writing the folder).  ``--rounds`` rounds (at least 5 for a claim) each run
   both contenders, in an order that alternates every round; each contender
   gets the median, min and max of its times, and Dask's overhead is the
   median of the per-round ratios dask / local (paired, so it survives drift
   of the machine) minus 1, with the ratios' min-max.  Both contenders must
   write the same summary.csv (trials train with one BLAS thread, so where a
   trial runs does not change its numbers): checked every round.
2. The cost of one trial: the in-worker seconds in the trial.json files of
   the last local round (per variant: median of the tuning trials, the final
   trial), and their total (the sweep's compute).
3. Overhead per task: N trivial tasks (a function returning its argument)
   through the Dask cluster's ``concurrent.futures`` executor and through
   ``nnumpy.parallel.LocalExecutor(2)``, at most workers + 1 in flight (as the
   sweep submits), after a warm-up: seconds per task = wall / N.
4. A projection: a 600-trial sweep (100 variants = 50 architectures x 2
   activations, each 5 tuning trials and 1 final trial) on 1, 8 and 64
   workers, from the figures above (the assumptions are printed with it).

Results go to benchmarks/results/sweep_cluster.json and .txt (``--out STEM``
for STEM.json and STEM.txt; with ``--quick`` a temporary folder unless
``--out`` is given: a quick run never replaces the committed results).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import importlib.util
import io
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "sweep_cluster"
CONTENDERS = ("local", "dask")
N_WORKERS = 2                  # dask workers (one thread each) = local worker processes (--jobs)
MIN_ROUNDS_FOR_CLAIMS = 5
QUICK_SWEEP_ARGS = ["--limit-train", "2000", "--limit-test", "500", "--epochs", "1", "--tune-epochs", "1"]
#: The sweep projected in part 4.
TEACHER = {"architectures": 50, "activations": 2, "tune_per_variant": 5, "final_per_variant": 1}
PROJECT_WORKERS = (1, 8, 64)
BRANCHING = 2                  # distributed's Scheduler.replicate: each holder feeds up to 2 new workers a round
GBIT = 125e6                   # bytes per second of a 1 Gbit/s link


def echo(x):
    """The trivial task of part 3 (module level: the workers find it by name or get it by value)."""
    return x


# ---------------------------------------------------------------------------------------------
# The local Dask cluster
# ---------------------------------------------------------------------------------------------
class Cluster:
    """One scheduler and ``n`` single-threaded workers on 127.0.0.1, each process in its own session
    (process group) and folder, stopped by terminating the groups."""

    def __init__(self, base, n=N_WORKERS, timeout=120):
        self.base, self.n, self.timeout = Path(base), n, timeout
        self.procs, self.address, self.startup_seconds = [], None, None

    def _spawn(self, name, cmd, env=None):
        folder = self.base / name
        folder.mkdir(parents=True)
        log = open(folder / "log.txt", "w")
        p = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, env=env)
        log.close()
        p.name, p.log = name, folder / "log.txt"
        self.procs.append(p)
        return p

    def _failed(self, what):
        tails = []
        for p in self.procs:
            with contextlib.suppress(OSError):
                lines = p.log.read_text(errors="replace").strip().splitlines()[-8:]
                tails.append(f"--- {p.name} (exit {p.poll()}):\n" + "\n".join(lines))
        return RuntimeError(f"the local Dask cluster did not start: {what}\n" + "\n".join(tails))

    def start(self):
        t0 = time.perf_counter()
        sched_file = self.base / "scheduler.json"
        self._spawn("scheduler", [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", "0", "--scheduler-file", str(sched_file),
                                  "--dashboard-address", "127.0.0.1:0",
                                  "--idle-timeout", "3600s"])         # a safety net if this script is killed -9
        deadline = time.monotonic() + self.timeout
        while True:
            with contextlib.suppress(OSError, ValueError):
                self.address = json.loads(sched_file.read_text())["address"]
                break
            if self.procs[0].poll() is not None or time.monotonic() > deadline:
                raise self._failed("no scheduler file")
            time.sleep(0.1)
        from nnumpy.parallel import _BLAS_THREADS
        env = {**os.environ, **{k: "1" for k in _BLAS_THREADS}}     # as LocalExecutor starts its workers
        for i in range(self.n):
            folder = self.base / f"worker-{i}"
            self._spawn(f"worker-{i}", [sys.executable, "-m", "distributed.cli.dask_worker", self.address,
                                        "--nthreads", "1", "--nworkers", "1", "--name", f"worker-{i}",
                                        "--host", "127.0.0.1", "--local-directory", str(folder / "dask"),
                                        "--dashboard-address", "127.0.0.1:0", "--death-timeout", "60"], env=env)
        from distributed import Client
        from nnumpy.parallel import worker_info
        with Client(self.address, timeout=30, set_as_default=False) as client:
            try:
                client.wait_for_workers(self.n, timeout=max(1.0, deadline - time.monotonic()))
            except Exception as e:
                raise self._failed(f"{type(e).__name__}: {e}") from None
            client.run(worker_info)                                  # nnumpy imported in the workers
        self.startup_seconds = time.perf_counter() - t0
        return self

    def stop(self):
        """Terminate every process group (workers first), then kill what is left."""
        for p in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        time.sleep(0.2)
        for p in self.procs:                        # a group member that outlived its leader (a nanny's child)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
        self.procs = []


# ---------------------------------------------------------------------------------------------
# Part 1 and 2: the sweeps
# ---------------------------------------------------------------------------------------------
def _cli_wall(stdout):
    """The sweep's own "  wall time 12.3 s" (or "1.4 min") line, in seconds; None if absent."""
    m = re.findall(r"wall time ([0-9.]+) (s|min)", stdout)
    if not m:
        return None
    value, unit = m[-1]
    return float(value) * (60 if unit == "min" else 1)


def run_sweep(contender, out, args, cluster):
    cmd = [sys.executable, "-m", "nnumpy", "sweep", "--preset", "practical", "--out", str(out), "--quiet",
           "--offline", "--data-root", str(args.data_root)] + args.sweep_args
    cmd += ["--jobs", str(N_WORKERS)] if contender == "local" else ["--scheduler", cluster.address]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=out.parent,
                       stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        tail = "\n".join((r.stderr.strip() + "\n" + r.stdout.strip()).strip().splitlines()[-15:])
        raise RuntimeError(f"the {contender} sweep exited with status {r.returncode}:\n{tail}")
    return wall, _cli_wall(r.stdout)


def read_trials(folder):
    """Every trial.json of a sweep folder: (kind, variant, lr, status, diagnostics)."""
    rows = []
    for path in sorted(Path(folder, "trials").glob("*/*/trial.json")):
        meta = json.loads(path.read_text())
        rows.append({"kind": meta["kind"], "variant": meta["variant"], "lr": meta["lr"], "status": meta["status"],
                     "diagnostics": meta.get("diagnostics") or {}})
    return rows


def trial_cost(trials):
    """Part 2 from the trials of one sweep."""
    def secs(rows, key="seconds"):
        return [r["diagnostics"][key] for r in rows if key in r["diagnostics"]]
    variants = []
    for name in dict.fromkeys(r["variant"] for r in trials):
        tune = [r for r in trials if r["variant"] == name and r["kind"] == "tune"]
        final = [r for r in trials if r["variant"] == name and r["kind"] == "final"]
        variants.append({
            "variant": name, "tune_trials": len(tune),
            "tune_diverged": sum(r["status"] == "diverged" for r in tune),
            "tune_training_seconds_median": statistics.median(secs(tune, "training_seconds")) if tune else None,
            "tune_seconds_median": statistics.median(secs(tune)) if tune else None,
            "final_lr": final[0]["lr"] if final else None,
            "final_training_seconds": final[0]["diagnostics"].get("training_seconds") if final else None,
            "final_seconds": final[0]["diagnostics"].get("seconds") if final else None})
    tune = [r for r in trials if r["kind"] == "tune"]
    final = [r for r in trials if r["kind"] == "final"]
    return {
        "variants": variants, "n_tune": len(tune), "n_final": len(final),
        "total_trial_seconds": sum(secs(trials)), "total_training_seconds": sum(secs(trials, "training_seconds")),
        "mean_tune_seconds": statistics.mean(secs(tune)), "mean_final_seconds": statistics.mean(secs(final)),
        "longest_tune_seconds": max(secs(tune)), "longest_final_seconds": max(secs(final)),
        "processes": len({(r["diagnostics"].get("host"), r["diagnostics"].get("pid")) for r in trials}),
        "blas_threads": sorted({t for r in trials for t in (r["diagnostics"].get("blas_threads") or [])})}


def sweep_rounds(args, cluster, base):
    names = list(CONTENDERS)
    walls, cli, positions, totals = ({k: [] for k in names} for _ in range(4))
    same, last_local, first_summary, identical = [], None, None, True
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        summaries = {}
        for pos, k in enumerate(order):
            folder = base / f"round-{r + 1}-{k}"
            folder.mkdir()
            out = folder / "sweep"
            try:
                wall, own = run_sweep(k, out, args, cluster)
                summaries[k] = (out / "summary.csv").read_bytes()
                trials = read_trials(out)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            walls[k].append(wall)
            cli[k].append(own)
            positions[k].append(pos)
            totals[k].append(sum(t["diagnostics"].get("seconds", 0.0) for t in trials))
            if k == "local":
                last_local = trials
            print(f"# round {r + 1}/{args.rounds} {k:<6}{wall:8.1f} s (the sweep's own wall time "
                  f"{own if own is None else f'{own:.1f} s'}; {len(trials)} trials)", file=sys.stderr, flush=True)
        same.append(summaries["local"] == summaries["dask"])
        first_summary = first_summary or summaries["local"]
        identical = identical and summaries["local"] == first_summary and summaries["dask"] == first_summary
    ratios = [d / loc for d, loc in zip(walls["dask"], walls["local"])]
    result = {"rounds": args.rounds, "contenders": {}, "same_summary": all(same), "same_summary_per_round": same,
              "same_summary_across_rounds": identical}
    for k in names:
        result["contenders"][k] = {**common.summarize(walls[k]), "positions": positions[k], "cli_wall": cli[k],
                                   "trial_seconds_total": totals[k]}
    result["ratio_dask_local"] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
                                  "per_round": ratios}
    result["overhead_percent"] = 100 * (statistics.median(ratios) - 1)
    return result, trial_cost(last_local)


# ---------------------------------------------------------------------------------------------
# Part 3 and 4: tasks and the scatter
# ---------------------------------------------------------------------------------------------
def drive(ex, n, in_flight):
    """Run ``n`` trivial tasks through ``ex``, at most ``in_flight`` at a time; the wall time."""
    running, submitted, done_n = set(), 0, 0
    t0 = time.perf_counter()
    while done_n < n:
        while submitted < n and len(running) < in_flight:
            running.add(ex.submit(echo, submitted))
            submitted += 1
        done, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
        for f in done:
            f.result()
            done_n += 1
    return time.perf_counter() - t0


def task_overhead(args, client):
    from nnumpy.parallel import LocalExecutor
    in_flight = N_WORKERS + 1                      # what the sweep keeps submitted: its slots + 1
    runs = {"dask": [], "local": []}
    dask_ex = client.get_executor(pure=False)
    with LocalExecutor(N_WORKERS) as local_ex:
        executors = {"dask": dask_ex, "local": local_ex}
        for ex in executors.values():
            drive(ex, max(10, args.tasks // 10), in_flight)         # warm-up: connections, imports, caches
        for rep in range(args.task_repeats):
            for k in (("dask", "local") if rep % 2 == 0 else ("local", "dask")):
                runs[k].append(drive(executors[k], args.tasks, in_flight) / args.tasks)
    dask_ex.shutdown(wait=False)
    return {"tasks": args.tasks, "repeats": args.task_repeats, "in_flight": in_flight,
            **{k: {"seconds_per_task": statistics.median(v), "min": min(v), "max": max(v), "runs": v}
               for k, v in runs.items()}}


def scatter_times(args, client, raw):
    """client.scatter of the sweep's data object to one worker, and with broadcast=True to all of them."""
    from nnumpy.trials import RawData
    data = RawData("mnist", *raw)
    times = {"one": [], "all": []}
    holders = {}
    for rep in range(args.scatter_repeats):
        for k in (("one", "all") if rep % 2 == 0 else ("all", "one")):
            t0 = time.perf_counter()
            f = client.scatter(data, broadcast=(k == "all"), hash=False)
            times[k].append(time.perf_counter() - t0)
            holders[k] = len(client.who_has(f).get(f.key, ()))
            client.cancel([f])
            del f
            time.sleep(0.3)                                        # let the workers drop it
    nbytes = int(sum(a.nbytes for a in raw))
    one, all_ = statistics.median(times["one"]), statistics.median(times["all"])
    return {"bytes": nbytes, "workers": len(client.nthreads()), "holders": holders,
            "one_worker": {"median": one, "runs": times["one"]},
            "broadcast": {"median": all_, "runs": times["all"]},
            "copy_seconds": max(all_ - one, 0.0)}


def replicate_rounds(workers):
    """The rounds of the scheduler's tree copy to ``workers`` from one holder: per round, how many new
    workers each holder feeds at most (1 -> 3 -> 9 -> ...)."""
    holders, rounds = 1, []
    while holders < workers:
        new = min(workers - holders, BRANCHING * holders)
        rounds.append(math.ceil(new / holders))
        holders += new
    return rounds


def projection(cost, overhead, scatter, serial_upper):
    variants = TEACHER["architectures"] * TEACHER["activations"]
    n_tune, n_final = variants * TEACHER["tune_per_variant"], variants * TEACHER["final_per_variant"]
    trials = n_tune + n_final
    compute = n_tune * cost["mean_tune_seconds"] + n_final * cost["mean_final_seconds"]
    critical = cost["longest_tune_seconds"] + cost["longest_final_seconds"]
    per_task = overhead["dask"]["seconds_per_task"]
    rows = []
    for w in PROJECT_WORKERS:
        rounds = replicate_rounds(w)
        sc = scatter["one_worker"]["median"] + sum(rounds) * scatter["copy_seconds"]
        sc_net = (2 + sum(rounds)) * scatter["bytes"] / GBIT       # client -> scheduler -> worker, then the tree
        bound = max(compute / w, critical)
        row = {"workers": w, "compute_per_worker": compute / w, "critical_path": critical, "bound": bound,
               "binds": "critical path" if critical > compute / w else "compute / workers",
               "task_overhead": per_task * trials / w, "scatter": sc, "replicate_rounds": len(rounds),
               "scatter_1gbit": sc_net}
        row["projected"] = bound + row["task_overhead"] + sc
        row["projected_with_client"] = row["projected"] + serial_upper * trials
        rows.append(row)
    return {"variants": variants, "tune_trials": n_tune, "final_trials": n_final, "trials": trials,
            "compute_seconds": compute, "critical_path_seconds": critical,
            "task_overhead_seconds": per_task, "client_seconds_per_trial_upper_bound": serial_upper, "rows": rows}


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------
def _dur(s):
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def report(p):
    sw, cost, ov, pr = p["sweep_wall"], p["trial_cost"], p["task_overhead"], p["projection"]
    c = p["cluster"]
    print(f"# cluster: 1 dask scheduler + {c['workers']} dask workers (--nthreads 1 each, own folder and process "
          f"group; BLAS/OpenMP/Numba thread variables 1, as LocalExecutor starts its workers) on 127.0.0.1 "
          f"({c['scheduler']}), started once before the rounds in {c['startup_seconds']:.1f} s: cluster start-up "
          f"is NOT part of any sweep's time below")
    print(f"# local: nnumpy sweep --jobs {N_WORKERS} (its worker processes are started by each sweep, inside its time)")
    print()
    print(f"## 1. Wall time of `nnumpy sweep --preset practical{p['sweep_label']}` (around its subprocess: "
          f"Python start-up, data check, trials, writing the folder)")
    print(f"{'contender':<10}{'median':>10}{'min':>10}{'max':>10}   the sweep's own 'wall time' (median)")
    for k, row in sw["contenders"].items():
        own = [x for x in row["cli_wall"] if x is not None]
        print(f"{k:<10}{row['median']:>9.1f}s{row['min']:>9.1f}s{row['max']:>9.1f}s   "
              + (f"{statistics.median(own):.1f} s" if own else "-"))
    ra = sw["ratio_dask_local"]
    print(f"dask / local: median of the per-round ratios {ra['median']:.3f} (min-max {ra['min']:.3f}-{ra['max']:.3f}),"
          f" {sw['rounds']} rounds: Dask's overhead {sw['overhead_percent']:+.1f} %")
    print(f"same summary.csv from both contenders in every round: {'yes' if sw['same_summary'] else 'NO'}"
          f" (and the same in all rounds: {'yes' if sw['same_summary_across_rounds'] else 'no'})")
    tl, td = sw["contenders"]["local"]["trial_seconds_total"], sw["contenders"]["dask"]["trial_seconds_total"]
    print(f"compute (total in-worker trial seconds), median over the rounds: local {statistics.median(tl):.1f} s, "
          f"dask {statistics.median(td):.1f} s")
    print()
    print(f"## 2. Cost of one trial (in-worker seconds from trial.json, last local round; {cost['n_tune']} tuning + "
          f"{cost['n_final']} final trials, {N_WORKERS} running at once on {p['machine']['cores']} cores)")
    print(f"{'variant':<30}{'tuning (median)':>16}{'final':>9}{'final lr':>10}  diverged tuning trials")
    for v in cost["variants"]:
        fin = "-" if v["final_training_seconds"] is None else f"{v['final_training_seconds']:.2f}s"
        lr = "-" if v["final_lr"] is None else f"{v['final_lr']:g}"
        print(f"{v['variant']:<30}{v['tune_training_seconds_median']:>15.2f}s{fin:>9}{lr:>10}  {v['tune_diverged']}")
    print("(training seconds; a trial's whole in-worker time adds building the model and, for the first trial in "
          "a process, preparing the data)")
    print(f"total of all trial seconds (the sweep's compute): {cost['total_trial_seconds']:.1f} s "
          f"(training {cost['total_training_seconds']:.1f} s); / {N_WORKERS} workers = "
          f"{cost['total_trial_seconds'] / N_WORKERS:.1f} s, against the sweep's wall time "
          f"{sw['contenders']['local']['median']:.1f} s (median)")
    print(f"mean in-worker seconds per trial: tuning {cost['mean_tune_seconds']:.2f} s, final "
          f"{cost['mean_final_seconds']:.2f} s; longest: tuning {cost['longest_tune_seconds']:.2f} s, final "
          f"{cost['longest_final_seconds']:.2f} s; BLAS threads in the trials: {cost['blas_threads']}")
    print()
    print(f"## 3. Overhead per task: {ov['tasks']} trivial tasks (echo(x) -> x) one after another, at most "
          f"{ov['in_flight']} in flight, after a warm-up; median of {ov['repeats']} runs (min-max)")
    for k, label in (("dask", f"Dask executor (client.get_executor(pure=False)), {N_WORKERS} workers"),
                     ("local", f"nnumpy.parallel.LocalExecutor({N_WORKERS})")):
        o = ov[k]
        print(f"{label:<58}{o['seconds_per_task'] * 1e3:8.2f} ms per task "
              f"({o['min'] * 1e3:.2f}-{o['max'] * 1e3:.2f})")
    print()
    print(f"## 4. Projection: a {pr['trials']}-trial sweep ({pr['variants']} variants = {TEACHER['architectures']} "
          f"architectures x {TEACHER['activations']} activations; {pr['tune_trials']} tuning + {pr['final_trials']} "
          f"final trials)")
    print(f"compute = {pr['tune_trials']} x {cost['mean_tune_seconds']:.2f} s + {pr['final_trials']} x "
          f"{cost['mean_final_seconds']:.2f} s = {_dur(pr['compute_seconds'])}; critical path (longest tuning trial "
          f"+ longest final trial) {pr['critical_path_seconds']:.1f} s")
    print(f"projected = max(compute / workers, critical path) + {ov['dask']['seconds_per_task'] * 1e3:.2f} ms x "
          f"{pr['trials']} / workers + scatter")
    print(f"{'workers':>7}{'compute/W':>11}{'bound by':>18}{'overhead':>10}{'scatter':>9}{'projected':>11}")
    for r in pr["rows"]:
        print(f"{r['workers']:>7}{_dur(r['compute_per_worker']):>11}{r['binds']:>18}{r['task_overhead']:>9.2f}s"
              f"{r['scatter']:>8.2f}s{_dur(r['projected']):>11}")
    for a in p["assumptions"]:
        print(f"# assumption: {a}")
    for n in p["notes"]:
        print(f"# {n}")


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)
        return len(s)

    def flush(self):
        for st in self.streams:
            st.flush()


def find_data_root(given):
    """The folder with MNIST's four files: --data-root, else where nnumpy's search path finds them."""
    from nnumpy.datasets import fetch
    if given:
        return Path(given).resolve()
    try:
        got = fetch("mnist", download=False)
    except Exception as e:
        raise SystemExit(f"sweep_cluster.py: MNIST not found ({type(e).__name__}); pass --data-root DIR") from None
    folders = {path.parent for _, path, _ in got.values()}
    if len(folders) != 1:
        raise SystemExit("sweep_cluster.py: MNIST's files are in several folders; pass --data-root DIR")
    return folders.pop()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, help=f"rounds of the two sweeps (default 5, --quick 2; at least "
                                              f"{MIN_ROUNDS_FOR_CLAIMS} for a claim)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke test: sweeps of 2000 images and 1 epoch (" + " ".join(QUICK_SWEEP_ARGS)
                        + "), 2 rounds, few tasks; written to a temporary folder unless --out is given")
    p.add_argument("--tasks", type=int, help="trivial tasks per run in part 3 (default 200, --quick 20)")
    p.add_argument("--task-repeats", type=int, help="runs of the trivial tasks per executor (default 5, --quick 2)")
    p.add_argument("--scatter-repeats", type=int, help="scatters timed, each way (default 3, --quick 1)")
    p.add_argument("--data-root", help="folder with MNIST's four files (default: nnumpy's search path)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds one sweep may take")
    p.add_argument("--out", help="write OUT.json and OUT.txt (default: benchmarks/results/sweep_cluster; "
                                 "--quick: a temporary folder)")
    args = p.parse_args(argv)
    q = args.quick
    args.rounds = args.rounds if args.rounds is not None else (2 if q else 5)
    args.tasks = args.tasks if args.tasks is not None else (20 if q else 200)
    args.task_repeats = args.task_repeats if args.task_repeats is not None else (2 if q else 5)
    args.scatter_repeats = args.scatter_repeats if args.scatter_repeats is not None else (1 if q else 3)
    if args.rounds < 2:
        p.error("--rounds must be at least 2 (the order alternates between rounds)")
    if min(args.tasks, args.task_repeats, args.scatter_repeats) < 1:
        p.error("--tasks, --task-repeats and --scatter-repeats must be positive")
    if args.out:
        stem = Path(args.out).resolve()
        stem = stem.with_suffix("") if stem.suffix in (".json", ".txt") else stem
        if q and stem == DEFAULT_OUT:
            p.error("--quick does not replace the committed results: give another --out")
    else:
        stem = Path(tempfile.mkdtemp(prefix="sweep_cluster-quick-")) / "sweep_cluster" if q else DEFAULT_OUT
    if importlib.util.find_spec("distributed") is None:
        p.error("needs dask.distributed: pip install \"nnumpy[distributed]\"")
    args.sweep_args = QUICK_SWEEP_ARGS if q else []

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)

    buf = io.StringIO()
    base = Path(tempfile.mkdtemp(prefix="sweep_cluster-"))
    cluster = Cluster(base / "cluster")
    try:
        with contextlib.redirect_stdout(_Tee(sys.stdout, buf)):
            command = "python benchmarks/sweep_cluster.py" + "".join(" " + shlex.quote(a) for a in argv)
            print(f"# made by: {command}")
            info = common.machine()
            common.print_machine(info)
            args.data_root = find_data_root(args.data_root)
            from nnumpy.datasets import fetch
            got = fetch("mnist", root=args.data_root, download=False)
            raw = tuple(got[k][0] for k in ("train_images", "train_labels", "test_images", "test_labels"))
            below = (f"; FEWER THAN {MIN_ROUNDS_FOR_CLAIMS} ROUNDS: below the project's standard for speed claims"
                     if args.rounds < MIN_ROUNDS_FOR_CLAIMS else "")
            quick = (f"# QUICK: sweeps with {' '.join(QUICK_SWEEP_ARGS)}: a smoke test, not the practical "
                     f"preset's figures\n" if q else "")
            print(f"{quick}# data: MNIST from {args.data_root}; {args.rounds} rounds, the order of the two "
                  f"contenders alternating every round{below}", flush=True)
            print(f"# starting the Dask cluster in {cluster.base} ...", file=sys.stderr, flush=True)
            cluster.start()
            sw, cost = sweep_rounds(args, cluster, base)
            from distributed import Client
            with Client(cluster.address, timeout=30, set_as_default=False) as client:
                print("# part 3: tasks; part 4: scatter", file=sys.stderr, flush=True)
                ov = task_overhead(args, client)
                sc = scatter_times(args, client, raw)
            serial_upper = max(sw["contenders"]["local"]["median"] - cost["total_trial_seconds"] / N_WORKERS,
                               0.0) / (cost["n_tune"] + cost["n_final"])
            pr = projection(cost, ov, sc, serial_upper)
            r64 = next(r for r in pr["rows"] if r["workers"] == 64)
            assumptions = [
                "one trial per worker thread (a worker runs one trial at a time); BLAS and Numba on 1 thread in "
                "every trial (nnumpy's trials set it)",
                f"the same CPU as this machine, and each trial costs what it cost here with {N_WORKERS} trials on "
                f"{info['cores']} cores (means of the last local round{' (QUICK sweeps)' if q else ''}); the "
                f"{TEACHER['architectures']} architectures cost on average what the practical preset's variants "
                f"cost, with the same epochs",
                f"no data transfer beyond the one scatter of the raw arrays ({sc['bytes'] / 1e6:.0f} MB); the "
                f"weights each trial sends back are not counted",
                f"per-task overhead: Dask's measured {ov['dask']['seconds_per_task'] * 1e3:.2f} ms per trivial task "
                f"here, spread over the workers (x trials / workers)",
                "critical path: a variant's final trial starts only after its tuning trials: the bound is "
                "max(compute / workers, longest tuning trial + longest final trial), plus the overhead and the "
                "scatter",
                f"scatter: measured on loopback: client -> scheduler -> one worker {sc['one_worker']['median']:.2f} s, "
                f"one more copy (broadcast to {sc['workers']}) {sc['copy_seconds']:.2f} s; for W workers the "
                f"scheduler's replicate copies in rounds (each holder feeds up to {BRANCHING} new workers: "
                f"1 -> 3 -> 9 -> 27 -> 81), estimated as the first copy + one copy per worker fed per holder and "
                f"round ({r64['replicate_rounds']} rounds for 64); over a 1 Gbit/s network a copy takes "
                f"{sc['bytes'] / GBIT:.2f} s at least (64 workers: ~{r64['scatter_1gbit']:.1f} s)",
                f"the client keeps up: it stores every trial itself, one after another, and that is not in "
                f"'projected'; here the local sweep's median wall time minus its compute / {N_WORKERS} is "
                f"{serial_upper:.2f} s per trial, which bounds that work from above (it also holds the sweep's "
                f"start-up, data check, test of the favourite and the idle tail); were it all per-trial and "
                f"serial, {pr['trials']} trials would add up to {_dur(serial_upper * pr['trials'])} "
                f"(json: projected_with_client)"]
            notes = [
                "the Dask workers live through all rounds: they keep nnumpy imported and the prepared data split "
                "cached from one sweep to the next (a long-lived cluster's advantage); the local sweep starts "
                "its worker processes every time",
                "the machine may be shared (another process's load hits both contenders alike: the order "
                "alternates and the ratios are per round)"]
            payload = {"command": command, "machine": info, "quick": q,
                       "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                       "sweep_command": ["nnumpy", "sweep", "--preset", "practical", "--out", "DIR", "--quiet",
                                         "--offline", "--data-root", str(args.data_root)] + args.sweep_args
                       + ["--jobs 2 | --scheduler ADDRESS"],
                       "sweep_label": (" " + " ".join(QUICK_SWEEP_ARGS)) if q else "",
                       "cluster": {"scheduler": cluster.address, "workers": N_WORKERS, "threads_per_worker": 1,
                                   "startup_seconds": cluster.startup_seconds,
                                   "note": "started once before the rounds; not part of any sweep's time"},
                       "sweep_wall": sw, "trial_cost": {"source": "last local round", **cost},
                       "task_overhead": ov, "scatter": sc, "projection": pr, "assumptions": assumptions,
                       "notes": notes}
            print()
            report(payload)
    except KeyboardInterrupt:
        print("sweep_cluster.py: interrupted; stopping the cluster", file=sys.stderr)
        return 130
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"sweep_cluster.py: {e}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
    stem.parent.mkdir(parents=True, exist_ok=True)
    common.write_json(str(stem) + ".json", payload)
    Path(str(stem) + ".txt").write_text(buf.getvalue())
    print(f"# wrote {stem}.txt", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
