"""The tutorials' autograded checks (nbgrader markup): each check passes on the
solution and fails, naming what is wrong, on deliberately broken answers.

A notebook's solution cells carry nbgrader's ``solution`` metadata and
``### BEGIN SOLUTION`` / ``### END SOLUTION`` regions; the check cells after
them carry ``grade`` metadata (test cells, locked, with points).  The broken
answers live in ``tests/tutorial_mutants/<notebook>.py``::

    MUTANTS = {"<grade_id of a solution cell>": [(old, new, fragment), ...]}

For each one the notebook's kernel runs the solution cell with ``old``
replaced by ``new`` (``old`` occurs exactly once), then the cells after it up
to the next solution cell: the mutated cell must run, and a check cell must
raise AssertionError whose message contains ``fragment`` (checks that say
what is wrong).  Then the real cell and the same cells run, and must pass.
All of it in one kernel per notebook, in fast mode.
"""
import copy
import importlib.util
import re

import pytest

from conftest import ROOT

TUTORIALS = ROOT / "tutorials"
MUTANT_DIR = ROOT / "tests" / "tutorial_mutants"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))
pytestmark = pytest.mark.backend_independent    # the checks judge the student's code, whatever the backend
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def is_solution(cell):
    return cell.cell_type == "code" and bool(nbgrader(cell).get("solution"))


def is_check(cell):
    meta = nbgrader(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def read(path):
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(path, as_version=4)


def load_mutants(path):
    file = MUTANT_DIR / f"{path.stem}.py"
    if not file.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"mutants_{path.stem}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTANTS


def solution_code(source):
    """The lines between BEGIN and END SOLUTION markers (what a student writes)."""
    return "\n".join(re.findall(rf"{re.escape(BEGIN)}\n(.*?)\n[ \t]*{re.escape(END)}", source, re.S))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markup(path):
    """Solution cells in nbgrader markup, each followed by a check cell; ids unique; no old tags."""
    nb = read(path)
    ids, problems = [], []
    solutions = [i for i, c in enumerate(nb.cells) if is_solution(c)]
    assert solutions, f"{path.name} has no nbgrader solution cells"
    for i, cell in enumerate(nb.cells):
        meta = nbgrader(cell)
        if "solution" in cell.metadata.get("tags", []):
            problems.append(f"cell {i} still has the old 'solution' tag")
        if meta:
            ids.append(meta.get("grade_id"))
            if meta.get("schema_version") != 3:
                problems.append(f"cell {i}: nbgrader schema_version is not 3")
        if is_solution(cell):
            src = cell.source
            if src.count(BEGIN) != src.count(END) or not src.count(BEGIN):
                problems.append(f"cell {i} ({meta.get('grade_id')}): unbalanced or missing {BEGIN}/{END}")
            nxt = next((c for c in nb.cells[i + 1:] if c.cell_type == "code"), None)
            if nxt is None or not is_check(nxt):
                problems.append(f"cell {i} ({meta.get('grade_id')}): the next code cell is not a check cell")
        if is_check(cell):
            if not meta.get("locked") or not meta.get("points"):
                problems.append(f"cell {i} ({meta.get('grade_id')}): a check cell must be locked and have points")
            if cell.source.count(HIDDEN_BEGIN) != cell.source.count(HIDDEN_END):
                problems.append(f"cell {i}: unbalanced hidden-test markers")
    if len(ids) != len(set(ids)) or None in ids:
        problems.append(f"grade_ids must be unique and present: {ids}")
    if not any(HIDDEN_BEGIN in c.source for c in nb.cells if is_check(c)):
        problems.append("no check cell has hidden tests")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_solution_has_broken_answers(path):
    nb = read(path)
    mutants = load_mutants(path)
    assert mutants is not None, f"no broken answers for {path.name}: write tests/tutorial_mutants/{path.stem}.py"
    cells = {nbgrader(c)["grade_id"]: c for c in nb.cells if is_solution(c)}
    problems = [f"solution cell {gid!r} has no broken answer" for gid in cells if not mutants.get(gid)]
    problems += [f"{gid!r} is not the grade_id of a solution cell" for gid in mutants if gid not in cells]
    for gid, items in mutants.items():
        for old, new, fragment in items if gid in cells else ():
            code = solution_code(cells[gid].source)
            if cells[gid].source.count(old) != 1:
                problems.append(f"{gid}: {old!r} occurs {cells[gid].source.count(old)} times in the cell, not once")
            elif old not in code:
                problems.append(f"{gid}: {old!r} is outside the solution region (the student never writes it)")
            if old == new or not fragment:
                problems.append(f"{gid}: mutant {old!r} -> {new!r} changes nothing or expects no message")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def _client(nb, cwd):
    nbclient = pytest.importorskip("nbclient")
    return nbclient.NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})


def _run(client, cell, index):
    """Run one cell; None if it ran, else (error name, error value)."""
    from nbclient.exceptions import CellExecutionError
    try:
        client.execute_cell(cell, index)
    except CellExecutionError as exc:
        return exc.ename, exc.evalue
    return None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_checks_pass_on_the_solution_and_fail_on_broken_answers(path, tutorial_env):
    nb = read(path)
    mutants = load_mutants(path) or {}
    client = _client(nb, TUTORIALS)
    problems, n_mutants, n_checks = [], 0, 0
    starts = [i for i, c in enumerate(nb.cells) if is_solution(c)] + [len(nb.cells)]
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if is_solution(cell):
                gid = nbgrader(cell)["grade_id"]
                segment = range(index + 1, next(s for s in starts if s > index))
                for old, new, fragment in mutants.get(gid, ()):
                    n_mutants += 1
                    broken = copy.deepcopy(cell)
                    broken.source = cell.source.replace(old, new, 1)
                    label = f"{gid}: {old!r} -> {new!r}"
                    err = _run(client, broken, index)
                    if err is not None:
                        problems.append(f"{label}: the broken cell itself raised {err[0]}: {err[1]}")
                        continue
                    for j in segment:
                        later = nb.cells[j]
                        if later.cell_type != "code":
                            continue
                        err = _run(client, copy.deepcopy(later), j)
                        if err is None:
                            continue
                        if not is_check(later):
                            problems.append(f"{label}: cell {j} (not a check) raised {err[0]}: {err[1]}")
                        elif err[0] != "AssertionError" or fragment not in err[1]:
                            problems.append(f"{label}: check {nbgrader(later)['grade_id']} raised {err[0]}: "
                                            f"{err[1]!r}, which does not contain {fragment!r}")
                        break
                    else:
                        problems.append(f"{label}: every check passed the broken answer")
            err = _run(client, cell, index)
            if is_check(cell):
                n_checks += 1
            if err is not None:
                what = f"check {nbgrader(cell)['grade_id']}" if is_check(cell) else f"cell {index}"
                pytest.fail(f"{path.name}: {what} failed on the solution: {err[0]}: {err[1]}\n"
                            + "\n".join(problems), pytrace=False)
    assert n_checks and n_mutants, f"{path.name}: {n_checks} checks, {n_mutants} broken answers"
    assert not problems, f"{path.name}:\n" + "\n".join(problems)
