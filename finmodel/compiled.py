"""How finmodel compiles its loops over periods: ``@kernel`` is numba's ``njit`` with the
settings every kernel shares.

* ``cache=True``: compiled once per machine into ``finmodel/__pycache__``; later processes load
  the machine code in about a second.
* ``nogil=True``: kernels release the GIL, so ``simulate`` can run chunks on threads.
* ``error_model="numpy"``: division follows numpy (inf or NaN, no exception), as the numpy code
  around the kernels does.

``fma_kernel`` also lets LLVM fuse a multiply and an add into one FMA instruction (one rounding
instead of two; none of fast-math's other assumptions): for chains of multiply-adds whose
latency is the cost, such as the IRR's polynomial evaluation.

Kernels work on rows (one path and factory, R = P x F): ``by_row`` and ``by_row_and_period``
lay arrays out for them.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

__all__ = ["by_row", "by_row_and_period", "fma_kernel", "kernel"]

kernel = njit(cache=True, nogil=True, error_model="numpy")
fma_kernel = njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})


def by_row(a: NDArray, shape: tuple[int, ...], dtype: type = float) -> NDArray:
    """``a`` broadcast to ``shape`` (e.g. (P, F)) as a contiguous (R,) array."""
    return np.ascontiguousarray(np.broadcast_to(a, shape), dtype=dtype).reshape(-1)


def by_row_and_period(a: NDArray, shape: tuple[int, ...], periods: int) -> NDArray:
    """``a`` broadcast to (*shape, periods) as a contiguous (R, T) array (a view if it is one)."""
    return np.ascontiguousarray(np.broadcast_to(a, (*shape, periods)),
                                dtype=float).reshape(-1, periods)
