"""What a training run and a sweep are made of, checked before anything runs.

:class:`RunConfig` holds everything that determines one training run and
checks every field's type and range (:meth:`RunConfig.validate`); a sweep
(a preset, or a TOML file read by :func:`load_sweep_config`) is a
``settings`` table and a list of ``variants``, and :func:`check_sweep`
builds the RunConfig of every learning rate of every variant up front, so
that no configuration error surfaces after training has started.  Every
problem is a :class:`ConfigError` naming the key and, for an unknown key,
listing the valid ones.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from .datasets import get_spec
from .nn import ACTIVATIONS

__all__ = ["ConfigError", "RunConfig", "PRESETS", "load_sweep_config", "check_sweep", "variant_config",
           "SETTINGS", "VARIANT_KEYS", "slug"]


class ConfigError(ValueError):
    """A run or sweep is configured wrongly (the command line exits with code 2)."""


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _finite_real(v):
    """Whether the real number ``v`` is finite as a float (an integer too large for one is not)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


@dataclass
class RunConfig:
    """Everything that determines a training run (same config, same numbers)."""

    arch: list | None = field(default_factory=lambda: [784, 100, 10])   # model "mlp" only
    activation: str | None = "relu"   # model "mlp" only
    model: str = "mlp"                # "mlp" (arch, activation) or a name from nnumpy.models.MODELS
    optimizer: str = "sgd"            # "sgd" (with momentum) or "adam"
    lr: float = 0.05
    momentum: float = 0.9             # SGD; Nesterov when > 0
    schedule: str = "cosine"          # "cosine" (to 0 over the epochs) or "constant"
    epochs: int = 20
    batch_size: int = 64
    val_fraction: float = 0.1
    seed: int = 0
    dataset: str = "mnist"
    data_root: str | None = None
    download: bool = True
    mirrors: list | None = None       # base URLs to download from instead of the dataset's own
    limit_train: int | None = None    # use only the first N training images (quick runs, tests)
    limit_test: int | None = None

    def validate(self):
        """Check every field (types and ranges); raise one ConfigError listing every problem."""
        p = []
        if self.model != "mlp":
            from .models import MODELS
            if not isinstance(self.model, str) or self.model not in MODELS:
                p.append(f"model must be 'mlp' or one of {sorted(MODELS)}, got {self.model!r}")
            if self.arch is not None or self.activation is not None:
                p.append(f"arch and activation describe the model 'mlp' only; the model {self.model!r} has its "
                         f"own layers (leave them out)")
        elif (not isinstance(self.arch, (list, tuple)) or len(self.arch) < 2
                or not all(_is_int(s) and s >= 1 for s in self.arch)):
            p.append(f"arch must be at least two positive integer layer sizes, got {self.arch!r}")
        elif self.arch[0] != 784:
            p.append(f"arch must start with 784 (28x28 images), got {self.arch[0]}")
        elif self.arch[-1] != 10:
            p.append(f"arch must end with 10 (classes), got {self.arch[-1]}")
        for name, choices in (("activation", sorted(ACTIVATIONS)), ("optimizer", ["sgd", "adam"]),
                              ("schedule", ["cosine", "constant"])):
            if name == "activation" and self.model != "mlp":
                continue
            if getattr(self, name) not in choices:
                p.append(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        if not (_is_real(self.lr) and _finite_real(self.lr) and self.lr > 0):
            p.append(f"lr must be a positive finite number, got {self.lr!r}")
        if not (_is_real(self.momentum) and 0 <= self.momentum < 1):
            p.append(f"momentum must lie in [0, 1), got {self.momentum!r}")
        for name in ("epochs", "batch_size"):
            if not (_is_int(getattr(self, name)) and getattr(self, name) >= 1):
                p.append(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not (_is_real(self.val_fraction) and 0 < self.val_fraction < 1):
            p.append(f"val_fraction must lie in (0, 1), got {self.val_fraction!r}")
        if not (_is_int(self.seed) and 0 <= self.seed < 2 ** 63):
            p.append(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.download, bool):
            p.append(f"download must be true or false, got {self.download!r}")
        if self.data_root is not None and not isinstance(self.data_root, str):
            p.append(f"data_root must be a folder name, got {self.data_root!r}")
        if self.mirrors is not None and (not isinstance(self.mirrors, (list, tuple))
                                         or not all(isinstance(m, str) for m in self.mirrors)):
            p.append(f"mirrors must be a list of URLs, got {self.mirrors!r}")
        for name, low in (("limit_train", 2), ("limit_test", 1)):
            v = getattr(self, name)
            if v is not None and not (_is_int(v) and v >= low):
                p.append(f"{name} must be an integer >= {low}, got {v!r}")
        try:
            get_spec(self.dataset)
        except ValueError as e:
            p.append(str(e))
        if p:
            raise ConfigError("; ".join(p))
        return self


#: The keys of a sweep's [settings] table: RunConfig's fields that a sweep shares, and the tuning epochs.
SETTINGS = ("epochs", "tune_epochs", "batch_size", "optimizer", "momentum", "schedule", "val_fraction", "seed",
            "dataset", "data_root", "download", "mirrors", "limit_train", "limit_test")
#: The keys of a [[variants]] table (activation is optional: relu).
VARIANT_KEYS = ("name", "arch", "activation", "model", "lrs")

#: The practical's exercise 2: at least five architectures, ReLU and sigmoid, batch 64.
PRESETS = {
    "practical": {
        "settings": {"epochs": 20, "tune_epochs": 3, "batch_size": 64, "optimizer": "sgd", "momentum": 0.9,
                     "val_fraction": 0.1, "seed": 0, "dataset": "mnist"},
        "variants": [
            {"name": "A 784-100-10 relu", "arch": "784-100-10", "activation": "relu",
             "lrs": [0.01, 0.03, 0.1, 0.3]},
            {"name": "B 784-300-100-10 relu", "arch": "784-300-100-10", "activation": "relu",
             "lrs": [0.01, 0.03, 0.1, 0.3]},
            {"name": "C 784-100-200-50-10 relu", "arch": "784-100-200-50-10", "activation": "relu",
             "lrs": [0.01, 0.03, 0.1, 0.3]},
            {"name": "D 784-100-200-50-10 sigmoid", "arch": "784-100-200-50-10", "activation": "sigmoid",
             "lrs": [0.03, 0.1, 0.3, 1.0]},
            {"name": "E 784-500-150-10 relu", "arch": "784-500-150-10", "activation": "relu",
             "lrs": [0.01, 0.03, 0.1, 0.3]},
            {"name": "F 784-300-10 sigmoid", "arch": "784-300-10", "activation": "sigmoid",
             "lrs": [0.03, 0.1, 0.3, 1.0]},
        ],
    },
}


def _unknown(keys, valid, where):
    extra = [k for k in keys if k not in valid]
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, extra))}; valid keys: "
                          f"{', '.join(valid)}")


def slug(name):
    """The folder name of a variant: letters, digits, '-', '_' and '.' kept, the rest '_'."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("_.")


def _arch(variant, where):
    arch = variant["arch"]
    if isinstance(arch, str):
        try:
            return [int(s) for s in arch.split("-")]
        except ValueError:
            pass
    elif isinstance(arch, list) and all(_is_int(s) for s in arch):
        return list(arch)
    raise ConfigError(f"{where}: arch must look like \"784-100-10\" (or a list of integers), got {arch!r}")


def variant_config(variant, settings, overrides, lr, epochs):
    """The validated RunConfig of one learning rate of one variant."""
    base = {k: v for k, v in {**settings, **overrides}.items() if k != "tune_epochs"}
    where = f"variant {variant['name']!r}"
    model = variant.get("model", "mlp")
    if model == "mlp":
        arch = {"arch": _arch(variant, where), "activation": variant.get("activation", "relu")}
    else:
        arch = {"arch": variant.get("arch"), "activation": variant.get("activation"), "model": model}
    cfg = RunConfig(**{**base, **arch, "lr": lr, "epochs": epochs})
    try:
        return cfg.validate()
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def check_sweep(spec, overrides=None, where="sweep"):
    """Check a whole sweep before anything runs: the keys and types of its
    settings and variants, variant names (distinct folder names, no path
    separators or '..'), and the RunConfig of every learning rate of every
    variant.  Returns ``(settings, variants)`` with defaults filled in
    (tune_epochs 3, epochs 20)."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: a sweep is a [settings] table and [[variants]] tables")
    _unknown(spec, ("settings", "variants"), where)
    settings, variants = spec.get("settings", {}), spec.get("variants")
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: [settings] must be a table, got {settings!r}")
    _unknown(settings, SETTINGS, f"{where} [settings]")
    settings = {"tune_epochs": 3, "epochs": 20, **settings}
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError(f"{where}: overrides must be a dict of settings, got {overrides!r:.60}")
    _unknown(overrides or {}, SETTINGS, f"{where} overrides")
    for name in ("tune_epochs", "epochs"):
        v = {**settings, **(overrides or {})}[name]
        if not (_is_int(v) and v >= 1):
            raise ConfigError(f"{where}: {name} must be a positive integer, got {v!r}")
    if not isinstance(variants, list) or not variants:
        raise ConfigError(f"{where}: no [[variants]] tables (each with name, arch and activation, or model, and lrs)")
    folders = {}
    for i, v in enumerate(variants, 1):
        at = f"{where} variant {i}"
        if not isinstance(v, dict):
            raise ConfigError(f"{at}: must be a table with keys {', '.join(VARIANT_KEYS)}, got {v!r}")
        _unknown(v, VARIANT_KEYS, at)
        needed = ("name", "arch", "lrs") if v.get("model", "mlp") == "mlp" else ("name", "lrs")
        missing = [k for k in needed if k not in v]
        if missing:
            raise ConfigError(f"{at}: missing key(s) {', '.join(missing)}")
        name = v["name"]
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{at}: name must be a non-empty string, got {name!r}")
        if "/" in name or "\\" in name or ".." in name or not slug(name):
            raise ConfigError(f"{at}: name {name!r} cannot name a folder (no '/', '\\' or '..', and at least "
                              f"one letter or digit)")
        if slug(name) in folders:
            raise ConfigError(f"{at}: names {folders[slug(name)]!r} and {name!r} both map to the folder "
                              f"variants/{slug(name)}; give them distinct names")
        folders[slug(name)] = name
        if len(slug(name)) > 100:
            raise ConfigError(f"{at}: name {name[:40]!r}... is longer than 100 characters (it names a folder)")
        lrs = v["lrs"]
        if not isinstance(lrs, list) or not lrs or not all(_is_real(lr) for lr in lrs):
            raise ConfigError(f"{at} ({name!r}): lrs must be a non-empty list of numbers, got {lrs!r}")
        if all(_finite_real(lr) for lr in lrs):
            seen = [float(lr) for lr in lrs]
            twice = sorted({lr for lr in seen if seen.count(lr) > 1})
            if twice:
                raise ConfigError(f"{at} ({name!r}): lrs lists {', '.join(f'{lr:g}' for lr in twice)} more than once "
                                  f"(each learning rate is one trial)")
        for lr in lrs:
            for epochs_key in ("tune_epochs", "epochs"):
                variant_config(v, settings, overrides or {}, lr, {**settings, **(overrides or {})}[epochs_key])
    return settings, variants


def load_sweep_config(path):
    """A sweep from a TOML file: a ``[settings]`` table (keys: :data:`SETTINGS`)
    and ``[[variants]]`` tables (keys: :data:`VARIANT_KEYS`), checked by
    :func:`check_sweep`."""
    try:
        import tomllib
    except ImportError:                   # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            spec = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    check_sweep(spec, where=str(path))
    return {"settings": spec.get("settings", {}), "variants": spec["variants"]}
