"""Per-layer figures of a frozen network, as pure data (docs/design.md §5; docs/report.md): the
:class:`Report` and how it is computed; its two inputs live beside it, :mod:`.static` (what the net alone
fixes) and :mod:`.activity` (what a run over data shows), and are re-exported here.

Static figures come from the :class:`~qsnn_deploy.frozen.FrozenNet` alone: kind and shape,
fan-in and fan-out, parameters, weight memory at the deployed width and as Loihi 8-bit mantissas,
neuron-state and threshold/bias/decay memory, dense MACs, the worst-case synaptic current.
Activity figures need a simulation over data (:class:`ActivityAccumulator`, fed batch by batch
with :class:`~qsnn_deploy.simulators.SimResult` s): spikes per sample, firing rates, synaptic
operations, saturation events, membrane-state statistics, a raster of one sample, and an energy
estimate from per-operation energies (Loihi 1, 2018, by default, or the user's own; :mod:`.energy`).
:func:`compute_report` puts both together with an optional
:class:`~qsnn_deploy.verify.VerifyReport` into one :class:`Report`, which the renderers
(rich table, JSON, HTML) only read.

Conventions (units, bit widths, what a row counts) are defined in ``docs/report.md``. In short:
row ``l`` describes layer ``l``'s neurons and its *incoming* synapse. Its fan-in, weights, dense
MACs and synaptic operations (SOPs) belong to that synapse; SOPs of row ``l`` are the spikes of
layer ``l-1`` times their exact fan-out into layer ``l``. Its spikes, firing rate and fan-out
belong to its neurons (fan-out = synapses one neuron drives in layer ``l+1``). Conv layers are
counted in their deployed form: a conv followed by a sum pool is ONE pool-folded conv
(:func:`~qsnn_deploy.intmath.fold_sum_pool`), as the simulators run it and as Lava/netx needs it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from .. import __version__, intmath
from ..frozen import FrozenNet
from ..registry import Registry
from .activity import (Activity, ActivityAccumulator, LayerActivity, activity_from_result,
                       collect_activity, state_histogram, state_histogram_counts)
from .energy import LOIHI1_2018, LOIHI_2018, EnergyModel, as_energy_model
from .static import (InputStatic, LayerStatic, SynapseGeometry, input_is_spikes,
                     static_figures, synapse_geometry)

if TYPE_CHECKING:
    from ..verify_report import VerifyReport

SCHEMA = "qsnn-report"
SCHEMA_VERSION = 4

# ------------------------------------------------------------------------------ energy model
# EnergyModel, LOIHI_2018 (Loihi 1, 2018) and the user's own costs: .energy (re-exported here).


# ------------------------------------------------------------------------------ the report
@dataclass
class LayerActivitySummary:
    """Per-layer activity figures of a report (averages over the data's samples).

    Spikes per sample (mean, max), firing rate (spikes per neuron per step), synaptic operations per
    sample (SOPs: spikes × fan-out; None for graded input) and their ratio to dense MACs, saturation
    events, neurons that never spiked, the membrane state's range (state units) and the signed bits
    it used, and its histogram. Definitions and units: docs/report.md.
    """
    spikes_mean: float
    spikes_max: int
    firing_rate: float           # spikes per neuron per step
    sops_mean: float | None      # SOPs per sample in this layer's synapse (None: graded input)
    sops_max: int | None
    sop_per_mac: float | None    # sops_mean / dense_macs
    saturation_events: int
    silent_neurons: int          # neurons that never spiked over the data
    state_min: int | None
    state_max: int | None
    state_bits_used: int | None  # narrow-range signed width of max |v| seen
    state_histogram: dict[str, list] | None


@dataclass
class LayerReport:
    """One layer of a :class:`Report`: its static figures, dense MACs per sample (synapses × T), the
    activity summary (None without data), per-neuron rates and the raster sample's spikes (plots
    only), and the target fit of this layer (None without a target).
    """
    static: LayerStatic
    dense_macs: int              # per sample: synapses × T
    activity: LayerActivitySummary | None = None
    neuron_rates: np.ndarray | None = None   # spikes per neuron per step, per neuron (plots only)
    raster: np.ndarray | None = None         # uint8 [T, neurons] of the raster sample (plots only)
    fit: dict[str, Any] | None = None        # target fit of this layer (from a registered fit check)

    @property
    def name(self) -> str:
        """The layer's name."""
        return self.static.name


@dataclass
class EnergyEstimate:
    """The energy estimate per inference: the costs used (and where each comes from), the counts they
    price, and the energies in nJ (``total_low_nj`` uses the low neuron-update figure)."""

    model: str
    chip: str                    # the chip and its generation the costs describe
    citation: str
    note: str
    user_costs: bool             # True when any per-op cost was given by the user
    per_op_pj: dict[str, float]
    per_op_source: dict[str, str]  # per cost: where its figure comes from
    counts: dict[str, float]     # per inference: sops, neuron_updates, spikes
    synaptic_nj: float
    input_nj: float              # the graded input's operations (e.g. 8-bit pixels) priced as synaptic ops
    neuron_nj: float
    neuron_low_nj: float
    spike_nj: float
    total_nj: float              # dynamic energy: synaptic + input + neuron + spike
    total_low_nj: float
    unpriced: list[str]
    static_nj: float | None = None   # static / leakage energy per inference: None where the source gives none


@dataclass
class Report:
    """A whole report, as pure data: what :func:`compute_report` returns and every renderer reads.

    ``input`` and ``layers`` hold the per-layer figures, ``totals`` the sums over layers, ``data`` what
    the activity was measured on (None for a static report), ``energy`` the energy estimate, ``verify``
    the agreement check's summary, ``target`` the deployment target's fit, ``neurobench`` NeuroBench's
    metrics next to ours (:func:`qsnn_deploy.report.neurobench.compare_with_neurobench`'s dict, set by
    ``qsnn-report --neurobench``), ``generator`` the producing version. JSON schema ``qsnn-report``:
    docs/report.md.
    """
    model: str
    num_steps: int
    input: InputStatic
    layers: list[LayerReport]
    totals: dict[str, Any]
    data: dict[str, Any] | None = None
    input_activity: dict[str, Any] | None = None
    energy: EnergyEstimate | None = None
    verify: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    neurobench: dict[str, Any] | None = None
    #: the first screen: bit-exact, fits the target, latency, accuracy (:func:`~qsnn_deploy.report.verdicts.verdicts`)
    verdicts: dict[str, Any] | None = None
    #: the target chip's resources per layer and the headroom of every fitted field
    #: (:func:`~qsnn_deploy.report.resources.chip_resources`; None without a target that has them)
    resources: dict[str, Any] | None = None
    #: NeuroBench-named workload figures computed by our code (:func:`~qsnn_deploy.report.workload.workload`)
    workload: dict[str, Any] | None = None
    generator: str = field(default_factory=lambda: f"qsnn-deploy {__version__}")
    raster_sample: int | None = None
    raster_input: np.ndarray | None = None

    @property
    def has_activity(self) -> bool:
        """True when the report was computed with data (activity figures present)."""
        return self.data is not None


# Fit checks per deployment target: ``check(net, report) -> {"fits": bool, "summary": str,
# "layers": {layer name: {"fits": bool, "detail": str}}}``, registered by the target's exporter;
# the report then adds its columns. No fit figures are made up here.
FIT_CHECKS = Registry("fit check", {"lava": "qsnn_deploy.lava.check:fit_check_for_report",
                                    "xylo": "qsnn_deploy.xylo.check:fit_check_for_report"})


def register_fit_check(target: str, check: Callable[[FrozenNet, Report], dict[str, Any]]) -> None:
    """Make ``qsnn-report --target TARGET`` show ``check``'s per-layer fit (see :data:`FIT_CHECKS`)."""
    FIT_CHECKS.register(target, check)


def verify_summary(vr: VerifyReport) -> dict[str, Any]:
    """The parts of a :class:`~qsnn_deploy.verify.VerifyReport` the report shows."""
    return {
        "reference": vr.reference, "n_samples": int(vr.n_samples), "num_steps": int(vr.num_steps),
        "reference_accuracy": vr.reference_accuracy, "all_exact": bool(vr.all_exact),
        "backends": [{
            "name": b.name, "exact_required": bool(b.exact_required), "bit_exact": bool(b.bit_exact),
            "prediction_agreement": float(b.prediction_agreement), "accuracy": b.accuracy, "note": b.note,
            "layers": [{"name": layer.name, "bit_exact": bool(layer.bit_exact),
                        "spike_count_agreement": float(layer.spike_count_agreement),
                        "mismatched_values": int(layer.mismatched_values),
                        "first_mismatch": _mismatch(getattr(layer, "first_mismatch", None))} for layer in b.layers],
        } for b in vr.backends],
    }


def _mismatch(mm) -> dict[str, Any] | None:
    """The earliest differing spike of a layer (layer, sample, step, neuron index, both spikes), or None."""
    if mm is None:
        return None
    return {"layer": str(mm.layer), "sample": int(mm.sample), "step": int(mm.step),
            "neuron": [int(i) for i in mm.neuron], "reference_spike": int(mm.reference_spike),
            "other_spike": int(mm.other_spike)}


def _summary(st: LayerStatic, act: LayerActivity, n: int, steps: int, dense_macs: int) -> LayerActivitySummary:
    spk = act.spikes_per_sample
    sops = act.sops_per_sample
    sops_mean = float(sops.mean()) if sops is not None else None
    used = None
    if act.state_min is not None:
        used = intmath.bits_for_signed(max(abs(act.state_min), abs(act.state_max)))
    hist = None
    if act.state_hist is not None:
        edges, counts = state_histogram(act.state_hist, st.state_bits)
        hist = {"edges": edges, "counts": counts}
    return LayerActivitySummary(
        spikes_mean=float(spk.mean()), spikes_max=int(spk.max()),
        firing_rate=float(spk.mean()) / (st.neurons * steps),
        sops_mean=sops_mean, sops_max=int(sops.max()) if sops is not None else None,
        sop_per_mac=(sops_mean / dense_macs) if (sops_mean is not None and dense_macs) else None,
        saturation_events=int(act.saturation_events), silent_neurons=int(np.count_nonzero(act.neuron_spikes == 0)),
        state_min=act.state_min, state_max=act.state_max, state_bits_used=used, state_histogram=hist)


def energy_estimate(n_neurons: int, steps: int, sops_mean: float, spikes_mean: float, graded_input: bool,
                    model: EnergyModel | Mapping[str, Any] | None = LOIHI_2018,
                    input_ops_mean: float | None = None) -> EnergyEstimate:
    """Dynamic energy per inference (nJ) = (SOPs + input ops) × E_sop + neuron updates (neurons × T) × E_neuron
    + spikes × E_spike.

    ``input_ops_mean``: the graded input's operations per sample (nonzero input values × fan-out; e.g. 8-bit
    pixels sent as graded spikes on Loihi 2), priced at E_sop — a lower bound, as a graded operation
    multiplies where a binary one only adds. Static (leakage) energy is not in the per-op tables: ``static_nj``
    is None and the estimate says so. ``model``: an :class:`EnergyModel`, or a mapping of the user's own
    per-op costs (pJ; see :func:`~qsnn_deploy.report.energy.energy_model_from_costs`); default Loihi 1 (2018)."""
    model = as_energy_model(model)
    updates = n_neurons * steps
    in_ops = float(input_ops_mean or 0.0)
    syn = sops_mean * model.sop_pj / 1000.0
    inp = in_ops * model.sop_pj / 1000.0
    neu = updates * model.neuron_update_pj / 1000.0
    neu_low = updates * model.neuron_update_low_pj / 1000.0
    spk = spikes_mean * model.spike_pj / 1000.0
    unpriced = ["spike routing between tiles (hops depend on the placement)",
                "static and leakage power (the per-op source gives none)", "host I/O and readout"]
    if graded_input and input_ops_mean is None:
        unpriced.insert(0, "the first layer's input: integer pixels are not spikes (its ops are reported, not priced)")
    return EnergyEstimate(model.name, model.chip or model.name, model.citation, model.note, model.user_costs,
                          model.per_op_pj, model.per_op_source,
                          {"sops": float(sops_mean), "input_ops": in_ops, "neuron_updates": float(updates),
                           "spikes": float(spikes_mean)},
                          syn, inp, neu, neu_low, spk, syn + inp + neu + spk, syn + inp + neu_low + spk, unpriced)


def compute_report(net: FrozenNet, activity: Activity | None = None, verify_report: VerifyReport | None = None,
                   model_name: str = "", target: str | None = None,
                   energy_model: EnergyModel | Mapping[str, Any] | None = LOIHI_2018,
                   skipped_backends: list[dict[str, str]] | None = None) -> Report:
    """Put the static figures, the activity (optional) and the verify results (optional) together.

    ``energy_model`` prices the energy estimate: an :class:`EnergyModel` or a mapping of your own
    per-operation costs in pJ (``{"synaptic_op": ..., "neuron_update": ..., "neuron_update_low": ...,
    "spike": ..., "chip": ..., "citation": ...}``, any subset; validated, the rest stays Loihi 1's);
    default :data:`LOIHI_2018` (Loihi 1, Davies et al. 2018, Table 2). ``skipped_backends``: backends
    the agreement check meant to run but could not (``{"name", "reason"}``, from
    :func:`~qsnn_deploy.report.agreement.resolve_backends`), shown beside those that ran.
    """
    energy_model = as_energy_model(energy_model)  # refuse bad costs before any work
    inp, statics, _ = static_figures(net)
    steps = int(activity.num_steps) if activity is not None else int(net.num_steps)
    layers = [LayerReport(st, st.synapses * steps) for st in statics]
    totals: dict[str, Any] = {
        "weights": sum(s.weights for s in statics), "parameters": sum(s.parameters for s in statics),
        "synapses": sum(s.synapses for s in statics), "weight_bytes": sum(s.weight_bytes for s in statics),
        "loihi_weight_bytes": sum(s.loihi_weight_bytes for s in statics),
        "neurons": sum(s.neurons for s in statics), "state_bytes": sum(s.state_bytes for s in statics),
        "neuron_param_bytes": sum(s.neuron_param_bytes for s in statics),
        "memory_bytes": sum(s.memory_bytes for s in statics),
        "dense_macs": sum(lr.dense_macs for lr in layers),
    }
    rep = Report(model_name or str(net.metadata.get("checkpoint", "")) or "model", steps, inp, layers, totals)
    if activity is not None:
        n = activity.n_samples
        graded = not input_is_spikes(net)
        spikes_tot = np.zeros(n, dtype=np.int64)
        sops_tot = np.zeros(n, dtype=np.int64)
        for lr in layers:
            act = activity.layers[lr.name]
            lr.activity = _summary(lr.static, act, n, steps, lr.dense_macs)
            lr.neuron_rates = act.neuron_spikes / float(n * steps)
            lr.raster = act.raster
            spikes_tot += act.spikes_per_sample
            if act.sops_per_sample is not None:
                sops_tot += act.sops_per_sample
        sats = sum(lr.activity.saturation_events for lr in layers)
        totals.update({
            "spikes_mean": float(spikes_tot.mean()), "spikes_max": int(spikes_tot.max()),
            "firing_rate": float(spikes_tot.mean()) / (totals["neurons"] * steps),
            "sops_mean": float(sops_tot.mean()), "sops_max": int(sops_tot.max()), "saturation_events": int(sats),
        })
        acc = None
        if activity.labels is not None and activity.predictions is not None:
            acc = float(np.mean(activity.predictions == activity.labels))
        rep.data = {"source": activity.source, "n_samples": n, "num_steps": steps, "backend": activity.backend,
                    "accuracy": acc}
        ia: dict[str, Any] = {"nonzero_mean": float(activity.input_nonzero_per_sample.mean())}
        if activity.input_ops_per_sample is not None:
            ops = activity.input_ops_per_sample
            ia.update(ops_mean=float(ops.mean()), ops_max=int(ops.max()))
            totals["input_ops_mean"] = float(ops.mean())
        else:
            ia.update(ops_mean=None, ops_max=None)
            totals["input_ops_mean"] = None
        rep.input_activity = ia
        rep.energy = energy_estimate(totals["neurons"], steps, totals["sops_mean"], totals["spikes_mean"], graded,
                                     energy_model, input_ops_mean=totals["input_ops_mean"] if graded else None)
        rep.raster_sample = activity.raster_sample
        rep.raster_input = activity.raster_input
    if verify_report is not None:
        rep.verify = verify_summary(verify_report)
        rep.verify["skipped"] = [{"name": str(b["name"]), "reason": str(b["reason"])} for b in skipped_backends or ()]
    if target:
        rep.target = target_fit(net, rep, target)
    from .resources import chip_resources
    from .verdicts import verdicts
    from .workload import workload

    if activity is not None:
        rep.workload = workload(net, rep, activity)
    rep.resources = chip_resources(net, rep, target)
    rep.verdicts = verdicts(net, rep)
    return rep


def target_fit(net: FrozenNet, report: Report, target: str) -> dict[str, Any]:
    """Run the fit check registered for ``target``; say so plainly when there is none."""
    if target not in FIT_CHECKS.names():
        return {"name": target, "available": False, "fits": None, "summary": "",
                "note": f"no fit check is registered for target {target!r} yet: per-layer fit (cores, "
                        "synapse and neuron limits) comes with that target's exporter "
                        "(qsnn_deploy.report.register_fit_check)"}
    res = FIT_CHECKS.get(target)(net, report)
    for lr in report.layers:
        lr.fit = (res.get("layers") or {}).get(lr.name)
    return {"name": target, "available": True, "fits": res.get("fits"), "summary": str(res.get("summary", "")),
            "note": str(res.get("note", ""))}


def human_bytes(n: int | float) -> str:
    """A byte count in B / KiB / MiB / GiB (binary units, one decimal)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def human_energy(nj: float) -> str:
    """An energy given in nanojoules, in pJ / nJ / µJ / mJ with 3 significant digits."""
    for div, unit in ((1e6, "mJ"), (1e3, "µJ"), (1.0, "nJ")):
        if abs(nj) >= div:
            return f"{nj / div:.3g} {unit}"
    return f"{nj * 1e3:.3g} pJ"


def span(lo: float, hi: float, fmt: Callable[[float], str]) -> str:
    """``fmt(lo)–fmt(hi)``, or ``fmt(hi)`` alone when both ends read the same."""
    a, b = fmt(lo), fmt(hi)
    return b if a == b else f"{a}–{b}"


def fmt_num(x: float | int | None) -> str:
    """Exact-looking number for HTML tables: 1,234,567 (integers, large means) or 12.34."""
    if x is None:
        return "-"
    if isinstance(x, (int, np.integer)) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def human_count(x: float | int | None) -> str:
    """A count with k / M / G / T suffixes and 3 significant digits (``-`` for None or NaN)."""
    if x is None:
        return "-"
    x = float(x)
    if x != x:  # NaN
        return "-"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.4g}" if not float(x).is_integer() else f"{int(x)}"


__all__ = ["SCHEMA", "SCHEMA_VERSION", "EnergyModel", "LOIHI_2018", "LOIHI1_2018", "SynapseGeometry", "synapse_geometry",
           "LayerStatic", "InputStatic", "static_figures", "LayerActivity", "Activity", "ActivityAccumulator",
           "collect_activity", "activity_from_result", "LayerActivitySummary", "LayerReport", "EnergyEstimate",
           "Report", "compute_report", "FIT_CHECKS", "register_fit_check", "verify_summary", "energy_estimate",
           "state_histogram", "state_histogram_counts", "human_bytes", "human_count", "human_energy", "fmt_num", "span"]
