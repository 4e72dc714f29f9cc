"""Modules: layers, activations, containers and losses, each with an explicit backward."""
from . import init
from .activation import Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from .container import ACTIVATIONS, MLP, Sequential
from .conv import Conv2d
from .layers import Dropout, Dropout2d, Flatten
from .linear import Linear
from .loss import CrossEntropyLoss, Loss, MSELoss
from .module import IncompatibleKeys, Module, Parameter, StateDictError
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = [
    "Module", "Parameter", "StateDictError", "IncompatibleKeys",
    "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Flatten", "Dropout",
    "Sequential", "MLP", "ACTIVATIONS",
    "Loss", "CrossEntropyLoss", "MSELoss",
    "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "Dropout2d",
    "init",
]
