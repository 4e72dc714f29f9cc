"""Optimizers (in-place updates, PyTorch's formulas) and learning-rate schedulers."""
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .lr_scheduler import (CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR, LRScheduler, MultiStepLR,
                           OneCycleLR, ReduceLROnPlateau, SequentialLR, StepLR)
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "LRScheduler", "StepLR", "CosineAnnealingLR",
           "LambdaLR", "MultiStepLR", "ExponentialLR", "LinearLR", "SequentialLR", "OneCycleLR", "ReduceLROnPlateau"]
