"""Data: the IDX format, the MNIST-family registry, verified downloads, splits and mini-batches.

The top-level ``datasets/`` folder of a checkout holds downloaded data; the
code that reads it lives here.
"""
from .download import DownloadError, download
from .idx import IDXFormatError, decompress_idx, parse_idx, read_idx, write_idx
from .loaders import (DatasetNotFoundError, DatasetWarning, data_home, download_dir, fetch,
                      load_dataset, load_fashion_mnist, load_kmnist, load_mnist, search_dirs)
from .registry import DATASETS, ChecksumError, get_spec
from .splits import iterate_minibatches, num_batches, train_val_split

__all__ = [
    "read_idx", "write_idx", "parse_idx", "decompress_idx", "IDXFormatError",
    "DATASETS", "get_spec", "ChecksumError",
    "load_dataset", "load_mnist", "load_fashion_mnist", "load_kmnist", "fetch",
    "data_home", "download_dir", "search_dirs", "DatasetNotFoundError", "DatasetWarning",
    "download", "DownloadError",
    "train_val_split", "iterate_minibatches", "num_batches",
]
