"""Finding, verifying, downloading and loading the MNIST-family datasets.

Where files are looked for, when no ``root`` is given (first verified copy wins):

1. ``$NNUMPY_DATA/<name>/``, when the variable is set;
2. ``/usr/share/datasets/<name>/``, read-only system copies (Debian's
   ``dataset-fashion-mnist`` installs Fashion-MNIST there);
3. the download folder: ``$NNUMPY_DATA/<name>/`` when set; else, when nnumpy
   runs from a source checkout, the checkout's ``datasets/<name>/`` (data
   next to the code, ignored by git); else a per-user cache,
   ``$XDG_CACHE_HOME/nnumpy/<name>/`` (``~/.cache/nnumpy/<name>/``), since
   an installed package's own folder is often not writable and is replaced
   on upgrade.

With ``root``, only that folder is used (and downloaded into).  A file is
used only when it verifies (see :mod:`.registry`); a file that does not is
reported with a warning and never used, and when downloading is allowed a
fresh copy replaces it (in the download folder; system copies are never
touched).  Only missing files are downloaded.
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
    in); ``why`` ("download=False", "NNUMPY_OFFLINE" or "download failed");
    ``root`` (the explicit folder, or None).  :meth:`message` words the
    advice for Python (``root=``) or for the command line (``--data-root``).
    """

    def __init__(self, dataset, missing, searched, why, root=None):
        self.dataset, self.why, self.root = dataset, why, None if root is None else str(root)
        self.missing = {k: list(v) for k, v in dict(missing).items()}
        self.searched = [str(d) for d in searched]
        super().__init__(self.message())

    def __reduce__(self):                 # pickled with its fields (it crosses process boundaries)
        return type(self), (self.dataset, self.missing, self.searched, self.why, self.root)

    def __str__(self):
        return self.message()

    def message(self, cli=False):
        spec = get_spec(self.dataset)
        why = {"download=False": "downloading is off" + ("" if cli else " (download=False)"),
               "NNUMPY_OFFLINE": "downloading is off (NNUMPY_OFFLINE is set)"}.get(self.why, "the download failed")
        lines = [f"{spec.name}: {len(self.missing)} file(s) not available and {why}:"]
        for fname, rejected in self.missing.items():
            lines.append(f"  {fname}: " + ("; ".join(rejected) if rejected else "not found"))
        lines.append("searched: " + ", ".join(self.searched))
        lines.append(local_files_advice(spec.name, self.root, cli))
        get = "python -m nnumpy.datasets download " + spec.name + (f" --data-root {self.root}" if self.root else "")
        lines.append(f"To download them (online): {get}; or get them from " + " or ".join(spec.mirrors)
                     + f" ({spec.homepage}).")
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


def _find(fs, dirs, rejected):
    """The first verified copy of file ``fs`` in ``dirs``: (array, path, how) or None."""
    for d in dirs:
        for fname in (fs.filename, fs.stem):
            path = Path(d) / fname
            if not path.is_file():
                continue
            try:
                arr, how = fs.load(path.read_bytes(), str(path))
                return arr, path, how
            except (ChecksumError, IDXFormatError, OSError) as e:
                rejected.append(f"{path}: {e}")
                warnings.warn(f"not using {path}: {e}", DatasetWarning, stacklevel=4)
    return None


def fetch(name, root=None, download=True, mirrors=None, timeout=(10.0, 30.0), retries=2,
          backoff=1.0, progress=None):
    """Locate, verify and (if needed and allowed) download dataset ``name``.

    Returns a dict role -> (array, path, how verified) for the roles
    ``train_images``, ``train_labels``, ``test_images``, ``test_labels``.
    ``download=False`` or ``NNUMPY_OFFLINE=1`` never touches the network.
    ``mirrors`` replaces the dataset's list of base URLs.
    """
    spec = get_spec(name)
    dirs = [Path(root)] if root is not None else search_dirs(spec.name)
    target = Path(root) if root is not None else download_dir(spec.name)
    bases = list(mirrors) if mirrors is not None else list(spec.mirrors)
    offline = not download or _offline()
    found, missing = {}, {}
    for role in ROLES:
        fs = spec.files[role]
        rejected = []
        hit = _find(fs, dirs, rejected)
        if hit is None and not offline:
            dest = target / fs.filename
            urls = [b if b.endswith(fs.filename) else b.rstrip("/") + "/" + fs.filename for b in bases]
            try:
                _download(urls, dest, lambda data, fs=fs, dest=dest: fs.verify(data, str(dest)),
                          timeout=timeout, retries=retries, backoff=backoff,
                          max_bytes=fs.payload_bytes + (1 << 20), progress=progress)
            except DownloadError as e:
                raise DownloadError(e.target, e.failures, dataset=spec.name, root=root) from None
            hit = _find(fs, [target], rejected)
        if hit is None:
            missing[fs.filename] = rejected
        else:
            found[role] = hit
    if missing:
        why = ("NNUMPY_OFFLINE" if _offline() else "download=False") if offline else "download failed"
        raise DatasetNotFoundError(spec.name, missing, dirs, why, root)
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
