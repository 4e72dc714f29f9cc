"""Data: the IDX format, splits and mini-batches."""
from .idx import IDXFormatError, read_idx, write_idx
from .splits import iterate_minibatches, num_batches, train_val_split

__all__ = ["read_idx", "write_idx", "IDXFormatError", "train_val_split", "iterate_minibatches",
           "num_batches"]
