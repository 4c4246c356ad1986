"""The current-based LIF recurrence (kind ``"cuba"``) over T steps for a whole layer: a fused Numba
kernel and its NumPy twin.

The equation is :class:`qsnn_deploy.neurons.CubaLIF`'s (two int64 states per neuron, current ``i``
and membrane ``v``, each saturating at its own width; three resets). :func:`cuba_scan` runs it
with channels-last arrays: chunks of neurons (batch × pixels × channels, the per-channel parameters
tiled to a chunk: :func:`~.lif_scan.tiled_chunks`) spread over the cores, each stepping through all T
steps while its two states stay in cache. Integer
code only: no CPU-specific instruction can change a result. Without Numba (or
``use_numba=False``) the same steps run through :meth:`~qsnn_deploy.neurons.CubaLIF.reference_step`
itself; the tests hold both equal to it on adversarial operands (all resets, both saturations,
per-channel parameters).
"""
from __future__ import annotations

import numpy as np

from ..neurons import CubaLIF
from ..neurons.cuba import RESET_CODES, cuba_kernel_step
from ..numba_support import HAVE_NUMBA, cached_kernel, leave_start_method_unset, numba
from .lif_scan import tiled_chunks


def cuba_scan(neuron: CubaLIF, j: np.ndarray, static: bool, steps: int, record: bool = False,
              use_numba: bool | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Run ``neuron``'s equation for T = ``steps`` steps.

    Args:
        neuron: the layer's :class:`~qsnn_deploy.neurons.CubaLIF` parameters.
        j: int64 synaptic currents, channels-last: ``[..., C]`` when ``static`` (the same current
            every step) or ``[T, ..., C]``.
        static: whether ``j`` holds one step for all T.
        record: also return the membrane states ``v_t`` (int64 ``[T, ..., C]``).
        use_numba: force (True) or avoid (False) the fused kernel; default: Numba when installed.

    Returns:
        (spikes uint8 ``[T, ..., C]``, membrane states or None, saturation events per step int64 ``[T]``).
    """
    if use_numba is None:
        use_numba = HAVE_NUMBA
    if use_numba and not HAVE_NUMBA:
        raise RuntimeError("use_numba=True but numba is not installed")
    j = np.ascontiguousarray(j, dtype=np.int64)
    if use_numba:
        return _scan_numba(neuron, j, static, int(steps), record)
    return _scan_reference(neuron, j, static, int(steps), record)


def _scan_reference(neuron: CubaLIF, j, static, steps, record):
    shape = j.shape if static else j.shape[1:]
    state = neuron.initial_state(shape)
    spikes = np.empty((steps,) + shape, dtype=np.uint8)
    states = np.empty((steps,) + shape, dtype=np.int64) if record else None
    per_step = np.zeros(steps, dtype=np.int64)
    for t in range(steps):
        state, spikes[t], per_step[t] = neuron.reference_step(state, j if static else j[t])
        if record:
            states[t] = state[1]
    return spikes, states, per_step


def _params(neuron: CubaLIF, c: int) -> list[np.ndarray]:
    arrays = (neuron.threshold, neuron.bias, neuron.current_decay, neuron.decay, neuron.current_bias_or_zero())
    return [np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=np.int64).reshape(-1), (c,))) for a in arrays]


if HAVE_NUMBA:
    @cached_kernel(parallel=True, nogil=True)
    def _kernel(j, static, steps, frac_bits, th, b, a, d, bi, reset, imax, vmax, record, spikes, states, sat, chunk):
        # j: [T (or 1), n] flat channels-last; spikes, states: [T, n]; parameters per channel, tiled to a chunk
        n = spikes.shape[1]
        n_chunks = sat.shape[0]
        for k in numba.prange(n_chunks):
            lo = k * chunk
            hi = min(n, lo + chunk)
            cur = np.zeros(hi - lo, dtype=np.int64)
            mem = np.zeros(hi - lo, dtype=np.int64)
            # the current's per-step increment (J << F) + bi, once for a static input
            inc = np.empty(hi - lo if static else 0, dtype=np.int64)
            if static:
                for q in range(hi - lo):
                    inc[q] = (j[0, lo + q] << frac_bits) + bi[q]
            for t in range(steps):
                jr = j[0 if static else t, lo:hi]
                sp = spikes[t, lo:hi]
                n_sat = 0
                for q in range(hi - lo):
                    ii, vi, clipped = cuba_kernel_step(cur[q], mem[q], inc[q] if static else (jr[q] << frac_bits) + bi[q],
                                                       th[q], b[q], a[q], d[q], reset, imax, vmax)
                    n_sat += clipped
                    cur[q] = ii
                    mem[q] = vi
                    sp[q] = vi > th[q]
                if record:
                    states[t, lo:hi] = mem
                sat[k, t] = n_sat

    def _scan_numba(neuron: CubaLIF, j, static, steps, record):
        shape = j.shape if static else j.shape[1:]
        c = int(np.shape(neuron.threshold)[0])
        n = int(np.prod(shape, dtype=np.int64))
        spikes = np.empty((steps,) + shape, dtype=np.uint8)
        states = np.empty((steps,) + shape, dtype=np.int64) if record else np.empty((1, 1), dtype=np.int64)
        chunk, n_chunks, (th, b, a, d, bi) = tiled_chunks(c, n, _params(neuron, c))
        sat = np.zeros((n_chunks, steps), dtype=np.int64)
        if n and steps:
            with leave_start_method_unset():
                _kernel(j.reshape(1 if static else steps, n), static, steps, int(neuron.frac_bits), th, b, a, d, bi,
                        RESET_CODES[neuron.reset], neuron.current_limit, neuron.state_limit, record,
                        spikes.reshape(steps, n), states.reshape(steps, n) if record else states, sat, chunk)
        return spikes, (states if record else None), sat.sum(axis=0)
else:  # pragma: no cover
    _scan_numba = None
