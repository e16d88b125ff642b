"""How finmodel compiles its loops over periods: ``@kernel`` is numba's ``njit`` with the
settings every kernel shares.

* ``cache=True``: compiled once per machine into ``finmodel/__pycache__``; later processes load
  the machine code in about a second.
* ``nogil=True``: kernels release the GIL, so ``simulate`` can run chunks on threads.
* ``error_model="numpy"``: division follows numpy (inf or NaN, no exception), as the numpy code
  around the kernels does.
"""

from __future__ import annotations

from numba import njit

__all__ = ["kernel"]

kernel = njit(cache=True, nogil=True, error_model="numpy")
