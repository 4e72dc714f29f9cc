"""What nnumpy knows about each dataset: files, mirrors and checksums.

Two checksums per file, because mirrors and distributions (Debian, for one)
recompress the files: the MD5 of the ``.gz`` exactly as the original
servers publish it, and the SHA-256 of the decompressed IDX payload, which
does not depend on how the file was compressed.  A local or downloaded file
is accepted when either matches; one that matches neither is compared
against every registered file (:func:`identify`), so the error can say
"these are Fashion-MNIST's files".  Payload SHA-256 values for MNIST and
Fashion-MNIST were computed from verified copies of the original files;
for KMNIST only the published ``.gz`` MD5 is known, so a recompressed KMNIST
file cannot be verified and is rejected.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from .idx import IDXFormatError, _decode

__all__ = ["FileSpec", "DatasetSpec", "DATASETS", "get_spec", "ROLES", "local_files_advice", "identify"]

#: The four files of every MNIST-family dataset, in the order they are returned.
ROLES = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True)
class FileSpec:
    """One IDX file: its name as served (``.gz``), the served MD5, the SHA-256
    and byte size of the decompressed payload, and the array shape."""

    filename: str
    md5: str
    sha256: str | None
    shape: tuple

    @property
    def payload_bytes(self):
        """Size of the uncompressed IDX file: header (4 + 4 per dimension) plus uint8 data."""
        n = 1
        for s in self.shape:
            n *= s
        return 4 + 4 * len(self.shape) + n

    @property
    def stem(self):
        """The file name without ``.gz`` (how an uncompressed copy is named)."""
        return self.filename[:-3] if self.filename.endswith(".gz") else self.filename

    def check(self, source, name=None):
        """Verify a file (a path, or its bytes; gzip or not) against this spec
        and read it, with memory bounded by the array (see :mod:`.idx`).

        Returns ``(array, how)``, ``how`` saying which checksum matched; raises
        :class:`ChecksumError` saying what is wrong and, when the file is
        another registered file (another dataset's, or another role's), which.
        """
        name = (source if not isinstance(source, (bytes, bytearray, memoryview)) else "<bytes>") \
            if name is None else name
        md5 = _md5(source)
        published = md5 == self.md5
        try:
            arr, sha = _decode(source, name, max_bytes=max(self.payload_bytes, _largest_payload()),
                               sha256=not published)
        except IDXFormatError as e:
            why = str(e)[len(f"{name}: "):] if str(e).startswith(f"{name}: ") else str(e)
            raise ChecksumError(f"{name}: neither checksum matches and the data is not a valid "
                                f"IDX file ({why})") from None
        if published:
            how = "md5 of the .gz as published"
        elif self.sha256 is not None and sha == self.sha256:
            how = "sha256 of the decompressed payload"
        else:
            size = 4 + 4 * arr.ndim + arr.nbytes
            if size != self.payload_bytes:
                why = f"the decompressed data has {size:,} bytes, expected {self.payload_bytes:,}"
            elif self.sha256 is None:
                why = (f"its MD5 is not the published {self.md5} and no payload checksum is known for "
                       f"this dataset to verify a recompressed copy")
            else:
                why = (f"checksum mismatch: the decompressed payload has SHA-256 {sha}, expected "
                       f"{self.sha256} (and the file's MD5 is not {self.md5})")
            matches = identify(md5, sha)
            err = ChecksumError(f"{name}: {why}{self._which(matches)}")
            err.matches = tuple(matches)
            raise err
        if arr.shape != tuple(self.shape):
            raise ChecksumError(f"{name}: shape {arr.shape}, expected {tuple(self.shape)}")
        return arr, how

    def _which(self, matches):
        """"; it is ..." naming the registered file(s) that the rejected data is, or ""."""
        mine = {(d, r) for d, spec in DATASETS.items() for r, fs in spec.files.items() if fs is self}
        others = [m for m in matches if (m[0], m[1]) not in mine]
        if not others:
            return ""
        dataset, role, filename = others[0]
        words = role.replace("_", " ")
        if any(d == dataset for d, _ in mine):
            return f"; it is {dataset}'s {words} file ({filename}): the files are misnamed or swapped"
        return (f"; it is the genuine {words} file of the dataset {dataset!r} ({filename}), not of this "
                f"dataset: did you mean {dataset!r}?")

    def verify(self, data, name):
        """Check ``data`` (a file's bytes, gzip or not) against this spec.

        Returns ``(payload, how)`` with the uncompressed IDX bytes and which
        checksum matched, or raises :class:`ChecksumError` saying what is wrong.
        (:meth:`check` returns the array instead, without this extra copy.)
        """
        arr, how = self.check(data, name)
        header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
        return header + arr.astype(">u1", copy=False).tobytes(), how

    def load(self, data, name):
        """Verify ``data`` (a file's bytes, or a path) and parse it; returns ``(array, how)``."""
        return self.check(data, name)


def _md5(source):
    """The MD5 of a file (a path, read in pieces) or of bytes."""
    h = hashlib.md5(usedforsecurity=False)
    if isinstance(source, (bytes, bytearray, memoryview)):
        h.update(source)
        return h.hexdigest()
    with open(source, "rb") as f:
        while True:
            piece = f.read(1 << 20)
            if not piece:
                return h.hexdigest()
            h.update(piece)


def _largest_payload():
    return max(fs.payload_bytes for spec in DATASETS.values() for fs in spec.files.values())


def identify(md5=None, sha256=None):
    """The registered files whose published ``.gz`` MD5 is ``md5`` or whose
    payload SHA-256 is ``sha256``: a list of (dataset, role, filename)."""
    return [(d, role, fs.filename) for d, spec in DATASETS.items() for role, fs in spec.files.items()
            if (md5 is not None and fs.md5 == md5) or (sha256 is not None and fs.sha256 == sha256)]


class ChecksumError(ValueError):
    """A file's contents are not the published data set file.

    ``matches``: the registered files that the contents are instead, as
    (dataset, role, filename) tuples (empty when none, or not computed)."""

    matches = ()


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    files: dict                    # role -> FileSpec
    mirrors: tuple                 # base URLs, tried in order
    classes: tuple
    homepage: str
    system_note: str = ""          # how to get it from the OS, if any
    extra: dict = field(default_factory=dict)


def _mnist_family(md5s, sha256s, n_train=60000, n_test=10000):
    shapes = ((n_train, 28, 28), (n_train,), (n_test, 28, 28), (n_test,))
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    return {role: FileSpec(fn, md5, sha, shape)
            for role, fn, md5, sha, shape in zip(ROLES, names, md5s, sha256s, shapes)}


DATASETS = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST handwritten digits (LeCun, Cortes, Burges)",
        files=_mnist_family(
            ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
             "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
            ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
             "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
             "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
             "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2")),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "http://yann.lecun.com/exdb/mnist/"),
        classes=tuple(str(i) for i in range(10)),
        homepage="http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST (Zalando Research)",
        files=_mnist_family(
            ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
             "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
            ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
             "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
             "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
             "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34")),
        mirrors=("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
                 "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        system_note="Debian/Ubuntu: apt-get install dataset-fashion-mnist "
                    "(installs /usr/share/datasets/fashion-mnist/)",
    ),
    "kmnist": DatasetSpec(
        name="kmnist",
        title="Kuzushiji-MNIST (ROIS-DS Center for Open Data in the Humanities)",
        files=_mnist_family(
            ("bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
             "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134"),
            (None, None, None, None)),
        mirrors=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
                 "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),
        classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        homepage="https://github.com/rois-codh/kmnist",
    ),
}


def get_spec(name):
    """The :class:`DatasetSpec` called ``name`` (case-insensitive; "fashion_mnist" works too)."""
    key = str(name).lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key]


def local_files_advice(name, root=None, cli=False):
    """One line on how to use files already on disk instead of downloading,
    in the words of the interface in use: Python arguments, or (``cli``)
    the options of the ``nnumpy`` commands."""
    folder = get_spec(name).name
    if root is not None:
        where = "Put the four files in that folder"
    else:
        where = f"Have the files already? Pass {'--data-root DIR' if cli else 'root=DIR'} (the folder holding them)"
    return (f"{where}, or set NNUMPY_DATA=DIR with them in DIR/{folder}/"
            + (" (download=False or NNUMPY_OFFLINE=1: never download)." if not cli else "."))
