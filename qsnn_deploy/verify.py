"""Run the PyTorch model and several backends on the same inputs; compare spike trains.

Equivalence is judged on every LIF layer's spike tensor [T, N, ...], not on counts: a backend is
*bit-exact* when every spike of every neuron at every step equals the reference (the NumPy
simulator). On the first mismatch the report names the layer, sample, step and neuron and gives
both membrane states (re-simulated for that one sample).

The PyTorch model is held to the same bar when it is deploy-faithful (every neuron a
:class:`~qsnn_deploy.nn.QLeaky`): promise 1 of docs/integer-semantics.md §4. An ordinary snnTorch +
Brevitas model is not: its agreement with the frozen net is *measured* (spike-count agreement, prediction
agreement, accuracy difference) and reported (promise 2).

This module runs the models and backends; what it reports is :mod:`.verify_report`, how spike trains
are compared and what the warnings say is :mod:`.verify_compare` (both re-exported here).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

from .calling import ForwardFn, inspect_model
from .frozen import FrozenNet
from .nn.blocks import parse_blocks
from .nn.neuron import QNeuron
from .simulators import SimResult, create_backend, prepare_input
from .verify_compare import (SATURATION_FIX, _first_layer_mismatch, _RunSummary, _Tally, compare_layers,
                             evidence_warnings, saturation_warnings)
from .verify_report import (REFERENCE, SCHEMA, SCHEMA_VERSION, BackendComparison, LayerComparison,
                            Mismatch, VerifyReport)

# ------------------------------------------------------------------------------ PyTorch side
def model_neurons(model: nn.Module, layers: Sequence | None = None, input_shape: Sequence[int] | None = None,
                  forward: ForwardFn | None = None) -> list[tuple[str, nn.Module]]:
    """(frozen layer name, neuron module) per LIF block, in order."""
    call = inspect_model(model, input_shape, forward=forward, layers=layers)
    return [(b.name, b.neuron) for b in parse_blocks(call.layers)]


def run_torch_model(model: nn.Module, net: FrozenNet, x_int: np.ndarray, num_steps: int | None = None,
                    device: str = "cpu", batch_size: int = 128, record_states: bool = False,
                    layers: Sequence | None = None,
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


def verify(net: FrozenNet, x_int: np.ndarray, labels: np.ndarray | None = None, model: nn.Module | None = None,
           backends: Iterable[str] = ("torch",),
           num_steps: int | None = None, device: str = "cpu", batch_size: int = 128, model_name: str = "",
           layers: Sequence | None = None, backend_options: dict[str, dict] | None = None,
           saturation: str = "count", progress: Callable[[str, int, int], None] | None = None,
           forward: ForwardFn | None = None,
           on_reference: Callable[[Any, SimResult, np.ndarray | None], None] | None = None,
           record_reference_states: bool = False) -> VerifyReport:
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
        on_reference: ``on_reference(x_batch, reference_result, labels_batch)``, called once per batch with
            the reference's :class:`~qsnn_deploy.simulators.SimResult` (e.g. an
            :class:`~qsnn_deploy.report.ActivityAccumulator`'s ``add``), so a caller that needs the reference
            run does not simulate it a second time. Its time is not counted as the reference's.
        record_reference_states: record the reference's membrane states for ``on_reference`` (memory grows
            with ``batch_size``: T x batch x neurons integers per layer).
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
        ref = ref_backend.run(xs, steps, record_states=record_reference_states)
        ref_seconds += time.perf_counter() - t0
        if on_reference is not None:
            on_reference(xs, ref, None if labels is None else labels[start:start + k])
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


__all__ = ["SCHEMA", "SCHEMA_VERSION", "REFERENCE", "Mismatch", "LayerComparison", "BackendComparison", "VerifyReport",
           "model_neurons", "run_torch_model", "compare_layers", "evidence_warnings", "saturation_warnings",
           "SATURATION_FIX", "verify"]
