"""Event-driven synaptic currents: ``J = W ⊛ x`` accumulating only the inputs that are not zero.

After the first layer a spiking net's inputs are spikes, mostly silent (the shipped MNIST net:
8-10% of layer-1 neurons spike per step). A dense GEMM multiplies every zero; building its
im2col patch matrix for all T steps is the larger cost. This kernel walks each output position's
receptive field and, for every input ``x != 0``, adds ``x · W[ky, kx, c, :]`` to the position's
C_out accumulators::

    J[n, oy, ox, o] = Σ_{ky, kx, c : x[n, oy·sy+ky, ox·sx+kx, c] ≠ 0}  x[...] · W[ky, kx, c, o]

Integers only: products and sums in the weight's dtype, int32 where the layer's current bound
(Σ|W|·max|x|, :meth:`~qsnn_deploy.frozen.Layer.current_bound`) proves every partial sum below
2**31, int64 otherwise (``FrozenNet.validate`` keeps |J| far below 2**62); exact for any summation
order and on any CPU. A dense layer
is the 1×1 case (one position, fan-in = C). Runs with Numba (parallel over samples × steps);
:func:`event_currents_available` says whether it can run here.
"""
from __future__ import annotations

import numpy as np

from .lif_scan import HAVE_NUMBA, leave_start_method_unset, numba

#: Use the event kernel when at most this fraction of the inputs is non-zero (above it a float
#: GEMM over im2col patches is faster on these CPUs).
MAX_DENSITY = 0.3


def event_currents_available() -> bool:
    """True when Numba is installed, so the event-driven kernels can run (the NumPy simulator's default)."""
    return HAVE_NUMBA


def event_conv(x: np.ndarray, weight: np.ndarray, stride: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Exact integer conv of channels-last input ``x`` [N, H, W, C] (already zero-padded; any integer
    dtype) with ``weight`` [kh, kw, C, C_out] (int32 or int64, the accumulator type) at ``stride``; returns int64 [N, Ho, Wo, C_out]."""
    n = x.shape[0]
    ho, wo = out_hw
    out = np.empty((n, ho, wo, weight.shape[3]), dtype=np.int64)
    if n:
        with leave_start_method_unset():
            _conv_kernel(np.ascontiguousarray(x), np.ascontiguousarray(weight), int(stride[0]), int(stride[1]), out)
    return out


def event_dense(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Exact integer ``x @ weight`` for ``x`` [N, K] (any integer dtype), ``weight`` [K, C_out] (int32 or int64)."""
    n, k = x.shape
    return event_conv(x.reshape(n, 1, 1, k), weight.reshape(1, 1, k, -1), (1, 1), (1, 1)).reshape(n, -1)


if HAVE_NUMBA:
    @numba.njit(parallel=True, cache=True, nogil=True)
    def _conv_kernel(x, w, sy, sx, out):
        n, ho, wo, c_out = out.shape
        h, wd, c_in = x.shape[1], x.shape[2], x.shape[3]
        kh, kw = w.shape[0], w.shape[1]
        for s in numba.prange(n):
            # this sample's non-zero inputs, per pixel: their channels and values
            count = np.zeros((h, wd), dtype=np.int64)
            chan = np.empty((h, wd, c_in), dtype=np.int64)
            val = np.empty((h, wd, c_in), dtype=w.dtype)
            for y in range(h):
                for xx in range(wd):
                    row = x[s, y, xx]
                    m = 0
                    for c in range(c_in):
                        if row[c] != 0:
                            chan[y, xx, m] = c
                            val[y, xx, m] = row[c]
                            m += 1
                    count[y, xx] = m
            acc = np.zeros_like(w[0, 0, 0])
            for oy in range(ho):
                for ox in range(wo):
                    acc[:] = 0
                    for ky in range(kh):
                        y = oy * sy + ky
                        for kx in range(kw):
                            xx = ox * sx + kx
                            wk = w[ky, kx]
                            for m in range(count[y, xx]):
                                wc = wk[chan[y, xx, m]]
                                xv = val[y, xx, m]
                                for o in range(c_out):
                                    acc[o] += xv * wc[o]
                    for o in range(c_out):
                        out[s, oy, ox, o] = acc[o]
else:  # pragma: no cover
    _conv_kernel = None
