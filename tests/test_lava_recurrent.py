"""Issue 24 in Lava: recurrent layers (netx's ``dense_rec`` block, Lava ``Dense`` from the neurons' ``s_out`` back
to their ``a_in``) on the stock route (Lava's LIF: lif and cuba, zero reset) and the custom route (QLIF, QCUBA),
and current-based layers off the stock route (QCUBA), run in real Lava (lava-nc 0.10.0 / lava-dl 0.6.0,
``Loihi2SimCfg`` fixed_pt) and compared with the NumPy reference on every layer, step and neuron, and raw
(Lava-timed) with the Loihi-style simulator; plus what is refused, by name."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json

import numpy as np
import pytest

from qsnn_deploy.cli import export as export_cli
from qsnn_deploy.errors import UnsupportedNeuronError
from qsnn_deploy.frozen import FrozenNet, InputSpec, Layer, Synapse
from qsnn_deploy.lava.backend import LavaSimulator, import_lava
from qsnn_deploy.lava.check import check_net
from qsnn_deploy.lava.export import export as lava_export
from qsnn_deploy.lava.export import read_netx, write_netx
from qsnn_deploy.lava.loihi_sim import LoihiSimulator
from qsnn_deploy.lava.netx_weights import lava_stored_weights, netx_dense_encoding, netx_dense_error
from qsnn_deploy.neurons import LIF, CubaLIF
from qsnn_deploy.simulators import create_backend
from qsnn_deploy.simulators.numpy_sim import NumpySimulator

LANES = 3  # 5 samples then 4: partial groups, and a second run continuing each lane's stream


def rec_net(kind: str, seed: int = 7) -> FrozenNet:
    """8-bit 1×6×6 input -> conv 3×1×3×3 -> flatten -> recurrent dense 6 -> recurrent dense 4, T = 12.

    * ``stock-lif`` / ``stock-cuba``: every layer on Lava's stock LIF (zero reset, one θ / β (/ α) per
      layer, F = 6, biases on the 64 grid of both signs, so the warm-up rows fire and feed the recurrent
      loop); recurrent weights of both signs, the second layer's up to ±40.
    * ``mixed``: a custom CUBA conv (subtract reset, per-channel everything, a current bias), a custom
      recurrent CUBA layer (zero_delayed reset, a 12-bit current and 15-bit state that clip), then a stock
      recurrent LIF layer (the period gets one pad step).
    """
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-7, 8, (3, 1, 3, 3))
    w1[0] = np.abs(w1[0])
    w2, r2 = rng.integers(-7, 8, (6, 12)), rng.integers(-9, 10, (6, 6))
    w3, r3 = rng.integers(-7, 8, (4, 6)), rng.integers(-40, 41, (4, 4))
    if kind == "mixed":
        n1 = CubaLIF(rng.integers(3000, 9000, 3), rng.integers(-200, 200, 3), rng.integers(1000, 3500, 3),
                     rng.integers(2500, 4000, 3), rng.integers(-100, 100, 3), reset="subtract", frac_bits=3)
        n2 = CubaLIF(rng.integers(600, 4000, 6), rng.integers(-40, 40, 6), rng.integers(3800, 4090, 6),
                     rng.integers(2000, 4096, 6), None, reset="zero_delayed", frac_bits=5, state_bits=15, current_bits=12)
        n3 = LIF(np.full(4, 64 * 9), np.array([3, -2, 0, 1]) * 64, np.full(4, 2048), reset="zero")
    else:
        cuba = kind == "stock-cuba"

        def stock(th, bias, d, a):
            return CubaLIF(th, bias, a, d, reset="zero") if cuba else LIF(th, bias, d, reset="zero")
        n1 = stock(np.full(3, 64 * 900), np.array([200, -300, 50]) * 64, np.full(3, 3072), np.full(3, 1024))
        n2 = stock(np.full(6, 64 * 12), np.array([4, -3, 0, 2, -1, 1]) * 64, np.full(6, 2048), np.full(6, 2048))
        n3 = stock(np.full(4, 64 * 15), np.array([2, -2, 1, 0]) * 64, np.full(4, 3584), np.full(4, 3072))
    layers = [Layer("conv1", Synapse("conv", w1, 4, pool=(2, 2)), n1),
              Layer("rec1", Synapse("dense", w2, 4, flatten_input=True, recurrent=r2, recurrent_bits=5), n2),
              Layer("rec2", Synapse("dense", w3, 4, recurrent=r3, recurrent_bits=7), n3)]
    return FrozenNet(InputSpec((1, 6, 6)), layers, num_steps=12).validate()


ROUTES = {"stock-lif": ["stock"] * 3, "stock-cuba": ["stock"] * 3, "mixed": ["custom", "custom", "stock"]}
X1 = np.concatenate([np.full((1, 1, 6, 6), 255), np.random.default_rng(2).integers(0, 256, (4, 1, 6, 6))])
X2 = np.concatenate([np.zeros((1, 1, 6, 6), np.int64), np.random.default_rng(3).integers(0, 256, (3, 1, 6, 6))])


def without_recurrence(net: FrozenNet) -> FrozenNet:
    import dataclasses

    return dataclasses.replace(net, layers=[dataclasses.replace(layer, synapse=dataclasses.replace(
        layer.synapse, recurrent=None, recurrent_bits=None)) for layer in net.layers])


@pytest.mark.parametrize("kind,build", [("stock-lif", "lanes"), ("stock-cuba", "netx"), ("mixed", "lanes"),
                                        ("mixed", "netx")])
def test_recurrent_nets_run_bit_exact_in_lava(kind, build):
    """Two streamed runs (5 then 4 samples, 3 lanes: partial groups, each lane continuing its stream) of a
    recurrent net: Lava == NumPy reference in every layer, step, neuron and sample; Lava's raw trains ==
    the Loihi-style simulator's; custom clips counted equally; the recurrence changes the spikes."""
    net = rec_net(kind)
    assert [lf.route for lf in check_net(net).layers] == ROUTES[kind]
    loihi = LoihiSimulator(net, lanes=LANES, build=build)
    with LavaSimulator(net, build=build, lanes=LANES) as lava:
        runs = [(x, lava.run(x, 12), loihi.run(x, 12)) for x in (X1, X2)]
    assert runs[0][1].info["build"] == build
    for x, res, sim in runs:
        ref = NumpySimulator(net).run(x, 12)
        for i, name in enumerate(ref.spikes):
            assert np.array_equal(res.spikes[name], ref.spikes[name]), f"{kind} {build} {name}: Lava != reference"
            assert np.array_equal(res.info["raw_spikes"][name], sim.info["raw_spikes"][name]), f"{name}: Lava != Loihi-style"
            if ROUTES[kind][i] == "custom":
                assert res.saturations[name] == ref.saturations[name]
    ref = NumpySimulator(net).run(X1, 12)
    assert all(s.sum() > 0 for s in ref.spikes.values())
    plain = NumpySimulator(without_recurrence(net)).run(X1, 12)
    assert not np.array_equal(plain.spikes["rec1"], ref.spikes["rec1"])
    assert not np.array_equal(plain.spikes["rec2"], ref.spikes["rec2"])
    if kind == "mixed":
        assert ref.saturations["rec1"] > 0  # the 12-bit current / 15-bit state clip, counted alike in Lava
    # rec2 is stock: in the stream its row τ = l + 1 (just before its reset) fired for some sample, so without
    # clearing its recurrent synapse that spike would have reached the sample's first step
    raw = runs[1][1].info["raw_spikes"]["rec2"]  # [T + L, n, 4]
    r3 = net.layers[2].synapse.recurrent
    assert np.any(raw[2].astype(np.int64) @ r3.T != 0)


def test_cuba_custom_route_round_trips_and_stock_netx_refuses_it(tmp_path):
    """A CUBA layer off the stock route is written for QCUBA (neuron type QSNN_QCUBA, its current fields in the
    qsnn group), read back identically, and stock netx refuses to load it with a message naming QCUBA."""
    net = rec_net("mixed")
    path = write_netx(net, tmp_path / "m.net")
    back = read_netx(path)
    for a, b in zip(net.layers, back.layers):
        assert a.kind == b.kind and a.neuron.reset == b.neuron.reset
        assert (a.synapse.recurrent is None) == (b.synapse.recurrent is None)
        if a.synapse.is_recurrent:
            assert np.array_equal(a.synapse.recurrent, b.synapse.recurrent)
        for f in ("threshold", "bias", "decay", "current_decay", "current_bias", "current_bits", "state_bits"):
            if hasattr(a.neuron, f):
                va, vb = getattr(a.neuron, f), getattr(b.neuron, f)
                assert np.array_equal(np.asarray(0 if va is None else va), np.asarray(0 if vb is None else vb)), f
    ra, rb = NumpySimulator(net).run(X1, 12), NumpySimulator(back).run(X1, 12)
    assert all(np.array_equal(ra.spikes[n], rb.spikes[n]) for n in ra.spikes)
    import h5py

    with h5py.File(path) as f:
        assert [f[f"layer/{k}/type"][()].decode() for k in range(1, 5)] == ["conv", "flatten", "dense_rec", "dense_rec"]
        assert f["layer/1/neuron/type"][()].decode() == "QSNN_QCUBA" and f["layer/4/neuron/type"][()].decode() == "CUBA"
        assert "synapse_rec.a_buff" in f["qsnn/run_note"][()].decode()
    hdf5 = import_lava()[0]
    with pytest.raises(ValueError, match="layer conv1 is qsnn-deploy's custom route.*needs the QCUBA process"):
        hdf5.Network(net_config=str(path), input_message_bits=8)


def test_netx_weight_rules_equal_lavas_own():
    """:mod:`qsnn_deploy.lava.netx_weights` restates netx's optimize_weight_bits and Lava's clip / truncation:
    equal to Lava's functions on random matrices, and its verdict holds for multi-spike inputs: every matrix it
    accepts gives W·x exactly, every one it refuses (below the clip) gives other integers for some input."""
    import_lava()
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import SignMode, clip_weights, determine_sign_mode, truncate_weights

    modes = {SignMode.MIXED: "mixed", SignMode.EXCITATORY: "excitatory", SignMode.INHIBITORY: "inhibitory"}
    rng = np.random.default_rng(0)
    verdicts = {True: 0, False: 0}
    for _ in range(400):
        hi = int(rng.choice([1, 7, 28, 127, 254]))
        sign = rng.integers(0, 3)
        w = rng.integers(-hi if sign != 1 else 0, (hi if sign != 2 else 0) + 1, (4, 8)) << int(rng.integers(0, 2))
        if not w.any() or netx_dense_error(w) and "clips them" in netx_dense_error(w) or np.abs(w).max() > 255:
            continue
        with contextlib.redirect_stdout(io.StringIO()), np.errstate(divide="ignore"):  # netx: 127 / 0 for max 0
            stored, bits, exp, mode = optimize_weight_bits(w)
        mine = netx_dense_encoding(w)
        assert np.array_equal(stored, mine[0]) and (bits, exp, modes[SignMode(int(mode))]) == mine[1:]
        own = determine_sign_mode(np.asarray(stored))  # netx does not pass its sign mode: the synapse takes its own
        used = truncate_weights(clip_weights(np.asarray(stored), own, num_bits=8), own, bits)
        assert np.array_equal(used, lava_stored_weights(mine[0], bits))
        x = rng.integers(0, 2, (8, 32))
        a = (used @ x) >> -exp if exp <= 0 else (used @ x) << exp
        exact = np.array_equal(a, w @ x)
        verdicts[netx_dense_error(w) is None] += 1
        if netx_dense_error(w) is None:
            assert exact, w
        else:
            assert not exact or np.any(used != stored), (w, netx_dense_error(w))
    assert verdicts[True] > 100 and verdicts[False] > 5


@pytest.mark.parametrize("rec,match", [
    (lambda rng: rng.integers(-300, 301, (6, 6)), r"-\d+\.\.\d+: netx clips them to -256\.\.254"),
    (lambda rng: -np.maximum(rng.integers(1, 129, (6, 6)), np.eye(6, dtype=np.int64) * 128),
     r"stores -128 as -256 .* turns into -255"),
], ids=["past-netx-clip", "inhibitory-corner"])
def test_recurrent_weights_netx_cannot_hold_are_refused_by_name(rec, match, tmp_path):
    rng = np.random.default_rng(4)
    r = rec(rng)
    layer = Layer("rec1", Synapse("dense", rng.integers(0, 8, (6, 5)), 4, recurrent=r,
                                  recurrent_bits=int(np.abs(r).max()).bit_length() + 1),
                  LIF(np.full(6, 64 * 10), np.zeros(6, np.int64), np.full(6, 2048), reset="zero"))
    net = FrozenNet(InputSpec((5,), bits=1, scale=1.0), [layer], num_steps=8).validate()
    for call in (lambda: write_netx(net, tmp_path / "bad.net"), lambda: create_backend("lava", net)):
        with pytest.raises(UnsupportedNeuronError, match="'rec1'.*lava.*'recurrent lif'.*dense_rec.*" + match):
            call()
    assert not list(tmp_path.iterdir())


def test_recurrent_mantissa_past_8_bits_fails_strict_but_runs(tmp_path, capsys):
    """Recurrent weights netx holds exactly (≤ 254) but past a Loihi synapse's 8-bit mantissa under one exponent
    with the feed-forward ones: the fit check names the layer and field, --strict refuses (nothing written),
    the plain export writes the file."""
    rng = np.random.default_rng(5)
    layer = Layer("rec1", Synapse("dense", rng.integers(-7, 8, (6, 5)), 4, recurrent=rng.integers(-200, 201, (6, 6)),
                                  recurrent_bits=9),
                  LIF(np.full(6, 64 * 10), np.zeros(6, np.int64), np.full(6, 2048), reset="zero"))
    net = FrozenNet(InputSpec((5,), bits=1, scale=1.0), [layer], num_steps=8).validate()
    fit = check_net(net)
    miss = [c for c in fit.layers[0].checks if not c.ok]
    assert [c.field for c in miss] == ["recurrent weight mantissa"] and fit.layers[0].route == "stock" and not fit.fits
    path = net.save(tmp_path / "r.qsnn")
    assert export_cli.main([str(path), "--target", "lava", "--strict", "-o", str(tmp_path / "strict"),
                            "--check-json", str(tmp_path / "fit.json")]) == 1
    assert not (tmp_path / "strict").exists()
    checks = json.loads((tmp_path / "fit.json").read_text())["layers"][0]["checks"]
    assert [(c["field"], c["ok"]) for c in checks if not c["ok"]] == [("recurrent weight mantissa", False)]
    assert export_cli.main([str(path), "--target", "lava", "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "r.net").is_file()


def test_recipe_script_runs_a_recurrent_stock_net_with_netx_alone(tmp_path, capsys):
    """The run_<stem>.py written beside a recurrent stock net's .net runs it with lava-dl's own netx
    (RecurrentDense, LIFReset) and Lava's RingBuffers, clearing each recurrent synapse per period, and its
    --check says bit-exact in every layer (run in-process here to save a Lava start-up)."""
    net = rec_net("stock-lif")
    net_path, script = lava_export(net, tmp_path / "out", stem="rec")
    np.save(tmp_path / "x.npy", X1.astype(np.uint8))
    spec = importlib.util.spec_from_file_location("run_rec", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.SETTINGS["clear_recurrent"] == [1, 2] and mod.SETTINGS["recurrent_layers"] == ["rec1", "rec2"]
    assert mod.main(["--data", str(tmp_path / "x.npy"), "-n", "5", "--check"]) == 0
    out = capsys.readouterr().out
    assert "verdict: bit-exact" in out and all(f"  {n}: bit-exact" in out for n in ("conv1", "rec1", "rec2"))
    saved = np.load(net_path.with_name("rec.lava_spikes.npz"))
    assert int(saved["rec2"].sum()) == int(NumpySimulator(net).run(X1, 12).spikes["rec2"].sum()) > 0


def test_snntorch_rleaky_runs_bit_exact_in_lava():
    """A plain snnTorch RLeaky net (all_to_all recurrent Linear, subtract reset), trained a few steps with
    snnTorch's recipe and frozen for 0/1 spike input: qsnn-verify's lava backend (QLIF with netx's dense_rec)
    equals the NumPy reference in every layer."""
    import snntorch as snn
    import torch
    import torch.nn as nn
    from snntorch import surrogate

    from qsnn_deploy import freeze
    from qsnn_deploy.verify import verify
    from test_snntorch_kinds import _train

    torch.manual_seed(0)
    g = surrogate.fast_sigmoid(slope=5)
    model = nn.Sequential(nn.Linear(12, 10), snn.RLeaky(beta=0.9, spike_grad=g, init_hidden=True, linear_features=10),
                          nn.Linear(10, 4), snn.Leaky(beta=0.85, spike_grad=g, init_hidden=True, output=True))
    with torch.no_grad():
        model[1].recurrent.weight.mul_(0.5)  # recurrent weights within the feed-forward ones' 8-bit grid
    rng = np.random.default_rng(0)
    x = (rng.random((16, 12)) < 0.5).astype(np.uint8)
    _train(model, torch.as_tensor(x[:8], dtype=torch.float32), torch.as_tensor(rng.integers(0, 4, 8)))
    net = freeze(model, input_shape=(12,), input_bits=1, input_scale=1.0, num_steps=12)
    assert net.layers[0].synapse.is_recurrent and [lf.route for lf in check_net(net).layers] == ["custom", "custom"]
    report = verify(net, x, backends=("lava",), num_steps=12)
    lava = [b for b in report.backends if b.name == "lava"][0]
    assert report.all_exact and all(la.bit_exact for la in lava.layers), [(la.name, la.first_mismatch) for la in lava.layers]
    assert all(la.reference_spikes > 0 for la in lava.layers)
