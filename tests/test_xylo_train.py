"""Training for SynSense Xylo: the rows encoding, the deploy-faithful Xylo neuron (== the integer kind's
``reference_step``, saturation and spike caps included), a tiny ``qsnn-train --profile xylo`` run whose frozen
net equals the model on every spike, and the profile refusing what does not fit a chip."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from qsnn_deploy.data import default_data_dir, load_mnist
from qsnn_deploy.data.rows import area_matrix, downsample_counts, encode_rows, encoding_steps, rows_encoding
from qsnn_deploy.errors import FrozenNetError
from qsnn_deploy.freeze import freeze
from qsnn_deploy.models import build_model, init_uniform_fan_in
from qsnn_deploy.models.zoo import xylo_arch
from qsnn_deploy.neurons.xylo import XyloNeuron, synaptic_terms
from qsnn_deploy.nn import xylo as X
from qsnn_deploy.nn.xylo import QXylo
from qsnn_deploy.profiles import apply_profile
from qsnn_deploy.xylo.check import check_net
from qsnn_deploy.xylo.profile import calibrate_xylo, init_xylo


def _mnist(limit: int):
    data = default_data_dir("mnist")
    if not data.exists():
        from conftest import missing_data
        missing_data("../shared/data/mnist not present")
    return load_mnist(data, "test", limit=limit)


# ----------------------------------------------------------------------------- the encoding
def test_rows_encoding_shape_range_and_a_known_digit():
    x, y = _mnist(50)
    seq = encode_rows(x)
    assert seq.shape == (16, 50, 16) and seq.dtype == np.uint8
    assert seq.min() == 0 and seq.max() == 15
    assert y[0] == 7
    # the first test digit (a 7), rows 4 and 5 of its 16×16 counts
    assert seq[4, 0].tolist() == [0, 0, 0, 5, 12, 11, 7, 5, 5, 5, 5, 5, 1, 0, 0, 0]
    assert seq[5, 0].tolist() == [0, 0, 0, 2, 5, 6, 9, 10, 11, 11, 11, 14, 4, 0, 0, 0]
    assert not seq[:4, 0].any()
    # area means, computed another way: each pixel repeated 16×16 times, then 28×28 blocks averaged
    big = np.kron(x[:5, 0].astype(np.float64), np.ones((16, 16)))           # [5, 448, 448]
    mean = big.reshape(5, 16, 28, 16, 28).mean(axis=(2, 4))
    want = np.floor(mean / 255.0 * 15 + 0.5).astype(np.uint8)
    assert np.array_equal(downsample_counts(x[:5]), want)
    assert (area_matrix(16).sum(axis=1) == 28).all()


def test_rows_encoding_steps_per_row_and_blank_steps():
    x, _ = _mnist(3)
    enc = rows_encoding(steps_per_row=2, blank_steps=3)
    seq = encode_rows(x, enc)
    assert seq.shape == (encoding_steps(enc), 3, 16) == (35, 3, 16)
    one = encode_rows(x)
    assert np.array_equal(seq[0:32:2], one) and np.array_equal(seq[1:32:2], one) and not seq[32:].any()
    with pytest.raises(ValueError, match="steps_per_row"):
        rows_encoding(steps_per_row=0)
    with pytest.raises(ValueError, match="28×28"):
        encode_rows(np.zeros((2, 1, 32, 32), np.uint8))


def test_rows_datasets_load_for_training():
    """qsnn-train's rows datasets: [N, T, 16] counts fed as counts (scale 1), time first per batch."""
    from qsnn_deploy.train.datasets import load_datasets

    data = default_data_dir("fashion-mnist")
    if not data.exists():
        from conftest import missing_data
        missing_data("../shared/data/fashion-mnist not present")
    train, val, test = load_datasets("fashion-mnist-rows", str(data.parent), limit_train=20, limit_test=10,
                                     encoding=rows_encoding(blank_steps=1))
    assert train.x.shape == (20, 17, 16) and test.x.shape == (10, 17, 16) and val is None
    assert not train.static and train.scale == 1.0 and train.x.max() <= 15
    xb, yb = train.batch(np.arange(4), torch.device("cpu"))
    assert xb.shape == (17, 4, 16) and yb.shape == (4,)


# ----------------------------------------------------------------------------- the neuron
def _reference(params: XyloNeuron, j: np.ndarray):
    """Every step of the integer kind's reference_step fed the summed current ``j`` [T, N, C] as one term:
    (spikes, isyn, v, saturation events)."""
    state = params.initial_state(j.shape[1:])
    spikes, isyns, vs, events = [], [], [], 0
    for t in range(j.shape[0]):
        state, z, n_sat = params.reference_step(state, j[t])
        spikes.append(z)
        isyns.append(state[0])
        vs.append(state[1])
        events += n_sat
    return np.stack(spikes), np.stack(isyns), np.stack(vs), events


@pytest.mark.parametrize("fused", [False, True])
def test_training_neuron_equals_reference_on_adversarial_operands(fused, monkeypatch):
    """Thresholds 1..32767, biases at both int16 ends, dashes 0..15, currents far past int16 (every clip of
    isyn + J, dv, dv + bias and v), θ = 1 under a flood (the 31-spike cap), the readout's 1-spike cap, and
    dash_mem = 0 at v = -32768 (C's int16 negation of -32768 wraps)."""
    monkeypatch.setattr(X, "USE_FUSED", fused)
    rng = np.random.default_rng(3)
    c, n, steps = 24, 9, 12
    for cap in (31, 1):
        neuron = QXylo(c, max_spikes=cap, unit=1.0, dash_range=(0, 15))
        with torch.no_grad():
            neuron.threshold.copy_(torch.tensor([1, 2, 3, 32767, 100, 5000] * 4, dtype=torch.float32))
            neuron.bias.copy_(torch.tensor([-32768, 32767, 0, 7, -5, 1000] * 4, dtype=torch.float32))
            neuron.dash_syn.copy_(torch.tensor(rng.integers(0, 16, c), dtype=torch.float32))
            neuron.dash_mem.copy_(torch.tensor(rng.integers(0, 16, c), dtype=torch.float32))
            neuron.dash_mem[[0, 2, 4, 8, 14, 22]] = 0.0
        j = rng.choice([0, 1, -1, 7, -300, 40000, -40000, 65535, -65536, 20000], size=(steps, n, c)).astype(np.float64)
        neuron.eval()
        if fused:
            from qsnn_deploy.nn.fused_xylo import xylo_sequence

            z, sat, _ = xylo_sequence(torch.tensor(j, dtype=torch.float64), None, neuron.integer_params(), cap,
                                      neuron.slope, neuron.unit)
            z = z.detach().numpy()
            neuron.saturation_events = sat
        else:
            isyn = v = None
            outs = []
            for t in range(steps):
                zt, isyn, v = neuron(torch.tensor(j[t], dtype=torch.float64), isyn, v)
                outs.append((zt.detach().numpy(), isyn.detach().numpy(), v.detach().numpy()))
            z = np.stack([o[0] for o in outs])
        rz, ri, rv, events = _reference(neuron.frozen_neuron(), j.astype(np.int64))
        assert np.array_equal(z.astype(np.int64), rz.astype(np.int64))
        assert neuron.saturation_events == events > 0
        assert (rv[:-1, :, [2, 4, 8, 14, 22]] == -32768).any()
        if not fused:
            assert np.array_equal(np.stack([o[1] for o in outs]).astype(np.int64), ri)
            assert np.array_equal(np.stack([o[2] for o in outs]).astype(np.int64), rv)
        assert rz.max() == cap and neuron.saturation_events > 0


def test_fused_and_step_by_step_paths_agree(monkeypatch):
    """The fused kernel gives the step-by-step path's spike counts exactly and its gradients to rounding."""
    torch.manual_seed(1)
    model = init_uniform_fan_in(build_model(xylo_arch(hidden=24)))
    init_xylo(model)
    with torch.no_grad():
        model.blocks[0].neuron.bias.uniform_(-0.3, 0.3)
        model.blocks[0].neuron.dash_mem.uniform_(1, 6)
    x = torch.randint(0, 16, (16, 12, 16)).float()
    g = torch.randn(16, 12, 10)
    got = {}
    for fused in (False, True):
        monkeypatch.setattr(X, "USE_FUSED", fused)
        model.zero_grad()
        out, rec = model(x, record=True)
        (out * g).sum().backward()
        got[fused] = (rec, {k: p.grad.clone() for k, p in model.named_parameters()})
    for name in got[False][0]:
        assert torch.equal(got[False][0][name], got[True][0][name])
    for name, ga in got[False][1].items():
        assert torch.allclose(ga, got[True][1][name], rtol=1e-4, atol=1e-4 * float(ga.abs().max()) + 1e-6), name


# ----------------------------------------------------------------------------- model == frozen net
def _frozen_reference(net, seq: np.ndarray) -> dict[str, np.ndarray]:
    """The frozen net run with the xylo kind's reference_step on its ORDERED synaptic terms (input channels
    in order, each count clipped to 15, then the layer's own previous spikes, clipped to 31): xylosim's
    delivery order, exact whatever saturates."""
    h, cap, out = seq.astype(np.int64), 15, {}
    for layer in net.layers:
        steps, n = h.shape[:2]
        c = layer.synapse.weight.shape[0]
        state, z, spikes = layer.neuron.initial_state((n, c)), np.zeros((n, c), np.int64), []
        for t in range(steps):
            terms = synaptic_terms(h[t], layer.synapse.weight, cap)
            if layer.synapse.recurrent is not None:
                terms = np.concatenate([terms, synaptic_terms(z, layer.synapse.recurrent, 31)], axis=-2)
            state, zt, _ = layer.neuron.reference_step(state, terms)
            z = zt.astype(np.int64)
            spikes.append(z)
        h, cap = np.stack(spikes), 31
        out[layer.name] = h
    return out


def test_tiny_training_run_freezes_to_the_same_spikes(tmp_path):
    """qsnn-train --profile xylo on real rows data; the checkpoint's frozen net == the model on every spike."""
    from qsnn_deploy.checkpoint import model_from_checkpoint
    from qsnn_deploy.cli import train as train_cli

    _mnist(1)
    args = ["--dataset", "mnist-rows", "--profile", "xylo", "--precision", "int8", "--hidden", "24", "--limit-train",
            "256", "--limit-test", "64", "--epochs", "1", "--batch-size", "64", "--data-dir",
            str(default_data_dir("mnist")), "--out", str(tmp_path), "--quiet"]
    assert train_cli.main(args) == 0
    model, ckpt = model_from_checkpoint(tmp_path / "model.pt")
    assert ckpt["arch"]["xylo_chip"] == "syns63300" and ckpt["arch"]["input"]["encoding"]["kind"] == "rows"
    net = freeze(model)
    assert [layer.kind for layer in net.layers] == ["xylo", "xylo"]
    assert net.metadata["input_encoding"] == ckpt["arch"]["input"]["encoding"] and not net.input.static
    assert net.layers[0].synapse.recurrent is not None and net.layers[1].neuron.max_spikes == 1
    fit = check_net(net)  # what the profile trains passes the Xylo exporter's own fit check
    assert fit.fits, fit.summary()
    x, _ = _mnist(200)
    seq = encode_rows(x)
    model.eval()
    with torch.no_grad():
        _, rec = model(torch.from_numpy(seq).float(), record=True)
    ref = _frozen_reference(net, seq)
    for name, spikes in ref.items():
        assert np.array_equal(rec[name].numpy().astype(np.int64), spikes), name
    assert sum(int(ref[n].sum()) for n in ref) > 0
    assert all(b.neuron.order_events == 0 for b in model.blocks)


def test_two_hidden_layers_freeze_to_the_same_spikes():
    """16 -> 32 -> 32 (both recurrent) -> 10, calibrated on real rows: the model == its frozen net, every spike."""
    torch.manual_seed(2)
    model = init_uniform_fan_in(build_model(apply_profile(xylo_arch(hidden=32, hidden_layers=2), "xylo")))
    init_xylo(model)
    x, _ = _mnist(100)
    seq = encode_rows(x)
    xt = torch.from_numpy(seq).float()
    assert min(calibrate_xylo(model, xt)) > 0
    model.eval()
    with torch.no_grad():
        _, rec = model(xt, record=True)
    from qsnn_deploy.nn.xylo import weight_shift

    with torch.no_grad():  # the matrices of Xylo's one weights_rec need different shifts on their own
        for b in model.blocks[:2]:
            b.neuron.recurrent.mul_(0.1)
        own = [weight_shift(float(p.abs().max()) * 1024.0, 8) for p in
               (model.blocks[0].neuron.recurrent, model.blocks[1].synapse.weight, model.blocks[1].neuron.recurrent)]
    assert own[0] == own[2] == 0 < own[1]
    model.eval()
    with torch.no_grad():
        _, rec = model(xt, record=True)
    net = freeze(model)
    shifts = {k: check_shift for k, check_shift in check_net(net).shifts.items()}
    assert shifts["rec"] is not None and shifts["rec"] >= 1  # one shared shift fits every hidden-to-hidden matrix
    assert (net.layers[0].synapse.recurrent % (1 << shifts["rec"]) == 0).all()
    ref = _frozen_reference(net, seq)
    assert list(ref) == ["hidden", "hidden2", "readout"]
    assert check_net(net).fits and not net.layers[1].neuron.bias.any() and not net.layers[2].neuron.bias.any()
    for name, spikes in ref.items():
        assert np.array_equal(rec[name].numpy().astype(np.int64), spikes), name
    assert all(b.neuron.order_events == 0 for b in model.blocks)


@pytest.mark.parametrize("fused", [False, True])
def test_partial_sums_past_int16_fold_in_xylos_order(fused, monkeypatch):
    """Input weights large enough that partial sums of the synaptic terms leave int16 (where Xylo's one-at-a-time
    saturating adds differ from clipping the sum): the model folds them in Xylo's order, == the reference."""
    monkeypatch.setattr(X, "USE_FUSED", fused)
    torch.manual_seed(4)
    model = init_uniform_fan_in(build_model(apply_profile(xylo_arch(hidden=32), "xylo")))
    init_xylo(model)
    with torch.no_grad():
        model.blocks[0].synapse.weight.mul_(12.0)
        model.blocks[0].neuron.recurrent.mul_(40.0)
    x, _ = _mnist(60)
    seq = encode_rows(x)
    model.eval()
    with torch.no_grad():
        _, rec = model(torch.from_numpy(seq).float(), record=True)
    ref = _frozen_reference(freeze(model), seq)
    for name, spikes in ref.items():
        assert np.array_equal(rec[name].numpy().astype(np.int64), spikes), name
    assert model.blocks[0].neuron.order_events > 100
    # the same steps clipped as one sum would differ somewhere: the order matters here
    net = freeze(model)
    summed = net.layers[0].neuron
    state, differs = summed.initial_state((60, 32)), False
    z = np.zeros((60, 32), np.int64)
    for t in range(seq.shape[0]):
        j = seq[t].astype(np.int64) @ net.layers[0].synapse.weight.astype(np.int64).T + z @ net.layers[0].synapse.recurrent.astype(np.int64).T
        state, zt, _ = summed.reference_step(state, j)
        z = zt.astype(np.int64)
        differs |= not np.array_equal(z, ref["hidden"][t])
    assert differs


def test_verify_inputs_apply_the_recorded_encoding():
    """qsnn-verify / qsnn-report read a plain MNIST folder through the encoding the net records."""
    from qsnn_deploy.cli.verify import _inputs

    _mnist(1)
    torch.manual_seed(0)
    model = init_uniform_fan_in(build_model(xylo_arch(hidden=8, encoding=rows_encoding(blank_steps=2))))
    net = freeze(model)
    args = argparse.Namespace(random=False, data=str(default_data_dir("mnist")), model="m.pt", split="test",
                              num_samples=5)
    x, y, source = _inputs(args, net)
    assert x.shape == (18, 5, 16) and len(y) == 5 and "rows 16×16" in source
    assert np.array_equal(x, encode_rows(_mnist(5)[0], rows_encoding(blank_steps=2)))


# ----------------------------------------------------------------------------- the profile refuses
@pytest.mark.parametrize("change, chip, layer, field, needle", [
    (lambda a: a, "syns61201", "readout", "out_features", "8"),
    (lambda a: a["input"].update(shape=[20]), "syns63300", "input", "shape", "16"),
    (lambda a: a["layers"][0].update(weight_bits=9), "syns63300", "hidden", "weight_bits", "8-bit"),
    (lambda a: a["layers"][3].update(max_spikes=2), "syns63300", "readout_neurons", "max_spikes", "1 spike"),
    (lambda a: a["layers"][1].update(dash_range=[1, 16]), "syns63300", "hidden_neurons", "dash_range", "0..15"),
    (lambda a: a["layers"][3].update(bias=True), "syns63300", "readout_neurons", "bias", "limit 0"),
    (lambda a: a["layers"][1].update(max_spikes=8), "syns63300", "hidden_neurons", "max_spikes", "31"),
])
def test_profile_refuses_an_arch_that_does_not_fit(change, chip, layer, field, needle):
    arch = xylo_arch(hidden=64)
    change(arch)
    with pytest.raises(FrozenNetError) as err:
        apply_profile(arch, "xylo", chip=chip)
    assert err.value.layer == layer and err.value.field == field and needle in str(err.value)


def test_profile_refuses_too_many_hidden_neurons_on_imu_and_image_nets():
    with pytest.raises(FrozenNetError, match="first 128 hidden neurons") as err:
        apply_profile(xylo_arch(hidden=256), "xylo", chip="syns63300")
    assert err.value.layer == "hidden" and err.value.field == "out_features"
    from qsnn_deploy.train.trainer import TrainConfig, Trainer

    with pytest.raises(FrozenNetError, match="not an image") as err:  # the conv MNIST net: 1×28×28 input
        Trainer(TrainConfig(dataset="mnist", profile="xylo")).arch()
    assert err.value.layer == "input" and err.value.field == "shape"
    arch = xylo_arch(hidden=64)
    arch["layers"].insert(0, {"type": "conv", "name": "conv1", "in_channels": 1, "out_channels": 4, "kernel_size": 3})
    with pytest.raises(FrozenNetError, match="no convolutions") as err:
        apply_profile(arch, "xylo")
    assert err.value.layer == "conv1"
