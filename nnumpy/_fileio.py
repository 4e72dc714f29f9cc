"""Writing files so that readers never see a half-written one.

:func:`atomic_write` is the one way nnumpy writes a file (models, IDX files,
downloads, run folders).  Its rules:

* **Atomic**: the data goes to a temporary file beside the destination,
  which is flushed, synced and renamed onto it in one step; on any error
  (Ctrl-C, a full disk included) the temporary file is deleted and the
  destination is left exactly as it was.
* **Symbolic links are written through**: when the destination is a link
  (``latest.npz -> runs/a/model.npz``), the file it points to is replaced,
  atomically, and the link stays as it is, as ``open(path, "w")`` would do.
  Replacing the link itself would silently detach ``latest.npz`` from the
  run it names and leave that run's file stale.  A dangling link creates its
  target; a loop of links is an error.
* **Clear errors** naming the path, as the usual ``OSError`` subclasses:
  ``FileNotFoundError`` (the folder does not exist), ``NotADirectoryError``
  (a component of the folder is a file), ``IsADirectoryError`` (the path
  is a folder), ``PermissionError`` (the folder is not writable), ``OSError``
  with ``errno.ELOOP`` (a loop of links) or ``EEXIST`` (a special file such
  as a FIFO is in the way).
* A replaced file keeps its permission bits; a new file gets the usual
  ``0o666 & ~umask``.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile

_UMASK = os.umask(0)
os.umask(_UMASK)


def resolve_target(path):
    """The file that writing ``path`` changes: ``path`` itself, or for a
    symbolic link (or a chain of them) the file it finally points to.

    Raises ``OSError(ELOOP)`` for a loop of links."""
    path = os.fspath(path)
    if not os.path.islink(path):
        return path
    target = os.path.realpath(path)
    if os.path.islink(target):              # realpath stops at a loop and returns a link
        raise OSError(errno.ELOOP, "cannot write: the path is a loop of symbolic links", path)
    return target


def check_writable_target(path, what="write"):
    """Raise a clear ``OSError`` subclass (naming ``path``) when ``path``
    cannot be written as a file: its folder is missing or is not a folder,
    the path is a folder, or a special file is in the way.  Returns the
    resolved target (see :func:`resolve_target`)."""
    path = os.fspath(path)
    if not path:
        raise FileNotFoundError(errno.ENOENT, f"cannot {what}: empty file name", path)
    target = resolve_target(path)
    via = "" if target == path else f" (a symbolic link to {target})"
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, f"cannot {what}: the path{via} is a folder; give a file name "
                                f"inside it", path)
    if path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)):
        raise IsADirectoryError(errno.EISDIR, f"cannot {what}: the path ends with a separator; give a file "
                                f"name, not a folder", path)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        probe = folder
        while probe and not os.path.exists(probe) and os.path.dirname(probe) != probe:
            probe = os.path.dirname(probe)
        if os.path.exists(probe) and not os.path.isdir(probe):
            raise NotADirectoryError(errno.ENOTDIR, f"cannot {what}{via}: {probe} is a file, not a folder", path)
        raise FileNotFoundError(errno.ENOENT, f"cannot {what}{via}: the folder {folder} does not exist", path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as e:
        raise type(e)(e.errno, f"cannot {what}{via}: {e.strerror}", path) from None
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EEXIST, f"cannot {what}{via}: a special file (not a regular file) is in the way", path)
    return target



def check_replaceable(path, what):
    """``check_writable_target(path, what)``, and a PermissionError naming
    ``path`` when the file there is read-only: nnumpy takes a file protected
    so as "do not overwrite".  Returns the target (see resolve_target)."""
    target = check_writable_target(os.fspath(path), what)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target
    if not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(errno.EACCES, f"cannot {what}: the existing file is read-only (nnumpy does not "
                              f"overwrite a file protected so; make it writable or choose another name)",
                              os.fspath(path))
    return target

@contextlib.contextmanager
def atomic_write(path, prefix=".nnumpy-"):
    """Open a temporary file beside ``path`` (beside its target, for a
    symbolic link) for binary writing; on success it is flushed, synced and
    renamed onto the target in one step, on any error (Ctrl-C included) it is
    deleted and the target is left as it was.  See the module docstring for
    symbolic links and the errors raised."""
    path = os.fspath(path)
    target = check_writable_target(path)
    folder = os.path.dirname(os.path.abspath(target))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~_UMASK
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=folder)
    except OSError as e:
        raise type(e)(e.errno, f"cannot write in the folder {folder}: {e.strerror}", path) from None
    os.close(fd)
    try:
        with open(tmp, "wb") as f:                  # f.name is the temporary path
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)                     # mkstemp makes 0600; give the usual (or the old) mode
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _sync_folder(folder)


def _sync_folder(folder):
    """Make the rename durable (best effort: not every system can sync a folder)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def make_dirs(folder):
    """Create ``folder`` and any missing parents for the ``with`` block; if the
    block fails (Ctrl-C included), remove the folders made here again, deepest
    first and only while empty, so a failure leaves no empty folders behind."""
    folder = os.path.abspath(folder)
    made, f = [], folder
    while not os.path.isdir(f) and os.path.dirname(f) != f:
        made.append(f)
        f = os.path.dirname(f)
    os.makedirs(folder, exist_ok=True)
    try:
        yield folder
    except BaseException:
        for d in made:
            try:
                os.rmdir(d)
            except OSError:                 # not empty (someone else's files) or gone: leave it
                break
        raise
