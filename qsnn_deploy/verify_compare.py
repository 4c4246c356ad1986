"""The comparison of a backend's spike trains with the reference's, accumulated batch by batch
(:func:`compare_layers`; the trains themselves are not kept), and the warnings of a verification: when
equal spike trains prove little on these inputs (:func:`evidence_warnings`) and when states clipped
(:func:`saturation_warnings`: a (neuron, step) whose B_v-bit state was clipped).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .frozen import FrozenNet
from .simulators import SimResult
from .verify_report import LayerComparison, Mismatch

# ------------------------------------------------------------------------------ comparison
class _LayerTally:
    """One layer's comparison accumulated over batches (the spike trains themselves are not kept)."""

    def __init__(self, name: str):
        self.name = name
        self.n_diff = 0
        self.ref_spikes = 0
        self.spikes = 0
        self.equal_counts = 0
        self.count_entries = 0
        self.saturations = 0
        self.first: tuple | None = None  # (step, sample, *neuron) of the earliest mismatch so far

    def add(self, ref: np.ndarray, oth: np.ndarray, offset: int, saturations: int,
            ref_counts: np.ndarray | None = None) -> None:
        """Add one batch: spike trains [T, batch, ...] of the reference and the other side; ``offset`` is
        the batch's first sample index; ``ref_counts`` (the reference's per-neuron counts) may be passed
        when several backends are compared with the same batch."""
        if ref.shape != oth.shape:
            raise ValueError(f"layer {self.name!r}: spike shapes differ: {ref.shape} vs {oth.shape}")
        self.saturations += int(saturations)
        counts_ref = ref.sum(axis=0, dtype=np.int64) if ref_counts is None else ref_counts
        n_ref = int(counts_ref.sum())
        self.ref_spikes += n_ref
        self.count_entries += int(counts_ref.size)
        if np.array_equal(ref, oth):  # the common case: one fast pass, nothing else to count
            self.spikes += n_ref
            self.equal_counts += int(counts_ref.size)
            return
        diff = ref != oth
        counts_oth = oth.sum(axis=0, dtype=np.int64)
        self.n_diff += int(np.count_nonzero(diff))
        self.spikes += int(counts_oth.sum())
        self.equal_counts += int(np.count_nonzero(counts_ref == counts_oth))
        idx = np.argwhere(diff)  # [k, ndim]: (step, sample, neuron...)
        order = np.lexsort(tuple(idx[:, i] for i in range(idx.shape[1] - 1, -1, -1)))
        step, sample, *neuron = (int(v) for v in idx[order[0]])
        cand = (step, sample + offset, *neuron)
        if self.first is None or cand < self.first:
            self.first = cand
            self._values = (int(ref[(step, sample, *neuron)]), int(oth[(step, sample, *neuron)]))

    def result(self) -> LayerComparison:
        first = None
        if self.first is not None:
            step, sample, *neuron = self.first
            first = Mismatch(self.name, sample, step, list(neuron), *self._values)
        agreement = self.equal_counts / self.count_entries if self.count_entries else 1.0
        return LayerComparison(self.name, self.n_diff == 0, self.n_diff, self.ref_spikes, self.spikes, agreement,
                               self.saturations, first)


class _Tally:
    """A backend's comparison with the reference, accumulated over batches."""

    def __init__(self, names: Sequence[str]):
        self.layers = {name: _LayerTally(name) for name in names}
        self.agree = 0
        self.correct = 0
        self.n = 0
        self.seconds = 0.0

    def add(self, ref: SimResult, other: SimResult, offset: int, labels=None,
            ref_counts: dict[str, np.ndarray] | None = None, ref_preds: np.ndarray | None = None) -> None:
        for name, tally in self.layers.items():
            tally.add(ref.spikes[name], other.spikes[name], offset, other.saturations.get(name, 0),
                      None if ref_counts is None else ref_counts[name])
        preds = other.predictions()
        self.agree += int(np.count_nonzero(preds == (ref.predictions() if ref_preds is None else ref_preds)))
        if labels is not None:
            self.correct += int(np.count_nonzero(preds == np.asarray(labels)[offset:offset + preds.shape[0]]))
        self.n += int(preds.shape[0])

    def layer_results(self) -> list[LayerComparison]:
        return [t.result() for t in self.layers.values()]

    def agreement(self) -> float:
        return self.agree / self.n if self.n else 1.0

    def accuracy(self, labels) -> float | None:
        return None if labels is None or not self.n else self.correct / self.n


def compare_layers(reference: SimResult, other: SimResult) -> list[LayerComparison]:
    """Spike-train comparison per layer (no states yet)."""
    out = []
    for name, ref in reference.spikes.items():
        tally = _LayerTally(name)
        tally.add(ref, other.spikes[name], 0, other.saturations.get(name, 0))
        out.append(tally.result())
    return out


class _RunSummary:
    """What the warnings need from the reference run, accumulated over batches: whether each layer
    spiked, its neuron-steps and clips, and the output spike counts per sample (small)."""

    def __init__(self):
        self.spiked: dict[str, bool] = {}
        self.neuron_steps: dict[str, int] = {}
        self.saturations: dict[str, int] = {}
        self.counts: list[np.ndarray] = []
        self.steps = 0

    def add(self, res: SimResult) -> None:
        for name, spikes in res.spikes.items():
            self.spiked[name] = self.spiked.get(name, False) or bool(spikes.any())
            self.neuron_steps[name] = self.neuron_steps.get(name, 0) + int(spikes.size)
            self.saturations[name] = self.saturations.get(name, 0) + int(res.saturations.get(name, 0))
            self.steps = int(spikes.shape[0])
        self.counts.append(res.output_counts())

    @classmethod
    def of(cls, res: SimResult) -> "_RunSummary":
        summary = cls()
        summary.add(res)
        return summary

    def output_counts(self) -> np.ndarray:
        return np.concatenate(self.counts, axis=0) if self.counts else np.zeros((0, 0), dtype=np.int64)


def _first_layer_mismatch(layers: list[LayerComparison]) -> Mismatch | None:
    for layer in layers:
        if layer.first_mismatch is not None:
            return layer.first_mismatch
    return None


def evidence_warnings(ref: "SimResult | _RunSummary", labels: np.ndarray | None = None) -> list[str]:
    """Why equal spike trains may prove little on these inputs, one sentence each (empty when none).

    * a layer that never spiked on any sample at any step: every backend agrees on silence, which
      says nothing about its weights, thresholds or decay;
    * a constant output: every sample gets the same output spike counts (or no output spike at all);
    * accuracy at chance (labels given, at least 20 samples): at most 1.5 / (number of classes).
    """
    summary = ref if isinstance(ref, _RunSummary) else _RunSummary.of(ref)
    out = []
    counts = summary.output_counts()
    n = counts.shape[0]
    for name, spiked in summary.spiked.items():
        if not spiked:
            out.append(f"layer {name!r} never spiked ({n} samples × {summary.steps} steps): equal silence proves "
                       "nothing about it; use inputs that drive it or check its thresholds")
    if n > 1 and np.all(counts == counts[0]):
        out.append(f"the output is the same for all {n} samples (spike counts {counts[0].tolist()}): the network "
                   "does not respond to its input")
    if labels is not None and n >= 20:
        classes = counts.shape[1]
        acc = float(np.mean(counts.argmax(axis=1) == np.asarray(labels)[:n]))
        if classes > 1 and acc <= 1.5 / classes:
            out.append(f"accuracy {100 * acc:.1f}% is at chance level ({classes} classes: {100 / classes:.1f}%): "
                       "an untrained or broken model, or inputs it was not trained on")
    return out


SATURATION_FIX = ("re-fit F per layer (qsnn_deploy.profiles.fit_frac_bits for a trained model, freeze(frac_bits=None) "
                  "for a float one), or train with --profile loihi")


def saturation_warnings(ref: "SimResult | _RunSummary", net: FrozenNet | None = None) -> list[str]:
    """One sentence per layer whose membrane state was clipped to B_v bits in ``ref``: the layer, the
    fraction of neuron-steps clipped and the fix. Clips are exact in every backend (each clips the
    same way), but a target with another state width would not reproduce them."""
    summary = ref if isinstance(ref, _RunSummary) else _RunSummary.of(ref)
    kinds = {} if isinstance(ref, _RunSummary) else dict(ref.info.get("kinds", {}))
    if net is not None:
        kinds.update({layer.name: layer.kind for layer in net.layers})
    out = []
    for name, n_sat in summary.saturations.items():
        if not n_sat:
            continue
        total = summary.neuron_steps.get(name, 0)
        frac = f"{100.0 * n_sat / total:.3g}% of {total:,} neuron-steps" if total else "some neuron-steps"
        if kinds.get(name) == "xylo":
            out.append(f"layer {name!r}: Xylo's int16 states saturated in {frac}; that is the chip's own arithmetic "
                       f"(xylosim saturates the same way); fewer clips need smaller weights or shifts in training")
            continue
        both = " (current and membrane clips together: a two-state kind can pass 100%)" if kinds.get(name) == "cuba" else ""
        out.append(f"layer {name!r}: the state clipped in {frac} ({n_sat:,} events){both}; fix: {SATURATION_FIX}")
    return out
