"""Smoke tests: every benchmark script runs end to end on a tiny configuration
(no timing assertions: the figures live in benchmarks/results and the README)."""
import importlib.util
import json
import struct
import subprocess
import sys
import zlib

import pytest

from conftest import ROOT, require_package

BENCH = ROOT / "benchmarks"


def run(script, *args, timeout=600):
    r = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]      # IHDR intact
    return width, height


def test_epoch_time_smoke(tmp_path):
    require_package("threadpoolctl", "bench")          # records the BLAS in use
    require_package("sklearn", "bench")
    out = run("epoch_time.py", "--arch", "784-16-10", "--batch", "32", "--samples", "640", "--repeats", "3",
              "--synthetic", "--torch", "--sklearn", "--json", str(tmp_path / "e.json"),
              "--plot", str(tmp_path / "e.png"), "--markdown")
    assert "nnumpy-numba" in out and "gemm" in out and "| 784-16-10 | 32 |" in out
    assert "synthetic data" in out and "# blas:" in out
    result = json.loads((tmp_path / "e.json").read_text())
    names = {r["contender"] for r in result["results"]}
    assert {"nnumpy-numpy", "nnumpy-numba", "gemm", "sklearn"} <= names
    assert ("torch" in names) == (importlib.util.find_spec("torch") is not None)
    assert all(len(r["runs"]) == 3 and r["min"] <= r["median"] <= r["max"] for r in result["results"])
    assert result["machine"]["cores"] >= 1 and result["machine"]["versions"]["numpy"]
    w, h = png_size(tmp_path / "e.png")
    assert w > 400 and h > 200
    again = run("epoch_time.py", "--from-json", str(tmp_path / "e.json"), "--markdown")
    assert "| 784-16-10 | 32 |" in again


def test_kernels_smoke(tmp_path):
    out = run("kernels.py", "--batch", "8", "--no-jit", "--json", str(tmp_path / "k.json"))
    assert "softmax cross-entropy" in out and "speed-up" in out
    rows = json.loads((tmp_path / "k.json").read_text())["kernels"]
    assert len(rows) >= 10 and all(r["numpy_us"] > 0 and r["numba_us"] > 0 for r in rows)


def test_accuracy_smoke(tmp_path, mnist_dir):
    out = run("accuracy.py", "--quick", "--rows", "784-300-10", "--data-root", str(mnist_dir),
              "--json", str(tmp_path / "a.json"))
    assert "784-300-10" in out and "4.70%" in out and "QUICK" in out
    row = json.loads((tmp_path / "a.json").read_text())["rows"][0]
    assert 0 <= row["error"] <= 100 and row["recipe"]["epochs"] == 1


def test_bad_arguments_exit_2():
    r = subprocess.run([sys.executable, str(BENCH / "epoch_time.py"), "--arch", "100-10", "--synthetic",
                        "--samples", "64"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "must start with 784" in r.stderr
    r = subprocess.run([sys.executable, str(BENCH / "epoch_time.py"), "--repeats", "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "at least 3" in r.stderr
