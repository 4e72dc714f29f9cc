"""Run folders that are always one run.

:func:`run_folder` hands out a temporary folder beside the destination; the
caller writes everything there and calls ``commit()``; only then is the
folder renamed onto the destination, in one step.  A run that fails, is
killed, or is interrupted before it commits leaves the destination as it
was (the temporary folder is removed).  A lock beside the destination makes
a second run into the same folder fail at once, and an existing folder is
replaced only when asked (``overwrite``) and only when it is a folder that
nnumpy wrote (it holds the marker file ``.nnumpy-run``): a user's own files
are never replaced or deleted.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path

from ._fileio import atomic_write, make_dirs

try:
    import fcntl
except ImportError:                 # not POSIX
    fcntl = None

__all__ = ["run_folder", "RunFolderError", "RunFolderExistsError", "write_text", "MARKER"]

#: The file that marks a folder as written by nnumpy (and so replaceable with overwrite).
MARKER = ".nnumpy-run"


class RunFolderError(OSError):
    """A run folder cannot be written: another run holds it, or the file system refuses."""


class RunFolderExistsError(RunFolderError, FileExistsError):
    """The destination exists (and overwriting it was not asked for, or is not allowed)."""


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (a temporary file renamed into place)."""
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


def is_run_folder(path):
    """Whether ``path`` is a folder written by nnumpy (it holds the marker)."""
    return Path(path).is_dir() and (Path(path) / MARKER).is_file()


class _Staged:
    """The temporary folder of a run being written; ``commit()`` publishes it."""

    def __init__(self, path):
        self.path, self.committed = Path(path), False

    def commit(self):
        self.committed = True


@contextlib.contextmanager
def _lock(out):
    """An exclusive lock on ``.NAME.lock`` beside ``out``.  With POSIX ``flock``
    it is released by the system when the process dies; elsewhere the file is
    created exclusively (a run that was killed leaves it: delete it by hand)."""
    path = out.parent / f".{out.name}.lock"
    busy = (f"another nnumpy run is writing {out} (it holds the lock {path}); wait for it to finish, "
            f"or choose another output folder")
    if fcntl is None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise RunFolderError(busy) from None
    else:
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunFolderError(busy) from None
            try:                                           # still the file at path (not unlinked meanwhile)?
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _check_destination(out, overwrite):
    for parent in out.parents:                      # the first existing ancestor must be a folder
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise RunFolderExistsError(f"{parent} is a file, not a folder: it cannot hold {out}")
            break
    if out.is_symlink():
        raise RunFolderExistsError(f"{out} is a symbolic link; nnumpy does not write run folders through "
                                   f"links: choose another output folder")
    if out.exists() and not out.is_dir():
        raise RunFolderExistsError(f"{out} exists and is a file, not a folder; choose another output folder")
    if out.exists():
        if not is_run_folder(out):
            raise RunFolderExistsError(f"{out} exists and was not written by nnumpy (it has no {MARKER} "
                                       f"file); it is left alone: choose another output folder")
        if not overwrite:
            raise RunFolderExistsError(f"{out} already holds a run; pass --overwrite (overwrite=True) to "
                                       f"replace it, or choose another output folder")


def _remove_leftovers(out):
    """Temporary folders of earlier runs into ``out`` that were killed before
    they could clean up (only called while holding the lock, so no run is
    writing them)."""
    for p in out.parent.glob(f".{glob.escape(out.name)}.nnumpy-*.[to][ml][pd]"):     # *.tmp, *.old
        shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def run_folder(out, overwrite=False, kind="run", config=None):
    """Write the run folder ``out`` as one piece.

    Yields a staging object whose ``.path`` is a temporary folder beside
    ``out`` (marked as nnumpy's, with ``config`` written to ``config.json``
    when given); write every file there, then call ``.commit()``.  When the
    block ends after a commit (also when it ends by an exception raised after
    the commit, e.g. Ctrl-C once the finished epochs are written), the
    folder replaces ``out`` in one rename; without a commit it is deleted and
    ``out`` is untouched.  Raises :class:`RunFolderExistsError` when ``out``
    exists (unless ``overwrite`` and ``out`` is a folder nnumpy wrote) and
    :class:`RunFolderError` when another run holds ``out``.
    """
    out = Path(os.path.abspath(out))
    _check_destination(out, overwrite)
    with make_dirs(out.parent), _lock(out):
        _check_destination(out, overwrite)                # again, now that no other run can change it
        _remove_leftovers(out)
        staged = _Staged(make_temp_dir(out))
        try:
            write_text(staged.path / MARKER, json.dumps({"kind": kind}) + "\n")
            if config is not None:
                write_text(staged.path / "config.json", json.dumps(config, indent=1))
            yield staged
        finally:
            if staged.committed:
                _publish(staged.path, out)
            else:
                shutil.rmtree(staged.path, ignore_errors=True)


def make_temp_dir(out):
    """A temporary folder beside ``out`` for writing it, with the permissions ``mkdir`` would give
    (``tempfile.mkdtemp`` makes it readable by its owner only)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.nnumpy-", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


def _publish(tmp, out):
    """Rename ``tmp`` onto ``out``; an old run folder there is moved aside first, then deleted."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.nnumpy-", suffix=".old", dir=out.parent))
        os.replace(out, old / "run")
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
