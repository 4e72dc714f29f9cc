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

import copy
import json
import os
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import random as nnp_random
from ._checks import ArgumentTypeError, describe as describe_value, flag
from ._fileio import atomic_write, check_replaceable
from .nn.module import Module
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
    from .optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
    from .optim.optimizer import Optimizer
    from .serialization import NotDescribable
    from .training import History
    owner = "save_checkpoint"
    if not isinstance(model, Module):
        raise ArgumentTypeError(f"{owner}: model must be an nnumpy Module, got {describe_value(model)}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise ArgumentTypeError(f"{owner}: optimizer must be an nnumpy optimizer or None, got "
                                f"{describe_value(optimizer)}")
    if scheduler is not None and not isinstance(scheduler, (LRScheduler, ReduceLROnPlateau)):
        raise ArgumentTypeError(f"{owner}: scheduler must be an nnumpy learning-rate scheduler or None, got "
                                f"{describe_value(scheduler)}")
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ArgumentTypeError(f"{owner}: epoch must be an integer >= 0, got {describe_value(epoch)}")
    if history is not None:
        if isinstance(history, Mapping):
            try:
                history = History(**{k: list(v) for k, v in history.items()})
            except TypeError:
                raise ArgumentTypeError(f"{owner}: history must be a History or its to_dict(), got a dict with "
                                        f"keys {sorted(map(str, history))}") from None
        if not isinstance(history, History):
            raise ArgumentTypeError(f"{owner}: history must be a History (or its to_dict()) or None, got "
                                    f"{describe_value(history)}")
        if len({len(getattr(history, k)) for k in _HISTORY_FIELDS}) != 1:
            raise ValueError(f"{owner}: the history's lists differ in length")
    if extra is not None and not isinstance(extra, Mapping):
        raise ArgumentTypeError(f"{owner}: extra must be a dict or None, got {describe_value(extra)}")
    if best is not None:
        if not isinstance(best, Mapping) or not all(isinstance(k, str) and isinstance(a, np.ndarray)
                                                     and a.dtype.kind == "f" for k, a in best.items()):
            raise ArgumentTypeError(f"{owner}: best must be a state dict (names -> float arrays) or None, got "
                                    f"{describe_value(best)}")
    try:
        architecture = describe(model)
    except NotDescribable:
        architecture = None                 # an unregistered custom module: load_checkpoint then needs the model
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
    check_replaceable(path, "save the checkpoint")
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
    except PermissionError as e:
        _fail(path, f"cannot be read ({e.strerror or 'permission denied'})")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, RuntimeError) as e:
        _fail(path, f"not a readable checkpoint: a truncated or corrupt file, or pickled data "
                    f"({type(e).__name__}: {e})")
    try:
        meta = json.loads(str(raw))
    except (ValueError, RecursionError) as e:
        _fail(path, f"the checkpoint's metadata is not valid JSON ({type(e).__name__}: {str(e)[:200]})")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        _fail(path, "not an nnumpy checkpoint (its metadata has no 'format': 'nnumpy-checkpoint')")
    if meta.get("version") != VERSION:
        _fail(path, f"checkpoint format version {meta.get('version')!r:.40}; this nnumpy reads version {VERSION}")
    return meta, arrays


# -- checking the metadata (before anything is changed) -----------------------------------------
def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _want(path, ok, what):
    if not ok:
        _fail(path, f"damaged metadata: {what}")


def _decode_state(path, state, what):
    """A bit generator's state from its JSON, tried on a fresh generator of its kind (never on a live one)."""
    _want(path, isinstance(state, dict), f"{what} is not a generator state")
    kind = state.get("bit_generator")
    _want(path, kind in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"),
          f"{what} names no NumPy bit generator ({kind!r:.40})")
    try:
        decoded = _from_json(state)
        probe = getattr(np.random, kind)()
        probe.state = decoded
    except Exception as e:                 # a crafted state can fail in many ways inside NumPy: all are defects
        _fail(path, f"damaged metadata: {what} is invalid ({type(e).__name__}: {str(e)[:200]})")
    return decoded


_HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def _parse(path, meta, arrays):
    """Every part of the metadata checked for type and consistency (CheckpointError naming the first
    defect); returns the parts decoded: state, history, optimizer state dict, ..."""
    from .training import History
    out = {}
    epoch = meta.get("epoch")
    _want(path, _is_int(epoch) and epoch >= 0, f"'epoch' must be an integer >= 0, got {epoch!r:.40}")
    out["epoch"] = epoch
    keys = meta.get("state_keys")
    _want(path, isinstance(keys, list) and all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys),
          "'state_keys' must be a list of distinct names")
    state = OrderedDict()
    for k in keys:
        a = arrays.get(f"model/{k}")
        _want(path, a is not None, f"the model entry {k!r} is missing")
        _want(path, a.dtype.kind == "f", f"the model entry {k!r} is not a float array ({a.dtype})")
        state[k] = a
    out["state"] = state
    _want(path, meta.get("architecture") is None or isinstance(meta["architecture"], dict),
          "'architecture' must be an object or null")
    _want(path, meta.get("dtype", "float32") in ("float32", "float64"), "'dtype' must be float32 or float64")
    gens = meta.get("generators")
    _want(path, isinstance(gens, dict) and set(gens) == {"global", "modules"} and isinstance(gens["modules"], dict),
          "'generators' must hold 'global' and 'modules'")
    _decode_state(path, gens["global"], "the global generator's state")
    for name, st in gens["modules"].items():
        _decode_state(path, st, f"the generator state of module {name!r:.60}")
    out["generators"] = gens
    out["rng_state"] = (None if meta.get("rng_state") is None
                        else _decode_state(path, meta["rng_state"], "'rng_state'"))
    extra = meta.get("extra")
    _want(path, extra is None or isinstance(extra, dict), "'extra' must be an object or null")
    out["extra"] = extra
    hist = meta.get("history")
    if hist is None:
        out["history"] = History()
    else:
        _want(path, isinstance(hist, dict) and set(hist) == set(_HISTORY_FIELDS),
              f"'history' must hold exactly {', '.join(_HISTORY_FIELDS)}")
        _want(path, all(isinstance(v, list) and all(_is_number(x) for x in v) for v in hist.values()),
              "every 'history' entry must be a list of numbers")
        _want(path, len({len(v) for v in hist.values()}) == 1, "the 'history' lists differ in length")
        _want(path, hist["epoch"] == list(range(1, len(hist["epoch"]) + 1)),
              "the history's 'epoch' must count 1, 2, 3, ...")
        out["history"] = History(**{k: list(v) for k, v in hist.items()})
    opt = meta.get("optimizer")
    out["optimizer"] = None
    if opt is not None:
        _want(path, isinstance(opt, dict) and isinstance(opt.get("type"), str)
              and isinstance(opt.get("param_groups"), list) and isinstance(opt.get("state"), dict),
              "'optimizer' must hold 'type', 'param_groups' and 'state'")
        sd = {"param_groups": opt["param_groups"], "state": {}}
        for idx, entry in opt["state"].items():
            _want(path, isinstance(entry, dict) and isinstance(entry.get("arrays", []), list)
                  and isinstance(entry.get("scalars", {}), dict), f"the optimizer's state {idx!r:.20} is malformed")
            _want(path, idx.isdigit(), f"the optimizer's state has a key {idx!r:.20} that is not a parameter index")
            values = dict(entry.get("scalars", {}))
            for name in entry.get("arrays", []):
                _want(path, isinstance(name, str) and f"optimizer/{idx}/{name}" in arrays,
                      f"the optimizer's entry {idx}/{name!r:.40} is missing")
                values[name] = arrays[f"optimizer/{idx}/{name}"]
            sd["state"][int(idx)] = values
        out["optimizer"] = (opt["type"], sd)
    sched = meta.get("scheduler")
    out["scheduler"] = None
    if sched is not None:
        _want(path, isinstance(sched, dict) and isinstance(sched.get("type"), str)
              and isinstance(sched.get("state"), dict), "'scheduler' must hold 'type' and 'state'")
        out["scheduler"] = (sched["type"], sched["state"])
    best_keys = meta.get("best_keys")
    out["best"] = None
    if best_keys is not None:
        _want(path, isinstance(best_keys, list) and all(isinstance(k, str) for k in best_keys),
              "'best_keys' must be a list of names")
        best = OrderedDict()
        for k in best_keys:
            a = arrays.get(f"best/{k}")
            _want(path, a is not None and a.dtype.kind == "f", f"the best-weights entry {k!r:.60} is missing")
            best[k] = a
        out["best"] = best
    out["architecture"], out["dtype"] = meta.get("architecture"), meta.get("dtype", "float32")
    out["optimizer_type"] = out["optimizer"][0] if out["optimizer"] else None
    out["scheduler_type"] = out["scheduler"][0] if out["scheduler"] else None
    return out


def _same_arrays(path, what, saved, own):
    """``saved`` (name -> array) fits ``own`` (the model's state): same names, shapes and dtypes."""
    if list(saved) != list(own):
        missing = [k for k in own if k not in saved]
        unexpected = [k for k in saved if k not in own]
        _fail(path, f"the checkpoint's {what} does not fit the model given"
              + (f"; missing key(s): {', '.join(missing)}" if missing else "")
              + (f"; unexpected key(s): {', '.join(unexpected)}" if unexpected else ""))
    for k, a in own.items():
        if saved[k].shape != a.shape or saved[k].dtype != a.dtype:
            _fail(path, f"{k}: {saved[k].dtype} {saved[k].shape} in the checkpoint's {what}, "
                        f"{a.dtype} {a.shape} in the model")


def _prepare(path, parsed, model, optimizer, scheduler, restore_rng):
    """Check the parsed checkpoint against the objects it is to be loaded into, without changing them;
    returns (model, commit), where commit() loads everything (and cannot fail on what was checked)."""
    if model is None:
        if parsed["architecture"] is None:
            _fail(path, "the model is a custom module that nnumpy cannot rebuild: pass it, "
                        "load_checkpoint(path, model=MyModel(...)), or register its class with "
                        "nnumpy.register_module")
        try:
            model = build(parsed["architecture"], np.dtype(parsed["dtype"]))
        except (ValueError, TypeError) as e:
            _fail(path, f"invalid model description: {e}")
    elif not isinstance(model, Module):
        raise ArgumentTypeError(f"load_checkpoint: model must be an nnumpy Module or None, got "
                                f"{describe_value(model)}")
    own = OrderedDict((k, a) for k, _, _, a in model._state_items())
    _same_arrays(path, "model", parsed["state"], own)
    if parsed["best"] is not None:
        _same_arrays(path, "best weights", parsed["best"], own)
    opt_sd = None
    if optimizer is not None:
        if parsed["optimizer"] is None:
            _fail(path, "the checkpoint holds no optimizer state")
        kind, opt_sd = parsed["optimizer"]
        if kind != type(optimizer).__name__:
            _fail(path, f"the checkpoint holds the state of {kind:.40}, not of {type(optimizer).__name__}")
        try:
            _probe(optimizer).load_state_dict(opt_sd)
        except (ValueError, TypeError) as e:
            _fail(path, f"the optimizer state does not fit: {e}")
    sched_sd = None
    if scheduler is not None:
        if parsed["scheduler"] is None:
            _fail(path, "the checkpoint holds no scheduler state")
        kind, sched_sd = parsed["scheduler"]
        if kind != type(scheduler).__name__:
            _fail(path, f"the checkpoint holds the state of {kind:.40}, not of {type(scheduler).__name__}")
        try:
            _probe_scheduler(scheduler, optimizer).load_state_dict(sched_sd)
        except (ValueError, TypeError) as e:
            _fail(path, f"the scheduler state does not fit: {e}")
    if restore_rng:
        names = [n for n, _ in _module_generators(model)]
        saved = list(parsed["generators"]["modules"])
        if sorted(names) != sorted(saved):
            _fail(path, f"the model's modules with their own generator are {names or 'none'}, the saved "
                        f"generator states are for {saved or 'none'}")

    def commit():
        if restore_rng:
            restore_generator_states(parsed["generators"], model, where=f"{path}: the generator states")
        if scheduler is not None:
            scheduler.load_state_dict(sched_sd)
        if optimizer is not None:
            optimizer.load_state_dict(opt_sd)
        model.load_state_dict(parsed["state"])
    return model, commit


def _checkpoint_of(path, parsed, model):
    return Checkpoint(path=path, model=model, epoch=parsed["epoch"], history=parsed["history"],
                      rng_state=parsed["rng_state"], extra=parsed["extra"], best=parsed["best"],
                      generators=parsed["generators"], optimizer_type=parsed["optimizer_type"],
                      scheduler_type=parsed["scheduler_type"])


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

    Everything is checked before anything changes: the file and every part
    of its metadata, the model's keys, shapes and dtypes (and the best
    weights'), the optimizer's and scheduler's states (their own
    ``load_state_dict`` checks, run on copies first), the generator states.
    A defect raises :class:`CheckpointError` naming the file; the objects
    given are then as they were.  Returns a :class:`Checkpoint`.
    """
    path = os.fspath(path)
    restore_rng = flag("restore_rng", restore_rng, owner="load_checkpoint")
    parsed = _parse(path, *_read(path))
    model, commit = _prepare(path, parsed, model, optimizer, scheduler, restore_rng)
    commit()
    return _checkpoint_of(path, parsed, model)


def _probe(optimizer):
    """A throw-away optimizer of the same type over the same parameters, to try a
    state dict on without touching ``optimizer``."""
    probe = object.__new__(type(optimizer))
    probe.__dict__.update(optimizer.__dict__)
    probe.param_groups = [dict(g) for g in optimizer.param_groups]
    probe.state = dict(optimizer.state)
    return probe


def _probe_scheduler(scheduler, optimizer):
    """A deep copy of the scheduler (and of the optimizer it drives: its groups only, not the
    parameters), to try a state dict on without touching either."""
    opt = scheduler.optimizer
    memo = {id(p): p for g in opt.param_groups for p in g["params"]}     # share the parameters, copy the rest
    memo[id(opt.state)] = {}
    return copy.deepcopy(scheduler, memo)
