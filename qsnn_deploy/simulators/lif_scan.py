"""The LIF recurrence over T steps for a whole layer, in integers: one fused kernel and its NumPy twin.

For every neuron ``i`` of channel ``c`` (arrays channels-last, so ``c = i mod C``) and every step t::

    r_t = [v_{t-1} > θ_c]                                   reset flag, v_{-1} = 0
    v   = 0 if (reset = "zero" and r_t) else v_{t-1}
    v   = sign(v·d_c) · (|v·d_c| >> 12)                     decay, rounds toward zero
    v   = v + (J_t << F) + b_c - (θ_c if reset = "subtract" and r_t else 0)
    v_t = clip(v, ±(2**(B_v-1) - 1))                        each clip is one saturation event
    s_t = [v_t > θ_c]

``J`` (int64, exact synaptic current), ``θ`` (threshold, state units, B_v bits), ``b`` (bias,
state units), ``d`` (12-bit decay, 0..4096), ``F`` (fractional bits) and ``B_v`` (state width) are
those of :class:`~qsnn_deploy.frozen.Layer`. Every quantity is an int64: |v·d| < 2**(B_v+12)
and |J << F| < 2**62 are checked by ``FrozenNet.validate``.

:func:`lif_scan` runs a Numba kernel when Numba is installed: one pass over memory per step,
neurons in cache-sized chunks spread over the CPU's cores, each chunk stepping through all T
steps while its states stay in cache, one unit-stride loop over the chunk's neurons with the
per-channel parameters tiled to it (:func:`tiled_chunks`). It is integer code only (no float, no CPU-specific
instruction can change a result). :func:`lif_scan_numpy` is the same recurrence as whole-array
NumPy operations; the tests hold the two equal on adversarial operands (both resets, saturation,
per-channel parameters), and it is the fallback where Numba is missing.
"""
from __future__ import annotations

import numpy as np

from .. import intmath
from ..errors import SaturationError
from ..neurons.lif import LIF, lif_kernel_step
from ..numba_support import HAVE_NUMBA, cached_kernel, leave_start_method_unset, numba  # noqa: F401 - re-exported

#: Neurons per chunk of the fused kernel: 16 Ki int64 states (128 KiB) stay in a core's L2 cache.
CHUNK = 1 << 14


def scan_lif(neuron: LIF, j: np.ndarray, static: bool, steps: int, record: bool = False,
             use_numba: bool | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The kernel for neuron kind ``"lif"`` (:class:`~qsnn_deploy.neurons.LIF`): its equation over T steps.

    Args as :func:`lif_scan`, the parameters taken from ``neuron``. Returns (spikes uint8 ``[T, ..., C]``,
    states or None, saturation events per step int64 ``[T]``).
    """
    return _run(j, static, steps, neuron.frac_bits, neuron.threshold, neuron.bias, neuron.decay, neuron.reset,
                neuron.state_bits, record, use_numba)


def lif_scan(j: np.ndarray, static: bool, steps: int, frac_bits: int, threshold: np.ndarray, bias: np.ndarray,
             decay: np.ndarray, reset: str, state_bits: int, name: str = "", saturation: str = "count",
             record: bool = False, use_numba: bool | None = None) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Run the recurrence (module docstring) for one layer.

    Args:
        j: int64 synaptic currents, channels-last: ``[..., C]`` when ``static`` (the same current
            every step) or ``[T, ..., C]``.
        static: whether ``j`` holds one step for all T.
        steps: T.
        frac_bits: F. threshold, bias, decay: int64 per channel ``[C]``.
        reset: ``"subtract"`` or ``"zero"``. state_bits: B_v.
        name: the layer's name (for the saturation error).
        saturation: ``"count"`` (clip and count) or ``"raise"`` (:class:`SaturationError` at the
            first step with a clip, naming the layer, the step and the number of neurons).
        record: also return the states ``v_t`` (int64 ``[T, ..., C]``).
        use_numba: force (True) or avoid (False) the fused kernel; default: Numba when installed.

    Returns:
        (spikes uint8 ``[T, ..., C]``, states or None, number of saturation events).
    """
    spikes, states, per_step = _run(j, static, steps, frac_bits, threshold, bias, decay, reset, state_bits, record,
                                    use_numba)
    if saturation == "raise" and per_step.any():
        t = int(np.flatnonzero(per_step)[0])
        raise SaturationError(f"layer {name!r}: membrane state left the {state_bits}-bit range "
                              f"±{intmath.state_limit(state_bits)} at step {t} ({int(per_step[t])} neurons)")
    return spikes, states, int(per_step.sum())


def _run(j, static, steps, frac_bits, threshold, bias, decay, reset, state_bits, record, use_numba):
    shape = j.shape if static else j.shape[1:]
    c = shape[-1] if shape else 1
    params = [np.ascontiguousarray(np.broadcast_to(np.asarray(p, dtype=np.int64).reshape(-1), (c,)))
              for p in (threshold, bias, decay)]
    if reset not in intmath.RESET_MODES:
        raise ValueError(f"reset must be one of {intmath.RESET_MODES}, got {reset!r}")
    if use_numba is None:
        use_numba = HAVE_NUMBA
    if use_numba and not HAVE_NUMBA:
        raise RuntimeError("use_numba=True but numba is not installed")
    fn = _scan_numba if use_numba else _scan_numpy
    return fn(np.ascontiguousarray(j, dtype=np.int64), static, int(steps), int(frac_bits), *params,
              reset == "subtract", intmath.state_limit(state_bits), record)


# ------------------------------------------------------------------ NumPy (whole-array operations)
def _scan_numpy(j, static, steps, frac_bits, th, b, d, subtract, vmax, record):
    shape = j.shape if static else j.shape[1:]
    cur = (j << frac_bits) + b  # the per-step increment before reset (broadcast over channels-last)
    v = np.zeros(shape, dtype=np.int64)
    x = np.empty(shape, dtype=np.int64)
    tmp = np.empty(shape, dtype=np.int64)
    r = np.zeros(shape, dtype=bool)
    spikes = np.empty((steps,) + shape, dtype=np.uint8)
    states = np.empty((steps,) + shape, dtype=np.int64) if record else None
    per_step = np.zeros(steps, dtype=np.int64)
    dd = d[0] if np.all(d == d[0]) else d
    for t in range(steps):
        np.greater(v, th, out=r)
        if not subtract:
            v[r] = 0
        np.multiply(v, dd, out=x)                      # v·d  (< 2^(B_v+12), int64-safe)
        np.right_shift(x, 63, out=tmp)
        np.bitwise_and(tmp, intmath.DECAY_ONE - 1, out=tmp)
        np.add(x, tmp, out=x)
        np.right_shift(x, intmath.DECAY_BITS, out=v)   # decay toward zero
        np.add(v, cur if static else cur[t], out=v)
        if subtract:
            np.subtract(v, th, out=v, where=r)
        if v.max(initial=0) > vmax or v.min(initial=0) < -vmax:
            per_step[t] = np.count_nonzero(v > vmax) + np.count_nonzero(v < -vmax)
            np.clip(v, -vmax, vmax, out=v)
        np.greater(v, th, out=spikes[t])
        if record:
            states[t] = v
    return spikes, states, per_step


# ------------------------------------------------------------------ Numba (fused, chunked, parallel)
def tiled_chunks(c: int, n: int, params: list[np.ndarray]) -> tuple[int, int, list[np.ndarray]]:
    """Chunking of ``n`` channels-last neurons (``c`` channels) for the fused kernels: ``(chunk, n_chunks,
    params tiled to one chunk)``. A chunk is a whole number of positions (a multiple of ``c``, about
    :data:`CHUNK` neurons), so neuron ``i`` of any chunk has channel ``i mod c`` and the per-channel
    parameters repeat with period ``c``: tiled to the chunk's length, one long unit-stride loop runs over
    all its neurons (SIMD-friendly even when ``c`` is small, e.g. 16)."""
    rows = max(1, CHUNK // max(c, 1))
    chunk = rows * max(c, 1)
    n_chunks = max(1, -(-n // chunk))
    reps = min(rows, max(1, -(-n // max(c, 1))))
    return chunk, n_chunks, [np.ascontiguousarray(np.tile(p, reps)) for p in params]


if HAVE_NUMBA:
    @cached_kernel(parallel=True, nogil=True)
    def _kernel(j, static, steps, frac_bits, th, b, d, subtract, vmax, record, spikes, states, sat, chunk):
        # j: [T (or 1), n] flat channels-last; spikes, states: [T, n]; th, b, d: per channel, tiled to a chunk
        n = spikes.shape[1]
        n_chunks = sat.shape[0]
        for k in numba.prange(n_chunks):
            lo = k * chunk
            hi = min(n, lo + chunk)
            v = np.zeros(hi - lo, dtype=np.int64)
            # the per-step increment (J << F) + b, once for a static input
            inc = np.empty(hi - lo if static else 0, dtype=np.int64)
            if static:
                for i in range(hi - lo):
                    inc[i] = (j[0, lo + i] << frac_bits) + b[i]
            for t in range(steps):
                jr = j[0 if static else t, lo:hi]
                sp = spikes[t, lo:hi]
                n_sat = 0
                for i in range(hi - lo):
                    vi, clipped = lif_kernel_step(v[i], inc[i] if static else (jr[i] << frac_bits) + b[i], th[i], d[i],
                                                  subtract, vmax)
                    n_sat += clipped
                    v[i] = vi
                    sp[i] = vi > th[i]
                if record:
                    states[t, lo:hi] = v
                sat[k, t] = n_sat

    def _scan_numba(j, static, steps, frac_bits, th, b, d, subtract, vmax, record):
        shape = j.shape if static else j.shape[1:]
        c = th.shape[0]
        n = int(np.prod(shape, dtype=np.int64))
        spikes = np.empty((steps,) + shape, dtype=np.uint8)
        states = np.empty((steps,) + shape, dtype=np.int64) if record else np.empty((1, 1), dtype=np.int64)
        chunk, n_chunks, (th, b, d) = tiled_chunks(c, n, [th, b, d])
        sat = np.zeros((n_chunks, steps), dtype=np.int64)
        if n and steps:
            with leave_start_method_unset():
                _kernel(j.reshape(1 if static else steps, n), static, steps, frac_bits, th, b, d, subtract,
                        vmax, record, spikes.reshape(steps, n), states.reshape(steps, n) if record else states, sat, chunk)
        return spikes, (states if record else None), sat.sum(axis=0)
else:  # pragma: no cover
    _scan_numba = None
