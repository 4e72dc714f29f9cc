"""Ready-made networks for the practicals: LeNet-5 and a small CNN with batch norm.

Each builder returns a plain :class:`~nnumpy.nn.Sequential` whose children
are registered "0", "1", ..., so its state dict has the keys of the same
``torch.nn.Sequential`` and weights move both ways without renaming::

    >>> import nnumpy as nnp
    >>> model = nnp.models.lenet5(rng=0)          # input (N, 1, 28, 28) -> logits (N, 10)

:data:`MODELS` maps the names that ``nnumpy train --model NAME`` accepts to
their builders.
"""
from __future__ import annotations

from ._checks import ArgumentTypeError, describe, positive_int
from .nn import (ACTIVATIONS, AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d,
                 Sequential)
from .nn.module import as_float_dtype
from .random import resolve_rng

__all__ = ["lenet5", "small_cnn", "MODELS", "build_model"]


def _activation(name, owner):
    if not isinstance(name, str) or name not in ACTIVATIONS:   # (a list is not hashable: test the type first)
        raise ValueError(f"{owner}: activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


def lenet5(activation="relu", pool="max", num_classes=10, in_channels=1, dtype=None, rng=None, init=True,
           input_grad=False):
    """LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998) in its common modern form,
    for 28x28 images (N, in_channels, 28, 28) -> logits (N, num_classes)::

        C1  Conv2d(in_channels, 6, 5, padding=2)   (N, 6, 28, 28)    the 2-pixel border
            act, S2 pool 2x2                        (N, 6, 14, 14)    gives MNIST's 28x28 the
        C3  Conv2d(6, 16, 5)                        (N, 16, 10, 10)   paper's 32x32 input
            act, S4 pool 2x2                        (N, 16, 5, 5)
            Flatten                                 (N, 400)
        C5  Linear(400, 120), act                   (N, 120)          (a 5x5 convolution on 5x5 maps
        F6  Linear(120, 84), act                    (N, 84)           is a fully connected layer)
            Linear(84, num_classes)                 (N, num_classes)  logits (the paper: RBF units)

    61,706 parameters for 10 classes.  The paper's network differs in ways
    that do not change its size much: a scaled tanh, trainable sub-sampling
    (average pooling times a coefficient plus a bias), a sparse C3 connection
    table and Euclidean RBF outputs.  ``activation="tanh", pool="avg"`` is the
    closest form; the default ReLU and max pooling train faster.

    input_grad: False by default, since the images need no gradient (the first
    convolution's ``dx`` is skipped; see :class:`~nnumpy.nn.Sequential`).
    """
    act = _activation(activation, "lenet5")
    if pool not in ("max", "avg"):
        raise ValueError(f"lenet5: pool must be 'max' or 'avg', got {pool!r}")
    Pool = MaxPool2d if pool == "max" else AvgPool2d
    num_classes = positive_int("num_classes", num_classes, owner="lenet5")
    in_channels = positive_int("in_channels", in_channels, owner="lenet5")
    dt, gen = as_float_dtype(dtype), resolve_rng(rng)
    kw = {"dtype": dt, "rng": gen, "init": init}
    return Sequential(
        Conv2d(in_channels, 6, 5, padding=2, **kw), act(), Pool(2),
        Conv2d(6, 16, 5, **kw), act(), Pool(2),
        Flatten(),
        Linear(16 * 5 * 5, 120, **kw), act(),
        Linear(120, 84, **kw), act(),
        Linear(84, num_classes, **kw),
        input_grad=input_grad)


def small_cnn(channels=(16, 32, 32), num_classes=10, in_channels=1, dtype=None, rng=None, init=True,
              input_grad=False):
    """A small modern CNN with batch normalisation, for 28x28 images::

        [Conv2d(c_in, c, 3, padding=1, bias=False), BatchNorm2d(c), ReLU, MaxPool2d(2)]   per stage but the last
        [Conv2d(c_in, c, 3, padding=1, bias=False), BatchNorm2d(c), ReLU]                 the last stage
        AdaptiveAvgPool2d(1), Flatten, Linear(channels[-1], num_classes)

    With the default three stages: 28x28 -> 14x14 -> 7x7 -> global average ->
    logits.  The convolutions have no bias: the batch norm after them
    subtracts the mean, which would cancel it.
    """
    if not isinstance(channels, (list, tuple)):
        raise ArgumentTypeError(f"small_cnn: channels must be a list of channel counts such as [16, 32, 32], "
                                f"got {describe(channels)}")
    channels = [positive_int(f"channels[{i}]", c, owner="small_cnn") for i, c in enumerate(channels)]
    if not channels:
        raise ValueError("small_cnn: channels must name at least one stage")
    num_classes = positive_int("num_classes", num_classes, owner="small_cnn")
    c_in = positive_int("in_channels", in_channels, owner="small_cnn")
    dt, gen = as_float_dtype(dtype), resolve_rng(rng)
    layers = []
    for i, c in enumerate(channels):
        layers += [Conv2d(c_in, c, 3, padding=1, bias=False, dtype=dt, rng=gen, init=init),
                   BatchNorm2d(c, dtype=dt), ACTIVATIONS["relu"]()]
        if i < len(channels) - 1:
            layers.append(MaxPool2d(2))
        c_in = c
    layers += [AdaptiveAvgPool2d(1), Flatten(), Linear(c_in, num_classes, dtype=dt, rng=gen, init=init)]
    return Sequential(*layers, input_grad=input_grad)


#: name -> (builder, input shape of one sample, description); the names of ``nnumpy train --model``.
MODELS = {
    "lenet5": (lenet5, (1, 28, 28), "LeNet-5: conv 6@5x5, pool, conv 16@5x5, pool, 120, 84, 10 (ReLU, max pool)"),
    "lenet5-classic": (lambda **kw: lenet5(activation="tanh", pool="avg", **kw), (1, 28, 28),
                       "LeNet-5 as in 1998 (tanh, average pooling)"),
    "small-cnn": (small_cnn, (1, 28, 28), "3 conv stages (16, 32, 32) with batch norm, global average pool"),
}


def build_model(name, dtype=None, rng=None, init=True, input_grad=False):
    """The network :data:`MODELS` names ``name``, built with the given dtype and seed."""
    if not isinstance(name, str):
        raise ArgumentTypeError(f"build_model: the model's name must be a string such as 'lenet5', got "
                                f"{describe(name)}")
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    return MODELS[name][0](dtype=dtype, rng=rng, init=init, input_grad=input_grad)
