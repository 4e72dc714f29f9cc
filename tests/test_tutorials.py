"""The tutorials: every teacher notebook runs top to bottom (fast mode); the
student versions are what nbgrader generates from them, carry no solution and
no hidden test, and run up to their first stub.  (The check cells themselves
are tested in test_tutorial_checks.py.)"""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, require_package

TUTORIALS = ROOT / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))
STUDENT = TUTORIALS / "student"


def test_every_exercise_of_the_practical_has_a_notebook():
    assert [p.name for p in NOTEBOOKS] == ["00_modules_and_objects.ipynb", "01_mlp_mnist_exploration.ipynb",
                                           "02_backprop_by_hand.ipynb", "03_review_questions.ipynb",
                                           "04_fast_kernels.ipynb", "05_autograd.ipynb",
                                           "06_convolutions_by_hand.ipynb"]
    assert sorted(p.name for p in STUDENT.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]


@pytest.mark.backend_independent
def test_student_versions_are_what_nbgrader_generates():
    require_package("nbgrader", "notebooks")
    r = subprocess.run([sys.executable, str(TUTORIALS / "generate_student.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.backend_independent
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_versions_have_stubs_and_no_solutions(path):
    nbformat = pytest.importorskip("nbformat")
    sol = nbformat.read(path, as_version=4)
    stu = nbformat.read(STUDENT / path.name, as_version=4)
    assert len(sol.cells) == len(stu.cells)
    solutions = 0
    for i, (a, b) in enumerate(zip(sol.cells, stu.cells)):
        meta = a.metadata.get("nbgrader", {})
        assert b.metadata.get("nbgrader", {}).get("grade_id") == meta.get("grade_id"), f"cell {i}"
        for marker in ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"):
            assert marker not in b.source, f"{path.name} cell {i}: {marker!r} reached the student version"
        if meta.get("solution") and a.cell_type == "code":
            solutions += 1
            assert b.source.count("raise NotImplementedError()") == a.source.count("### BEGIN SOLUTION")
            task = a.source.split("\n")[0]
            assert b.source.startswith(task), f"{path.name} cell {i}: the task comment was lost"
        elif meta.get("grade"):
            assert b.metadata["nbgrader"].get("locked") and b.metadata["nbgrader"].get("checksum")
            hidden = a.source.count("### BEGIN HIDDEN TESTS")
            assert hidden or b.source == a.source, f"{path.name} cell {i}: a check cell changed"
        elif a.cell_type == "code":
            assert b.source == a.source, f"{path.name} cell {i}: an ordinary cell changed"
        if b.cell_type == "code":
            assert not b.outputs and b.execution_count is None, f"{path.name} cell {i} kept its outputs"
    assert solutions


@pytest.mark.backend_independent
def test_committed_notebooks_carry_outputs_of_a_full_run():
    import nbformat
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), f"{path.name} was not executed in full"
        text = "".join(o.get("text", "") for c in code for o in c.get("outputs", []))
        assert "full run" in text and "fast mode" not in text, path.name
        assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", [])), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tutorial_env):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(TUTORIALS)}})
    client.execute()            # raises CellExecutionError, naming the cell, on any error
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code")


@pytest.mark.backend_independent
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_version_runs_to_its_first_stub(path, tutorial_env):
    """A student opens the notebook and runs it: everything before the first
    exercise works, and the first error is the stub's NotImplementedError."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from nbclient.exceptions import CellExecutionError
    nb = nbformat.read(STUDENT / path.name, as_version=4)
    first_solution = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("solution"))
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(STUDENT)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as exc:
                assert exc.ename == "NotImplementedError", f"cell {index} raised {exc.ename}: {exc.evalue}"
                assert index >= first_solution, f"cell {index}, before the first exercise, raised"
                return
    pytest.fail(f"{path.name}: the student version ran to the end without meeting a stub")


@pytest.mark.backend_independent
def test_teacher_workflow_grades_the_solution_full_and_a_broken_answer_less(tmp_path, tutorial_env):
    """tutorials/README.md's workflow, end to end with nbgrader's own commands: generate, two
    submissions (the solution, and one with a mistake from tests/tutorial_mutants), autograde, export."""
    require_package("nbgrader", "notebooks")
    import csv
    import shutil
    from test_tutorial_checks import load_mutants
    name = "03_review_questions.ipynb"
    (tmp_path / "source" / "nnumpy").mkdir(parents=True)
    shutil.copyfile(TUTORIALS / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    shutil.copyfile(TUTORIALS / name, tmp_path / "source" / "nnumpy" / name)

    def nbgrader(*args):
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])   # (for `alembic`)
        r = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "PATH": path})
        assert r.returncode == 0, f"nbgrader {' '.join(args)}:\n{r.stdout}{r.stderr}"

    for student in ("alice", "bob"):
        nbgrader("db", "student", "add", student)
    nbgrader("generate_assignment", "nnumpy")
    assert (tmp_path / "release" / "nnumpy" / name).is_file()
    old, new, _ = load_mutants(TUTORIALS / name)["count_parameters"][0]
    for student, text in (("alice", (TUTORIALS / name).read_text()), ("bob", None)):
        dest = tmp_path / "submitted" / student / "nnumpy"
        dest.mkdir(parents=True)
        if text is None:
            import nbformat
            nb = nbformat.read(TUTORIALS / name, as_version=4)
            cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "count_parameters")
            cell.source = cell.source.replace(old, new, 1)
            text = nbformat.writes(nb)
        (dest / name).write_text(text)
    nbgrader("autograde", "nnumpy")
    nbgrader("export")
    nbgrader("generate_feedback", "nnumpy")
    for student in ("alice", "bob"):
        html = (tmp_path / "feedback" / student / "nnumpy" / name.replace(".ipynb", ".html")).read_text()
        assert "count_parameters" in html and "HIDDEN TESTS" not in html and "[784, 500, 150, 10]" not in html
    assert "AssertionError: count_parameters([784, 100, 200, 50, 10]) = 108900" in html     # bob sees why
    with open(tmp_path / "grades.csv", newline="") as f:
        grades = {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(f)}
    assert grades["alice"][0] == grades["alice"][1] > 0, grades
    assert grades["bob"][0] < grades["bob"][1], grades


@pytest.mark.backend_independent
@pytest.mark.parametrize("marker", ["### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS", "### END SOLUTION"])
def test_a_broken_marker_stops_the_generation_before_anything_is_written(tmp_path, marker):
    """A lone END (its BEGIN deleted) would let nbgrader release the solution or the hidden tests above it."""
    require_package("nbgrader", "notebooks")
    import shutil
    work = tmp_path / "tutorials"
    work.mkdir()
    for f in ("generate_student.py", "nbgrader_config.py", "03_review_questions.ipynb"):
        shutil.copyfile(TUTORIALS / f, work / f)
    (work / "student").mkdir()
    mine = work / "student" / "03_review_questions.ipynb"
    mine.write_text("the student's own work")
    text = (work / "03_review_questions.ipynb").read_text()
    line = next(ln for ln in text.split("\\n") if marker in ln)          # (a JSON string of the cell's lines)
    (work / "03_review_questions.ipynb").write_text(text.replace(line, "", 1))
    r = subprocess.run([sys.executable, str(work / "generate_student.py")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: 03_review_questions.ipynb cell"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert mine.read_text() == "the student's own work" and sorted(p.name for p in (work / "student").iterdir()) == [
        "03_review_questions.ipynb"]
