"""--target lava: netx export and round trip, Loihi 2 constraint check, and real Lava runs
(lava-nc 0.10.0 / lava-dl 0.6.0, Loihi2SimCfg fixed_pt) equal to the Loihi-style simulator (raw,
Lava-timed) and to the NumPy reference (after the documented l+1 step shift), every layer, step
and neuron."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch.nn as nn

from conftest import mnist_model_with_negative_gammas
from qsnn_deploy import freeze
from qsnn_deploy.checkpoint import model_from_checkpoint
from qsnn_deploy.cli import export as export_cli
from qsnn_deploy.cli import verify as verify_cli
from qsnn_deploy.errors import QSNNError
from qsnn_deploy.lava.check import check_net, weight_mantissa
from qsnn_deploy.lava.export import read_netx, write_netx
from qsnn_deploy.frozen import FrozenNet, InputSpec, LIFLayer
from qsnn_deploy.simulators import create_backend
from qsnn_deploy.lava.backend import LavaSimulator
from qsnn_deploy.lava.loihi_sim import LoihiSimulator
from qsnn_deploy.simulators.numpy_sim import NumpySimulator
from qsnn_deploy.verify import verify

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "examples" / "mnist_int4_qsnn.pt"


def small_net(reset="subtract", stock=False, seed=0) -> FrozenNet:
    """8-bit 1×10×10 input -> conv 4×1×3×3 + sum pool 2×2 -> flatten -> dense 5."""
    rng = np.random.default_rng(seed)

    def th(c, scale=1):
        return np.full(c, int(rng.integers(10, 60)) * 64 * scale) if stock else rng.integers(500, 9000, c) * scale
    bias = (lambda c: np.zeros(c, np.int64)) if stock else (lambda c: rng.integers(-300, 300, c))
    # stock: β = 0.25, so the proven state bound holds (--strict refuses a state that may clip)
    dec = (lambda c: np.full(c, 1024)) if stock else (lambda c: rng.integers(2000, 4097, c))
    l1 = LIFLayer("conv1", "conv", rng.integers(-7, 8, (4, 1, 3, 3)), 4, th(4, 8), bias(4), dec(4), reset=reset, pool=(2, 2))
    l2 = LIFLayer("fc", "dense", rng.integers(-7, 8, (5, 64)), 4, th(5), bias(5), dec(5), reset=reset, flatten_input=True)
    return FrozenNet(InputSpec((1, 10, 10)), [l1, l2], num_steps=20).validate()


def assert_lava_matches(net: FrozenNet, x, steps: int, lava: LavaSimulator | None = None):
    """Lava raw == Loihi-style raw (bit for bit, T+L steps) and Lava aligned == NumPy reference."""
    ref = NumpySimulator(net).run(x, steps)
    loihi = LoihiSimulator(net).run(x, steps)
    lava = lava or LavaSimulator(net)
    res = lava.run(x, steps)
    assert res.info["routes"] == loihi.info["routes"]
    for i, name in enumerate(ref.spikes):
        raw_lava, raw_loihi = res.info["raw_spikes"][name], loihi.info["raw_spikes"][name]
        assert raw_lava.shape == (steps + len(net.layers),) + ref.spikes[name].shape[1:]
        assert np.array_equal(raw_lava, raw_loihi), f"{name}: Lava != Loihi-style simulator"
        assert not raw_lava[: i + 1].any()  # pipeline warm-up: silent
        assert np.array_equal(res.spikes[name], ref.spikes[name]), f"{name}: Lava != NumPy reference"
        assert res.saturations[name] == ref.saturations[name] or res.info["routes"][i] == "stock"
    return ref, res


# ------------------------------------------------------------------------------ export / round trip
def test_netx_round_trip_runs_identically(tmp_path):
    net = small_net()
    path = write_netx(net, tmp_path / "n.net")
    back = read_netx(path)
    assert [l.name for l in back.layers] == ["conv1", "fc"]
    assert back.layers[0].synapse.pool is None and back.layers[0].kernel == (4, 4) and back.layers[0].synapse.stride == (2, 2)
    for a, b in zip(net.layers, back.layers):
        for f in ("threshold", "bias", "decay"):
            assert np.array_equal(getattr(a.neuron, f), getattr(b.neuron, f))
        assert a.neuron.reset == b.neuron.reset and a.neuron.frac_bits == b.neuron.frac_bits
        assert a.neuron.state_bits == b.neuron.state_bits
    x = np.random.default_rng(2).integers(0, 256, (4, 1, 10, 10))
    ra, rb = NumpySimulator(net).run(x, 15), NumpySimulator(back).run(x, 15)
    for name in ra.spikes:
        assert ra.spikes[name].sum() > 0 and np.array_equal(ra.spikes[name], rb.spikes[name])


def test_netx_file_loads_in_stock_netx(tmp_path):
    from qsnn_deploy.lava.backend import import_lava

    hdf5 = import_lava()[0]  # not a bare import: an earlier test may have fixed multiprocessing's start method

    net = small_net(reset="zero", stock=True)
    path = write_netx(net, tmp_path / "n.net")
    network = hdf5.Network(net_config=str(path), input_message_bits=8)
    assert [type(b).__name__ for b in network.layers] == ["Conv", "Dense"]
    assert [type(b.neuron).__name__ for b in network.layers] == ["LIF", "LIF"]
    assert network.layers[0].out.shape == (4, 4, 4) and network.layers[1].out.shape == (5,)
    assert int(network.layers[0].neuron.vth.init) == int(net.layers[0].neuron.threshold[0]) >> 6
    assert int(network.layers[0].neuron.du.init) == 4095 and int(network.layers[0].neuron.dv.init) == 4096 - 1024


def test_export_is_atomic_and_refuses_bad_nets(tmp_path):
    net = small_net()
    bad = dataclasses.replace(net, layers=[dataclasses.replace(net.layers[0], neuron=dataclasses.replace(net.layers[0].neuron, threshold=np.array([1, 2, 3])))] + net.layers[1:])
    with pytest.raises(QSNNError, match="conv1.*threshold"):
        write_netx(bad, tmp_path / "bad.net")
    with pytest.raises(QSNNError, match="conv1.*threshold"):
        create_backend("lava", bad)
    assert not list(tmp_path.iterdir())  # nothing half-written
    (tmp_path / "junk.net").write_bytes(b"not hdf5 at all")
    with pytest.raises(QSNNError, match="cannot read as HDF5"):
        LavaSimulator(netx_path=tmp_path / "junk.net")


def test_missing_lava_is_a_clear_error(monkeypatch):
    import sys

    from qsnn_deploy.lava.backend import LavaUnavailableError

    monkeypatch.setitem(sys.modules, "lava.lib.dl.netx", None)  # as if lava-dl were not installed
    with pytest.raises(LavaUnavailableError, match="tools/install_lava.py"):
        LavaSimulator(small_net())


# ------------------------------------------------------------------------------ constraint check
def test_check_routes_and_fields():
    stock = check_net(small_net(reset="zero", stock=True))
    assert stock.fits and [l.route for l in stock.layers] == ["stock", "stock"]
    custom = check_net(small_net())
    assert not custom.fits and custom.fits_hardware
    reasons = " ".join(custom.layers[0].stock_reasons)
    assert "subtract reset" in reasons and "per-channel threshold" in reasons and "bias not a multiple of 64" in reasons


def test_check_names_layer_field_and_limit_of_a_miss():
    net = small_net(reset="zero", stock=True)
    w = net.layers[1].synapse.weight.astype(np.int64).copy()
    w[0, 0] = 300  # needs a 10-bit mixed-sign mantissa
    wide = dataclasses.replace(net.layers[1], synapse=dataclasses.replace(net.layers[1].synapse, weight=w, weight_bits=10))
    fit = check_net(dataclasses.replace(net, layers=[net.layers[0], wide]))
    assert not fit.fits_hardware and fit.layers[0].fits_hardware
    miss = [c for c in fit.layers[1].checks if not c.ok and c.blocking]
    assert [c.field for c in miss] == ["weight mantissa"] and "8 bits" in miss[0].limit
    assert "fc" in fit.summary() and "weight mantissa" in fit.layers[1].detail()
    assert weight_mantissa(np.array([[28, -28, 4]])) == (4, 2, True)  # 7·2^2, -7·2^2, 1·2^2
    assert weight_mantissa(np.array([[0, 255]])) == (8, 0, False)


def test_export_cli_check_and_strict(tmp_path, capsys):
    stock = small_net(reset="zero", stock=True).save(tmp_path / "stock.qsnn")
    custom = small_net().save(tmp_path / "custom.qsnn")
    assert export_cli.main([str(stock), "--target", "lava", "--check"]) == 0
    assert export_cli.main([str(custom), "--target", "lava", "--check", "--check-json", str(tmp_path / "c.json")]) == 1
    d = json.loads((tmp_path / "c.json").read_text())
    assert d["fits"] is False and d["layers"][0]["route"] == "custom"
    out = tmp_path / "out"
    assert export_cli.main([str(custom), "--target", "lava", "--strict", "-o", str(out)]) == 1
    assert not out.exists()  # refused: nothing written
    assert export_cli.main([str(stock), "--target", "lava", "--strict", "-o", str(out)]) == 0
    assert (out / "stock.net").is_file()
    assert export_cli.main([str(stock), "--target", "numpy", "--check"]) == 2  # no check for that target
    assert "no constraint check" in capsys.readouterr().err


# ------------------------------------------------------------------------------ real Lava runs
@pytest.mark.parametrize("build", ["lanes", "netx"])
@pytest.mark.parametrize("reset,stock", [("zero", True), ("zero", False), ("subtract", False)])
def test_lava_equals_loihi_and_reference(reset, stock, build):
    net = small_net(reset, stock)
    x = np.random.default_rng(1).integers(0, 256, (2, 1, 10, 10))
    with LavaSimulator(net, build=build) as lava:
        assert lava.routes == (["stock"] * 2 if stock else ["custom"] * 2)
        ref, res = assert_lava_matches(net, x, 20, lava)
    assert res.info["build"] == build
    assert all(s.sum() > 0 for s in ref.spikes.values())


def stream_net(kind: str, seed: int = 3) -> FrozenNet:
    """8-bit 1×10×10 input -> conv 4×1×3×3 + sum pool 2×2 -> flatten -> dense 5, built so that a sample
    leaves state behind (no leak, biases that keep firing, a 16-bit state that clips):

    * "stock": zero reset, one θ per layer, no bias, no leak (d = 4096): stock Lava LIF in both layers;
      v left below θ (or far below 0) by one sample stays there.
    * "custom": subtract reset, per-channel θ, biases, conv1 without leak and with a 16-bit state that
      a bright sample clips: QLIF in both layers.
    * "mixed": a custom conv1 whose bias (not a multiple of 64) keeps it spiking on zero input, then a
      stock dense layer (the period needs one extra zero step, else conv1's last spike of a sample
      reaches fc in the next).
    """
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-7, 8, (4, 1, 3, 3))
    w1[0] = np.abs(w1[0])  # channel 0 excitatory: a bright sample drives it hard
    w2 = rng.integers(-7, 8, (5, 64))
    if kind == "stock":
        l1 = LIFLayer("conv1", "conv", w1, 4, np.full(4, 64 * 300), np.zeros(4, np.int64), np.full(4, 4096),
                      reset="zero", pool=(2, 2))
        l2 = LIFLayer("fc", "dense", w2, 4, np.full(5, 64 * 4), np.zeros(5, np.int64), np.full(5, 4096), reset="zero",
                      flatten_input=True)
    elif kind == "custom":
        l1 = LIFLayer("conv1", "conv", w1, 4, rng.integers(2000, 9000, 4), rng.integers(-300, 300, 4), np.full(4, 4096),
                      reset="subtract", frac_bits=2, state_bits=16, pool=(2, 2))
        l2 = LIFLayer("fc", "dense", w2, 4, rng.integers(200, 900, 5), rng.integers(-50, 120, 5),
                      rng.integers(3000, 4097, 5), reset="subtract", flatten_input=True)
    else:
        l1 = LIFLayer("conv1", "conv", w1, 4, np.full(4, 64 * 40), np.full(4, 64 * 30 + 7), np.full(4, 3072),
                      reset="zero", pool=(2, 2))
        l2 = LIFLayer("fc", "dense", np.abs(w2), 4, np.full(5, 64 * 2), np.zeros(5, np.int64), np.full(5, 2048),
                      reset="zero", flatten_input=True)
    return FrozenNet(InputSpec((1, 10, 10)), [l1, l2], num_steps=13).validate()


def biased_stock_net(kind: str = "stock", seed: int = 3) -> FrozenNet:
    """stream_net's shapes with per-channel biases on the stock route (multiples of 64, both signs, zero
    reset, one θ and one β per layer, F = 6): conv1 channel 0 and fc channels 0 and 2 spike on zero input.

    * "stock": both layers stock, conv1 with biases [2000, -4000, 600, -500]·64 (β = 0.875);
    * "mixed": a custom conv1 (bias 64·30 + 7, not a multiple of 64), then the biased stock fc.
    """
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-7, 8, (4, 1, 3, 3))
    w1[0] = np.abs(w1[0])
    w2 = rng.integers(-7, 8, (5, 64))
    if kind == "stock":
        l1 = LIFLayer("conv1", "conv", w1, 4, np.full(4, 64 * 8000), np.array([2000, -4000, 600, -500]) * 64,
                      np.full(4, 3584), reset="zero", pool=(2, 2))
    else:
        l1 = LIFLayer("conv1", "conv", w1, 4, np.full(4, 64 * 40), np.full(4, 64 * 30 + 7), np.full(4, 3072),
                      reset="zero", pool=(2, 2))
    l2 = LIFLayer("fc", "dense", w2, 4, np.full(5, 64 * 4), np.array([5, -2, 3, 0, -1]) * 64, np.full(5, 2048),
                  reset="zero", flatten_input=True)
    return FrozenNet(InputSpec((1, 10, 10)), [l1, l2], num_steps=13).validate()


STREAM_X = np.stack([np.full((1, 10, 10), 255), np.zeros((1, 10, 10), np.int64),
                     np.random.default_rng(5).integers(0, 256, (1, 10, 10)), np.full((1, 10, 10), 255)])
STREAM_ROUTES = {"stock": ["stock", "stock"], "custom": ["custom", "custom"], "mixed": ["custom", "stock"]}


def assert_stream_matches(res, ref, loihi, routes, tag=""):
    """Per sample and layer: raw Lava == raw Loihi-style; aligned == reference; custom clip counts equal."""
    for i, name in enumerate(ref.spikes):
        raw, raw_loihi = res.info["raw_spikes"][name], loihi.info["raw_spikes"][name]
        assert raw.shape == raw_loihi.shape
        for s in range(raw.shape[1]):
            assert np.array_equal(raw[:, s], raw_loihi[:, s]), f"{tag} {name} sample {s}: Lava != Loihi-style"
        assert np.array_equal(res.spikes[name], ref.spikes[name]), f"{tag} {name}: Lava != NumPy reference"
        if routes[i] == "custom":
            assert res.saturations[name] == ref.saturations[name], f"{tag} {name}: clip counts differ"


@pytest.mark.parametrize("kind", ["stock", "custom", "mixed"])
def test_lava_streams_samples_through_one_compiled_network(kind, monkeypatch):
    """Issue 14: one compiled network, several samples one after the other (lanes build: 2 lanes × 2
    periods; netx build: 4 periods in one lane), each starting from u = v = 0 with nothing in flight,
    although the samples leave large state behind (a bright sample, then darkness)."""
    from qsnn_deploy.lava import backend as lava_sim

    T = 13
    net = stream_net(kind)
    ref, loihi = NumpySimulator(net).run(STREAM_X, T), LoihiSimulator(net).run(STREAM_X, T)
    assert loihi.info["routes"] == STREAM_ROUTES[kind]
    # the reset matters: sample 1 or 2 run straight after the bright sample 0, without one, spikes differently
    # (lane 0 of the lanes build runs 0 then 2, the netx build 0, 1, 2, 3)
    def carried_over(b):
        seq = np.concatenate([np.broadcast_to(STREAM_X[i], (T, 1) + STREAM_X.shape[1:]) for i in (0, b)])
        chained = NumpySimulator(net).run(seq, 2 * T)
        return any(not np.array_equal(chained.spikes[k][T:, 0], ref.spikes[k][:, b]) for k in ref.spikes)
    assert carried_over(1) or carried_over(2)
    assert all(s.sum() > 0 for s in ref.spikes.values())
    if kind == "custom":
        assert ref.saturations["conv1"] > 0
    for build in ("lanes", "netx"):
        with LavaSimulator(net, build=build, lanes=2) as lava:
            res = lava.run(STREAM_X, T)
            assert res.info["build"] == build and res.info["lanes"] == (2 if build == "lanes" else 1)
            assert res.info["period_steps"] == T + 2 + (kind == "mixed")
            assert_stream_matches(res, ref, loihi, STREAM_ROUTES[kind], build)
            if kind == "custom":  # a second call streams through the same compiled network
                started = lava.startup_seconds
                order = [3, 1, 0]
                res2 = lava.run(STREAM_X[order], T)
                assert lava.startup_seconds == started
                assert_stream_matches(res2, NumpySimulator(net).run(STREAM_X[order], T),
                                      LoihiSimulator(net).run(STREAM_X[order], T), STREAM_ROUTES[kind], build + " again")
    if kind == "mixed":  # without the extra zero step conv1's last spike of a sample reaches fc in the next one
        monkeypatch.setattr(lava_sim, "_stock_pad", lambda routes: 0)
        with LavaSimulator(net, lanes=2) as lava:
            res = lava.run(STREAM_X, T)
        assert any(not np.array_equal(res.info["raw_spikes"][k], loihi.info["raw_spikes"][k]) for k in ref.spikes)


@pytest.mark.parametrize("kind", ["stock", "mixed"])
def test_lava_stock_route_with_bias_streams_exactly(kind):
    """A bias on Lava's stock LIF: Lava integrates it from step 1, but LIFReset zeroes u and v at the step
    the layer's first input of the sample arrives, before integrating it, so every window equals the
    reference, whatever the bias did before (warm-up, the previous sample's tail). Streamed: bright,
    dark, random, bright, then a second call (3 samples on 2 lanes: a lane runs a zero sample), through
    one compiled network per build; Lava raw == Loihi-style raw (mirroring the lanes), every sample."""
    T = 13
    net = biased_stock_net(kind)
    routes = ["stock", "stock"] if kind == "stock" else ["custom", "stock"]
    fit = check_net(net)
    assert [l.route for l in fit.layers] == routes and (fit.fits or kind == "mixed")
    assert np.any(net.layers[-1].neuron.bias > 0) and np.any(net.layers[-1].neuron.bias < 0)
    ref = NumpySimulator(net).run(STREAM_X, T)
    assert all(ref.spikes[k][:, 1].any() for k in ref.spikes)  # the dark sample spikes: the bias alone drives it
    calls = [STREAM_X, STREAM_X[[3, 1, 0]]]
    for build in ("lanes", "netx"):
        loihi = LoihiSimulator(net, lanes=2, build=build)
        pre_window = 0
        with LavaSimulator(net, build=build, lanes=2) as lava:
            for c, xs in enumerate(calls):
                res, lo = lava.run(xs, T), loihi.run(xs, T)
                assert res.info["build"] == build and res.info["period_steps"] == T + 2 + (kind == "mixed")
                assert_stream_matches(res, NumpySimulator(net).run(xs, T), lo, routes, f"{build} call {c}")
                pre_window += sum(int(res.info["raw_spikes"][k][:i + 1].sum()) for i, k in enumerate(ref.spikes))
        assert pre_window > 0  # the stock layers are active before their windows, and Loihi-style models it
    # ...and those rows depend on the lane's previous sample: a fresh network per sample shows other ones
    fresh = LoihiSimulator(net, lanes=None).run(STREAM_X, T).info["raw_spikes"]
    streamed = LoihiSimulator(net, lanes=2).run(STREAM_X, T).info["raw_spikes"]
    assert any(not np.array_equal(fresh[k][:i + 1], streamed[k][:i + 1]) for i, k in enumerate(ref.spikes))


def test_stock_bias_must_fit_lavas_mantissa_and_the_file_says_how_to_run(tmp_path):
    """Stock needs b a multiple of 64 (netx's bias_exp 6) with b >> 6 in Lava's signed 13 bits; a miss is
    routed custom with the layer, field and limit named, and --strict refuses. The .net file carries the
    bias as netx reads it and says it must run with reset_interval = R, reset_offset = 1."""
    from qsnn_deploy.lava.export import read_layer_specs
    from qsnn_deploy.lava.backend import import_lava

    net = biased_stock_net()
    conv1 = net.layers[0]

    def with_bias(b):
        return dataclasses.replace(net, layers=[dataclasses.replace(conv1, neuron=dataclasses.replace(conv1.neuron, bias=np.asarray(b)))] + net.layers[1:])
    ok = check_net(with_bias([-4096 * 64, 4095 * 64, 0, 64]))
    assert [l.route for l in ok.layers] == ["stock", "stock"]
    for bias, words in (([2000 * 64 + 5, 0, 0, 0], ["bias not a multiple of 64", "layer conv1", "field bias", "128005"]),
                        ([4096 * 64, 0, 0, 0], ["bias mantissa over 13 signed bits", "layer conv1", "-4096..4095"]),
                        ([0, -4097 * 64, 0, 0], ["bias mantissa over 13 signed bits", "-4097..0"])):
        fit = check_net(with_bias(bias))
        assert fit.layers[0].route == "custom" and fit.layers[1].route == "stock"
        reason = " ".join(fit.layers[0].stock_reasons)
        assert all(w in reason for w in words), reason
        assert "conv1" in fit.verdict() and reason.split(" (")[0] in fit.verdict()
    bad = with_bias([2000 * 64 + 5, 0, 0, 0]).save(tmp_path / "bad.qsnn")
    assert export_cli.main([str(bad), "--target", "lava", "--strict", "-o", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists()

    path = write_netx(net, tmp_path / "b.net")
    root, specs = read_layer_specs(path)
    assert root["needs_periodic_reset"] and "reset_interval" in root["run_note"] and "conv1, fc" in root["run_note"]
    import h5py
    with h5py.File(path, "r") as f:
        assert int(f["qsnn/reset_interval"][()]) == 13 + 2 and int(f["qsnn/reset_offset"][()]) == 1
    hdf5 = import_lava()[0]
    network = hdf5.Network(net_config=str(path), input_message_bits=8)  # stock netx reads the bias as bias_mant
    for block, layer in zip(network.layers, net.layers):
        mant = np.asarray(block.neuron.bias_mant.init).astype(np.int64)
        assert np.array_equal(mant << int(np.asarray(block.neuron.bias_exp.init).max()),
                              np.broadcast_to(layer.neuron.bias, mant.shape))
    unbiased = write_netx(small_net(reset="zero", stock=True), tmp_path / "u.net")
    assert not read_layer_specs(unbiased)[0]["needs_periodic_reset"]


def test_lava_lanes_fall_back_to_netx_for_a_conv_sparse_cannot_hold():
    """A conv weight past Lava's 8-bit synapse mantissa (mixed signs, |w| = 300): Lava's Sparse would clip
    it, netx's Conv computes it; the lanes build says so and runs netx's network, still exact."""
    net = small_net()
    w = net.layers[0].synapse.weight.astype(np.int64).copy()
    w[0, 0, 0, 0] = 300
    net = dataclasses.replace(net, layers=[dataclasses.replace(net.layers[0], synapse=dataclasses.replace(net.layers[0].synapse, weight=w, weight_bits=10))] + net.layers[1:])
    x = np.random.default_rng(1).integers(0, 256, (2, 1, 10, 10))
    with LavaSimulator(net.validate()) as lava:
        _, res = assert_lava_matches(net, x, 12, lava)
    assert res.info["build"] == "netx" and "conv1" in res.info["build_note"]


def test_lava_binary_event_input_dense_first():
    """Spike (0/1) input, time-varying, into a dense layer: input_message_bits 0."""
    rng = np.random.default_rng(4)
    l1 = LIFLayer("fc1", "dense", rng.integers(-7, 8, (12, 30)), 4, rng.integers(64, 400, 12), rng.integers(-50, 50, 12),
                  rng.integers(3000, 4097, 12))
    l2 = LIFLayer("fc2", "dense", rng.integers(-7, 8, (3, 12)), 4, rng.integers(64, 300, 3), np.zeros(3, np.int64),
                  np.full(3, 4096), reset="zero")
    net = FrozenNet(InputSpec((30,), bits=1, scale=1.0, static=False), [l1, l2], num_steps=25).validate()
    x = (rng.random((25, 2, 30)) < 0.3).astype(np.uint8)
    ref, _ = assert_lava_matches(net, x, 25)
    assert ref.spikes["fc1"].sum() > 0


def test_negative_gamma_per_channel_threshold_net_maps_and_matches():
    from test_seed_net import _load_mnist_test

    images, _ = _load_mnist_test(100)
    model = mnist_model_with_negative_gammas(True, images, num_steps=30)
    gammas = [m.weight.detach().numpy() for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all((g < 0).any() for g in gammas)
    net = freeze(model)
    assert all(not np.all(l.neuron.threshold == l.neuron.threshold[0]) for l in net.layers[:2])  # per-channel θ
    rep = verify(net, images[:2], model=model, backends=["loihi", "lava"], num_steps=30)
    assert rep.all_exact, [(b.name, [l.first_mismatch for l in b.layers]) for b in rep.backends]
    names = [b.name for b in rep.backends]
    assert names[0].startswith("torch-model") and "lava" in names and "lava vs loihi" in names
    assert rep.backends[0].exact_required  # deploy-faithful: the PyTorch model itself is held to bit-exact


def test_shipped_model_20_digits_T100_lava_loihi_reference(tmp_path):
    """The issue's bar: qsnn-export --target lava writes a netx file, qsnn-verify shows Lava ==
    Loihi-style == NumPy reference, every layer and step, on 20 real MNIST digits at T=100."""
    from test_seed_net import _load_mnist_test

    _load_mnist_test(1)  # a clear failure when the data is missing
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    if not data.is_dir():
        data = Path("/work/shared/data/mnist")
    assert export_cli.main([str(SHIPPED), "--target", "lava", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "mnist_int4_qsnn.net").is_file()
    js = tmp_path / "v.json"
    rc = verify_cli.main([str(SHIPPED), "--data", str(data), "-n", "20", "--steps", "100", "--backends", "loihi,lava",
                          "--json", str(js)])
    d = json.loads(js.read_text())
    assert rc == 0 and d["all_exact"], d
    by_name = {b["name"]: b for b in d["backends"]}
    assert set(by_name) == {"torch-model (cpu)", "loihi", "lava", "lava vs loihi"}
    assert all(layer["bit_exact"] and layer["reference_spikes"] > 0 for layer in by_name["lava"]["layers"])
    assert [layer["name"] for layer in by_name["lava vs loihi"]["layers"]] == ["conv1", "conv2", "fc"]


def test_shipped_model_zero_reset_variant_and_exported_file(tmp_path):
    """The shipped weights with zero reset; Lava runs the exported .net file itself (the frozen
    net is read back from the file, not taken from memory)."""
    from test_seed_net import _load_mnist_test

    images, _ = _load_mnist_test(3)
    model, _ = model_from_checkpoint(SHIPPED)
    net = freeze(model)
    # zero reset; conv1 back at F = 6 (the shipped model's F before its re-fit to 3), where its state clips:
    # Lava must count the same clips
    zero = dataclasses.replace(net, layers=[dataclasses.replace(l, neuron=dataclasses.replace(
        l.neuron, reset="zero", frac_bits=6, threshold=l.neuron.threshold << (6 - l.neuron.frac_bits),
        bias=l.neuron.bias << (6 - l.neuron.frac_bits))) for l in net.layers]).validate()
    path = write_netx(zero, tmp_path / "zero.net")
    lava = LavaSimulator(netx_path=path)
    assert lava.net is not zero and [l.neuron.reset for l in lava.net.layers] == ["zero"] * 3
    ref, res = assert_lava_matches(zero, images, 100, lava)
    sub = NumpySimulator(net).run(images, 100)
    assert any(not np.array_equal(sub.spikes[n], ref.spikes[n]) for n in ref.spikes)  # really a different net
    assert ref.saturations["conv1"] > 0 and res.saturations["conv1"] == ref.saturations["conv1"]


# ------------------------------------------------------------------------------ CUBA on Lava's stock LIF
def cuba_stock_net(seed: int = 5) -> FrozenNet:
    """small_net's shapes with current-based neurons on the stock route: zero reset, one θ, β and current
    decay a per layer (Lava's du = 4095 - a, iDecay = 4096 - a), F = 6, a bias on v (multiples of 64)."""
    from qsnn_deploy.frozen import Layer, Synapse
    from qsnn_deploy.neurons import CubaLIF

    rng = np.random.default_rng(seed)
    l1 = Layer("conv1", Synapse("conv", rng.integers(-7, 8, (4, 1, 3, 3)).astype(np.int8), 4, pool=(2, 2)),
               CubaLIF(np.full(4, 64 * 6000), np.array([300, -200, 0, 100]) * 64, np.full(4, 2048), np.full(4, 1024),
                       reset="zero"))
    l2 = Layer("fc", Synapse("dense", rng.integers(-7, 8, (5, 64)).astype(np.int8), 4, flatten_input=True),
               CubaLIF(np.full(5, 64 * 20), np.zeros(5, np.int64), np.full(5, 3072), np.full(5, 2048), reset="zero"))
    return FrozenNet(InputSpec((1, 10, 10)), [l1, l2], num_steps=20).validate()


def test_cuba_layers_run_on_stock_lava_bit_exact(tmp_path):
    """A CUBA net maps onto Lava's stock LIF with its own du (netx iDecay = 4096 - a): the fit check routes it
    stock, the netx file round-trips, and real Lava == the Loihi-style simulator == the NumPy reference."""
    net = cuba_stock_net()
    fit = check_net(net)
    assert [lf.route for lf in fit.layers] == ["stock", "stock"] and fit.fits, [lf.stock_reasons for lf in fit.layers]
    assert fit.layers[0].mapping["iDecay"] == 4096 - 2048
    path = write_netx(net, tmp_path / "cuba.net")
    back = read_netx(path)
    assert [layer.kind for layer in back.layers] == ["cuba", "cuba"]
    x = np.random.default_rng(1).integers(0, 256, (3, 1, 10, 10))
    ref, res = assert_lava_matches(net, x, 20)
    assert all(ref.spikes[name].sum() > 0 for name in ref.spikes)
    # the current matters: the same net with the current fully decayed each step (a one-state LIF) differs
    lif = NumpySimulator(dataclasses.replace(net, layers=[dataclasses.replace(
        layer, neuron=dataclasses.replace(layer.neuron, current_decay=np.zeros(len(layer.neuron.threshold), np.int64)))
        for layer in net.layers])).run(x, 20)
    assert any(not np.array_equal(lif.spikes[n], ref.spikes[n]) for n in ref.spikes)


def test_cuba_layer_off_the_stock_route_runs_on_qcuba(tmp_path):
    """A CUBA layer that does not fit Lava's stock LIF (subtract reset) takes the custom route: qsnn-deploy's
    QCUBA process (neuron type QSNN_QCUBA in the file, which stock netx refuses), bit-exact in Lava's simulator
    (more cases: tests/test_lava_recurrent.py)."""
    import h5py

    net = cuba_stock_net()
    net.layers[1].neuron.reset = "subtract"
    fit = check_net(net)
    assert [lf.route for lf in fit.layers] == ["stock", "custom"] and fit.layers[1].process == "QCUBA"
    assert "subtract reset" in fit.layers[1].detail() and "QCUBA" in fit.verdict()
    path = write_netx(net, tmp_path / "cuba.net")
    with h5py.File(path) as f:
        assert f["layer/3/neuron/type"][()].decode() == "QSNN_QCUBA"
    x = np.random.default_rng(1).integers(0, 256, (3, 1, 10, 10))
    ref, _ = assert_lava_matches(net, x, 20, LavaSimulator(netx_path=path))
    assert all(ref.spikes[name].sum() > 0 for name in ref.spikes)
