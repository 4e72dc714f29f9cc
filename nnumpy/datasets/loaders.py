"""Finding, verifying, downloading and loading the MNIST-family datasets.

Where files are looked for, when no ``root`` is given (first verified copy wins):

1. ``$NNUMPY_DATA/<name>/``, when the variable is set;
2. ``/usr/share/datasets/<name>/``, read-only system copies (Debian's
   ``dataset-fashion-mnist`` installs Fashion-MNIST there);
3. the download folder: ``$NNUMPY_DATA/<name>/`` when set; else nnumpy's
   own folder: when nnumpy runs from a source checkout, the checkout's
   ``datasets/<name>/`` (data next to the code, ignored by git), else a
   per-user cache, ``$XDG_CACHE_HOME/nnumpy/<name>/``
   (``~/.cache/nnumpy/<name>/``), since an installed package's own folder
   is often not writable and is replaced on upgrade.

With ``root``, that folder is used, and a file missing there is downloaded
into it.  A file is used only when it verifies (see :mod:`.registry`); one
that does not is reported with a :class:`DatasetWarning` (saying which
registered dataset's file it is, when it is one: Fashion-MNIST files passed
as MNIST, say) and never used.

**nnumpy never replaces or deletes a file you put somewhere.**  Your
folders are ``root`` and ``$NNUMPY_DATA/<name>/`` (and the read-only system
folders); nnumpy's own folders are the checkout's ``datasets/<name>/`` and
the per-user cache.  When a file is missing or rejected:

* rejected in ``root``: it is left as it is; the loader looks for a
  verified copy along the search path above, and when there is none and
  downloading is allowed, downloads one into the download folder (not into
  ``root``), uses it and warns that the file in ``root`` was not used.  The
  next call finds that copy without downloading again.
* rejected in ``$NNUMPY_DATA/<name>/``: left as it is too; the fresh copy
  goes beside it into nnumpy's own folder (the checkout's ``datasets/`` or
  the per-user cache), which is then searched whenever the file in
  ``$NNUMPY_DATA`` is rejected.
* rejected in nnumpy's own folder: replaced by the download, unless it is a
  symbolic link or the genuine file of another registered dataset (then the
  copy goes to the next folder: the per-user cache).
* when every place holds a file nnumpy may not replace, nothing is
  downloaded and :class:`DatasetNotFoundError` says so (``why="not
  replaced"``): move the files away, or fix them.

Only missing or rejected files are downloaded; a download never leaves a
partial file (see :mod:`.download`).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .download import DownloadError
from .download import download as _download
from .idx import IDXFormatError
from .registry import ROLES, ChecksumError, get_spec, local_files_advice

__all__ = ["load_dataset", "load_mnist", "load_fashion_mnist", "load_kmnist", "fetch", "data_home",
           "download_dir", "search_dirs", "DatasetNotFoundError", "DatasetWarning", "SYSTEM_DATA_DIRS"]

#: Read-only system folders searched for ``<name>/``.
SYSTEM_DATA_DIRS = ("/usr/share/datasets",)


class DatasetNotFoundError(FileNotFoundError):
    """Files are missing (or corrupt) and downloading is off or failed.

    Fields: ``dataset``; ``missing`` (file name -> why each local copy was
    rejected, empty when none was found); ``searched`` (the folders looked
    in); ``why`` ("download=False", "NNUMPY_OFFLINE", "download failed", or
    "not replaced": every place a download could go holds a file that nnumpy
    must not replace); ``root`` (the explicit folder, or None).
    :meth:`message` words the advice for Python (``root=``) or for the
    command line (``--data-root``).
    """

    def __init__(self, dataset, missing, searched, why, root=None):
        get_spec(dataset)                 # an unknown dataset name is the caller's ValueError, said here
        self.dataset, self.why, self.root = dataset, why, None if root is None else str(root)
        self.missing = {k: list(v) for k, v in dict(missing).items()}
        self.searched = [str(d) for d in searched]
        super().__init__(self.message())

    def __reduce__(self):                 # pickled with its fields (it crosses process boundaries)
        return type(self), (self.dataset, self.missing, self.searched, self.why, self.root), self.__dict__

    def __str__(self):
        return self.message()

    def message(self, cli=False):
        spec = get_spec(self.dataset)
        why = {"download=False": "downloading is off" + ("" if cli else " (download=False)"),
               "NNUMPY_OFFLINE": "downloading is off (NNUMPY_OFFLINE is set)",
               "not replaced": "nnumpy does not replace files it did not download"}.get(self.why,
                                                                                        "the download failed")
        lines = [f"{spec.name}: {len(self.missing)} file(s) not available and {why}:"]
        for fname, rejected in self.missing.items():
            lines.append(f"  {fname}: " + ("; ".join(rejected) if rejected else "not found"))
        lines.append("searched: " + ", ".join(self.searched))
        lines.append(local_files_advice(spec.name, self.root, cli))
        if self.root is not None and (Path(self.root) / spec.name).is_dir():
            inner = Path(self.root) / spec.name
            lines.append(f"{self.root} holds a folder {spec.name}/: did you mean "
                         + (f"--data-root {inner}" if cli else f"root={str(inner)!r}") + "?")
        get = "python -m nnumpy.datasets download " + spec.name + (f" --data-root {self.root}" if self.root else "")
        home = "" if spec.homepage in spec.mirrors else f" (see {spec.homepage})"
        lines.append(f"To download them (online): {get}; or get them from " + " or ".join(spec.mirrors) + home + ".")
        if spec.system_note:
            lines.append(spec.system_note)
        return "\n".join(lines)


class DatasetWarning(UserWarning):
    """A local file was found but rejected (it is not used)."""


def _offline():
    return os.environ.get("NNUMPY_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _checkout_root():
    """The source checkout this package runs from, or None when installed."""
    top = Path(__file__).resolve().parents[2]
    if (top / "setup.cfg").is_file() and (top / "nnumpy").is_dir() and (top / "datasets").is_dir():
        return top
    return None


def data_home():
    """The folder under which datasets are downloaded (see the module docstring)."""
    env = os.environ.get("NNUMPY_DATA")
    if env:
        return Path(env).expanduser()
    checkout = _checkout_root()
    if checkout is not None:
        return checkout / "datasets"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "nnumpy"


def download_dir(name):
    """The folder a missing file of dataset ``name`` is downloaded into (see the module docstring)."""
    return data_home() / get_spec(name).name


def search_dirs(name):
    """The folders searched for dataset ``name``, in order."""
    spec = get_spec(name)
    dirs = []
    if os.environ.get("NNUMPY_DATA"):
        dirs.append(Path(os.environ["NNUMPY_DATA"]).expanduser() / spec.name)
    dirs += [Path(d) / spec.name for d in SYSTEM_DATA_DIRS]
    dirs.append(download_dir(name))
    unique = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _find(fs, dirs, rejected, searched=None):
    """The first verified copy of file ``fs`` in ``dirs``: (array, path, how) or None.
    Each copy found but rejected is appended to ``rejected`` as (path, error)
    and reported with a warning; ``searched`` collects the folders looked in."""
    for d in dirs:
        if searched is not None and Path(d) not in searched:
            searched.append(Path(d))
        for fname in (fs.filename, fs.stem):
            path = Path(d) / fname
            if not path.is_file():
                if os.path.lexists(path):       # a folder, a dangling link, ...: in the way, never used
                    what = ("a symbolic link to a missing file" if path.is_symlink() and not path.exists()
                            else "not a regular file")
                    rejected.append((path, OSError(f"{path}: {what}")))
                    warnings.warn(f"not using {path}: {what}", DatasetWarning, stacklevel=4)
                continue
            try:
                arr, how = fs.check(str(path), str(path))
                return arr, path, how
            except (ChecksumError, IDXFormatError, OSError) as e:
                rejected.append((path, e))
                warnings.warn(f"not using {path}: {_reason(path, e)}", DatasetWarning, stacklevel=4)
    return None


def _reason(path, e):
    text = str(e)
    return text[len(str(path)) + 2:] if text.startswith(f"{path}: ") else text


def _cache_dir(name):
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "nnumpy" / get_spec(name).name


def _own_dir(name):
    """nnumpy's own download folder for ``name``: the checkout's
    ``datasets/<name>/``, or the per-user cache for an installed package."""
    checkout = _checkout_root()
    return checkout / "datasets" / get_spec(name).name if checkout is not None else _cache_dir(name)


def _download_chain(name):
    """Where a download of ``name`` may go, in order of preference."""
    chain = []
    for d in (download_dir(name), _own_dir(name), _cache_dir(name)):
        if d not in chain:
            chain.append(d)
    return chain


def _is_own_folder(folder, name):
    """Whether ``folder`` is nnumpy's own (files in it may be replaced), not the user's."""
    folder = Path(folder)
    env = os.environ.get("NNUMPY_DATA")
    if env and folder == Path(env).expanduser() / get_spec(name).name:
        return False
    return folder in (_own_dir(name), _cache_dir(name))


def _replaceable(path, folder, name, rejected):
    """Whether the rejected file ``path`` may be replaced by a download: only
    in nnumpy's own folder, only a regular file (not a link) that failed
    verification and is not the genuine file of another registered dataset."""
    if not _is_own_folder(folder, name) or path.is_symlink() or not path.is_file():
        return False
    errors = [e for p, e in rejected if p == path]
    return bool(errors) and all(isinstance(e, ChecksumError) and not e.matches for e in errors)


def _locate(spec, fs, root, dirs, rejected, searched):
    """After the first search failed: (hit, None) for a verified copy found
    elsewhere, or (None, folder) for where a download may go (None: nowhere,
    every place holds a file that nnumpy must not replace)."""
    checked = set(dirs)
    if root is not None:
        if not any(os.path.lexists(root / n) for n in (fs.filename, fs.stem)):
            return None, root                   # nothing of this file in root: download it there
        fallback = [d for d in search_dirs(spec.name) if d not in checked]
        checked.update(fallback)
        hit = _find(fs, fallback, rejected, searched)
        if hit is not None:
            return hit, None
    for folder in _download_chain(spec.name):
        path = folder / fs.filename
        if not os.path.lexists(path):
            return None, folder
        if folder not in checked:
            checked.add(folder)
            hit = _find(fs, [folder], rejected, searched)
            if hit is not None:
                return hit, None
        if _replaceable(path, folder, spec.name, rejected):
            return None, folder
    return None, None


def _fetch_one(spec, fs, dest, bases, timeout, retries, backoff, progress, root):
    """Download ``fs`` to ``dest`` (verified before it is renamed into place); returns the hit."""
    urls = [b if b.endswith(fs.filename) else b.rstrip("/") + "/" + fs.filename for b in bases]
    verified = {}

    def verify(data):
        verified["hit"] = fs.check(data, str(dest))

    try:
        _download(urls, dest, verify, timeout=timeout, retries=retries, backoff=backoff,
                  max_bytes=fs.payload_bytes + (1 << 20), progress=progress)
    except DownloadError as e:
        raise DownloadError(e.target, e.failures, dataset=spec.name, root=root) from None
    arr, how = verified["hit"]
    return arr, dest, how


def fetch(name, root=None, download=True, mirrors=None, timeout=(10.0, 30.0), retries=2,
          backoff=1.0, progress=None):
    """Locate, verify and (if needed and allowed) download dataset ``name``.

    Returns a dict role -> (array, path, how verified) for the roles
    ``train_images``, ``train_labels``, ``test_images``, ``test_labels``.
    ``download=False`` or ``NNUMPY_OFFLINE=1`` never touches the network.
    ``mirrors`` replaces the dataset's list of base URLs.  Files the user
    placed are never replaced: see the module docstring for where a
    download goes when a local file is rejected.
    """
    spec = get_spec(name)
    root = None if root is None else Path(root)
    dirs = [root] if root is not None else search_dirs(spec.name)
    bases = list(mirrors) if mirrors is not None else list(spec.mirrors)
    offline = not download or _offline()
    found, missing, searched, stuck = {}, {}, [], False
    for role in ROLES:
        fs = spec.files[role]
        rejected = []
        hit = _find(fs, dirs, rejected, searched)
        target = None
        if hit is None:
            hit, target = _locate(spec, fs, root, dirs, rejected, searched)
        if hit is None and target is not None and not offline:
            hit = _fetch_one(spec, fs, target / fs.filename, bases, timeout, retries, backoff, progress, root)
        if hit is not None and rejected:
            bad = ", ".join(sorted({str(p) for p, _ in rejected}))
            warnings.warn(f"{fs.filename}: {bad} failed verification and was left as it is; using the "
                          f"verified copy {hit[1]} instead", DatasetWarning, stacklevel=3)
        if hit is None:
            reasons = [f"{p}: {_reason(p, e)}" for p, e in rejected]
            if target is None and not offline:
                stuck = True
                reasons.append("not downloaded: " + ", ".join(str(d / fs.filename) for d in
                                                              _download_chain(spec.name))
                               + " hold files that nnumpy did not download and never replaces; move them "
                                 "away (or fix them) to download a verified copy")
            missing[fs.filename] = reasons
        else:
            found[role] = hit
    if missing:
        if offline:
            why = "NNUMPY_OFFLINE" if _offline() else "download=False"
        else:
            why = "not replaced" if stuck else "download failed"
        raise DatasetNotFoundError(spec.name, missing, searched or dirs, why, None if root is None else str(root))
    return found


def load_dataset(name, root=None, download=True, mirrors=None, flatten=False, scale=False,
                 timeout=(10.0, 30.0), retries=2, progress=None):
    """Load an MNIST-family dataset: ``(x_train, y_train), (x_test, y_test)``.

    Images are uint8 of shape (N, 28, 28), or (N, 784) with ``flatten``;
    ``scale`` turns them into float32 in [0, 1] (pixel / 255).  Labels are
    int64 class indices.  See :func:`fetch` for the other arguments and the
    module docstring for where files are looked for.
    """
    got = fetch(name, root=root, download=download, mirrors=mirrors, timeout=timeout,
                retries=retries, progress=progress)

    def images(role):
        x = got[role][0]
        if flatten:
            x = x.reshape(len(x), -1)
        if scale:
            x = x.astype(np.float32) / np.float32(255)
        return x

    return ((images("train_images"), got["train_labels"][0].astype(np.int64)),
            (images("test_images"), got["test_labels"][0].astype(np.int64)))


def load_mnist(root=None, download=True, mirrors=None, flatten=False, scale=False, **kwargs):
    """MNIST digits: 60,000 training and 10,000 test images.  See :func:`load_dataset`."""
    return load_dataset("mnist", root, download, mirrors, flatten, scale, **kwargs)


def load_fashion_mnist(root=None, download=True, mirrors=None, flatten=False, scale=False, **kwargs):
    """Fashion-MNIST: 60,000 + 10,000 clothing images in 10 classes.  See :func:`load_dataset`."""
    return load_dataset("fashion-mnist", root, download, mirrors, flatten, scale, **kwargs)


def load_kmnist(root=None, download=True, mirrors=None, flatten=False, scale=False, **kwargs):
    """Kuzushiji-MNIST: 60,000 + 10,000 cursive Japanese characters.  See :func:`load_dataset`."""
    return load_dataset("kmnist", root, download, mirrors, flatten, scale, **kwargs)
