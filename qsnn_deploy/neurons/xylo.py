"""The SynSense Xylo neuron (kind ``"xylo"``): xylosim v2's ``XyloIAFNeuron``, bit for bit.

Read in xylosim 0.1.3 (``src/v2/cpp/XyloIAFNeuron.cpp``, ``XyloLayer.cpp``), the simulator Rockpool's
``XyloSim`` runs for Xylo Audio 2 (syns61201), Xylo IMU (syns63300) and Xylo Audio 3 (syns65302), and
checked against it in ``tests/test_xylo.py`` on every neuron-step.

Two int16 state variables per neuron: a synaptic current ``isyn`` and a membrane ``v``. Per time step,
per neuron of channel ``c`` (all integers; ``sat(x) = clip(x, -32768, 32767)``, the C++ ``safe_add``)::

    for k = 1..K, in delivery order:                   the step's ordered synaptic terms (below)
        isyn = sat(isyn + term_k)                      each add saturates on its own
    isyn = isyn - D(isyn, dash_syn_c)                  decays in the SAME step as the input arrives
    m    = wrap16(-D(v, dash_mem_c))                   int16 negation: -(-32768) wraps to -32768 (C++ cast)
    dv   = sat(m + isyn)
    dv   = sat(dv + bias_c)                            (Xylo v2 and later: the bias is added to dv)
    v    = sat(v + dv)
    z    = 0
    while v >= threshold_c and z < max_spikes:         fires on >=; subtracts θ per spike; 31 (hidden) or
        z += 1;  v -= threshold_c                      1 (readout) spikes at most per step

    D(x, dash) = (x >> dash) if (x >> dash) != 0 else sign(x)      arithmetic shift: at least one unit
                                                                   of leak; dash = 0 erases x

so ``x - D(x, dash)`` is ``xylo_decay(x, dash)`` (:func:`xylo_decay`; ``≈ x·(1 - 2^-dash)``). Note that
``D`` is the shift's value, or ±1 when the shift gives 0 (only for 0 < x < 2^dash: for x < 0 the
arithmetic shift is never 0) — it is NOT ``max(x >> dash, sign(x))`` for negative x.

**The synaptic terms (why J is not a single sum).** xylosim delivers spikes one at a time, each
through a saturating 16-bit add: first every input channel ``p = 0..N_in-1`` in order, each
``min(n_p, 15)`` times (input counts are clipped to 15 per channel per step), then every hidden neuron
``p = 0..N_hid-1`` of the previous step in order, each ``min(n_p, 31)`` times. For one pre-synaptic
source the repeated adds of the same signed weight saturate exactly like ONE add of
``n_p·(w << shift)`` (same sign: the clip only ever hits one side), so a neuron's step input is the
ordered list of per-source terms ``term_p = min(n_p, cap)·(w_p << shift)`` — one term per source,
in source order — folded with a saturating add each. A plain sum ``J = Σ term_p`` equals that fold
only when no partial sum leaves int16; otherwise the order matters (e.g. 32000 + 2000 - 2000 gives
30767, not 32000). Hence the API:

* ``reference_step(state, j)`` takes ``j`` either as ``[..., C]`` (ONE term: the summed current,
  exact when the step's contributions come from one source or no partial sum can saturate) or as
  ``[..., K, C]`` (K ordered terms, folded in order: always exact). :func:`synaptic_terms` builds the
  terms from spike counts and integer weights; :func:`fold_terms` is the fold.
* In a :class:`~qsnn_deploy.frozen.FrozenNet` the synapse weights of a xylo layer are ALREADY SHIFTED
  (J units = state units: ``W = w_int8 << shift``); the Xylo exporter factors each matrix back into int8
  weights and one shift. A layer's terms are its feed-forward sources (the previous layer's neurons,
  or the input channels) in order, then its own recurrent sources in order — the order Xylo delivers
  them when the hidden layers are laid out as consecutive blocks of ``weights_rec``.
* Spike outputs are COUNTS (0..max_spikes, uint8), not 0/1.

Bit widths: ``isyn``, ``v``, ``threshold``, ``bias`` int16; ``dash_syn``, ``dash_mem`` 4 bits (0..15);
weights int8 with a shift (applied before the term, above). There is no fractional part (F = 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..statebound import StateBound
from .base import NeuronParams, array_field

#: int16 state range of every Xylo state (saturating adds clip to it)
I16_MIN, I16_MAX = -(1 << 15), (1 << 15) - 1
#: xylosim's caps (``XyloIAFNeuron.h``): input counts per channel per step, hidden and readout spikes per step
MAX_INPUT_SPIKES = 15
MAX_HIDDEN_SPIKES = 31
MAX_READOUT_SPIKES = 1
#: dash (bit-shift decay) range: 4 bits in the chip's registers (xylosim: "should be 4 bits")
DASH_MAX = 15


def sat16(x: np.ndarray) -> np.ndarray:
    """``clip(x, -32768, 32767)`` (int64 in, int64 out): xylosim's ``safe_add`` result."""
    return np.clip(x, I16_MIN, I16_MAX)


def leak(x: np.ndarray, dash: int | np.ndarray) -> np.ndarray:
    """``D(x, dash)``: ``x >> dash`` (arithmetic), or ``sign(x)`` where the shift gives 0 (int64)."""
    x = np.asarray(x, dtype=np.int64)
    d = x >> np.asarray(dash, dtype=np.int64)
    return np.where(d == 0, np.sign(x), d)


def xylo_decay(x: np.ndarray, dash: int | np.ndarray) -> np.ndarray:
    """One bit-shift decay step ``x - D(x, dash)`` (module docstring): ``x·(1 - 2^-dash)`` with at least
    one unit of leak toward 0; ``dash = 0`` gives 0. int64 in (int16 values), int64 out."""
    x = np.asarray(x, dtype=np.int64)
    return x - leak(x, dash)


def synaptic_terms(counts: np.ndarray, weight: np.ndarray, cap: int) -> np.ndarray:
    """The ordered per-source terms ``min(n_p, cap)·W[c, p]``: counts ``[..., P]`` (spike counts per source),
    ``weight`` ``[C, P]`` (torch layout, already shifted, J units) -> int64 ``[..., P, C]``."""
    n = np.minimum(np.asarray(counts, dtype=np.int64), int(cap))
    return n[..., :, None] * np.asarray(weight, dtype=np.int64).T


def fold_terms(isyn: np.ndarray, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``isyn`` [..., C] after the saturating adds of ``terms`` [..., K, C] in order (axis -2), and a bool mask
    [..., C] of the neurons where some add was clipped.

    Fast path, exact: when every partial sum provably stays in int16 (``isyn + Σ positive terms ≤ 32767``
    and ``isyn + Σ negative terms ≥ -32768`` for a neuron), the fold is the plain sum; the remaining
    neurons are folded term by term.
    """
    isyn = np.asarray(isyn, dtype=np.int64)
    terms = np.asarray(terms, dtype=np.int64)
    pos = np.where(terms > 0, terms, 0).sum(axis=-2)
    neg = np.where(terms < 0, terms, 0).sum(axis=-2)
    safe = (isyn + pos <= I16_MAX) & (isyn + neg >= I16_MIN)
    out = isyn + pos + neg
    clipped = np.zeros(isyn.shape, dtype=bool)
    if safe.all():
        return out, clipped
    idx = np.nonzero(~safe)
    s = isyn[idx]
    hit = np.zeros(s.shape, dtype=bool)
    tk = np.moveaxis(terms, -2, 0)  # [K, ..., C]
    for k in range(tk.shape[0]):
        raw = s + tk[k][idx]
        s = sat16(raw)
        hit |= s != raw
    out[idx] = s
    clipped[idx] = hit
    return out, clipped


def fire(v: np.ndarray, threshold: np.ndarray, max_spikes: int) -> tuple[np.ndarray, np.ndarray]:
    """xylosim's spike loop in closed form: ``z = min(max_spikes, v // θ)`` where ``v ≥ θ`` (θ > 0; θ = 0 fires
    ``max_spikes`` times while v ≥ 0 and leaves v), then ``v -= z·θ``. Returns (v, z) int64."""
    th = np.asarray(threshold, dtype=np.int64)
    safe_th = np.where(th > 0, th, 1)
    z = np.where(v >= th, np.where(th > 0, np.minimum(v // safe_th, max_spikes), max_spikes), 0)
    return v - z * th, z


@dataclass
class XyloNeuron(NeuronParams):
    """Integer parameters of one layer of Xylo neurons (equation: module docstring).

    Attributes (units; bit widths in brackets):
        threshold: θ per neuron [int16 state units, 0..32767]; fires while v ≥ θ, subtracting θ each time.
        bias: added to dv every step [int16 state units, -32768..32767].
        dash_syn: synaptic-current decay shift per neuron [4 bits, 0..15]; ``isyn ← isyn - D(isyn)``.
        dash_mem: membrane decay shift per neuron [4 bits, 0..15].
        max_spikes: spikes per neuron per step at most [1..31]: 31 on a Xylo hidden neuron, 1 on a readout.
        sigma: float64 per neuron, one state unit in the trained model's units; optional.

    The states (``isyn``, ``v``) are int16 and saturate; the synapse weights feeding the layer are the
    already-shifted int8 weights (``w << shift``, J units = state units, F = 0).
    """

    kind = "xylo"
    state_names = ("isyn", "v")
    #: Xylo only subtracts θ (once per spike); generic code reads ``neuron.reset``
    reset: ClassVar[str] = "subtract"
    #: every Xylo state is int16; no fractional bits (the generic code reads these)
    state_bits: ClassVar[int] = 16
    current_bits: ClassVar[int] = 16
    frac_bits: ClassVar[int] = 0

    threshold: np.ndarray = array_field()
    bias: np.ndarray = array_field()
    dash_syn: np.ndarray = array_field()
    dash_mem: np.ndarray = array_field()
    max_spikes: int = MAX_HIDDEN_SPIKES
    sigma: np.ndarray | None = array_field(default=None)

    @property
    def current_limit(self) -> int:
        """The largest |isyn| (32767, int16)."""
        return I16_MAX

    def validate(self, layer: str, channels: int) -> None:
        """Types, shapes (one per neuron), θ in 0..32767, bias in int16, dashes in 0..15, max_spikes in 1..31."""
        self._check_width(layer, "max_spikes", 1, MAX_HIDDEN_SPIKES)
        self._check_channel_array(layer, "threshold", channels, lo=0, hi=I16_MAX,
                                  what=" (int16 threshold; a negative θ makes xylosim's v -= θ wrap)")
        self._check_channel_array(layer, "bias", channels, lo=I16_MIN, hi=I16_MAX, what=" (int16 bias)")
        for name in ("dash_syn", "dash_mem"):
            self._check_channel_array(layer, name, channels, lo=0, hi=DASH_MAX, what=" (4-bit dash)")
        self._check_sigma(layer, channels)

    def describe(self) -> str:
        """``xylo ≤31 spikes`` (the kind and its spike cap)."""
        return f"xylo ≤{self.max_spikes} spike{'s' if self.max_spikes > 1 else ''}"

    # ------------------------------------------------------------------ bounds
    def _peaks(self, j_pos: np.ndarray, j_neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per neuron (isyn peak, |dv| peak, |v| peak) under currents in ``[-j_neg, j_pos]`` with no clipping,
        float64. ``x - D(x) ≤ |x|(1 - 2^-d) + 1`` gives, with P the pre-decay current peak,
        ``P ≤ (J + 1)·2^d_syn``; the membrane ``V ≤ (P + |b| + 1)·2^d_mem``; ``|dv| ≤ V·2^-d_mem + 1 + P + |b|``."""
        j = np.maximum(np.asarray(j_pos, dtype=np.float64), np.asarray(j_neg, dtype=np.float64))
        ds = np.exp2(np.asarray(self.dash_syn, dtype=np.float64))
        dm = np.exp2(np.asarray(self.dash_mem, dtype=np.float64))
        b = np.abs(np.asarray(self.bias, dtype=np.float64))
        p = (j + 1.0) * ds
        v = (p + b + 1.0) * dm
        dv = v / dm + 1.0 + p + b
        return p, dv, v

    def state_bound(self, j_pos: np.ndarray, j_neg: np.ndarray) -> StateBound:
        """Proven peaks of v and isyn fed summed currents in ``[-j_neg, j_pos]`` (state units): saturation-free
        when every peak (and the intermediate dv) stays within int16. A sufficient bound, not a tight one."""
        p, dv, v = self._peaks(j_pos, j_neg)
        vpeak = float(np.max(np.maximum(v, dv), initial=0.0))
        return StateBound(0, vpeak, -vpeak, int(np.max(np.asarray(self.threshold), initial=0)), 16,
                          float(np.max(p, initial=0.0)), I16_MAX)

    def channel_usage(self, j_pos: np.ndarray, j_neg: np.ndarray) -> np.ndarray:
        """Per neuron, the larger proven peak (v, dv or isyn) over 32767; float64 ``[C]``."""
        p, dv, v = self._peaks(j_pos, j_neg)
        return np.maximum(np.maximum(v, dv), p) / float(I16_MAX)

    # ------------------------------------------------------------------ the specification
    def reference_step(self, state: tuple[np.ndarray, ...], j: np.ndarray
                       ) -> tuple[tuple[np.ndarray, ...], np.ndarray, int]:
        """One step of the module docstring's equation, pure NumPy (the specification).

        ``state`` = (isyn, v), int64 ``[..., C]``; ``j`` = ``[..., C]`` (one term) or ``[..., K, C]`` (K
        ordered terms, see the module docstring). Returns ``((isyn, v), spike counts uint8, saturation
        events)``: the neurons where any add of the step was clipped (a term's add, dv + isyn, dv + bias,
        v + dv), one event per neuron-step at most.
        """
        isyn, v = (np.asarray(s, dtype=np.int64) for s in state)
        j = np.asarray(j, dtype=np.int64)
        terms = j[..., None, :] if j.ndim == isyn.ndim else j
        if terms.ndim != isyn.ndim + 1 or terms.shape[-1] != isyn.shape[-1]:
            raise ValueError(f"xylo: j must be [..., C] or [..., K, C] for a state of shape {isyn.shape}, got {j.shape}")
        isyn, clipped = fold_terms(isyn, terms)
        (isyn, v), z, _ = self.integrate(isyn, v, clipped)
        return (isyn, v), z, int(np.count_nonzero(clipped))

    def integrate(self, isyn: np.ndarray, v: np.ndarray, clipped: np.ndarray | None = None
                  ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, int]:
        """The step after the input terms are folded into ``isyn`` (module docstring, from the decay of isyn on):
        ``((isyn, v), spike counts uint8, saturation events)``; int64 ``[..., C]`` in and out. ``clipped``: bool
        [..., C], the neurons whose fold clipped (updated in place with this part's clips; the events are the
        neurons clipped anywhere in the step). Every kernel shares the fold's definition and this part."""
        if clipped is None:
            clipped = np.zeros(np.shape(isyn), dtype=bool)
        isyn = xylo_decay(isyn, self.dash_syn)
        m = -leak(v, self.dash_mem)
        m = np.where(m == -I16_MIN, I16_MIN, m)  # int16 negation of -32768 wraps (dash_mem = 0 only)
        raw = m + isyn
        dv = sat16(raw)
        clipped |= dv != raw
        raw = dv + np.asarray(self.bias, dtype=np.int64)
        dv = sat16(raw)
        clipped |= dv != raw
        raw = v + dv
        v = sat16(raw)
        clipped |= v != raw
        v, z = fire(v, self.threshold, int(self.max_spikes))
        return (isyn, v), z.astype(np.uint8), int(np.count_nonzero(clipped))
