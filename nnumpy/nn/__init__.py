"""Modules: layers, activations, containers and losses, each with an explicit backward."""
from .activation import Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from .container import ACTIVATIONS, MLP, Sequential
from .layers import Dropout, Flatten
from .linear import Linear
from .loss import CrossEntropyLoss, Loss, MSELoss
from .module import IncompatibleKeys, Module, Parameter, StateDictError

__all__ = [
    "Module", "Parameter", "StateDictError", "IncompatibleKeys",
    "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Flatten", "Dropout",
    "Sequential", "MLP", "ACTIVATIONS",
    "Loss", "CrossEntropyLoss", "MSELoss",
]
