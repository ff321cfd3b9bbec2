"""SGD's update of a weight matrix inside the product that computes its gradient: one BLAS call.

The textbook step writes dW = x.T @ delta into a buffer and then makes a second pass, W -= lr dW.
BLAS's gemm computes C = alpha A B + beta C, so with the learning rate already in delta
(engine/fast/optim.py: SGD's grad_scale) the whole update is one call, W = beta W - x.T @ delta, and
W is read and written once instead of the gradient being written, read back and W read and
written (beta = 1 - lr * L2, which is SGD's weight decay). NumPy's matmul has no alpha and beta,
so `weight_update` calls gemm in NumPy's own BLAS, found through NumPy's extension module: the
library whose threads NumPy runs and threadpoolctl limits. (A second BLAS, such as SciPy's,
brings a second pool of threads that spin against the first: an epoch took 16 s instead of 0.6.)
Where that library cannot be found, `available()` is False and the step updates as before.
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

# gemm's names in the BLAS builds NumPy ships with or links to, and their integer width: NumPy's
# wheels bundle OpenBLAS with 64-bit integers and its symbols prefixed; a NumPy built against a
# system BLAS (OpenBLAS, MKL, BLIS) has the plain CBLAS names.
_NAMES = (("scipy_cblas_{}gemm64_", ctypes.c_int64), ("cblas_{}gemm64_", ctypes.c_int64),
          ("cblas_{}gemm", ctypes.c_int))


@cache
def _gemms() -> dict[np.dtype, ctypes._CFuncPtr]:
    """float32 and float64 gemm of NumPy's BLAS, or {} if it cannot be found."""
    try:
        from numpy._core import _multiarray_umath
        numpy_module = ctypes.CDLL(_multiarray_umath.__file__)  # its symbols, then its libraries'
    except (ImportError, OSError, AttributeError):
        return {}
    for pattern, integer in _NAMES:
        try:
            found = {np.dtype(np.float32): getattr(numpy_module, pattern.format("s")),
                     np.dtype(np.float64): getattr(numpy_module, pattern.format("d"))}
        except AttributeError:
            continue
        for dtype, gemm in found.items():
            real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
            gemm.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer, integer, real,
                             ctypes.c_void_p, integer, ctypes.c_void_p, integer, real, ctypes.c_void_p, integer]
            gemm.restype = None
        return found
    return {}


def available() -> bool:
    return bool(_gemms())


def _leading(a: np.ndarray, dtype: np.dtype) -> int | None:
    """gemm's leading dimension for a 2-D row-major array of `dtype` (its row stride in elements), or None where
    gemm cannot read it so: rows not contiguous, overlapping or backwards, another dtype, nothing in it."""
    if a.ndim != 2 or a.dtype != dtype or a.size == 0:
        return None
    rows, cols = a.shape
    if cols > 1 and a.strides[1] != a.itemsize:
        return None
    if rows == 1:  # NumPy may give a single row any stride
        return cols
    step, rest = divmod(a.strides[0], a.itemsize)
    return step if rest == 0 and step >= cols else None


def weight_update(x: np.ndarray, delta: np.ndarray, W: np.ndarray, beta: float = 1.0) -> bool:
    """W = beta W - x.T @ delta in place, for x: (batch, n_in), delta: (batch, n_out), W: (n_in, n_out).

    Returns False, changing nothing, where it cannot (no BLAS found, another dtype, a layout gemm
    cannot read, x or delta overlapping W): the caller then updates with NumPy.
    """
    gemm = _gemms().get(W.dtype)
    lx, ld, lw = (_leading(a, W.dtype) for a in (x, delta, W))
    if gemm is None or None in (lx, ld, lw) or not W.flags.writeable \
            or not all(a.flags.aligned for a in (x, delta, W)) \
            or x.shape[1] != W.shape[0] or delta.shape != (x.shape[0], W.shape[1]) \
            or np.may_share_memory(W, x) or np.may_share_memory(W, delta):  # gemm's C must not overlap A or B
        return False
    n_in, n_out = W.shape
    gemm(_ROW_MAJOR, _TRANS, _NO_TRANS, n_in, n_out, x.shape[0], -1.0, x.ctypes.data, lx,
         delta.ctypes.data, ld, beta, W.ctypes.data, lw)
    return True
