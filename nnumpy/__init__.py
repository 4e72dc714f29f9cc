"""nnumpy: neural networks in pure NumPy, every backward pass written out by hand.

    >>> import numpy as np, nnumpy as nnp
    >>> model = nnp.MLP([784, 100, 10], rng=0)
    >>> crit, opt = nnp.CrossEntropyLoss(), nnp.optim.SGD(model.parameters(), lr=0.1)
    >>> x, y = np.zeros((64, 784), np.float32), np.zeros(64, np.int64)
    >>> loss = crit(model(x), y)            # forward
    >>> dx = model.backward(crit.backward())  # backward, by hand
    >>> opt.step()
"""
__version__ = "0.1.0"

from . import backend, functional, interop, nn, optim, testing
from ._checks import ArgumentTypeError
from .backend import get_backend, set_backend
from .datasets.splits import iterate_minibatches, train_val_split
from .functional import one_hot
from .gradcheck import GradcheckReport, gradcheck
from .nn import (MLP, AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, CrossEntropyLoss, Dropout,
                 Dropout2d, Flatten, GroupNorm, Identity, LayerNorm, LeakyReLU, Linear, MaxPool2d, Module, MSELoss,
                 Parameter, ReLU, Sequential, Sigmoid, StateDictError, Tanh)
from .nn import ELU, GELU, Hardtanh, LogSoftmax, SiLU, Softmax, Softplus
from .nn import BCELoss, BCEWithLogitsLoss, HuberLoss, L1Loss, MultiMarginLoss, NLLLoss, SmoothL1Loss
from . import models  # noqa: E402  (after nn: the builders use its layers)
from .random import manual_seed
from .serialization import ModelFileError, load, register_module, save
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .summary import Summary, summary
from .training import History, ResumeError, StopTraining, TrainingDivergedError, TrainingInterrupted, evaluate, fit, predict

__all__ = [
    "backend", "get_backend", "set_backend", "functional", "interop", "nn", "optim", "testing",
    "Module", "Parameter", "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Flatten",
    "Dropout", "Sequential", "MLP", "CrossEntropyLoss", "MSELoss", "one_hot", "StateDictError",
    "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm",
    "GroupNorm", "Dropout2d", "models",
    "GELU", "ELU", "SiLU", "Softplus", "Hardtanh", "Softmax", "LogSoftmax",
    "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "MultiMarginLoss", "L1Loss", "HuberLoss", "SmoothL1Loss",
    "fit", "evaluate", "predict", "History", "TrainingDivergedError", "TrainingInterrupted", "StopTraining", "ResumeError",
    "save_checkpoint", "load_checkpoint", "Checkpoint", "CheckpointError",
    "iterate_minibatches", "train_val_split",
    "summary", "Summary", "save", "load", "ModelFileError", "register_module", "gradcheck", "GradcheckReport",
    "manual_seed", "ArgumentTypeError",
]
