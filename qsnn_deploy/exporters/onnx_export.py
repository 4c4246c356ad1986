"""``--target onnx``: ONE time step of the frozen network as an ONNX graph; the driver that runs T steps
with onnxruntime (backend ``"onnx"``) is :mod:`.onnx_runtime`. Documented in ``docs/onnx.md``.

The graph computes exactly the integer semantics of :mod:`qsnn_deploy.frozen` and of each layer's
neuron kind (:mod:`qsnn_deploy.neurons`: the kind's ``reference_step`` is the specification):

* inputs ``x_t`` (int32, the integer input of this step, [N, *input shape]) and, per layer and per
  state variable of its kind, ``<layer>.<state>_prev`` (int64, the state after the previous step;
  zeros before step 0): ``v_prev`` for ``"lif"``, ``i_prev`` and ``v_prev`` for ``"cuba"``;
* outputs per layer ``<layer>.spikes`` (uint8 0/1), ``<layer>.<state>`` (int64, feed it back as
  ``<state>_prev``) and ``<layer>.saturated`` (int64 scalar: clips of every state in this step,
  counted as the reference counts them).

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

A recurrent (dense) layer adds ``R·z_{t-1}``: ``z_{t-1}`` is the reset flag ``r = Greater(v_prev, θ)``
(the previous step's spikes ARE ``[v_{t-1} > θ]`` on the stored, clipped state, and ``v_{-1} = 0``
gives ``z_{-1} = 0``), so it needs no state input of its own; ``Cast`` to float32, ``MatMul`` with
R^T (split into digits of R like the feed-forward weights when ``max_c Σ|R_c| ≥ 2^24``), ``Round``,
``Cast`` int64, added to J.

State update, int64 throughout, one builder per kind (:data:`ONNX_KERNELS`). Decay of a state of
B bits: ``Cast<int64>(Cast<double>(x) · k/4096)`` for B ≤ 42 (the product is exact in float64 and
the cast truncates toward zero), else ``Div(Mul(x, k), 4096)`` (ONNX integer ``Div`` truncates
toward zero in onnxruntime); both are exactly ``sign(x·k)·(|x·k| >> 12)`` (checked in the tests).

* ``"lif"``: ``r = Greater(v_prev, θ)``; zero reset ``Where(r, 0, v_prev)``; decay; ``+ J·2^F + b``;
  subtract reset ``− Where(r, θ, 0)``.
* ``"cuba"``: ``i = decay(i_prev, a) + J·2^F + bi``, clipped to ±(2^(B_i−1)−1) with its clips
  counted, then ``v = decay(v_prev, d) + i + b`` with reset ``"subtract"`` (``− Where(r, θ, 0)``),
  ``"zero"`` (``Where(r, 0, v_prev)`` before the decay) or ``"zero_delayed"`` (``Where(r, 0, v)``
  after the sum).

Saturation of each state ``Clip(x, −max, max)`` with the events counted by
``ReduceSum(Greater(Abs(x), max))`` — both left out for a state whose proven bound
(:mod:`qsnn_deploy.statebound`) shows no input in range can reach its limit (``saturated`` is a
constant 0 when every state is proven); spikes ``Greater(v, θ)``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import intmath
from ..errors import UnsupportedLayerError
from ..frozen import FrozenNet, Layer
from ..simulators.base import NeuronKernels
from ..statebound import StateBound, net_state_bounds

if TYPE_CHECKING:
    import onnx

SUFFIX = ".onnx"
OPSET = 17
FORMAT_NAME = "qsnn-onnx-step"
#: 2: layers may hold several states (``states`` in the ``layers`` metadata; version 1 files hold ``v`` only).
VERSION = 2
INPUT_NAME = "x_t"
#: Up to this state width the decay runs in float64 (|v·d| < 2^(B_v+11) stays exact below 2^53).
FLOAT_DECAY_MAX_STATE_BITS = 42


def _onnx():
    try:
        import onnx
        import onnx.helper  # noqa: F401 - submodules used through the package
        import onnx.numpy_helper  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("the onnx target needs the 'onnx' package (see requirements/constraints.txt)") from exc
    return onnx


def exact_split(layer: Layer, x_max_abs: int, signed: bool) -> intmath.ExactSplit:
    """The float32 pieces that compute this layer's feed-forward J exactly (one piece when its bound is below 2^24).

    Planned on the pool-folded kernel the graph runs. Raises :class:`UnsupportedLayerError` when no
    split exists (a fan-in of 2^24 or more one-bit digits).
    """
    w = layer.synapse.deployed()[0]
    try:
        return intmath.plan_exact_split(w, x_max_abs, signed, intmath.FLOAT32_EXACT)
    except ValueError as exc:
        raise UnsupportedLayerError(f"onnx target: layer {layer.name!r}, field 'weight': {exc}") from exc


def recurrent_split(layer: Layer) -> intmath.ExactSplit:
    """The float32 pieces that compute a recurrent layer's ``R·z_{t-1}`` exactly.

    ``z`` is 0/1, so one float32 piece suffices while ``max_c Σ_k |R[c, k]| < 2^24``; past it R is cut
    into sign-magnitude digits (:func:`~qsnn_deploy.intmath.plan_exact_split` with ``max|x| = 1``).
    Raises :class:`UnsupportedLayerError` (field ``'recurrent'``) when no split exists.
    """
    try:
        return intmath.plan_exact_split(layer.synapse.recurrent, 1, False, intmath.FLOAT32_EXACT)
    except ValueError as exc:
        raise UnsupportedLayerError(f"onnx target: layer {layer.name!r}, field 'recurrent': {exc}") from exc


def _path(split: intmath.ExactSplit) -> str:
    return "float32" if split.pieces == 1 else f"float32 x {split.pieces}"


def synapse_path(layer: Layer, x_lo: int, x_hi: int) -> str:
    """Which exact arithmetic computes this layer's feed-forward J: ``"float32"`` (one op) or ``"float32 x N"`` (N pieces)."""
    return _path(exact_split(layer, max(abs(x_lo), abs(x_hi)), x_lo < 0))


def recurrent_path(layer: Layer) -> str | None:
    """Which exact arithmetic computes ``R·z_{t-1}`` (as :func:`synapse_path`); None for a feed-forward layer."""
    return _path(recurrent_split(layer)) if layer.synapse.is_recurrent else None


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


def _per_channel(b: _Builder, name: str, values: np.ndarray, ndim: int) -> str:
    """A per-channel constant: a scalar when every channel holds the same value, else shaped by :func:`_channel_view`."""
    return b.const(name, np.array(values[0]) if values.size and np.all(values == values[0]) else _channel_view(values, ndim))


def _exact_product(b: _Builder, p: str, pre: str, x: str, split: intmath.ExactSplit, piece) -> str:
    """``Σ`` of the split's exact float32 pieces, as int64 (docs/onnx.md, "J").

    ``x``: the integer (or bool) operand; ``piece(x_float, w_digit, tag)`` builds ONE float32
    ``Conv``/``MatMul`` of a digit of x with a weight digit and returns it rounded and cast to int64.
    Node names start with ``p + pre`` (``pre`` keeps the recurrent product's names apart).
    """
    TP = b.TP
    if split.pieces == 1:
        return piece(b.op("Cast", [x], p + pre + "x_float", to=TP.FLOAT), split.weights[0], "")
    x64 = b.op("Cast", [x], p + pre + "x_int64", to=TP.INT64)
    zero64 = b.const(p + pre + "x_zero", np.array(0, np.int64))
    parts = [(1, x64)]
    if split.signed_input:
        parts = [(1, b.op("Max", [x64, zero64], p + pre + "x_pos")),
                 (-1, b.op("Max", [b.op("Neg", [x64], p + pre + "x_neg_all"), zero64], p + pre + "x_neg"))]
    j = None
    for sign_i, (sign, xs) in enumerate(parts):
        digits = []
        for k in range(split.input_digit_count):
            d = xs
            if k:
                d = b.op("Div", [d, b.const(p + pre + f"div{sign_i}_{k}", np.array(1 << (split.input_digit_bits * k), np.int64))],
                         p + pre + f"x{sign_i}_shift{k}")
            if split.input_digit_count > 1:
                d = b.op("Mod", [d, b.const(p + pre + f"mod{sign_i}_{k}", np.array(1 << split.input_digit_bits, np.int64))],
                         p + pre + f"x{sign_i}_digit{k}")
            digits.append(b.op("Cast", [d], p + pre + f"x{sign_i}_digit{k}_float", to=TP.FLOAT))
        for n, (wj, w_shift, k, x_shift) in enumerate(split.terms()):
            part = piece(digits[k], wj, f"_{sign_i}_{n}")
            if w_shift + x_shift:
                part = b.op("Mul", [part, b.const(p + pre + f"scale_{sign_i}_{n}", np.array(1 << (w_shift + x_shift), np.int64))],
                            p + pre + f"J_piece_{sign_i}_{n}")
            if j is None:
                j = part if sign > 0 else b.op("Neg", [part], p + pre + f"J_neg_{sign_i}_{n}")
            else:
                j = b.op("Add" if sign > 0 else "Sub", [j, part], p + pre + f"J_sum_{sign_i}_{n}")
    return j


def _decay(b: _Builder, p: str, s: str, x: str, k: np.ndarray, bits: int, ndim: int) -> str:
    """``decay(x, k) = sign(x·k)·(|x·k| >> 12)`` of an int64 state ``x`` of ``bits`` signed bits (|x| < 2^(bits-1)).

    ``bits`` ≤ :data:`FLOAT_DECAY_MAX_STATE_BITS`: ``Cast<int64>(Cast<double>(x) · k/4096)``: k/4096 is
    exact in float64, |x·k| < 2^(bits+11) ≤ 2^53 keeps the product exact, and the cast truncates toward
    zero. Wider: ``Div(Mul(x, k), 4096)`` in int64 (|x·k| < 2^59; ONNX integer ``Div`` truncates toward
    zero in onnxruntime). Both pinned in tests/test_onnx.py. ``s`` names the state (``"v"`` keeps the
    names the one-state graph always had).
    """
    TP = b.TP
    k = np.asarray(k, dtype=np.int64)
    factor, one = ("beta", "decay_one") if s == "v" else (f"{s}_factor", f"{s}_decay_one")
    out = "decayed" if s == "v" else f"{s}_decayed"
    if bits <= FLOAT_DECAY_MAX_STATE_BITS:
        # 2.6x faster here than the int64 Div below
        fname = _per_channel(b, p + factor, k.astype(np.float64) / intmath.DECAY_ONE, ndim)
        prod = b.op("Mul", [b.op("Cast", [x], p + f"{s}_float64", to=TP.DOUBLE), fname], p + f"{s}_times_{factor}")
        return b.op("Cast", [prod], p + out, to=TP.INT64)
    kname = _per_channel(b, p + ("d" if s == "v" else f"{s}_k"), k, ndim)
    prod = b.op("Mul", [x, kname], p + f"{s}_times_k" if s != "v" else p + "v_times_d")
    return b.op("Div", [prod, b.const(p + one, np.array(intmath.DECAY_ONE, np.int64))], p + out)


def _saturate(b: _Builder, p: str, s: str, x: str, limit: int, out: str, count: str | None) -> None:
    """``out = Clip(x, ±limit)``; with ``count``, ``count = ReduceSum(Greater(Abs(x), limit))`` (int64
    scalar: this state's clips in this step, as the reference counts them); ``count`` None: the state
    is proven within ``limit`` (:mod:`qsnn_deploy.statebound`), ``out = Identity(x)``."""
    TP = b.TP
    if count is None:
        b.op("Identity", [x], out)
        return
    lim = b.const(p + ("vmax" if s == "v" else f"{s}max"), np.array(limit, np.int64))
    over = b.op("Greater", [b.op("Abs", [x], p + f"abs_{s}"), lim], p + ("over" if s == "v" else f"{s}_over"))
    b.op("ReduceSum", [b.op("Cast", [over], p + ("over_i64" if s == "v" else f"{s}_over_i64"), to=TP.INT64)], count, keepdims=0)
    b.op("Clip", [x, b.const(p + ("neg_vmax" if s == "v" else f"neg_{s}max"), np.array(-limit, np.int64)), lim], out)


def _membrane(b: _Builder, p: str, neuron, ndim: int, drive: str, v_prev: str, r: str, th: str, zero: str) -> str:
    """The membrane update both kinds share, before its clip: ``v = decay(v_prev) + drive + b`` with the
    kind's reset (``r`` = the reset flag ``v_prev > θ``); returns the unclipped int64 ``v``."""
    inc = b.op("Add", [drive, b.const(p + "bias", _channel_view(neuron.bias.astype(np.int64), ndim))], p + "increment")
    v0 = b.op("Where", [r, zero, v_prev], p + "v_zeroed") if neuron.reset == "zero" else v_prev
    v1 = b.op("Add", [_decay(b, p, "v", v0, neuron.decay, neuron.state_bits, ndim), inc], p + "v_new")
    if neuron.reset == "subtract":
        v1 = b.op("Sub", [v1, b.op("Where", [r, th, zero], p + "theta_if_reset")], p + "v_sub")
    elif neuron.reset == "zero_delayed":
        v1 = b.op("Where", [r, zero, v1], p + "v_zeroed_after")
    return v1


def _lif_update(b: _Builder, p: str, layer: Layer, ndim: int, j_shifted: str, prev: dict[str, str], r: str, th: str,
                zero: str, counts: dict[str, str | None]) -> tuple[dict[str, str], dict[str, int]]:
    """Kind ``"lif"`` (:class:`~qsnn_deploy.neurons.LIF`): ``v = decay(v_prev) + (J << F) + b`` with its reset.

    ``counts``: per state, the name its clip count gets, or None where a proof rules clips out.
    Returns (state -> unclipped int64 value, state -> its limit) for the caller's clip and count.
    """
    n = layer.neuron
    return {"v": _membrane(b, p, n, ndim, j_shifted, prev["v"], r, th, zero)}, {"v": n.state_limit}


def _cuba_update(b: _Builder, p: str, layer: Layer, ndim: int, j_shifted: str, prev: dict[str, str], r: str, th: str,
                 zero: str, counts: dict[str, str | None]) -> tuple[dict[str, str], dict[str, int]]:
    """Kind ``"cuba"`` (:class:`~qsnn_deploy.neurons.CubaLIF`): ``i = clip(decay(i_prev, a) + (J << F) + bi, ±imax)``,
    then ``v = decay(v_prev, d) + i + b`` with the kind's reset ("subtract", "zero", "zero_delayed").

    The current is clipped (and its clips counted) here, before the membrane reads it, as the reference
    does; returns (state -> value, state -> limit) with ``i`` already final and ``v`` unclipped.
    """
    n = layer.neuron
    inc_i = j_shifted
    bi = n.current_bias_or_zero()
    if np.any(bi):
        inc_i = b.op("Add", [inc_i, b.const(p + "current_bias", _channel_view(bi, ndim))], p + "i_increment")
    i1 = b.op("Add", [_decay(b, p, "i", prev["i"], n.current_decay, n.current_bits, ndim), inc_i], p + "i_new")
    i_out = f"{layer.name}.i"
    _saturate(b, p, "i", i1, n.current_limit, i_out, counts["i"])
    return {"i": i_out, "v": _membrane(b, p, n, ndim, i_out, prev["v"], r, th, zero)}, {"i": n.current_limit,
                                                                                        "v": n.state_limit}


#: Neuron kinds the per-step ONNX graph builds: kind -> the builder of its update as ONNX integer ops.
#: Recurrent synapses (dense, ``J_t = W·x_t + R·z_{t-1}``) run for every kind.
ONNX_KERNELS = NeuronKernels("onnx", {"lif": _lif_update, "cuba": _cuba_update},
                             reasons={"xylo": "a Xylo neuron's synaptic current adds its terms one source at a time, each "
                                              "with int16 saturation, in a data-dependent order the per-step ONNX graph "
                                              "does not build (a summed current is not exact); use backends numpy, torch "
                                              "or xylo"})


def _safe_states(layer: Layer, bound: StateBound) -> dict[str, bool]:
    """Per state variable: True when the layer's proven bound keeps it within its width (no Clip, no count).

    The membrane bound of a two-state kind is proven from the current's unclipped range, so it holds
    whether or not the current clips: each state's proof stands on its own.
    """
    safe = {"v": bound.peak <= bound.limit}
    if "i" in layer.neuron.state_names:
        safe["i"] = bound.current_peak <= bound.current_limit
    return safe


def build_onnx_model(net: FrozenNet, check: bool = True) -> onnx.ModelProto:
    """The one-step ONNX model (``onnx.ModelProto``) of ``net``; ``onnx.checker`` (full check) passes.

    Refuses (before building anything) a layer whose neuron kind :data:`ONNX_KERNELS` has no builder
    for (:class:`~qsnn_deploy.errors.UnsupportedNeuronError`), and a layer no exact float32 split exists
    for (:class:`~qsnn_deploy.errors.UnsupportedLayerError`).
    """
    updates = ONNX_KERNELS.check(net)
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
    for i, (layer, (in_shape, out_shape), update) in enumerate(zip(net.layers, net.layer_shapes(), updates)):
        p = f"L{i}/"
        neuron = layer.neuron
        split = exact_split(layer, max(abs(x_lo), abs(x_hi)), x_lo < 0)
        ndim = len(out_shape)
        # -------------------------------------------------------------- synaptic current J (int64)
        w, stride = layer.synapse.deployed()
        pads = [layer.synapse.padding[0], layer.synapse.padding[1], layer.synapse.padding[0], layer.synapse.padding[1]]

        def gemm(x_float: str, w_digit: np.ndarray, tag: str) -> str:
            """One exact float32 piece of W ⊛ x, as int64."""
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

        def rec_gemm(z_float: str, r_digit: np.ndarray, tag: str) -> str:
            """One exact float32 piece of R · z_{t-1} ([N, C] × [C, C]), as int64."""
            y = b.op("MatMul", [z_float, b.const(p + f"R{tag}", np.ascontiguousarray(r_digit.T).astype(np.float32))],
                     p + f"rec_matmul{tag}")
            return b.op("Cast", [b.op("Round", [y], p + f"rec_round{tag}")], p + f"J_rec{tag}", to=TP.INT64)

        j = _exact_product(b, p, "", x, split, gemm)
        # -------------------------------------------------------------- states in, reset flag, recurrence
        prev = {s: f"{layer.name}.{s}_prev" for s in neuron.state_names}
        for s in neuron.state_names:
            graph_inputs.append(helper.make_tensor_value_info(prev[s], TP.INT64, ["N", *out_shape]))
        th = b.const(p + "theta", _channel_view(neuron.threshold.astype(np.int64), ndim))
        zero = b.const(p + "zero", np.array(0, np.int64))
        # r_t = [v_{t-1} > θ] is also the layer's previous spikes z_{t-1} (z = [v > θ] on the stored,
        # clipped v; v_{-1} = 0 and θ ≥ 0 give z_{-1} = 0): the recurrent input needs no state of its own
        r = b.op("Greater", [prev["v"], th], p + "reset")
        rec_path = None
        if layer.synapse.is_recurrent:
            rsplit = recurrent_split(layer)
            rec_path = _path(rsplit)
            j = b.op("Add", [j, _exact_product(b, p, "rec_", r, rsplit, rec_gemm)], p + "J_total")
        j_shifted = b.op("Mul", [j, b.const(p + "two_F", np.array(1 << neuron.frac_bits, np.int64))], p + "J_shifted")
        # -------------------------------------------------------------- the neuron kind's update (int64)
        safe = _safe_states(layer, bounds[i])
        sat_name = f"{layer.name}.saturated"
        v_name = f"{layer.name}.v"
        clipping = [s for s in neuron.state_names if not safe[s]]
        counts = {s: (sat_name if len(clipping) == 1 else p + f"{s}_clips") if s in clipping else None
                  for s in neuron.state_names}
        values, limits = update(b, p, layer, ndim, j_shifted, prev, r, th, zero, counts)
        _saturate(b, p, "v", values["v"], limits["v"], v_name, counts["v"])
        if not clipping:
            # proven (qsnn_deploy.statebound): no input in range takes any state past its limit: no clip, no count
            b.op("Identity", [b.const(p + "no_clips", np.array(0, np.int64))], sat_name)
        elif len(clipping) > 1:  # the reference counts the clips of every state variable together
            total = counts[clipping[0]]
            for k, s in enumerate(clipping[1:], 1):  # ONNX Sum has no integer types: chained int64 Adds
                total = b.op("Add", [total, counts[s]], sat_name if k == len(clipping) - 1 else p + f"clips_{k}")
        z = b.op("Greater", [v_name, th], p + "z")
        s_name = f"{layer.name}.spikes"
        b.op("Cast", [z], s_name, to=TP.UINT8)
        graph_outputs.append(helper.make_tensor_value_info(s_name, TP.UINT8, ["N", *out_shape]))
        graph_outputs += [helper.make_tensor_value_info(f"{layer.name}.{s}", TP.INT64, ["N", *out_shape])
                          for s in neuron.state_names]
        graph_outputs.append(helper.make_tensor_value_info(sat_name, TP.INT64, []))
        info = {"name": layer.name, "kind": layer.kind, "states": list(neuron.state_names),
                "out_shape": [int(s) for s in out_shape], "synapse_path": _path(split), "recurrent_path": rec_path,
                "current_bound": int(layer.current_bound(max(abs(x_lo), abs(x_hi)))),
                "piece_bound": int(split.bound), "saturation_free": bool(bounds[i].saturation_free),
                "clipped_states": clipping, "reset": neuron.reset, "frac_bits": int(neuron.frac_bits),
                "state_bits": int(neuron.state_bits)}
        if "i" in neuron.state_names:
            info["current_bits"] = int(neuron.current_bits)
        layer_info.append(info)
        x, x_lo, x_hi = z, 0, 1
    graph = helper.make_graph(b.nodes, "qsnn_step", graph_inputs, graph_outputs, initializer=b.inits,
                              doc_string="One time step of a qsnn-deploy frozen integer SNN (docs/onnx.md).")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="qsnn-deploy",
                              doc_string="Feed x_t and every <layer>.<state>_prev (v, and i for a 'cuba' layer; zeros at "
                                         "t=0); feed <layer>.<state> back as the next step's <layer>.<state>_prev. "
                                         "Spikes: <layer>.spikes (uint8).")
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


def describe(net: FrozenNet) -> list[dict[str, Any]]:
    """Per layer: the arithmetic path the ONNX graph uses for the feed-forward J (:func:`synapse_path`) and
    for ``R·z_{t-1}`` (:func:`recurrent_path`, None for a feed-forward layer)."""
    out, (lo, hi) = [], net.input.value_range
    for layer in net.layers:
        out.append({"layer": layer.name, "synapse_path": synapse_path(layer, lo, hi), "recurrent_path": recurrent_path(layer)})
        lo, hi = 0, 1
    return out


def __getattr__(name: str):
    """``OnnxStepRunner`` and ``OnnxRuntimeBackend`` live in :mod:`.onnx_runtime` (which imports this module);
    they are still reachable here, imported on first access."""
    if name in ("OnnxStepRunner", "OnnxRuntimeBackend"):
        from . import onnx_runtime

        return getattr(onnx_runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["build_onnx_model", "export", "synapse_path", "describe"]
