"""The optimizer base class: parameter groups and per-parameter state."""
from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np

from .. import backend
from .._checks import ArgumentTypeError, describe, flag, integer, real
from ..nn.module import Module, Parameter

__all__ = ["Optimizer"]

_ABSENT = object()              # a key missing from a parameter group
_PLAIN = (float, int, bool)     # the hyper-parameter types whose checks are remembered (see _check_groups)


def _nonneg(name, value, owner=None):
    return real(name, value, low=0.0, owner=owner)


class Optimizer:
    """Holds ``param_groups`` (a list of dicts, each with ``"params"`` and its
    hyperparameters, as in PyTorch, so schedulers can change ``"lr"``) and
    ``state`` (a dict from each Parameter to its buffers).  ``step()``
    updates every trainable ``param.data`` in place from ``param.grad``;
    frozen parameters (``requires_grad`` False) are skipped (see :meth:`step`).

    ``params`` is an iterable of Parameters (e.g. ``model.parameters()``) or of
    dicts ``{"params": [...], "lr": ...}`` for per-group hyperparameters.

    Every hyper-parameter is checked where it enters: in the constructor, in
    :meth:`add_param_group` (per-group overrides), in :meth:`load_state_dict`
    and, cheaply, at every :meth:`step` (a scheduler or user code may write
    ``group["lr"]``): NaN, inf, out-of-range values and wrong types raise a
    ValueError (or :class:`~nnumpy._checks.ArgumentTypeError`) naming the
    argument, or the group and key, before any parameter is touched.  A group
    may hold only ``"params"``, the optimizer's hyper-parameters and
    ``"initial_lr"`` (set by schedulers): a misspelt key is an error, not
    silently ignored.

    Every optimizer takes ``maximize`` (default False), as in PyTorch: with
    True it ascends the objective, as if each gradient were negated before
    anything else (weight decay, momentum, moments) sees it.
    """

    #: hyper-parameter name -> check(name, value, owner) returning the normalised value
    _hyper = {}
    #: Hyper-parameters added after state dicts were first written, with the value
    #: that reproduces the old behaviour: :meth:`load_state_dict` fills them into
    #: groups that lack them (PyTorch's ``__setstate__`` does the same).
    _added_later = {"maximize": False}

    def __init__(self, params, defaults):
        owner = type(self).__name__
        if isinstance(params, (Parameter, Module, Mapping, str, bytes)):
            hint = (" (pass model.parameters(), not the model)" if isinstance(params, Module) else
                    " (wrap it in a list: [param])" if isinstance(params, Parameter) else
                    " (wrap the group in a list: [{'params': ...}])" if isinstance(params, Mapping) else "")
            raise ArgumentTypeError(f"{owner}: params must be an iterable of Parameters or of dicts, got "
                                    f"a {type(params).__name__}{hint}")
        try:
            params = list(params)
        except TypeError:
            raise ArgumentTypeError(f"{owner}: params must be an iterable of Parameters or of dicts, got "
                                    f"{describe(params)}") from None
        if not params:
            raise ValueError(f"{owner} got an empty parameter list")
        self.defaults = self._check_values(defaults, "", owner)
        if isinstance(params[0], Mapping):
            if not all(isinstance(g, Mapping) for g in params):
                raise ArgumentTypeError(f"{owner}: params mixes parameter-group dicts and other objects")
            groups = params
        else:
            groups = [{"params": params}]
        self.param_groups = []
        self.state = {}
        for g in groups:
            self.add_param_group(g)

    # -- checks -------------------------------------------------------------------
    def _check_values(self, group, prefix, owner):
        """The group's hyper-parameters (and initial_lr, if present), each
        checked and normalised; named ``prefix['key']`` (or ``key`` without a
        prefix) in errors."""
        out = {}
        for key, check in self._hyper.items():
            name = f"{prefix}[{key!r}]" if prefix else key
            if key not in group:
                raise ValueError(f"{owner}: {prefix or 'the group'} has no {key!r} entry")
            out[key] = check(name, group[key], owner)
        if "initial_lr" in group:
            out["initial_lr"] = _nonneg(f"{prefix}['initial_lr']" if prefix else "initial_lr",
                                        group["initial_lr"], owner)
        self._check_combination(out, prefix, owner)
        return out

    def _check_combination(self, values, prefix, owner):
        """Constraints between hyper-parameters (overridden by subclasses)."""

    def _check_groups(self, verb="step"):
        """Check every group's hyper-parameters before anything is updated.

        A group whose hyper-parameters are plain Python numbers equal (type
        and value) to a set that passed the checks before passes again without
        them: the checks depend on those values alone, and the per-step cost
        falls from about 20 to 2 microseconds.  Anything else written into a
        group (a NaN, a NumPy scalar, a string, a missing key) is checked."""
        owner = f"{type(self).__name__}.{verb}"
        passed = self.__dict__.setdefault("_passed_checks", set())
        for i, g in enumerate(self.param_groups):
            snap = self._snapshot(g)
            if snap is not None and snap in passed:
                continue
            self._check_values(g, f"param_groups[{i}]", owner)
            if snap is not None:
                if len(passed) > 64:                   # a schedule writes a new lr each step: keep it small
                    passed.clear()
                passed.add(snap)

    def _snapshot(self, group):
        """The group's hyper-parameters as ((type, value), ...), or None when
        one is not a plain int, float or bool, or a tuple of them (those are
        always checked).  Only a snapshot that passed the checks is remembered,
        so a value that fails them (a NaN, a negative rate) is checked, and
        refused, every time."""
        out = []
        for key in (*self._hyper, "initial_lr"):
            v = group.get(key, _ABSENT)
            t = type(v)
            if t is tuple:                              # Adam's betas: a tuple of plain numbers
                items = tuple((type(e), e) for e in v)
                if not all(te in _PLAIN for te, _ in items):
                    return None
                out.append((t, items))
                continue
            if t not in _PLAIN and v is not _ABSENT:
                return None
            out.append((t, v))
        return tuple(out)

    def add_param_group(self, group):
        """Add a group ``{"params": [...], **overrides}``; missing hyper-parameters
        come from the constructor's defaults."""
        owner = type(self).__name__
        i = len(self.param_groups)
        if not isinstance(group, Mapping):
            raise ArgumentTypeError(f"{owner}: a parameter group must be a dict with a 'params' key, got "
                                    f"{describe(group)}")
        if "params" not in group:
            raise ValueError(f"{owner}: parameter group {i} has no 'params' entry")
        unknown = sorted(str(k) for k in group if k not in self._hyper and k not in ("params", "initial_lr"))
        if unknown:
            raise ValueError(f"{owner}: parameter group {i} has unknown key(s) {', '.join(map(repr, unknown))}; "
                             f"{owner}'s hyper-parameters are {', '.join(self._hyper)}")
        ps = group["params"]
        if isinstance(ps, Parameter):
            ps = [ps]
        elif isinstance(ps, (Module, Mapping, str, bytes)):
            raise ArgumentTypeError(f"{owner}: parameter group {i}: 'params' must be Parameters, got a "
                                    f"{type(ps).__name__}" + (" (use model.parameters())"
                                                              if isinstance(ps, Module) else ""))
        else:
            try:
                ps = list(ps)
            except TypeError:
                raise ArgumentTypeError(f"{owner}: parameter group {i}: 'params' must be an iterable of "
                                        f"Parameters, got {describe(ps)}") from None
        for p in ps:
            if not isinstance(p, Parameter):
                raise ArgumentTypeError(f"{owner} optimizes nnumpy Parameters, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in ps) or len({id(p) for p in ps}) != len(ps):
            raise ValueError("a parameter appears more than once in the optimizer's parameter groups")
        merged = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        checked = self._check_values(merged, f"param_groups[{i}]", owner)
        self.param_groups.append({"params": ps, **checked})

    def zero_grad(self, set_to_none=True):
        """Reset every gradient to zero (see :class:`~nnumpy.nn.Parameter`).
        ``set_to_none`` is accepted for PyTorch's signature and changes nothing:
        nnumpy keeps one gradient array per parameter and marks it as zero,
        which costs no pass over its memory, as setting it to None would not."""
        flag("set_to_none", set_to_none, owner="zero_grad")
        for g in self.param_groups:
            for p in g["params"]:
                p.zero_grad()

    def step(self):
        """One update of every trainable parameter, in place, from its ``grad``.

        The groups' hyper-parameters are checked first: if one is bad, nothing
        moves.  A frozen parameter (``requires_grad`` False) is skipped
        entirely, as PyTorch skips a parameter whose ``grad`` is None: its
        data stay as they were, bit for bit, with no weight decay, momentum
        or moment update, and its state is neither created nor changed (it
        resumes where it was when the parameter is unfrozen).
        """
        self._check_groups()                   # a NaN/inf lr written into a group raises here, first
        ops = backend.ops()                    # the fused updates: see backend/numpy_ops.py
        for group in self.param_groups:
            params = [p for p in group["params"] if p.requires_grad]
            if params:
                self._update_group(group, params, ops)

    def _update_group(self, group, params, ops):
        """Update ``params`` (the group's trainable parameters) with the group's
        hyper-parameters through the backend's ``ops`` (overridden by subclasses)."""
        raise NotImplementedError

    # -- state ------------------------------------------------------------------
    def _state_spec(self, group):
        """What this optimizer keeps per parameter in a group: key -> kind,
        one of "array" (the parameter's shape, finite), "array>=0" (also no
        negative entry), "count" (an integer >= 0).  Overridden by subclasses."""
        return {}

    def state_dict(self):
        """``{"state": {index: {name: array or number}}, "param_groups": [...]}``
        with parameters replaced by their running index, as in PyTorch."""
        index, groups = {}, []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": copy.deepcopy(groups)}

    @classmethod
    def _looks_like(cls, keys):
        """Names of the optimizer classes whose groups have exactly ``keys``."""
        found, todo = [], [Optimizer]
        while todo:
            c = todo.pop()
            todo.extend(c.__subclasses__())
            if c._hyper and set(c._hyper) == set(keys) and c.__name__ not in found:
                found.append(c.__name__)
        return sorted(found)

    def load_state_dict(self, state_dict):
        """Load a :meth:`state_dict` (of an optimizer of the same type over
        parameters of the same shapes, in the same groups).

        Everything is checked before anything changes: the dict's layout, the
        group count and sizes, each group's keys and hyper-parameters (as the
        constructor checks them), and each parameter's state (exactly the
        keys this optimizer keeps, arrays of the parameter's shape holding
        numbers that are finite also once cast to the parameter's dtype:
        1e300 is refused for a float32 parameter).  A mismatch raises ValueError (or
        :class:`~nnumpy._checks.ArgumentTypeError`) and leaves the optimizer
        as it was.

        A group written before a hyper-parameter existed (``maximize``, in
        nnumpy's state dicts from before it was added) gets the value that
        reproduces the old behaviour (``maximize=False``), as PyTorch fills
        missing keys; every other key must be there.
        """
        name = type(self).__name__
        owner = f"{name}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise ArgumentTypeError(f"{owner}: expected a dict with 'state' and 'param_groups' "
                                    f"(from optimizer.state_dict()), got {describe(state_dict)}")
        if set(state_dict) != {"state", "param_groups"}:
            missing = sorted({"state", "param_groups"} - set(state_dict))
            extra = sorted(map(str, set(state_dict) - {"state", "param_groups"}))
            raise ValueError(f"{owner}: an optimizer state dict has exactly the keys 'state' and 'param_groups'"
                             + (f"; missing {', '.join(missing)}" if missing else "")
                             + (f"; unexpected {', '.join(extra)}" if extra else ""))
        groups, state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(groups, (list, tuple)) or not all(isinstance(g, Mapping) for g in groups):
            raise ArgumentTypeError(f"{owner}: 'param_groups' must be a list of dicts, got {describe(groups)}")
        if not isinstance(state, Mapping):
            raise ArgumentTypeError(f"{owner}: 'state' must be a dict, got {describe(state)}")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{owner}: the state dict has {len(groups)} parameter group(s), this {name} "
                             f"{len(self.param_groups)}")
        expected = set(self._hyper) | {"params"}
        new_groups, id_map = [], {}
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            saved = {**{k: v for k, v in self._added_later.items() if k in self._hyper}, **saved}
            keys = set(saved) - {"initial_lr"}
            if keys != expected:
                missing = sorted(expected - keys)
                extra = sorted(map(str, keys - expected))
                like = self._looks_like(keys - {"params"})
                raise ValueError(
                    f"{owner}: param_groups[{i}] does not hold {name}'s hyper-parameters"
                    + (f"; missing {', '.join(missing)}" if missing else "")
                    + (f"; unexpected {', '.join(extra)}" if extra else "")
                    + (f" (it looks like the state of {'/'.join(like)}: load it into that optimizer)"
                       if like else ""))
            ids = saved["params"]
            if not isinstance(ids, (list, tuple)):
                raise ArgumentTypeError(f"{owner}: param_groups[{i}]['params'] must be a list of parameter "
                                        f"indices, got {describe(ids)}")
            if len(ids) != len(own["params"]):
                raise ValueError(f"{owner}: param_groups[{i}] holds {len(ids)} parameter(s) in the state dict, "
                                 f"{len(own['params'])} in this {name}")
            values = self._check_values(saved, f"param_groups[{i}]", owner)
            for j, (pid, p) in enumerate(zip(ids, own["params"])):
                pid = integer(f"param_groups[{i}]['params'][{j}]", pid, low=0, owner=owner)
                if pid in id_map:
                    raise ValueError(f"{owner}: parameter index {pid} appears more than once in 'param_groups'")
                id_map[pid] = (p, values)
            new_groups.append(values)
        new_state = {}
        for key, entry in state.items():
            where = f"state[{key!r}]"
            k = integer(f"the key of {where}", key, low=0, owner=owner)
            if k not in id_map:
                raise ValueError(f"{owner}: {where} belongs to no parameter of 'param_groups' (indices "
                                 f"0..{len(id_map) - 1})")
            if not isinstance(entry, Mapping):
                raise ArgumentTypeError(f"{owner}: {where} must be a dict, got {describe(entry)}")
            p, values = id_map[k]
            parsed = self._check_param_state(entry, p, values, where, owner)
            if parsed:
                new_state[p] = parsed
        # -- everything fits: commit ------------------------------------------------
        self.state = new_state
        for own, values in zip(self.param_groups, new_groups):
            params = own["params"]
            own.clear()
            own["params"] = params
            own.update(values)

    def _check_param_state(self, entry, p, group, where, owner):
        spec = self._state_spec(group)
        name = type(self).__name__
        entry = {k: v for k, v in entry.items() if v is not None or k not in spec}
        if not entry:
            return {}
        if set(entry) != set(spec):
            missing = sorted(set(spec) - set(entry))
            extra = sorted(map(str, set(entry) - set(spec)))
            raise ValueError(f"{owner}: {where} has keys {sorted(map(str, entry))}, but {name} keeps "
                             f"{sorted(spec)} per parameter"
                             + (f"; missing {', '.join(missing)}" if missing else "")
                             + (f"; unexpected {', '.join(extra)}" if extra else "")
                             + " (is it the state of another optimizer?)")
        out = {}
        for k, kind in spec.items():
            v = entry[k]
            if hasattr(v, "detach"):                  # a torch tensor: no torch import needed
                v = v.detach().cpu().numpy()
            if kind == "count":
                out[k] = integer(f"{where}[{k!r}]", v, low=0, owner=owner)
                continue
            if not isinstance(v, np.ndarray):
                raise ArgumentTypeError(f"{owner}: {where}[{k!r}] must be a NumPy array, got {describe(v)}")
            if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
                raise ArgumentTypeError(f"{owner}: {where}[{k!r}] has dtype {v.dtype}, not a number type")
            if v.shape != p.data.shape:
                raise ValueError(f"{owner}: {where}[{k!r}] has shape {v.shape}, the parameter {p.data.shape}")
            if not np.isfinite(v).all():
                raise ValueError(f"{owner}: {where}[{k!r}] holds NaN or inf")
            # checked again in the parameter's dtype: 1e300 is finite in float64, inf in float32
            with np.errstate(over="ignore"):
                cast = v.astype(p.data.dtype, order="C", copy=True)
            fits = np.isfinite(cast)
            if not fits.all():
                i = np.unravel_index(int(np.argmin(fits)), v.shape) if v.ndim else ()
                raise ValueError(f"{owner}: {where}[{k!r}] holds {int((~fits).sum())} value(s) beyond the range "
                                 f"of the parameter's dtype {p.data.dtype} (|x| <= {np.finfo(p.data.dtype).max:.4g}; "
                                 f"the first, at index {tuple(int(j) for j in i)}, is {v[i].item()!r}): "
                                 f"they would become inf")
            if kind == "array>=0" and cast.size and cast.min() < 0:
                raise ValueError(f"{owner}: {where}[{k!r}] holds negative values (it is a mean of squares)")
            out[k] = cast
        return out

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in g if k != "params"):
                lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"
