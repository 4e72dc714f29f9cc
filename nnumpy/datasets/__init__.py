"""Data: splits and mini-batches (dataset readers and downloads live here too)."""
from .splits import iterate_minibatches, num_batches, train_val_split

__all__ = ["train_val_split", "iterate_minibatches", "num_batches"]
