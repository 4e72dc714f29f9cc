"""The README stays true: every Python block runs as written, every nnumpy
command it shows parses, and every output it quotes names the command that
made it and still matches what that command prints."""
import math
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


@pytest.fixture(scope="module")
def data_env(mnist_dir, tmp_path_factory):
    """The environment of a user whose MNIST sits under $NNUMPY_DATA/mnist/ (no network)."""
    data = mnist_dir.parent
    if mnist_dir.name != "mnist":
        data = tmp_path_factory.mktemp("data")
        (data / "mnist").symlink_to(mnist_dir, target_is_directory=True)
    return {**os.environ, "NNUMPY_DATA": str(data), "NNUMPY_OFFLINE": "1", "MPLBACKEND": "Agg"}


def run_python(code, env, cwd):
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"README block failed:\n{code}\n{r.stderr}"
    return r.stdout


def test_there_are_python_blocks():
    assert len(PYTHON_BLOCKS) >= 4


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))])
def test_python_block_runs_as_written(block, data_env, tmp_path):
    run_python(block, data_env, tmp_path)


def quoted_output(marker):
    """The fenced block after the line ``<!-- output of: MARKER -->``."""
    m = re.search(r"<!-- output of: " + re.escape(marker) + r" -->\n```\w*\n(.*?)```", README, re.S)
    assert m, f"the README quotes no output marked {marker!r}"
    return m.group(1)


def test_every_quoted_output_names_its_command():
    """Quoted outputs (```text blocks) and tables of figures are each marked
    with the command that produced them (the table of contents is no figure)."""
    lines = README.splitlines()
    for i, line in enumerate(lines):
        table = line.startswith("| ") and not line.startswith("| |") and lines[i + 1].startswith("|--")
        if line == "```text" or table:
            before = next(b for b in reversed(lines[:i]) if b.strip())
            assert before.startswith("<!-- output of: "), f"README line {i + 1}: output without its command"


NUMBER = re.compile(r"-?\d+\.\d+e[-+]\d+")
WORST_AT = re.compile(r"(?<=yes  |NO   )\([\d, ]*\)")


def same_error(q, p, tolerance=1e-6):
    """Errors are rounding noise that differs between BLAS builds: the same
    verdict against the tolerance, and within a factor of 30 when above it."""
    return (q <= tolerance and p <= tolerance) or (q > 0 and p > 0 and 1 / 30 < q / p < 30)


def assert_same_report(quoted, printed):
    """Each quoted line (in order) is printed again: a table row with the same
    tensor, shape, entries checked and verdict, its errors alike (see
    same_error) and, where the worst entry is the same one, the same values
    to 4 digits; a verdict line with the same outcome."""
    printed = [line for line in printed.splitlines() if line.strip()]
    pos = 0
    for q in (line for line in quoted.splitlines() if line.strip() and line.strip() != "..."):
        if q.startswith("worst"):                      # the verdict: which tensor is worst is noise too
            p = next((p for p in printed[pos:] if p.startswith("worst")), None)
            assert p is not None and p.rsplit(":", 1)[1] == q.rsplit(":", 1)[1], f"{q!r}\n  is now {p!r}"
            assert p.split("(tolerance")[1] == q.split("(tolerance")[1], f"{q!r}\n  is now {p!r}"
            pos = printed.index(p) + 1
            continue
        shape = NUMBER.sub("N", WORST_AT.sub("IDX", q)).split()
        k = next((i for i in range(pos, len(printed))
                  if NUMBER.sub("N", WORST_AT.sub("IDX", printed[i])).split() == shape), None)
        assert k is not None, f"quoted line not printed (in this order) any more: {q!r}\nprinted:\n" + \
            "\n".join(printed)
        p, pos = printed[k], k + 1
        qn, pn = [float(v) for v in NUMBER.findall(q)], [float(v) for v in NUMBER.findall(p)]
        if len(qn) >= 2:                                # a table row: abs err, rel err[, value, value]
            assert same_error(qn[1], pn[1]) and same_error(qn[0], pn[0], math.inf), f"{q!r}\n  is now\n{p!r}"
            if WORST_AT.findall(q) == WORST_AT.findall(p):
                assert all(math.isclose(a, b, rel_tol=1e-3) for a, b in zip(qn[2:], pn[2:])), f"{q!r} / {p!r}"


def test_quoted_gradcheck_output_is_what_the_example_prints(data_env, tmp_path):
    example = next(b for b in PYTHON_BLOCKS if "nnp.gradcheck(" in b)
    env = {k: v for k, v in data_env.items() if k != "NNUMPY_BACKEND"}              # the default backend
    printed = run_python(example, env, tmp_path)
    assert printed.splitlines()[0] == "109260"
    assert_same_report(quoted_output("the Python example above"), printed)


def test_quoted_torch_comparison_is_what_the_command_prints(torch, tmp_path):
    command = "nnumpy gradcheck --arch 784-100-200-50-10 --torch"
    env = {k: v for k, v in os.environ.items() if k != "NNUMPY_BACKEND"}
    r = subprocess.run([sys.executable, "-m", "nnumpy", *shlex.split(command)[1:]], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    quoted = quoted_output(command).replace("2.13.0+cpu", torch.__version__)
    assert_same_report(quoted, r.stdout)


def nnumpy_commands():
    """Every `nnumpy ...` or `python -m nnumpy ...` command line the README shows."""
    found = []
    for line in re.findall(r"(?:^|`|&& )((?:python -m )?nnumpy (?:train|sweep|evaluate|gradcheck|download|verify)"
                           r"[^`\n#]*)", README, re.M):
        found.append(line.strip().removeprefix("python -m "))
    return found


def test_every_nnumpy_command_in_the_readme_parses():
    from nnumpy.cli import build_parser
    commands = nnumpy_commands()
    assert any(c.startswith("nnumpy sweep --preset practical") for c in commands)
    parser = build_parser()
    for c in commands:
        args = shlex.split(c.replace("...", ""))[1:]
        try:
            parser.parse_args(args)
        except SystemExit:
            pytest.fail(f"the README shows a command that does not parse: {c}")


def test_readme_names_the_test_and_notebook_commands():
    assert 'pip install -e ".[test]" && python -m pytest' in README
    assert 'pip install -e ".[test]" && python -m pytest' in (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[notebooks]" && jupyter lab tutorials/' in README
    assert "notebooks =" in (ROOT / "setup.cfg").read_text()


def test_the_offerings_table_is_generated_from_the_code():
    """The README's table of what nnumpy offers is `python -m nnumpy.catalog`'s output, exactly: a new
    layer, loss, optimizer or scheduler (or a changed docstring) shows up there or this test fails."""
    from nnumpy import catalog
    assert quoted_table("python -m nnumpy.catalog") == catalog.markdown(), (
        "the README's offerings table is out of date: paste the output of python -m nnumpy.catalog")


def quoted_table(marker):
    """The Markdown table after the line ``<!-- output of: MARKER -->``."""
    m = re.search(r"<!-- output of: " + re.escape(marker) + r" -->\n((?:\|.*\n)+)", README)
    assert m, f"the README quotes no table marked {marker!r}"
    return m.group(1)


def test_every_pytorch_name_in_the_offerings_table_exists(torch):
    import importlib
    from nnumpy import catalog
    for _, name, torch_name, _ in catalog.offerings():
        if torch_name is None:
            continue
        module, _, attr = torch_name.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), f"{name}: {torch_name} is not in torch"


BENCH_TABLES = {   # the README's benchmark tables -> the recorded results they were printed from
    "python benchmarks/epoch_time.py --torch --jax --batch 64 1024 --markdown": "epoch_time.json",
    "python benchmarks/epoch_time.py --arch 784-30-10 --batch 10 --torch --jax --markdown": "epoch_time_batch10.json",
    "python benchmarks/epoch_time.py --model lenet5 --torch --repeats 5 --markdown": "epoch_time_cnn.json",
}


@pytest.mark.parametrize("marker", list(BENCH_TABLES))
def test_benchmark_tables_are_the_recorded_results(marker):
    """Each epoch-time table in the README is what ``epoch_time.py --from-json`` prints of the recorded
    results (benchmarks/results/), so a figure cannot be edited by hand or left behind a new run."""
    path = ROOT / "benchmarks" / "results" / BENCH_TABLES[marker]
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "epoch_time.py"), "--from-json", str(path),
                        "--markdown"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    printed = "\n".join(line for line in r.stdout.splitlines() if line.startswith("|")) + "\n"
    assert quoted_table(marker) == printed


@pytest.mark.parametrize("marker, result, first", [
    ("python benchmarks/step_overhead.py --torch --batch 1 10 64", "step_overhead.txt", "batch contender"),
    ("python benchmarks/steadiness.py --arch 784-300-100-10 --processes 10", "steadiness.txt", "setting "),
])
def test_benchmark_outputs_are_the_recorded_results(marker, result, first):
    """The quoted step-overhead and steadiness outputs are lines of the recorded output files."""
    recorded = (ROOT / "benchmarks" / "results" / result).read_text().splitlines()
    quoted = quoted_output(marker).splitlines()
    assert quoted and quoted[0].startswith(first)
    start = recorded.index(quoted[0])
    assert recorded[start:start + len(quoted)] == quoted
