"""``save`` and ``load``: a model's weights and architecture in one ``.npz``.

The file holds every state-dict entry under its own name ("0.weight", ...)
and, under ``__nnumpy__``, a JSON string with the format version, the dtype
and the architecture.  Loading never executes code: no pickles (an object
array is refused, never unpickled).

Loading checks everything it can before it allocates anything: the zip
directory (members, sizes, compression: a member cannot declare more than
the file holds), the metadata (its JSON types, the module types and their
configuration), and the ``.npy`` header of every array (shape, dtype,
size) against the parameters the declared architecture has.  Only a file
that passes is built into a model, and each array is then read straight
into its parameter, in pieces: loading takes the memory of the model itself
(its weights and their gradients) and a few MiB more, never a copy of the
file's arrays.  A file whose metadata declares a 784-300000-10 network next
to the arrays of a 784-100-10 one is refused at once, naming the mismatch.

Every defect of a file given to :func:`load` raises :class:`ModelFileError`
naming the file and the defect.  NaN or infinite weights are not a defect of
the file: they are loaded as they are (check ``np.isfinite`` yourself if it
matters; training stops on a NaN loss anyway).

:func:`save` writes atomically (see :mod:`nnumpy._fileio`): an interrupted
or failed save (Ctrl-C, a full disk) leaves the existing file as it was and
no temporary file behind.  Through a symbolic link it replaces the file the
link points to and keeps the link.  Problems with the destination are
``OSError`` subclasses naming the path (``FileNotFoundError``: the folder
does not exist; ``IsADirectoryError``: the path is a folder;
``PermissionError``: the folder is not writable, or the existing file is
read-only, which ``save`` takes as "do not overwrite"; ``OSError`` with
``errno.ENOSPC``: the disk is full).
"""
from __future__ import annotations

import inspect
import json
import math
import os
import stat
import struct
import zipfile
import zlib
from collections import OrderedDict

import numpy as np
import numpy.lib.format as npy_format

from . import nn
from ._fileio import atomic_write, check_replaceable

__all__ = ["save", "load", "ModelFileError", "describe", "build", "register_module"]

FORMAT = "nnumpy-model"
VERSION = 1
_META_KEY = "__nnumpy__"
_CLASSES = {name: getattr(nn, name) for name in
            ("Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Flatten", "Dropout",
             "Sequential", "MLP", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
             "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "Dropout2d",
             "GELU", "ELU", "SiLU", "Softplus", "Hardtanh", "Softmax", "LogSoftmax")}
#: Modules with weights or buffers that are rebuilt with init=False (no random draw, nothing touched).
_INIT_FALSE = ("Linear", "MLP", "Conv2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm")
_FLOATS = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
_MAX_META_BYTES = 1 << 22        # the JSON of even a very large architecture is far smaller
_MAX_DEPTH = 64                  # nesting of Sequential in a description
_MAX_RATIO = 1032                # deflate never expands more than 1032:1
_CHUNK = 1 << 20                 # read arrays 1 MiB at a time (zipfile holds a few copies of a piece)
#: What zipfile and numpy raise on a malformed archive or .npy header.
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, IndexError, NotImplementedError,
               RuntimeError, struct.error, zlib.error, SyntaxError, TypeError)


class ModelFileError(ValueError):
    """A model file is missing, unreadable, corrupt, or does not match its architecture."""


class NotDescribable(TypeError):
    """A module whose class :func:`save` cannot rebuild (a custom class that is not registered)."""


class _Invalid(ValueError):
    """A model description (JSON) that is not valid; the message says where and why."""


#: Custom module classes that save/load (and checkpoints) may rebuild: name -> class.
_REGISTERED = {}


def register_module(cls=None, *, name=None):
    """Let :func:`save`, :func:`load` and checkpoints rebuild a custom module class.

    Use it as a decorator (``@nnumpy.register_module``) or call it
    (``nnumpy.register_module(MyBlock)``).  The class must be a
    :class:`~nnumpy.nn.Module` whose ``get_config()`` returns the
    constructor's keyword arguments as a JSON-able dict, so that
    ``cls(**module.get_config())`` builds the same architecture (with fresh
    weights, which loading then overwrites); its parameters, buffers and
    sub-modules are whatever that constructor makes.  The file records the
    class under ``name`` (default: the class's name), which must not be
    one of nnumpy's own module names; register the class again (same name)
    in the process that loads the file.  Registering a class defined again
    (the same module and qualified name: a notebook cell run twice) replaces
    the earlier definition.  Loading a file that names a class
    nobody registered is a ModelFileError saying so.  Registering runs no
    code from the file: it only names a class your program already trusts.
    Returns the class.
    """
    def register(c):
        if not (isinstance(c, type) and issubclass(c, nn.Module)):
            raise TypeError(f"register_module expects a subclass of nnumpy.nn.Module, got {c!r}")
        args = [n for n, q in inspect.signature(c.__init__).parameters.items()
                if n != "self" and q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD)]
        if args and c.get_config is nn.Module.get_config:
            raise ValueError(f"register_module: {c.__qualname__}({', '.join(args)}) takes constructor arguments but "
                             f"does not override get_config(), so a saved model would come back with the "
                             f"defaults: define get_config() returning {{{', '.join(repr(a) + ': ...' for a in args)}}}")
        key = c.__name__ if name is None else name
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"register_module: name must be an identifier, got {key!r}")
        if key in _CLASSES or key in _SCHEMA:
            raise ValueError(f"register_module: {key!r} is the name of one of nnumpy's own modules; pass "
                             f"name='...' to register {c.__qualname__} under another name")
        old = _REGISTERED.get(key, c)
        if (old is not c and (old.__module__, old.__qualname__) == (c.__module__, c.__qualname__)
                and "<locals>" not in c.__qualname__):   # (classes made by a function share a qualname)
            _REGISTERED[key] = c            # the same class defined again (a notebook cell run twice): the new one
            return c
        if old is not c:
            raise ValueError(f"register_module: the name {key!r} is taken by {old.__module__}.{old.__qualname__}; "
                             f"pass name='...' to register {c.__module__}.{c.__qualname__} under another name")
        _REGISTERED[key] = c
        return c
    return register if cls is None else register(cls)


def _registered_name(cls):
    """The name ``cls`` is registered under; a model built from a class that a
    notebook cell has since defined (and registered) again is found by the
    class's module and qualified name."""
    found = next((k for k, c in _REGISTERED.items() if c is cls), None)
    if found is None and "<locals>" not in cls.__qualname__:
        found = next((k for k, c in _REGISTERED.items()
                      if (c.__module__, c.__qualname__) == (cls.__module__, cls.__qualname__)), None)
    return found


def describe(module):
    """The JSON-able architecture of a model built from nnumpy's modules
    (and custom modules registered with :func:`register_module`)."""
    name = type(module).__name__
    if not isinstance(module, nn.Module):
        raise TypeError(f"save() takes an nnumpy Module (a model), got {name}; for a state dict use np.savez and "
                        f"load_state_dict()")
    if _CLASSES.get(name) is not type(module):
        custom = _registered_name(type(module))
        if custom is None:
            raise NotDescribable(f"save() can rebuild nnumpy's modules and registered custom modules, not {name}: "
                            f"register it with nnumpy.register_module({name}) (its get_config() must return "
                            f"its constructor's arguments), or save its state_dict() with np.savez and use "
                            f"load_state_dict()")
        raw = module.get_config()
        if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
            raise TypeError(f"save(): {name}.get_config() must return a dict with string keys (its constructor's "
                            f"keyword arguments), got {raw!r:.80}")
        try:
            config = json.loads(json.dumps(raw, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise TypeError(f"save(): {name}.get_config() must return a JSON-able dict of its constructor's "
                            f"arguments ({e})") from None
        return {"type": custom, "config": config}
    tied = _tied(module)
    if tied:
        raise NotDescribable(f"save() cannot record tied weights: {tied[0]} and {tied[1]} are one Parameter, and a "
                             f"model rebuilt from the file would have two; save its state_dict() with np.savez and, "
                             f"after building and tying the model again, use load_state_dict()")
    desc = {"type": name, "config": module.get_config()}
    if name == "MLP" and not _as_built(module, desc):
        # changed through the container API after it was built (append, add_module): the file describes
        # the Sequential it now is, layer by layer, not the MLP its arguments would build
        desc = {"type": "Sequential", "config": nn.Sequential.get_config(module)}
    if desc["type"] == "Sequential":
        desc["children"] = [describe(m) for m in module.children()]
    return desc


def _tied(module):
    """The first two state names of one shared Parameter, or None."""
    first = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        if id(p) in first:
            return first[id(p)], name
        first[id(p)] = name
    return None


def _as_built(mlp, desc):
    """Does ``mlp`` still have the layers its configuration builds?"""
    ref = _build(desc, None)                   # (init=False: no random numbers drawn)
    mine, theirs = list(mlp.children()), list(ref.children())
    if [type(m) for m in mine] != [type(r) for r in theirs]:
        return False
    if [(k, a.shape) for k, _, _, a in mlp._state_items()] != [(k, a.shape) for k, _, _, a in ref._state_items()]:
        return False
    return all(m.get_config() == r.get_config() for m, r in zip(mine, theirs) if not m._parameters)


# -- checking a description (the JSON) ---------------------------------------------------

def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _want_int(v, where, low=None):
    if not _is_int(v) or (low is not None and v < low):
        what = "an integer" if low is None else ("a positive integer" if low == 1 else f"an integer >= {low}")
        raise _Invalid(f"{where} must be {what}, got {v!r}")
    return v


def _want_bool(v, where):
    if not isinstance(v, bool):
        raise _Invalid(f"{where} must be true or false, got {v!r}")
    return v


def _want_real(v, where, low=None, high=None):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if ok and ((low is not None and v < low) or (high is not None and v > high)):
        ok = False
    if not ok:
        rng = f" in [{low:g}, {high:g}]" if low is not None and high is not None else ""
        raise _Invalid(f"{where} must be a finite number{rng}, got {v!r}")
    return float(v)


def _want_sizes(v, where):
    if not isinstance(v, list) or len(v) < 2:
        raise _Invalid(f"{where} must be a list of at least two layer sizes, got {v!r}")
    return [_want_int(s, f"{where}[{i}]", 1) for i, s in enumerate(v)]


def _want_activations(v, where):
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list):
        raise _Invalid(f"{where} must be an activation name or a list of them, got {v!r}")
    for i, a in enumerate(v):
        if a not in nn.ACTIVATIONS:
            raise _Invalid(f"{where}[{i}] must be one of {sorted(nn.ACTIVATIONS)}, got {a!r}")
    return v


def _want_pair(low, allow_none=False, words=()):
    """A checker for an int >= low, a list of two such ints (a (h, w) pair),
    one of ``words`` (padding="same"), or None when ``allow_none``."""
    def check(v, where):
        if v is None and allow_none:
            return None
        if isinstance(v, str) and v in words:
            return v
        if _is_int(v) and v >= low:
            return v
        if isinstance(v, list) and len(v) == 2 and all(_is_int(e) and e >= low for e in v):
            return tuple(v)
        alts = "".join(f" or {w!r}" for w in words) + (" or null" if allow_none else "")
        raise _Invalid(f"{where} must be an integer >= {low} or a list of two{alts}, got {v!r:.80}")
    return check


def _want_output_size(v, where):
    if _is_int(v) and v >= 1:
        return v
    if isinstance(v, list) and len(v) == 2 and all(e is None or (_is_int(e) and e >= 1) for e in v):
        return tuple(v)
    raise _Invalid(f"{where} must be a positive integer or a list of two (positive integers or null), "
                   f"got {v!r:.80}")


def _want_shape(v, where):
    if _is_int(v) and v >= 1:
        return v
    if isinstance(v, list) and v and all(_is_int(e) and e >= 1 for e in v):
        return list(v)
    raise _Invalid(f"{where} must be a positive integer or a list of them, got {v!r:.80}")


def _want_eps(v, where):
    v = _want_real(v, where)
    if v < 0:
        raise _Invalid(f"{where} must be >= 0, got {v!r}")
    return v


def _want_momentum(v, where):
    return None if v is None else _want_real(v, where, 0.0, 1.0)


def _want_divisor(v, where):
    if v is not None and (not _is_int(v) or v == 0):
        raise _Invalid(f"{where} must be a non-zero integer or null, got {v!r:.80}")
    return v


def _want_padding_mode(v, where):
    if v != "zeros":
        raise _Invalid(f"{where} must be 'zeros', got {v!r:.80}")
    return v


def _want_gelu_approximate(v, where):
    if v not in ("none", "tanh"):
        raise _Invalid(f"{where} must be 'none' or 'tanh', got {v!r:.80}")
    return v


def _want_positive_real(v, where):
    v = _want_real(v, where)
    if not v > 0:
        raise _Invalid(f"{where} must be > 0, got {v!r}")
    return v


def _want_dim(v, where):
    return None if v is None else _want_int(v, where)


_BATCHNORM = {"num_features": (True, lambda v, w: _want_int(v, w, 1)), "eps": (False, _want_eps),
              "momentum": (False, _want_momentum), "affine": (False, _want_bool),
              "track_running_stats": (False, _want_bool), "bias": (False, _want_bool)}

#: type -> {config key: (required, checker)}; the checker returns the value to build with.
_SCHEMA = {
    "Linear": {"in_features": (True, lambda v, w: _want_int(v, w, 1)),
               "out_features": (True, lambda v, w: _want_int(v, w, 1)),
               "bias": (False, _want_bool)},
    "ReLU": {}, "Sigmoid": {}, "Tanh": {}, "Identity": {},
    "LeakyReLU": {"negative_slope": (False, _want_real)},
    "GELU": {"approximate": (False, _want_gelu_approximate)}, "SiLU": {},
    "ELU": {"alpha": (False, _want_real)},
    "Softplus": {"beta": (False, _want_positive_real), "threshold": (False, _want_real)},
    "Hardtanh": {"min_val": (False, _want_real), "max_val": (False, _want_real)},
    "Softmax": {"dim": (False, _want_dim)}, "LogSoftmax": {"dim": (False, _want_dim)},
    "Flatten": {"start_dim": (False, _want_int), "end_dim": (False, _want_int)},
    "Dropout": {"p": (False, lambda v, w: _want_real(v, w, 0.0, 1.0))},
    "Sequential": {"input_grad": (False, _want_bool)},
    "MLP": {"sizes": (True, _want_sizes), "activation": (False, _want_activations),
            "dropout": (False, lambda v, w: _want_real(v, w, 0.0, 1.0)),
            "bias": (False, _want_bool), "input_grad": (False, _want_bool)},
    "Conv2d": {"in_channels": (True, lambda v, w: _want_int(v, w, 1)),
               "out_channels": (True, lambda v, w: _want_int(v, w, 1)),
               "kernel_size": (True, _want_pair(1)), "stride": (False, _want_pair(1)),
               "padding": (False, _want_pair(0, words=("same", "valid"))), "dilation": (False, _want_pair(1)),
               "groups": (False, lambda v, w: _want_int(v, w, 1)), "bias": (False, _want_bool),
               "padding_mode": (False, _want_padding_mode)},
    "MaxPool2d": {"kernel_size": (True, _want_pair(1)), "stride": (False, _want_pair(1, allow_none=True)),
                  "padding": (False, _want_pair(0)), "dilation": (False, _want_pair(1)),
                  "return_indices": (False, _want_bool), "ceil_mode": (False, _want_bool)},
    "AvgPool2d": {"kernel_size": (True, _want_pair(1)), "stride": (False, _want_pair(1, allow_none=True)),
                  "padding": (False, _want_pair(0)), "ceil_mode": (False, _want_bool),
                  "count_include_pad": (False, _want_bool), "divisor_override": (False, _want_divisor)},
    "AdaptiveAvgPool2d": {"output_size": (True, _want_output_size)},
    "BatchNorm1d": _BATCHNORM, "BatchNorm2d": _BATCHNORM,
    "LayerNorm": {"normalized_shape": (True, _want_shape), "eps": (False, _want_eps),
                  "elementwise_affine": (False, _want_bool), "bias": (False, _want_bool)},
    "GroupNorm": {"num_groups": (True, lambda v, w: _want_int(v, w, 1)),
                  "num_channels": (True, lambda v, w: _want_int(v, w, 1)), "eps": (False, _want_eps),
                  "affine": (False, _want_bool), "bias": (False, _want_bool)},
    "Dropout2d": {"p": (False, lambda v, w: _want_real(v, w, 0.0, 1.0))},
}


def _check_desc(desc, where="architecture", depth=0):
    """A checked copy of a module description, or :class:`_Invalid` saying what is wrong."""
    if depth > _MAX_DEPTH:
        raise _Invalid(f"{where}: modules nested more than {_MAX_DEPTH} deep")
    if not isinstance(desc, dict):
        raise _Invalid(f"{where} must be an object with a 'type', got {desc!r:.80}")
    unknown = sorted(set(desc) - {"type", "config", "children"})
    if unknown:
        raise _Invalid(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    kind = desc.get("type")
    if isinstance(kind, str) and kind in _REGISTERED and kind not in _SCHEMA:
        config = desc.get("config", {})
        if not isinstance(config, dict):
            raise _Invalid(f"{where}.config ({kind}) must be an object, got {config!r:.80}")
        if "children" in desc:
            raise _Invalid(f"{where}: a {kind} has no 'children' (it builds its own sub-modules)")
        return {"type": kind, "config": json.loads(json.dumps(config))}
    if not isinstance(kind, str) or kind not in _SCHEMA:
        hint = (f" ({kind!r} is not one of nnumpy's modules: if it is a custom module, register its class with "
                f"nnumpy.register_module before loading)" if isinstance(kind, str) and kind.isidentifier() else "")
        raise _Invalid(f"{where}.type must be one of {sorted(_SCHEMA)}, got {kind!r:.80}{hint}")
    config = desc.get("config", {})
    if not isinstance(config, dict):
        raise _Invalid(f"{where}.config ({kind}) must be an object, got {config!r:.80}")
    schema = _SCHEMA[kind]
    unknown = sorted(set(config) - set(schema))
    if unknown:
        raise _Invalid(f"{where}.config: unknown key(s) for {kind}: {', '.join(map(repr, unknown))}"
                       + (f" (known: {', '.join(schema)})" if schema else " (it takes none)"))
    out = {}
    for key, (required, check) in schema.items():
        if key in config:
            out[key] = check(config[key], f"{where}.config.{key}")
        elif required:
            raise _Invalid(f"{where}.config: {kind} needs {key!r}")
    if kind == "MLP":
        n_hidden = len(out["sizes"]) - 2
        raw = config.get("activation", "relu")
        acts = [raw] * n_hidden if isinstance(raw, str) else out["activation"]
        if len(acts) != n_hidden:
            raise _Invalid(f"{where}.config.activation: {len(acts)} name(s) for {n_hidden} hidden layer(s)")
        out["activation"] = acts
    checked = {"type": kind, "config": out}
    if "children" in desc:
        if kind != "Sequential":
            raise _Invalid(f"{where}: a {kind} has no 'children'")
        children = desc["children"]
        if not isinstance(children, list):
            raise _Invalid(f"{where}.children must be a list, got {children!r:.80}")
        checked["children"] = [_check_desc(c, f"{where}.children[{i}]", depth + 1) for i, c in enumerate(children)]
    elif kind == "Sequential":
        checked["children"] = []
    return checked


def _expected_params(desc, dtype, prefix=""):
    """name -> (shape, dtype) of every state entry (parameters and buffers) the
    (checked) description's model has, in state-dict order.  Linear and MLP
    are worked out from their sizes (nothing is built: a declared size can
    be checked against the file before any memory is asked for); the other
    layers are small and are built, with init=False, to ask them."""
    kind, cfg = desc["type"], desc["config"]
    out = OrderedDict()
    if kind not in ("Linear", "MLP", "Sequential"):
        for name, _, _, a in _build(desc, dtype)._state_items(prefix):
            out[name] = (a.shape, a.dtype)
        return out
    if kind == "Linear":
        out[prefix + "weight"] = ((cfg["out_features"], cfg["in_features"]), dtype)
        if cfg.get("bias", True):
            out[prefix + "bias"] = ((cfg["out_features"],), dtype)
    elif kind == "MLP":
        sizes, index = cfg["sizes"], 0
        for i in range(len(sizes) - 1):
            out[f"{prefix}{index}.weight"] = ((sizes[i + 1], sizes[i]), dtype)
            if cfg.get("bias", True):
                out[f"{prefix}{index}.bias"] = ((sizes[i + 1],), dtype)
            index += 1
            if i < len(sizes) - 2:
                index += 1 + (cfg.get("dropout", 0.0) > 0)       # the activation, and Dropout if any
    elif kind == "Sequential":
        for i, child in enumerate(desc["children"]):
            out.update(_expected_params(child, dtype, f"{prefix}{i}."))
    return out


def _build(desc, dtype):
    kind, config = desc["type"], dict(desc["config"])
    if kind == "Sequential":
        return nn.Sequential(*(_build(c, dtype) for c in desc["children"]), **config)
    if kind in _INIT_FALSE:
        config["dtype"] = dtype
        config["init"] = False          # the weights are about to be overwritten: no random draw
    if kind in _REGISTERED and kind not in _CLASSES:
        try:
            module = _REGISTERED[kind](**config)
            return module.to(dtype) if dtype is not None and module.dtype not in (None, dtype) else module
        except (TypeError, ValueError) as e:
            raise ValueError(f"the registered module {kind} could not be rebuilt from its config {config!r:.200} "
                             f"({type(e).__name__}: {e})") from None
    return _CLASSES[kind](**config)


def build(desc, dtype=None):
    """Rebuild a module (with fresh weights) from :func:`describe`'s output.

    The description is checked first (module types, configuration keys and
    value types): a malformed one raises ``ValueError`` saying where."""
    try:
        checked = _check_desc(desc)
    except _Invalid as e:
        raise ValueError(f"invalid model description: {e}") from None
    return _build(checked, dtype)


# -- save ----------------------------------------------------------------------------------

def save(model, path):
    """Write ``model`` (weights and architecture) to ``path`` (an .npz file).

    The file is written to a temporary name in the same folder and renamed
    into place, so an interrupted or failed save never leaves a partial file
    and never damages the existing one.  A symbolic link is written through:
    ``save(model, "latest.npz")`` with ``latest.npz -> runs/a/model.npz``
    replaces ``runs/a/model.npz`` and keeps the link.  Errors about the
    destination are ``OSError`` subclasses naming the path (see the module
    docstring); a model that is not made of nnumpy's modules is a TypeError.
    """
    architecture = describe(model)                  # TypeError for what cannot be rebuilt, before any I/O
    meta = {"format": FORMAT, "version": VERSION,
            "dtype": np.dtype(model.dtype or np.float32).name, "architecture": architecture}
    arrays = OrderedDict((k, a) for k, _, _, a in model._state_items())     # parameters and buffers, no copies
    arrays[_META_KEY] = np.array(json.dumps(meta))
    shown = os.fspath(path)
    check_replaceable(shown, "save the model")
    try:
        with atomic_write(shown) as f:
            np.savez(f, **arrays)
    except OSError as e:
        if e.errno is None or e.filename is not None:
            raise
        raise type(e)(e.errno, f"cannot save the model: {e.strerror or e}; the existing file, if any, "
                      f"was left as it was", shown) from e
    return path


# -- load ----------------------------------------------------------------------------------

def _open_model_file(path):
    """Open ``path`` for reading, or raise ModelFileError saying why not."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ModelFileError(f"{path}: a symbolic link to {os.readlink(path)}, which does not exist") from None
        raise ModelFileError(f"{path}: no such model file") from None
    except NotADirectoryError:
        raise ModelFileError(f"{path}: no such model file (a part of the path is a file, not a folder)") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot be read ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelFileError(f"{path}: is a folder, not a model file")
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(f"{path}: not a regular file (a device, pipe or socket), not a model file")
    if st.st_size == 0:
        raise ModelFileError(f"{path}: the file is empty (0 bytes), not a model file (an interrupted copy?)")
    try:
        return open(path, "rb"), st.st_size
    except OSError as e:
        raise ModelFileError(f"{path}: cannot be read ({e.strerror or e})") from None


def _members(zf, path, size):
    """key -> ZipInfo for the archive's ``.npy`` members, after checking the
    zip directory: no stray or duplicate members, no unknown compression,
    and no member claiming more bytes than the file holds."""
    out, spans = {}, []
    for info in zf.infolist():
        n = info.filename
        if info.is_dir() or not n.endswith(".npy"):
            raise ModelFileError(f"{path}: unexpected member {n!r} in the archive (a model file holds "
                                 f"only .npy arrays)")
        key = n[:-4]
        if key in out:
            raise ModelFileError(f"{path}: the archive holds {n!r} twice")
        if info.flag_bits & 0x1:
            raise ModelFileError(f"{path}: member {n!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(f"{path}: member {n!r} uses zip compression method {info.compress_type}; "
                                 f"model files are stored or deflated")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise ModelFileError(f"{path}: member {n!r} is stored ({info.compress_size:,} bytes) but "
                                 f"declares {info.file_size:,} bytes")
        if info.file_size > _MAX_RATIO * info.compress_size + 1024:
            raise ModelFileError(f"{path}: member {n!r} declares {info.file_size:,} bytes, more than its "
                                 f"{info.compress_size:,} compressed bytes can hold")
        start = info.header_offset
        end = start + 30 + len(n.encode("utf-8")) + info.compress_size
        if end > size:
            raise ModelFileError(f"{path}: truncated: member {n!r} extends past the end of the file "
                                 f"({size:,} bytes)")
        spans.append((start, end, n))
        out[key] = info
    spans.sort()
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        if start < end:
            raise ModelFileError(f"{path}: members {a!r} and {b!r} overlap in the file (a zip bomb?)")
    return out


def _npy_header(zf, info, path):
    """(dtype, shape, fortran_order, data offset) of a member, from its .npy header only."""
    key = info.filename[:-4]
    try:
        with zf.open(info) as fp:
            version = npy_format.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = npy_format.read_array_header_1_0(fp)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = npy_format.read_array_header_2_0(fp)
            else:
                raise ValueError(f".npy format version {version} is not supported")
            offset = fp.tell()
    except _ZIP_ERRORS as e:
        raise ModelFileError(f"{path}: entry {key!r} has no valid .npy header ({e})") from None
    if dtype.hasobject:
        raise ModelFileError(f"{path}: entry {key!r} holds Python objects (a pickle); nnumpy model files "
                             f"never do, and loading one could run code: refused")
    if any(not isinstance(s, int) or s < 0 for s in shape):
        raise ModelFileError(f"{path}: entry {key!r}: invalid shape {shape} in its header")
    count = 1
    for s in shape:
        count *= s
    nbytes = count * dtype.itemsize
    if offset + nbytes != info.file_size:
        raise ModelFileError(f"{path}: entry {key!r}: its header declares shape {shape} of {dtype} "
                             f"({nbytes:,} bytes) but the entry holds {info.file_size - offset:,} bytes")
    return dtype, tuple(shape), bool(fortran), offset


def _read_member(zf, info, offset, nbytes, out, path):
    """Read a member's data (after its header) into the writable byte view ``out``, in pieces."""
    key = info.filename[:-4]
    try:
        with zf.open(info) as fp:
            fp.read(offset)
            pos = 0
            while pos < nbytes:
                piece = fp.read(min(_CHUNK, nbytes - pos))
                if not piece:
                    raise EOFError(f"the data ends after {pos:,} of {nbytes:,} bytes")
                if out is not None:
                    out[pos:pos + len(piece)] = piece
                pos += len(piece)
            if fp.read(1):              # also reaches the end, where the CRC is checked
                raise ValueError("more data than its header declares")
    except _ZIP_ERRORS as e:
        raise ModelFileError(f"{path}: entry {key!r} is corrupt ({type(e).__name__}: {e})") from None


def _read_meta(zf, info, path):
    dtype, shape, _, offset = _npy_header(zf, info, path)
    if dtype.kind != "U" or shape != ():
        raise ModelFileError(f"{path}: invalid model description: the '{_META_KEY}' entry is not a JSON "
                             f"string (dtype {dtype}, shape {shape})")
    if dtype.itemsize > _MAX_META_BYTES:
        raise ModelFileError(f"{path}: invalid model description: the '{_META_KEY}' entry has "
                             f"{dtype.itemsize:,} bytes, more than a description can need")
    buf = bytearray(dtype.itemsize)
    _read_member(zf, info, offset, dtype.itemsize, memoryview(buf), path)
    return str(np.frombuffer(bytes(buf), dtype=dtype)[0])


def _check_meta(text, path):
    """(dtype, checked architecture) from the metadata JSON, or ModelFileError."""
    try:
        meta = json.loads(text)
        if not isinstance(meta, dict):
            raise _Invalid(f"the metadata must be a JSON object, got {type(meta).__name__}")
        if meta.get("format") != FORMAT:
            raise _Invalid(f"format is {meta.get('format')!r:.80}, expected {FORMAT!r}")
        version = meta.get("version")
        if not _is_int(version) or version != VERSION:
            raise _Invalid(f"format version {version!r:.80} is not supported (this nnumpy reads version "
                           f"{VERSION})")
        dtype = meta.get("dtype")
        if not isinstance(dtype, str) or dtype not in _FLOATS:
            raise _Invalid(f"dtype must be 'float32' or 'float64', got {dtype!r:.80}")
        if "architecture" not in meta:
            raise _Invalid("no 'architecture'")
        return _FLOATS[dtype], _check_desc(meta["architecture"])
    except (ValueError, RecursionError) as e:      # JSONDecodeError and _Invalid are ValueErrors
        raise ModelFileError(f"{path}: invalid model description: {e}") from None


def load(path):
    """Read a model written by :func:`save`.

    Raises :class:`ModelFileError` naming the file and the defect when it is
    missing, a folder, empty, unreadable, not a zip archive (truncated or
    corrupt), holds unexpected members or pickled objects, has metadata of
    the wrong JSON types or an unknown format version, or when an array is
    missing, unexpected, mis-shaped, of the wrong dtype or corrupt.  All of
    this is checked from the zip directory and the array headers before the
    model is built (see the module docstring).  NaN weights are loaded as
    they are.
    """
    path = os.fspath(path)
    f, size = _open_model_file(path)
    with f:
        try:
            zf = zipfile.ZipFile(f)
        except _ZIP_ERRORS as e:
            raise ModelFileError(f"{path}: not a readable .npz model file: not a zip archive, or a truncated "
                                 f"or corrupt one ({type(e).__name__}: {e})") from None
        with zf:
            return _load_from_zip(zf, path, size)


def _load_from_zip(zf, path, size):
    members = _members(zf, path, size)
    if _META_KEY not in members:
        raise ModelFileError(f"{path}: no '{_META_KEY}' entry; this .npz was not written by nnumpy.save")
    dtype, arch = _check_meta(_read_meta(zf, members.pop(_META_KEY), path), path)
    headers = {k: _npy_header(zf, info, path) for k, info in members.items()}
    try:
        expected = _expected_params(arch, dtype)
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: invalid model description: {e}") from None
    except MemoryError:
        raise ModelFileError(f"{path}: the architecture it declares is too large for this machine's "
                             f"memory") from None
    problems = []
    missing = [k for k in expected if k not in headers]
    unexpected = [k for k in headers if k not in expected]
    if missing:
        problems.append("missing key(s): " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected key(s): " + ", ".join(unexpected))
    for k, (shape, _) in expected.items():
        if k in headers and headers[k][1] != shape:
            problems.append(f"{k}: shape {headers[k][1]} in the state dict, {shape} in the model")
    if problems:
        raise ModelFileError(f"{path}: the arrays do not fit the architecture it declares "
                             f"({arch['type']}): " + "; ".join(problems))
    wrong = [(k, dt) for k, (_, dt) in expected.items() if headers[k][0].newbyteorder("=") != dt]
    if wrong:
        raise ModelFileError(f"{path}: the model is {dtype} but " + ", ".join(
            f"{k} is {headers[k][0]}" + (f" (it must be {dt})" if dt != dtype else "") for k, dt in wrong))
    for k in expected:                              # a deflated member must really hold what it declares
        if members[k].compress_type != zipfile.ZIP_STORED:
            _read_member(zf, members[k], headers[k][3], members[k].file_size - headers[k][3], None, path)
    try:
        model = _build(arch, dtype)
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: invalid model description: {e}") from None
    params = OrderedDict((k, a) for k, _, _, a in model._state_items())
    if [(k, a.shape, a.dtype) for k, a in params.items()] != [(k, s, d) for k, (s, d) in expected.items()]:
        raise ModelFileError(f"{path}: the architecture's parameters ({', '.join(params)}) are not the "
                             f"ones expected from its description ({', '.join(expected)})")
    for k, data in params.items():
        file_dtype, shape, fortran, offset = headers[k]
        dest = np.empty(shape[::-1], file_dtype) if fortran else data
        _read_member(zf, members[k], offset, dest.nbytes, memoryview(dest.reshape(-1).view(np.uint8)), path)
        if fortran:
            data[...] = dest.T                      # converts the byte order too
        elif file_dtype.itemsize > 1 and not file_dtype.isnative:
            dest.byteswap(inplace=True)             # raw big-endian bytes in a native array
    problems = [f"{k}: {p}" for k, m, attr, a in model._state_items()
                if (p := m.check_state_entry(attr, a)) is not None]
    if problems:
        raise ModelFileError(f"{path}: " + "; ".join(problems))
    return model
