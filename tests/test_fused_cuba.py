"""The fused CUBA layer (all T steps as one autograd node, Numba on the CPU) against the step-by-step
QSynaptic graph it replaces: identical spikes and saturation counts, the same gradients (to rounding
error), for both resets, static and per-step inputs, clipping of the current and of the membrane,
and per-channel parameters; then inside QSequential: a whole training step, and eval == frozen net."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import qsnn_deploy.nn.fused_cuba as fused_cuba
from qsnn_deploy.nn import QSynaptic
from qsnn_deploy.nn.fused_cuba import cuba_sequence
from qsnn_deploy.models import build_model, init_uniform_fan_in, preset_arch
from qsnn_deploy.train import spike_count_loss

from fused_cases import fused_case

NAMES = ("current", "sigma", "bias", "theta", "b", "a", "d")


def stepwise(current, sigma, bias, theta, b_int, a, d, *, frac_bits, state_bits, current_bits, zero_reset, slope,
             static, steps):
    """The reference: the recurrence as QSynaptic.forward computes it, one autograd graph per step."""
    from snntorch import surrogate

    neuron = QSynaptic(alpha=0.5, beta=0.5, spike_grad=surrogate.fast_sigmoid(slope=slope), frac_bits=frac_bits,
                       state_bits=state_bits, current_bits=current_bits,
                       reset_mechanism="zero" if zero_reset else "subtract")
    neuron.integer_params = lambda s, b: (theta, b_int, a, d)  # the given integers, with their gradients
    syn = mem = None
    outs, syns, mems = [], [], []
    for t in range(steps):
        spk, syn, mem = neuron(current if static else current[t], syn, mem, sigma=sigma, bias=bias)
        outs.append(spk.to(torch.float32))
        syns.append(syn.detach())
        mems.append(mem.detach())
    return torch.stack(outs), neuron.saturation_events, torch.stack(syns), torch.stack(mems)


def saved_states(spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The i and v states [T, ...] the fused node kept for its backward pass (read before backward), float64."""
    node = spikes.grad_fn
    if getattr(node, "numba", False):
        _, _, istates, vstates = node.kernel_data
        istates, vstates = torch.from_numpy(istates), torch.from_numpy(vstates)
    else:
        istates, vstates = node.saved_tensors[-2:]
    shape = (spikes.shape[0],) + tuple(spikes.shape[1:])
    return istates[1:].to(torch.float64).reshape(shape), vstates[1:].to(torch.float64).reshape(shape)


def make_case(seed: int, static: bool, conv: bool, steps: int, big: bool):
    """current, sigma, bias, theta, b_int, a, d (``big``: currents that clip the 12-bit states)."""
    return fused_case(seed, static, conv, steps, j_range=(-300, 300) if big else (-10, 30),
                      theta_range=(200, 2000) if big else (40, 400), decay_ranges=((1000, 4097), (1500, 4097)))


@pytest.mark.parametrize("use_numba", [True, False], ids=["numba", "torch-ops"])
@pytest.mark.parametrize("zero_reset", [False, True], ids=["subtract", "zero"])
@pytest.mark.parametrize("static", [True, False], ids=["static", "per-step"])
@pytest.mark.parametrize("conv", [True, False], ids=["conv", "dense"])
def test_fused_equals_stepwise(monkeypatch, use_numba, zero_reset, static, conv):
    monkeypatch.setattr(fused_cuba, "USE_NUMBA", use_numba)
    steps = 7
    # (B_v, B_i, big): no clip; large currents against a 12-bit membrane (v clips); a 10-bit current (i clips)
    for seed, (state_bits, current_bits, big) in enumerate([(24, 24, False), (12, 24, True), (24, 10, True)]):
        inputs = make_case(seed, static, conv, steps, big)
        kw = dict(frac_bits=3, state_bits=state_bits, current_bits=current_bits, zero_reset=zero_reset, slope=5.0,
                  static=static, steps=steps)
        ref_inputs = [t.detach().clone().requires_grad_() for t in inputs]
        spikes, clipped = cuba_sequence(*inputs, **kw)
        ref_spikes, ref_clipped, ref_i, ref_v = stepwise(*ref_inputs, **kw)
        assert torch.equal(spikes, ref_spikes)
        assert clipped == ref_clipped
        fused_i, fused_v = saved_states(spikes)
        assert torch.equal(fused_i, ref_i.to(torch.float64).reshape(fused_i.shape))
        assert torch.equal(fused_v, ref_v.to(torch.float64).reshape(fused_v.shape))
        if big:  # the case exercises the clip of the state it targets
            limit = float((1 << ((current_bits if current_bits < 24 else state_bits) - 1)) - 1)
            assert (ref_i if current_bits < 24 else ref_v).abs().max() == limit
            assert clipped > 0
        assert 0 < int(spikes.sum()) < spikes.numel()
        weights = torch.rand(spikes.shape, generator=torch.Generator().manual_seed(9))
        (spikes * weights).sum().backward()
        (ref_spikes * weights).sum().backward()
        for name, x, y in zip(NAMES, inputs, ref_inputs):
            assert x.grad is not None and y.grad is not None, name
            assert y.grad.abs().max() > 0, f"the reference gradient of {name} is zero: the test would prove little"
            torch.testing.assert_close(x.grad, y.grad, rtol=1e-9, atol=1e-9, msg=f"gradient of {name}")


@pytest.mark.parametrize("use_numba", [True, False], ids=["numba", "torch-ops"])
def test_wide_states_are_kept_in_float64(monkeypatch, use_numba):
    """B_i, B_v > 25: states beyond 2**24, which float32 would round, are stored in float64, so the
    backward pass (which reads them) still gives the step-by-step gradients."""
    monkeypatch.setattr(fused_cuba, "USE_NUMBA", use_numba)
    steps = 6
    inputs = list(make_case(4, False, False, steps, True))
    with torch.no_grad():
        inputs[3] = (inputs[3].detach() * 2 ** 13).requires_grad_()  # theta on the scale of J·2**16
    kw = dict(frac_bits=16, state_bits=40, current_bits=36, zero_reset=False, slope=5.0, static=False, steps=steps)
    ref_inputs = [t.detach().clone().requires_grad_() for t in inputs]
    spikes, clipped = cuba_sequence(*inputs, **kw)
    ref_spikes, ref_clipped, ref_i, ref_v = stepwise(*ref_inputs, **kw)
    assert ref_v.abs().max() > 2 ** 24 and ref_i.abs().max() > 2 ** 24
    assert torch.equal(spikes, ref_spikes) and clipped == ref_clipped == 0
    fused_i, fused_v = saved_states(spikes)
    assert torch.equal(fused_i, ref_i) and torch.equal(fused_v, ref_v)
    assert 0 < int(spikes.sum()) < spikes.numel()
    weights = torch.rand(spikes.shape, generator=torch.Generator().manual_seed(9))
    (spikes * weights).sum().backward()
    (ref_spikes * weights).sum().backward()
    for name, x, y in zip(NAMES, inputs, ref_inputs):
        torch.testing.assert_close(x.grad, y.grad, rtol=1e-9, atol=1e-9, msg=f"gradient of {name}")


@pytest.mark.parametrize("zero_reset", [False, True], ids=["subtract", "zero"])
def test_fused_states_equal_stepwise(zero_reset):
    """The states the backward pass reads are the step-by-step QSynaptic's i and v, bit for bit."""
    from qsnn_deploy import intmath
    from qsnn_deploy.nn import fused_cuba_cpu

    if not fused_cuba_cpu.HAVE_NUMBA:
        pytest.skip("numba not installed")
    steps = 6
    current, sigma, bias, theta, b_int, a, d = make_case(3, False, True, steps, True)
    kw = dict(frac_bits=3, state_bits=12, current_bits=11, zero_reset=zero_reset, slope=5.0, static=False, steps=steps)
    _, ref_clipped, ref_i, ref_v = stepwise(current, sigma, bias, theta, b_int, a, d, **kw)
    params = tuple(t.detach().numpy().astype(np.float64) for t in (sigma, bias, theta, b_int, a, d))
    cur = fused_cuba._as_ncs(current.detach(), False)
    _, istates, vstates, clipped = fused_cuba_cpu.forward(cur, False, False, steps, 8.0, params, zero_reset,
                                                          float(intmath.state_limit(11)), float(intmath.state_limit(12)),
                                                          np.float64)
    assert np.array_equal(istates[1:].reshape(ref_i.shape), ref_i.numpy())
    assert np.array_equal(vstates[1:].reshape(ref_v.shape), ref_v.numpy())
    assert clipped == ref_clipped > 0


def cuba_model(steps: int, reset: str, profile: str = "default") -> torch.nn.Module:
    """The seeds' MNIST net with every spiking layer a QSynaptic (as ``qsnn-train --neuron cuba``)."""
    from qsnn_deploy.profiles import apply_profile

    arch = preset_arch("mnist", "int4", num_steps=steps, reset=reset)
    for entry in arch["layers"]:
        if entry.get("type") == "lif":
            entry.update(kind="cuba", alpha=0.5)
    return init_uniform_fan_in(build_model(apply_profile(arch, profile)))


@pytest.mark.parametrize("use_numba", [True, False], ids=["numba", "torch-ops"])
@pytest.mark.parametrize("reset,profile", [("subtract", "default"), ("zero", "default"), ("zero", "loihi")])
def test_qsequential_fused_training_step_matches_stepwise(monkeypatch, use_numba, reset, profile):
    """A whole training step of the seeds' MNIST net with CUBA neurons (BatchNorm in training mode, or the
    loihi profile's per-channel bias and 64-unit grid; dropout; learnable α, β and θ): same spikes in
    every layer, same loss, same saturation counts, same parameter gradients."""
    monkeypatch.setattr(fused_cuba, "USE_NUMBA", use_numba)
    torch.manual_seed(0)
    fused = cuba_model(5, reset, profile)
    with torch.no_grad():  # a net that spikes in every layer; negative BatchNorm gammas flip J's sign
        for b in fused.blocks:
            b.synapse.weight.mul_(3.0)
            if b.batchnorm is not None:
                b.batchnorm.weight[::3] *= -1.0
            elif b.synapse.bias is not None:
                b.synapse.bias.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(2))
    for b in fused.blocks:  # every per-channel parameter the step-by-step graph differentiates
        assert isinstance(b.neuron, QSynaptic)
        b.neuron.alpha = torch.nn.Parameter(torch.as_tensor(0.6, dtype=torch.float32))
        b.neuron.beta = torch.nn.Parameter(torch.as_tensor(0.7, dtype=torch.float32))
        b.neuron.threshold = torch.nn.Parameter(torch.as_tensor(1.0, dtype=torch.float32))
    step = copy.deepcopy(fused)
    step.fused = False
    assert fused._can_fuse(fused.blocks[0].neuron) and not step._can_fuse(step.blocks[0].neuron)
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = torch.arange(4) % 10
    results = []
    for m in (fused, step):
        m.train()
        torch.manual_seed(5)  # the same dropout masks
        out, rec = m(x, num_steps=5, record=True)
        loss = spike_count_loss()(out, y)
        loss.backward()
        sat = [b.neuron.saturation_events for b in m.blocks]
        results.append((rec, loss.detach(), {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None},
                        sat))
    (rec_f, loss_f, grads_f, sat_f), (rec_s, loss_s, grads_s, sat_s) = results
    for name in rec_s:
        assert torch.equal(rec_f[name], rec_s[name]), name
        assert rec_s[name].sum() > 0, f"{name} never spiked: the test would prove little"
    assert torch.equal(loss_f, loss_s)
    assert sat_f == sat_s
    assert grads_f.keys() == grads_s.keys()
    for suffix in ("alpha", "beta", "threshold"):
        assert any(n.endswith(suffix) for n in grads_s), suffix
    for name in grads_s:
        torch.testing.assert_close(grads_f[name], grads_s[name], rtol=1e-4, atol=1e-7, msg=name)


def test_hooks_keep_the_stepwise_path():
    """verify captures each step with forward hooks on the neurons: a hooked QSynaptic is called T times."""
    torch.manual_seed(0)
    m = cuba_model(4, "subtract")
    calls = []
    m.blocks[0].neuron.register_forward_hook(lambda *_: calls.append(1))
    m.eval()
    with torch.no_grad():
        m(torch.rand(2, 1, 28, 28), num_steps=4)
    assert len(calls) == 4


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_eval_forward_is_bit_exact_to_the_frozen_net(reset):
    """The fused forward is what evaluation runs: it must still equal the integer reference."""
    from qsnn_deploy import freeze
    from qsnn_deploy.simulators import create_backend

    torch.manual_seed(0)
    m = cuba_model(5, reset)
    with torch.no_grad():
        for b in m.blocks:
            b.synapse.weight.mul_(3.0)
            if b.batchnorm is not None:
                b.batchnorm.weight[::3] *= -1.0
    assert m._can_fuse(m.blocks[0].neuron)
    m.eval()
    x = np.random.default_rng(0).integers(0, 256, (3, 1, 28, 28))
    with torch.no_grad():
        _, rec = m(torch.as_tensor(x, dtype=torch.float32) / 255.0, num_steps=5, record=True)
    ref = create_backend("numpy", freeze(m)).run(x, 5)
    for name, spikes in rec.items():
        assert spikes.sum() > 0, name
        assert np.array_equal(spikes.numpy().astype(np.uint8), ref.spikes[name]), name


@pytest.mark.parametrize("use_numba", [True, False], ids=["numba", "torch-ops"])
@pytest.mark.parametrize("static", [True, False], ids=["static", "per-step"])
def test_states_landing_exactly_on_their_limits_keep_their_gradients(monkeypatch, use_numba, static):
    """The backward pass decides "was i_t / v_t clipped?" only where the state reached its limit: a state
    landing exactly on ±(2**(B-1) - 1) passes its gradient, one pushed past it does not. With no decay
    (a = d = 0) and a threshold above the limits, i_t = J and v_t = i_t + b, per channel:
    0: both land on +limit; 1: i clipped, v lands; 2: v lands through b; 3: v clipped;
    4: both land on -limit; 5: inside."""
    monkeypatch.setattr(fused_cuba, "USE_NUMBA", use_numba)
    bits, steps = 12, 3
    lim = 2 ** (bits - 1) - 1
    j = torch.tensor([lim, lim + 1, 1000, 1000, -lim, 100], dtype=torch.float64)
    b_values = torch.tensor([0, 0, lim - 1000, lim - 1000 + 1, 0, 0], dtype=torch.float64)
    c = j.numel()
    sigma = torch.full((c,), 0.5, dtype=torch.float64, requires_grad=True)
    bias = torch.full((c,), 0.25, dtype=torch.float64, requires_grad=True)
    current = (j * 0.5 + 0.25).reshape(1, c)
    if not static:
        current = current.expand(steps, 1, c).contiguous()
    inputs = [current.requires_grad_(), sigma, bias,
              torch.full((c,), 5000.0, dtype=torch.float64, requires_grad=True),  # theta: never fires
              b_values.clone().requires_grad_(), torch.zeros(c, dtype=torch.float64, requires_grad=True),
              torch.zeros(c, dtype=torch.float64, requires_grad=True)]
    ref_inputs = [t.detach().clone().requires_grad_() for t in inputs]
    kw = dict(frac_bits=0, state_bits=bits, current_bits=bits, zero_reset=False, slope=5.0, static=static, steps=steps)
    spikes, clipped = cuba_sequence(*inputs, **kw)
    ref_spikes, ref_clipped, _, _ = stepwise(*ref_inputs, **kw)
    assert clipped == ref_clipped == 2 * steps
    assert torch.equal(spikes, ref_spikes)
    weights = torch.linspace(0.5, 1.5, spikes.numel(), dtype=torch.float32).reshape(spikes.shape)
    (spikes * weights).sum().backward()
    (ref_spikes * weights).sum().backward()
    g_current = inputs[0].grad.reshape(-1, c).abs().sum(0)
    assert (g_current[[0, 2, 4, 5]] > 0).all() and (g_current[[1, 3]] == 0).all(), g_current
    g_b = inputs[4].grad
    assert (g_b[[0, 1, 2, 4, 5]].abs() > 0).all() and g_b[3] == 0, g_b
    for name, a, b in zip(NAMES, inputs, ref_inputs):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-9, msg=f"gradient of {name}")
