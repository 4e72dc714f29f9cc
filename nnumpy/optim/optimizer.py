"""The optimizer base class: parameter groups and per-parameter state."""
from __future__ import annotations

import copy

import numpy as np

from ..nn.module import Parameter

__all__ = ["Optimizer"]


class Optimizer:
    """Holds ``param_groups`` (a list of dicts, each with ``"params"`` and its
    hyperparameters, as in PyTorch, so schedulers can change ``"lr"``) and
    ``state`` (a dict from each Parameter to its buffers).  ``step()``
    updates every ``param.data`` in place from ``param.grad``.

    ``params`` is an iterable of Parameters (e.g. ``model.parameters()``) or of
    dicts ``{"params": [...], "lr": ...}`` for per-group hyperparameters.
    """

    def __init__(self, params, defaults):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        group = dict(group)
        ps = group["params"]
        ps = [ps] if isinstance(ps, Parameter) else list(ps)
        for p in ps:
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__} optimizes nnumpy Parameters, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in ps) or len({id(p) for p in ps}) != len(ps):
            raise ValueError("a parameter appears more than once in the optimizer's parameter groups")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        group["params"] = ps
        self._validate(group)
        self.param_groups.append(group)

    def _validate(self, group):
        if not group["lr"] >= 0.0:
            raise ValueError(f"invalid learning rate: {group['lr']}")
        if group.get("weight_decay", 0.0) < 0.0:
            raise ValueError(f"invalid weight_decay: {group['weight_decay']}")

    def zero_grad(self):
        """Reset every gradient to zero (see :class:`~nnumpy.nn.Parameter`)."""
        for g in self.param_groups:
            for p in g["params"]:
                p.zero_grad()

    def step(self):
        raise NotImplementedError

    # -- state ------------------------------------------------------------------
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

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError("optimizer state dict does not match this optimizer's parameter groups")
        params = [p for g in self.param_groups for p in g["params"]]
        self.state = {}
        for i, s in state_dict["state"].items():
            p = params[int(i)]
            entry = {}
            for k, v in s.items():
                if isinstance(v, np.ndarray):
                    if v.shape != p.data.shape:
                        raise ValueError(f"optimizer state {k!r} of parameter {i} has shape {v.shape}, "
                                         f"the parameter {p.data.shape}")
                    v = v.astype(p.data.dtype, copy=True)
                entry[k] = v
            self.state[p] = entry
        for g, saved in zip(self.param_groups, groups):
            for k, v in saved.items():
                if k != "params":
                    g[k] = v

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in g if k != "params"):
                lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"
