"""Why one process trains the same epoch faster than another: the same nnumpy
epoch timed in many fresh processes, with BLAS on one thread and on its
default count, side by side, and the speed of each CPU measured alone at the
start of every process.

    python benchmarks/steadiness.py --arch 784-300-100-10 --processes 8 --json out.json

Every process loads the data, builds the model from seed 0, runs one untimed
warm-up epoch and then --epochs timed epochs of the loop of
``epoch_time.py`` (numba backend, batch --batch, plain SGD).  The settings
("blas 1 thread" and "blas default", i.e. 2 threads on a 2-core machine)
alternate process by process, so that drift of the machine hits both alike.
Before its epochs each process measures the CPUs: one BLAS thread pinned to
each CPU in turn, then one thread pinned to every CPU at once ("together",
their summed rate), 1024 x 1024 float32 GEMMs for about 0.1 s each.

Reported per setting: each process's median epoch, the spread between
processes (slowest / fastest process), the spread within processes (the
largest slowest / fastest epoch of one process), and per process the CPUs'
speeds.  A spread between processes that the one-thread setting does not
show, with CPUs that each run at full speed alone and together, points at
the two threads' sharing of the work; CPUs that run at full speed alone but
not together (their sum near one CPU's rate) share one core's arithmetic
units at that moment, and no thread count can make up for it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SETTINGS = {"blas 1 thread": 1, "blas default": None}


def _gemm_rate(cpu, size, seconds, results):
    """In the calling thread, pinned to ``cpu``: GFLOP/s of back-to-back
    size x size float32 GEMMs for about ``seconds`` (BLAS on one thread)."""
    os.sched_setaffinity(0, {cpu})                  # on Linux: this thread only
    a = np.random.default_rng(cpu).random((size, size), dtype=np.float32)
    c = np.empty_like(a)
    np.matmul(a, a, out=c)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        np.matmul(a, a, out=c)                      # (releases the GIL: the threads run at once)
        n += 1
    results[f"cpu{cpu}"] = 2 * size ** 3 * n / (time.perf_counter() - t0) / 1e9


def cpu_speeds(size=1024, seconds=0.1):
    """GFLOP/s of one BLAS thread on each CPU this process may use: each CPU
    alone, then all of them at once (one thread pinned to each).  Two
    CPUs that each run at full speed alone but not together share a core's
    arithmetic units (two hyper-threads of one core, or the host's choice)."""
    import threading
    from threadpoolctl import threadpool_limits
    if not hasattr(os, "sched_getaffinity"):
        return {}
    allowed = sorted(os.sched_getaffinity(0))
    out = {}
    try:
        with threadpool_limits(1, user_api="blas"):
            for cpu in allowed:
                res = {}
                _gemm_rate(cpu, size, seconds, res)
                out.update(res)
                os.sched_setaffinity(0, set(allowed))
            if len(allowed) > 1:
                res = {}
                threads = [threading.Thread(target=_gemm_rate, args=(cpu, size, seconds, res)) for cpu in allowed]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                out["together"] = sum(res.values())
    finally:
        os.sched_setaffinity(0, set(allowed))
    return out


def worker(spec):
    from threadpoolctl import threadpool_limits
    from epoch_time import nnumpy_contender            # the epoch of epoch_time.py: the loop a user writes
    speeds = cpu_speeds()
    x, y, source = common.mnist(spec["data_root"], spec["synthetic"], spec["samples"])
    bs = spec["batch"]
    epoch = nnumpy_contender({"kind": "mlp", "contender": "nnumpy-numba", "arch": spec["arch"],
                              "dtype": "float32", "lr": 0.01, "batch": bs}, x, y)
    epoch(np.arange(2 * bs) % len(x))               # two steps: every library a step loads is loaded now
    limit = threadpool_limits(spec["threads"], user_api="blas") if spec["threads"] else None
    try:
        epoch(np.random.default_rng([0, 0]).permutation(len(x)))                 # warm-up
        times = [common.timed(lambda: epoch(np.random.default_rng([0, 1, e]).permutation(len(x))))
                 for e in range(spec["epochs"])]
        threads = common.thread_info()
    finally:
        if limit is not None:
            limit.restore_original_limits()
    common.emit_result({"seconds": times, "cpu_gflops": speeds, "source": source, "pid": os.getpid(),
                        "blas_threads": [lib.get("num_threads") for lib in threads["blas"]]})
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=common.HelpFormatter)
    p.add_argument("--arch", default="784-300-100-10", help="MLP layer sizes (default 784-300-100-10)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--processes", type=int, default=8, help="fresh processes per setting (at least 2)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per process after a warm-up")
    p.add_argument("--samples", type=int, default=60000)
    common.add_common_args(p)
    args = common.parse_or_work(p, argv, worker)
    arch = common.parse_arch(p, args.arch)
    if args.processes < 2 or args.epochs < 1:
        p.error("--processes must be at least 2, --epochs positive")
    common.check_common(p, args, [args.batch])
    info = common.machine()
    common.print_machine(info)
    base = {"arch": arch, "batch": args.batch, "samples": args.samples, "epochs": args.epochs,
            "data_root": args.data_root, "synthetic": args.synthetic}
    runs = {name: [] for name in SETTINGS}
    names = list(SETTINGS)
    for i in range(args.processes):
        for name in names[i % 2:] + names[:i % 2]:                 # alternate which setting goes first
            try:
                res = common.run_worker(__file__, {**base, "threads": SETTINGS[name]})
            except common.WorkerError as e:
                print(f"steadiness.py: {e}", file=sys.stderr)
                return 1
            runs[name].append(res)
            cpus = " ".join(f"{k} {v:.0f}" for k, v in res["cpu_gflops"].items())
            print(f"# process {i + 1}/{args.processes} {name:<14}: epochs "
                  + " ".join(f"{t * 1e3:.0f}" for t in res["seconds"]) + f" ms | CPUs, GFLOP/s: {cpus}",
                  flush=True)
    print(f"# {args.arch}, batch {args.batch}, {args.samples} samples, numba backend; "
          f"data: {runs[names[0]][0]['source']}")
    summary = {}
    print(f"{'setting':<15}{'median':>9}{'fastest':>9}{'slowest':>9}{'between':>9}{'within':>8}")
    for name in names:
        meds = [statistics.median(r["seconds"]) for r in runs[name]]
        within = max(max(r["seconds"]) / min(r["seconds"]) for r in runs[name])
        summary[name] = {"process_medians": meds, "median": statistics.median(meds), "fastest": min(meds),
                         "slowest": max(meds), "between": max(meds) / min(meds), "within": within}
        s = summary[name]
        print(f"{name:<15}{s['median'] * 1e3:>7.0f}ms{s['fastest'] * 1e3:>7.0f}ms{s['slowest'] * 1e3:>7.0f}ms"
              f"{s['between']:>9.2f}{s['within']:>8.2f}")
    print("# between: slowest / fastest process (medians of their epochs); within: the largest slowest / "
          "fastest epoch inside one process")
    common.save_json(args, info, runs=runs, summary=summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
