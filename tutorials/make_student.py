"""Generate the student versions of the tutorials from the solutions.

Every code cell tagged ``solution`` keeps its leading comment lines (the
task) and gets a stub instead of its code; all outputs are cleared.

    python tutorials/make_student.py           # (re)write tutorials/student/*.ipynb
    python tutorials/make_student.py --check   # exit 1 if they are out of date
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
STUB = 'raise NotImplementedError("your code here")'


def student_version(nb):
    nb = nbformat.from_dict(nb)
    nb.metadata = {"kernelspec": nb.metadata.get("kernelspec", {}), "language_info": {"name": "python"}}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
        if "solution" in cell.metadata.get("tags", []):
            lines = cell.source.splitlines()
            task = [ln for ln in lines[:next((i for i, ln in enumerate(lines) if not ln.startswith("#")),
                                             len(lines))]]
            cell.source = "\n".join(task + [STUB])
    return nb


def render(path):
    return nbformat.writes(student_version(nbformat.read(path, as_version=4))) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="compare instead of writing")
    args = p.parse_args(argv)
    out_dir = HERE / "student"
    stale = []
    for src in sorted(HERE.glob("[0-9][0-9]_*.ipynb")):
        text, dest = render(src), out_dir / src.name
        if args.check:
            if not dest.is_file() or dest.read_text() != text:
                stale.append(dest.name)
        else:
            out_dir.mkdir(exist_ok=True)
            dest.write_text(text)
            print(f"wrote {dest.relative_to(HERE.parent)}")
    if stale:
        print("out of date: " + ", ".join(stale) + " (run python tutorials/make_student.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
