"""Saturation of the B_v-bit state (counted identically, or raised), and the errors a user meets:
unsupported layers, unknown layer order, NaN weights, bad input; plus freeze(layers=...) for a
model written as an explicit time loop."""
from __future__ import annotations

from collections import OrderedDict

import brevitas.nn as qnn
import numpy as np
import pytest
import snntorch as snn
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import assert_spikes_equal, model_spikes, reference_dense, reset_saturation, run_both_sims
from qsnn_deploy import (FrozenNet, FrozenNetError, InputSpec, LIFLayer, SaturationError, UnsupportedLayerError,
                         freeze)
from qsnn_deploy.nn import QLeaky, QSequential
from qsnn_deploy.simulators.numpy_sim import NumpySimulator
from qsnn_deploy.simulators.torch_sim import TorchSimulator

SIMS = [NumpySimulator, lambda net, **kw: TorchSimulator(net, device="cpu", **kw)]
SIM_IDS = ["numpy", "torch-cpu"]


# ----------------------------------------------------------------------------- saturation
def _saturating_conv_net() -> FrozenNet:
    rng = np.random.default_rng(5)
    w1 = rng.integers(-7, 8, size=(4, 2, 3, 3)).astype(np.int8)
    w1[0] = 7    # drives v far above +127
    w1[1] = -7   # and far below -127
    w2 = rng.integers(-7, 8, size=(3, 4 * 3 * 3)).astype(np.int8)
    w2[0] = 7
    layers = [
        LIFLayer("conv", "conv", w1, 4, np.array([100, 60, 30, 5]), np.array([0, 3, -4, 10]), np.array([4096, 2048, 3000, 0]),
                 reset="subtract", frac_bits=2, state_bits=8, stride=(1, 1), padding=(1, 1), pool=(2, 2)),
        LIFLayer("fc", "dense", w2, 4, np.array([20, 40, 90]), np.array([0, -5, 7]), np.array([4096, 1000, 3500]),
                 reset="zero", frac_bits=3, state_bits=8, flatten_input=True),
    ]
    return FrozenNet(InputSpec((2, 6, 6), bits=8, scale=1 / 255), layers, num_steps=12).validate()


def test_saturation_counted_identically_and_spikes_agree():
    net = _saturating_conv_net()
    x = np.random.default_rng(6).integers(0, 256, size=(5, 2, 6, 6))
    res_np, res_th = run_both_sims(net, x, 12)
    assert res_np.saturations["conv"] > 0 and res_np.saturations["fc"] > 0
    assert res_np.saturations == res_th.saturations
    vmax = net.layers[0].state_limit
    for name, v in res_np.states.items():
        assert np.abs(v).max() == vmax, f"{name}: state not clipped at ±{vmax}"
        assert v.min() == -vmax or name == "fc"
    # time-varying input too
    xt = np.random.default_rng(7).integers(0, 256, size=(9, 3, 2, 6, 6))
    res_np_t, _ = run_both_sims(net, xt, None)
    assert res_np_t.saturations["conv"] > 0


def test_saturation_counts_match_independent_reference():
    rng = np.random.default_rng(8)
    w1 = rng.integers(-127, 128, size=(6, 20)).astype(np.int8)
    w2 = rng.integers(-127, 128, size=(3, 6)).astype(np.int8)
    layers = [LIFLayer("a", "dense", w1, 8, rng.integers(0, 500, 6), rng.integers(-50, 50, 6), rng.integers(0, 4097, 6),
                       reset="subtract", frac_bits=1, state_bits=10),
              LIFLayer("b", "dense", w2, 8, rng.integers(0, 200, 3), rng.integers(-50, 50, 3), rng.integers(0, 4097, 3),
                       reset="zero", frac_bits=2, state_bits=10)]
    net = FrozenNet(InputSpec((20,), bits=1, scale=1.0), layers, num_steps=15).validate()
    x = (rng.random((7, 20)) < 0.5).astype(np.int64)
    spikes, sats = reference_dense(net, x, 15)
    res_np, _ = run_both_sims(net, x, 15)
    assert sats["a"] > 0
    assert res_np.saturations == sats
    assert_spikes_equal(spikes, res_np.spikes, "reference vs NumPy sim")


@pytest.mark.parametrize("make_sim", SIMS, ids=SIM_IDS)
def test_saturation_raise_mode(make_sim):
    net = _saturating_conv_net()
    x = np.random.default_rng(6).integers(0, 256, size=(5, 2, 6, 6))
    with pytest.raises(SaturationError, match="'conv'"):
        make_sim(net, saturation="raise").run(x, 12)
    # with room in the state (32 bits) the same input raises nothing in raise mode
    for layer in net.layers:
        layer.neuron.state_bits = 32
    res = make_sim(net.validate(), saturation="raise").run(x, 12)
    assert sum(res.saturations.values()) == 0
    with pytest.raises(ValueError):
        make_sim(net, saturation="wrap")


def test_deploy_faithful_model_saturates_like_the_simulators():
    torch.manual_seed(2)
    conv = qnn.QuantConv2d(1, 3, 3, bias=False, weight_bit_width=4)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0, 0.5]).view(3, 1, 1, 1) * torch.rand(3, 1, 3, 3))
    model = QSequential(OrderedDict(
        conv=conv, pool=nn.AvgPool2d(2),
        lif=QLeaky(beta=torch.tensor([1.0, 0.9, 0.5]), threshold=torch.tensor([0.5, 0.2, 3.0]), frac_bits=2, state_bits=8),
        flat=nn.Flatten(),
        fc=qnn.QuantLinear(3 * 3 * 3, 4, bias=True, weight_bit_width=6),
        lif2=QLeaky(beta=0.95, threshold=0.05, reset_mechanism="zero", frac_bits=4, state_bits=8),
    ), input_shape=(1, 8, 8), input_scale=1 / 255, input_bits=8, num_steps=10).eval()
    with torch.no_grad():
        model.fc.bias.uniform_(-0.01, 0.01)  # a bias must fit the 8-bit state (freeze refuses otherwise)
    net = freeze(model)
    x = np.random.default_rng(3).integers(0, 256, size=(4, 1, 8, 8))
    reset_saturation(model)
    states: dict = {}
    expected = model_spikes(model, x, 10, states=states)
    res_np, _ = run_both_sims(net, x, 10)
    assert_spikes_equal(expected, res_np.spikes, "PyTorch model vs NumPy sim")
    for name in states:
        assert np.array_equal(states[name], res_np.states[name]), name
    assert res_np.saturations["conv"] > 0
    assert {b.name: b.neuron.saturation_events for b in model.blocks} == res_np.saturations
    with pytest.raises(SaturationError):
        NumpySimulator(net, saturation="raise").run(x, 10)
    with pytest.raises(SaturationError):
        TorchSimulator(net, saturation="raise").run(x, 10)


# ----------------------------------------------------------------------------- unsupported layers
def _conv():
    return qnn.QuantConv2d(1, 4, 3, bias=False, weight_bit_width=4)


@pytest.mark.parametrize("bad, type_name", [
    (lambda: nn.MaxPool2d(2), "MaxPool2d"),
    (lambda: nn.ReLU(), "ReLU"),
    (lambda: snn.Alpha(alpha=0.9, beta=0.8), "Alpha"),
], ids=["maxpool", "relu", "alpha-neuron"])
@pytest.mark.parametrize("container", ["nn.Sequential", "QSequential"])
def test_unsupported_layer_is_named_with_the_supported_list(bad, type_name, container):
    mods = OrderedDict(conv=_conv(), odd=bad(), lif=snn.Leaky(beta=0.5))
    with pytest.raises(UnsupportedLayerError) as info:
        if container == "QSequential":
            model = QSequential(mods, input_shape=(1, 8, 8))
            freeze(model)
        else:
            freeze(nn.Sequential(mods), input_shape=(1, 8, 8))
    msg = str(info.value)
    assert type_name in msg, msg
    assert "odd" in msg, f"the module's name is missing: {msg}"
    assert "Supported:" in msg and "snntorch.Leaky" in msg and "AvgPool2d" in msg, msg


def test_unsupported_neuron_as_only_neuron():
    """A snnTorch neuron with no frozen kind (Alpha: two synaptic currents) is refused by name."""
    with pytest.raises(UnsupportedLayerError, match="Alpha"):
        freeze(nn.Sequential(nn.Flatten(), nn.Linear(4, 2), snn.Alpha(alpha=0.9, beta=0.8)), input_shape=(4,))


def test_model_without_layer_order_asks_for_layers():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)
            self.lif = snn.Leaky(beta=0.5)

    with pytest.raises(UnsupportedLayerError) as info:
        freeze(Custom(), input_shape=(4,))
    assert "layers=" in str(info.value) and "Custom" in str(info.value)


def test_reset_mechanisms_of_plain_leaky():
    """snnTorch keeps reset_mechanism_val as a 0-d tensor: subtract and zero must freeze, 'none' must not."""
    for mode in ("subtract", "zero"):
        net = freeze(nn.Sequential(nn.Linear(4, 2), snn.Leaky(beta=0.5, reset_mechanism=mode)), input_shape=(4,))
        assert net.layers[0].neuron.reset == mode
    with pytest.raises(UnsupportedLayerError, match="none"):
        freeze(nn.Sequential(nn.Linear(4, 2), snn.Leaky(beta=0.5, reset_mechanism="none")), input_shape=(4,))


@pytest.mark.parametrize("brevitas", [True, False])
def test_nan_weight_names_layer_and_field(brevitas):
    fc2 = qnn.QuantLinear(8, 3, bias=False, weight_bit_width=4) if brevitas else nn.Linear(8, 3, bias=False)
    model = nn.Sequential(OrderedDict(fc1=nn.Linear(5, 8), lif1=snn.Leaky(beta=0.5), fc2=fc2, lif2=snn.Leaky(beta=0.5)))
    with torch.no_grad():
        fc2.weight[1, 2] = float("nan")
    with pytest.raises(FrozenNetError) as info:
        freeze(model, input_shape=(5,))
    assert (info.value.layer, info.value.field) == ("fc2", "weight")


# ----------------------------------------------------------------------------- explicit time loop
class TimeLoopNet(nn.Module):
    """A user's own module: conv -> F.avg_pool2d -> bn -> Leaky -> flatten -> fc -> Leaky, looped over T."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.lif = snn.Leaky(beta=0.8, threshold=0.5)
        self.fc = nn.Linear(6 * 5 * 5, 4)
        self.lif2 = snn.Leaky(beta=0.9, threshold=0.3, reset_mechanism="zero")

    def forward(self, x, num_steps: int):
        mem1, mem2 = self.lif.init_leaky(), self.lif2.init_leaky()
        rec1, rec2 = [], []
        for _ in range(num_steps):
            cur = self.bn(F.avg_pool2d(self.conv(x), 2))
            spk1, mem1 = self.lif(cur, mem1)
            spk2, mem2 = self.lif2(self.fc(spk1.flatten(1)), mem2)
            rec1.append(spk1)
            rec2.append(spk2)
        return torch.stack(rec1), torch.stack(rec2)


def test_freeze_custom_time_loop_module_with_layers():
    torch.manual_seed(4)
    model = TimeLoopNet()
    with torch.no_grad():
        model.bn.weight.copy_(torch.tensor([1.0, -0.8, 1.2, 0.6, -1.1, 0.9]))
        model.bn.bias.uniform_(-0.2, 0.4)
        model.bn.running_mean.uniform_(-0.1, 0.1)
        model.bn.running_var.uniform_(0.01, 0.05)
    model.eval()
    steps = 12
    net = freeze(model, layers=[model.conv, nn.AvgPool2d(2), model.bn, model.lif, nn.Flatten(), model.fc, model.lif2],
                 input_shape=(1, 10, 10), num_steps=steps, frac_bits=12, state_bits=32)
    assert [layer.name for layer in net.layers] == ["conv", "fc"]
    assert net.layers[0].synapse.pool == (2, 2) and net.layers[0].synapse.padding == (1, 1)
    assert net.layers[1].synapse.flatten_input and net.layers[1].neuron.reset == "zero"
    assert net.input.scale == pytest.approx(1 / 255) and net.input.bits == 8
    x = np.random.default_rng(9).integers(0, 256, size=(6, 1, 10, 10))
    res_np, _ = run_both_sims(net, x, steps)
    assert res_np.spikes["conv"].shape == (steps, 6, 6, 5, 5) and res_np.spikes["fc"].shape == (steps, 6, 4)
    assert 0 < res_np.spikes["conv"].mean() < 1
    # the float model is not bit-exact by promise, but with F=12 the first layer agrees almost
    # everywhere: a sanity check of the folding (pool factor, BatchNorm, negative gammas)
    with torch.no_grad():
        s1, _ = model(torch.as_tensor(x, dtype=torch.float32) / 255.0, steps)
    agree = float(np.mean(s1.numpy().astype(np.uint8) == res_np.spikes["conv"]))
    print(f"\ncustom time-loop net: first-layer spike agreement float vs frozen = {agree:.4f}")
    assert agree > 0.95


# ----------------------------------------------------------------------------- input validation
@pytest.fixture(scope="module")
def pixel_net() -> FrozenNet:
    return _saturating_conv_net()


BAD_INPUTS = {
    "pixel_256": lambda: np.full((2, 2, 6, 6), 256),
    "negative_pixel": lambda: np.full((2, 2, 6, 6), -1),
    "fractional_float": lambda: np.full((2, 2, 6, 6), 0.5, dtype=np.float32),
    "scaled_pixels": lambda: np.random.default_rng(0).integers(0, 256, size=(2, 2, 6, 6)) / 255.0,
    "nan": lambda: np.full((2, 2, 6, 6), np.nan),
    "wrong_shape": lambda: np.zeros((2, 1, 6, 6), dtype=np.int64),
    "wrong_rank": lambda: np.zeros((2, 6, 6), dtype=np.int64),
    "string": lambda: np.full((2, 2, 6, 6), "a"),
}


@pytest.mark.parametrize("make_sim", SIMS, ids=SIM_IDS)
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_field_x(pixel_net, make_sim, case):
    with pytest.raises(FrozenNetError) as info:
        make_sim(pixel_net).run(BAD_INPUTS[case](), 3)
    assert (info.value.layer, info.value.field) == ("input", "x"), str(info.value)


@pytest.mark.parametrize("make_sim", SIMS, ids=SIM_IDS)
def test_input_checks_accept_valid_and_reject_step_mismatch(pixel_net, make_sim):
    sim = make_sim(pixel_net)
    ok = np.random.default_rng(0).integers(0, 256, size=(2, 2, 6, 6))
    assert sim.run(ok.astype(np.float64), 3).spikes["fc"].shape == (3, 2, 3)  # integral floats are fine
    assert sim.run(ok.astype(np.uint8), 3).spikes["fc"].shape == (3, 2, 3)
    with pytest.raises(FrozenNetError) as info:
        sim.run(np.stack([ok] * 4), 3)  # [T=4, N, ...] but 3 steps asked
    assert info.value.field == "x"
    spike_net = FrozenNet(InputSpec((4,), bits=1, scale=1.0),
                          [LIFLayer("d", "dense", np.ones((2, 4), np.int8), 2, np.ones(2, np.int64), np.zeros(2, np.int64),
                                    np.full(2, 4096))]).validate()
    with pytest.raises(FrozenNetError) as info:
        make_sim(spike_net).run(np.full((3, 4), 2), 3)  # spikes must be 0/1
    assert info.value.field == "x"
