"""Property-based equivalence: random small nets, identical spike trains across backends.

* deploy-faithful nets (Brevitas synapses + QLeaky): the PyTorch model == NumPy simulator ==
  torch integer simulator, every layer, every step, every neuron (plus states and saturations);
* plain snnTorch nets (snntorch.Leaky, nn.Conv2d/nn.Linear or Brevitas): NumPy == torch-sim and
  a FrozenNet save/load round trip simulates identically (the float model is NOT expected to be
  bit-exact);
* a deterministic net whose current bound exceeds 2**24, so the float64 path is taken.
"""
from __future__ import annotations

import tempfile
import warnings
from collections import OrderedDict
from pathlib import Path

import brevitas.nn as qnn
import numpy as np
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from conftest import (assert_spikes_equal, build_model, input_facts, make_input, model_spikes,
                      net_recipes, reference_dense, run_both_sims)
from qsnn_deploy import FrozenNet, FrozenNetError, InputSpec, LIFLayer, freeze, intmath
from qsnn_deploy.nn import QLeaky, QSequential
from qsnn_deploy.simulators.numpy_sim import NumpySimulator
from qsnn_deploy.simulators.torch_sim import TorchSimulator

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _freeze_or_reject(model, **kwargs) -> FrozenNet:
    """freeze(); an example whose folded bias does not fit its B_v-bit state is refused by design
    (FrozenNetError on field "bias"): such draws are rejected, anything else propagates."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # thresholds clamped to the state limit (documented warning)
            return freeze(model, **kwargs)
    except FrozenNetError as exc:
        if exc.field == "bias":
            reject()
        raise


@settings(max_examples=40, **SETTINGS)
@given(recipe=net_recipes(faithful=True))
def test_deploy_faithful_model_equals_numpy_and_torch_sim(recipe):
    model = build_model(recipe)
    net = _freeze_or_reject(model)
    assert net.metadata["deploy_faithful"] is True
    steps = recipe["T"]
    x = make_input(recipe, np.random.default_rng(recipe["seed"] + 1))
    bits, scale = input_facts(recipe)
    assert (net.input.bits, net.input.scale) == (bits, scale)

    model_states: dict = {}
    expected = model_spikes(model, x, steps, states=model_states)
    res_np, _ = run_both_sims(net, x, steps)
    # block names = synapse module names = frozen layer names
    assert list(expected) == [b.name for b in model.blocks] == [layer.name for layer in net.layers]
    for name, spk in expected.items():
        assert spk.shape[:2] == (steps, recipe["N"])
    assert_spikes_equal(expected, res_np.spikes, "PyTorch model vs NumPy sim")
    # the membrane states too: QLeaky's v (state units) is the simulators' v, every step
    assert list(model_states) == list(res_np.states)
    for name, v in model_states.items():
        assert np.array_equal(v, res_np.states[name]), f"membrane states of {name!r} differ (model vs NumPy)"
    # saturation: the deploy-faithful neuron counts (neuron, step) clips exactly like the simulators
    for block in model.blocks:
        assert block.neuron.saturation_events == res_np.saturations[block.name], block.name


@settings(max_examples=40, **SETTINGS)
@given(recipe=net_recipes(faithful=False),
       as_plain_sequential=st.booleans())
def test_plain_snntorch_frozen_sims_agree_and_file_round_trip(recipe, as_plain_sequential):
    model = build_model(recipe)
    bits, scale = input_facts(recipe)
    opts = dict(weight_bits=recipe["weight_bits"], frac_bits=recipe["frac_bits"], state_bits=recipe["state_bits"])
    if as_plain_sequential:
        seq = nn.Sequential(OrderedDict(model.named_children()))
        net = _freeze_or_reject(seq, input_shape=recipe["input_shape"], input_bits=bits, input_scale=scale,
                                num_steps=recipe["T"], **opts)
    else:
        net = _freeze_or_reject(model, **opts)
    assert net.metadata["deploy_faithful"] is False
    for layer, L in zip(net.layers, recipe["layers"]):
        assert (layer.neuron.frac_bits, layer.neuron.state_bits) == (recipe["frac_bits"], recipe["state_bits"])
        assert layer.neuron.reset == L["reset"]
        want_bits = L["weight_bits"] if L["brevitas"] else recipe["weight_bits"]
        assert layer.synapse.weight_bits == want_bits
        lo, hi = intmath.weight_range(want_bits)
        assert lo <= int(layer.synapse.weight.min()) and int(layer.synapse.weight.max()) <= hi
    steps = recipe["T"]
    x = make_input(recipe, np.random.default_rng(recipe["seed"] + 1))
    res_np, res_th = run_both_sims(net, x, steps)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.qsnn"
        net.save(path)
        loaded = FrozenNet.load(path)
    assert loaded.to_manifest()[0] == net.to_manifest()[0]
    res_np2, res_th2 = run_both_sims(loaded, x, steps)
    assert_spikes_equal(res_np.spikes, res_np2.spikes, "before vs after save/load (numpy)")
    assert_spikes_equal(res_th.spikes, res_th2.spikes, "before vs after save/load (torch-sim)")
    for name in res_np.states:
        assert np.array_equal(res_np.states[name], res_np2.states[name])


# ----------------------------------------------------------------------------- float64 path
def test_float64_path_beyond_float32_bound():
    rng = np.random.default_rng(7)
    fan_in, hidden, classes, n, steps = 4096, 16, 5, 4, 6
    w1 = rng.integers(-40, 128, size=(hidden, fan_in)).astype(np.int8)  # mostly positive: large currents
    w2 = rng.integers(-127, 128, size=(classes, hidden)).astype(np.int8)
    x = rng.integers(0, 256, size=(n, fan_in))
    x[0] = 255  # the worst case row
    j_exact = x @ w1.astype(np.int64).T
    assert np.abs(j_exact).max() > 2**24
    # float32 accumulation would really be wrong for these numbers: the test has teeth
    j_f32 = x.astype(np.float32) @ w1.astype(np.float32).T
    assert np.any(j_f32.astype(np.float64) != j_exact)

    frac = 2
    th1 = (np.abs(j_exact).mean(axis=0) * (1 << frac) * rng.uniform(0.3, 1.5, size=hidden)).astype(np.int64)
    layers = [
        LIFLayer("fc1", "dense", w1, 8, th1, rng.integers(-1000, 1000, size=hidden), np.full(hidden, 3000),
                 reset="subtract", frac_bits=frac, state_bits=40),
        LIFLayer("fc2", "dense", w2, 8, np.full(classes, 100, dtype=np.int64), np.zeros(classes, np.int64),
                 rng.integers(0, 4097, size=classes), reset="zero", frac_bits=frac, state_bits=40),
    ]
    net = FrozenNet(InputSpec((fan_in,), bits=8, scale=1 / 255), layers, num_steps=steps).validate()
    assert net.current_bounds()[0] >= intmath.FLOAT32_EXACT
    sim = NumpySimulator(net)
    assert sim.layers[0].dtype == np.float64 and sim.layers[1].dtype == np.float32
    assert TorchSimulator(net)._layers[0]["dtype"] == torch.float64

    res_np, _ = run_both_sims(net, x, steps)
    assert_spikes_equal(reference_dense(net, x, steps)[0], res_np.spikes, "int64 reference vs NumPy sim")
    assert res_np.spikes["fc1"].any() and not res_np.spikes["fc1"].all()
    # time-varying input takes the same path
    xt = np.stack([x, rng.integers(0, 256, size=x.shape), x[::-1]])
    run_both_sims(net, xt, None)


def test_deploy_faithful_model_beyond_float32_bound():
    """The QSequential forward must also compute J exactly when it exceeds 2**24 (docs/integer-semantics.md
    §2a: check the bound and use float64 beyond it)."""
    rng = np.random.default_rng(11)
    fan_in, hidden, n, steps = 4096, 12, 4, 5
    fc = qnn.QuantLinear(fan_in, hidden, bias=False, weight_bit_width=8)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor(rng.uniform(-0.3, 1.0, size=(hidden, fan_in)), dtype=torch.float32))
    model = QSequential(OrderedDict(fc=fc, lif=QLeaky(beta=0.75, threshold=torch.linspace(500.0, 6000.0, hidden), reset_mechanism="subtract",
                                                      frac_bits=3, state_bits=40)),
                        input_shape=(fan_in,), input_scale=1 / 255, input_bits=8, num_steps=steps).eval()
    x = rng.integers(0, 256, size=(n, fan_in))
    x[0] = 255
    net = freeze(model)
    assert net.current_bounds()[0] >= intmath.FLOAT32_EXACT
    res_np, _ = run_both_sims(net, x, steps)
    assert res_np.spikes["fc"].any() and not res_np.spikes["fc"].all()
    assert_spikes_equal(reference_dense(net, x, steps)[0], res_np.spikes, "int64 reference vs NumPy sim")
    model_states: dict = {}
    assert_spikes_equal(model_spikes(model, x, steps, states=model_states), res_np.spikes, "PyTorch model vs NumPy sim")
    # J is off by a few units if the model accumulates it in float32 (its bound exceeds 2**24): the
    # spikes rarely show it, the states always do
    assert np.array_equal(model_states["fc"], res_np.states["fc"]), (
        f"model membrane differs from the exact integer state by up to "
        f"{np.abs(model_states['fc'] - res_np.states['fc']).max()} units")
