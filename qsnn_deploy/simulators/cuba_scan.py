"""The current-based LIF recurrence (kind ``"cuba"``) over T steps for a whole layer: a fused Numba
kernel and its NumPy twin.

The equation is :class:`qsnn_deploy.neurons.CubaLIF`'s (two int64 states per neuron, current ``i``
and membrane ``v``, each saturating at its own width; three resets). :func:`cuba_scan` runs it
with channels-last arrays: every neuron ``p`` (batch × pixels) of channel ``c`` steps through all
T steps while its two states stay in registers, chunks of neurons spread over the cores. Integer
code only: no CPU-specific instruction can change a result. Without Numba (or
``use_numba=False``) the same steps run through :meth:`~qsnn_deploy.neurons.CubaLIF.reference_step`
itself; the tests hold both equal to it on adversarial operands (all resets, both saturations,
per-channel parameters).
"""
from __future__ import annotations

import numpy as np

from ..neurons import CubaLIF
from ..numba_support import HAVE_NUMBA, leave_start_method_unset, numba
from .lif_scan import CHUNK

#: reset codes of the kernel
_RESET_CODE = {"subtract": 0, "zero": 1, "zero_delayed": 2}


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
    @numba.njit(parallel=True, cache=True, nogil=True)
    def _kernel(j, static, steps, frac_bits, th, b, a, d, bi, reset, imax, vmax, record, spikes, states, sat,
                rows_per_chunk):
        # j, spikes, states: [T (or 1), P, C]: P positions (batch x pixels) of C channels
        p_total = spikes.shape[1]
        c = spikes.shape[2]
        n_chunks = sat.shape[0]
        for k in numba.prange(n_chunks):
            lo = k * rows_per_chunk
            hi = min(p_total, lo + rows_per_chunk)
            cur = np.zeros((hi - lo, c), dtype=np.int64)
            mem = np.zeros((hi - lo, c), dtype=np.int64)
            for t in range(steps):
                row = 0 if static else t
                n_sat = 0
                for p in range(lo, hi):
                    ip = cur[p - lo]
                    vp = mem[p - lo]
                    jp = j[row, p]
                    sp = spikes[t, p]
                    for ch in range(c):
                        x = ip[ch] * a[ch]
                        ii = ((x + ((x >> 63) & 4095)) >> 12) + (jp[ch] << frac_bits) + bi[ch]
                        if ii > imax:
                            ii = imax
                            n_sat += 1
                        elif ii < -imax:
                            ii = -imax
                            n_sat += 1
                        ip[ch] = ii
                        vi = vp[ch]
                        theta = th[ch]
                        fired = vi > theta
                        if fired and reset == 1:
                            vi = 0
                        y = vi * d[ch]
                        vi = ((y + ((y >> 63) & 4095)) >> 12) + ii + b[ch]
                        if fired:
                            if reset == 0:
                                vi -= theta
                            elif reset == 2:
                                vi = 0
                        if vi > vmax:
                            vi = vmax
                            n_sat += 1
                        elif vi < -vmax:
                            vi = -vmax
                            n_sat += 1
                        vp[ch] = vi
                        sp[ch] = vi > theta
                    if record:
                        states[t, p] = vp
                sat[k, t] = n_sat

    def _scan_numba(neuron: CubaLIF, j, static, steps, record):
        shape = j.shape if static else j.shape[1:]
        c = int(np.shape(neuron.threshold)[0])
        n = int(np.prod(shape, dtype=np.int64))
        p_total = n // c if c else 0
        spikes = np.empty((steps,) + shape, dtype=np.uint8)
        states = np.empty((steps,) + shape, dtype=np.int64) if record else np.empty((1, 1, 1), dtype=np.int64)
        rows = max(1, CHUNK // max(c, 1))
        n_chunks = max(1, -(-p_total // rows))
        sat = np.zeros((n_chunks, steps), dtype=np.int64)
        if n and steps:
            th, b, a, d, bi = _params(neuron, c)
            with leave_start_method_unset():
                _kernel(j.reshape(1 if static else steps, p_total, c), static, steps, int(neuron.frac_bits), th, b, a, d,
                        bi, _RESET_CODE[neuron.reset], neuron.current_limit, neuron.state_limit, record,
                        spikes.reshape(steps, p_total, c), states.reshape(steps, p_total, c) if record else states, sat, rows)
        return spikes, (states if record else None), sat.sum(axis=0)
else:  # pragma: no cover
    _scan_numba = None
