"""Writing files so that readers never see a half-written one."""
from __future__ import annotations

import contextlib
import os
import tempfile

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_write(path, prefix=".nnumpy-"):
    """Open a temporary file beside ``path`` for binary writing; on success it
    is flushed, synced and renamed onto ``path`` in one step, on any error
    (Ctrl-C included) it is deleted and ``path`` is left as it was."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=folder)
    os.close(fd)
    try:
        with open(tmp, "wb") as f:                  # f.name is the temporary path
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)          # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
