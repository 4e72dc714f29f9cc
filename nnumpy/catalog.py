"""What nnumpy offers, beside the PyTorch name of each item, read from the code.

    python -m nnumpy.catalog          # the Markdown table quoted in the README

Every public layer, activation, loss, initialiser, optimizer, scheduler and
utility is found by walking the packages' ``__all__`` (so a new item appears
without anyone listing it), with the first line of its docstring and the
name of its PyTorch counterpart, which follows from where it lives
(``nnumpy.nn.X`` <-> ``torch.nn.X``, ``nnumpy.optim.X`` <-> ``torch.optim.X``,
...).  The tests check that the README quotes this table exactly and, with
PyTorch installed, that every PyTorch name given exists in torch 2.13.
"""
from __future__ import annotations

import inspect
import re

from . import nn, optim
from .nn.loss import Loss
from .nn.module import Module
from .optim.optimizer import Optimizer

__all__ = ["offerings", "markdown"]

#: nnumpy items without a PyTorch class of the same name (None: PyTorch has no such item).
_NO_TWIN = {"MLP": None}
#: The training loop and files: nnumpy's own functions, with the nearest PyTorch item.
_TOOLS = {
    "fit": None, "evaluate": None, "predict": None, "StopTraining": None,
    "save": "torch.save", "load": "torch.load", "register_module": None,
    "save_checkpoint": "torch.save", "load_checkpoint": "torch.load",
    "gradcheck": "torch.autograd.gradcheck", "summary": None, "manual_seed": "torch.manual_seed",
}


def _summary(obj):
    """The first sentence of the docstring (a trailing "::" or ":" becomes ".")."""
    doc = inspect.getdoc(obj) or ""
    para = " ".join(doc.strip().split("\n\n")[0].split())
    first = re.split(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.;])\s+(?=[A-Z`(])", para)[0]
    return re.sub(r":+$", ".", first.rstrip(";")).rstrip()


def _nn_kind(obj):
    if isinstance(obj, type) and issubclass(obj, Loss):
        return "Losses" if obj is not Loss else None
    if isinstance(obj, type) and issubclass(obj, Module):
        if obj is Module:
            return None
        return "Activations" if obj.__module__.endswith(".activation") else "Layers and containers"
    return None


def offerings():
    """``[(section, nnumpy name, PyTorch name or None, summary)]`` in the order of the table."""
    import nnumpy                       # (the package's own functions, for the last section)
    rows = {k: [] for k in ("Layers and containers", "Activations", "Losses", "Initialisers", "Optimizers",
                            "Schedulers", "Gradient utilities", "Training, checkpoints, files")}
    for name in nn.__all__:
        obj = getattr(nn, name)
        kind = _nn_kind(obj)
        if kind:
            torch_name = _NO_TWIN[name] if name in _NO_TWIN else f"torch.nn.{name}"
            rows[kind].append((f"nnumpy.nn.{name}", torch_name, _summary(obj)))
    for name in nn.init.__all__:
        rows["Initialisers"].append((f"nnumpy.nn.init.{name}", f"torch.nn.init.{name}", _summary(getattr(nn.init, name))))
    utils = getattr(nn, "utils", None)
    for name in getattr(utils, "__all__", ()):
        if isinstance(getattr(utils, name), type):        # (its exception classes are nnumpy's own)
            continue
        rows["Gradient utilities"].append((f"nnumpy.nn.utils.{name}", f"torch.nn.utils.{name}",
                                           _summary(getattr(utils, name))))
    for name in optim.__all__:
        obj = getattr(optim, name)
        if not isinstance(obj, type):
            continue
        if issubclass(obj, Optimizer) and obj is not Optimizer:
            rows["Optimizers"].append((f"nnumpy.optim.{name}", f"torch.optim.{name}", _summary(obj)))
        elif name.endswith("LR") or name == "ReduceLROnPlateau":
            rows["Schedulers"].append((f"nnumpy.optim.{name}", f"torch.optim.lr_scheduler.{name}", _summary(obj)))
    for name, torch_name in _TOOLS.items():
        if hasattr(nnumpy, name):
            rows["Training, checkpoints, files"].append((f"nnumpy.{name}", torch_name, _summary(getattr(nnumpy, name))))
    return [(section, *row) for section, items in rows.items() for row in items]


def markdown():
    """The table as Markdown (what the README quotes)."""
    lines = ["| nnumpy | PyTorch | what it is |", "|---|---|---|"]
    section = None
    for sec, name, torch_name, summary in offerings():
        if sec != section:
            lines.append(f"| **{sec}** | | |")
            section = sec
        summary = summary.replace("|", "\\|")
        lines.append(f"| `{name}` | {f'`{torch_name}`' if torch_name else '(none)'} | {summary} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
