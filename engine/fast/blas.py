"""SGD's update of a weight matrix inside the product that computes its gradient: one BLAS call; and
an optimizer's multiply-adds (y = a x + b y) in one pass instead of two.

The textbook step writes dW = x.T @ delta into a buffer and then makes a second pass, W -= lr dW.
BLAS's gemm computes C = alpha A B + beta C, so with the learning rate already in delta
(engine/fast/optim.py: SGD's grad_scale) the whole update is one call, W = beta W - x.T @ delta, and
W is read and written once instead of the gradient being written, read back and W read and
written (beta = 1 - lr * L2, which is SGD's weight decay). NumPy's matmul has no alpha and beta,
so `weight_update` calls gemm in NumPy's own BLAS, found through NumPy's extension module: the
library whose threads NumPy runs and threadpoolctl limits. (A second BLAS, such as SciPy's,
brings a second pool of threads that spin against the first: an epoch took 16 s instead of 0.6.)
Where that library cannot be found, `available()` is False and the step updates as before.

The optimizers' moments and updates are the same shape of sum: Adam's m = b1 m + g and p -= c u,
momentum's v = mu v + g. NumPy needs two passes over memory for each (a multiply, then an add),
BLAS's axpby one (and axpy, its b = 1 case, shares long vectors between BLAS's threads): `scaled_add`.
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


# Below this many elements (of W, or of y) the functions here decline: NumPy's extra pass over memory costs less
# than a call through ctypes (5-10 us with its checks and pointers). Measured, 64-row batches: a 128x64 layer's
# update 19 us fused against 12 us with NumPy, a 256x128 one 35 against 36, a 717x256 one 137 against 181.
MIN_SIZE = 16_384

_DTYPES = {np.dtype(np.float32): ("s", ctypes.c_float), np.dtype(np.float64): ("d", ctypes.c_double)}


@cache
def _functions() -> dict[str, dict[np.dtype, ctypes._CFuncPtr]]:
    """NumPy's BLAS's gemm, axpby and axpy for float32 and float64 ({"gemm": {dtype: function}, ...}), as far as
    they are found: {} without gemm; axpby (an extension, not in every CBLAS) may be missing."""
    try:
        from numpy._core import _multiarray_umath
        numpy_module = ctypes.CDLL(_multiarray_umath.__file__)  # its symbols, then its libraries'
    except (ImportError, OSError, AttributeError):
        return {}
    ptr = ctypes.c_void_p
    for pattern, integer in _NAMES:
        found: dict[str, dict[np.dtype, ctypes._CFuncPtr]] = {}
        for routine in ("gemm", "axpby", "axpy"):
            for dtype, (letter, real) in _DTYPES.items():
                function = getattr(numpy_module, pattern.replace("gemm", routine).format(letter), None)
                if function is None:
                    continue
                function.argtypes = {
                    "gemm": [ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer, integer, real, ptr, integer,
                             ptr, integer, real, ptr, integer],
                    "axpby": [integer, real, ptr, integer, real, ptr, integer],
                    "axpy": [integer, real, ptr, integer, ptr, integer]}[routine]
                function.restype = None
                found.setdefault(routine, {})[dtype] = function
        if len(found.get("gemm", ())) == len(_DTYPES):
            return found
    return {}


def _gemms() -> dict[np.dtype, ctypes._CFuncPtr]:
    """float32 and float64 gemm of NumPy's BLAS, or {} if it cannot be found."""
    return _functions().get("gemm", {})


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


def weight_update(x: np.ndarray, delta: np.ndarray, W: np.ndarray, beta: float = 1.0,
                  min_size: int = MIN_SIZE) -> bool:
    """W = beta W - x.T @ delta in place, for x: (batch, n_in), delta: (batch, n_out), W: (n_in, n_out).

    Returns False, changing nothing, where it cannot (no BLAS found, another dtype, a layout gemm
    cannot read, x or delta overlapping W) or where it would not pay (W under `min_size` weights): the
    caller then updates with NumPy.
    """
    if W.size < min_size:
        return False
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


def scaled_add(a: float, x: np.ndarray, b: float, y: np.ndarray, min_size: int = MIN_SIZE) -> bool:
    """y = a x + b y in place, one pass over memory (axpy where b is 1, else axpby), for arrays of one shape and dtype.

    Returns False, changing nothing, where it cannot (no such BLAS routine found, another dtype or shape, either
    array not contiguous, y read-only, x and y overlapping), where it would not pay (y under `min_size`
    elements) or where a factor is 0: BLAS then skips reading x or y, and a NaN or inf there would vanish instead of
    spreading as NumPy's 0 * inf = NaN does (a diverging run must stay visible). The caller then computes it with
    NumPy.
    """
    if y.size < min_size or a == 0 or b == 0:
        return False
    routine = "axpy" if b == 1 else "axpby"
    function = _functions().get(routine, {}).get(y.dtype)
    if function is None or x.dtype != y.dtype or x.shape != y.shape or not y.flags.writeable \
            or not (x.flags.c_contiguous and y.flags.c_contiguous and x.flags.aligned and y.flags.aligned) \
            or np.may_share_memory(x, y):
        return False
    if routine == "axpy":
        function(y.size, a, x.ctypes.data, 1, y.ctypes.data, 1)
    else:
        function(y.size, a, x.ctypes.data, 1, b, y.ctypes.data, 1)
    return True
