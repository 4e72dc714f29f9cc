"""The tutorials: every solution notebook runs top to bottom (fast mode) and
the student versions match what make_student.py generates from them."""
import subprocess
import sys

import pytest

from conftest import ROOT

TUTORIALS = ROOT / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))


def test_the_tutorials_have_student_versions():
    assert [p.name for p in NOTEBOOKS] == ["01_mlp_mnist_exploration.ipynb", "02_backprop_by_hand.ipynb",
                                           "03_review_questions.ipynb", "04_fast_kernels.ipynb",
                                           "06_convolutions_by_hand.ipynb"]
    assert all((TUTORIALS / "student" / p.name).is_file() for p in NOTEBOOKS)


def test_student_versions_are_up_to_date():
    r = subprocess.run([sys.executable, str(TUTORIALS / "make_student.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def test_student_versions_have_stubs_and_no_solutions():
    import nbformat
    for path in NOTEBOOKS:
        sol = nbformat.read(path, as_version=4)
        stu = nbformat.read(TUTORIALS / "student" / path.name, as_version=4)
        tagged = [i for i, c in enumerate(sol.cells) if "solution" in c.metadata.get("tags", [])]
        assert tagged, f"{path.name} has no solution cells"
        for i in tagged:
            assert stu.cells[i].source.endswith('raise NotImplementedError("your code here")')
            assert stu.cells[i].source.startswith("#")          # the task is kept
        assert all(not c.get("outputs") for c in stu.cells if c.cell_type == "code")


def test_committed_notebooks_carry_outputs_of_a_full_run():
    import nbformat
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), f"{path.name} was not executed in full"
        text = "".join(o.get("text", "") for c in code for o in c.get("outputs", []))
        assert "full run" in text and "fast mode" not in text, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, mnist_dir, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("NNUMPY_TUTORIAL_FAST", "1")
    monkeypatch.setenv("NNUMPY_DATA", str(mnist_dir.parent))     # finds <dir>/mnist
    monkeypatch.setenv("NNUMPY_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(TUTORIALS)}})
    client.execute()            # raises CellExecutionError, naming the cell, on any error
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code")
