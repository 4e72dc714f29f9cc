"""``save`` and ``load``: a model's weights and architecture in one ``.npz``.

The file holds every state-dict entry under its own name ("0.weight", ...)
and, under ``__nnumpy__``, a JSON string with the format version, the dtype
and the architecture.  It is read with ``allow_pickle=False``: loading a
model file never executes code.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from . import nn
from ._fileio import atomic_write
from .nn.module import StateDictError

__all__ = ["save", "load", "ModelFileError", "describe", "build"]

FORMAT = "nnumpy-model"
VERSION = 1
_META_KEY = "__nnumpy__"
_CLASSES = {name: getattr(nn, name) for name in
            ("Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Flatten", "Dropout",
             "Sequential", "MLP")}


class ModelFileError(ValueError):
    """A model file is missing, unreadable, corrupt, or does not match its architecture."""


def describe(module):
    """The JSON-able architecture of a model built from nnumpy's modules."""
    name = type(module).__name__
    if _CLASSES.get(name) is not type(module):
        raise TypeError(f"save() can rebuild nnumpy's built-in modules only, not {name}; "
                        f"for a custom module save its state_dict() with np.savez and use load_state_dict()")
    desc = {"type": name, "config": module.get_config()}
    if name == "Sequential":
        desc["children"] = [describe(m) for m in module.children()]
    return desc


def build(desc, dtype=None):
    """Rebuild a module (with fresh weights) from :func:`describe`'s output."""
    name = desc["type"]
    cls = _CLASSES.get(name)
    if cls is None:
        raise ValueError(f"unknown module type {name!r}")
    config = dict(desc.get("config", {}))
    if name == "Sequential":
        return nn.Sequential(*(build(c, dtype) for c in desc.get("children", [])))
    if name in ("Linear", "MLP"):
        config["dtype"] = dtype
        config["rng"] = 0               # the weights are about to be overwritten
    return cls(**config)


def save(model, path):
    """Write ``model`` (weights and architecture) to ``path`` (an .npz file).

    The file is written to a temporary name in the same folder and renamed
    into place, so an interrupted save never leaves a partial file.
    """
    meta = {"format": FORMAT, "version": VERSION,
            "dtype": np.dtype(model.dtype or np.float32).name, "architecture": describe(model)}
    arrays = model.state_dict()
    arrays[_META_KEY] = np.array(json.dumps(meta))
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


def load(path):
    """Read a model written by :func:`save`.

    Raises :class:`ModelFileError` naming the file and the problem when it
    is missing, not an nnumpy model file, corrupt, of an unknown format
    version, or when an entry is missing, unexpected or mis-shaped.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: no such model file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
        raise ModelFileError(f"{path}: not a readable .npz model file ({type(e).__name__}: {e})") from None
    if _META_KEY not in arrays:
        raise ModelFileError(f"{path}: no '{_META_KEY}' entry; this .npz was not written by nnumpy.save")
    try:
        meta = json.loads(str(arrays.pop(_META_KEY)))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
        if meta.get("version") != VERSION:
            raise ValueError(f"format version {meta.get('version')} is not supported (this nnumpy "
                             f"reads version {VERSION})")
        model = build(meta["architecture"], np.dtype(meta["dtype"]))
    except (ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"{path}: invalid model description: {e}") from None
    wrong = [f"{k} is {a.dtype}" for k, a in arrays.items() if a.dtype != model.dtype]
    if wrong:
        raise ModelFileError(f"{path}: the model is {model.dtype} but " + ", ".join(wrong))
    try:
        model.load_state_dict(arrays, strict=True)
    except StateDictError as e:
        raise ModelFileError(f"{path}: {e}") from None
    return model
