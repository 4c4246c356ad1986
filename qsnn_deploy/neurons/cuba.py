"""The current-based LIF neuron (kind ``"cuba"``): snnTorch ``Synaptic``, Loihi 2's own neuron, NIR ``CubaLIF``.

Two state variables per neuron: a synaptic current ``i`` and a membrane ``v``. Per time step
``t``, per neuron of channel ``c`` (integers; ``J_t`` the exact synaptic current)::

    i_t = decay(i_{t-1}, a_c) + (J_t << F) + bi_c         current (B_i bits)
    i_t = clip(i_t, ±(2**(B_i-1) - 1))                    each clip is one saturation event
    r_t = [v_{t-1} > θ_c]                                 reset flag from the PREVIOUS state, v_{-1} = 0
    v_t = decay(v_{t-1}, d_c) + i_t + b_c - r_t·θ_c               reset = "subtract"
    v_t = decay((1 - r_t)·v_{t-1}, d_c) + i_t + b_c               reset = "zero"
    v_t = (1 - r_t)·(decay(v_{t-1}, d_c) + i_t + b_c)             reset = "zero_delayed"
    v_t = clip(v_t, ±(2**(B_v-1) - 1))                    each clip is one saturation event
    z_t = [v_t > θ_c]                                     output spike (strict >)
    decay(x, k) = sign(x·k)·(|x·k| >> 12)                 12-bit decay, rounds toward zero

The current is never reset. With α = a/4096 and β = d/4096:

* ``"subtract"`` is snnTorch's ``Synaptic(reset_mechanism="subtract")`` (default ``reset_delay=True``);
* ``"zero_delayed"`` is snnTorch's ``Synaptic(reset_mechanism="zero")`` with the default
  ``reset_delay=True``: the NEW membrane value is zeroed, so the step's input is lost;
* ``"zero"`` is snnTorch's ``Synaptic(reset_mechanism="zero", reset_delay=False)`` and Loihi 2's
  stock CUBA LIF (Lava ``LIF``: ``u`` decays by ``du``, ``v`` by ``dv``, ``v = 0`` after a spike):
  ``a = 4096 - du``, ``d = 4096 - dv``, ``bi = 0`` (docs/design.md §7).

``bi`` is the synapse's own bias (snnTorch adds ``Linear``'s bias to the input ``I_t``, so it
enters the current); ``b`` is a bias on the membrane (where Loihi adds ``bias_mant``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import intmath
from ..errors import FrozenNetError
from ..statebound import StateBound, channel_bounds
from ..numba_support import HAVE_NUMBA, numba
from .base import NeuronParams, array_field, decay_int, decay_toward_zero, saturate, saturate_int

RESETS = ("subtract", "zero", "zero_delayed")
#: the reset as the Numba kernels take it (:func:`cuba_kernel_step`)
RESET_CODES = {"subtract": 0, "zero": 1, "zero_delayed": 2}


@dataclass
class CubaLIF(NeuronParams):
    """Integer parameters of one layer of current-based LIF neurons (equation: module docstring).

    Attributes (units; bit widths in brackets):
        threshold: θ per output channel, int64 [state units, 0 ≤ θ ≤ 2**(B_v-1)-1].
        bias: b per output channel, added to v every step, int64 [state units].
        current_decay: a per output channel, int64 [12 bits, 0..4096; α = a/4096].
        decay: d per output channel (membrane), int64 [12 bits, 0..4096; β = d/4096].
        current_bias: bi per output channel, added to i every step, int64 [state units]; optional (0).
        reset: ``"subtract"``, ``"zero"`` or ``"zero_delayed"`` (module docstring).
        frac_bits: F, the left shift applied to J [bits]; one unit of i and v is ``|sigma|/2**F``.
        state_bits: B_v, the signed width of v [bits, 2..48].
        current_bits: B_i, the signed width of i [bits, 2..48].
        sigma: float64 per channel, one unit of J in the trained model's units; optional.
    """

    kind = "cuba"
    state_names = ("i", "v")

    threshold: np.ndarray = array_field()
    bias: np.ndarray = array_field()
    current_decay: np.ndarray = array_field()
    decay: np.ndarray = array_field()
    current_bias: np.ndarray | None = array_field(default=None)
    reset: str = "subtract"
    frac_bits: int = intmath.DEFAULT_FRAC_BITS
    state_bits: int = intmath.DEFAULT_STATE_BITS
    current_bits: int = intmath.DEFAULT_STATE_BITS
    sigma: np.ndarray | None = array_field(default=None)

    @property
    def current_limit(self) -> int:
        """The largest |i| the current state holds: 2**(B_i-1) - 1 (state units)."""
        return intmath.state_limit(self.current_bits)

    def current_bias_or_zero(self) -> np.ndarray:
        """``current_bias`` as int64, zeros when absent."""
        if self.current_bias is None:
            return np.zeros(np.shape(self.threshold), dtype=np.int64)
        return np.asarray(self.current_bias, dtype=np.int64)

    def validate(self, layer: str, channels: int) -> None:
        """Types, shapes (one value per channel), ranges of θ, both biases and both decays, widths."""
        self._check_choice(layer, "reset", RESETS)
        bits = self._check_width(layer, "state_bits", 2, 48)
        ibits = self._check_width(layer, "current_bits", 2, 48)
        self._check_width(layer, "frac_bits", 0, min(bits, ibits) - 2)
        vmax, imax = intmath.state_limit(bits), intmath.state_limit(ibits)
        self._check_channel_array(layer, "threshold", channels, lo=0, hi=vmax, what=f" ({bits}-bit state)")
        b = self._check_channel_array(layer, "bias", channels)
        if b.size and np.abs(b).max() > vmax:
            raise FrozenNetError(layer, "bias", f"|bias| = {np.abs(b).max()} exceeds the {bits}-bit state limit {vmax}")
        if self.current_bias is not None:
            bi = self._check_channel_array(layer, "current_bias", channels)
            if bi.size and np.abs(bi).max() > imax:
                raise FrozenNetError(layer, "current_bias", f"|current_bias| = {np.abs(bi).max()} exceeds the "
                                     f"{ibits}-bit current limit {imax}")
        for name in ("current_decay", "decay"):
            self._check_channel_array(layer, name, channels, lo=0, hi=intmath.DECAY_ONE, what=" (12-bit decay)")
        self._check_sigma(layer, channels)

    def current_range(self, j_pos: np.ndarray, j_neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per channel (upper, lower) proven bound on the current i (state units, float64).

        ``i_t = decay(i_{t-1}) + (J_t << F) + bi`` with ``|decay(i)| ≤ α·|i|``: by induction
        ``i ≤ (J⁺·2^F + bi)⁺/(1-α)`` and ``i ≥ -(J⁻·2^F - bi)⁺/(1-α)`` (±inf for α = 1 with a
        non-zero drive); one unit of slack each way.
        """
        alpha = np.asarray(self.current_decay, dtype=np.float64) / intmath.DECAY_ONE
        scale = float(1 << int(self.frac_bits))
        bi = self.current_bias_or_zero().astype(np.float64)
        p = np.maximum(np.asarray(j_pos, dtype=np.float64) * scale + bi, 0.0)
        n = np.maximum(np.asarray(j_neg, dtype=np.float64) * scale - bi, 0.0)
        leak = 1.0 - alpha
        safe = np.where(leak > 0, leak, 1.0)
        upper = np.where(leak > 0, p / safe, np.where(p > 0, np.inf, 0.0))
        lower = np.where(leak > 0, -n / safe, np.where(n > 0, -np.inf, 0.0))
        return upper + 1.0, lower - 1.0

    def state_bound(self, j_pos: np.ndarray, j_neg: np.ndarray) -> StateBound:
        """Proven range of v: the LIF bound (:func:`~qsnn_deploy.statebound.channel_bounds`) driven by the
        current's proven range instead of ``J << F``, with the current's own peak and limit."""
        i_up, i_lo = self.current_range(j_pos, j_neg)
        reset = "subtract" if self.reset == "subtract" else "zero"
        upper, lower = channel_bounds(i_up, -i_lo, self.threshold, self.bias, self.decay, reset, 0)
        return StateBound(int(self.frac_bits), float(np.max(upper, initial=0.0)), float(np.min(lower, initial=0.0)),
                          int(np.max(np.asarray(self.threshold), initial=0)), int(self.state_bits),
                          float(max(np.max(i_up, initial=0.0), -np.min(i_lo, initial=0.0))), self.current_limit)

    def channel_usage(self, j_pos: np.ndarray, j_neg: np.ndarray) -> np.ndarray:
        """Per channel, the larger of the proven |v| peak over B_v's limit and the |i| peak over B_i's."""
        i_up, i_lo = self.current_range(j_pos, j_neg)
        reset = "subtract" if self.reset == "subtract" else "zero"
        upper, lower = channel_bounds(i_up, -i_lo, self.threshold, self.bias, self.decay, reset, 0)
        return np.maximum(np.maximum(upper, -lower) / float(self.state_limit),
                          np.maximum(i_up, -i_lo) / float(self.current_limit))

    def reference_step(self, state: tuple[np.ndarray, ...], j: np.ndarray
                       ) -> tuple[tuple[np.ndarray, ...], np.ndarray, int]:
        """One step of the module docstring's equation, pure NumPy (the specification)."""
        i, v = state
        th, b, a, d = (np.asarray(x, dtype=np.int64) for x in (self.threshold, self.bias, self.current_decay, self.decay))
        i = decay_toward_zero(i, a) + (np.asarray(j, dtype=np.int64) << self.frac_bits) + self.current_bias_or_zero()
        i, n_sat_i = saturate(i, self.current_limit)
        r = v > th
        if self.reset == "zero":
            v = np.where(r, 0, v)
        v = decay_toward_zero(v, d) + i + b
        if self.reset == "subtract":
            v = v - np.where(r, th, 0)
        elif self.reset == "zero_delayed":
            v = np.where(r, 0, v)
        v, n_sat_v = saturate(v, self.state_limit)
        return (i, v), (v > th).astype(np.uint8), n_sat_i + n_sat_v


if HAVE_NUMBA:
    @numba.njit(inline="always")
    def cuba_kernel_step(i, v, inc, theta, b, a, d, reset_code, imax, vmax):
        """One neuron's step of the module docstring's equation, int64, as the Numba kernels inline it
        (:mod:`~qsnn_deploy.simulators.cuba_scan`, :mod:`~qsnn_deploy.simulators.recurrent_scan`).

        ``i``, ``v`` = i_{t-1}, v_{t-1}; ``inc`` = (J_t << F) + bi; ``reset_code`` from
        :data:`RESET_CODES`; ``imax``, ``vmax`` the two limits. Returns (i_t, v_t, number of the two
        that were clipped); the spike is ``v_t > theta``. The tests hold every kernel built on it
        equal to :meth:`CubaLIF.reference_step`.
        """
        i, clipped_i = saturate_int(decay_int(i, a) + inc, imax)
        fired = v > theta
        if fired and reset_code == 1:
            v = 0
        v = decay_int(v, d) + i + b
        if fired:
            if reset_code == 0:
                v -= theta
            elif reset_code == 2:
                v = 0
        v, clipped_v = saturate_int(v, vmax)
        return i, v, clipped_i + clipped_v
else:  # pragma: no cover
    cuba_kernel_step = None
