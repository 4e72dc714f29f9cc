"""Containers: ``Sequential`` and the ``MLP`` builder."""
from __future__ import annotations

from ..random import resolve_rng
from .activation import Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from .layers import Dropout
from .linear import Linear
from .module import Module, as_float_dtype

__all__ = ["Sequential", "MLP", "ACTIVATIONS"]

#: Activation names accepted by :class:`MLP`.
ACTIVATIONS = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "identity": Identity,
}


class Sequential(Module):
    """Modules applied in order: ``y = f_k(...f_1(x))``.

    Backward is the chain rule run in reverse:
    ``dx = f_1.backward(... f_k.backward(dy))``.  Children are registered as
    "0", "1", ..., so parameter names match ``torch.nn.Sequential``.
    """

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(*mods[idx])
        return mods[idx]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, dy):
        for m in reversed(self._modules.values()):
            dy = m.backward(dy)
        return dy


class MLP(Sequential):
    """A multilayer perceptron from its layer sizes.

    ``MLP([784, 100, 200, 50, 10])`` is ``Sequential(Linear(784, 100), ReLU(),
    Linear(100, 200), ReLU(), Linear(200, 50), ReLU(), Linear(50, 10))``: no
    activation after the last layer (losses take logits).  With ``dropout >
    0`` a ``Dropout`` follows each hidden activation, as it would in the
    equivalent PyTorch stack, so the state-dict keys match that stack.

    activation: a name from :data:`ACTIVATIONS`, or a list with one name per
    hidden layer.  ``rng``: an int seed or Generator for the initial weights
    (and dropout masks); the same seed gives the same model.
    """

    def __init__(self, sizes, activation="relu", dropout=0.0, bias=True, dtype=None, rng=None):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"MLP needs at least two positive layer sizes (input and output), got {sizes}")
        n_hidden = len(sizes) - 2
        acts = [activation] * n_hidden if isinstance(activation, str) else list(activation)
        if len(acts) != n_hidden:
            raise ValueError(f"MLP with sizes {sizes} has {n_hidden} hidden layer(s) but "
                             f"{len(acts)} activation(s) were given")
        for a in acts:
            if a not in ACTIVATIONS:
                raise ValueError(f"unknown activation {a!r}; choose from {sorted(ACTIVATIONS)}")
        dropout = float(dropout)
        dt = as_float_dtype(dtype)
        gen = resolve_rng(rng)
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(Linear(sizes[i], sizes[i + 1], bias=bias, dtype=dt, rng=gen))
            if i < n_hidden:
                layers.append(ACTIVATIONS[acts[i]]())
                if dropout > 0:
                    layers.append(Dropout(dropout, rng=gen))
        super().__init__(*layers)
        self.sizes = sizes
        self.activations = acts
        self.dropout = dropout
        self.bias = bool(bias)

    def get_config(self):
        return {"sizes": self.sizes, "activation": self.activations, "dropout": self.dropout,
                "bias": self.bias}
