"""Proven bounds on the membrane state, and the per-layer choice of F (docs/design.md §6).

For one LIF layer of the integer semantics (:mod:`qsnn_deploy.frozen`), with per channel ``c``:

* ``J⁺_c`` / ``J⁻_c``: the largest positive / negative synaptic current any input in the layer's
  range can produce, ``J⁺_c = Σ_{w>0} w·x_hi + Σ_{w<0} |w|·(-x_lo)`` (times the sum-pool area) and
  ``J⁻_c`` likewise; exact integers;
* ``P = J⁺·2^F + b`` the most one step can add, ``N = J⁻·2^F - b`` the most it can remove;
* ``β = d / 4096``; ``decay`` rounds toward zero, so ``|decay(v)| ≤ β·|v|``.

Then, by induction over the steps (``v_0 = 0``)::

    reset "zero":      v_t ≤ U = β·θ + P                 (v_{t-1} > θ resets to 0; else v_{t-1} ≤ θ)
    reset "subtract":  v_t ≤ U = max(β·θ + P, (P - θ) / (1 - β))
    both:              v_t ≥ -N / (1 - β)                ("subtract" also: ≥ -(N + θ))

A layer *cannot saturate* when ``max(U, |lower|) ≤ 2^(B_v-1) - 1``, and its thresholds are
*reachable* when ``θ ≤ 2^(B_v-1) - 1`` (a larger θ never fires). These are proofs over every
input in range, every step, every T, not measurements: :func:`choose_frac_bits` picks the largest
F for which they hold; where no F does, it reports ``proof=False`` and the caller falls back to a
data-driven bound (:func:`qsnn_deploy.freeze.freeze` with ``calibration``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from . import intmath

if TYPE_CHECKING:
    from .frozen import FrozenNet
    from .layer import Layer, Synapse


def current_extremes(weight: np.ndarray, x_lo: int, x_hi: int, pool_area: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel (J⁺, J⁻) ≥ 0: the largest positive and negative current, exact int64.

    ``weight``: integer weights, output channel first; ``x_lo..x_hi``: the input's integer range;
    ``pool_area``: sum-pool area after the synapse (each neuron sums that many conv outputs).
    """
    w = np.asarray(weight, dtype=np.int64).reshape(np.asarray(weight).shape[0], -1)
    pos = np.where(w > 0, w, 0).sum(axis=1)
    neg = np.where(w < 0, -w, 0).sum(axis=1)
    x_hi, x_lo = int(x_hi), int(x_lo)
    j_pos = (pos * max(x_hi, 0) + neg * max(-x_lo, 0)) * int(pool_area)
    j_neg = (neg * max(x_hi, 0) + pos * max(-x_lo, 0)) * int(pool_area)
    return j_pos, j_neg


@dataclass
class StateBound:
    """Worst-case membrane range of one layer at one F (state units, per layer = max over channels)."""

    frac_bits: int
    upper: float            # largest v any input can produce
    lower: float            # most negative v (≤ 0)
    theta_max: int          # largest integer threshold
    state_bits: int
    current_peak: float = 0.0   # two-state kinds (cuba): largest |i| any input can produce
    current_limit: int = 0      # ... and the largest |i| its B_i bits hold (0: the kind has no current)

    @property
    def limit(self) -> int:
        """The largest state magnitude B_v bits hold: 2^(B_v-1) - 1 (state units)."""
        return intmath.state_limit(self.state_bits)

    @property
    def peak(self) -> float:
        """The largest |v| any input in range can produce (state units)."""
        return max(self.upper, -self.lower)

    @property
    def saturation_free(self) -> bool:
        """True: no input in range can ever clip the state (nor the current of a two-state kind): a proof."""
        return self.peak <= self.limit and (not self.current_limit or self.current_peak <= self.current_limit)

    @property
    def threshold_reachable(self) -> bool:
        """True when every threshold lies within the state range (so the neurons can fire)."""
        return self.theta_max <= self.limit

    @property
    def headroom_bits(self) -> float:
        """log2(limit / peak): how many more bits of F the state could take (negative: clips possible)."""
        return math.log2(self.limit / self.peak) if self.peak > 0 else math.inf


def channel_bounds(j_pos: np.ndarray, j_neg: np.ndarray, theta: float | np.ndarray, bias: float | np.ndarray,
                   decay: float | np.ndarray, reset: str, frac_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per channel (upper, lower) bound on v in state units (module docstring), float64, with one
    unit of slack each way (the bounds are compared with integer limits)."""
    if reset not in intmath.RESET_MODES:
        raise ValueError(f"reset must be one of {intmath.RESET_MODES}, got {reset!r}")
    c = len(np.atleast_1d(j_pos))
    th = np.broadcast_to(np.asarray(theta, dtype=np.float64), (c,))
    b = np.broadcast_to(np.asarray(bias, dtype=np.float64), (c,))
    beta = np.broadcast_to(np.asarray(decay, dtype=np.float64), (c,)) / float(intmath.DECAY_ONE)
    scale = float(1 << int(frac_bits))
    p = np.asarray(j_pos, dtype=np.float64) * scale + b
    n = np.asarray(j_neg, dtype=np.float64) * scale - b
    leak = 1.0 - beta
    safe = np.where(leak > 0, leak, 1.0)
    upper = np.maximum(beta * th + p, 0.0)
    if reset == "subtract":
        runaway = np.where(leak > 0, (p - th) / safe, np.where(p > th, np.inf, -np.inf))
        upper = np.maximum(upper, runaway)
    lower = np.where(leak > 0, -np.maximum(n, 0.0) / safe, np.where(n > 0, -np.inf, 0.0))
    if reset == "subtract":
        lower = np.minimum(lower, -(np.maximum(n, 0.0) + th))
    return upper + 1.0, lower - 1.0


def state_bound(j_pos: np.ndarray, j_neg: np.ndarray, theta: np.ndarray, bias: np.ndarray, decay: np.ndarray,
                reset: str, frac_bits: int, state_bits: int = intmath.DEFAULT_STATE_BITS) -> StateBound:
    """The proven bound of the module docstring for one layer (all arrays per channel, integers)."""
    upper, lower = channel_bounds(j_pos, j_neg, theta, bias, decay, reset, frac_bits)
    return StateBound(int(frac_bits), float(np.max(upper, initial=0.0)), float(np.min(lower, initial=0.0)),
                      int(np.max(np.asarray(theta), initial=0)), int(state_bits))


def choose_frac_bits(bound_at: Callable[[int], StateBound], f_max: int = intmath.DEFAULT_FRAC_BITS,
                     f_min: int = 0) -> tuple[int, bool, StateBound]:
    """Largest F in ``f_min..f_max`` whose proven bound has no saturation and reachable thresholds.

    ``bound_at(F)`` returns the layer's :class:`StateBound` at F (thresholds and biases re-quantized
    at that F). Returns ``(F, proof, bound)``; when no F proves it, ``proof`` is False and F is the
    largest F whose thresholds are reachable (``f_min`` if none), for the caller to check on data.
    """
    fallback = None
    for f in range(int(f_max), int(f_min) - 1, -1):
        b = bound_at(f)
        if b.saturation_free and b.threshold_reachable:
            return f, True, b
        if fallback is None and b.threshold_reachable:
            fallback = (f, b)
    if fallback is None:
        return int(f_min), False, bound_at(int(f_min))
    return fallback[0], False, fallback[1]


def synapse_current_extremes(synapse: Synapse, x_lo: int, x_hi: int, z_max: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per channel (J⁺, J⁻) of a frozen :class:`~qsnn_deploy.frozen.Synapse` fed inputs in ``x_lo..x_hi``;
    a recurrent synapse adds its own spikes' extremes (``R·z`` with z in 0..z_max: 1, or a multi-spike kind's cap)."""
    jp, jn = current_extremes(synapse.weight, x_lo, x_hi, synapse.pool_area)
    if synapse.is_recurrent:
        rp, rn = current_extremes(synapse.recurrent, 0, z_max)
        jp, jn = jp + rp, jn + rn
    return jp, jn


def layer_state_bound(layer: Layer, x_lo: int, x_hi: int) -> StateBound:
    """The proven bound of a frozen :class:`~qsnn_deploy.frozen.Layer` fed inputs in ``x_lo..x_hi``:
    its neuron kind's :meth:`~qsnn_deploy.neurons.NeuronParams.state_bound` of the synapse's extremes."""
    jp, jn = synapse_current_extremes(layer.synapse, x_lo, x_hi, spike_max(layer))
    return layer.neuron.state_bound(jp, jn)


def spike_max(layer: Layer) -> int:
    """The most spikes a layer's neuron emits per step: 1, or a multi-spike kind's ``max_spikes`` (kind ``"xylo"``)."""
    return int(getattr(layer.neuron, "max_spikes", 1))


def net_state_bounds(net: FrozenNet) -> list[StateBound]:
    """Proven state bound of every layer of a :class:`~qsnn_deploy.frozen.FrozenNet`."""
    lo, hi = net.input.value_range
    out = []
    for layer in net.layers:
        out.append(layer_state_bound(layer, lo, hi))
        lo, hi = 0, spike_max(layer)
    return out


def net_peak_currents(net: FrozenNet) -> list[int]:
    """Per layer, the largest |J| any input in range can produce: max over channels of max(J⁺, J⁻)
    (tighter than Σ|W|·max|x| for unsigned input, where J⁺ and J⁻ cannot both reach it)."""
    lo, hi = net.input.value_range
    out = []
    for layer in net.layers:
        jp, jn = synapse_current_extremes(layer.synapse, lo, hi, spike_max(layer))
        out.append(int(max(jp.max(initial=0), jn.max(initial=0))))
        lo, hi = 0, spike_max(layer)
    return out


def clip_risk_message(layer: Layer, bound: StateBound, fix: str) -> str:
    """The one sentence freeze and qsnn-export say about a layer whose state no proof keeps in range."""
    return (f"layer {layer.name!r}: its {layer.neuron.state_bits}-bit state may clip at F = {layer.neuron.frac_bits} (worst case "
            f"|v| {bound.peak:.3g} > {bound.limit}); clips are counted identically in every backend and qsnn-verify "
            f"reports the fraction of neuron-steps clipped. Fix: {fix}")
