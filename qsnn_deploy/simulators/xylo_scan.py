"""The NumPy kernel of neuron kind ``"xylo"`` (:mod:`qsnn_deploy.neurons.xylo`): a whole layer, step by step.

A Xylo neuron's step input is not one summed current but the ORDERED list of per-source terms, each
added with int16 saturation (the kind's module docstring), so this kernel takes the layer's input
spike counts, not J. Per step ``t``, for a batch ``[B]`` of samples and the layer's ``C`` neurons:

* sources, in xylosim's delivery order: the layer's feed-forward inputs ``x_t`` (``P`` of them, counts
  clipped to ``cap``: 15 for the net's input, 31 for a hidden layer), then its own recurrent spikes
  ``z_{t-1}`` (``C`` of them, clipped to 31);
* fast path, exact: the positive and the negative parts of the terms are summed separately (float64
  GEMMs of integers below 2**53: exact); where ``isyn + Σ⁺ ≤ 32767`` and ``isyn + Σ⁻ ≥ -32768`` no
  partial sum of any order can leave int16, and the fold equals ``isyn + Σ⁺ + Σ⁻``;
* the other (sample, neuron) pairs are folded source by source with a saturating add each, in order
  (only sources with a non-zero count: a zero term never changes a state already in int16);
* then the kind's own :meth:`~qsnn_deploy.neurons.XyloNeuron.integrate` (decays, bias, fire).

Tested against the kind's ``reference_step`` (which folds every term, in order) in tests/test_xylo.py.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..neurons.xylo import I16_MAX, I16_MIN, MAX_HIDDEN_SPIKES, MAX_INPUT_SPIKES

if TYPE_CHECKING:
    from ..frozen import Layer


def layer_matrices(layer: Layer) -> tuple[np.ndarray, np.ndarray | None]:
    """(W [C, P], R [C, C] or None) of a xylo layer as int64 (J units: the weights are already shifted)."""
    w = np.asarray(layer.synapse.weight, dtype=np.int64)
    r = layer.synapse.recurrent
    return w, (None if r is None else np.asarray(r, dtype=np.int64))


def _split(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positive part, negative part) of ``m`` [C, P] transposed to [P, C], float64 for the exact GEMM."""
    return np.ascontiguousarray(np.maximum(m, 0).T.astype(np.float64)), np.ascontiguousarray(np.minimum(m, 0).T.astype(np.float64))


def fold_sources(isyn: np.ndarray, sources: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """``isyn`` [B, C] after the saturating adds of every source's terms in order, and the bool mask [B, C] of the
    neurons where some add was clipped.

    ``sources``: ``(counts [B, P] int64 (already capped), W [C, P] int64)`` in delivery order; source ``p`` of
    a block adds ``counts[:, p]·W[:, p]``. Fast path and fallback as in the module docstring.
    """
    pos = np.zeros(isyn.shape, dtype=np.float64)
    neg = np.zeros(isyn.shape, dtype=np.float64)
    for counts, w in sources:
        wp, wn = _split(w)
        cf = counts.astype(np.float64)
        pos += cf @ wp
        neg += cf @ wn
    pos_i, neg_i = np.rint(pos).astype(np.int64), np.rint(neg).astype(np.int64)
    out = isyn + pos_i + neg_i
    unsafe = (isyn + pos_i > I16_MAX) | (isyn + neg_i < I16_MIN)
    clipped = np.zeros(isyn.shape, dtype=bool)
    if not unsafe.any():
        return out, clipped
    bi, ci = np.nonzero(unsafe)
    s = isyn[bi, ci]
    hit = np.zeros(s.shape, dtype=bool)
    for counts, w in sources:
        active = np.flatnonzero(counts[bi].any(axis=0))
        for p in active:
            raw = s + counts[bi, p] * w[ci, p]
            s = np.clip(raw, I16_MIN, I16_MAX)
            hit |= s != raw
    out[bi, ci] = s
    clipped[bi, ci] = hit
    return out, clipped


def xylo_layer_scan(layer: Layer, x: np.ndarray, static: bool, steps: int, record: bool, cap: int = MAX_HIDDEN_SPIKES
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Run one xylo layer over ``steps`` steps. ``x``: input counts ``[B, P]`` (static) or ``[T, B, P]``
    (flattened per sample when the synapse flattens); ``cap``: the clip of those counts (15 for the net's
    input, 31 for a layer's spikes). Returns (spike counts uint8 [T, B, C], v int64 [T, B, C] or None,
    saturation events per step int64 [T]: neurons clipped anywhere in the step)."""
    neuron = layer.neuron
    w, r = layer_matrices(layer)
    lead = 1 if static else 2
    x = np.asarray(x)
    x = x.reshape(x.shape[:lead] + (-1,)).astype(np.int64)
    b, c = x.shape[-2], w.shape[0]
    isyn = np.zeros((b, c), dtype=np.int64)
    v = np.zeros((b, c), dtype=np.int64)
    z = np.zeros((b, c), dtype=np.int64)
    spikes = np.zeros((steps, b, c), dtype=np.uint8)
    states = np.empty((steps, b, c), dtype=np.int64) if record else None
    per_step = np.zeros(steps, dtype=np.int64)
    xin_static = np.minimum(x, cap) if static else None
    for t in range(steps):
        xt = xin_static if static else np.minimum(x[t], cap)
        sources = [(xt, w)]
        if r is not None:
            sources.append((np.minimum(z, MAX_HIDDEN_SPIKES), r))
        isyn, clipped = fold_sources(isyn, sources)
        (isyn, v), zt, per_step[t] = neuron.integrate(isyn, v, clipped)
        z = zt.astype(np.int64)
        spikes[t] = zt
        if record:
            states[t] = v
    return spikes, states, per_step


xylo_layer_scan.takes_inputs = True  # type: ignore[attr-defined]
#: the clip of the counts a layer receives: the net's input (first layer) or a layer's spikes
INPUT_CAP, HIDDEN_CAP = MAX_INPUT_SPIKES, MAX_HIDDEN_SPIKES
