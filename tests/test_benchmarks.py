"""Smoke tests: every benchmark script runs end to end on a tiny configuration
(no timing assertions: the figures live in benchmarks/results and the README)."""
import importlib.util
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import nnumpy as nnp

from conftest import ROOT, require_package

# The scripts choose their backends themselves (--backend): NNUMPY_BACKEND changes nothing they time,
# so CI runs these once, not again on the NumPy backend's pass.
pytestmark = pytest.mark.backend_independent

BENCH = ROOT / "benchmarks"


def run(script, *args, timeout=600):
    r = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def load_script(name):
    """A benchmark script imported as a module (its functions, not its main)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name[:-3]}", BENCH / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]      # IHDR intact
    return width, height


def check_rounds(rows, repeats):
    """Every (round, contender) ran in its own process, in an order rotated every round."""
    configs = {(r["arch"], r["batch"], r["dtype"]) for r in rows}
    for c in configs:
        group = [r for r in rows if (r["arch"], r["batch"], r["dtype"]) == c]
        # the peak GEMM of the machine is measured in one more process per round, in the same rotation
        peak = group[0].get("peak_gflops")
        procs = group + ([{"contender": "peak", **peak}] if peak else [])
        assert all(r.get("peak_gflops") == peak for r in group)
        pids = [p for r in procs for p in r["pids"]]
        assert len(pids) == len(procs) * repeats and len(set(pids)) == len(pids)
        for k in range(repeats):
            assert sorted(r["positions"][k] for r in procs) == list(range(len(procs)))
        firsts = [next(r["contender"] for r in procs if r["positions"][k] == 0) for k in range(repeats)]
        assert len(set(firsts)) == min(repeats, len(procs))       # a different contender leads each round
    assert all(len(r["runs"]) == repeats and r["min"] <= r["median"] <= r["max"] for r in rows)
    assert all(np.isfinite(r["runs"]).all() and min(r["runs"]) > 0 for r in rows)
    for r in rows:
        assert r["spread"] == pytest.approx(max(r["runs"]) / min(r["runs"]))
        if "peak_gflops" in r:
            assert len(r["peak_gflops"]["runs"]) == repeats and np.isfinite(r["peak_gflops"]["runs"]).all()
            assert min(r["peak_gflops"]["runs"]) > 0
        if "gflops" in r:                         # the epoch's GEMM FLOPs over its median time
            rates = [r["flops_per_epoch"] / t / 1e9 for t in r["runs"]]
            assert r["gflops"] == pytest.approx(float(np.median(rates)))
            shares = [g / p for g, p in zip(rates, r["peak_gflops"]["runs"])]
            assert r["of_peak"] == pytest.approx(float(np.median(shares)))


def test_epoch_time_smoke(tmp_path):
    require_package("threadpoolctl", "bench")          # records the BLAS in use
    require_package("sklearn", "bench")
    out = run("epoch_time.py", "--arch", "784-16-10", "--batch", "32", "--samples", "640", "--repeats", "3",
              "--synthetic", "--torch", "--sklearn", "--json", str(tmp_path / "e.json"),
              "--plot", str(tmp_path / "e.png"), "--markdown")
    assert "nnumpy-numba" in out and "gemm" in out and "| 784-16-10 | 32 |" in out
    assert "synthetic data" in out and "# blas:" in out and "fresh process" in out
    assert "FEWER THAN 5 ROUNDS" in out                  # 3 rounds are a smoke test, not a claim
    result = json.loads((tmp_path / "e.json").read_text())
    names = {r["contender"] for r in result["results"]}
    assert {"nnumpy-numpy", "nnumpy-numba", "gemm", "sklearn"} <= names
    assert ("torch" in names) == (importlib.util.find_spec("torch") is not None)
    check_rounds(result["results"], 3)
    assert all(r["kind"] == "mlp" for r in result["results"])
    assert result["machine"]["cores"] >= 1 and result["machine"]["versions"]["numpy"]
    w, h = png_size(tmp_path / "e.png")
    assert w > 400 and h > 200
    again = run("epoch_time.py", "--from-json", str(tmp_path / "e.json"), "--markdown")
    assert "| 784-16-10 | 32 |" in again
    assert "640 samples per epoch" in again and "# data: synthetic data" in again   # how the run was made


def test_epoch_flops_count_every_product():
    """2 M K O per GEMM: forward and dW of every layer, dx of every layer but the first."""
    et = load_script("epoch_time.py")
    spec = {"kind": "mlp", "arch": [784, 100, 10]}
    assert et.epoch_flops(spec, 60000) == 2 * 60000 * (2 * 784 * 100 + 3 * 100 * 10)


JAX_SAME_STEP = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import epoch_time as et
rng = np.random.default_rng(0)
x, y = rng.random((40, 784), dtype=np.float32), rng.integers(0, 10, 40)
spec = {"kind": "mlp", "arch": [784, 32, 16, 10], "dtype": "float32", "batch": 16, "lr": 0.5,
        "contender": "nnumpy-numpy"}
perm = rng.permutation(40)
ours, theirs = et.nnumpy_contender(spec, x, y), et.jax_contender(spec, x, y)
start = [np.array(w) for w, _ in theirs.params()]
for _ in range(2):
    ours(perm)
    theirs(perm)
out = []
for w0, (w, b), (wj, bj) in zip(start, ours.params(), theirs.params()):
    out.append({"moved": float(np.abs(w - w0).max()),
                "w": float((np.abs(wj - w) / (2e-6 + 1e-4 * np.abs(w))).max()),
                "b": float((np.abs(bj - b) / (2e-6 + 1e-4 * np.abs(b))).max()),
                "finite": bool(np.isfinite(wj).all() and np.isfinite(bj).all())})
print(json.dumps(out))
"""


def test_jax_contender_takes_nnumpys_step():
    """The JAX contender trains the same network as nnumpy's: the same initial weights, batches, loss
    (the mean cross-entropy of the logits) and SGD update, so after two epochs both hold the same weights
    (float32, to rounding: each element within 2e-6 + 1e-4 |w|).  In a process of its own: JAX's threads
    must not live in the test process, which forks later."""
    require_package("jax", "bench")
    r = subprocess.run([sys.executable, "-c", JAX_SAME_STEP, str(BENCH)], capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    layers = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(layers) == 3
    for layer in layers:
        assert layer["finite"] and layer["moved"] > 1e-3            # the weights moved, to finite values
        assert layer["w"] <= 1.0 and layer["b"] <= 1.0, layers       # (a NaN fails these too)


def test_epoch_time_jax(tmp_path):
    require_package("jax", "bench")
    out = run("epoch_time.py", "--arch", "784-16-10", "--batch", "64", "--samples", "640", "--repeats", "3",
              "--synthetic", "--jax", "--backend", "numba", "--json", str(tmp_path / "j.json"), "--markdown")
    assert "# JAX: devices" in out and "| 784-16-10 | 64 |" in out
    assert "nnumpy-numba / jax = " in out and "target 0.8" in out and "slowest / fastest process" in out
    rows = json.loads((tmp_path / "j.json").read_text())["results"]
    assert {r["contender"] for r in rows} == {"nnumpy-numba", "jax", "gemm", "gather"}
    check_rounds(rows, 3)
    by = {r["contender"]: r for r in rows}
    floor = [a + b for a, b in zip(by["gemm"]["runs"], by["gather"]["runs"])]
    ratios = [a / b for a, b in zip(by["nnumpy-numba"]["runs"], floor)]
    assert by["nnumpy-numba"]["x_floor"] == pytest.approx(float(np.median(ratios)))
    ratios = [a / b for a, b in zip(by["nnumpy-numba"]["runs"], by["jax"]["runs"])]
    assert by["nnumpy-numba"]["x_jax"] == pytest.approx(float(np.median(ratios)))


def test_epoch_time_cnn_smoke(tmp_path):
    """The CNN path without PyTorch: both backends and the im2col GEMM floor."""
    out = run("epoch_time.py", "--model", "small-cnn", "--batch", "16", "--samples", "48", "--repeats", "3",
              "--synthetic", "--json", str(tmp_path / "c.json"), "--markdown")
    assert "784-" not in out                             # --model alone: no MLP configs
    assert "| small-cnn | 16 |" in out and "numpy / PyTorch (target 3.0)" in out
    assert "no --torch" in out
    rows = json.loads((tmp_path / "c.json").read_text())["results"]
    assert {r["contender"] for r in rows} == {"nnumpy-numpy", "nnumpy-numba", "gemm", "gather"}
    assert all(r["kind"] == "cnn" and r["arch"] == "small-cnn" for r in rows)
    assert all("x_gemm" in r for r in rows if r["contender"] != "gemm")
    check_rounds(rows, 3)


def test_epoch_time_cnn_vs_torch(tmp_path):
    require_package("torch", "torch")
    out = run("epoch_time.py", "--model", "lenet5", "--batch", "32", "--samples", "64", "--repeats", "3",
              "--synthetic", "--torch", "--no-gemm", "--json", str(tmp_path / "t.json"), "--markdown")
    assert "intra-op threads (torch.get_num_threads(), left at its default)" in out
    assert "nnumpy-numba / torch = " in out and "target 0.8" in out and "target 3.0" in out
    assert "| lenet5 | 32 |" in out
    rows = json.loads((tmp_path / "t.json").read_text())["results"]
    assert {r["contender"] for r in rows} == {"nnumpy-numpy", "nnumpy-numba", "torch"}
    check_rounds(rows, 3)
    torch_row = next(r for r in rows if r["contender"] == "torch")
    for r in rows:
        if r["contender"] != "torch":
            ratios = [a / b for a, b in zip(r["runs"], torch_row["runs"])]      # per-round, paired
            assert r["x_torch"] == pytest.approx(float(np.median(ratios)))
            assert r["x_torch_range"] == pytest.approx([min(ratios), max(ratios)])
    assert torch_row["threads"]["torch_threads"] >= 1


def layer_rows(profile):
    return {r["name"]: r for r in profile["rows"]}


def test_layer_profile_smoke(tmp_path):
    out = run("layer_profile.py", "--model", "lenet5", "784-16-10", "--synthetic", "--samples", "64",
              "--batch", "32", "--steps", "2", "--warmup", "1", "--json", str(tmp_path / "p.json"))
    assert "WARNING" not in out and "% of step" in out
    result = json.loads((tmp_path / "p.json").read_text())
    got = {(p["model"], p["framework"]): p for p in result["profiles"]}
    assert set(got) == {(m, b) for m in ("lenet5", "784-16-10") for b in ("numpy", "numba")}
    for p in got.values():
        assert p["accounted_percent"] == pytest.approx(100.0)           # the rows add up to the step
        assert p["step_ms"] > 0
        for r in p["rows"]:
            assert np.isfinite(r["ms"]) and r["ms"] >= -1e-6, r
    numba, numpy_ = layer_rows(got[("lenet5", "numba")]), layer_rows(got[("lenet5", "numpy")])
    assert "0-2 Conv2d+ReLU+MaxPool2d" in numba and "3-5 Conv2d+ReLU+MaxPool2d" in numba and "11 Linear" in numba
    assert "0 Conv2d" in numpy_ and "1 ReLU" in numpy_ and "0-1 Conv2d+ReLU" not in numpy_
    for rows, name in ((numba, "0-2 Conv2d+ReLU+MaxPool2d"), (numba, "7-8 Linear+ReLU"), (numpy_, "0 Conv2d"),
                       (numpy_, "3 Conv2d")):
        assert rows[name]["forward_ms"] > 0 and rows[name]["backward_ms"] > 0, name    # timed, both ways
        assert rows[name]["calls"] == [2, 2]                                            # once a step each
    assert layer_rows(got[("784-16-10", "numba")]).keys() >= {"0-1 Linear+ReLU", "2 Linear", "loss (cross-entropy)",
                                                              "optimizer (zero_grad + step)", "other (in Sequential)"}


def test_layer_profile_leaves_nnumpy_as_it_was():
    """The instrumentation is undone: no wrapper left on the modules or the op modules."""
    sys.path.insert(0, str(BENCH))
    try:
        import layer_profile
    finally:
        sys.path.remove(str(BENCH))
    import nnumpy as nnp
    from nnumpy import backend
    model = nnp.models.lenet5(rng=0)
    ops = [backend.ops(b) for b in backend.available_backends()]
    before = [dict(vars(o)) for o in ops]
    with nnp.backend.use(backend.available_backends()[-1]):
        prof = layer_profile.StepProfiler(model)
        with prof.installed():
            assert "forward" in vars(model[0])
            assert any(hasattr(getattr(o, "conv2d_act_forward"), "__wrapped__") for o in ops)
    assert all("forward" not in vars(m) and "backward" not in vars(m) for m in model)
    assert [dict(vars(o)) for o in ops] == before


def test_layer_profile_torch(tmp_path):
    require_package("torch", "torch")
    out = run("layer_profile.py", "--model", "lenet5", "--backend", "numba", "--torch", "--synthetic",
              "--samples", "64", "--batch", "32", "--steps", "2", "--warmup", "1", "--json", str(tmp_path / "t.json"))
    assert "PyTorch" in out
    p = next(p for p in json.loads((tmp_path / "t.json").read_text())["profiles"] if p["framework"] == "torch")
    rows = layer_rows(p)
    assert p["accounted_percent"] == pytest.approx(100.0)
    assert rows["0 Conv2d"]["forward_ms"] > 0 and rows["0 Conv2d"]["backward_ms"] > 0
    assert rows["11 Linear"]["backward_ms"] > 0 and rows["loss (cross-entropy)"]["backward_ms"] > 0


def test_kernels_smoke(tmp_path):
    out = run("kernels.py", "--batch", "8", "--no-jit", "--json", str(tmp_path / "k.json"))
    assert "softmax cross-entropy" in out and "speed-up" in out
    rows = json.loads((tmp_path / "k.json").read_text())["kernels"]
    assert len(rows) >= 10 and all(r["numpy_us"] > 0 and r["numba_us"] > 0 for r in rows)


def test_accuracy_smoke(tmp_path, mnist_dir):
    out = run("accuracy.py", "--quick", "--rows", "784-300-10", "--data-root", str(mnist_dir),
              "--json", str(tmp_path / "a.json"))
    assert "784-300-10" in out and "4.70%" in out and "QUICK" in out and "NOT COMPARABLE" in out
    row = json.loads((tmp_path / "a.json").read_text())["rows"][0]
    assert 0 <= row["error"] <= 100 and row["recipe"]["epochs"] == 1
    assert row["train_samples"] == 2000 and row["test_samples"] == 1000 and row["comparable"] is False


def test_accuracy_cnn_row(tmp_path, mnist_dir):
    out = run("accuracy.py", "--rows", "lenet5", "--limit", "128", "--epochs", "1", "--data-root", str(mnist_dir),
              "--json", str(tmp_path / "a.json"))
    assert "lenet5" in out and "0.95%" in out and "NOT COMPARABLE" in out and "limited run" in out
    assert "LeNet-5" in out and "weight decay 0.0005" in out
    row = json.loads((tmp_path / "a.json").read_text())["rows"][0]
    assert row["arch"] == "lenet5" and row["published_error"] == 0.95
    assert 0 <= row["error"] <= 100 and row["recipe"]["epochs"] == 1 and row["train_samples"] == 128
    assert row["test_samples"] == 10000 and row["seconds"] > 0


def test_accuracy_rows_have_published_figures():
    sys.path.insert(0, str(BENCH))
    try:
        import accuracy
    finally:
        sys.path.remove(str(BENCH))
    import nnumpy as nnp
    assert accuracy.ROWS["lenet5"][:3] == ("mnist", "lenet5", 0.95)
    assert accuracy.ROWS["fashion lenet5"][:3] == ("fashion-mnist", "lenet5", None)
    for name, (dataset, arch, published, source, recipe) in accuracy.ROWS.items():
        assert dataset in ("mnist", "fashion-mnist") and source
        assert published is None or 0 < published < 100
        assert isinstance(arch, list) or arch in nnp.models.MODELS, name
        assert {"lr", "momentum", "epochs", "batch", "dropout", "wd"} <= set(recipe)


def test_bad_arguments_exit_2():
    r = subprocess.run([sys.executable, str(BENCH / "epoch_time.py"), "--arch", "100-10", "--synthetic",
                        "--samples", "64"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "starting with 784" in r.stderr
    r = subprocess.run([sys.executable, str(BENCH / "epoch_time.py"), "--repeats", "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "at least 3" in r.stderr
    r = subprocess.run([sys.executable, str(BENCH / "epoch_time.py"), "--model", "alexnet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "invalid choice: 'alexnet'" in r.stderr and "lenet5" in r.stderr
    r = subprocess.run([sys.executable, str(BENCH / "layer_profile.py"), "--model", "100-10"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "784-100-10" in r.stderr and "lenet5" in r.stderr
    r = subprocess.run([sys.executable, str(BENCH / "accuracy.py"), "--epochs", "0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--epochs must be at least 1" in r.stderr


def test_sweep_cluster_smoke(tmp_path, mnist_dir):
    """The Dask benchmark end to end on tiny sweeps: its own local cluster (stopped afterwards), both
    contenders in alternating order, the same summary from both, the per-task overhead and the projection."""
    import socket
    require_package("distributed", "distributed")       # it starts a local Dask cluster: a skip naming the extra
    out = run("sweep_cluster.py", "--quick", "--data-root", str(mnist_dir), "--out", str(tmp_path / "x"),
              timeout=300)
    assert "QUICK" in out and "FEWER THAN 5 ROUNDS" in out and "NOT part of any sweep's time" in out
    result = json.loads((tmp_path / "x.json").read_text())
    assert (tmp_path / "x.txt").read_text().startswith("# made by: python benchmarks/sweep_cluster.py --quick")
    sw = result["sweep_wall"]
    assert sw["rounds"] == 2 and set(sw["contenders"]) == {"local", "dask"}
    for row in sw["contenders"].values():
        assert len(row["runs"]) == 2 and np.isfinite(row["runs"]).all() and min(row["runs"]) > 0
        assert row["min"] <= row["median"] <= row["max"]
    assert sw["contenders"]["local"]["positions"] == [0, 1] and sw["contenders"]["dask"]["positions"] == [1, 0]
    ratios = sw["ratio_dask_local"]
    assert len(ratios["per_round"]) == 2
    assert np.isfinite(ratios["per_round"]).all() and min(ratios["per_round"]) > 0
    assert np.isfinite(ratios["median"]) and ratios["min"] <= ratios["median"] <= ratios["max"]
    assert sw["overhead_percent"] == pytest.approx(100 * (ratios["median"] - 1))
    assert sw["same_summary"] is True and sw["same_summary_per_round"] == [True, True]
    cost = result["trial_cost"]
    assert cost["n_tune"] == 24 and cost["n_final"] == 6 and cost["blas_threads"] == [1]
    assert len(cost["variants"]) == 6 and np.isfinite(cost["total_trial_seconds"]) and cost["total_trial_seconds"] > 0
    for k in ("dask", "local"):
        per_task = result["task_overhead"][k]["seconds_per_task"]
        assert np.isfinite(per_task) and per_task > 0
    assert result["scatter"]["holders"] == {"one": 1, "all": 2}
    rows = result["projection"]["rows"]
    assert [r["workers"] for r in rows] == [1, 8, 64] and result["projection"]["trials"] == 600
    assert all(np.isfinite(r["projected"]) and r["projected"] >= r["bound"] > 0 for r in rows)
    port = int(result["cluster"]["scheduler"].rsplit(":", 1)[1])
    with pytest.raises(OSError):                          # the scheduler is gone
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_steadiness_smoke(tmp_path):
    """Fresh processes alternate between BLAS on one thread and on its default; the summary is made
    of the processes' own times."""
    require_package("threadpoolctl", "bench")
    out = run("steadiness.py", "--arch", "784-16-10", "--processes", "2", "--epochs", "2", "--samples", "640",
              "--synthetic", "--json", str(tmp_path / "s.json"))
    assert "blas 1 thread" in out and "blas default" in out and "between" in out and "GFLOP/s: cpu" in out and "together" in out
    result = json.loads((tmp_path / "s.json").read_text())
    assert set(result["runs"]) == {"blas 1 thread", "blas default"}
    pids = [r["pid"] for runs in result["runs"].values() for r in runs]
    assert len(pids) == 4 and len(set(pids)) == 4                        # every run a process of its own
    for name, runs in result["runs"].items():
        assert len(runs) == 2
        for r in runs:
            assert len(r["seconds"]) == 2 and np.isfinite(r["seconds"]).all() and min(r["seconds"]) > 0
            assert r["cpu_gflops"] and all(v > 0 for v in r["cpu_gflops"].values())
            if name == "blas 1 thread":
                assert set(r["blas_threads"]) == {1}
        s = result["summary"][name]
        meds = [float(np.median(r["seconds"])) for r in runs]
        assert s["process_medians"] == pytest.approx(meds)
        assert s["between"] == pytest.approx(max(meds) / min(meds))
        assert s["within"] == pytest.approx(max(max(r["seconds"]) / min(r["seconds"]) for r in runs))


def test_step_overhead_smoke(tmp_path):
    has_torch = importlib.util.find_spec("torch") is not None
    out = run("step_overhead.py", "--batch", "1", "10", "--steps", "40", "--warmup", "5", "--samples", "640",
              "--repeats", "3", "--synthetic", *(["--torch"] if has_torch else []), "--json", str(tmp_path / "o.json"))
    assert "calls/step" in out and "fresh process" in out
    rows = json.loads((tmp_path / "o.json").read_text())["results"]
    assert {(r["batch"], r["contender"]) for r in rows} >= {(b, f"nnumpy-{k}") for b in (1, 10)
                                                             for k in ("numpy", "numba")}
    by = {(r["batch"], r["contender"]): r for r in rows}
    for r in rows:
        assert len(r["runs"]) == 3 and np.isfinite(r["runs"]).all() and min(r["runs"]) > 0
        assert r["calls_per_step"] >= 10                   # a step is tens of Python calls at least
        if has_torch and r["contender"] != "torch":
            ratios = [a / b for a, b in zip(r["runs"], by[(r["batch"], "torch")]["runs"])]
            assert r["x_torch"] == pytest.approx(float(np.median(ratios)))
    assert ("torch" in {r["contender"] for r in rows}) == has_torch


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "notjson").write_text("notjson")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "shape.json").write_text('{"machine": {}, "results": [{"x": 1}]}')
    (tmp_path / "empty").mkdir()
    return tmp_path


TINY = ["--synthetic", "--samples", "640", "--repeats", "3"]


@pytest.mark.parametrize("script, args, message", [
    ("epoch_time.py", ["--from-json", "{tmp}/missing.json"], "cannot read it"),
    ("epoch_time.py", ["--from-json", "{tmp}"], "cannot read it"),
    ("epoch_time.py", ["--from-json", "{tmp}/notjson"], "not JSON"),
    ("epoch_time.py", ["--from-json", "{tmp}/list.json"], "not the results of epoch_time.py"),
    ("epoch_time.py", ["--from-json", "{tmp}/shape.json"], "not the results of epoch_time.py"),
    ("epoch_time.py", [*TINY, "--json", "{tmp}/no/such/folder/e.json"], "does not exist"),
    ("epoch_time.py", [*TINY, "--json", "{tmp}"], "is a folder"),
    ("epoch_time.py", [*TINY, "--lr", "nan"], "--lr must be a positive number"),
    ("epoch_time.py", [*TINY, "--lr", "-1"], "--lr must be a positive number"),
    ("epoch_time.py", [*TINY, "--seed", "-1"], "--seed must be 0 or more"),
    ("epoch_time.py", [*TINY, "--arch", "784-1000000000-10"], "layers of at most"),
    ("epoch_time.py", ["--synthetic", "--samples", "1000000000000"], "--samples must lie in 1..60000"),
    ("epoch_time.py", ["--synthetic", "--samples", "70000"], "--samples must lie in 1..60000"),
    ("epoch_time.py", [*TINY, "--batch", "1000"], "larger than --samples 640"),
    ("epoch_time.py", ["--samples", "640", "--data-root", "{tmp}/nowhere"], "no such folder"),
    ("epoch_time.py", ["--samples", "640", "--data-root", "{tmp}/empty"], "MNIST training files are needed"),
    ("step_overhead.py", ["--samples", "640", "--data-root", "{tmp}/empty"], "MNIST training files are needed"),
    ("step_overhead.py", ["--synthetic", "--json", "{tmp}/no/such/o.json"], "does not exist"),
    ("steadiness.py", ["--synthetic", "--samples", "640", "--batch", "1000"], "larger than --samples 640"),
    ("steadiness.py", ["--arch", "784-1000000000-10"], "layers of at most"),
    ("steadiness.py", ["--processes", "1"], "--processes must be at least 2"),
    ("steadiness.py", ["--arch", "100-10"], "starting with 784"),
    ("steadiness.py", ["--arch", "784-x"], "--arch takes sizes like"),
    ("step_overhead.py", ["--repeats", "2"], "--repeats must be at least 3"),
    ("step_overhead.py", ["--batch", "0"], "must be positive"),
    ("step_overhead.py", ["--batch", "100", "--samples", "50"], "larger than --samples"),
])
def test_bad_arguments_are_refused_before_anything_runs(script, args, message, bad_files):
    """A user error is one line from the parser (status 2), before any worker starts, never a traceback:
    a file --from-json cannot use, a --json with nowhere to go, out-of-range numbers, data not there."""
    args = [a.replace("{tmp}", str(bad_files)) for a in args]
    r = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "#" not in r.stdout                      # nothing measured, not even the machine's header
