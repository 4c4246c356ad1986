"""The Xylo target (issue 25): the ``"xylo"`` neuron kind against xylosim (Rockpool's XyloSim, vendor code) on
every neuron-step, the NumPy and torch kernels against the kind's reference step, the ``.npz`` spec round trip
with Rockpool alone, the chip limits against Rockpool's own modules, and bad inputs refused by name."""
from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from qsnn_deploy import FrozenNet, FrozenNetError, InputSpec, Layer, Synapse
from qsnn_deploy.errors import CheckpointError, UnsupportedNeuronError
from qsnn_deploy.neurons import LIF, NEURON_KINDS, XyloNeuron, xylo_decay
from qsnn_deploy.neurons.xylo import fold_terms, synaptic_terms
from qsnn_deploy.simulators.numpy_sim import NumpySimulator
from qsnn_deploy.simulators.torch_sim import TorchSimulator
from qsnn_deploy.simulators.xylo_scan import fold_sources
from qsnn_deploy.xylo import rockpool_compat
from qsnn_deploy.xylo.chips import CHIPS
from qsnn_deploy.xylo.check import check_net, factor_shift
from qsnn_deploy.xylo.export import SPEC_KEYS, build_spec, export, load_spec

HAVE_XYLOSIM = rockpool_compat.available("syns63300")
needs_xylosim = pytest.mark.skipif(not HAVE_XYLOSIM, reason="rockpool 3.1.0 + xylosim 0.1.3 not installed (make setup)")


# ------------------------------------------------------------------ nets
def _xylo_layer(name, rng, w, rec, th_hi, readout, strong, first=False):
    c = w.shape[0]
    th = rng.integers(1, th_hi, c)
    th[-1] = 32767                           # θ at the int16 limit
    bias = np.zeros(c, np.int64)             # a layer behind the input has no bias on Xylo (xylo/check.py)
    if first:
        th[0] = 0                            # θ = 0: fires max_spikes while v ≥ 0
        bias = rng.integers(-300, 300, c)
        if strong:
            bias[1] = 32767                  # saturates dv + bias
            bias[2] = -32768
    syn = Synapse("dense", w, 16, recurrent=rec, recurrent_bits=None if rec is None else 16)
    neuron = XyloNeuron(th, bias, rng.integers(0, 16, c), rng.integers(0, 16, c), 1 if readout else 31)
    neuron.dash_mem[0] = 0                   # membrane erased every step (and the int16 wrap of -(-32768))
    neuron.dash_syn[1] = 0
    return Layer(name, syn, neuron)


def random_xylo_net(rng, hidden=(40,), n_in=16, n_out=8, shifts=(6, 4, 5), strong=True, recurrent=True,
                    density=0.6) -> FrozenNet:
    """16 → hidden (recurrent) → readout, weights int8 << one shift per Xylo matrix (in, rec, out)."""
    s_in, s_rec, s_out = shifts

    def w8(shape, s):
        w = rng.integers(-128, 128, shape)
        w[rng.random(shape) > density] = 0
        return (w << s).astype(np.int32)

    layers, prev = [], n_in
    for i, h in enumerate(hidden):
        w = w8((h, prev), s_in if i == 0 else s_rec)
        rec = w8((h, h), s_rec) if recurrent else None
        layers.append(_xylo_layer(f"h{i}", rng, w, rec, 4000, False, strong, first=i == 0))
        prev = h
    layers.append(_xylo_layer("out", rng, w8((n_out, prev), s_out), None, 3000, True, strong))
    return FrozenNet(InputSpec((n_in,), bits=4, scale=1.0, static=False), layers, num_steps=30).validate()


def reference_run(net: FrozenNet, x: np.ndarray):
    """The kinds' own reference steps with every synaptic term in xylosim's order (ff sources, then recurrent),
    layer by layer within a step. x [T, N, n_in]. Returns spikes {layer: [T, N, C]}, states, saturations."""
    steps, n = x.shape[:2]
    states = {l.name: l.neuron.initial_state((n, l.out_channels)) for l in net.layers}
    last = {l.name: np.zeros((n, l.out_channels), np.int64) for l in net.layers}
    spikes = {l.name: np.zeros((steps, n, l.out_channels), np.uint8) for l in net.layers}
    vs = {l.name: np.zeros((steps, n, l.out_channels), np.int64) for l in net.layers}
    sats = {l.name: 0 for l in net.layers}
    for t in range(steps):
        h, cap = x[t].astype(np.int64), 15
        for layer in net.layers:
            terms = synaptic_terms(h, layer.synapse.weight, cap)
            if layer.synapse.is_recurrent:
                terms = np.concatenate([terms, synaptic_terms(last[layer.name], layer.synapse.recurrent, 31)], axis=-2)
            states[layer.name], z, k = layer.neuron.reference_step(states[layer.name], terms)
            last[layer.name] = z.astype(np.int64)
            spikes[layer.name][t], vs[layer.name][t] = z, states[layer.name][1]
            sats[layer.name] += k
            h, cap = z.astype(np.int64), 31
    return spikes, vs, sats


def _inputs(rng, steps, n, n_in=16, hi=16):
    x = rng.integers(0, hi, (steps, n, n_in))
    x[:, 0] = 15                 # a sample driven hard: saturation and the 31-spike cap
    x[:, 1, ::2] = 0
    return x


# ------------------------------------------------------------------ the neuron kind
def _c_decay(v: int, dash: int) -> int:
    """xylosim's ``decay`` (XyloIAFNeuron.cpp) transcribed: dv = v >> dash; if dv == 0: dv = sign(v); returns dv."""
    dv = v >> dash
    if dv == 0:
        dv = 1 if v > 0 else (-1 if v < 0 else 0)
    return dv


def test_xylo_decay_is_xylosims_decay_on_every_int16_state():
    v = np.arange(-32768, 32768, dtype=np.int64)
    for dash in range(16):
        want = np.array([x - _c_decay(int(x), dash) for x in v[::97]] + [int(x) - _c_decay(int(x), dash) for x in (-1, 0, 1, 32767, -32768)])
        got = xylo_decay(np.concatenate([v[::97], [-1, 0, 1, 32767, -32768]]), dash)
        assert np.array_equal(got, want), dash
    # not "max(x >> dash, sign(x))" for negative x: -100 >> 2 = -25 is the leak, not -1
    assert int(xylo_decay(np.array([-100]), 2)[0]) == -75
    assert int(xylo_decay(np.array([3]), 2)[0]) == 2          # minimum leak of one unit
    assert int(xylo_decay(np.array([12345]), 0)[0]) == 0      # dash 0 erases


def test_fold_fast_path_equals_ordered_saturating_adds():
    rng = np.random.default_rng(1)
    seen = []
    for _ in range(20):
        b, p, c = 6, 9, 11
        counts = rng.integers(0, 32, (b, p))
        w = (rng.integers(-128, 128, (c, p)) << rng.integers(0, 9))
        isyn = rng.integers(-32768, 32768, (b, c))
        want, m_want = fold_terms(isyn, synaptic_terms(counts, w, 31))
        # term by term, no fast path at all
        s = isyn.copy()
        m_seq = np.zeros(s.shape, bool)
        for k in range(p):
            raw = s + counts[:, k:k + 1] * w[:, k]
            s = np.clip(raw, -32768, 32767)
            m_seq |= s != raw
        got, m_got = fold_sources(isyn, [(np.minimum(counts, 31), w.astype(np.int64))])
        assert np.array_equal(want, s) and np.array_equal(got, s)
        assert np.array_equal(m_want, m_seq) and np.array_equal(m_got, m_seq)
        seen.append(m_seq.mean())
    assert any(0 < m < 1 for m in seen)  # some neurons clip, some do not: both paths run in one call
    # the order matters: 32000 + 2000 - 2000 is 30767, not 32000
    out, m = fold_terms(np.array([32000]), np.array([[2000], [-2000]]))
    assert int(out[0]) == 30767 and bool(m[0])


def test_kind_is_registered_validated_and_round_trips(tmp_path):
    assert NEURON_KINDS["xylo"] is XyloNeuron
    rng = np.random.default_rng(2)
    net = random_xylo_net(rng, hidden=(12,), n_out=4)
    path = tmp_path / "x.qsnn"
    net.save(path)
    back = FrozenNet.load(path)
    assert all(np.array_equal(a.neuron.dash_syn, b.neuron.dash_syn) and a.neuron.max_spikes == b.neuron.max_spikes
               for a, b in zip(net.layers, back.layers))
    bad = [("dash_mem", 16, "0..15"), ("dash_syn", -1, "0..15"), ("threshold", -5, "0..32767"), ("bias", 40000, "-32768..32767")]
    for field, value, limit in bad:
        n = XyloNeuron(np.full(3, 10), np.zeros(3, np.int64), np.ones(3, np.int64), np.ones(3, np.int64))
        getattr(n, field)[1] = value
        with pytest.raises(FrozenNetError, match=re.escape(limit)) as info:
            n.validate("h0", 3)
        assert (info.value.layer, info.value.field) == ("h0", field)
    with pytest.raises(FrozenNetError, match="max_spikes"):
        XyloNeuron(np.full(3, 10), np.zeros(3, np.int64), np.ones(3, np.int64), np.ones(3, np.int64), 32).validate("h0", 3)


@pytest.mark.parametrize("hidden", [(40,), (24, 16)])
def test_numpy_and_torch_kernels_equal_the_reference_step(hidden):
    """Saturation (isyn, dv, v), both spike caps, θ = 0 and 32767, dash 0 hit; every neuron-step of every layer."""
    rng = np.random.default_rng(len(hidden))
    net = random_xylo_net(rng, hidden=hidden)
    x = _inputs(rng, 30, 5)
    want, vs, sats = reference_run(net, x)
    assert sum(sats.values()) > 0
    assert want["h0"].max() == 31 and want["out"].max() == 1 and want["out"].any()
    for res in (NumpySimulator(net).run(x, record_states=True), TorchSimulator(net).run(x, record_states=True)):
        for name in want:
            assert np.array_equal(res.spikes[name], want[name]), (res.backend, name)
            assert np.array_equal(res.states[name], vs[name]), (res.backend, name)
            assert res.saturations[name] == sats[name], (res.backend, name)
    # a static input (the same counts every step) too
    xs = x[0]
    want_s, _, _ = reference_run(net, np.broadcast_to(xs, x.shape))
    for res in (NumpySimulator(net).run(xs, num_steps=30), TorchSimulator(net).run(xs, num_steps=30)):
        assert all(np.array_equal(res.spikes[k], want_s[k]) for k in want_s), res.backend


def test_backends_that_cannot_express_it_refuse_by_name():
    from qsnn_deploy.exporters.nir_export import NIR_KERNELS
    from qsnn_deploy.exporters.onnx_export import ONNX_KERNELS
    from qsnn_deploy.lava.export import LAVA_KERNELS
    from qsnn_deploy.lava.loihi_sim import LOIHI_KERNELS
    net = random_xylo_net(np.random.default_rng(3), hidden=(8,), n_out=3)
    for table, why in ((ONNX_KERNELS, "saturation"), (NIR_KERNELS, "NIR has no Xylo neuron"),
                       (LAVA_KERNELS, "--target xylo"), (LOIHI_KERNELS, "no Loihi neuron")):
        with pytest.raises(UnsupportedNeuronError, match=why) as info:
            table.check(net)
        assert (info.value.layer, info.value.kind) == ("h0", "xylo")


# ------------------------------------------------------------------ xylosim (vendor code)
@needs_xylosim
@pytest.mark.parametrize("version,hidden,n_out", [("syns63300", (40,), 10), ("syns63300", (24, 16), 8),
                                                   ("syns61201", (32,), 8)])
def test_xylosim_equals_reference_every_neuron_step(version, hidden, n_out):
    from qsnn_deploy.xylo.backend import XyloSimBackend
    rng = np.random.default_rng(7 + len(hidden) + n_out)
    net = random_xylo_net(rng, hidden=hidden, n_out=n_out)
    x = _inputs(rng, 30, 6)
    want, vs, sats = reference_run(net, x)
    assert sum(sats.values()) > 0 and want["h0"].max() == 31
    res = XyloSimBackend(net, version=version).run(x, record_states=True)
    assert res.info["version"] == version
    for name in want:
        assert np.array_equal(res.spikes[name], want[name]), name
        assert np.array_equal(res.states[name], vs[name]), name


@needs_xylosim
def test_verify_streams_xylo_and_reports_bit_exact():
    from qsnn_deploy.verify import verify
    rng = np.random.default_rng(11)
    net = random_xylo_net(rng, hidden=(20, 12), n_out=10)
    x = _inputs(rng, 30, 40)
    report = verify(net, x, backends=("torch", "xylo"), batch_size=16)
    assert [b.bit_exact for b in report.backends] == [True, True]
    assert "Xylo timing" in report.backends[1].note
    # and it finds a difference: a spec with one threshold changed runs in xylosim, the reference does not know
    from qsnn_deploy.xylo.backend import XyloSimBackend
    b = XyloSimBackend(net)
    b.spec["threshold"][3] += 1
    b.module = rockpool_compat.build_xylosim(b.version, b.spec)
    res = b.run(x)
    ref = NumpySimulator(net).run(x)
    assert not all(np.array_equal(res.spikes[k], ref.spikes[k]) for k in ref.spikes)


# ------------------------------------------------------------------ the spec file
@needs_xylosim
def test_spec_round_trip_runs_in_rockpool_alone(tmp_path):
    """``XyloSim.from_specification(**dict(np.load(f)))`` in a fresh Python that imports nothing of ours, both chips."""
    rng = np.random.default_rng(13)
    net = random_xylo_net(rng, hidden=(16, 12), n_out=8)
    x = _inputs(rng, 20, 2)[:, 1]
    np.save(tmp_path / "x.npy", np.concatenate([x, np.zeros((2, 16), np.int64)]))
    versions = ("syns63300", "syns61201")
    for version in versions:
        [path] = export(net, tmp_path / version, stem="m", version=version)
        assert path.name == "m.npz" and set(np.load(path).files) == set(SPEC_KEYS)
        assert load_spec(path)["weights_rec"].shape == (28, 28, 1)
        params = inspect.signature(rockpool_compat.xylosim_class(version).from_specification).parameters
        assert set(params) - set(SPEC_KEYS) - {"args", "kwargs"} == {"aliases", "verify_config", "output_mode"}
        assert set(SPEC_KEYS) <= set(params)
    script = textwrap.dedent("""
        import importlib, importlib.util, sys, types
        import numpy as np
        import rockpool.devices
        spec = importlib.util.find_spec("rockpool.devices.xylo")   # samna-free import of the chip subpackage
        pkg = types.ModuleType("rockpool.devices.xylo"); pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["rockpool.devices.xylo"] = pkg
        for version in sys.argv[1:]:
            XyloSim = importlib.import_module(f"rockpool.devices.xylo.{version}.xylo_sim").XyloSim
            mod = XyloSim.from_specification(**dict(np.load(f"{version}/m.npz")))
            out, _, rec = mod.evolve(np.load("x.npy"), record=True)
            np.savez(f"{version}/o.npz", out=out, hidden=rec["Spikes"])
        assert "qsnn_deploy" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", script, *versions], check=True, cwd=tmp_path)
    want, _, _ = reference_run(net, x[:, None])
    assert want["out"].any()
    for version in versions:
        got = np.load(tmp_path / version / "o.npz")
        assert np.array_equal(got["hidden"][0:20, :16], want["h0"][:, 0]), version
        assert np.array_equal(got["hidden"][1:21, 16:], want["h1"][:, 0]), version
        assert np.array_equal(got["out"][2:22], want["out"][:, 0]), version


def test_spec_shifts_factor_each_matrix_exactly():
    rng = np.random.default_rng(17)
    net = random_xylo_net(rng, hidden=(10, 6), n_out=4, shifts=(3, 0, 8))
    spec = build_spec(net)
    assert (int(spec["weight_shift_in"]), int(spec["weight_shift_rec"]), int(spec["weight_shift_out"])) == (3, 0, 8)
    assert spec["weights_in"].dtype == np.int8
    w = net.layers[1].synapse.weight
    assert np.array_equal(spec["weights_rec"][0:10, 10:16, 0].astype(np.int64).T, w)  # h0 -> h1 block, shift 0
    assert factor_shift([np.array([256, -512])], 8) == (2, "")     # -512 >> 2 = -128
    assert factor_shift([np.array([254, -256])], 8) == (1, "")
    assert factor_shift([np.array([129])], 8)[0] is None


def test_truncated_or_misshapen_spec_gets_one_clear_line(tmp_path):
    net = random_xylo_net(np.random.default_rng(19), hidden=(8,), n_out=4)
    [path] = export(net, tmp_path)
    blob = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="cut.npz: not a readable Xylo spec"):
        load_spec(tmp_path / "cut.npz")
    spec = dict(np.load(path))
    spec["threshold"] = spec["threshold"][:-1]
    np.savez(tmp_path / "short.npz", **spec)
    with pytest.raises(CheckpointError, match=r"field threshold has shape \(7,\), expected \(8,\)"):
        load_spec(tmp_path / "short.npz")
    del spec["bias"]
    np.savez(tmp_path / "nobias.npz", **spec)
    with pytest.raises(CheckpointError, match="missing bias"):
        load_spec(tmp_path / "nobias.npz")


# ------------------------------------------------------------------ limits and refusals
@needs_xylosim
def test_chip_limits_are_rockpools_own():
    for version, chip in CHIPS.items():
        mapper = rockpool_compat.xylo_module(version, "xylo_mapper")
        params = inspect.signature(mapper.mapper).parameters
        assert params["max_hidden_neurons"].default == chip.hidden, version
        assert params["max_output_neurons"].default == chip.readouts, version
        doc = mapper.mapper.__doc__   # the defaults are "float"; the documented hardware types are int8 / int16
        assert 'weight parameters. Default: ``"int8"``' in doc and 'threshold parameters. Default: ``"int16"``' in doc
        src = inspect.getsource(mapper)
        assert "le_16_input_channels" in src and chip.inputs == 16
    imu = rockpool_compat.xylo_module("syns63300", "xylo_mapper")
    assert inspect.signature(imu.max_synapses_per_neuron).parameters["max_syns"].default == CHIPS["syns63300"].synapses
    samna_cfg = Path(imu.__file__).with_name("xylo_samna.py").read_text()
    assert f"weights_in.shape[1] > {CHIPS['syns63300'].input_expansion}" in samna_cfg
    assert f"weights_out.shape[0] > {CHIPS['syns63300'].output_expansion}" in samna_cfg
    xylosim_header = Path(rockpool_compat.xylo_module("syns63300", "xylo_sim").__file__)  # the caps are xylosim's
    assert xylosim_header.exists()
    with pytest.raises(rockpool_compat.XyloUnavailableError, match="samna"):
        rockpool_compat.check_version("syns65302")


def _fit_miss(net, version="syns63300"):
    fit = check_net(net, version)
    assert not fit.fits
    return [(l.name, c.field) for l in fit.layers for c in l.checks if c.blocking and not c.ok] + \
           [("net", c.field) for c in fit.net_checks if c.blocking and not c.ok]


def test_nets_that_do_not_fit_are_refused_naming_layer_field_limit(tmp_path):
    rng = np.random.default_rng(23)
    assert check_net(random_xylo_net(rng, hidden=(40,), n_out=10)).fits
    # too many inputs, hidden neurons, readouts
    assert ("net", "input shape") in _fit_miss(random_xylo_net(rng, hidden=(8,), n_in=17, n_out=4))
    assert ("net", "hidden neurons") in _fit_miss(random_xylo_net(rng, hidden=(300, 197), n_out=4, density=0.01))
    assert ("net", "readout neurons") in _fit_miss(random_xylo_net(rng, hidden=(8,), n_out=17))
    assert ("net", "readout neurons") in _fit_miss(random_xylo_net(rng, hidden=(8,), n_out=10), "syns61201")
    # Xylo IMU: only the first 128 hidden neurons take input, the last 128 feed the readout
    wide = random_xylo_net(rng, hidden=(200,), n_out=10, density=0.2)
    assert _fit_miss(wide) == [("h0", "input expansion neurons"), ("out", "output expansion neurons")]
    assert check_net(wide, "syns61201").net_checks[-1].ok is False  # 10 readouts > 8 on Audio 2
    # a weight over int8 << shift, and matrices sharing the hidden shift
    net = random_xylo_net(rng, hidden=(8,), n_out=4)
    net.layers[0].synapse.weight[0, 0] = 129
    assert ("h0", "weight (Xylo weights_in, shift own)") in _fit_miss(net)
    net = random_xylo_net(rng, hidden=(8, 6), n_out=4, shifts=(0, 2, 0))
    net.layers[1].synapse.weight[:] = net.layers[1].synapse.weight << 3   # its own shift 5; the recurrent blocks use 2
    net.layers[1].synapse.weight_bits = 16
    assert [m for m in _fit_miss(net) if m[0] == "h1"]
    # spike caps: a hidden layer that stops at 1 spike, a readout that may fire 31
    net = random_xylo_net(rng, hidden=(8,), n_out=4)
    net.layers[0].neuron.max_spikes = 1
    net.layers[1].neuron.max_spikes = 31
    assert set(_fit_miss(net)) == {("h0", "max_spikes"), ("out", "max_spikes")}
    # a bias (or θ = 0) on a layer behind the input: Xylo would integrate it before the input arrives
    net = random_xylo_net(rng, hidden=(8, 6), n_out=4)
    net.layers[1].neuron.bias[2] = 5
    net.layers[2].neuron.threshold[0] = 0
    assert set(_fit_miss(net)) == {("h1", "bias"), ("out", "threshold")}
    # a recurrent readout; 8-bit input counts
    net = random_xylo_net(rng, hidden=(8,), n_out=4)
    net.layers[1].synapse.recurrent = np.zeros((4, 4), np.int32)
    net.layers[1].synapse.recurrent_bits = 8
    assert ("out", "recurrent") in _fit_miss(net)
    net = random_xylo_net(rng, hidden=(8,), n_out=4)
    net.input.bits = 8
    assert ("net", "input counts") in _fit_miss(net)
    # a conv layer, and a non-xylo neuron kind: refused, and nothing written
    conv = FrozenNet(InputSpec((1, 4, 4), bits=4, scale=1.0), [
        Layer("conv1", Synapse("conv", rng.integers(-3, 4, (2, 1, 3, 3)), 8), XyloNeuron(np.full(2, 9), np.zeros(2, np.int64), np.ones(2, np.int64), np.ones(2, np.int64))),
        Layer("out", Synapse("dense", rng.integers(-3, 4, (2, 8)), 8, flatten_input=True),
              XyloNeuron(np.full(2, 9), np.zeros(2, np.int64), np.ones(2, np.int64), np.ones(2, np.int64), 1))]).validate()
    assert ("conv1", "synapse") in _fit_miss(conv)
    lif = FrozenNet(InputSpec((16,), bits=4, scale=1.0), [
        Layer("h0", Synapse("dense", rng.integers(-3, 4, (8, 16)), 8), LIF(np.full(8, 50), np.zeros(8, np.int64), np.full(8, 3000))),
        net.layers[1]]).validate()
    assert ("h0", "neuron kind") in _fit_miss(lif)
    for bad, where in ((conv, ("conv1", "synapse")), (lif, ("h0", "neuron kind")), (wide, ("h0", "input expansion neurons"))):
        with pytest.raises(FrozenNetError) as info:
            export(bad, tmp_path / "out", stem="bad")
        assert (info.value.layer, info.value.field) == where and "limit" in str(info.value)
    assert not (tmp_path / "out" / "bad.npz").exists()
    assert not any((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_cli_export_check_strict_json(tmp_path):
    from qsnn_deploy.cli.export import main
    rng = np.random.default_rng(29)
    good = random_xylo_net(rng, hidden=(24,), n_out=10)
    good.save(tmp_path / "good.qsnn")
    assert main([str(tmp_path / "good.qsnn"), "--target", "xylo", "--strict", "-o", str(tmp_path / "out"),
                 "--check-json", str(tmp_path / "fit.json")]) == 0
    assert set(np.load(tmp_path / "out" / "good.npz").files) == set(SPEC_KEYS)
    doc = json.loads((tmp_path / "fit.json").read_text())
    assert doc["fits"] and doc["chip"]["version"] == "syns63300" and doc["layers"][1]["latency"] == 1
    wide = random_xylo_net(rng, hidden=(200,), n_out=10, density=0.2)
    wide.save(tmp_path / "wide.qsnn")
    assert main([str(tmp_path / "wide.qsnn"), "--target", "xylo", "--check"]) == 1
    assert main([str(tmp_path / "wide.qsnn"), "--target", "xylo", "--strict", "-o", str(tmp_path / "o2")]) == 1
    assert not (tmp_path / "o2" / "wide.npz").exists()
    assert main([str(tmp_path / "wide.qsnn"), "--target", "xylo", "--chip", "syns61201", "--check"]) == 1
    assert main([str(tmp_path / "good.qsnn"), "--target", "xylo", "--chip", "syns65302", "--check"]) == 2


def test_state_bound_is_a_proof_with_multi_spike_inputs():
    """A saturation-free bound holds on the adversarial input (every count at its cap); a strong net has no proof."""
    from qsnn_deploy.statebound import net_state_bounds
    rng = np.random.default_rng(31)
    net = random_xylo_net(rng, hidden=(12, 8), n_out=4, shifts=(0, 0, 0), strong=False, density=0.3)
    for layer in net.layers:
        layer.synapse.weight[:] = np.clip(layer.synapse.weight, -3, 3)
        if layer.synapse.is_recurrent:
            layer.synapse.recurrent[:] = np.clip(layer.synapse.recurrent, -3, 3)
        layer.neuron.dash_syn[:] = 1
        layer.neuron.dash_mem[:] = 2
        layer.neuron.threshold[:] = np.maximum(layer.neuron.threshold // 40, 1)
    bounds = net_state_bounds(net)
    assert all(b.saturation_free for b in bounds)
    x = np.full((40, 3, 16), 15)
    spikes, vs, sats = reference_run(net, x)
    assert sum(sats.values()) == 0 and spikes["h0"].max() > 1      # h1 gets multi-spike inputs
    for layer, b in zip(net.layers, bounds):
        assert np.abs(vs[layer.name]).max() <= b.peak
    strong = random_xylo_net(rng, hidden=(12,), n_out=4)
    assert not net_state_bounds(strong)[0].saturation_free


@needs_xylosim
def test_cli_verify_backends_xylo_all_bit_exact(tmp_path, capsys):
    from qsnn_deploy.cli.verify import main
    net = random_xylo_net(np.random.default_rng(37), hidden=(24, 16), n_out=10)
    net.metadata["xylo_version"] = "syns63300"
    net.save(tmp_path / "m.qsnn")
    assert main([str(tmp_path / "m.qsnn"), "--random", "-n", "40", "--steps", "12", "--backends", "xylo",
                 "--json", str(tmp_path / "v.json")]) == 0
    assert "ALL BIT-EXACT" in capsys.readouterr().out
    doc = json.loads((tmp_path / "v.json").read_text())
    xylo = next(b for b in doc["backends"] if b["name"].startswith("xylo"))
    assert xylo["bit_exact"] and "Xylo timing" in xylo["note"]
