"""``--target onnx``: ONE time step of the frozen network as an ONNX graph, and a driver that runs
T steps with onnxruntime (backend ``"onnx"``). Documented in ``docs/onnx.md``.

The graph computes exactly the integer semantics of :mod:`qsnn_deploy.frozen`:

* inputs ``x_t`` (int32, the integer input of this step, [N, *input shape]) and, per layer,
  ``<layer>.v_prev`` (int64, the state after the previous step; zeros before step 0);
* outputs per layer ``<layer>.spikes`` (uint8 0/1), ``<layer>.v`` (int64, feed it back as
  ``v_prev``) and ``<layer>.saturated`` (int64 scalar: (neuron) clips in this step).

Synaptic current ``J``, exact by construction on every CPU (docs/integer-semantics.md, "Why every
path is exact"): only float32 ``Conv``/``MatMul`` whose every partial sum is an integer below 2^24,
then ``Round`` and ``Cast`` to int64. A conv followed by a sum pool is folded into one conv
(:func:`~qsnn_deploy.intmath.fold_sum_pool`). When the worst-case ``|J|`` reaches 2^24, the layer
is computed in pieces (:func:`~qsnn_deploy.intmath.plan_exact_split`): the input is cut into
digits (``Div``/``Mod`` on int64; a signed input first into ``Max(x, 0)`` and ``Max(-x, 0)``), the
weights into sign-magnitude digits, every piece is a float32 op under 2^24, and the pieces are
shifted and added in int64. The graph has no ``ConvInteger``/``MatMulInteger``: onnxruntime's
integer kernels differ between CPUs (on AVX2, u8 × s8 adds pairs of products in saturating int16,
so 255·127·2 > 32767 gives wrong currents; AVX-512 VNNI happens to be exact).

State update, int64 throughout: ``r = Greater(v_prev, θ)``; zero reset ``Where(r, 0, v_prev)``;
decay ``Cast<int64>(Cast<double>(v) · d/4096)`` for B_v ≤ 42 (the product is exact in float64 and
the cast truncates toward zero), else ``Div(Mul(v, d), 4096)`` (ONNX integer ``Div`` truncates
toward zero in onnxruntime); both are exactly ``sign(v·d)·(|v·d| >> 12)`` (checked in the tests); ``+ J·2^F + b``; subtract reset
``− Where(r, θ, 0)``; saturation ``Clip(v, −vmax, vmax)`` with the events counted by
``ReduceSum(Greater(Abs(v), vmax))`` — both left out (``saturated`` is then a constant 0) for a
layer whose state bound (:mod:`qsnn_deploy.statebound`) proves no input in range can reach vmax;
spikes ``Greater(v, θ)``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import intmath
from ..errors import SaturationError, UnsupportedLayerError
from ..frozen import FrozenNet, Layer
from ..simulators.base import NeuronKernels, check_saturation_mode
from ..statebound import net_state_bounds

SUFFIX = ".onnx"
OPSET = 17
FORMAT_NAME = "qsnn-onnx-step"
VERSION = 1
INPUT_NAME = "x_t"
#: Up to this state width the decay runs in float64 (|v·d| < 2^(B_v+11) stays exact below 2^53).
FLOAT_DECAY_MAX_STATE_BITS = 42


#: Neuron kinds the per-step ONNX graph builds (each kind's step as ONNX integer ops).
ONNX_KERNELS = NeuronKernels("onnx", {"lif": "lif"}, recurrent="the per-step graph has no recurrent input yet",
                             reasons={"cuba": "the per-step graph builds the one-state LIF only so far"})


def _onnx():
    try:
        import onnx
        import onnx.helper  # noqa: F401 - submodules used through the package
        import onnx.numpy_helper  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("the onnx target needs the 'onnx' package (see requirements/constraints.txt)") from exc
    return onnx


def exact_split(layer: Layer, x_max_abs: int, signed: bool) -> intmath.ExactSplit:
    """The float32 pieces that compute this layer's J exactly (one piece when its bound is below 2^24).

    Planned on the pool-folded kernel the graph runs. Raises :class:`UnsupportedLayerError` when no
    split exists (a fan-in of 2^24 or more one-bit digits).
    """
    w = layer.synapse.deployed()[0]
    try:
        return intmath.plan_exact_split(w, x_max_abs, signed, intmath.FLOAT32_EXACT)
    except ValueError as exc:
        raise UnsupportedLayerError(f"onnx target: layer {layer.name!r}, field 'weight': {exc}") from exc


def synapse_path(layer: Layer, x_lo: int, x_hi: int) -> str:
    """Which exact arithmetic computes this layer's J: ``"float32"`` (one op) or ``"float32 x N"`` (N pieces)."""
    split = exact_split(layer, max(abs(x_lo), abs(x_hi)), x_lo < 0)
    return "float32" if split.pieces == 1 else f"float32 x {split.pieces}"


class _Builder:
    def __init__(self):
        onnx = _onnx()
        self.helper = onnx.helper
        self.TP = onnx.TensorProto
        self.numpy_helper = onnx.numpy_helper
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        value = np.asarray(value)  # np.ascontiguousarray would turn a 0-d scalar into shape (1,)
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(value) if value.ndim else value, name=name))
        return name

    def op(self, op_type: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        if out is None:
            self._n += 1
            out = f"t{self._n}_{op_type}"
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], **attrs))
        return out


def _channel_view(values: np.ndarray, ndim: int) -> np.ndarray:
    """Per-channel values shaped to broadcast against [N, C, (H, W)] (ndim = per-sample rank)."""
    return values.reshape((-1,) + (1,) * (ndim - 1))


def build_onnx_model(net: FrozenNet, check: bool = True):
    """The one-step ONNX model (``onnx.ModelProto``) of ``net``; ``onnx.checker`` (full check) passes."""
    ONNX_KERNELS.check(net)
    onnx = _onnx()
    net.validate()
    b = _Builder()
    TP, helper = b.TP, b.helper
    lo, hi = net.input.value_range
    in_type = TP.INT32 if (lo >= -(1 << 31) and hi < (1 << 31)) else TP.INT64
    graph_inputs = [helper.make_tensor_value_info(INPUT_NAME, in_type, ["N", *net.input.shape])]
    graph_outputs = []
    layer_info = []
    x = INPUT_NAME  # this layer's input: the graph input, then the previous layer's spikes (bool)
    x_lo, x_hi = lo, hi
    bounds = net_state_bounds(net)
    for i, (layer, (in_shape, out_shape)) in enumerate(zip(net.layers, net.layer_shapes())):
        p = f"L{i}/"
        split = exact_split(layer, max(abs(x_lo), abs(x_hi)), x_lo < 0)
        path = "float32" if split.pieces == 1 else f"float32 x {split.pieces}"
        ndim = len(out_shape)
        # -------------------------------------------------------------- synaptic current J (int64)
        w, stride = layer.synapse.deployed()
        pads = [layer.synapse.padding[0], layer.synapse.padding[1], layer.synapse.padding[0], layer.synapse.padding[1]]

        def gemm(x_float: str, w_digit: np.ndarray, tag: str) -> str:
            """One exact float32 piece, as int64."""
            if layer.synapse.flatten_input:
                x_float = b.op("Flatten", [x_float], p + f"x_flat{tag}", axis=1)
            if layer.synapse.kind == "conv":
                wname = b.const(p + f"W{tag}", w_digit.astype(np.float32))
                y = b.op("Conv", [x_float, wname], p + f"conv{tag}", strides=list(stride), pads=pads,
                         kernel_shape=list(w_digit.shape[2:]))
            else:
                y = b.op("MatMul", [x_float, b.const(p + f"W{tag}", np.ascontiguousarray(w_digit.T).astype(np.float32))],
                         p + f"matmul{tag}")
            return b.op("Cast", [b.op("Round", [y], p + f"round{tag}")], p + f"J{tag}", to=TP.INT64)

        if split.pieces == 1:
            j = gemm(b.op("Cast", [x], p + "x_float", to=TP.FLOAT), w, "")
        else:
            x64 = b.op("Cast", [x], p + "x_int64", to=TP.INT64)
            zero64 = b.const(p + "x_zero", np.array(0, np.int64))
            parts = [(1, x64)]
            if split.signed_input:
                parts = [(1, b.op("Max", [x64, zero64], p + "x_pos")),
                         (-1, b.op("Max", [b.op("Neg", [x64], p + "x_neg_all"), zero64], p + "x_neg"))]
            j = None
            for sign_i, (sign, xs) in enumerate(parts):
                digits = []
                for k in range(split.input_digit_count):
                    d = xs
                    if k:
                        d = b.op("Div", [d, b.const(p + f"div{sign_i}_{k}", np.array(1 << (split.input_digit_bits * k), np.int64))],
                                 p + f"x{sign_i}_shift{k}")
                    if split.input_digit_count > 1:
                        d = b.op("Mod", [d, b.const(p + f"mod{sign_i}_{k}", np.array(1 << split.input_digit_bits, np.int64))],
                                 p + f"x{sign_i}_digit{k}")
                    digits.append(b.op("Cast", [d], p + f"x{sign_i}_digit{k}_float", to=TP.FLOAT))
                for n, (wj, w_shift, k, x_shift) in enumerate(split.terms()):
                    piece = gemm(digits[k], wj, f"_{sign_i}_{n}")
                    if w_shift + x_shift:
                        piece = b.op("Mul", [piece, b.const(p + f"scale_{sign_i}_{n}", np.array(1 << (w_shift + x_shift), np.int64))],
                                     p + f"J_piece_{sign_i}_{n}")
                    if j is None:
                        j = piece if sign > 0 else b.op("Neg", [piece], p + f"J_neg_{sign_i}_{n}")
                    else:
                        j = b.op("Add" if sign > 0 else "Sub", [j, piece], p + f"J_sum_{sign_i}_{n}")
        # -------------------------------------------------------------- neuron update (int64)
        th = b.const(p + "theta", _channel_view(layer.neuron.threshold.astype(np.int64), ndim))
        d = layer.neuron.decay.astype(np.int64)
        dname = b.const(p + "d", np.array(d[0], np.int64) if np.all(d == d[0]) else _channel_view(d, ndim)) \
            if layer.neuron.state_bits > FLOAT_DECAY_MAX_STATE_BITS else None
        zero = b.const(p + "zero", np.array(0, np.int64))
        vmax = layer.state_limit
        v_prev = f"{layer.name}.v_prev"
        graph_inputs.append(helper.make_tensor_value_info(v_prev, TP.INT64, ["N", *out_shape]))
        inc = b.op("Mul", [j, b.const(p + "two_F", np.array(1 << layer.neuron.frac_bits, np.int64))], p + "J_shifted")
        inc = b.op("Add", [inc, b.const(p + "bias", _channel_view(layer.neuron.bias.astype(np.int64), ndim))], p + "increment")
        r = b.op("Greater", [v_prev, th], p + "reset")
        v0 = v_prev if layer.neuron.reset == "subtract" else b.op("Where", [r, zero, v_prev], p + "v_zeroed")
        if layer.neuron.state_bits <= FLOAT_DECAY_MAX_STATE_BITS:
            # |v·d| < 2^(B_v+11) <= 2^53: v·(d/4096) is exact in float64 and Cast truncates toward zero
            # (pinned by the tests), 2.6x faster here than the int64 Div below
            beta = d.astype(np.float64) / intmath.DECAY_ONE
            bname = b.const(p + "beta", np.array(beta[0]) if np.all(d == d[0]) else _channel_view(beta, ndim))
            prod = b.op("Mul", [b.op("Cast", [v0], p + "v_float64", to=TP.DOUBLE), bname], p + "v_times_beta")
            dec = b.op("Cast", [prod], p + "decayed", to=TP.INT64)
        else:
            prod = b.op("Mul", [v0, dname], p + "v_times_d")
            dec = b.op("Div", [prod, b.const(p + "decay_one", np.array(intmath.DECAY_ONE, np.int64))], p + "decayed")
        v1 = b.op("Add", [dec, inc], p + "v_new")
        if layer.neuron.reset == "subtract":
            v1 = b.op("Sub", [v1, b.op("Where", [r, th, zero], p + "theta_if_reset")], p + "v_sub")
        sat_name = f"{layer.name}.saturated"
        v_name = f"{layer.name}.v"
        if bounds[i].saturation_free:
            # proven (qsnn_deploy.statebound): no input in range takes |v| past vmax, so no clip, no count
            b.op("Identity", [b.const(p + "no_clips", np.array(0, np.int64))], sat_name)
            b.op("Identity", [v1], v_name)
        else:
            over = b.op("Greater", [b.op("Abs", [v1], p + "abs_v"), b.const(p + "vmax", np.array(vmax, np.int64))], p + "over")
            b.op("ReduceSum", [b.op("Cast", [over], p + "over_i64", to=TP.INT64)], sat_name, keepdims=0)
            b.op("Clip", [v1, b.const(p + "neg_vmax", np.array(-vmax, np.int64)), p + "vmax"], v_name)
        z = b.op("Greater", [v_name, th], p + "z")
        s_name = f"{layer.name}.spikes"
        b.op("Cast", [z], s_name, to=TP.UINT8)
        graph_outputs += [helper.make_tensor_value_info(s_name, TP.UINT8, ["N", *out_shape]),
                          helper.make_tensor_value_info(v_name, TP.INT64, ["N", *out_shape]),
                          helper.make_tensor_value_info(sat_name, TP.INT64, [])]
        layer_info.append({"name": layer.name, "out_shape": [int(s) for s in out_shape], "synapse_path": path,
                           "current_bound": int(layer.current_bound(max(abs(x_lo), abs(x_hi)))),
                           "piece_bound": int(split.bound), "saturation_free": bool(bounds[i].saturation_free),
                           "reset": layer.neuron.reset, "frac_bits": int(layer.neuron.frac_bits), "state_bits": int(layer.neuron.state_bits)})
        x, x_lo, x_hi = z, 0, 1
    graph = helper.make_graph(b.nodes, "qsnn_step", graph_inputs, graph_outputs, initializer=b.inits,
                              doc_string="One time step of a qsnn-deploy frozen integer SNN (docs/onnx.md).")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="qsnn-deploy",
                              doc_string="Feed x_t and every <layer>.v_prev (zeros at t=0); feed <layer>.v back as the next "
                                         "step's <layer>.v_prev. Spikes: <layer>.spikes (uint8).")
    model.ir_version = min(model.ir_version, 10)
    meta = {
        "qsnn_format": FORMAT_NAME, "qsnn_version": str(VERSION),
        "input": json.dumps({"name": INPUT_NAME, "shape": list(net.input.shape), "bits": net.input.bits,
                             "signed": net.input.signed, "scale": net.input.scale, "static": net.input.static}),
        "layers": json.dumps(layer_info), "num_steps": str(net.num_steps),
        "provenance": json.dumps(net.metadata, sort_keys=True),
    }
    helper.set_model_props(model, meta)
    if check:
        onnx.checker.check_model(model, full_check=True)
    return model


def export(net: FrozenNet, out: str | Path, stem: str = "model") -> list[Path]:
    """Write the one-step ONNX model to ``out`` (a path ending in .onnx, or a directory)."""
    out = Path(out)
    path = out if out.suffix == SUFFIX else out / f"{stem}{SUFFIX}"
    model = build_onnx_model(net)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(model.SerializeToString())
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return [path]


def _default_threads() -> int:
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


class OnnxStepRunner:
    """Runs an exported one-step model for T steps with onnxruntime (works from the .onnx file alone).

    Args:
        model: an ``onnx.ModelProto``, serialized bytes, or a path to a ``.onnx`` file.
        threads: onnxruntime intra-op threads (default: ``$OMP_NUM_THREADS`` if set, else onnxruntime's).
        providers: execution providers (default CPU).
    """

    def __init__(self, model, threads: int | None = None, providers: list[str] | None = None):
        import onnxruntime as ort

        onnx = _onnx()
        if isinstance(model, (str, Path)):
            model = onnx.load(str(model))
        elif isinstance(model, (bytes, bytearray)):
            model = onnx.load_from_string(bytes(model))
        props = {p.key: p.value for p in model.metadata_props}
        if props.get("qsnn_format") != FORMAT_NAME:
            raise ValueError("not a qsnn-deploy one-step ONNX model (metadata qsnn_format missing)")
        self.input = json.loads(props["input"])
        self.layers = json.loads(props["layers"])
        self.num_steps = int(props["num_steps"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = _default_threads() if threads is None else int(threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # Every float32 op of the graph must run in full float32: onnxruntime's optional bf16 "fast
        # math" GEMM (ARM64) would break the exact-integer bound. It is off by default; pin it off.
        opts.add_session_config_entry("mlas.enable_gemm_fastmath_arm64_bfloat16", "0")
        # Worker threads sleep instead of spinning between the T small runs: on a shared 2-core machine
        # spinning threads starve everything else (measured 2.8 s -> 1.6 s per 128 digits at T = 100).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model.SerializeToString(), sess_options=opts,
                                            providers=providers or ["CPUExecutionProvider"])
        in_type = self.session.get_inputs()[0].type
        self._x_dtype = np.int32 if "int32" in in_type else np.int64
        self._outputs = [f"{l['name']}.{k}" for l in self.layers for k in ("spikes", "v", "saturated")]

    def run(self, x: np.ndarray, static: bool, steps: int, record_states: bool = False, saturation: str = "count"):
        """x: int array [N, *shape] (static: fed at every step) or [T, N, *shape]. Returns a SimResult."""
        from ..simulators.base import SimResult

        n = x.shape[0] if static else x.shape[1]
        xs = np.ascontiguousarray(x, dtype=self._x_dtype)
        states = {l["name"]: np.zeros((n, *l["out_shape"]), dtype=np.int64) for l in self.layers}
        spikes = {l["name"]: np.empty((steps, n, *l["out_shape"]), dtype=np.uint8) for l in self.layers}
        rec = {l["name"]: np.empty((steps, n, *l["out_shape"]), dtype=np.int64) for l in self.layers} if record_states else None
        sats = {l["name"]: 0 for l in self.layers}
        for t in range(steps):
            feed = {INPUT_NAME: xs if static else xs[t]}
            for name, v in states.items():
                feed[f"{name}.v_prev"] = v
            outs = self.session.run(self._outputs, feed)
            for k, l in enumerate(self.layers):
                name = l["name"]
                s, v, sat = outs[3 * k], outs[3 * k + 1], int(outs[3 * k + 2])
                if sat:
                    if saturation == "raise":
                        raise SaturationError(f"layer {name!r}: membrane state left the {l['state_bits']}-bit range at step {t} "
                                              f"({sat} neurons)")
                    sats[name] += sat
                spikes[name][t] = s
                states[name] = v
                if record_states:
                    rec[name][t] = v
        return SimResult(spikes, sats, rec, backend="onnx")


class OnnxRuntimeBackend:
    """Backend ``"onnx"``: the one-step ONNX graph of the net, stepped T times by onnxruntime.

    Args:
        net: the frozen network.
        saturation: ``"count"`` (default) or ``"raise"``.
        threads, providers: see :class:`OnnxStepRunner`.
    """

    name = "onnx"

    def __init__(self, net: FrozenNet, saturation: str = "count", threads: int | None = None,
                 providers: list[str] | None = None, batch_size: int | None = None):
        check_saturation_mode(saturation, backend=self.name)
        self.net = net.validate()
        self.saturation = saturation
        self.batch_size = batch_size
        self.model = build_onnx_model(net)
        self.runner = OnnxStepRunner(self.model, threads=threads, providers=providers)

    def run(self, x, num_steps: int | None = None, record_states: bool = False):
        """Step the ONNX graph T times with onnxruntime on integer input ``x`` ([N, *shape] static or [T, N, *shape]),
        in batches of ``batch_size``; returns spikes, saturation counts and (optionally) int64 states.
        """
        from ..simulators.base import SimResult, prepare_input

        arr, static, steps = prepare_input(self.net, x, num_steps)
        n = arr.shape[0] if static else arr.shape[1]
        bs = self.batch_size or max(n, 1)
        parts = []
        for start in range(0, max(n, 1), bs):
            xs = arr[start:start + bs] if static else arr[:, start:start + bs]
            parts.append(self.runner.run(xs, static, steps, record_states, self.saturation))
        if len(parts) == 1:
            return parts[0]
        names = list(parts[0].spikes)
        return SimResult({k: np.concatenate([p.spikes[k] for p in parts], axis=1) for k in names},
                         {k: int(sum(p.saturations[k] for p in parts)) for k in names},
                         {k: np.concatenate([p.states[k] for p in parts], axis=1) for k in names} if record_states else None,
                         backend=self.name)


def describe(net: FrozenNet) -> list[dict[str, Any]]:
    """Per layer: the arithmetic path the ONNX graph uses for J (see :func:`synapse_path`)."""
    out, (lo, hi) = [], net.input.value_range
    for layer in net.layers:
        out.append({"layer": layer.name, "synapse_path": synapse_path(layer, lo, hi)})
        lo, hi = 0, 1
    return out


__all__ = ["build_onnx_model", "export", "OnnxStepRunner", "OnnxRuntimeBackend", "synapse_path", "describe"]
