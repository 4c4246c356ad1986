"""The leaky integrate-and-fire neuron (kind ``"lif"``): snnTorch ``Leaky``, the papers' neuron.

Per time step ``t``, per neuron of channel ``c`` (integers; ``J_t`` the exact synaptic current)::

    r_t = [v_{t-1} > θ_c]                                 reset flag from the PREVIOUS state, v_{-1} = 0
    v_t = decay(v_{t-1}, d_c) + (J_t << F) + b_c - r_t·θ_c          reset = "subtract"
    v_t = decay((1 - r_t)·v_{t-1}, d_c) + (J_t << F) + b_c          reset = "zero"
    v_t = clip(v_t, ±(2**(B_v-1) - 1))                    each clip is one saturation event
    z_t = [v_t > θ_c]                                     output spike (strict >)
    decay(v, d) = sign(v·d)·(|v·d| >> 12)                 12-bit decay, rounds toward zero

This is snnTorch's ``Leaky(reset_mechanism=..., reset_delay=True)`` (docs/design.md §2) with
β = d/4096: the "subtract" reset removes θ undecayed after the decay; "zero" equals Loihi's
reset-to-zero after a spike. One state variable, ``v`` (B_v bits, saturating).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import intmath
from ..errors import FrozenNetError
from ..statebound import StateBound, channel_bounds
from ..numba_support import HAVE_NUMBA, numba
from .base import NeuronParams, array_field, decay_int, decay_toward_zero, saturate, saturate_int

RESETS = intmath.RESET_MODES


@dataclass
class LIF(NeuronParams):
    """Integer parameters of one layer of LIF neurons (equation: module docstring).

    Attributes (units; bit widths in brackets):
        threshold: θ per output channel, int64 [state units, 0 ≤ θ ≤ 2**(B_v-1)-1].
        bias: b per output channel, int64 [state units, added every step].
        decay: d per output channel, int64 [12 bits, 0..4096; 4096 = no leak; β = d/4096].
        reset: ``"subtract"`` or ``"zero"``.
        frac_bits: F, the left shift applied to J [bits]; one unit of v is ``|sigma|/2**F``.
        state_bits: B_v, the signed width of the membrane state v [bits, 2..48].
        sigma: float64 per channel, one unit of J in the trained model's membrane units
            (information, and float targets such as NIR); optional.
    """

    kind = "lif"
    state_names = ("v",)

    threshold: np.ndarray = array_field()
    bias: np.ndarray = array_field()
    decay: np.ndarray = array_field()
    reset: str = "subtract"
    frac_bits: int = intmath.DEFAULT_FRAC_BITS
    state_bits: int = intmath.DEFAULT_STATE_BITS
    sigma: np.ndarray | None = array_field(default=None)

    def validate(self, layer: str, channels: int) -> None:
        """Types, shapes (one value per channel), θ within the state, |b| within the state, d in 0..4096."""
        self._check_choice(layer, "reset", RESETS)
        bits = self._check_width(layer, "state_bits", 2, 48)
        self._check_width(layer, "frac_bits", 0, bits - 2)
        vmax = intmath.state_limit(bits)
        self._check_channel_array(layer, "threshold", channels, lo=0, hi=vmax, what=f" ({bits}-bit state)")
        b = self._check_channel_array(layer, "bias", channels)
        if b.size and np.abs(b).max() > vmax:
            raise FrozenNetError(layer, "bias", f"|bias| = {np.abs(b).max()} exceeds the {bits}-bit state limit {vmax}")
        self._check_channel_array(layer, "decay", channels, lo=0, hi=intmath.DECAY_ONE, what=" (12-bit decay)")
        self._check_sigma(layer, channels)

    def state_bound(self, j_pos: np.ndarray, j_neg: np.ndarray) -> StateBound:
        """Proven range of v (:mod:`qsnn_deploy.statebound`): ``P = J⁺·2^F + b`` the most a step adds,
        ``v ≤ max(β·θ + P, (P - θ)/(1 - β))`` ("subtract"), ``v ≥ -N/(1-β)``."""
        upper, lower = channel_bounds(j_pos, j_neg, self.threshold, self.bias, self.decay, self.reset, self.frac_bits)
        return StateBound(int(self.frac_bits), float(np.max(upper, initial=0.0)), float(np.min(lower, initial=0.0)),
                          int(np.max(np.asarray(self.threshold), initial=0)), int(self.state_bits))

    def channel_usage(self, j_pos: np.ndarray, j_neg: np.ndarray) -> np.ndarray:
        """Per channel, the proven |v| peak over the state limit (≤ 1: that channel cannot clip)."""
        upper, lower = channel_bounds(j_pos, j_neg, self.threshold, self.bias, self.decay, self.reset, self.frac_bits)
        return np.maximum(upper, -lower) / float(self.state_limit)

    def reference_step(self, state: tuple[np.ndarray, ...], j: np.ndarray
                       ) -> tuple[tuple[np.ndarray, ...], np.ndarray, int]:
        """One step of the module docstring's equation, pure NumPy (the specification)."""
        (v,) = state
        th, b, d = (np.asarray(a, dtype=np.int64) for a in (self.threshold, self.bias, self.decay))
        r = v > th
        if self.reset == "zero":
            v = np.where(r, 0, v)
        v = decay_toward_zero(v, d) + (np.asarray(j, dtype=np.int64) << self.frac_bits) + b
        if self.reset == "subtract":
            v = v - np.where(r, th, 0)
        v, n_sat = saturate(v, self.state_limit)
        return (v,), (v > th).astype(np.uint8), n_sat


if HAVE_NUMBA:
    @numba.njit(inline="always")
    def lif_kernel_step(v, inc, theta, d, subtract, vmax):
        """One neuron's step of the module docstring's equation, int64, as the Numba kernels inline it
        (:mod:`~qsnn_deploy.simulators.lif_scan`, :mod:`~qsnn_deploy.simulators.recurrent_scan`).

        ``v`` = v_{t-1}; ``inc`` = (J_t << F) + b; ``subtract``: the reset; ``vmax`` = 2**(B_v-1) - 1.
        Returns (v_t, 1 if v_t was clipped else 0); the spike is ``v_t > theta``. The tests hold every
        kernel built on it equal to :meth:`LIF.reference_step`.
        """
        fired = v > theta
        if fired and not subtract:
            v = 0
        v = decay_int(v, d) + inc
        if fired and subtract:
            v -= theta
        return saturate_int(v, vmax)
else:  # pragma: no cover
    lif_kernel_step = None
