"""What the Numba kernels share: whether Numba is installed, and a guard for its side effect on
multiprocessing's start method (used by the NumPy reference's kernels and the fused training LIF)."""
from __future__ import annotations

import contextlib
import multiprocessing
from typing import Iterator

try:  # pragma: no cover - both branches exercised where they apply
    import numba
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    numba = None
    HAVE_NUMBA = False

__all__ = ["HAVE_NUMBA", "numba", "leave_start_method_unset"]


@contextlib.contextmanager
def leave_start_method_unset() -> Iterator[None]:
    """Numba's first parallel launch fixes multiprocessing's start method as a side effect (it asks for
    it); a later unforced ``set_start_method`` — Lava's, on import — would then fail with "context has
    already been set". Put back "unset" when it was unset before."""
    before = multiprocessing.get_start_method(allow_none=True)
    try:
        yield
    finally:
        if before is None and multiprocessing.get_start_method(allow_none=True) is not None:
            multiprocessing.set_start_method(None, force=True)
