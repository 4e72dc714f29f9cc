"""Modules: layers, activations, containers and losses, each with an explicit backward."""
from . import init, utils
from .activation import (ELU, GELU, Hardtanh, Identity, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax,
                         Softplus, Tanh)
from .container import ACTIVATIONS, MLP, Sequential
from .conv import Conv2d
from .layers import Dropout, Dropout2d, Flatten
from .linear import Linear
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, Loss, MSELoss,
                   MultiMarginLoss, NLLLoss, SmoothL1Loss)
from .module import IncompatibleKeys, Module, Parameter, StateDictError
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = [
    "Module", "Parameter", "StateDictError", "IncompatibleKeys",
    "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Flatten", "Dropout",
    "GELU", "ELU", "SiLU", "Softplus", "Hardtanh", "Softmax", "LogSoftmax",
    "Sequential", "MLP", "ACTIVATIONS",
    "Loss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "MultiMarginLoss",
    "MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss",
    "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "Dropout2d",
    "init", "utils",
]
