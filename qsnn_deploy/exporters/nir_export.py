"""``--target nir``: the frozen network as a NIR graph (https://neuroir.org), and back.

Our own export and its exact read-back, documented in ``docs/nir.md``:

* :func:`export` / :func:`to_nir_graph` write the frozen net with ``nir.write``: one chain
  ``Input -> [Flatten] -> Conv2d|Affine -> [AvgPool2d|SumPool2d] -> LIF|CubaLIF -> ... -> Output``;
  a recurrent layer's neuron is a nested ``NIRGraph`` with the cycle ``neuron -> w_rec (Linear) ->
  neuron`` (snnTorch's form for ``RLeaky``/``RSynaptic``). The
  float fields follow NIR's semantics with snnTorch's time step (``dt = 1e-4``; ``β = 1 − dt/τ``,
  input gain ``r·dt/τ = 1``) and carry the integer values wherever NIR's float semantics allow it
  (weights are the integer weights; thresholds and biases are in units of the synaptic current).
  What NIR's LIF cannot say — subtract reset, reset from the previous state, the strict ``>``,
  ``F``, ``B_v``, the 12-bit decay rounded toward zero, bit widths — and every integer tensor are
  stored in node metadata.
* :func:`read_nir` (:mod:`.nir_read`, re-exported here; the format's constants: :mod:`.nir_format`) rebuilds the identical :class:`~qsnn_deploy.frozen.FrozenNet` from that
  metadata (bit-exact round trip) and checks that the float fields still agree with it.
* graphs written by other tools (snnTorch, Norse, Sinabs, Rockpool) are imported by
  :mod:`qsnn_deploy.interop.nir_import` (``nir_graph_to_frozen``, ``load_nir``), and our files are run
  in those tools by :mod:`qsnn_deploy.interop.nir_peers`; both use this module's graph walk
  (:func:`read_graph`, :func:`_chain`, :func:`recurrent_parts`).

:class:`NirRoundTripBackend` (backend ``"nir"``) simulates the net read back from a NIR file, so
``qsnn-verify --backends nir`` checks the round trip spike for spike.
"""
from __future__ import annotations

import json
import re
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import intmath
from ..errors import UnsupportedLayerError
from ..frozen import FORMAT_VERSION, FrozenNet, Layer, frozen_differences
from ..simulators.base import NeuronKernels, SimResult
from .nir_format import (DT, FORMAT_KEY, FORMAT_NAME, NONLEAKY_TAU_STEPS, POOL_MODES, R_RULES, SEMANTICS,
                         SUFFIX, TAU_RULES, THRESHOLD_LAYOUTS, VERSION)
from .nir_read import (RECURRENT_FORM, _chain, frozen_from_nir_graph, is_qsnn_graph,  # noqa: F401 (_chain: interop)
                       read_graph, read_nir, recurrent_parts)

if TYPE_CHECKING:
    import nir


# ====================================================================================== export
#: Neuron kinds our NIR graphs write (and read back for the ``nir`` round-trip backend).
NIR_KERNELS = NeuronKernels("nir", {"lif": "LIF", "cuba": "CubaLIF"}, recurrent=True,
                            reasons={"xylo": "NIR has no Xylo neuron (int16 saturation, bit-shift decay with a minimum "
                                             "leak of 1, up to 31 spikes per step, ordered saturating synaptic adds); "
                                             "export it with --target xylo"})


def export(net: FrozenNet, out: str | Path, stem: str = "model", *, pool: str = "avg",
           threshold_layout: str = "auto", dt: float = DT, tau_rule: str = "euler", r_rule: str = "gain") -> list[Path]:
    """Write ``net`` as a NIR graph to ``out`` (a path ending in ``.nir``, or a directory).

    Args:
        pool: how a layer's sum pool is written: ``"avg"`` (Conv2d with the integer weights × pool
            area, then AvgPool2d: snnTorch imports it), ``"sum"`` (Conv2d + SumPool2d, literally),
            or ``"fold"`` (one Conv2d with the folded kernel, :func:`~qsnn_deploy.intmath.fold_sum_pool`).
        threshold_layout: ``"integer"`` (membrane in units of J: integer weights, per-neuron
            thresholds θ/2^F), ``"unit"`` (membrane in units of each channel's θ: threshold 1.0,
            weights scaled per channel), or ``"auto"`` (integer when a layer has one θ, unit when
            its θ differ per channel: every LIF then has a single threshold, which snnTorch's
            importer requires).
        dt, tau_rule, r_rule: the time step (seconds) and the conventions τ and r are written with
            (:data:`TAU_RULES`, :data:`R_RULES`; docs/nir.md §3 says which consumer needs which).
            Any choice reads back exactly (the integer net is in the metadata).
    """
    import nir

    out = Path(out)
    path = out if out.suffix == SUFFIX else out / f"{stem}{SUFFIX}"
    graph = to_nir_graph(net, pool=pool, threshold_layout=threshold_layout, dt=dt, tau_rule=tau_rule, r_rule=r_rule)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        nir.write(tmp, graph)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return [path]


def _node_name(name: str) -> str:
    """NIR node names become HDF5 group names and torch module names in importers: letters, digits,
    ``_`` and ``-`` only (the exact layer name is kept in the node's ``qsnn_layer`` metadata)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "layer"


def _membrane_unit(layer: Layer, layout: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(κ, NIR threshold, layout used) per channel; κ = state units per unit of the NIR membrane.

    ``integer``: κ = 2^F (membrane in units of J), threshold θ/2^F. ``unit``: κ = θ, threshold 1;
    a channel with θ = 0 (fires on v > 0, i.e. v ≥ 1 for an integer state) gets κ = 1/2 and
    threshold 1 (v/κ > 1 ⇔ v > 1/2 ⇔ v > 0). ``auto``: integer when the layer has one θ, else unit.
    """
    th = layer.neuron.threshold.astype(np.int64)
    if layout == "integer" or (layout == "auto" and np.all(th == th[0])):
        kappa = np.full(th.shape, float(1 << layer.neuron.frac_bits))
        return kappa, th / kappa, "integer"
    kappa = np.where(th > 0, th.astype(np.float64), 0.5)
    return kappa, np.ones(th.shape), "unit"


def _tau_r(decay: np.ndarray, dt: float = DT, tau_rule: str = "euler",
           r_rule: str = "gain") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """τ, r and the membrane gain per channel for d = round(β·4096).

    ``euler``: τ = dt/(1 − β); ``exp``: τ = −dt/ln β (β = 0: τ = 0). ``gain``: r = τ/dt (input gain
    r·dt/τ = 1 under Euler), membrane gain 1; ``one``: r = 1, membrane gain 1 − β (thresholds are
    multiplied by it; a dyadic factor, exact in float64). A non-leaking channel (β = 1) is written
    with τ = 2^60·dt, r = τ/dt and gain 1 under every rule.
    """
    d = decay.astype(np.float64)
    leak = intmath.DECAY_ONE - d
    leaky = leak > 0
    if tau_rule == "euler":
        steps = np.where(leaky, intmath.DECAY_ONE / np.where(leaky, leak, 1.0), NONLEAKY_TAU_STEPS)
    elif tau_rule == "exp":
        beta = d / intmath.DECAY_ONE
        with np.errstate(divide="ignore"):
            steps = np.where(leaky, np.where(beta > 0, -1.0 / np.log(np.where(leaky & (beta > 0), beta, 0.5)), 0.0),
                             NONLEAKY_TAU_STEPS)
    else:
        raise ValueError(f"tau_rule must be one of {TAU_RULES}, got {tau_rule!r}")
    if r_rule == "gain":
        r, gain = steps, np.ones_like(d)
    elif r_rule == "one":
        r, gain = np.where(leaky, 1.0, steps), np.where(leaky, leak / intmath.DECAY_ONE, 1.0)
    else:
        raise ValueError(f"r_rule must be one of {R_RULES}, got {r_rule!r}")
    return steps * dt, r, gain


def _per_neuron(values: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    """Per-channel values broadcast to the layer's per-sample output shape (NIR is per neuron)."""
    v = np.asarray(values, dtype=np.float64)
    return np.ascontiguousarray(np.broadcast_to(v.reshape((-1,) + (1,) * (len(out_shape) - 1)), out_shape))


def _input_bias(layer: Layer) -> np.ndarray:
    """The bias the synapse node carries, per channel [state units]: LIF's membrane bias ``b`` (NIR's LIF has
    no bias of its own, and its input gain is 1), CubaLIF's current bias ``bi`` (the synapse's bias enters
    the current, as snnTorch's ``Synaptic`` adds ``Linear``'s bias to its input); CubaLIF's membrane bias
    ``b`` is written as ``v_leak`` instead (:func:`_neuron_node`)."""
    if layer.kind == "cuba":
        return layer.neuron.current_bias_or_zero().astype(np.float64)
    return layer.neuron.bias.astype(np.float64)


def _neuron_meta(layer: Layer, kappa: np.ndarray, used: str) -> dict[str, Any]:
    """Node metadata of a neuron: every field of its integer parameters (``layer.neuron``'s dataclass
    fields, arrays with their own dtype), plus the rules NIR's float fields cannot say."""
    n = layer.neuron
    entry, arrays = n.to_manifest("")
    meta: dict[str, Any] = {"qsnn_layer": layer.name, "qsnn_role": n.kind, "neuron_kind": n.kind}
    for name, value in entry.items():
        if name not in ("kind", "arrays"):
            meta[name] = value
    for name, arr in arrays.items():
        meta[name] = np.ascontiguousarray(arr)
    meta.update(
        reset_timing="r_t = [v_{t-1} > theta]: decided from the previous step's state (snnTorch reset_delay=True)",
        reset_rule={"subtract": "subtract theta after the decay", "zero": "v_{t-1} set to 0 before the decay",
                    "zero_delayed": "the new v_t set to 0 when r_t (this step's input is lost)"}[n.reset],
        spike_condition="v > theta (strict)", decay_bits=intmath.DECAY_BITS,
        decay_rounding="toward zero: sign(v*d)*(|v*d| >> 12)", saturation=f"clip to +-{layer.state_limit}",
        membrane_unit=kappa, threshold_layout=used)
    if n.kind == "cuba":
        meta["current_saturation"] = f"clip to +-{n.current_limit}"
        meta["equation"] = ("i = decay(i_prev, a) + (J << F) + bi; v = decay(v_prev, d) + i + b (- r*theta, or zeroed); "
                            "z = [v > theta]")
    return meta


def _neuron_node(layer: Layer, out_shape: tuple[int, ...], kappa: np.ndarray, v_th: np.ndarray, used: str, dt: float,
                 tau_rule: str, r_rule: str) -> tuple[str, Any]:
    """(node key suffix, NIR neuron node) of one layer: ``LIF`` or ``CubaLIF``.

    LIF (one state v): ``τ, r`` from d (:func:`_tau_r`), ``v_leak = 0`` (the bias is on the synapse).

    CubaLIF (current i, membrane v; NIR ``τ_syn dI/dt = −I + w_in·S``, ``τ_mem dv/dt = v_leak − v + R·I``):
    ``τ_syn, w_in`` from a and ``τ_mem, r`` from d by the same rules (``w_in`` plays r's part: under
    ``r_rule="gain"`` it is ``τ_syn/dt``, input gain 1, as snnTorch's export writes it). With the gains
    ``g_i`` (current) and ``g_v`` (membrane) the NIR current is ``I = i·g_i/κ`` and the NIR membrane
    ``v·g_i·g_v/κ``; the synapse node carries ``W·2^F/κ`` and the current bias ``bi/κ``; the membrane bias
    b becomes ``v_leak = (b·g_i·g_v/κ)·τ_mem/dt`` (one Euler step adds ``(dt/τ_mem)·v_leak``); thresholds
    are ``θ·g_i·g_v/κ``. Not said by the float fields: the 12-bit decays rounded toward zero, the widths
    B_i and B_v, the reset (NIR: to ``v_reset`` right after the spike) — all in the metadata.
    """
    import nir

    meta = _neuron_meta(layer, kappa, used)
    tau, r, g_v = _tau_r(layer.neuron.decay, dt, tau_rule, r_rule)
    if layer.kind == "lif":
        return "lif", nir.LIF(tau=_per_neuron(tau, out_shape), r=_per_neuron(r, out_shape), v_leak=np.zeros(out_shape),
                              v_threshold=_per_neuron(v_th * g_v, out_shape), v_reset=np.zeros(out_shape), metadata=meta)
    if layer.kind != "cuba":  # NIR_KERNELS.check refuses it first; kept for a kind added to the table by mistake
        raise UnsupportedLayerError(f"layer {layer.name!r}: neuron kind {layer.kind!r} has no NIR node")
    tau_syn, w_in, g_i = _tau_r(layer.neuron.current_decay, dt, tau_rule, r_rule)
    g = g_i * g_v
    b_nir = layer.neuron.bias.astype(np.float64) * g / kappa
    v_leak = np.where(tau > 0, b_nir * (tau / dt), 0.0)
    return "cuba", nir.CubaLIF(tau_syn=_per_neuron(tau_syn, out_shape), tau_mem=_per_neuron(tau, out_shape),
                               r=_per_neuron(r, out_shape), v_leak=_per_neuron(v_leak, out_shape),
                               v_threshold=_per_neuron(v_th * g, out_shape), v_reset=np.zeros(out_shape),
                               w_in=_per_neuron(w_in, out_shape), metadata=meta)


def _recurrent_subgraph(layer: Layer, neuron_key: str, neuron, gain: np.ndarray, out_shape: tuple[int, ...]):
    """A recurrent layer's neuron as snnTorch's ``export_to_nir`` writes ``RLeaky``/``RSynaptic``: a nested
    ``NIRGraph`` ``input → neuron → output`` with the cycle ``neuron → w_rec → neuron``; ``w_rec`` is a
    ``Linear`` with weight ``R·2^F/κ`` (the recurrent current ``R·z_{t-1}`` joins J, in the synapse's
    units; NIR's cycle delivers z one step later)."""
    import nir

    c = int(out_shape[0])
    w_rec = layer.synapse.recurrent.astype(np.float64) * gain[:, None]
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([c], dtype=np.int64)}), neuron_key: neuron,
               "w_rec": nir.Linear(weight=w_rec, metadata={"qsnn_layer": layer.name, "qsnn_role": "recurrent_synapse"}),
               "output": nir.Output(output_type={"output": np.array([c], dtype=np.int64)})},
        edges=[("input", neuron_key), (neuron_key, "w_rec"), ("w_rec", neuron_key), (neuron_key, "output")],
        metadata={"qsnn_layer": layer.name, "qsnn_role": "recurrent"}, type_check=True)


def to_nir_graph(net: FrozenNet, pool: str = "avg", threshold_layout: str = "auto", dt: float = DT,
                 tau_rule: str = "euler", r_rule: str = "gain") -> nir.NIRGraph:
    """The ``nir.NIRGraph`` of a frozen net (see :func:`export`)."""
    NIR_KERNELS.check(net)
    import nir

    if tau_rule not in TAU_RULES:
        raise ValueError(f"tau_rule must be one of {TAU_RULES}, got {tau_rule!r}")
    if r_rule not in R_RULES:
        raise ValueError(f"r_rule must be one of {R_RULES}, got {r_rule!r}")
    if not (isinstance(dt, (int, float)) and np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive finite number of seconds, got {dt!r}")
    dt = float(dt)
    if pool not in POOL_MODES:
        raise ValueError(f"pool must be one of {POOL_MODES}, got {pool!r}")
    if threshold_layout not in THRESHOLD_LAYOUTS:
        raise ValueError(f"threshold_layout must be one of {THRESHOLD_LAYOUTS}, got {threshold_layout!r}")
    net.validate()
    nodes: "OrderedDict[str, Any]" = OrderedDict()
    nodes["input"] = nir.Input(input_type={"input": np.array(net.input.shape, dtype=np.int64)})
    taken = {"input", "output"}

    def add(key: str, node) -> None:
        base, k, i = key, key, 1
        while k in taken:
            k, i = f"{base}_{i}", i + 1
        taken.add(k)
        nodes[k] = node

    for layer, (in_shape, out_shape) in zip(net.layers, net.layer_shapes()):
        key = _node_name(layer.name)
        kappa, v_th, used = _membrane_unit(layer, threshold_layout)
        gain = float(1 << layer.neuron.frac_bits) / kappa          # per channel: J units -> NIR membrane units
        w = layer.synapse.weight.astype(np.float64)
        base = {"qsnn_layer": layer.name}
        if layer.synapse.flatten_input:
            add(f"{key}_flatten", nir.Flatten(input_type={"input": np.array(in_shape, dtype=np.int64)}, start_dim=0,
                                              end_dim=-1, metadata=dict(base, qsnn_role="flatten")))
            in_shape = (int(np.prod(in_shape)),)
        syn_meta = dict(base, qsnn_role="synapse", synapse=layer.synapse.kind, weight=np.ascontiguousarray(layer.synapse.weight),
                        weight_bits=int(layer.synapse.weight_bits), flatten_input=bool(layer.synapse.flatten_input),
                        stride=np.array(layer.synapse.stride, dtype=np.int64), padding=np.array(layer.synapse.padding, dtype=np.int64),
                        pool=np.array(layer.synapse.pool if layer.synapse.pool else (0, 0), dtype=np.int64))
        if layer.synapse.is_recurrent:
            syn_meta["recurrent"] = np.ascontiguousarray(layer.synapse.recurrent)
            if layer.synapse.recurrent_bits is not None:
                syn_meta["recurrent_bits"] = int(layer.synapse.recurrent_bits)
        # the synapse's bias enters the neuron's input: the membrane for LIF, the current for CubaLIF
        bias = _input_bias(layer) / kappa
        if layer.synapse.kind == "dense":
            add(key, nir.Affine(weight=w * gain[:, None], bias=bias, metadata=syn_meta))
        else:
            area = layer.synapse.pool[0] * layer.synapse.pool[1] if layer.synapse.pool else 1
            stride, kernel_w = layer.synapse.stride, layer.synapse.weight.astype(np.int64)
            if layer.synapse.pool and pool == "fold":
                kernel_w, stride = layer.synapse.deployed()
            scale = gain * (area if (layer.synapse.pool and pool == "avg") else 1)
            conv_bias = bias / area if (layer.synapse.pool and pool == "sum") else bias
            syn_meta["graph_pool"] = pool if layer.synapse.pool else "none"
            conv = nir.Conv2d(input_shape=tuple(int(s) for s in in_shape[1:]),
                              weight=kernel_w.astype(np.float64) * scale[:, None, None, None],
                              stride=tuple(int(s) for s in stride), padding=tuple(int(p) for p in layer.synapse.padding),
                              dilation=(1, 1), groups=1, bias=conv_bias, metadata=syn_meta)
            # nir 1.0.8 infers a Conv2d's output from the kernel HEIGHT only: set it for non-square kernels
            h_in, w_in = in_shape[1:]
            conv.output_type = {"output": np.array(
                [kernel_w.shape[0], (h_in + 2 * layer.synapse.padding[0] - kernel_w.shape[2]) // stride[0] + 1,
                 (w_in + 2 * layer.synapse.padding[1] - kernel_w.shape[3]) // stride[1] + 1], dtype=np.int64)}
            add(key, conv)
            if layer.synapse.pool and pool != "fold":
                cls = nir.AvgPool2d if pool == "avg" else nir.SumPool2d
                k = np.array(layer.synapse.pool, dtype=np.int64)
                add(f"{key}_pool", cls(kernel_size=k, stride=k.copy(), padding=np.zeros(2, dtype=np.int64),
                                       metadata=dict(base, qsnn_role="pool")))
        neuron_key, neuron_node = _neuron_node(layer, out_shape, kappa, v_th, used, dt, tau_rule, r_rule)
        if layer.synapse.is_recurrent:
            add(f"{key}_rec", _recurrent_subgraph(layer, neuron_key, neuron_node, gain, out_shape))
        else:
            add(f"{key}_{neuron_key}", neuron_node)
    last_shape = net.layer_shapes()[-1][1]
    nodes["output"] = nir.Output(output_type={"output": np.array(last_shape, dtype=np.int64)})
    names = list(nodes)
    edges = [(names[i], names[i + 1]) for i in range(len(names) - 1)]
    meta = {
        FORMAT_KEY: FORMAT_NAME, "qsnn_format_version": VERSION, "frozen_format_version": FORMAT_VERSION,
        "dt": dt, "dt_convention": _DT_CONVENTIONS[tau_rule, r_rule], "tau_rule": tau_rule, "r_rule": r_rule,
        "semantics": SEMANTICS, "pool_mode": pool, "threshold_layout": threshold_layout,
        "input_unit": "the integer input (e.g. raw pixels 0..255), not input*input_scale",
        "input_shape": np.array(net.input.shape, dtype=np.int64), "input_bits": int(net.input.bits),
        "input_signed": bool(net.input.signed), "input_scale": float(net.input.scale), "input_static": bool(net.input.static),
        "num_steps": int(net.num_steps), "provenance": json.dumps(net.metadata, sort_keys=True),
        "layers": json.dumps([layer.name for layer in net.layers]),
    }
    return nir.NIRGraph(nodes=dict(nodes), edges=edges, metadata=meta, type_check=True)


_DT_CONVENTIONS = {
    ("euler", "gain"): "beta = 1 - dt/tau; input gain r*dt/tau = 1 (snnTorch export_nir/import_nir)",
    ("euler", "one"): "beta = 1 - dt/tau; r = 1, input gain dt/tau = 1 - beta; membrane = v*(1-beta)/kappa (Norse)",
    ("exp", "gain"): "beta = exp(-dt/tau); r = tau/dt (Sinabs, Rockpool: decay exp(-dt/tau), input gain 1)",
    ("exp", "one"): "beta = exp(-dt/tau); r = 1, input gain 1 - beta; membrane = v*(1-beta)/kappa",
}


# ====================================================================================== read-back backend
class NirRoundTripBackend:
    """Backend ``"nir"``: export the net to a NIR file, read it back with :func:`read_nir`, and
    simulate what was read with the NumPy reference. Bit-exact iff the round trip is lossless.

    Args:
        net: the frozen network.
        saturation, batch_size: passed to the NumPy simulator.
        pool, threshold_layout: export options (see :func:`export`).
    """

    name = "nir"

    def __init__(self, net: FrozenNet, saturation: str = "count", batch_size: int = 128, pool: str = "avg",
                 threshold_layout: str = "auto"):
        from ..simulators.numpy_sim import NumpySimulator

        with tempfile.TemporaryDirectory(prefix="qsnn-nir-") as tmp:
            path = export(net, tmp, stem="roundtrip", pool=pool, threshold_layout=threshold_layout)[0]
            self.file_bytes = path.stat().st_size
            self.net = read_nir(path)
        self.differences = frozen_differences(net, self.net)
        self.sim = NumpySimulator(self.net, saturation=saturation, batch_size=batch_size)

    def run(self, x: np.ndarray, num_steps: int | None = None, record_states: bool = False) -> SimResult:
        """Simulate ``x`` on the net read back from NIR (NumPy reference arithmetic).

        ``info["nir_roundtrip_differences"]`` lists every field where the round trip changed the frozen
        net (empty when exact)."""
        res = self.sim.run(x, num_steps, record_states=record_states)
        res.backend = self.name
        res.info["nir_roundtrip_differences"] = list(self.differences)
        return res


__all__ = ["SUFFIX", "FORMAT_KEY", "FORMAT_NAME", "VERSION", "DT", "NONLEAKY_TAU_STEPS", "POOL_MODES", "THRESHOLD_LAYOUTS",
           "TAU_RULES", "R_RULES", "SEMANTICS", "NIR_KERNELS", "export", "to_nir_graph", "frozen_differences",
           "RECURRENT_FORM", "recurrent_parts", "is_qsnn_graph", "frozen_from_nir_graph", "read_nir", "read_graph",
           "NirRoundTripBackend"]
