"""Per-layer F from a proven state bound (issue 12, item 2) and saturation that is never silent (item 3).

* the bound of :mod:`qsnn_deploy.statebound` holds on adversarial runs (inputs pinned at the ends
  of their range, where the worst case lives), for both resets, any F, any decay;
* freeze chooses F per layer for plain snnTorch models: the issue's 784-input example no longer
  clamps its thresholds past the 24-bit limit, and its first layer fires;
* the shipped MNIST model is proven saturation-free, and verify / export warn (and ``--strict``
  refuses) when a layer's state clips.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import snntorch as snn
import torch
import torch.nn as nn

from qsnn_deploy import freeze
from qsnn_deploy.cli.export import main as export_main
from qsnn_deploy.cli.verify import main as verify_main
from qsnn_deploy.errors import QSNNWarning
from qsnn_deploy.frozen import FrozenNet, InputSpec, LIFLayer
from qsnn_deploy.simulators.numpy_sim import NumpySimulator
from qsnn_deploy.statebound import choose_frac_bits, current_extremes, layer_state_bound, net_state_bounds, state_bound
from qsnn_deploy.verify import verify

from conftest import REPO, missing_data

DATA = REPO.parent / "shared" / "data"


def _dense(rng, n_in, n_out, reset, frac, decay, bits=4, state_bits=48, bias_scale=0):
    top = (1 << (bits - 1)) - 1
    w = rng.integers(-top, top + 1, size=(n_out, n_in)).astype(np.int16)
    th = rng.integers(0, 4000, size=n_out).astype(np.int64) << frac
    b = (rng.integers(-bias_scale, bias_scale + 1, size=n_out) << frac).astype(np.int64)
    return LIFLayer("fc", "dense", w, bits, th, b, np.full(n_out, decay, np.int64), reset=reset,
                    frac_bits=frac, state_bits=state_bits)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("decay", [0, 1024, 3900, 4096])
def test_bound_holds_on_adversarial_inputs(reset, decay):
    """Simulated |v| (in a 48-bit state that cannot clip) never exceeds the proven bound, with
    inputs at the ends of their range and random ones; the bound is also not vacuous (within 4x)."""
    rng = np.random.default_rng(decay + (7 if reset == "zero" else 0))
    for trial in range(6):
        n_in, n_out, frac = int(rng.integers(4, 40)), int(rng.integers(1, 6)), int(rng.integers(0, 8))
        layer = _dense(rng, n_in, n_out, reset, frac, decay, bias_scale=int(rng.integers(0, 50)))
        net = FrozenNet(InputSpec((n_in,), bits=8), [layer], 40).validate()
        worst = np.where(layer.synapse.weight > 0, 255, 0).astype(np.uint8)       # drives every neuron up
        least = np.where(layer.synapse.weight < 0, 255, 0).astype(np.uint8)       # drives every neuron down
        x = np.concatenate([worst, least, rng.integers(0, 256, size=(8, n_in)).astype(np.uint8)])
        v = NumpySimulator(net, saturation="count").run(x, record_states=True).states["fc"]
        bound = layer_state_bound(layer, 0, 255)
        assert v.max() <= bound.upper and v.min() >= bound.lower, (trial, v.max(), v.min(), bound)
        if decay < 4096:
            assert bound.peak <= 4 * max(np.abs(v).max(), 1) + 4 * int(layer.neuron.threshold.max()) + 8


def test_current_extremes_signed_input_and_pool():
    w = np.array([[3, -2], [0, -7]])
    jp, jn = current_extremes(w, -128, 127, pool_area=4)
    assert jp.tolist() == [4 * (3 * 127 + 2 * 128), 4 * 7 * 128]
    assert jn.tolist() == [4 * (2 * 127 + 3 * 128), 4 * 7 * 127]


def test_choose_frac_bits_is_the_largest_proven():
    jp, jn = np.array([1000]), np.array([1000])

    def at(f):
        return state_bound(jp, jn, np.array([100 << f]), np.array([0]), np.array([2048]), "zero", f, 24)

    f, proof, b = choose_frac_bits(at, f_max=12)
    assert proof and b.saturation_free
    assert not at(f + 1).saturation_free  # one more fractional bit could clip
    # nothing proves it: the fallback says so
    f2, proof2, _ = choose_frac_bits(lambda f: state_bound(np.array([1 << 30]), jn, np.array([1]), np.array([0]),
                                                            np.array([4096]), "subtract", f, 24))
    assert not proof2


@pytest.mark.parametrize("beta,unprovable", [(0.921, set()), (0.994, {"conv1"})])
def test_fit_frac_bits_proves_each_layer_or_says_how_far_over_it_is(beta, unprovable):
    """The trainer's per-epoch re-fit (issue 24, item 5). At the Table I MNIST β every layer gets a proven F; at the
    authors' later β 0.994 the first layer (5×5 kernel, 8-bit pixels, 2×2 pool, 1/(1 − β) ≈ 167) cannot be proven at
    any F, keeps its F, and the log names it with its worst case at F = 0 against the 24-bit limit and the fixes."""
    from qsnn_deploy.models import build_model, init_uniform_fan_in, preset_arch
    from qsnn_deploy.profiles import fit_frac_bits, unproven_frac_bits_message

    torch.manual_seed(0)
    model = init_uniform_fan_in(build_model(preset_arch("mnist", "int4", num_steps=8, beta=beta))).eval()
    fits = fit_frac_bits(model)
    assert {name for name, fit in fits.items() if not fit.proof} == unprovable
    for name, fit in fits.items():
        if fit.proof:  # proven at the F it reports (that it is the largest: test_choose_frac_bits_is_the_largest_proven)
            assert fit.bound.saturation_free and fit.bound.frac_bits == fit.new <= 6
        else:
            assert fit.new == fit.old and fit.bound.frac_bits == 0 and fit.bound.peak > fit.bound.limit == 8_388_607
    model_f = {b.name: b.neuron.frac_bits for b in model.blocks}
    assert model_f == {name: fit.new for name, fit in fits.items()}  # the model runs at what it reports
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = freeze(model)  # and freeze names the unproven layer again
    assert {n for n in fits if any(f"layer {n!r}" in str(w.message) for w in caught)} == unprovable
    bounds = dict(zip((layer.name for layer in net.layers), net_state_bounds(net)))
    assert all(bounds[name].saturation_free == (name not in unprovable) for name in fits)
    if unprovable:
        msg = unproven_frac_bits_message({n: fits[n] for n in unprovable})
        peak = fits["conv1"].bound.peak
        assert "conv1" in msg and f"{peak:.3g}" in msg and "8,388,607" in msg and f"{peak / 8_388_607:.2g}×" in msg
        assert "β" in msg and "--profile loihi" in msg and "conv2" not in msg


def _float_mnist_mlp(threshold=0.5):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), snn.Leaky(beta=0.9, threshold=threshold, init_hidden=True),
                         nn.Linear(32, 10), snn.Leaky(beta=0.9, threshold=threshold, init_hidden=True))


def test_freeze_chooses_per_layer_f_for_a_plain_snntorch_model():
    """The issue's example: nn.Linear's default init, θ = 0.5, 784 raw-pixel inputs. At a fixed F = 6
    every first-layer threshold is clamped (a dead layer); F chosen per layer keeps it alive."""
    model = _float_mnist_mlp()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fixed = freeze(model, input_shape=(1, 28, 28), num_steps=20, frac_bits=6)
    assert any("can never fire" in str(w.message) for w in caught)
    assert fixed.layers[0].neuron.threshold.max() == fixed.layers[0].state_limit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        auto = freeze(model, input_shape=(1, 28, 28), num_steps=20)
    assert not any("can never fire" in str(w.message) for w in caught)
    first = auto.layers[0]
    assert first.neuron.frac_bits < 6 and first.neuron.threshold.max() < first.state_limit // 2
    choice = auto.metadata["frac_bits"]
    assert len(choice) == 2 and all(c["basis"] in ("proof", "unproven") for c in choice.values())
    for name, c in choice.items():
        layer = next(l for l in auto.layers if l.name == name)
        assert c["F"] == layer.neuron.frac_bits
        if c["basis"] == "proof":
            assert c["proven_saturation_free"]


def test_freeze_calibration_gives_a_data_driven_f_where_no_proof_exists(tmp_path):
    from qsnn_deploy.data.idx import load_mnist

    if not (DATA / "mnist").is_dir():
        missing_data("MNIST not found")
    x, _ = load_mnist(DATA / "mnist", "test", limit=32)
    model = _float_mnist_mlp()
    net = freeze(model, input_shape=(1, 28, 28), num_steps=20, calibration=x)
    c = net.metadata["frac_bits"]
    unproven = [n for n, v in c.items() if not v["proven_saturation_free"]]
    assert unproven, "this example has no proof at any F (its 784 8-bit inputs x 8-bit weights are too wide)"
    for name in unproven:
        assert c[name]["basis"] == "data" and c[name]["calibration_margin"] in (2.0, 1.0)
        assert c[name]["calibration_margin"] * c[name]["observed_abs_v"] <= c[name]["state_limit"]
    res = NumpySimulator(net).run(x, record_states=True)
    assert sum(res.saturations.values()) == 0
    assert res.spikes[net.layers[0].name].any(), "the first layer must not be dead"
    path = net.save(tmp_path / "auto.qsnn")
    back = FrozenNet.load(path)
    assert [l.neuron.frac_bits for l in back.layers] == [l.neuron.frac_bits for l in net.layers]
    assert back.metadata["frac_bits"] == json.loads(json.dumps(net.metadata["frac_bits"]))


def test_shipped_mnist_model_is_proven_saturation_free():
    from qsnn_deploy.checkpoint import model_from_checkpoint

    model, _ = model_from_checkpoint(REPO / "examples" / "mnist_int4_qsnn.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error", QSNNWarning)  # no "may clip" warning either
        net = freeze(model)
    assert all(b.saturation_free for b in net_state_bounds(net))
    assert [l.neuron.frac_bits for l in net.layers] == [3, 6, 6]


def _saturating_net() -> FrozenNet:
    w = np.full((2, 6), 7, np.int8)
    layer = LIFLayer("hot", "dense", w, 4, np.array([(1 << 23) - 1, 1 << 20]), np.zeros(2, np.int64), np.full(2, 4096, np.int64),
                     reset="zero", frac_bits=6, state_bits=24)
    return FrozenNet(InputSpec((6,), bits=8), [layer], 50).validate()


def test_verify_names_the_clipping_layer_and_fraction_and_strict_refuses(tmp_path):
    net = _saturating_net()
    x = np.full((3, 6), 255, np.uint8)
    rep = verify(net, x, None, backends=["loihi"])
    assert rep.all_exact and len(rep.saturation_warnings) == 1
    w = rep.saturation_warnings[0]
    assert "'hot'" in w and "% of 300 neuron-steps" in w and "fix:" in w
    assert json.loads(rep.to_json())["saturation_warnings"] == rep.saturation_warnings
    path = net.save(tmp_path / "hot.qsnn")
    assert verify_main([str(path), "--random", "-n", "3", "--backends", "numpy"]) == 0
    assert verify_main([str(path), "--random", "-n", "3", "--backends", "numpy", "--strict"]) == 1


def test_export_warns_and_strict_refuses_an_unproven_state(tmp_path, capsys):
    path = _saturating_net().save(tmp_path / "hot.qsnn")
    out = tmp_path / "out"
    assert export_main([str(path), "--target", "lava", "-o", str(out)]) == 0
    assert "may clip" in capsys.readouterr().out
    out2 = tmp_path / "out2"
    assert export_main([str(path), "--target", "lava", "--strict", "-o", str(out2)]) == 1
    assert not out2.exists() or not any(out2.iterdir())


def test_export_of_a_checkpoint_says_a_clip_risk_once(tmp_path, capsys):
    """freeze warns (SaturationWarning) while the CLI loads a .pt; qsnn-export prints the same risk
    itself for every model source, so the line appears once, not twice."""
    from qsnn_deploy.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint

    model, ckpt = model_from_checkpoint(REPO / "examples" / "mnist_int4_qsnn.pt")
    model.blocks[0].neuron.frac_bits = 6  # the shipped model before its re-fit: conv1 may clip
    arch = json.loads(json.dumps(ckpt["arch"]))
    next(e for e in arch["layers"] if e["type"] == "lif")["frac_bits"] = 6
    path = save_checkpoint(tmp_path / "f6.pt", model, arch, ckpt.get("config"), ckpt.get("metrics"))
    assert load_checkpoint(path)["arch"]["layers"]
    assert export_main([str(path), "--target", "numpy", "-o", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    text = (captured.out + captured.err).replace("\n", " ")
    assert text.count("may clip") == 1 and "'conv1'" in text
