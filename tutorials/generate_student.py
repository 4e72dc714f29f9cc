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

Needs nbgrader (``pip install -e ".[notebooks]"``).  The course's settings are
those of ``tutorials/nbgrader_config.py``, which a teacher copies into a course.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ASSIGNMENT = "nnumpy"


def release(notebooks, workdir):
    """Run ``nbgrader generate_assignment`` on ``notebooks`` in a course under
    ``workdir``; return {name: released notebook text}."""
    course = pathlib.Path(workdir)
    source = course / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    for nb in notebooks:
        shutil.copyfile(nb, source / nb.name)
    shutil.copyfile(HERE / "nbgrader_config.py", course / "nbgrader_config.py")
    cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force",
           f"--CourseDirectory.root={course}", f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}"]
    # nbgrader runs the `alembic` command (its database migrations) by name: put this Python's bin first on PATH
    env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    r = subprocess.run(cmd, cwd=course, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"nbgrader generate_assignment failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
    out = course / "release" / ASSIGNMENT
    return {nb.name: normalise((out / nb.name).read_text(encoding="utf-8")) for nb in notebooks}


def normalise(text):
    """The notebook as nbformat writes it (stable key order and indentation)."""
    import nbformat
    return nbformat.writes(nbformat.reads(text, as_version=4)) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="compare with tutorials/student/ instead of writing")
    args = p.parse_args(argv)
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        print("nbgrader is not installed: pip install -e \".[notebooks]\"", file=sys.stderr)
        return 2
    notebooks = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    out_dir = HERE / "student"
    with tempfile.TemporaryDirectory(prefix="nnumpy-nbgrader-") as tmp:
        released = release(notebooks, tmp)
    extra = sorted(p.name for p in out_dir.glob("*.ipynb") if p.name not in released)
    if args.check:
        stale = [name for name, text in released.items()
                 if not (out_dir / name).is_file() or (out_dir / name).read_text(encoding="utf-8") != text]
        if stale or extra:
            print("out of date: " + ", ".join(stale + [f"{e} (no teacher version)" for e in extra])
                  + " (run python tutorials/generate_student.py)", file=sys.stderr)
            return 1
        print(f"{len(released)} student notebooks up to date")
        return 0
    out_dir.mkdir(exist_ok=True)
    for name, text in released.items():
        tmp = out_dir / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out_dir / name)                     # whole or not at all
        print(f"wrote {(out_dir / name).relative_to(HERE.parent)}")
    for name in extra:
        print(f"note: tutorials/student/{name} has no teacher version any more (left in place; delete it by hand)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
