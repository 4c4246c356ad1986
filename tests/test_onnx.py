"""ONNX target: one time step as an ONNX graph, T steps in onnxruntime, bit-exact with NumPy.

* onnxruntime's integer ops do what the graph relies on: int64 ``Div`` truncates toward zero
  (= the decay rule sign(x)·(|x| >> 12)), ``Clip`` saturates int64 (no integer GEMM kernel is
  relied on: see tests/test_exact_paths.py for why);
* ``onnx.checker`` (full check) passes; the exported file runs on its own (metadata only);
* random nets: spikes, states and saturation counts equal NumPy's, both resets, small state widths
  (saturation), time-varying and signed input, and both current paths (one float32 op, or
  digit pieces past 2^24); a layer no exact split exists for is refused;
* the seeds' MNIST net on real digits; ``qsnn-verify MODEL --backends torch,onnx,nir`` returns 0.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, reject, settings
from onnx import TensorProto, helper

from qsnn_deploy import FrozenNet, InputSpec, LIFLayer, intmath
from qsnn_deploy.cli import verify as verify_cli
from qsnn_deploy.errors import SaturationError, UnsupportedLayerError
from qsnn_deploy.exporters import get_exporter
from qsnn_deploy.exporters import onnx_export as oe
from qsnn_deploy.simulators import create_backend
from qsnn_deploy.simulators.numpy_sim import NumpySimulator
from qsnn_deploy.verify import verify
from conftest import build_model, make_input, net_recipes
from test_nir import _mnist_digits, random_frozen_net, random_input, seed_mnist_net, shipped_model_path


def _session(nodes, inputs, outputs):
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs), opset_imports=[helper.make_opsetid("", oe.OPSET)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_onnxruntime_int64_div_truncates_toward_zero_and_clip_saturates():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.arange(-20000, 20000, dtype=np.int64), rng.integers(-(1 << 59), 1 << 59, size=20000),
                        np.array([-(1 << 59), (1 << 59) - 1, -4097, -4096, -4095, -1, 0, 1, 4095, 4096, 4097])])
    s = _session([helper.make_node("Div", ["x", "c"], ["q"]), helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                 [helper.make_tensor_value_info(n, TensorProto.INT64, [None] if n == "x" else []) for n in ("x", "c", "lo", "hi")],
                 [helper.make_tensor_value_info("q", TensorProto.INT64, [None]), helper.make_tensor_value_info("y", TensorProto.INT64, [None])])
    q, y = s.run(None, {"x": x, "c": np.array(4096, np.int64), "lo": np.array(-1000, np.int64), "hi": np.array(1000, np.int64)})
    assert np.array_equal(q, np.sign(x) * (np.abs(x) >> 12))
    assert np.array_equal(q, intmath.decay_toward_zero_np(x, 1))
    assert np.array_equal(y, np.clip(x, -1000, 1000))


def test_onnxruntime_float64_decay_truncates_toward_zero_exactly():
    """The graph's decay for B_v <= 42: Cast<int64>(Cast<double>(v) * d/4096) == sign(v·d)(|v·d| >> 12),
    on states at the 42-bit edge (v·d up to 2^53) and every residue near the rounding boundaries."""
    rng = np.random.default_rng(1)
    lim = (1 << 41) - 1
    v = np.concatenate([np.arange(-20000, 20000, dtype=np.int64), rng.integers(-lim, lim, size=20000),
                        np.array([-lim, lim, -4097, -4096, -4095, -1, 0, 1, 4095, 4096, 4097], np.int64)])
    for d in (0, 1, 2048, 3771, 4095, 4096):
        s = _session([helper.make_node("Cast", ["v"], ["vf"], to=TensorProto.DOUBLE),
                      helper.make_node("Mul", ["vf", "beta"], ["p"]),
                      helper.make_node("Cast", ["p"], ["q"], to=TensorProto.INT64)],
                     [helper.make_tensor_value_info("v", TensorProto.INT64, [None]),
                      helper.make_tensor_value_info("beta", TensorProto.DOUBLE, [])],
                     [helper.make_tensor_value_info("q", TensorProto.INT64, [None])])
        (q,) = s.run(None, {"v": v, "beta": np.array(d / 4096.0)})
        assert np.array_equal(q, intmath.decay_toward_zero_np(v, d)), d


def _compare(net: FrozenNet, x, steps, saturation_seen: list | None = None):
    ref = NumpySimulator(net).run(x, steps, record_states=True)
    got = create_backend("onnx", net).run(x, steps, record_states=True)
    assert list(got.spikes) == list(ref.spikes)
    for name in ref.spikes:
        assert got.spikes[name].dtype == np.uint8 and got.spikes[name].shape == ref.spikes[name].shape
        assert np.array_equal(got.spikes[name], ref.spikes[name]), f"spikes of {name}"
        assert np.array_equal(got.states[name], ref.states[name]), f"states of {name}"
    assert got.saturations == ref.saturations
    if saturation_seen is not None:
        saturation_seen.append(sum(ref.saturations.values()))
    return ref, got


def test_random_nets_bit_exact_spikes_states_saturations():
    rng = np.random.default_rng(2024)
    sats: list = []
    resets = set()
    wide = False
    for k in range(24):
        net = random_frozen_net(rng, state_bits=48 if k == 0 else int(rng.choice([8, 10, 16, 24, 32, 48])) if k % 3 == 0 else None)
        onnx.checker.check_model(oe.build_onnx_model(net, check=False), full_check=True)
        resets |= {l.neuron.reset for l in net.layers}
        wide |= any(l.neuron.state_bits > oe.FLOAT_DECAY_MAX_STATE_BITS for l in net.layers)  # the int64 Div decay
        steps = int(rng.integers(1, 9))
        x = random_input(net, rng, int(rng.integers(1, 5)), steps if k % 2 else None)
        _compare(net, x, None if k % 2 else steps, sats)
    assert resets == {"subtract", "zero"} and wide
    assert sum(sats) > 0, "no random net saturated: the saturation path went untested"


def _big_current_net(kind: str) -> FrozenNet:
    """A layer whose worst-case current reaches 2^24: int8 conv + pool, int8 or 12-bit dense, 12-bit conv."""
    rng = np.random.default_rng(5)
    if kind in ("int8-conv", "int12-conv"):
        spec = InputSpec((6, 12, 12), 8, False, 1 / 255, True)
        top = 127 if kind == "int8-conv" else 2047
        w = rng.integers(-top, top + 1, size=(4, 6, 5, 5))
        w[0] = top  # all-255 input: J = 150·127·(2×2 pool)·255 ≈ 19.4M ≥ 2^24 in channel 0
        bits = 8 if top == 127 else 12
        layer = LIFLayer("conv", "conv", w.astype(np.int8 if bits == 8 else np.int16), bits, np.full(4, 1 << 20),
                         np.zeros(4, np.int64), np.full(4, 3000), reset="subtract", frac_bits=2, state_bits=40,
                         stride=(1, 1), pool=(2, 2))
        layers = [layer]
    else:
        n_in = 3000
        bits = 8 if kind == "int8-dense" else 12
        top = (1 << (bits - 1)) - 1
        spec = InputSpec((n_in,), 8, False, 1 / 255, True)
        w = rng.integers(-top, top + 1, size=(6, n_in))
        w[0] = top
        layers = [LIFLayer("fc", "dense", w.astype(np.int8 if bits <= 8 else np.int16), bits, np.full(6, 1 << 22),
                           np.zeros(6, np.int64), np.full(6, 4000), reset="zero", frac_bits=1, state_bits=40)]
    layers.append(LIFLayer("out", "dense", rng.integers(-3, 4, size=(3, int(np.prod(
        layers[0].output_shape(spec.shape))))).astype(np.int8), 3, np.full(3, 2), np.zeros(3, np.int64), np.full(3, 2048),
        flatten_input=layers[0].synapse.kind == "conv"))
    return FrozenNet(spec, layers, 6).validate()


@pytest.mark.parametrize("kind", ["int8-conv", "int8-dense", "int12-dense", "int12-conv"])
def test_currents_beyond_2_24_take_an_exact_split_path(kind):
    net = _big_current_net(kind)
    assert net.current_bounds()[0] >= intmath.FLOAT32_EXACT
    path = oe.describe(net)[0]["synapse_path"]
    assert path.startswith("float32 x ") and oe.describe(net)[1]["synapse_path"] == "float32"
    model = oe.build_onnx_model(net)
    assert not {n.op_type for n in model.graph.node} & {"MatMulInteger", "ConvInteger"}
    rng = np.random.default_rng(3)
    x = rng.integers(200, 256, size=(3,) + net.input.shape)
    x[0] = 255
    ref, _ = _compare(net, x, 6)
    layer = net.layers[0]
    if layer.synapse.kind == "dense":
        j_max = int(np.abs(x[0].astype(np.int64) @ layer.synapse.weight.astype(np.int64).T).max())
    else:
        j_max = int(np.abs(layer.synapse.weight[0].astype(np.int64)).sum()) * 4 * 255
    assert j_max >= intmath.FLOAT32_EXACT  # a single float32 GEMM would not be guaranteed exact here
    assert any(s.any() for s in ref.spikes.values())


def test_layer_without_an_exact_split_is_refused():
    w = np.ones((1, 1 << 24), dtype=np.int8)  # 2^24 one-bit products: no float32 piece can hold the sum
    net = FrozenNet(InputSpec((1 << 24,), 1, False, 1.0, True),
                    [LIFLayer("huge", "dense", w, 2, np.full(1, 10), np.zeros(1, np.int64), np.zeros(1, np.int64),
                              frac_bits=0, state_bits=40)], 2).validate()
    with pytest.raises(UnsupportedLayerError, match="layer 'huge', field 'weight': no exact float split"):
        oe.build_onnx_model(net)


def test_exported_file_runs_alone_and_checker_passes(tmp_path):
    net = random_frozen_net(np.random.default_rng(9), n_layers=3)
    path = get_exporter("onnx")(net, tmp_path, stem="step")[0]
    assert path.name == "step.onnx"
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    names_in = [i.name for i in model.graph.input]
    names_out = [o.name for o in model.graph.output]
    assert names_in == ["x_t"] + [f"{l.name}.v_prev" for l in net.layers]
    assert names_out == [f"{l.name}.{k}" for l in net.layers for k in ("spikes", "v", "saturated")]
    runner = oe.OnnxStepRunner(path, threads=1)  # the file alone: layer names and shapes from its metadata
    x = random_input(net, np.random.default_rng(1), 3)
    got = runner.run(x.astype(np.int64), True, 7, record_states=True)
    ref = NumpySimulator(net).run(x, 7, record_states=True)
    for name in ref.spikes:
        assert np.array_equal(got.spikes[name], ref.spikes[name]) and np.array_equal(got.states[name], ref.states[name])


def test_saturation_raise_mode():
    rng = np.random.default_rng(12)
    for _ in range(50):
        net = random_frozen_net(rng, state_bits=8)
        x = random_input(net, rng, 3)
        if sum(NumpySimulator(net).run(x, 8).saturations.values()):
            break
    else:
        pytest.fail("no saturating net drawn")
    with pytest.raises(SaturationError):
        create_backend("onnx", net, saturation="raise").run(x, 8)


def test_clip_nodes_only_where_no_bound_proves_the_state_safe():
    """A layer whose state bound proves no clip gets no Clip/count nodes; one that may clip keeps them
    (and still counts exactly like the reference)."""
    from qsnn_deploy.statebound import net_state_bounds

    rng = np.random.default_rng(12)
    seen = set()
    for _ in range(60):
        net = random_frozen_net(rng, state_bits=int(rng.choice([8, 24])))
        model = oe.build_onnx_model(net)
        ops = {}
        for node in model.graph.node:
            ops.setdefault(node.output[0].split(".")[0], set()).add(node.op_type)
        clipped = {n.output[0] for n in model.graph.node if n.op_type == "Clip"}
        for layer, bound in zip(net.layers, net_state_bounds(net)):
            has_clip = f"{layer.name}.v" in clipped
            assert has_clip != bound.saturation_free, layer.name
            seen.add(bound.saturation_free)
        x = random_input(net, rng, 3)
        got = create_backend("onnx", net).run(x, 8)
        assert got.saturations == NumpySimulator(net).run(x, 8).saturations
    assert seen == {True, False}


def test_seed_mnist_net_on_real_digits():
    net, _ = seed_mnist_net()
    x, _ = _mnist_digits(40)
    assert [d["synapse_path"] for d in oe.describe(net)] == ["float32"] * 3
    ref, _ = _compare(net, x, 30)
    for name, s in ref.spikes.items():
        assert 0 < s.mean() < 1, f"layer {name} silent or saturated: weak comparison"


def test_verify_api_and_cli_with_onnx_and_nir_backends():
    net = random_frozen_net(np.random.default_rng(4), n_layers=2)
    x = random_input(net, np.random.default_rng(5), 5)
    report = verify(net, x, backends=["onnx", "nir"], num_steps=6)
    assert report.all_exact and [b.name for b in report.backends] == ["onnx", "nir"]
    from qsnn_deploy.data import default_data_dir

    data = default_data_dir("mnist")
    if not (data / "t10k-images-idx3-ubyte.gz").is_file():
        from conftest import missing_data
        missing_data(f"no MNIST at {data}")
    rc = verify_cli.main([str(shipped_model_path()), "--data", str(data), "-n", "16", "--steps", "20",
                          "--backends", "torch,onnx,nir"])
    assert rc == 0


def test_export_cli_targets_onnx_and_nir_and_verify_the_nir_file(tmp_path):
    from qsnn_deploy.cli import export as export_cli
    from qsnn_deploy.exporters.nir_export import read_nir

    model = shipped_model_path()
    assert export_cli.main([str(model), "--target", "onnx", "-o", str(tmp_path)]) == 0
    assert export_cli.main([str(model), "--target", "nir", "-o", str(tmp_path)]) == 0
    onnx_file, nir_file = tmp_path / f"{model.stem}.onnx", tmp_path / f"{model.stem}.nir"
    onnx.checker.check_model(onnx.load(str(onnx_file)), full_check=True)
    net = read_nir(nir_file)
    assert [l.name for l in net.layers] == ["conv1", "conv2", "fc"]
    # a qsnn-written .nir is read exactly (no quantization) and verifies like the checkpoint
    assert verify_cli.main([str(nir_file), "--random", "-n", "3", "--steps", "8", "--backends", "torch,onnx,nir"]) == 0


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(recipe=net_recipes(faithful=False))
def test_conftest_recipes_onnx_equals_numpy_and_nir_round_trips(recipe, tmp_path_factory):
    """Nets frozen from torch models (snnTorch Leaky + nn/Brevitas synapses, BatchNorm, pools)."""
    import warnings

    from qsnn_deploy import FrozenNetError, freeze
    from qsnn_deploy.exporters import nir_export as ne

    model = build_model(recipe)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = freeze(model, weight_bits=recipe["weight_bits"], frac_bits=recipe["frac_bits"], state_bits=recipe["state_bits"])
    except FrozenNetError as exc:
        if exc.field == "bias":
            reject()
        raise
    x = make_input(recipe, np.random.default_rng(recipe["seed"] + 1))
    _compare(net, x, recipe["T"] if recipe["static"] else None)
    path = ne.export(net, tmp_path_factory.mktemp("nir") / "r.nir")[0]
    assert not ne.frozen_differences(net, ne.read_nir(path))


# ----------------------------------------------------------------------------- neuron kinds and recurrence (issue 24)
from qsnn_deploy import Layer, Synapse  # noqa: E402
from qsnn_deploy.neurons import CubaLIF, LIF  # noqa: E402
from test_neurons import KIND_RESETS, random_neuron  # noqa: E402


def _kind_net(neuron, w: np.ndarray, rec: np.ndarray | None = None, x_bits: int = 4, name: str = "fc") -> FrozenNet:
    """One dense layer of ``neuron`` (16-bit weights, optional 16-bit recurrent R) on unsigned ``x_bits`` input."""
    syn = Synapse("dense", w.astype(np.int16), 16, recurrent=None if rec is None else rec.astype(np.int16),
                  recurrent_bits=None if rec is None else 16)
    return FrozenNet(InputSpec((w.shape[1],), bits=x_bits, signed=False, scale=1.0), [Layer(name, syn, neuron)],
                     num_steps=30).validate()


def _steps_against_reference(net: FrozenNet, x: np.ndarray) -> dict:
    """Step the graph by hand beside the kind's ``reference_step`` (J = W·x_t + R·z_{t-1} computed here in
    int64): at every step every state, the spikes and the clip count are equal. Returns what was
    exercised: steps at the limit per state, spikes, clip events, the largest |R·z| seen."""
    (layer,) = net.layers
    neuron, name = layer.neuron, layer.name
    sess = ort.InferenceSession(oe.build_onnx_model(net).SerializeToString(), providers=["CPUExecutionProvider"])
    states = neuron.state_names
    outs = [f"{name}.spikes"] + [f"{name}.{s}" for s in states] + [f"{name}.saturated"]
    limits = {"v": neuron.state_limit, "i": getattr(neuron, "current_limit", None)}
    n, c = x.shape[1], layer.synapse.out_channels
    w = layer.synapse.weight.astype(np.int64)
    r = layer.synapse.recurrent.astype(np.int64) if layer.synapse.is_recurrent else None
    state, z = neuron.initial_state((n, c)), np.zeros((n, c), np.int64)
    held = [np.zeros((n, c), np.int64) for _ in states]
    seen = {"at_limit": {s: 0 for s in states}, "spikes": 0, "clips": 0, "rec_max": 0}
    for t in range(x.shape[0]):
        j = x[t].astype(np.int64) @ w.T
        if r is not None:
            jr = z @ r.T
            seen["rec_max"] = max(seen["rec_max"], int(np.abs(jr).max()))
            j = j + jr
        state, spikes, clips = neuron.reference_step(state, j)
        got = sess.run(outs, {oe.INPUT_NAME: x[t].astype(np.int32), **{f"{name}.{s}_prev": h for s, h in zip(states, held)}})
        assert got[0].dtype == np.uint8 and np.array_equal(got[0], spikes), f"spikes, step {t}"
        for k, s in enumerate(states):
            assert np.array_equal(got[1 + k], state[k]), f"state {s}, step {t}"
            seen["at_limit"][s] += int(np.count_nonzero(np.abs(state[k]) == limits[s]))
        assert int(got[-1]) == clips, f"clip count, step {t}"
        held, z = got[1:-1], spikes.astype(np.int64)
        seen["spikes"] += int(spikes.sum())
        seen["clips"] += clips
    return seen


def _adversarial(kind: str, reset: str, seed: int, c: int = 8, n_in: int = 9, state_bits: int = 16):
    """test_neurons' adversarial neuron plus rows that pin every corner: channel 0 never fires (θ at the
    limit), never leaks and is driven up (both states saturate high); channel 1 is driven down with no
    leak (saturate low); channel 2 fires only AT the clipped limit (θ = limit - 1); channel 3 forgets
    everything (decays 0); channel 4 integrates the current with no leak but forgets v."""
    rng = np.random.default_rng(seed)
    neuron = random_neuron(kind, reset, rng, c, state_bits=state_bits)
    vmax = neuron.state_limit
    neuron.threshold[3:] //= 8  # the rest fire often
    neuron.threshold[2] = vmax - 1
    neuron.decay[:5] = [4096, 4096, 4096, 0, 0]
    neuron.bias[:3] = 0
    if kind == "cuba":
        neuron.current_decay[:5] = [4096, 4096, 4096, 0, 4096]
        neuron.current_bias[:3] = 0
    w = rng.integers(-200, 400, (c, n_in))
    w[0], w[1], w[2] = 300, -300, 300
    return neuron, w, rng


@pytest.mark.parametrize("kind,reset", KIND_RESETS)
@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
def test_every_kind_and_reset_equals_its_reference_step_every_step(kind, reset, recurrent):
    """Each kind and reset, feed-forward and recurrent, on adversarial operands: the graph's states (i and v),
    spikes and clip counts equal the kind's reference_step at every step; the runs reach both limits,
    fire at the limit and (recurrent) carry |R·z| past 60,000 (16-bit R, several spikes at once)."""
    neuron, w, rng = _adversarial(kind, reset, seed=hash((kind, reset, recurrent)) % 2**32)
    rec = None
    if recurrent:
        rec = rng.choice([-32767, -20000, 0, 9, 32767], (w.shape[0], w.shape[0]))
        rec[:3] = 0  # keep the pinned channels' drive one-signed
        rec[3, 3:] = 32767  # the 16-bit limit from every often-firing neuron
    net = _kind_net(neuron, w, rec)
    model = oe.build_onnx_model(net)
    assert [i.name for i in model.graph.input] == ["x_t"] + [f"fc.{s}_prev" for s in neuron.state_names]
    assert [o.name for o in model.graph.output] == ["fc.spikes"] + [f"fc.{s}" for s in neuron.state_names] + ["fc.saturated"]
    x = rng.integers(0, 16, (40, 3, w.shape[1]))
    x[:, :, :] = np.maximum(x, 1)  # every input active: channels 0-2 get a steady one-signed drive
    seen = _steps_against_reference(net, x)
    for s in neuron.state_names:
        assert seen["at_limit"][s] > 0, f"state {s} never reached its limit: the clip path went untested"
    assert seen["clips"] > 0 and seen["spikes"] > 0
    if recurrent:
        assert seen["rec_max"] > 60_000 and oe.describe(net)[0]["recurrent_path"] == "float32"
    # and through the backend (batched runner, T steps) against the NumPy reference
    _compare(net, x, None)


@pytest.mark.parametrize("state_bits,current_bits", [(44, 42), (40, 46), (48, 48)])
def test_cuba_states_past_42_bits_take_the_int64_decay(state_bits, current_bits):
    """A state wider than 42 bits decays through int64 Mul/Div instead of float64 (each state by its own
    width); both paths equal the reference, at the state limits too (F large enough to saturate)."""
    rng = np.random.default_rng(state_bits + current_bits)
    c = 6
    f = min(state_bits, current_bits) - 14
    vmax = intmath.state_limit(state_bits)
    neuron = CubaLIF(np.array([vmax, vmax - 1, *rng.integers(0, vmax >> 6, c - 2)]), rng.integers(-(1 << 20), 1 << 20, c),
                     np.array([4096, 4096, 0, 4095, 1, 3000]), np.array([4096, 4096, 4095, 0, 2048, 1]),
                     rng.integers(-(1 << 20), 1 << 20, c), reset=str(rng.choice(["subtract", "zero", "zero_delayed"])),
                     frac_bits=f, state_bits=state_bits, current_bits=current_bits)
    w = rng.integers(-255, 256, (c, 7))
    w[0], w[1] = 255, 255
    net = _kind_net(neuron, w)
    model = oe.build_onnx_model(net)
    divs = {n.output[0] for n in model.graph.node if n.op_type == "Div"}
    assert ("L0/decayed" in divs) == (state_bits > oe.FLOAT_DECAY_MAX_STATE_BITS)
    assert ("L0/i_decayed" in divs) == (current_bits > oe.FLOAT_DECAY_MAX_STATE_BITS)
    x = rng.integers(1, 16, (60, 2, 7))
    seen = _steps_against_reference(net, x)
    assert all(seen["at_limit"].values()) and seen["spikes"] > 0


def test_recurrent_current_past_2_24_takes_split_pieces():
    """520 neurons with 16-bit recurrent weights: a row of R sums to 17,038,840 ≥ 2^24, so R·z runs as
    float32 pieces of R's digits; R·z reaches past 2^24 in the run and every step equals the reference."""
    rng = np.random.default_rng(7)
    c = 520
    rec = rng.choice([-32767, 32767, 32765], (c, c))
    rec[0] = 32767
    neuron = LIF(np.zeros(c, np.int64), np.full(c, 1 << 30), np.full(c, 2048), "subtract", frac_bits=0, state_bits=40)
    net = _kind_net(neuron, rng.integers(-3, 4, (c, 5)), rec)
    desc = oe.describe(net)[0]
    assert desc["recurrent_path"].startswith("float32 x ") and desc["synapse_path"] == "float32"
    model = oe.build_onnx_model(net)
    assert not {n.op_type for n in model.graph.node} & {"MatMulInteger", "ConvInteger"}
    seen = _steps_against_reference(net, rng.integers(0, 16, (6, 2, 5)))
    assert seen["rec_max"] >= intmath.FLOAT32_EXACT


def test_clip_nodes_per_state_only_where_no_bound_proves_it():
    """A CUBA layer gets a Clip and a count per state the proven bound cannot rule out, none for a proven
    state (the membrane's proof holds whether or not the current clips); the counts still equal the reference."""
    from qsnn_deploy.statebound import net_state_bounds

    rng = np.random.default_rng(21)
    w = rng.integers(-7, 8, (5, 9))
    seen = set()
    for a, d, reset, bits in [(2048, 2048, "subtract", 24), (2048, 4096, "zero", 24), (4096, 3000, "zero_delayed", 24),
                              (3000, 3000, "subtract", 12)]:
        neuron = CubaLIF(np.full(5, 400), np.zeros(5, np.int64), np.full(5, a), np.full(5, d), reset=reset, frac_bits=2,
                         state_bits=bits, current_bits=bits)
        net = _kind_net(neuron, w)
        bound = net_state_bounds(net)[0]
        clipped = {n.output[0] for n in oe.build_onnx_model(net).graph.node if n.op_type == "Clip"}
        want = {f"fc.{s}" for s, ok in (("i", bound.current_peak <= bound.current_limit), ("v", bound.peak <= bound.limit))
                if not ok}
        assert clipped == want, (a, d, reset, bits)
        seen.add(frozenset(clipped))
        x = np.where(rng.random((50, 4, 9)) < 0.5, 15, 0)
        _compare(net, x, None)
    assert seen == {frozenset(), frozenset({"fc.v"}), frozenset({"fc.i", "fc.v"})}


def test_cuba_recurrent_file_runs_alone_and_old_files_still_run(tmp_path):
    """The exported file of a recurrent CUBA net names its states in the metadata and runs on its own; a
    version-1 file (one state, no ``states`` metadata) still runs; a newer version is refused."""
    neuron, w, rng = _adversarial("cuba", "zero", seed=5)
    net = _kind_net(neuron, w, rng.integers(-300, 300, (8, 8)), name="rec.cuba")
    path = get_exporter("onnx")(net, tmp_path, stem="cuba")[0]
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    (info,) = __import__("json").loads({p.key: p.value for p in model.metadata_props}["layers"])
    assert (info["kind"], info["states"], info["recurrent_path"]) == ("cuba", ["i", "v"], "float32")
    x = rng.integers(0, 16, (12, 3, w.shape[1]))
    got = oe.OnnxStepRunner(path, threads=1).run(x, False, 12, record_states=True)
    ref = NumpySimulator(net).run(x, record_states=True)
    assert np.array_equal(got.spikes["rec.cuba"], ref.spikes["rec.cuba"]) and got.spikes["rec.cuba"].any()
    assert np.array_equal(got.states["rec.cuba"], ref.states["rec.cuba"]) and got.saturations == ref.saturations

    lif_net = random_frozen_net(np.random.default_rng(9), n_layers=2)
    old = oe.build_onnx_model(lif_net)
    props = {p.key: p.value for p in old.metadata_props}
    layers = __import__("json").loads(props["layers"])
    for entry in layers:
        entry.pop("states")
    props.update(qsnn_version="1", layers=__import__("json").dumps(layers))
    helper.set_model_props(old, props)
    xl = random_input(lif_net, np.random.default_rng(2), 2)
    got = oe.OnnxStepRunner(old, threads=1).run(xl.astype(np.int64), True, 5, record_states=True)
    ref = NumpySimulator(lif_net).run(xl, 5, record_states=True)
    for name in ref.spikes:
        assert np.array_equal(got.states[name], ref.states[name])
    props["qsnn_version"] = str(oe.VERSION + 1)
    helper.set_model_props(old, props)
    with pytest.raises(ValueError, match=f"version {oe.VERSION + 1}"):
        oe.OnnxStepRunner(old, threads=1)


def test_cuba_saturation_raise_names_both_widths():
    neuron, w, _ = _adversarial("cuba", "subtract", seed=11)
    net = _kind_net(neuron, w)
    with pytest.raises(SaturationError, match=r"layer 'fc'.*16-bit range \(or the current its 1[456]-bit range\)"):
        create_backend("onnx", net, saturation="raise").run(np.full((2, w.shape[1]), 15), 40)


def _rsynaptic(reset: str):
    import snntorch as snn
    import torch.nn as nn
    from snntorch import surrogate

    g = surrogate.fast_sigmoid(slope=5)
    return nn.Sequential(nn.Linear(20, 16), snn.RSynaptic(alpha=0.7, beta=0.9, spike_grad=g, init_hidden=True, linear_features=16,
                                                          reset_mechanism=reset),
                         nn.Linear(16, 5), snn.Synaptic(alpha=0.5, beta=0.85, spike_grad=g, init_hidden=True, output=True))


@pytest.mark.parametrize("build,trained", [("rleaky", True), ("rleaky-one-to-one", True), ("rsynaptic", False),
                                           ("rsynaptic-zero", False)])
def test_plain_snntorch_recurrent_nets_on_spike_input_bit_exact(build, trained):
    """Plain snnTorch RLeaky (all_to_all and one-to-one V) and RSynaptic nets fed 0/1 spikes, frozen and run by
    onnx: every layer bit-exact with the torch backend (held to the reference by tests/test_neurons.py); the
    spike-input side of tests/test_snntorch_kinds.py (pixel input), and RSynaptic, which that file does not
    build. RSynaptic is not trained here: snnTorch 1.0's backward fails on its hidden state ("backward
    through the graph a second time") after ``snn.utils.reset``."""
    import snntorch as snn
    import torch

    from qsnn_deploy import freeze
    from test_snntorch_kinds import STEPS, _train, rleaky

    torch.manual_seed(0)
    model = {"rleaky": lambda: rleaky(True), "rleaky-one-to-one": lambda: rleaky(False),
             "rsynaptic": lambda: _rsynaptic("subtract"), "rsynaptic-zero": lambda: _rsynaptic("zero")}[build]()
    rng = np.random.default_rng(0)
    x = (rng.random((20, 20)) < 0.4).astype(np.int64)
    if trained:
        _train(model, torch.as_tensor(x[:8], dtype=torch.float32), torch.as_tensor(rng.integers(0, 5, 8)))
    snn.utils.reset(model)
    net = freeze(model, input_shape=(20,), input_bits=1, input_scale=1.0, num_steps=STEPS)
    assert net.layers[0].synapse.is_recurrent and net.layers[0].kind == ("cuba" if "rsynaptic" in build else "lif")
    report = verify(net, x, model=model, backends=("torch", "onnx"), num_steps=STEPS)
    exact = [b for b in report.backends if b.exact_required]
    assert [b.name for b in exact] == ["torch-cpu", "onnx"] and report.all_exact, [
        (b.name, [(la.name, la.first_mismatch) for la in b.layers if not la.bit_exact]) for b in exact]
    assert all(la.reference_spikes > 0 for la in exact[0].layers)


def test_recurrent_weights_without_an_exact_split_are_refused_by_field():
    """The one thing about recurrence the graph cannot make exact: a row of 2^24 one-bit recurrent products
    (no float32 piece holds its sum). No valid net reaches it (2^24 neurons, a 2^48-entry R), so the
    planner is asked directly, with a layer holding one such row; the error names the layer and field."""
    from types import SimpleNamespace

    stub = SimpleNamespace(name="loop", synapse=SimpleNamespace(recurrent=np.ones((1, 1 << 24), np.int8), is_recurrent=True))
    with pytest.raises(UnsupportedLayerError, match="layer 'loop', field 'recurrent': no exact float split"):
        oe.recurrent_split(stub)
