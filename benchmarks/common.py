"""Shared helpers of the benchmark scripts: machine description, data, timing,
output, and the worker processes that timings run in."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions():
    """Installed versions, read from package metadata (importing torch or
    scikit-learn just to ask would load their thread pools into the process)."""
    from importlib import metadata
    out = {"python": platform.python_version()}
    for name, dist in (("numpy", "numpy"), ("scipy", "scipy"), ("numba", "numba"), ("nnumpy", "nnumpy"),
                       ("torch", "torch"), ("jax", "jax"), ("jaxlib", "jaxlib"), ("sklearn", "scikit-learn"),
                       ("threadpoolctl", "threadpoolctl")):
        try:
            out[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def blas_info():
    """The BLAS and OpenMP libraries loaded in this process, with their threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed (pip install threadpoolctl)"}]
    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "architecture", "threading_layer")
    return [{k: lib.get(k) for k in keep} for lib in threadpool_info()]


def machine():
    """Everything a timing depends on that is not the code."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "versions": versions(),
        "blas": blas_info(),
        "env": {k: v for k, v in os.environ.items()
                if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "NUMBA_", "NNUMPY_", "XLA_", "JAX_"))},
    }


def print_machine(info):
    v = info["versions"]
    print(f"# {info['date']} | {info['cpu']} | {info['cores']} cores | {info['platform']}")
    print("# " + ", ".join(f"{k} {val}" for k, val in v.items() if val))
    for lib in info["blas"]:
        if "note" in lib:
            print(f"# {lib['note']}")
        else:
            print(f"# {lib['user_api']}: {lib['internal_api']} {lib.get('version') or ''} "
                  f"({lib['prefix']}, {lib['num_threads']} threads"
                  + (f", {lib['architecture']}" if lib.get("architecture") else "") + ")")
    if info["env"]:
        print("# env: " + " ".join(f"{k}={val}" for k, val in info["env"].items()))


#: MNIST's training set: the most samples an epoch can have.
MNIST_TRAIN = 60000


def mnist(data_root=None, synthetic=False, n=MNIST_TRAIN, seed=0, images=False):
    """The first n MNIST training images as float32 in [0, 1], (n, 784), or
    (n, 1, 28, 28) with ``images`` (the input of a CNN), and int64 labels
    (n,); with ``synthetic``, random data of the same shape.  Without it, the
    files must be there (nnumpy's search path, or ``data_root``): a timing
    never falls back to other data silently (see :func:`require_mnist`)."""
    shape = (1, 28, 28) if images else (784,)
    if not synthetic:
        from nnumpy.datasets import load_mnist
        (x, y), _ = load_mnist(data_root, download=False, flatten=True, scale=True)
        return x[:n].reshape((-1,) + shape), y[:n], "MNIST training images"
    rng = np.random.default_rng(seed)
    return (rng.random((n,) + shape, dtype=np.float32), rng.integers(0, 10, n),
            "synthetic data of MNIST's shape (--synthetic)")


def require_mnist(p, args):
    """Before any worker starts: without --synthetic the MNIST files must be
    found, else the parser's usage error says where it looked and what to do."""
    if getattr(args, "synthetic", False):
        return
    if args.data_root is not None and not os.path.isdir(args.data_root):
        p.error(f"--data-root {args.data_root}: no such folder")
    try:
        from nnumpy.datasets import load_mnist
        load_mnist(args.data_root, download=False)
    except Exception as e:                      # not found, damaged, unreadable: said in its own words
        lines = str(e).splitlines()
        p.error(f"the MNIST training files are needed (or --synthetic, random data of MNIST's shape): "
                f"{type(e).__name__}: {' '.join(lines[:3])}")


def summarize(times):
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "runs": list(times)}


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def write_json(path, payload):
    """Write ``payload`` as JSON: into a temporary file beside ``path``, then renamed onto it."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(f"# wrote {path}", file=sys.stderr)


# -- worker processes ------------------------------------------------------------------
# Speed claims compare contenders that each run in a fresh process (no JIT
# cache, thread pool, allocator or BLAS state carried from one contender to
# the next).  A worker prints one line RESULT_TAG + JSON on stdout.
RESULT_TAG = "BENCH-RESULT "


class WorkerError(RuntimeError):
    """A worker process failed or printed no result."""


def emit_result(payload):
    """Print a worker's result (the last thing it does)."""
    print(RESULT_TAG + json.dumps(payload), flush=True)


def run_worker(script, spec, timeout=None):
    """Run ``python script --worker JSON(spec)`` in a fresh process and return
    the dict it emitted; WorkerError with its stderr when it fails."""
    cmd = [sys.executable, os.path.abspath(script), "--worker", json.dumps(spec)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if r.returncode != 0 or not lines:
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-15:])
        raise WorkerError(f"worker {spec} exited with status {r.returncode}"
                          + ("" if lines else " and printed no result") + f":\n{tail}")
    return json.loads(lines[-1][len(RESULT_TAG):])


def thread_info():
    """The thread pools of this process: BLAS/OpenMP (threadpoolctl), Numba's
    and PyTorch's when they are loaded (nothing is imported to ask)."""
    info = {"blas": blas_info()}
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        try:
            info["numba_threads"] = numba.get_num_threads()
            info["numba_threading_layer"] = numba.threading_layer()
        except ValueError:                     # the layer is known only once a parallel kernel ran
            info.setdefault("numba_threads", numba.config.NUMBA_NUM_THREADS)
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch_threads"] = torch.get_num_threads()
        info["torch_interop_threads"] = torch.get_num_interop_threads()
    if "jax" in sys.modules:
        jax = sys.modules["jax"]
        info["jax_devices"] = [str(d) for d in jax.devices()]
        info["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    return info


# -- command lines ---------------------------------------------------------------------
def add_common_args(p):
    """The options every timing script shares: data, output and the hidden worker entry."""
    p.add_argument("--data-root", help="folder with the MNIST files (default: nnumpy's search path)")
    p.add_argument("--synthetic", action="store_true", help="use random data of MNIST's shape")
    p.add_argument("--json", help="write the results and the machine description here")
    p.add_argument("--worker", metavar="SPEC", help=argparse.SUPPRESS)     # internal: one timed process


#: The widest layer a timing takes (a 784 x 100000 float64 weight is 630 MB).
MAX_WIDTH = 100000


def parse_arch(p, text):
    """An MLP architecture "784-100-10" as a list of sizes, or the parser's usage error."""
    try:
        arch = [int(s) for s in text.split("-")]
    except ValueError:
        p.error(f"--arch takes sizes like 784-100-10, got {text!r}")
    if len(arch) < 2 or min(arch) < 1 or arch[0] != 784:
        p.error(f"--arch takes at least two positive sizes starting with 784, got {text!r}")
    if max(arch) > MAX_WIDTH:
        p.error(f"--arch {text}: layers of at most {MAX_WIDTH} units")
    return arch


def check_common(p, args, batches=()):
    """The checks every timing script shares, made before anything runs: --samples within MNIST's
    training set, every batch within --samples, --json a file in an existing folder, the data there."""
    if not 1 <= args.samples <= MNIST_TRAIN:
        p.error(f"--samples must lie in 1..{MNIST_TRAIN} (MNIST's training set), got {args.samples}")
    for b in batches:
        if b < 1:
            p.error(f"--batch must be positive, got {b}")
        if b > args.samples:
            p.error(f"--batch {b} is larger than --samples {args.samples}: every step would hold "
                    f"{args.samples} samples, not {b}")
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        if os.path.isdir(args.json):
            p.error(f"--json {args.json} is a folder: give a file name")
        if not os.path.isdir(folder):
            p.error(f"--json {args.json}: the folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            p.error(f"--json {args.json}: the folder {folder} is not writable")
    require_mnist(p, args)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help keeps the docstring's layout and shows each option's default."""


def save_json(args, info, **payload):
    """Write --json (when given): the machine, the arguments (but the worker's) and ``payload``."""
    if args.json:
        write_json(args.json, {"machine": info, "args": {k: v for k, v in vars(args).items() if k != "worker"},
                               **payload})


def parse_or_work(p, argv, worker):
    """Parse the command line; a worker process (--worker SPEC) runs ``worker(spec)`` and exits."""
    args = p.parse_args(argv)
    if args.worker:
        sys.exit(worker(json.loads(args.worker)))
    return args


#: How to install PyTorch for CPU timings (PyPI's Linux wheel is a CUDA build of several GB).
TORCH_PIP = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def with_torch(names, wanted):
    """``names`` plus "torch" when PyTorch is wanted and installed (a note is printed when it is not)."""
    if not wanted:
        return list(names)
    if versions()["torch"]:
        return list(names) + ["torch"]
    print(f"# PyTorch skipped: not installed ({TORCH_PIP})")
    return list(names)
