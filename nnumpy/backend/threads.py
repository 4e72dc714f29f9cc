"""Who uses the cores while a convolutional network runs on the numba backend.

The convolution kernels (:mod:`nnumpy.backend.numba_conv`) spread each batch
over ``numba.get_num_threads()`` threads themselves.  OpenBLAS keeps threads
of its own, which spin for a while after every multi-threaded GEMM, waiting
for the next one; next to the kernels' threads they take the cores the
kernels need.  Measured on a 2-core machine, one LeNet-5 training step took
2.6 ms with BLAS on one thread and 4.2 to 4.5 ms with BLAS on two (and far
longer on a loaded machine).  So while a ``Sequential`` that holds a
``Conv2d`` runs forward or backward on the numba backend, BLAS is held to one
thread (the GEMMs of such a network are small: per-sample im2col products
and narrow fully connected layers) and restored afterwards; MLPs keep BLAS's
own threading.  The switch costs about 2 microseconds
(:mod:`threadpoolctl`'s handle on the BLAS library, made once).

Results do not depend on it: the conv kernels sum in a fixed order for any
thread count, and the per-sample GEMMs are below OpenBLAS's threading
threshold anyway.
"""
from __future__ import annotations

import contextlib

__all__ = ["single_threaded_blas"]

_libraries = []
_state = {"found": False}


def _blas_libraries():
    """threadpoolctl's controllers of the BLAS libraries loaded in this process (made once)."""
    if not _state["found"]:
        try:
            from threadpoolctl import ThreadpoolController
            _libraries.extend(ThreadpoolController().select(user_api="blas").lib_controllers)
        except (ImportError, OSError, AttributeError, ValueError):  # no threadpoolctl, or a BLAS it
            pass                                                      # cannot drive: leave BLAS alone
        _state["found"] = True
    return _libraries


@contextlib.contextmanager
def single_threaded_blas(active=True):
    """BLAS on one thread inside the block (when ``active``), as it was afterwards."""
    libs = _blas_libraries() if active else ()
    saved = [lib.num_threads for lib in libs]
    try:
        for lib, n in zip(libs, saved):
            if n != 1:
                lib.set_num_threads(1)
        yield
    finally:
        for lib, n in zip(libs, saved):
            if n != 1:
                lib.set_num_threads(n)
