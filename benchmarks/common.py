"""Shared helpers of the benchmark scripts: machine description, data, timing, output."""
from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
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
                       ("torch", "torch"), ("sklearn", "scikit-learn"), ("threadpoolctl", "threadpoolctl")):
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
                if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "NUMBA_", "NNUMPY_"))},
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


def mnist(data_root=None, synthetic=False, n=60000, seed=0):
    """MNIST training images as float32 (N, 784) in [0, 1] and labels, or
    synthetic data of the same shape when the real files are not available."""
    if not synthetic:
        try:
            from nnumpy.datasets import load_mnist
            (x, y), _ = load_mnist(data_root, download=False, flatten=True, scale=True)
            return x[:n], y[:n], "MNIST training images"
        except Exception as e:
            reason = f"{type(e).__name__}: {str(e).splitlines()[0]}"
    else:
        reason = "--synthetic"
    rng = np.random.default_rng(seed)
    return (rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n),
            f"synthetic data of MNIST's shape ({reason})")


def summarize(times):
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "runs": list(times)}


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def write_json(path, payload):
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
    print(f"# wrote {path}", file=sys.stderr)
