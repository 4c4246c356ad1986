"""The fused LIF (all T steps as one autograd node, Numba on the CPU) against the step-by-step
QLeaky graph it replaces: identical spikes and saturation counts, the same gradients (to rounding
error), for both resets, static and per-step inputs, clipping states and per-channel parameters."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import qsnn_deploy.nn.fused_lif as fused_lif
from qsnn_deploy.nn import QLeaky
from qsnn_deploy.nn.fused_lif import lif_sequence
from qsnn_deploy.models import build_model, init_uniform_fan_in, preset_arch
from qsnn_deploy.train import spike_count_loss

from fused_cases import fused_case


def stepwise(current, sigma, bias, theta, b_int, d, *, frac_bits, state_bits, zero_reset, slope, static, steps):
    """The reference: the recurrence as QLeaky.forward computes it, one autograd graph per step."""
    from snntorch import surrogate

    neuron = QLeaky(beta=0.5, spike_grad=surrogate.fast_sigmoid(slope=slope), frac_bits=frac_bits,
                    state_bits=state_bits, reset_mechanism="zero" if zero_reset else "subtract")
    neuron.integer_params = lambda s, b: (theta, b_int, d)  # the given integers, with their gradients
    mem, outs = None, []
    for t in range(steps):
        spk, mem = neuron(current if static else current[t], mem, sigma=sigma, bias=bias)
        outs.append(spk.to(torch.float32))
    return torch.stack(outs), neuron.saturation_events


def make_case(seed: int, static: bool, conv: bool, steps: int, big: bool):
    """current, sigma, bias, theta, b_int, d (``big``: currents that clip a 12-bit state)."""
    return fused_case(seed, static, conv, steps, j_range=(-300, 300) if big else (-10, 40),
                      theta_range=(200, 2000) if big else (20, 200), decay_ranges=((1500, 4097),))


@pytest.mark.parametrize("use_numba", [True, False], ids=["numba", "torch-ops"])
@pytest.mark.parametrize("zero_reset", [False, True], ids=["subtract", "zero"])
@pytest.mark.parametrize("static", [True, False], ids=["static", "per-step"])
@pytest.mark.parametrize("conv", [True, False], ids=["conv", "dense"])
def test_fused_equals_stepwise(monkeypatch, use_numba, zero_reset, static, conv):
    monkeypatch.setattr(fused_lif, "USE_NUMBA", use_numba)
    steps = 7
    for seed, (state_bits, big) in enumerate([(24, False), (12, True)]):  # 12 bits, large currents: clips
        inputs = make_case(seed, static, conv, steps, big)
        kw = dict(frac_bits=3, state_bits=state_bits, zero_reset=zero_reset, slope=5.0, static=static, steps=steps)
        ref_inputs = [t.detach().clone().requires_grad_() for t in inputs]
        spikes, clipped = lif_sequence(*inputs, **kw)
        ref_spikes, ref_clipped = stepwise(*ref_inputs, **kw)
        assert torch.equal(spikes, ref_spikes)
        assert clipped == ref_clipped
        if big:
            assert clipped > 0  # the case exercises the clip
        assert 0 < int(spikes.sum()) < spikes.numel()
        weights = torch.rand(spikes.shape, generator=torch.Generator().manual_seed(9))
        (spikes * weights).sum().backward()
        (ref_spikes * weights).sum().backward()
        for name, a, b in zip(("current", "sigma", "bias", "theta", "b", "d"), inputs, ref_inputs):
            assert a.grad is not None and b.grad is not None, name
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-9, msg=f"gradient of {name}")


@pytest.mark.parametrize("use_numba", [True, False], ids=["numba", "torch-ops"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_qsequential_fused_training_step_matches_stepwise(monkeypatch, use_numba, reset):
    """A whole training step of the seeds' MNIST net (BatchNorm in training mode, dropout): same
    spikes in every layer, same loss, same parameter gradients."""
    monkeypatch.setattr(fused_lif, "USE_NUMBA", use_numba)
    torch.manual_seed(0)
    fused = init_uniform_fan_in(build_model(preset_arch("mnist", "int4", num_steps=6, reset=reset)))
    with torch.no_grad():  # a net that spikes in every layer; negative BatchNorm gammas flip J's sign
        for b in fused.blocks:
            b.synapse.weight.mul_(3.0)
            if b.batchnorm is not None:
                b.batchnorm.weight[::3] *= -1.0
    step = copy.deepcopy(fused)
    step.fused = False
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = torch.arange(6) % 10
    results = []
    for m in (fused, step):
        m.train()
        torch.manual_seed(5)  # the same dropout masks
        out, rec = m(x, num_steps=6, record=True)
        loss = spike_count_loss()(out, y)
        loss.backward()
        results.append((rec, loss.detach(), {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}))
    (rec_f, loss_f, grads_f), (rec_s, loss_s, grads_s) = results
    for name in rec_s:
        assert torch.equal(rec_f[name], rec_s[name]), name
        assert rec_s[name].sum() > 0, f"{name} never spiked: the test would prove little"
    assert torch.equal(loss_f, loss_s)
    assert grads_f.keys() == grads_s.keys() and grads_s
    for name in grads_s:
        torch.testing.assert_close(grads_f[name], grads_s[name], rtol=1e-4, atol=1e-7, msg=name)


def test_hooks_keep_the_stepwise_path():
    """verify captures each step with forward hooks on the neurons: a hooked neuron is called T times."""
    torch.manual_seed(0)
    m = build_model(preset_arch("mnist", "int4", num_steps=4))
    calls = []
    m.blocks[0].neuron.register_forward_hook(lambda *_: calls.append(1))
    m.eval()
    with torch.no_grad():
        m(torch.rand(2, 1, 28, 28), num_steps=4)
    assert len(calls) == 4


def test_eval_forward_is_bit_exact_to_the_frozen_net():
    """The fused forward is what evaluation runs: it must still equal the integer reference."""
    from qsnn_deploy import freeze
    from qsnn_deploy.simulators import create_backend

    torch.manual_seed(0)
    m = init_uniform_fan_in(build_model(preset_arch("mnist", "int4", num_steps=5)))
    with torch.no_grad():
        for b in m.blocks:
            b.synapse.weight.mul_(3.0)
    m.eval()
    x = np.random.default_rng(0).integers(0, 256, (5, 1, 28, 28))
    with torch.no_grad():
        _, rec = m(torch.as_tensor(x, dtype=torch.float32) / 255.0, num_steps=5, record=True)
    ref = create_backend("numpy", freeze(m)).run(x, 5)
    for name, spikes in rec.items():
        assert np.array_equal(spikes.numpy().astype(np.uint8), ref.spikes[name]), name


@pytest.mark.parametrize("use_numba", [True, False], ids=["numba", "torch-ops"])
@pytest.mark.parametrize("static", [True, False], ids=["static", "per-step"])
@pytest.mark.parametrize("direct", [False, True], ids=["scaled", "direct"])
def test_state_landing_exactly_on_the_limit_keeps_its_gradient(monkeypatch, use_numba, static, direct):
    """The backward pass decides "was v_t clipped?" only where |v_t| reached the limit: a state that
    lands exactly on ±(2**(B_v-1) - 1) passes its gradient, one pushed past it is clipped and does not.
    Neurons 0/1 land on +limit / -limit, neurons 2/3 are pushed one unit past them, neuron 4 stays inside."""
    monkeypatch.setattr(fused_lif, "USE_NUMBA", use_numba)
    state_bits, frac_bits, steps = 12, 0, 3
    vmax = 2 ** (state_bits - 1) - 1
    c = 5
    sigma = torch.full((c,), 0.5, dtype=torch.float64, requires_grad=True)
    bias = torch.full((c,), 0.25, dtype=torch.float64, requires_grad=True)
    j = torch.tensor([vmax, -vmax, vmax + 1, -vmax - 1, 100], dtype=torch.float64)
    current = (j if direct else j * 0.5 + 0.25).reshape(1, c)
    if not static:
        current = current.expand(steps, 1, c).contiguous()
    current.requires_grad_()
    theta = torch.full((c,), 3000.0, dtype=torch.float64, requires_grad=True)  # above the limit: never fires
    b_int = torch.zeros(c, dtype=torch.float64, requires_grad=True)
    d = torch.zeros(c, dtype=torch.float64, requires_grad=True)  # no carry: v_t = J_t
    kw = dict(frac_bits=frac_bits, state_bits=state_bits, zero_reset=False, slope=5.0, static=static, steps=steps)
    spikes, clipped = lif_sequence(current, sigma, bias, theta, b_int, d, direct=direct, **kw)
    assert clipped == 2 * steps
    weights = torch.linspace(0.5, 1.5, spikes.numel(), dtype=torch.float32).reshape(spikes.shape)
    (spikes * weights).sum().backward()
    g = current.grad.reshape(-1, c).abs().sum(0)
    assert (g[[0, 1, 4]] > 0).all(), g
    assert (g[[2, 3]] == 0).all(), g
    assert b_int.grad[[0, 1, 4]].abs().min() > 0 and (b_int.grad[[2, 3]] == 0).all()
    if not direct:
        ref_inputs = [t.detach().clone().requires_grad_() for t in (current, sigma, bias, theta, b_int, d)]
        ref_spikes, ref_clipped = stepwise(*ref_inputs, **kw)
        assert torch.equal(spikes, ref_spikes) and clipped == ref_clipped
        (ref_spikes * weights).sum().backward()
        for name, a, b in zip(("current", "sigma", "bias", "theta", "b", "d"),
                              (current, sigma, bias, theta, b_int, d), ref_inputs):
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-9, msg=f"gradient of {name}")
