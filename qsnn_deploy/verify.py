"""Run the PyTorch model and several backends on the same inputs; compare spike trains.

Equivalence is judged on every LIF layer's spike tensor [T, N, ...], not on counts: a backend is
*bit-exact* when every spike of every neuron at every step equals the reference (the NumPy
simulator). On the first mismatch the report names the layer, sample, step and neuron and gives
both membrane states (re-simulated for that one sample).

The PyTorch model is held to the same bar when it is deploy-faithful (every neuron a
:class:`~qsnn_deploy.nn.QLeaky`): promise 1 of docs/integer-semantics.md §4. An ordinary snnTorch +
Brevitas model is not: its agreement with the frozen net is *measured* (spike-count agreement, prediction
agreement, accuracy difference) and reported (promise 2).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

from .calling import ForwardFn, inspect_model
from .frozen import FrozenNet
from .nn.blocks import parse_blocks
from .nn.neuron import QNeuron
from .simulators import SimResult, create_backend, prepare_input

SCHEMA = "qsnn-verify"
SCHEMA_VERSION = 1
REFERENCE = "numpy"


@dataclass
class Mismatch:
    """The earliest disagreement of one layer: smallest step, then sample, then neuron."""

    layer: str
    sample: int
    step: int
    neuron: list[int]
    reference_spike: int
    other_spike: int
    reference_state: float | None = None
    other_state: float | None = None
    threshold: int | None = None

    def describe(self) -> str:
        """One sentence: where (layer, sample, step, neuron), both spikes, and both membrane states when known."""
        s = (f"layer {self.layer}, sample {self.sample}, step {self.step}, neuron {tuple(self.neuron)}: "
             f"reference spike {self.reference_spike}, other {self.other_spike}")
        if self.reference_state is not None:
            other = "n/a" if self.other_state is None else f"{self.other_state:.12g}"
            s += f"; states v = {self.reference_state:.12g} (reference) vs {other}"
        if self.threshold is not None:
            s += f", threshold {self.threshold}"
        return s


@dataclass
class LayerComparison:
    """One layer of one backend, compared with the reference over every sample.

    Attributes:
        name: the layer.
        bit_exact: every spike of every neuron at every step equals the reference's.
        mismatched_values: (step, sample, neuron) entries whose spike differs.
        reference_spikes, spikes: total spikes of the reference and of this backend.
        spike_count_agreement: fraction of (sample, neuron) pairs whose spike count over T is equal.
        saturations: (neuron, step) events where this backend clipped the state to B_v bits.
        first_mismatch: the earliest difference (smallest step, then sample, then neuron), or None.
    """
    name: str
    bit_exact: bool
    mismatched_values: int
    reference_spikes: int
    spikes: int
    spike_count_agreement: float
    saturations: int = 0
    first_mismatch: Mismatch | None = None


@dataclass
class BackendComparison:
    """One backend (or the PyTorch model) compared with the reference.

    Attributes:
        name: the backend, e.g. ``"torch-cpu"``, ``"onnx"``, ``"torch-model (cpu)"``, ``"lava vs loihi"``.
        exact_required: it must be bit-exact (integer backends, a deploy-faithful model); False for a
            float model, whose agreement is only measured.
        layers: one :class:`LayerComparison` per LIF layer.
        seconds: its run time (wall clock).
        prediction_agreement: fraction of samples whose predicted class equals the reference's.
        accuracy: fraction of samples predicted right (None without labels).
        note: what is required of it, or how it was aligned (e.g. Lava's documented pipeline shift).
    """
    name: str
    exact_required: bool
    layers: list[LayerComparison]
    seconds: float
    prediction_agreement: float
    accuracy: float | None = None
    note: str = ""

    @property
    def bit_exact(self) -> bool:
        """True when every layer is bit-exact."""
        return all(layer.bit_exact for layer in self.layers)


@dataclass
class VerifyReport:
    """The result of :func:`verify`: every backend's comparison with the NumPy reference.

    Attributes:
        model: name of the model that was verified.
        n_samples, num_steps: the inputs compared (samples × T steps).
        reference: the reference backend (``"numpy"``); reference_seconds its run time; reference_accuracy
            its accuracy (fraction; None without labels).
        backends: one :class:`BackendComparison` per backend (and the PyTorch model when given).
        reference_saturations: per layer, (neuron, step) events clipped to B_v bits in the reference run.
        warnings: why equal spike trains may prove little on these inputs (a layer that never spiked, an
            output that does not depend on the input, accuracy at chance), shown beside the verdict.
        saturation_warnings: one sentence per layer whose state clipped.

    :attr:`all_exact` is the verdict; :meth:`to_dict` / :meth:`to_json` follow docs/verify-json.md.
    """
    model: str
    n_samples: int
    num_steps: int
    reference: str
    reference_seconds: float
    reference_accuracy: float | None
    backends: list[BackendComparison] = field(default_factory=list)
    reference_saturations: dict[str, int] = field(default_factory=dict)
    #: what makes the equality verdict weak on these inputs (:func:`evidence_warnings`); shown beside it
    warnings: list[str] = field(default_factory=list)
    #: one sentence per layer whose state clipped in the reference run (:func:`saturation_warnings`)
    saturation_warnings: list[str] = field(default_factory=list)

    @property
    def all_exact(self) -> bool:
        """True when every backend that must be bit-exact is."""
        return all(b.bit_exact for b in self.backends if b.exact_required)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict, schema ``qsnn-verify`` (docs/verify-json.md), ``bit_exact`` per backend."""
        d = {
            "schema": SCHEMA, "version": SCHEMA_VERSION, "model": self.model, "n_samples": self.n_samples,
            "num_steps": self.num_steps, "reference": self.reference, "reference_seconds": self.reference_seconds,
            "reference_accuracy": self.reference_accuracy, "reference_saturations": self.reference_saturations,
            "all_exact": self.all_exact, "warnings": list(self.warnings),
            "saturation_warnings": list(self.saturation_warnings), "backends": [],
        }
        for b in self.backends:
            entry = asdict(b)
            entry["bit_exact"] = b.bit_exact
            d["backends"].append(entry)
        return d

    def to_json(self) -> str:
        """The report as indented JSON (:meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=2)


# ------------------------------------------------------------------------------ PyTorch side
def model_neurons(model: nn.Module, layers: Sequence | None = None, input_shape: Sequence[int] | None = None,
                  forward: ForwardFn | None = None) -> list[tuple[str, nn.Module]]:
    """(frozen layer name, neuron module) per LIF block, in order."""
    call = inspect_model(model, input_shape, forward=forward, layers=layers)
    return [(b.name, b.neuron) for b in parse_blocks(call.layers)]


def run_torch_model(model: nn.Module, net: FrozenNet, x_int, num_steps: int | None = None, device: str = "cpu",
                    batch_size: int = 128, record_states: bool = False, layers: Sequence | None = None,
                    forward: Callable[[nn.Module, torch.Tensor, int], Any] | None = None,
                    progress: Callable[[int], None] | None = None) -> SimResult:
    """Run the torch model on integer input (fed as ``x * input_scale``) and capture every LIF
    layer's spikes with forward hooks on the neurons (one call per step).

    States: :class:`QLeaky` returns its integer state ``v``; a plain ``snntorch.Leaky`` returns the
    float membrane, converted here to state units (``mem * 2**F / sigma``) for comparison.
    """
    arr, static, steps = prepare_input(net, x_int, num_steps)
    call = inspect_model(model, net.input.shape, forward=forward, layers=layers)
    neurons = [(b.name, b.neuron) for b in parse_blocks(call.layers)]
    frozen = {layer.name: layer for layer in net.layers}
    if [n for n, _ in neurons] != [layer.name for layer in net.layers]:
        raise ValueError(f"model layers {[n for n, _ in neurons]} do not match the frozen net's {[l.name for l in net.layers]}")
    dev = torch.device(device)
    model = model.to(dev).eval()
    calls: dict[str, list] = {n: [] for n, _ in neurons}
    states: dict[str, list] = {n: [] for n, _ in neurons}
    hooks = []

    def make_hook(name: str, neuron: nn.Module):
        def hook(_m, _inp, out):
            spk = out[0] if isinstance(out, tuple) else out
            calls[name].append(spk.detach().to("cpu", torch.uint8))
            if record_states and isinstance(out, tuple):
                mem = out[-1].detach().to("cpu", torch.float64)  # (spk, [syn,] mem): the membrane is last
                if not isinstance(neuron, QNeuron):
                    layer = frozen[name]
                    sig = torch.as_tensor(layer.neuron.sigma).view((-1,) + (1,) * (mem.dim() - 2))
                    mem = mem * float(1 << layer.neuron.frac_bits) / sig
                states[name].append(mem)
        return hook

    for name, neuron in neurons:
        hooks.append(neuron.register_forward_hook(make_hook(name, neuron)))
    sat_before = {name: int(getattr(neuron, "saturation_events", 0)) for name, neuron in neurons}
    n = arr.shape[0] if static else arr.shape[1]
    out_spikes: dict[str, list] = {name: [] for name, _ in neurons}
    out_states: dict[str, list] = {name: [] for name, _ in neurons}
    scale = float(net.input.scale)
    from .simulators.torch_sim import exact_float_math

    try:
        # exact_float_math: the model's integer convs in full float32, no cuDNN Winograd/FFT, no NNPACK
        # (docs/integer-semantics.md, "Why every path is exact")
        with torch.no_grad(), exact_float_math():
            for start in range(0, n, batch_size):
                xs = arr[start:start + batch_size] if static else arr[:, start:start + batch_size]
                xf = torch.as_tensor(xs, dtype=torch.float32, device=dev) * scale
                for name in calls:
                    calls[name].clear()
                    states[name].clear()
                call.run(model, xf, steps, static)
                for name in calls:
                    if len(calls[name]) != steps:
                        raise RuntimeError(f"neuron {name!r} was called {len(calls[name])} times for {steps} steps; "
                                           "the model must call each neuron once per step")
                    out_spikes[name].append(torch.stack(calls[name]).numpy())
                    if record_states and states[name]:
                        out_states[name].append(torch.stack(states[name]).numpy())
                if progress:
                    progress(xs.shape[0] if static else xs.shape[1])
    finally:
        for h in hooks:
            h.remove()
    spikes = {k: np.concatenate(v, axis=1) for k, v in out_spikes.items()}
    st = {k: np.concatenate(v, axis=1) for k, v in out_states.items() if v} if record_states else None
    sats = {name: int(getattr(neuron, "saturation_events", 0)) - sat_before[name] for name, neuron in neurons}
    return SimResult(spikes, sats, st, backend=f"torch-model-{dev.type}")


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


def evidence_warnings(ref: "SimResult | _RunSummary", labels=None) -> list[str]:
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


def verify(net: FrozenNet, x_int, labels=None, model: nn.Module | None = None, backends: Iterable[str] = ("torch",),
           num_steps: int | None = None, device: str = "cpu", batch_size: int = 128, model_name: str = "",
           layers: Sequence | None = None, backend_options: dict[str, dict] | None = None,
           saturation: str = "count", progress: Callable[[str, int, int], None] | None = None,
           forward: ForwardFn | None = None) -> VerifyReport:
    """Compare the PyTorch model (if given) and ``backends`` against the NumPy reference.

    Args:
        net: the frozen network.
        x_int: integer inputs, [N, *shape] (static) or [T, N, *shape].
        labels: optional int labels [N] (accuracy per backend).
        model: the torch model the net was frozen from (optional): a QSequential, an ``nn.Sequential``
            with ``init_hidden=True`` neurons, or a module whose ``forward(x)`` runs its own time loop
            (how it is called is found by :func:`qsnn_deploy.calling.inspect_model`).
        layers: the model's layer order where it cannot be found from its forward pass.
        forward: ``forward(model, x, num_steps)`` for a model called in a way not recognised.
        backends: backend names other than the reference, e.g. ``("torch",)``.
        device: device for the PyTorch model and the torch backend ("cpu" or "cuda").
        saturation: ``"count"`` (clip the state to B_v bits and count events) or ``"raise"``
            (:class:`~qsnn_deploy.errors.SaturationError` on the first event), for the integer backends.
        progress: ``progress(stage, done, total)`` callback.
    """
    arr, static, steps = prepare_input(net, x_int, num_steps)
    n = arr.shape[0] if static else arr.shape[1]
    if model is not None:  # how to run the model: found once, used for every batch
        call = inspect_model(model, net.input.shape, forward=forward, layers=layers)
        layers, forward = call.layers, call.forward_fn(static)
    backend_options = backend_options or {}
    names = [layer.name for layer in net.layers]
    labels = None if labels is None else np.asarray(labels)

    def tick(stage):
        done = [0]

        def cb(k: int):
            done[0] += k
            if progress:
                progress(stage, done[0], n)
        return cb

    ref_backend = create_backend(REFERENCE, net, saturation=saturation)
    faithful = bool(net.metadata.get("deploy_faithful", False))
    others: list[tuple[str, Any, Callable]] = []  # (label, backend or None for the model, progress)
    if model is not None:
        others.append((f"torch-model ({device})", None, tick("torch-model")))
    for name in backends:
        if name == REFERENCE:
            continue
        opts = dict(backend_options.get(name, {}))
        if name == "torch":
            opts.setdefault("device", device)
            opts.setdefault("saturation", saturation)
        others.append((name, create_backend(name, net, **opts), tick(name)))
    tallies = [_Tally(names) for _ in others]
    backend_names: list[str | None] = [label if b is None else None for label, b, _ in others]
    notes = [""] * len(others)
    raw_tallies: dict[tuple[int, int], _Tally] | None = None  # pairs of Lava-timed backends, set on the first batch
    summary = _RunSummary()
    ref_seconds, ref_correct, ref_tick = 0.0, 0, tick(REFERENCE)

    # Streamed: each batch runs in every backend, is compared, and is dropped; memory does not grow with n.
    for start in range(0, n, batch_size):
        xs = arr[start:start + batch_size] if static else arr[:, start:start + batch_size]
        k = xs.shape[0] if static else xs.shape[1]
        t0 = time.perf_counter()
        ref = ref_backend.run(xs, steps)
        ref_seconds += time.perf_counter() - t0
        ref_counts = {name: spikes.sum(axis=0, dtype=np.int64) for name, spikes in ref.spikes.items()}
        ref_preds = ref.predictions()
        if labels is not None:
            ref_correct += int(np.count_nonzero(ref_preds == labels[start:start + k]))
        summary.add(ref)
        ref_tick(k)
        raws: dict[int, SimResult] = {}
        for i, (label, backend, cb) in enumerate(others):
            t0 = time.perf_counter()
            if backend is None:
                res = run_torch_model(model, net, xs, steps, device=device, batch_size=batch_size, layers=layers,
                                      forward=forward)
            else:
                res = _run_backend(backend, xs, steps, static, getattr(backend, "preferred_batch_size", batch_size),
                                   lambda _k: None)
            tallies[i].seconds += time.perf_counter() - t0
            tallies[i].add(ref, res, start, labels, ref_counts, ref_preds)
            if backend is not None:
                backend_names[i] = backend_names[i] or res.backend or label
                if res.info.get("timing") == "lava-pipeline":
                    raws[i] = SimResult(res.info["raw_spikes"], res.saturations, backend=res.backend)
                    notes[i] = "Lava timing: layer l is l+1 steps late; compared after that documented shift"
                elif res.info.get("timing") == "xylo-latency":
                    notes[i] = ("Xylo timing: hidden layer l runs l steps late, the readout L (L hidden layers); "
                                "compared after that documented shift")
            cb(k)
        # Backends with Lava's pipeline timing are also compared with each other as they come, unshifted.
        if raw_tallies is None:
            pipelined = sorted(raws)
            raw_tallies = {(i, j): _Tally(names) for i, j in zip(pipelined, pipelined[1:])}
        for (i, j), tally in raw_tallies.items():
            tally.add(raws[i], raws[j], start)

    report = VerifyReport(model_name, n, steps, REFERENCE, ref_seconds, None if labels is None or not n else ref_correct / n,
                          reference_saturations=dict(summary.saturations), warnings=evidence_warnings(summary, labels),
                          saturation_warnings=saturation_warnings(summary, net))
    for i, (label, backend, _) in enumerate(others):
        layers_cmp = tallies[i].layer_results()
        if backend is None:
            comp = BackendComparison(label, faithful, layers_cmp, tallies[i].seconds, tallies[i].agreement(),
                                     tallies[i].accuracy(labels),
                                     note="deploy-faithful: must be bit-exact" if faithful else
                                     "float snnTorch model: agreement measured, not required")
            run_other = (lambda xs: run_torch_model(model, net, xs, steps, device=device, batch_size=1,
                                                    record_states=True, layers=layers, forward=forward))
        else:
            comp = BackendComparison(backend_names[i] or label, True, layers_cmp, tallies[i].seconds,
                                     tallies[i].agreement(), tallies[i].accuracy(labels), note=notes[i])
            run_other = (lambda xs, b=backend: b.run(xs, steps, record_states=True))
        mm = _first_layer_mismatch(layers_cmp)
        if mm is not None:
            _attach_states(mm, net, arr, static, steps, run_other)
        report.backends.append(comp)
    for (i, j), tally in (raw_tallies or {}).items():
        name_a, name_b = backend_names[i], backend_names[j]
        report.backends.append(BackendComparison(
            f"{name_b} vs {name_a}", True, tally.layer_results(), 0.0, tally.agreement(), None,
            note=f"raw Lava-timed spike trains over T+L steps, no alignment ({name_a} is the reference here)"))
    return report


def _run_backend(backend, arr, steps, static, batch_size, progress) -> SimResult:
    n = arr.shape[0] if static else arr.shape[1]
    parts = []
    for start in range(0, n, batch_size):
        xs = arr[start:start + batch_size] if static else arr[:, start:start + batch_size]
        parts.append(backend.run(xs, steps))
        progress(xs.shape[0] if static else xs.shape[1])
    names = list(parts[0].spikes)
    info = dict(parts[-1].info)  # the last part's: a backend's running totals (e.g. Lava's seconds) are complete there
    if "raw_spikes" in info:
        info["raw_spikes"] = {k: np.concatenate([p.info["raw_spikes"][k] for p in parts], axis=1) for k in names}
    return SimResult({k: np.concatenate([p.spikes[k] for p in parts], axis=1) for k in names},
                     {k: int(sum(p.saturations[k] for p in parts)) for k in names}, backend=parts[0].backend, info=info)


def _attach_states(mm: Mismatch, net: FrozenNet, arr, static, steps, run_other) -> None:
    """Re-simulate the mismatching sample with state recording on both sides."""
    xs = arr[mm.sample:mm.sample + 1] if static else arr[:, mm.sample:mm.sample + 1]
    ref = create_backend(REFERENCE, net).run(xs, steps, record_states=True)
    try:
        other = run_other(xs)
    except Exception:  # noqa: BLE001 - the states are a diagnostic extra; the mismatch stands
        return
    idx = (mm.step, 0, *mm.neuron)
    layer = next(l for l in net.layers if l.name == mm.layer)
    mm.reference_state = float(ref.states[mm.layer][idx])
    if other.states and mm.layer in other.states:
        mm.other_state = float(other.states[mm.layer][idx])
    mm.threshold = int(layer.neuron.threshold[mm.neuron[0]])
