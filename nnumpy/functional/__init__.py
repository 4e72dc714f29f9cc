"""Pure forward/backward pairs: the mathematics of every layer, with no state.

One room per family of layers, all re-exported here (``nnumpy.functional.X``):

* :mod:`~nnumpy.functional.dense`: linear, element-wise activations, dropout,
  softmax cross-entropy, MSE;
* :mod:`~nnumpy.functional.conv`: 2-d convolution (im2col and col2im);
* :mod:`~nnumpy.functional.pool`: max, average and adaptive average pooling;
* :mod:`~nnumpy.functional.norm`: batch, layer and group normalisation,
  channel dropout;
* :mod:`~nnumpy.functional.activation`: GELU, ELU, SiLU, Softplus,
  Hardtanh, and softmax / log-softmax along any dimension;
* :mod:`~nnumpy.functional.loss`: NLL, binary cross-entropy (on probabilities
  and on logits), multi-class margin, L1, Huber and smooth L1 losses (softmax
  cross-entropy and MSE are in ``dense``).

Each ``*_forward`` function computes a layer's output and returns what its
``*_backward`` partner needs; each ``*_backward`` function takes the upstream
gradient ``dy = dL/dy`` (same shape as the forward output) and returns the
gradients with respect to the inputs.  Nothing here mutates its arguments.
This plain NumPy is the reference that the numba kernels are tested against.
"""
from .dense import *  # noqa: F401,F403
from .dense import __all__ as _dense_all

__all__ = list(_dense_all)

from .conv import *  # noqa: F401,F403,E402
from .conv import __all__ as _conv_all  # noqa: E402
from .pool import *  # noqa: F401,F403,E402
from .pool import __all__ as _pool_all  # noqa: E402

__all__ += list(_conv_all) + list(_pool_all)

from .norm import *  # noqa: F401,F403,E402
from .norm import __all__ as _norm_all  # noqa: E402

__all__ += list(_norm_all)

from .activation import *  # noqa: F401,F403,E402
from .activation import __all__ as _activation_all  # noqa: E402

__all__ += list(_activation_all)

from .loss import *  # noqa: F401,F403,E402
from .loss import __all__ as _loss_all  # noqa: E402

__all__ += list(_loss_all)
