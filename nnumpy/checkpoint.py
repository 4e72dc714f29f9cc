"""Checkpoints: everything training needs to continue exactly where it stopped.

One ``.npz`` file (no pickle, as :func:`nnumpy.save`) holds

* the model: its architecture (when :func:`nnumpy.save` can describe it:
  nnumpy's modules and registered custom ones) and its state dict;
* the optimizer's state dict (its hyper-parameters per group and the
  per-parameter buffers: momentum, Adam's moments, step counts) and the
  scheduler's;
* the epoch count and the :class:`~nnumpy.History` so far;
* the state of every random generator training draws from: nnumpy's global
  generator, each module's own (``Dropout.rng``, ...), and the generator of
  the batch order (``rng_state``, from :func:`~nnumpy.fit`);
* ``extra``: any JSON-able dict (``fit`` keeps its settings and the early
  stopping state there), and optionally a second set of weights (``best``).

Training 6 epochs straight and training 3, saving a checkpoint, loading it in a
new process and training 3 more give the same weights, history (but for the
wall-clock ``seconds``) and generator states, bit for bit, on the same
backend and machine: ``fit(..., checkpoint=PATH)`` then ``fit(...,
resume=PATH)``.

Arrays are stored under ``model/<key>``, ``optimizer/<index>/<name>`` and
``best/<key>``; everything else is one JSON document under
``__nnumpy_checkpoint__``.  The file is written atomically (a temporary file
renamed into place): an interrupted save leaves the previous checkpoint.
Every defect of a file given to :func:`load_checkpoint` raises
:class:`CheckpointError` naming the file and the defect.
"""
from __future__ import annotations

import json
import os
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import random as nnp_random
from ._checks import ArgumentTypeError, describe as describe_value
from ._fileio import atomic_write, check_writable_target
from .nn.module import Module, StateDictError
from .serialization import ModelFileError, build, describe

__all__ = ["save_checkpoint", "load_checkpoint", "Checkpoint", "CheckpointError", "generator_states",
           "restore_generator_states"]

FORMAT = "nnumpy-checkpoint"
VERSION = 1
_META_KEY = "__nnumpy_checkpoint__"
_MAX_META_BYTES = 1 << 26


class CheckpointError(ModelFileError):
    """A checkpoint file is missing, unreadable or corrupt, or does not fit the
    model, optimizer or scheduler it is loaded into."""


# -- generator states as JSON -----------------------------------------------------------------
def _to_json(value):
    """A bit generator's state (ints, strings, NumPy arrays for MT19937) as JSON-able values."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


def _from_json(value):
    if isinstance(value, Mapping):
        if set(value) == {"__ndarray__", "dtype"}:
            return np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _module_generators(model):
    """(name, generator) of every module that draws from its own generator
    (``module.rng``: Dropout, Dropout2d), in the model's order."""
    out, todo = [], [("", model)]
    while todo:
        name, m = todo.pop(0)
        rng = m.__dict__.get("rng")
        if isinstance(rng, np.random.Generator):
            out.append((name or "(model)", rng))
        todo.extend((f"{name}.{k}" if name else k, c) for k, c in m._modules.items())
    return out


def generator_states(model=None):
    """The states of nnumpy's global generator and of each module's own
    (JSON-able): ``{"global": state, "modules": {name: state}}``.  A
    generator shared by several modules (an MLP's Dropouts share one) is
    recorded under each of their names; restoring sets it once."""
    out = {"global": _to_json(nnp_random.default_generator().bit_generator.state), "modules": {}}
    if model is not None:
        for name, rng in _module_generators(model):
            out["modules"][name] = _to_json(rng.bit_generator.state)
    return out


def restore_generator_states(states, model=None, where="generator states"):
    """Set nnumpy's global generator and the model's module generators to
    ``states`` (from :func:`generator_states`).  Every entry is checked
    first (a module that has no generator, or a module generator missing
    from ``states``, is an error naming it); nothing changes on an error."""
    if not isinstance(states, Mapping) or set(states) != {"global", "modules"}:
        raise ValueError(f"{where}: expected {{'global': ..., 'modules': {{...}}}}, got {describe_value(states)}")
    mods = _module_generators(model) if model is not None else []
    saved = states["modules"]
    names = [n for n, _ in mods]
    missing = [n for n in names if n not in saved]
    extra = [n for n in saved if n not in names]
    if missing or extra:
        raise ValueError(f"{where}: the model's modules with their own generator are "
                         f"{names or 'none'}, the saved states are for {list(saved) or 'none'}")
    plan = [(nnp_random.default_generator(), states["global"], "the global generator")]
    plan += [(rng, saved[n], f"module {n!r}") for n, rng in mods]
    decoded = []
    for rng, state, what in plan:
        state = _from_json(state)
        kind = type(rng.bit_generator).__name__
        if not isinstance(state, dict) or state.get("bit_generator") != kind:
            raise ValueError(f"{where}: the state of {what} is not a {kind} state")
        probe = type(rng.bit_generator)()
        try:
            probe.state = state
        except (ValueError, TypeError, KeyError, OverflowError) as e:
            raise ValueError(f"{where}: the state of {what} is invalid ({e})") from None
        decoded.append((rng, state))
    for rng, state in decoded:
        rng.bit_generator.state = state


# -- save -------------------------------------------------------------------------------------
def _json_dumps(obj, what):
    try:
        return json.dumps(obj, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise ArgumentTypeError(f"save_checkpoint: {what} must be JSON-able (numbers, strings, lists, dicts), "
                                f"{e}") from None


def _plain(v):
    """NumPy scalars as Python numbers, tuples as lists, recursively (for JSON)."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def save_checkpoint(path, model, optimizer=None, scheduler=None, *, epoch=0, history=None, rng_state=None,
                    extra=None, best=None):
    """Write a checkpoint of a training run to ``path`` (an .npz file), atomically.

    model: the Module (its state dict, and its architecture when it can be
    described: see :func:`nnumpy.save` and :func:`nnumpy.register_module`).
    optimizer, scheduler: their state dicts (optional).  epoch: the number
    of finished epochs.  history: a :class:`~nnumpy.History` or its dict.
    rng_state: the state of a further generator (``gen.bit_generator.state``,
    e.g. the batch order's); nnumpy's global generator and the model's own
    generators are always saved.  extra: a JSON-able dict.  best: a second
    state dict (e.g. the best weights so far).  Returns ``path``.
    """
    from .training import History
    if not isinstance(model, Module):
        raise ArgumentTypeError(f"save_checkpoint: model must be an nnumpy Module, got {describe_value(model)}")
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ArgumentTypeError(f"save_checkpoint: epoch must be an integer >= 0, got {describe_value(epoch)}")
    try:
        architecture = describe(model)
    except TypeError:
        architecture = None                 # a custom module: load_checkpoint then needs the model
    arrays = OrderedDict((f"model/{k}", a) for k, _, _, a in model._state_items())
    meta = {"format": FORMAT, "version": VERSION, "epoch": int(epoch), "architecture": architecture,
            "dtype": np.dtype(model.dtype or np.float32).name,
            "state_keys": [k for k, _, _, _ in model._state_items()],
            "generators": generator_states(model),
            "rng_state": _to_json(rng_state) if rng_state is not None else None,
            "extra": _plain(extra) if extra is not None else None}
    if history is not None:
        meta["history"] = _plain(history.to_dict() if isinstance(history, History) else dict(history))
    if optimizer is not None:
        sd = optimizer.state_dict()
        state = {}
        for idx, entry in sd["state"].items():
            scalars = {}
            for name, v in entry.items():
                if isinstance(v, np.ndarray):
                    arrays[f"optimizer/{idx}/{name}"] = v
                else:
                    scalars[name] = _plain(v)
            state[str(idx)] = {"arrays": [n for n, v in entry.items() if isinstance(v, np.ndarray)],
                               "scalars": scalars}
        meta["optimizer"] = {"type": type(optimizer).__name__, "param_groups": _plain(sd["param_groups"]),
                             "state": state}
    if scheduler is not None:
        meta["scheduler"] = {"type": type(scheduler).__name__, "state": _plain(scheduler.state_dict())}
    if best is not None:
        for k, a in best.items():
            arrays[f"best/{k}"] = np.asarray(a)
        meta["best_keys"] = list(best)
    arrays[_META_KEY] = np.array(_json_dumps(meta, "the checkpoint's extra, history and scheduler state"))
    check_writable_target(os.fspath(path), "save the checkpoint")
    with atomic_write(os.fspath(path)) as f:
        np.savez(f, **arrays)
    return path


# -- load -------------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` read.  ``model`` is the model the
    weights were loaded into (the one given, or one rebuilt from the file);
    ``history`` a :class:`~nnumpy.History`; ``rng_state`` the extra
    generator's state (or None); ``extra`` the JSON dict given to
    :func:`save_checkpoint`; ``best`` the second state dict (or None);
    ``generators`` the saved generator states (restored already when
    ``restore_rng`` was true)."""

    path: str
    model: Module
    epoch: int
    history: object
    rng_state: object = None
    extra: dict = None
    best: dict = None
    generators: dict = field(default_factory=dict)
    optimizer_type: str = None
    scheduler_type: str = None


def _fail(path, message):
    raise CheckpointError(f"{path}: {message}")


def _read(path):
    """(meta, arrays) of the file; CheckpointError for anything unreadable."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        _fail(path, "no such checkpoint file")
    except OSError as e:
        _fail(path, f"cannot be read ({e.strerror or e})")
    if os.path.isdir(path):
        _fail(path, "is a folder, not a checkpoint file")
    if size == 0:
        _fail(path, "the file is empty (0 bytes), not a checkpoint (an interrupted copy?)")
    try:
        with np.load(path, allow_pickle=False) as z:
            if _META_KEY not in z.files:
                hint = (" (it is a model file from nnumpy.save: load it with nnumpy.load)"
                        if "__nnumpy__" in z.files else "")
                _fail(path, f"no '{_META_KEY}' entry: not a checkpoint written by nnumpy.save_checkpoint{hint}")
            raw = z[_META_KEY]
            if raw.dtype.kind != "U" or raw.shape != () or raw.nbytes > _MAX_META_BYTES:
                _fail(path, "the checkpoint's metadata entry is not a JSON string")
            arrays = {k: z[k] for k in z.files if k != _META_KEY}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, RuntimeError) as e:
        _fail(path, f"not a readable checkpoint: a truncated or corrupt file, or pickled data "
                    f"({type(e).__name__}: {e})")
    try:
        meta = json.loads(str(raw))
    except ValueError as e:
        _fail(path, f"the checkpoint's metadata is not valid JSON ({e})")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        _fail(path, "not an nnumpy checkpoint (its metadata has no 'format': 'nnumpy-checkpoint')")
    if meta.get("version") != VERSION:
        _fail(path, f"checkpoint format version {meta.get('version')!r}; this nnumpy reads version {VERSION}")
    for key, kind in (("epoch", int), ("state_keys", list), ("generators", dict)):
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            _fail(path, f"the checkpoint's metadata has no valid {key!r}")
    return meta, arrays


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, restore_rng=True):
    """Read a checkpoint written by :func:`save_checkpoint` and put it back.

    model: a Module to load the weights into (its state-dict keys and shapes
    must match), or None to rebuild the model from the architecture in the
    file (not possible for an unregistered custom module: pass it).
    optimizer, scheduler: when given, their state is loaded (they must be
    of the saved types, over the model's parameters); when the file holds a
    state for them and they are not given, it is simply not loaded.
    restore_rng: set nnumpy's global generator and the model's module
    generators to their saved states.

    Everything is checked before anything changes: the file, the model's
    keys and shapes, the optimizer's and scheduler's states (their own
    ``load_state_dict`` checks, run on copies first), the generator states.
    A defect raises :class:`CheckpointError` naming the file.  Returns a
    :class:`Checkpoint`.
    """
    from .training import History
    path = os.fspath(path)
    meta, arrays = _read(path)
    keys = meta["state_keys"]
    state = OrderedDict()
    for k in keys:
        if f"model/{k}" not in arrays:
            _fail(path, f"the model entry {k!r} is missing")
        state[k] = arrays[f"model/{k}"]
    if model is None:
        if meta.get("architecture") is None:
            _fail(path, "the model is a custom module that nnumpy cannot rebuild: pass it, "
                        "load_checkpoint(path, model=MyModel(...)), or register its class with "
                        "nnumpy.register_module")
        try:
            model = build(meta["architecture"], np.dtype(meta.get("dtype", "float32")))
        except (ValueError, TypeError) as e:
            _fail(path, f"invalid model description: {e}")
    elif not isinstance(model, Module):
        raise ArgumentTypeError(f"load_checkpoint: model must be an nnumpy Module or None, got "
                                f"{describe_value(model)}")
    # -- check everything on copies, then commit ------------------------------------------------
    own = OrderedDict((k, a) for k, _, _, a in model._state_items())
    if list(own) != keys:
        missing = [k for k in own if k not in state]
        unexpected = [k for k in keys if k not in own]
        _fail(path, "the checkpoint's model does not fit the model given"
              + (f"; missing key(s): {', '.join(missing)}" if missing else "")
              + (f"; unexpected key(s): {', '.join(unexpected)}" if unexpected else ""))
    for k, a in own.items():
        if state[k].shape != a.shape or state[k].dtype != a.dtype:
            _fail(path, f"{k}: {state[k].dtype} {state[k].shape} in the checkpoint, {a.dtype} {a.shape} in the model")
    opt_sd = None
    if optimizer is not None:
        saved = meta.get("optimizer")
        if saved is None:
            _fail(path, "the checkpoint holds no optimizer state")
        if saved.get("type") != type(optimizer).__name__:
            _fail(path, f"the checkpoint holds the state of {saved.get('type')}, not of {type(optimizer).__name__}")
        opt_sd = {"param_groups": saved["param_groups"], "state": {}}
        for idx, entry in saved.get("state", {}).items():
            values = dict(entry.get("scalars", {}))
            for name in entry.get("arrays", []):
                if f"optimizer/{idx}/{name}" not in arrays:
                    _fail(path, f"the optimizer's entry {idx}/{name} is missing")
                values[name] = arrays[f"optimizer/{idx}/{name}"]
            try:
                opt_sd["state"][int(idx)] = values
            except ValueError:
                _fail(path, f"the optimizer's state has a key {idx!r} that is not a parameter index")
        probe = _probe(optimizer)
        try:
            probe.load_state_dict(opt_sd)
        except (ValueError, TypeError) as e:
            _fail(path, f"the optimizer state does not fit: {e}")
    sched_sd = None
    if scheduler is not None:
        saved = meta.get("scheduler")
        if saved is None:
            _fail(path, "the checkpoint holds no scheduler state")
        if saved.get("type") != type(scheduler).__name__:
            _fail(path, f"the checkpoint holds the state of {saved.get('type')}, not of {type(scheduler).__name__}")
        sched_sd = saved["state"]
    history = History()
    if meta.get("history") is not None:
        try:
            history = History(**{k: list(v) for k, v in meta["history"].items()})
        except TypeError as e:
            _fail(path, f"the history is not a History's ({e})")
    best = None
    if meta.get("best_keys") is not None:
        best = OrderedDict()
        for k in meta["best_keys"]:
            if f"best/{k}" not in arrays:
                _fail(path, f"the best-weights entry {k!r} is missing")
            best[k] = arrays[f"best/{k}"]
    gens = meta["generators"]
    if restore_rng:
        snapshot = generator_states(model)
        try:
            restore_generator_states(gens, model, where=f"{path}: the generator states")
        except ValueError as e:
            raise CheckpointError(str(e)) from None
    try:              # the scheduler first: its own checks run before it changes anything
        if scheduler is not None:
            scheduler.load_state_dict(sched_sd)
        if optimizer is not None:
            optimizer.load_state_dict(opt_sd)       # (tried on a probe above)
        model.load_state_dict(state)                # (keys, shapes and dtypes checked above)
    except (ValueError, TypeError, StateDictError) as e:
        if restore_rng:
            restore_generator_states(snapshot, model)
        _fail(path, f"the checkpoint does not fit: {e}")
    rng_state = _from_json(meta["rng_state"]) if meta.get("rng_state") is not None else None
    return Checkpoint(path=path, model=model, epoch=meta["epoch"], history=history, rng_state=rng_state,
                      extra=meta.get("extra"), best=best, generators=gens,
                      optimizer_type=(meta.get("optimizer") or {}).get("type"),
                      scheduler_type=(meta.get("scheduler") or {}).get("type"))


def _probe(optimizer):
    """A throw-away optimizer of the same type over the same parameters, to try a
    state dict on without touching ``optimizer``."""
    probe = object.__new__(type(optimizer))
    probe.__dict__.update(optimizer.__dict__)
    probe.param_groups = [dict(g) for g in optimizer.param_groups]
    probe.state = dict(optimizer.state)
    return probe

