"""Event-driven synaptic currents: ``J = W ⊛ x`` accumulating only the inputs that are not zero.

After the first layer a spiking net's inputs are spikes, mostly silent (the shipped MNIST net:
8-10% of layer-1 neurons spike per step). A dense GEMM multiplies every zero; building its
im2col patch matrix for all T steps is the larger cost. This kernel walks each output position's
receptive field and, for every input ``x != 0``, adds ``x · W[ky, kx, c, :]`` to the position's
C_out accumulators::

    J[n, oy, ox, o] = Σ_{ky, kx, c : x[n, oy·sy+ky, ox·sx+kx, c] ≠ 0}  x[...] · W[ky, kx, c, o]

Integers only: products and sums in the weight's dtype (:func:`accumulator_dtype`): int16 where
the layer's current bound (Σ|W|·max|x|, :meth:`~qsnn_deploy.frozen.Layer.current_bound`) proves
every partial sum below 2**15 (twice the SIMD lanes of int32), int32 below 2**31, int64 otherwise
(``FrozenNet.validate`` keeps |J| far below 2**62); exact for any summation order and on any CPU.
A dense layer is the 1×1 case (one position, fan-in = C) with a kernel of its own. Both run with
Numba, parallel over chunks of samples × steps, and gather each input row's non-zero entries
without a branch before accumulating; :func:`event_currents_available` says whether they can run here.
"""
from __future__ import annotations

import numpy as np

from ..numba_support import HAVE_NUMBA, cached_kernel, leave_start_method_unset, numba

#: Use the event kernel when at most this fraction of the inputs is non-zero (above it a float
#: GEMM over im2col patches is faster on these CPUs).
MAX_DENSITY = 0.3
#: Samples of :func:`event_conv` and rows of :func:`event_dense` per parallel chunk (scratch arrays
#: are allocated once per chunk).
CONV_ROWS = 64
DENSE_ROWS = 256


def accumulator_dtype(bound: int) -> type:
    """The narrowest integer type whose sums are exact when every partial sum is at most ``bound`` in
    magnitude: int16 below 2**15, int32 below 2**31, else int64."""
    if bound < (1 << 15):
        return np.int16
    if bound < (1 << 31):
        return np.int32
    return np.int64


def event_currents_available() -> bool:
    """True when Numba is installed, so the event-driven kernels can run (the NumPy simulator's default)."""
    return HAVE_NUMBA


def event_conv(x: np.ndarray, weight: np.ndarray, stride: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Exact integer conv of channels-last input ``x`` [N, H, W, C] (already zero-padded; any integer
    dtype) with ``weight`` [kh, kw, C, C_out] (int16, int32 or int64: the accumulator type,
    :func:`accumulator_dtype` of the bound) at ``stride``; returns int64 [N, Ho, Wo, C_out]."""
    n = x.shape[0]
    ho, wo = out_hw
    out = np.empty((n, ho, wo, weight.shape[3]), dtype=np.int64)
    if n:
        with leave_start_method_unset():
            _conv_kernel(np.ascontiguousarray(x), np.ascontiguousarray(weight), int(stride[0]), int(stride[1]), out,
                         CONV_ROWS)
    return out


def event_dense(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Exact integer ``x @ weight`` for ``x`` [N, K] (any integer dtype), ``weight`` [K, C_out] (int16, int32
    or int64, the accumulator type).

    The 1×1 case of :func:`event_conv` with its own kernel: rows in chunks of :data:`DENSE_ROWS` (one
    accumulator per chunk, none per row: a dense layer after a spiking one has T × batch short rows).
    """
    n = x.shape[0]
    out = np.empty((n, weight.shape[1]), dtype=np.int64)
    if n:
        with leave_start_method_unset():
            _dense_kernel(np.ascontiguousarray(x), np.ascontiguousarray(weight), out, DENSE_ROWS)
    return out


if HAVE_NUMBA:
    @cached_kernel(parallel=True, nogil=True)
    def _conv_kernel(x, w, sy, sx, out, rows_per_chunk):
        n, ho, wo, c_out = out.shape
        h, wd, c_in = x.shape[1], x.shape[2], x.shape[3]
        kh, kw = w.shape[0], w.shape[1]
        n_chunks = (n + rows_per_chunk - 1) // rows_per_chunk
        for chunk in numba.prange(n_chunks):
            count = np.zeros((h, wd), dtype=np.int64)
            chan = np.empty((h, wd, c_in), dtype=np.int64)
            val = np.empty((h, wd, c_in), dtype=w.dtype)
            acc = np.zeros_like(w[0, 0, 0])
            for s in range(chunk * rows_per_chunk, min(n, (chunk + 1) * rows_per_chunk)):
                # this sample's non-zero inputs, per pixel: their channels and values (branch-free)
                for y in range(h):
                    for xx in range(wd):
                        row = x[s, y, xx]
                        m = 0
                        for c in range(c_in):
                            chan[y, xx, m] = c
                            val[y, xx, m] = row[c]
                            m += row[c] != 0
                        count[y, xx] = m
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

    @cached_kernel(parallel=True, nogil=True)
    def _dense_kernel(x, w, out, rows_per_chunk):
        n, k = x.shape
        c_out = w.shape[1]
        n_chunks = (n + rows_per_chunk - 1) // rows_per_chunk
        for chunk in numba.prange(n_chunks):
            acc = np.zeros_like(w[0])
            idx = np.empty(k, dtype=np.int64)
            val = np.empty(k, dtype=w.dtype)
            for s in range(chunk * rows_per_chunk, min(n, (chunk + 1) * rows_per_chunk)):
                xs = x[s]
                m = 0
                for i in range(k):  # branch-free compaction of the non-zero inputs
                    idx[m] = i
                    val[m] = xs[i]
                    m += xs[i] != 0
                acc[:] = 0
                for q in range(m):
                    xv = val[q]
                    wi = w[idx[q]]
                    for o in range(c_out):
                        acc[o] += xv * wi[o]
                for o in range(c_out):
                    out[s, o] = acc[o]
else:  # pragma: no cover
    _conv_kernel = _dense_kernel = None
