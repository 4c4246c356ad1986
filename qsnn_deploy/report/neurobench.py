"""Our report's figures next to NeuroBench's own metrics, on the same network and inputs.

NeuroBench (``neurobench`` 2.3, the ``peers`` extra) measures a torch model through hooks: static
metrics read its parameters (``Footprint``, ``ConnectionSparsity``), workload metrics record the
inputs of every ``Linear``/``Conv`` layer and the outputs of every activation layer while a
``Benchmark`` runs the data (``ActivationSparsity``, ``SynapticOperations``). So that it measures
the network we deploy, :func:`neurobench_view` rebuilds the frozen net as such a torch model:
per layer one ``nn.Conv2d`` (the deployed, pool-folded kernel) or ``nn.Linear`` holding the
integer weights, and an :class:`IntegerLIF` running the integer neuron exactly (int64 state,
decay toward zero, saturation, both resets). Its spikes equal the NumPy reference's (checked by
:func:`compare_with_neurobench` and the tests), so NeuroBench's hooks see exactly our spikes.

Definitions (docs/report.md, "NeuroBench"):

* ``Footprint``: bytes of the torch model's parameters and buffers at their torch dtype. Ours:
  weights packed at the deployed width + 24-bit states + θ/b/d at the widths they need. Different
  quantities; both are shown, NeuroBench's for the view and for the trained model.
* ``ConnectionSparsity``: zero weights / all weights of the Linear/Conv layers. The same
  definition as ours on the same tensors (ours: :func:`connection_sparsity`).
* ``ActivationSparsity``: 1 − nonzero activation outputs / all outputs, over layers, steps,
  samples = 1 − our total firing rate.
* ``SynapticOperations``: ``Dense`` = every synapse every step (= our dense MACs);
  ``Effective_ACs`` = Σ over binary (spike) inputs of the *nonzero* weights they reach;
  ``Effective_MACs`` = the same for a non-binary input (our pixel input). Ours count every
  synapse a spike reaches, zero weights included (a synapse is a structural connection): the
  ``nonzero`` columns count as NeuroBench does, to show the definitions are the only difference.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..frozen import FrozenNet, Layer


class IntegerLIF(nn.Module):
    """A frozen layer's integer neurons as a torch module (one call = one time step), any neuron kind.

    ``forward(J)`` takes the synaptic current of one step (integer-valued, any float dtype) and
    returns the spikes (same dtype, 0/1). The step is the torch backend's kernel for the layer's
    kind (:data:`qsnn_deploy.simulators.torch_sim.TORCH_KERNELS`, tested against the kind's
    ``reference_step``), so this view and every backend share one definition; a recurrent layer
    adds ``R·z_{t-1}`` to J first. Call :meth:`reset` between samples.
    """

    def __init__(self, layer: Layer, out_shape: tuple[int, ...]):
        super().__init__()
        from ..simulators.torch_sim import TORCH_KERNELS

        self.kernel = TORCH_KERNELS.for_layer(layer)(layer.neuron, len(out_shape) == 3, "cpu")
        rec = layer.synapse.recurrent
        self.register_buffer("recurrent", None if rec is None else torch.as_tensor(rec.astype(np.int64).T.copy()),
                             persistent=False)
        self.fired: torch.Tensor | None = None
        self.saturations = 0

    def reset(self) -> None:
        """Forget the state (a new sample starts at rest, no reset pending)."""
        self.fired = None

    def forward(self, j: torch.Tensor) -> torch.Tensor:
        jt = torch.round(j).to(torch.int64)
        if self.fired is None:
            self.kernel.start(tuple(jt.shape), jt.device)
        elif self.recurrent is not None:
            jt = jt + self.fired.to(torch.int64) @ self.recurrent
        out = torch.empty(jt.shape, dtype=torch.bool, device=jt.device)
        self.saturations += int(self.kernel.step(jt, self.fired, out))
        self.fired = out
        return out.to(j.dtype)


def deployed_weight(layer: Layer) -> tuple[np.ndarray, tuple[int, int] | None]:
    """The weight tensor as deployed (:meth:`~qsnn_deploy.frozen.Synapse.deployed`) and its stride (None: dense)."""
    w, stride = layer.synapse.deployed()
    return w, (None if layer.synapse.kind == "dense" else stride)


class NeuroBenchView(nn.Module):
    """The frozen net as plain torch layers NeuroBench can hook (see the module docstring).

    ``forward(x)`` takes the integer input ``[B, *shape]`` (static: the same frame every step) or
    ``[B, T, *shape]`` and returns the output layer's spike counts ``[B, classes]``; T is
    ``num_steps``. ``spikes`` holds every layer's spikes of the last call, ``[T, B, ...]``.
    """

    def __init__(self, net: FrozenNet, num_steps: int | None = None):
        super().__init__()
        self.net = net
        self.num_steps = int(num_steps or net.num_steps)
        self.dtype = nb_model_dtype(net)
        blocks = []
        for layer, (in_shape, out_shape) in zip(net.layers, net.layer_shapes()):
            w, stride = deployed_weight(layer)
            if layer.synapse.kind == "dense":
                syn = nn.Linear(w.shape[1], w.shape[0], bias=False)
            else:
                syn = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=stride,
                                padding=tuple(layer.synapse.padding), bias=False)
            with torch.no_grad():
                syn.weight.copy_(torch.as_tensor(w, dtype=torch.float64))
            syn.to(self.dtype)
            parts = ([nn.Flatten()] if layer.synapse.flatten_input else []) + [syn, IntegerLIF(layer, out_shape)]
            blocks.append(nn.Sequential(*parts))
        self.blocks = nn.ModuleList(blocks)
        self.spikes: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(self.net.input.shape)
        static = x.dim() == len(shape) + 1
        for blk in self.blocks:
            blk[-1].reset()
        rec = {layer.name: [] for layer in self.net.layers}
        x = x.to(self.dtype)
        for t in range(self.num_steps):
            h = x if static else x[:, t]
            for layer, blk in zip(self.net.layers, self.blocks):
                h = blk(h)
                rec[layer.name].append(h)
        self.spikes = {k: torch.stack(v) for k, v in rec.items()}
        return self.spikes[self.net.layers[-1].name].sum(0)


def neurobench_view(net: FrozenNet, num_steps: int | None = None) -> NeuroBenchView:
    """:class:`NeuroBenchView` of ``net`` in eval mode."""
    return NeuroBenchView(net, num_steps).eval()


# ------------------------------------------------------------------------------ our side, same tensors
def connection_sparsity(net: FrozenNet, deployed: bool = True) -> float:
    """Zero weights / all weights over every layer (``deployed``: the pool-folded kernels)."""
    zeros = total = 0
    for layer in net.layers:
        w = deployed_weight(layer)[0] if deployed else layer.synapse.weight
        zeros += int((w == 0).sum())
        total += int(w.size)
    return zeros / total


def nonzero_fan_out(layer: Layer, in_shape: tuple[int, ...]) -> np.ndarray:
    """Per input of ``layer`` (flattened): the synapses with a NONZERO weight it drives."""
    w, stride = deployed_weight(layer)
    nz = (w != 0).astype(np.float64)
    if layer.synapse.kind == "dense":
        return nz.sum(axis=0).astype(np.int64)
    out = layer.output_shape(tuple(in_shape))
    ones = torch.ones((1,) + tuple(out), dtype=torch.float64)
    # in padded coordinates (no cropping by conv_transpose, whose symmetric crop would cut a partly used
    # right/bottom pad), then the input's own rows and columns
    fan = F.conv_transpose2d(ones, torch.as_tensor(nz), stride=stride)
    c, h, wd = (int(v) for v in in_shape)
    ph, pw = (int(v) for v in layer.synapse.padding)
    full = torch.zeros((1, c, h, wd), dtype=torch.float64)      # inputs no window reaches: 0
    part = fan[..., ph:ph + h, pw:pw + wd]
    full[..., :part.shape[2], :part.shape[3]] = part
    return full.reshape(-1).round().to(torch.int64).numpy()


@dataclass
class OurCounts:
    """Our per-sample operation counts over T, both ways (all synapses / nonzero weights only)."""

    sops: float                 # spikes × fan-out (zero weights included): the report's SOPs
    sops_nonzero: float         # spikes × nonzero fan-out: NeuroBench's Effective_ACs definition
    input_ops: float            # nonzero inputs × fan-out (graded input only)
    input_ops_nonzero: float    # nonzero inputs × nonzero fan-out: NeuroBench's Effective_MACs
    dense: float                # synapses × T
    spikes: float
    neuron_steps: float


def our_counts(net: FrozenNet, x: np.ndarray, spikes: dict[str, np.ndarray], num_steps: int) -> OurCounts:
    """Counts per sample from the reference's spikes ``[T, N, ...]`` and the integer input ``x``."""
    from .metrics import input_is_spikes, static_figures

    _, _, geoms = static_figures(net)
    shapes = net.layer_shapes()
    n = next(iter(spikes.values())).shape[1]
    sops = sops_nz = in_ops = in_ops_nz = 0.0
    flat_x = np.asarray(x).reshape(n, -1) if np.asarray(x).ndim == len(net.input.shape) + 1 else None
    if flat_x is None:   # [T, N, ...] input
        xs = np.asarray(x).reshape(np.asarray(x).shape[0], n, -1)
        nzx = (xs != 0).sum(axis=0).astype(np.float64)           # per sample and input: nonzero steps
    else:
        nzx = (flat_x != 0).astype(np.float64) * num_steps
    nzf0 = nonzero_fan_out(net.layers[0], shapes[0][0])
    if input_is_spikes(net):
        sops += float((nzx @ geoms[0].fan_out).sum())
        sops_nz += float((nzx @ nzf0).sum())
    else:
        in_ops = float((nzx @ geoms[0].fan_out).sum())
        in_ops_nz = float((nzx @ nzf0).sum())
    names = [layer.name for layer in net.layers]
    total_spikes = neuron_steps = 0.0
    for li, name in enumerate(names):
        s = spikes[name].reshape(spikes[name].shape[0], n, -1)
        counts = s.sum(axis=0, dtype=np.int64).astype(np.float64)   # [N, neurons]
        total_spikes += float(counts.sum())
        neuron_steps += float(s.shape[0] * s.shape[2] * n)
        if li + 1 < len(names):
            sops += float((counts @ geoms[li + 1].fan_out).sum())
            sops_nz += float((counts @ nonzero_fan_out(net.layers[li + 1], shapes[li + 1][0])).sum())
    dense = float(sum(g.synapses for g in geoms) * num_steps)
    return OurCounts(sops / n, sops_nz / n, in_ops / n, in_ops_nz / n, dense, total_spikes / n, neuron_steps / n)


# ------------------------------------------------------------------------------ NeuroBench's side
def run_neurobench(net: FrozenNet, x: np.ndarray, y: np.ndarray | None = None, num_steps: int | None = None,
                   batch_size: int = 100, model: nn.Module | None = None) -> dict[str, Any]:
    """NeuroBench's own metrics on :func:`neurobench_view` of ``net`` over ``x`` (and its static
    metrics on the trained ``model`` when given). Returns ``{"view": {...}, "model": {...} | None,
    "spikes": {layer: [T, N, ...] uint8}}`` (the spikes the view produced while NeuroBench ran)."""
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount
    from neurobench.metrics.workload import ActivationSparsity, ClassificationAccuracy, SynapticOperations
    from neurobench.models import TorchModel
    from torch.utils.data import DataLoader, TensorDataset

    view = neurobench_view(net, num_steps)
    nb_model = TorchModel(view)
    nb_model.add_activation_module(IntegerLIF)
    x_t = torch.as_tensor(np.asarray(x).astype(np.int64))
    y_t = torch.as_tensor(np.zeros(len(x), np.int64) if y is None else np.asarray(y).astype(np.int64))
    recorded: dict[str, list] = {layer.name: [] for layer in net.layers}

    def post(counts: torch.Tensor) -> torch.Tensor:
        for k, v in view.spikes.items():
            recorded[k].append(v.to(torch.uint8).numpy())
        return counts.argmax(dim=1)

    metrics = [[Footprint, ConnectionSparsity, ParameterCount], [ActivationSparsity, SynapticOperations,
                                                                  ClassificationAccuracy]]
    bench = Benchmark(nb_model, DataLoader(TensorDataset(x_t, y_t), batch_size=batch_size, shuffle=False), [], [post],
                      metrics)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # after Numba's parallel kernels ran here, more torch threads were 35x slower (nir_peers)
    try:
        with torch.no_grad():
            results = bench.run(quiet=True)
    finally:
        torch.set_num_threads(threads)
    out: dict[str, Any] = {"view": {k: (dict(v) if isinstance(v, dict) else v) for k, v in results.items()},
                           "model": None,
                           "spikes": {k: np.concatenate(v, axis=1) for k, v in recorded.items()}}
    if model is not None:
        tm = TorchModel(model)
        out["model"] = {}
        for name, metric in (("Footprint", Footprint), ("ConnectionSparsity", ConnectionSparsity),
                             ("ParameterCount", ParameterCount)):
            try:
                out["model"][name] = metric()(tm)
            except Exception as exc:  # NeuroBench's own failure on this model, reported as such
                out["model"][name] = f"{type(exc).__name__}: {exc}"
    return out


def compare_with_neurobench(net: FrozenNet, x: np.ndarray, y: np.ndarray | None = None, num_steps: int | None = None,
                            report: dict | None = None, model: nn.Module | None = None,
                            batch_size: int = 100) -> dict[str, Any]:
    """Side by side: NeuroBench's metrics and ours on the same net and inputs.

    Runs the NumPy reference and NeuroBench (on :func:`neurobench_view`), checks that the view's
    spikes equal the reference's (``spikes_identical``), and returns ``{"rows": [...], ...}``: one
    row per metric with ``neurobench``, ``ours`` (the report's figure), ``ours_same_definition``
    (ours counted NeuroBench's way, from our own tensors and spikes), ``equal`` (NeuroBench ==
    ours_same_definition) and ``note`` (how the definitions differ). ``report``: the qsnn-report
    dict (:func:`~qsnn_deploy.report.to_dict`) whose figures fill ``ours``; computed here if absent.
    """
    from importlib import metadata

    from ..simulators import create_backend

    steps = int(num_steps or net.num_steps)
    ref = create_backend("numpy", net).run(x, steps)
    nb = run_neurobench(net, x, y, steps, batch_size, model)
    identical = all(np.array_equal(ref.spikes[k], nb["spikes"][k].reshape(ref.spikes[k].shape)) for k in ref.spikes)
    ours = our_counts(net, x, ref.spikes, steps)
    v = nb["view"]
    syn = v["SynapticOperations"]
    if report is None:
        from . import compute_report, to_dict
        from .metrics import activity_from_result

        report = to_dict(compute_report(net, activity_from_result(net, ref, x, y)))
    totals = report["totals"]
    rows = [
        _row("footprint (bytes)", v["Footprint"], totals["memory_bytes"], None,
             "NeuroBench: parameters + buffers of the torch model at their dtype (the view holds the deployed weights "
             f"as {str(nb_model_dtype(net)).replace('torch.', '')}; the trained model: "
             f"{nb['model']['Footprint'] if nb['model'] else 'not given'} B). Ours: weights packed at the deployed "
             "width + membrane states at B_v bits + θ/b/d at the widths they need. Not the same quantity."),
        _row("connection sparsity", v["ConnectionSparsity"], round(connection_sparsity(net, deployed=False), 4),
             round(connection_sparsity(net, deployed=True), 4),
             "zero weights / all weights of the Linear/Conv layers. NeuroBench reads the view's deployed (pool-folded) "
             "kernels; ours: the frozen int weights as trained (unfolded). Same definition on the same tensors: equal. "
             + (f"On the trained torch model NeuroBench's ConnectionSparsity gives {nb['model']['ConnectionSparsity']!r}: "
                "Brevitas' QuantConv2d/QuantLinear have child modules (their quantizers), so NeuroBench descends into "
                "them instead of counting the layer's weight (and module.weight is Brevitas' float shadow weight, not "
                "the int weights)." if nb["model"] else "")),
        _row("activation sparsity", v["ActivationSparsity"], 1.0 - float(totals["firing_rate"]),
             1.0 - ours.spikes / ours.neuron_steps,
             "1 − spikes / (neurons × T) over every LIF layer, step and sample = 1 − our total firing rate."),
        _row("synaptic ops, dense (per sample)", syn["Dense"], float(totals["dense_macs"]), ours.dense,
             "every synapse once per step (padding excluded); the same definition."),
        _row("synaptic ops, effective ACs (spike-driven, per sample)", syn["Effective_ACs"], float(totals["sops_mean"]),
             ours.sops_nonzero,
             "ours (SOPs): Σ over spikes of the synapses they reach, zero weights included; NeuroBench: only the "
             "nonzero weights. Counted NeuroBench's way from our spikes and weights: equal."),
        _row("synaptic ops, effective MACs (graded input, per sample)", syn["Effective_MACs"],
             float(totals.get("input_ops_mean") or 0.0), ours.input_ops_nonzero,
             "the first layer's pixel input is not binary: NeuroBench counts it as MACs; ours reports it as input ops "
             "(nonzero inputs × fan-out, zero weights included), not as SOPs."),
    ]
    return {"rows": rows, "spikes_identical": identical, "n_samples": int(len(x)), "num_steps": steps,
            "neurobench_version": metadata.version("neurobench"), "accuracy": v.get("ClassificationAccuracy"),
            "trained_model": nb["model"], "parameter_count_view": v.get("ParameterCount")}


def report_section(cmp: dict[str, Any]) -> dict[str, Any]:
    """The comparison as the report's ``neurobench`` object (schema ``qsnn-report`` v3, docs/report.md):
    the keys of :func:`compare_with_neurobench`'s dict as plain JSON types (no NumPy or torch scalars)."""
    def num(v):   # a metric's value: a number, or the text of the error NeuroBench raised
        if isinstance(v, str):
            return v
        v = v.item() if hasattr(v, "item") else v
        return v if isinstance(v, int) and not isinstance(v, bool) else float(v)

    rows = [{"metric": str(r["metric"]), "neurobench": float(r["neurobench"]), "ours": float(r["ours"]),
             "ours_same_definition": None if r["ours_same_definition"] is None else float(r["ours_same_definition"]),
             "equal": None if r["equal"] is None else bool(r["equal"]), "note": str(r["note"])} for r in cmp["rows"]]
    tm = cmp.get("trained_model")
    return {"neurobench_version": str(cmp["neurobench_version"]), "n_samples": int(cmp["n_samples"]),
            "num_steps": int(cmp["num_steps"]), "spikes_identical": bool(cmp["spikes_identical"]),
            "accuracy": None if cmp.get("accuracy") is None else float(cmp["accuracy"]),
            "parameter_count_view": None if cmp.get("parameter_count_view") is None else int(cmp["parameter_count_view"]),
            "trained_model": None if tm is None else {k: num(tm[k]) for k in ("Footprint", "ConnectionSparsity",
                                                                               "ParameterCount")},
            "rows": rows}


def nb_model_dtype(net: FrozenNet) -> torch.dtype:
    """The view's float dtype: float32 when every |J| bound is below 2^24 (exact), else float64."""
    return torch.float32 if max(net.current_bounds()) < 2 ** 24 else torch.float64


def _row(metric: str, neurobench: float, ours: float, same: float | None, note: str) -> dict[str, Any]:
    nbv = float(neurobench)
    equal = None if same is None else bool(np.isclose(nbv, float(same), rtol=1e-9, atol=1e-9))
    return {"metric": metric, "neurobench": nbv, "ours": float(ours), "ours_same_definition": same, "equal": equal,
            "note": note}


def markdown_table(cmp: dict[str, Any]) -> str:
    """The comparison as a markdown table (docs/report.md)."""
    def f(v):
        if v is None:
            return "–"
        v = float(v)
        return f"{v:.4f}" if abs(v) < 10 else f"{v:,.1f}"

    lines = ["| metric | NeuroBench | ours (report) | ours, NeuroBench's definition | equal |", "|---|---|---|---|---|"]
    for r in cmp["rows"]:
        eq = "–" if r["equal"] is None else ("yes" if r["equal"] else "**no**")
        lines.append(f"| {r['metric']} | {f(r['neurobench'])} | {f(r['ours'])} | {f(r['ours_same_definition'])} | {eq} |")
    return "\n".join(lines)
