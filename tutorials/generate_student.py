"""Generate the student versions of the tutorials with nbgrader.

The notebooks in this folder are the teacher's (source) versions, in nbgrader
markup: solution regions between ``### BEGIN SOLUTION`` / ``### END SOLUTION``,
autograded check cells, hidden tests between ``### BEGIN HIDDEN TESTS`` /
``### END HIDDEN TESTS``.  This script runs nbgrader's own
``nbgrader generate_assignment`` on them, exactly as a course would, in a
throw-away course directory, and copies the released notebooks (solutions
replaced by stubs, hidden tests removed, outputs cleared, check cells locked
and checksummed) to ``tutorials/student/``::

    python tutorials/generate_student.py           # (re)write tutorials/student/*.ipynb
    python tutorials/generate_student.py --check   # exit 1 if they are out of date

Before anything is written, every marker in the teacher's notebooks must open
and close in order (nbgrader itself lets a lone ``### END SOLUTION`` through,
and the solution above it would reach the students), and afterwards no marker
and no hidden test may be left in a released notebook.  Exit status: 0 done
(or up to date), 1 out of date (--check), 2 an error, said in one line.

Needs nbgrader (``pip install -e ".[notebooks]"``).  The course's settings are
those of ``tutorials/nbgrader_config.py``, which a teacher copies into a course.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ASSIGNMENT = "nnumpy"
PAIRS = (("### BEGIN SOLUTION", "### END SOLUTION"), ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"))


class GenerateError(Exception):
    """Something stops the generation; its message is the one line the user sees."""


def check_markers(path):
    """Every BEGIN ... END pair opens and closes in order, in each cell, and
    only where nbgrader looks for it (solution / hidden tests in a check cell)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GenerateError(f"{path.name} is not a readable notebook: {exc}") from None
    for i, cell in enumerate(cells):
        source = cell.get("source", "")
        lines = (source if isinstance(source, list) else source.splitlines(True))
        meta = cell.get("metadata", {}).get("nbgrader", {})
        for begin, end in PAIRS:
            open_at = None
            for k, line in enumerate("".join(lines).splitlines()):
                text = line.strip()
                if text == begin:
                    if open_at is not None:
                        raise GenerateError(f"{path.name} cell {i} line {k + 1}: {begin!r} again before {end!r}")
                    open_at = k
                elif text == end:
                    if open_at is None:
                        raise GenerateError(f"{path.name} cell {i} line {k + 1}: {end!r} without a {begin!r} "
                                            f"above it (the code above would reach the students)")
                    open_at = None
            if open_at is not None:
                raise GenerateError(f"{path.name} cell {i} line {open_at + 1}: {begin!r} is never closed")
            if begin in "".join(lines):
                wanted = "solution" if "SOLUTION" in begin else "grade"
                if not meta.get(wanted):
                    raise GenerateError(f"{path.name} cell {i} has {begin!r} but is not an nbgrader "
                                        f"{'solution' if wanted == 'solution' else 'autograded test'} cell, so "
                                        f"nbgrader would release it as it is")


def check_released(name, text):
    """No marker, and so no solution or hidden test, left in a released notebook."""
    for pair in PAIRS:
        for marker in pair:
            if marker in text:
                raise GenerateError(f"released {name} still contains {marker!r}: refusing to write it")


def release(notebooks, workdir):
    """Run ``nbgrader generate_assignment`` on ``notebooks`` in a course under
    ``workdir``; return {name: released notebook text}."""
    course = pathlib.Path(workdir)
    source = course / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    for nb in notebooks:
        shutil.copyfile(nb, source / nb.name)
    config = HERE / "nbgrader_config.py"
    try:
        compile(config.read_text(encoding="utf-8"), str(config), "exec")
    except OSError as exc:
        raise GenerateError(f"cannot read {config}: {exc.strerror}") from None
    except SyntaxError as exc:          # nbgrader would ignore the file and use its defaults
        raise GenerateError(f"{config.name} line {exc.lineno}: {exc.msg}") from None
    shutil.copyfile(config, course / "nbgrader_config.py")
    cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force",
           f"--CourseDirectory.root={course}", f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}"]
    # nbgrader runs the `alembic` command (its database migrations) by name: put this Python's bin first on PATH
    env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    r = subprocess.run(cmd, cwd=course, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        log = (r.stdout + r.stderr).strip().splitlines()
        why = next((ln for ln in log if "ERROR" in ln), log[-1] if log else "")       # nbgrader's first error
        raise GenerateError(f"nbgrader generate_assignment failed (exit {r.returncode}): {why.strip()}")
    out = course / "release" / ASSIGNMENT
    released = {}
    for nb in notebooks:
        text = normalise((out / nb.name).read_text(encoding="utf-8"))
        check_released(nb.name, text)
        released[nb.name] = text
    return released


def normalise(text):
    """The notebook as nbformat writes it (stable key order and indentation)."""
    import nbformat
    return nbformat.writes(nbformat.reads(text, as_version=4)) + "\n"


def write_all(out_dir, released):
    """Write every notebook to a temporary file in ``out_dir``, then rename
    them all: a failure leaves the old set whole and no temporary file."""
    if out_dir.exists() and not out_dir.is_dir():
        raise GenerateError(f"{out_dir} exists and is not a folder")
    out_dir.mkdir(exist_ok=True)
    for name in released:
        if (out_dir / name).exists() and not (out_dir / name).is_file():
            raise GenerateError(f"{out_dir / name} exists and is not a file: not replacing it")
    temps = {}
    try:
        for name, text in released.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            temps[name] = tmp
        for name, tmp in temps.items():
            os.replace(tmp, out_dir / name)
    except OSError as exc:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise GenerateError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="compare with tutorials/student/ instead of writing")
    args = p.parse_args(argv)
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        print("error: nbgrader is not installed: pip install -e \".[notebooks]\"", file=sys.stderr)
        return 2
    notebooks = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    out_dir = HERE / "student"
    try:
        if not notebooks:
            raise GenerateError(f"no teacher notebooks (NN_name.ipynb) in {HERE}")
        for nb in notebooks:
            check_markers(nb)
        with tempfile.TemporaryDirectory(prefix="nnumpy-nbgrader-") as tmp:
            released = release(notebooks, tmp)
        extra = sorted(q.name for q in out_dir.glob("*.ipynb") if q.name not in released) if out_dir.is_dir() else []
        if args.check:
            stale = [name for name, text in released.items()
                     if not (out_dir / name).is_file() or (out_dir / name).read_text(encoding="utf-8") != text]
            if stale or extra:
                print("out of date: " + ", ".join(stale + [f"{e} (no teacher version)" for e in extra])
                      + " (run python tutorials/generate_student.py)", file=sys.stderr)
                return 1
            print(f"{len(released)} student notebooks up to date")
            return 0
        write_all(out_dir, released)
    except GenerateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name in released:
        print(f"wrote {(out_dir / name).relative_to(HERE.parent)}")
    for name in extra:
        print(f"note: tutorials/student/{name} has no teacher version any more (left in place; delete it by hand)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
