"""Recurrent layers over T steps: the recurrent current of the previous step's spikes, event-driven,
fused with the neuron update.

A recurrent dense layer (``snn.RLeaky`` / ``snn.RSynaptic``, :class:`~qsnn_deploy.layer.Synapse` with
``recurrent`` weights ``R`` [C, C], row = output neuron) sees, per sample and step ``t``::

    J_t[o] = j_t[o] + Σ_{k : z_{t-1}[k] = 1} R[o, k]        z_{-1} = 0 (the one-step delay)

``j_t = W·x_t`` is the feed-forward current (computed beforehand for all steps), ``z_{t-1}`` the
layer's own 0/1 spikes of the previous step; then the neuron kind's step (``lif``:
:mod:`qsnn_deploy.neurons.lif`, ``cuba``: :mod:`qsnn_deploy.neurons.cuba`) runs on ``J_t``.

:class:`RecurrentSynapse` runs it two ways, bit-identical:

* with Numba, one fused kernel per kind (:data:`FUSED_KINDS`): every sample steps through all T steps
  with its states in cache; per step it adds the rows ``Rᵀ[k]`` of only the neurons ``k`` that spiked
  at the previous step (their indices gathered right after that step's update), then updates every
  neuron in one unit-stride loop. Integer code only: the recurrent sum is int16 / int32 where
  ``max_o Σ_k |R[o, k]|`` below 2**15 / 2**31 proves every partial sum in range
  (:func:`~.event_synapse.accumulator_dtype`), int64 otherwise; the neuron update is the kind's
  int64 equation.
* otherwise (``use_numba=False``, Numba missing, or a kind without a fused kernel) step by step
  through whole arrays: ``z_{t-1} @ Rᵀ`` as a float GEMM, exact because its 0/1 operand makes every
  partial sum an integer of magnitude ≤ ``max_o Σ_k |R[o, k]|``, checked below 2**24 (float32) or
  2**53 (float64), NumPy's int64 matmul past that; then the kind's ``reference_step`` itself.

No result depends on the CPU or the BLAS kernel: the tests hold both paths equal to the kind's
``reference_step`` on adversarial operands (both states saturating, every reset, large recurrent
weights, every neuron or none spiking).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import intmath
from ..neurons.cuba import RESET_CODES, cuba_kernel_step
from ..neurons.lif import lif_kernel_step
from ..numba_support import HAVE_NUMBA, cached_kernel, leave_start_method_unset, numba
from .event_synapse import accumulator_dtype

if TYPE_CHECKING:
    from ..neurons import NeuronParams


class RecurrentSynapse:
    """The recurrent weights ``R`` [C, C] of one layer, laid out once for both paths (module docstring).

    Args:
        recurrent: integer ``R`` [C_out, C_out] (row = the neuron receiving the current).
    """

    def __init__(self, recurrent: np.ndarray):
        r = np.asarray(recurrent).astype(np.int64)
        if r.ndim != 2 or r.shape[0] != r.shape[1]:
            raise ValueError(f"recurrent weights must be square [C, C], got {r.shape}")
        #: max_o Σ_k |R[o, k]|: the largest |recurrent current| (spikes are 0/1)
        self.bound = intmath.row_abs_sum_max(r)
        # Rᵀ: row k = what a spike of neuron k adds to every neuron
        self.rt_int = np.ascontiguousarray(r.T.astype(accumulator_dtype(self.bound)))
        self.rt_gemm = np.ascontiguousarray(r.T.astype(_gemm_dtype(self.bound)))

    def scan(self, neuron: NeuronParams, j: np.ndarray, static: bool, steps: int, record: bool = False,
             use_numba: bool | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Run ``neuron`` (any kind) with the recurrent current for T = ``steps`` steps.

        Args:
            neuron: the layer's neuron parameters (:class:`~qsnn_deploy.neurons.NeuronParams`).
            j: int64 feed-forward currents ``[N, C]`` when ``static`` (the same every step) or ``[T, N, C]``.
            record: also return the membrane states ``v_t`` (int64 ``[T, N, C]``).
            use_numba: force (True) or avoid (False) the fused kernel; default: Numba when installed.

        Returns:
            (spikes uint8 ``[T, N, C]``, states or None, saturation events per step int64 ``[T]``).
        """
        if use_numba is None:
            use_numba = HAVE_NUMBA
        if use_numba and not HAVE_NUMBA:
            raise RuntimeError("use_numba=True but numba is not installed")
        j = np.ascontiguousarray(j, dtype=np.int64)
        shape = j.shape if static else j.shape[1:]
        c = self.rt_int.shape[0]
        if len(shape) != 2 or shape[-1] != c:
            raise ValueError(f"recurrent scan: currents must be [N, {c}] per step, got {shape}")
        if use_numba and neuron.kind in FUSED_KINDS:
            return _scan_fused(neuron, j, self.rt_int, static, int(steps), record)
        return self._scan_numpy(neuron, j, static, int(steps), record)

    def _scan_numpy(self, neuron, j, static, steps, record):
        """Step by step: ``J_t = j_t + z_{t-1}·Rᵀ`` (exact GEMM, module docstring), then ``reference_step``."""
        shape = j.shape if static else j.shape[1:]
        state = neuron.initial_state(shape)
        spikes = np.zeros((steps,) + shape, dtype=np.uint8)
        states = np.empty((steps,) + shape, dtype=np.int64) if record else None
        per_step = np.zeros(steps, dtype=np.int64)
        for t in range(steps):
            jt = j if static else j[t]
            if t:
                rec = spikes[t - 1].astype(self.rt_gemm.dtype) @ self.rt_gemm
                jt = jt + (rec if rec.dtype == np.int64 else np.rint(rec).astype(np.int64))
            state, spikes[t], per_step[t] = neuron.reference_step(state, jt)
            if record:
                states[t] = state[-1]
        return spikes, states, per_step


def _gemm_dtype(bound: int) -> type:
    """float32 below 2**24, float64 below 2**53, int64 (exact loops) past it."""
    if bound < intmath.FLOAT32_EXACT:
        return np.float32
    if bound < intmath.FLOAT64_EXACT:
        return np.float64
    return np.int64


def _per_channel(values, c: int) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(np.asarray(values, dtype=np.int64).reshape(-1), (c,)))


def _scan_fused(neuron, j, rt, static, steps, record):
    shape = j.shape if static else j.shape[1:]
    n, c = shape
    spikes = np.empty((steps, n, c), dtype=np.uint8)
    states = np.empty((steps, n, c), dtype=np.int64) if record else np.empty((1, 1, 1), dtype=np.int64)
    sat = np.zeros((max(n, 1), steps), dtype=np.int64)
    jj = j.reshape(1 if static else steps, n, c)
    if n and c and steps:
        with leave_start_method_unset():
            if neuron.kind == "lif":
                _lif_kernel(jj, steps, int(neuron.frac_bits), _per_channel(neuron.threshold, c),
                            _per_channel(neuron.bias, c), _per_channel(neuron.decay, c), neuron.reset == "subtract",
                            neuron.state_limit, rt, record, spikes, states, sat)
            else:
                _cuba_kernel(jj, steps, int(neuron.frac_bits), _per_channel(neuron.threshold, c),
                             _per_channel(neuron.bias, c), _per_channel(neuron.current_decay, c),
                             _per_channel(neuron.decay, c), _per_channel(neuron.current_bias_or_zero(), c),
                             RESET_CODES[neuron.reset], neuron.current_limit, neuron.state_limit, rt, record,
                             spikes, states, sat)
    return spikes, (states if record else None), sat.sum(axis=0)


#: Kinds with a fused recurrent kernel; any other kind runs the whole-array path.
FUSED_KINDS = ("lif", "cuba") if HAVE_NUMBA else ()

if HAVE_NUMBA:
    @numba.njit(inline="always")
    def _recurrent_current(acc, rt, fired, n_fired):
        """acc = Σ_{m < n_fired} Rᵀ[fired[m]] (the previous step's spikes, event-driven)."""
        acc[:] = 0
        c = acc.shape[0]
        for m in range(n_fired):
            row = rt[fired[m]]
            for o in range(c):
                acc[o] += row[o]

    @numba.njit(inline="always")
    def _gather_fired(sp, fired):
        """The indices of the neurons that spiked (``sp`` 0/1) into ``fired``, branch-free; returns their number."""
        m = 0
        for ch in range(sp.shape[0]):
            fired[m] = ch
            m += sp[ch]
        return m

    @cached_kernel(parallel=True, nogil=True)
    def _lif_kernel(j, steps, frac_bits, th, b, d, subtract, vmax, rt, record, spikes, states, sat):
        # j: [T (or 1: static), N, C] int64; rt: Rᵀ [C, C]; spikes, states: [T, N, C]; sat: [N, T]
        n_total, c = spikes.shape[1], spikes.shape[2]
        static = j.shape[0] == 1
        for n in numba.prange(n_total):
            v = np.zeros(c, dtype=np.int64)
            acc = np.zeros(c, dtype=rt.dtype)
            fired = np.empty(c, dtype=np.int64)
            n_fired = 0
            for t in range(steps):
                _recurrent_current(acc, rt, fired, n_fired)
                jn = j[0 if static else t, n]
                sp = spikes[t, n]
                n_sat = 0
                for ch in range(c):
                    vi, clipped = lif_kernel_step(v[ch], ((jn[ch] + acc[ch]) << frac_bits) + b[ch], th[ch], d[ch],
                                                  subtract, vmax)
                    n_sat += clipped
                    v[ch] = vi
                    sp[ch] = vi > th[ch]
                n_fired = _gather_fired(sp, fired)
                if record:
                    states[t, n] = v
                sat[n, t] = n_sat

    @cached_kernel(parallel=True, nogil=True)
    def _cuba_kernel(j, steps, frac_bits, th, b, a, d, bi, reset_code, imax, vmax, rt, record, spikes, states, sat):
        # as _lif_kernel, with the current state i (neurons/cuba.py's equation)
        n_total, c = spikes.shape[1], spikes.shape[2]
        static = j.shape[0] == 1
        for n in numba.prange(n_total):
            cur = np.zeros(c, dtype=np.int64)
            v = np.zeros(c, dtype=np.int64)
            acc = np.zeros(c, dtype=rt.dtype)
            fired = np.empty(c, dtype=np.int64)
            n_fired = 0
            for t in range(steps):
                _recurrent_current(acc, rt, fired, n_fired)
                jn = j[0 if static else t, n]
                sp = spikes[t, n]
                n_sat = 0
                for ch in range(c):
                    ii, vi, clipped = cuba_kernel_step(cur[ch], v[ch], ((jn[ch] + acc[ch]) << frac_bits) + bi[ch],
                                                       th[ch], b[ch], a[ch], d[ch], reset_code, imax, vmax)
                    n_sat += clipped
                    cur[ch] = ii
                    v[ch] = vi
                    sp[ch] = vi > th[ch]
                n_fired = _gather_fired(sp, fired)
                if record:
                    states[t, n] = v
                sat[n, t] = n_sat
else:  # pragma: no cover
    _lif_kernel = _cuba_kernel = None
