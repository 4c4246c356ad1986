"""Activity figures of a frozen network over data (docs/report.md): an :class:`ActivityAccumulator` fed
batch by batch with :class:`~qsnn_deploy.simulators.SimResult` s gives spikes per sample, firing rates
(spikes per neuron per step), synaptic operations (SOPs: spikes times their exact fan-out), saturation
events (a (neuron, step) whose B_v-bit state was clipped), membrane-state statistics and histograms
(log-spaced in |v|, :data:`HIST_BINS_PER_OCTAVE` bins per factor of two) and a raster of one sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..frozen import FrozenNet
from .static import input_is_spikes, static_figures

if TYPE_CHECKING:
    from ..simulators.base import SimResult

#: Membrane-state histogram resolution: bins per factor of two in |v|.
HIST_BINS_PER_OCTAVE = 4


# ------------------------------------------------------------------------------ state histogram
def _fine_bins(state_bits: int, per_octave: int) -> int:
    return per_octave * (state_bits - 1)


def state_histogram_counts(v: np.ndarray, state_bits: int, per_octave: int = HIST_BINS_PER_OCTAVE) -> np.ndarray:
    """Fine counts of integer states ``v`` (accumulate these, then call :func:`state_histogram`):
    index k (= q·(B_v-1)) holds v = 0; k+1+m holds v > 0 with 2^(m/q) <= v < 2^((m+1)/q); k-1-m
    holds its mirror v < 0."""
    k = _fine_bins(state_bits, per_octave)
    v = np.asarray(v).reshape(-1)
    out = np.zeros(2 * k + 1, dtype=np.int64)
    zero = v == 0
    out[k] = int(np.count_nonzero(zero))
    nz = v[~zero]
    if nz.size:
        m = np.floor(per_octave * np.log2(np.abs(nz).astype(np.float64))).astype(np.int64)
        np.clip(m, 0, k - 1, out=m)
        idx = np.where(nz > 0, k + 1 + m, k - 1 - m)
        out += np.bincount(idx, minlength=2 * k + 1)
    return out


def state_histogram(fine: np.ndarray, state_bits: int, per_octave: int = HIST_BINS_PER_OCTAVE) -> tuple[list[int], list[int]]:
    """(edges, counts) with INTEGER edges over the whole signed state range: bin ``[a, b)`` holds
    the integers a .. b-1. Edges are ``-(vmax) .. -1, 0, 1, 2, 3, ..., 2^(B_v-1)``: about q bins per
    factor of two in |v| (fewer where a bin would hold no integer), one bin [0, 1) for v = 0,
    mirrored for negative states."""
    k = _fine_bins(state_bits, per_octave)
    e = np.ceil(2.0 ** (np.arange(k + 1) / per_octave)).astype(np.int64)  # v >= 2^(m/q) <=> v >= ceil(2^(m/q))
    e[-1] = 1 << (state_bits - 1)
    keep = e[1:] > e[:-1]                      # a bin with equal integer edges holds no integer: drop it
    fine = np.asarray(fine, dtype=np.int64)
    pos = fine[k + 1:][keep]
    neg = fine[:k][::-1][keep][::-1]
    ek = np.concatenate([e[:-1][keep], e[-1:]])
    edges = np.concatenate([-(ek[::-1] - 1), ek])
    counts = np.concatenate([neg, fine[k:k + 1], pos])
    return [int(x) for x in edges], [int(c) for c in counts]


# ------------------------------------------------------------------------------ activity
@dataclass
class LayerActivity:
    """Raw activity of one layer over the data (one entry per sample where it says so)."""

    spikes_per_sample: np.ndarray                # int64 [N]: spikes of this layer's neurons over T
    sops_per_sample: np.ndarray | None           # int64 [N]: SOPs in this layer's synapse (None: graded input)
    neuron_spikes: np.ndarray                    # int64 [neurons]: spikes per neuron, summed over samples
    saturation_events: int
    state_min: int | None = None
    state_max: int | None = None
    state_hist: np.ndarray | None = None         # fine counts (state_histogram_counts); see state_histogram
    raster: np.ndarray | None = None             # uint8 [T, neurons] of the raster sample


@dataclass
class Activity:
    """Activity of a whole net over the data, as :class:`ActivityAccumulator` collects it.

    ``layers`` maps layer names to :class:`LayerActivity`; ``input_ops_per_sample`` (graded input only)
    counts nonzero input values × fan-out over T; ``raster_sample`` / ``raster_input`` the sample shown
    in the raster plot; ``predictions`` and ``labels`` per sample when known; ``source`` and ``backend``
    say what was simulated and by which backend.
    """
    n_samples: int
    num_steps: int
    layers: dict[str, LayerActivity]
    input_ops_per_sample: np.ndarray | None      # graded input: nonzero input values × fan-out, over T
    input_nonzero_per_sample: np.ndarray         # nonzero input values per sample, over T
    raster_sample: int
    raster_input: np.ndarray | None = None       # the raster sample's input ([*shape] or [T, *shape])
    predictions: np.ndarray | None = None
    labels: np.ndarray | None = None
    source: str = ""
    backend: str = ""
    #: per input position (flattened): nonzero input values (spike input: spike counts), summed over T and
    #: samples; with the first layer's nonzero fan-out it gives NeuroBench's effective operations of the input
    input_nonzero_per_position: np.ndarray | None = None


class ActivityAccumulator:
    """Collects activity figures batch by batch (memory stays bounded: states are histogrammed,
    not kept).

    Args:
        net: the frozen network the results come from.
        raster_sample: index (over all samples added) of the sample whose spike raster is kept.
    """

    def __init__(self, net: FrozenNet, raster_sample: int = 0, source: str = ""):
        self.net = net
        self.raster_sample = int(raster_sample)
        self.source = source
        _, self.static, self.geoms = static_figures(net)
        self.n = 0
        self.steps: int | None = None
        self.backend = ""
        names = [layer.name for layer in net.layers]
        self._spikes = {n: [] for n in names}
        self._sops: dict[str, list] = {n: [] for n in names}
        self._neuron = {n: np.zeros(s.neurons, dtype=np.int64) for n, s in zip(names, self.static)}
        self._sat = {n: 0 for n in names}
        self._vmin: dict[str, int | None] = {n: None for n in names}
        self._vmax: dict[str, int | None] = {n: None for n in names}
        self._hist: dict[str, np.ndarray | None] = {n: None for n in names}
        self._raster: dict[str, np.ndarray | None] = {n: None for n in names}
        self._raster_input = None
        self._input_ops: list[np.ndarray] = []
        self._input_nz: list[np.ndarray] = []
        self._input_pos: np.ndarray | None = None
        self._preds: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def add(self, x: np.ndarray, result: SimResult, labels: np.ndarray | None = None) -> "ActivityAccumulator":
        """Add one batch: its integer input ``x`` ([B, *shape] static or [T, B, *shape]) and the
        :class:`~qsnn_deploy.simulators.SimResult` of running it (states optional)."""
        net = self.net
        names = [layer.name for layer in net.layers]
        first = result.spikes[names[0]]
        steps, b = int(first.shape[0]), int(first.shape[1])
        if self.steps is None:
            self.steps = steps
        elif self.steps != steps:
            raise ValueError(f"batches with different T: {self.steps} and {steps}")
        self.backend = result.backend or self.backend
        # ---- input: nonzero values (graded) or spikes, times their fan-out into layer 0
        x = np.asarray(x)
        shape = tuple(net.input.shape)
        static = x.ndim == len(shape) + 1
        if static:
            flat = x.reshape(b, -1).astype(np.int64)
            nz = (flat != 0).astype(np.int64)
            src = np.abs(flat) if input_is_spikes(net) else nz
            weighted_in = src @ self.geoms[0].fan_out * steps
            nz_count = nz.sum(axis=1) * steps
            pos = src.sum(axis=0) * steps
        else:
            flat = x.reshape(x.shape[0], b, -1).astype(np.int64)
            nz = (flat != 0).astype(np.int64)
            src = np.abs(flat) if input_is_spikes(net) else nz
            weighted_in = (src.sum(axis=0)) @ self.geoms[0].fan_out
            nz_count = nz.sum(axis=(0, 2))
            pos = src.sum(axis=(0, 1))
        self._input_nz.append(nz_count)
        self._input_pos = pos if self._input_pos is None else self._input_pos + pos
        if input_is_spikes(net):
            self._sops[names[0]].append(weighted_in)
        else:
            self._input_ops.append(weighted_in)
        k = self.raster_sample - self.n
        if 0 <= k < b:
            self._raster_input = x[k].copy() if static else x[:, k].copy()
        # ---- layers
        for li, (name, st) in enumerate(zip(names, self.static)):
            s = result.spikes[name]
            if s.shape[:2] != (steps, b):
                raise ValueError(f"layer {name!r}: spikes of shape {s.shape}, expected [T={steps}, B={b}, ...]")
            per_tn = s.reshape(steps, b, -1)
            counts = per_tn.sum(axis=0, dtype=np.int64)  # [B, neurons]
            self._spikes[name].append(counts.sum(axis=1))
            self._neuron[name] += counts.sum(axis=0)
            if li + 1 < len(names):
                self._sops[names[li + 1]].append(counts @ self.geoms[li + 1].fan_out)
            self._sat[name] += int(result.saturations.get(name, 0))
            if result.states is not None and name in result.states:
                v = result.states[name]
                lo, hi = int(v.min()), int(v.max())
                self._vmin[name] = lo if self._vmin[name] is None else min(lo, self._vmin[name])
                self._vmax[name] = hi if self._vmax[name] is None else max(hi, self._vmax[name])
                h = state_histogram_counts(v, st.state_bits)
                self._hist[name] = h if self._hist[name] is None else self._hist[name] + h
            if 0 <= k < b:
                self._raster[name] = per_tn[:, k].astype(np.uint8).copy()
        self._preds.append(result.predictions())
        if labels is not None:
            self._labels.append(np.asarray(labels).reshape(-1))
        self.n += b
        return self

    def finish(self) -> Activity:
        """The accumulated :class:`Activity` over every batch added (ValueError when none was)."""
        if not self.n:
            raise ValueError("no data was added")
        names = [layer.name for layer in self.net.layers]
        cat = lambda parts: np.concatenate(parts).astype(np.int64)  # noqa: E731
        layers = {}
        for name in names:
            layers[name] = LayerActivity(
                spikes_per_sample=cat(self._spikes[name]),
                sops_per_sample=cat(self._sops[name]) if self._sops[name] else None,
                neuron_spikes=self._neuron[name].copy(), saturation_events=self._sat[name],
                state_min=self._vmin[name], state_max=self._vmax[name], state_hist=self._hist[name],
                raster=self._raster[name])
        labels = cat(self._labels) if self._labels and sum(len(p) for p in self._labels) == self.n else None
        return Activity(self.n, int(self.steps), layers, cat(self._input_ops) if self._input_ops else None,
                        cat(self._input_nz), self.raster_sample, self._raster_input, cat(self._preds), labels,
                        self.source, self.backend, self._input_pos.astype(np.int64).copy())


def collect_activity(net: FrozenNet, x: np.ndarray, labels: np.ndarray | None = None, num_steps: int | None = None,
                     backend: str = "numpy", batch_size: int = 50, raster_sample: int = 0, source: str = "",
                     record_states: bool = True, progress: Callable[[int], None] | None = None,
                     **backend_options: Any) -> Activity:
    """Simulate ``x`` with ``backend`` in batches (states recorded) and accumulate the activity."""
    from ..simulators import create_backend, prepare_input

    arr, static, steps = prepare_input(net, x, num_steps)
    n = arr.shape[0] if static else arr.shape[1]
    if not 0 <= raster_sample < n:
        raise ValueError(f"raster sample {raster_sample} is outside the {n} samples")
    sim = create_backend(backend, net, **backend_options)
    acc = ActivityAccumulator(net, raster_sample, source)
    lab = None if labels is None else np.asarray(labels)
    for start in range(0, n, batch_size):
        xs = arr[start:start + batch_size] if static else arr[:, start:start + batch_size]
        res = sim.run(xs, steps, record_states=record_states)
        acc.add(xs, res, None if lab is None else lab[start:start + batch_size])
        if progress:
            progress(xs.shape[0] if static else xs.shape[1])
    return acc.finish()


def activity_from_result(net: FrozenNet, result: SimResult, x: np.ndarray, labels: np.ndarray | None = None,
                         raster_sample: int = 0, source: str = "") -> Activity:
    """The activity of one :class:`~qsnn_deploy.simulators.SimResult` (all samples at once)."""
    return ActivityAccumulator(net, raster_sample, source).add(x, result, labels).finish()
