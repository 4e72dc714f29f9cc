"""What nnumpy knows about each dataset: files, mirrors and checksums.

Two checksums per file, because mirrors and distributions (Debian, for one)
recompress the files: the MD5 of the ``.gz`` exactly as the original
servers publish it, and the SHA-256 of the decompressed IDX payload, which
does not depend on how the file was compressed.  A local or downloaded file
is accepted when either matches.  Payload SHA-256 values for MNIST and
Fashion-MNIST were computed from verified copies of the original files;
for KMNIST only the published ``.gz`` MD5 is known, so a recompressed KMNIST
file cannot be verified and is rejected.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from .idx import IDXFormatError, decompress_idx, parse_idx

__all__ = ["FileSpec", "DatasetSpec", "DATASETS", "get_spec", "ROLES", "local_files_advice"]

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

    def verify(self, data, name):
        """Check ``data`` (a file's bytes, gzip or not) against this spec.

        Returns ``(payload, how)`` with the uncompressed IDX bytes and which
        checksum matched, or raises :class:`ChecksumError` saying what is wrong.
        """
        if hashlib.md5(data, usedforsecurity=False).hexdigest() == self.md5:
            return decompress_idx(data, name), "md5 of the .gz as published"
        try:
            payload = decompress_idx(data, name, max_bytes=self.payload_bytes)
        except IDXFormatError as e:
            raise ChecksumError(f"{name}: neither checksum matches and the data is not a valid "
                                f"IDX file ({e})") from None
        if len(payload) != self.payload_bytes:
            raise ChecksumError(f"{name}: the decompressed data has {len(payload):,} bytes, "
                                f"expected {self.payload_bytes:,}")
        if self.sha256 is None:
            raise ChecksumError(f"{name}: its MD5 is not the published {self.md5} and no payload "
                                f"checksum is known for this dataset to verify a recompressed copy")
        digest = hashlib.sha256(payload).hexdigest()
        if digest != self.sha256:
            raise ChecksumError(f"{name}: checksum mismatch: the decompressed payload has SHA-256 "
                                f"{digest}, expected {self.sha256} (and the file's MD5 is not {self.md5})")
        return payload, "sha256 of the decompressed payload"

    def load(self, data, name):
        """Verify ``data`` and parse it; returns ``(array, how)``."""
        payload, how = self.verify(data, name)
        arr = parse_idx(payload, name)
        if arr.shape != tuple(self.shape):
            raise ChecksumError(f"{name}: shape {arr.shape}, expected {tuple(self.shape)}")
        return arr, how


class ChecksumError(ValueError):
    """A file's contents are not the published data set file."""


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
