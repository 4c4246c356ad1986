"""Shared helpers: random spiking nets (as plain-data recipes) and backend comparison.

A *recipe* is a plain dict drawn by hypothesis (so a failing example prints readably); every
random number that is not in the recipe (weights, BatchNorm statistics, per-channel beta and
threshold, the input) comes from ``numpy.random.default_rng(recipe["seed"])`` /
``torch.manual_seed(recipe["seed"])``, so an example is fully reproducible from its recipe.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import brevitas.nn as qnn
import numpy as np
import pytest
import snntorch as snn
import torch
import torch.nn as nn
from hypothesis import strategies as st

from qsnn_deploy.nn import QLeaky, QSequential
from qsnn_deploy.simulators.numpy_sim import NumpySimulator
from qsnn_deploy.simulators.torch_sim import TorchSimulator

REPO = Path(__file__).resolve().parents[1]


def missing_data(reason: str) -> None:
    """A dataset from ../shared/data is absent: a failure in CI (where it must be present), a skip
    on a developer machine without it. Tests never pass silently without their data in CI."""
    import os

    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run with ../shared/data beside the clone)")
    pytest.skip(reason)


# ----------------------------------------------------------------------------- recipes
@st.composite
def net_recipes(draw, faithful: bool = True):
    """A random small feed-forward spiking net: 1-3 LIF blocks, convs first, then dense layers."""
    n_layers = draw(st.integers(1, 3))
    n_conv = draw(st.integers(0, n_layers))
    spikes_in = draw(st.booleans())
    flat_input = n_conv == 0 and draw(st.booleans())
    if flat_input:
        shape: tuple[int, ...] = (draw(st.integers(1, 48)),)
    else:
        shape = (draw(st.integers(1, 3)), draw(st.integers(3, 10)), draw(st.integers(3, 10)))
    layers = []
    cur = shape
    for i in range(n_layers):
        out = draw(st.integers(1, 6))
        layer: dict = {"out": out}
        if i < n_conv:
            c, h, w = cur
            pad = draw(st.integers(0, 1))
            k = min(draw(st.integers(1, 4)), h + 2 * pad, w + 2 * pad)
            s = draw(st.integers(1, 2))
            ho, wo = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
            pool = draw(st.sampled_from([None, 1, 2]))
            if pool is not None and (ho < pool or wo < pool):
                pool = None
            if pool is not None:
                ho, wo = ho // pool, wo // pool
            layer.update(kind="conv", kernel=k, stride=s, padding=pad, pool=pool)
            cur = (out, ho, wo)
        else:
            layer.update(kind="dense", flatten=len(cur) == 3)
            cur = (out,)
        layer.update(
            bn=draw(st.booleans()),
            bias=draw(st.booleans()),
            reset=draw(st.sampled_from(["subtract", "zero"])),
            beta=draw(st.sampled_from(["scalar", "per_channel"])),
            threshold=draw(st.sampled_from(["scalar", "per_channel"])),
        )
        if faithful:
            layer.update(weight_bits=draw(st.integers(2, 8)), frac_bits=draw(st.integers(0, 8)),
                         state_bits=draw(st.sampled_from([10, 16, 24, 32, 40])))
        else:
            layer.update(brevitas=draw(st.booleans()), weight_bits=draw(st.integers(2, 8)))
        layers.append(layer)
    recipe = {
        "faithful": faithful,
        "input_shape": shape,
        "spikes_in": spikes_in,
        "static": draw(st.booleans()),
        "T": draw(st.integers(1, 12)),
        "N": draw(st.integers(1, 4)),
        "layers": layers,
        "seed": draw(st.integers(0, 2**32 - 1)),
    }
    if not faithful:
        recipe.update(weight_bits=draw(st.integers(2, 8)), frac_bits=draw(st.integers(0, 8)),
                      state_bits=draw(st.sampled_from([24, 32, 40])))
    return recipe


def input_facts(recipe) -> tuple[int, float]:
    """(input_bits, input_scale) of a recipe."""
    return (1, 1.0) if recipe["spikes_in"] else (8, 1.0 / 255.0)


def make_input(recipe, rng: np.random.Generator) -> np.ndarray:
    """Integer input: static [N, *shape] or time-varying [T, N, *shape]; pixels 0..255 or spikes."""
    shape = tuple(recipe["input_shape"])
    lead = (recipe["N"],) if recipe["static"] else (recipe["T"], recipe["N"])
    size = lead + shape
    density = rng.uniform(0.2, 1.0)
    mask = rng.random(size) < density
    if recipe["spikes_in"]:
        return mask.astype(np.int64)
    return (rng.integers(0, 256, size=size) * mask).astype(np.int64)


def _channel_values(rng, kind: str, c: int, lo: float, hi: float, conv: bool, plain: bool):
    if kind == "scalar":
        return float(rng.uniform(lo, hi))
    t = torch.tensor(rng.uniform(lo, hi, size=c), dtype=torch.float32)
    if plain and conv:
        t = t.view(c, 1, 1)  # snnTorch broadcasts beta/threshold against [N, C, H, W]
    return t


def _beta_values(rng, kind: str, c: int, conv: bool, plain: bool):
    v = _channel_values(rng, kind, c, 0.0, 1.0, conv, plain)
    # exercise the ends of the decay range now and then
    pick = rng.random()
    if kind == "scalar" and pick < 0.15:
        return 1.0
    if kind == "scalar" and pick < 0.25:
        return 0.0
    return v


def build_model(recipe) -> QSequential:
    """The torch model of a recipe, in eval mode, BatchNorm statistics calibrated on its input.

    faithful: Brevitas QuantConv2d/QuantLinear + :class:`QLeaky` (per-layer frac/state bits).
    plain: nn.Conv2d/nn.Linear or Brevitas synapses + ``snntorch.Leaky(init_hidden=False)``.
    """
    seed = recipe["seed"]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed % (2**31))
    faithful = recipe["faithful"]
    input_bits, input_scale = input_facts(recipe)
    mods: "OrderedDict[str, nn.Module]" = OrderedDict()
    cur = tuple(recipe["input_shape"])
    for i, L in enumerate(recipe["layers"]):
        out = L["out"]
        conv = L["kind"] == "conv"
        use_brevitas = faithful or L["brevitas"]
        if conv:
            args = dict(in_channels=cur[0], out_channels=out, kernel_size=L["kernel"], stride=L["stride"],
                        padding=L["padding"], bias=L["bias"])
            syn = qnn.QuantConv2d(**args, weight_bit_width=L["weight_bits"]) if use_brevitas else nn.Conv2d(**args)
        else:
            if L["flatten"]:
                mods[f"flat{i}"] = nn.Flatten()
                cur = (int(np.prod(cur)),)
            args = dict(in_features=cur[0], out_features=out, bias=L["bias"])
            syn = qnn.QuantLinear(**args, weight_bit_width=L["weight_bits"]) if use_brevitas else nn.Linear(**args)
        if L["bias"]:
            with torch.no_grad():
                syn.bias.copy_(torch.tensor(rng.uniform(-0.3, 0.3, size=out), dtype=torch.float32))
        mods[f"syn{i}"] = syn
        if conv and L["pool"] is not None:
            mods[f"pool{i}"] = nn.AvgPool2d(L["pool"])
        if L["bn"]:
            bn = nn.BatchNorm2d(out) if conv else nn.BatchNorm1d(out)
            bn.momentum = None  # cumulative average: one calibration batch sets the statistics exactly
            sign = np.where(rng.random(out) < 0.35, -1.0, 1.0)
            with torch.no_grad():
                bn.weight.copy_(torch.tensor(sign * rng.uniform(0.3, 1.5, size=out), dtype=torch.float32))
                bn.bias.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=out), dtype=torch.float32))
            mods[f"bn{i}"] = bn
        th_lo, th_hi = (0.2, 1.5) if L["bn"] else (0.02, 0.6)
        beta = _beta_values(rng, L["beta"], out, conv, plain=not faithful)
        theta = _channel_values(rng, L["threshold"], out, th_lo, th_hi, conv, plain=not faithful)
        if faithful:
            if isinstance(beta, torch.Tensor):
                beta = beta.flatten()
            if isinstance(theta, torch.Tensor):
                theta = theta.flatten()
            mods[f"lif{i}"] = QLeaky(beta=beta, threshold=theta, reset_mechanism=L["reset"],
                                     frac_bits=L["frac_bits"], state_bits=L["state_bits"])
        else:
            mods[f"lif{i}"] = snn.Leaky(beta=beta, threshold=theta, reset_mechanism=L["reset"], init_hidden=False)
        if conv:
            c, h, w = cur
            k, s, p = L["kernel"], L["stride"], L["padding"]
            ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            if L["pool"] is not None:
                ho, wo = ho // L["pool"], wo // L["pool"]
            cur = (out, ho, wo)
        else:
            cur = (out,)
    model = QSequential(mods, input_shape=tuple(recipe["input_shape"]), input_scale=input_scale,
                        input_bits=input_bits, num_steps=recipe["T"])
    calib = dict(recipe, N=max(recipe["N"], 6))  # a batch of >1 sample for BatchNorm1d in train mode
    calibrate_batchnorm(model, make_input(calib, rng), input_scale, recipe["T"], rng)
    model.eval()
    reset_saturation(model)
    return model


def calibrate_batchnorm(model: QSequential, x_int: np.ndarray, input_scale: float, steps: int,
                        rng: np.random.Generator | None = None) -> None:
    """Running statistics from one train-mode pass (momentum None), then randomly perturbed
    (mean shifted, variance scaled; always positive)."""
    bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    if not bns:
        return
    for bn in bns:
        bn.momentum = None
        bn.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(torch.as_tensor(x_int, dtype=torch.float32) * input_scale, num_steps=steps)
    model.eval()
    if rng is not None:
        with torch.no_grad():
            for bn in bns:
                var = bn.running_var.double()
                std = var.sqrt()
                c = var.shape[0]
                floor = 0.01 * float(var.mean()) + 1e-8
                bn.running_mean.add_((torch.tensor(rng.uniform(-0.3, 0.3, size=c)) * std).float())
                bn.running_var.copy_((var * torch.tensor(rng.uniform(0.5, 2.0, size=c)) + floor).float())
    assert all(bool(torch.all(bn.running_var > 0)) for bn in bns)


def reset_saturation(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, QLeaky):
            m.saturation_events = 0


def model_spikes(model: QSequential, x_int: np.ndarray, steps: int, states: dict | None = None) -> dict[str, np.ndarray]:
    """The torch model's recorded spikes (uint8) per block, from integer input ``x_int``.

    With ``states`` (a dict), the membrane states ``v`` (state units) returned by every
    :class:`QLeaky` at every step are collected into it as int64 arrays [T, N, ...].
    """
    hooks, collected = [], {}
    if states is not None:
        for block in model.blocks:
            if isinstance(block.neuron, QLeaky):
                collected[block.name] = []
                hooks.append(block.neuron.register_forward_hook(
                    lambda mod, args, out, name=block.name: collected[name].append(out[1].detach().cpu())))
    try:
        with torch.no_grad():
            _, rec = model(torch.as_tensor(x_int, dtype=torch.float32) * model.input_scale, num_steps=steps, record=True)
    finally:
        for h in hooks:
            h.remove()
    if states is not None:
        for name, vs in collected.items():
            v = torch.stack(vs).to(torch.float64).numpy()
            assert np.array_equal(v, np.round(v)), f"{name}: model state is not integer-valued"
            states[name] = v.astype(np.int64)
    out = {}
    for name, spk in rec.items():
        a = spk.detach().cpu().numpy()
        assert np.all((a == 0) | (a == 1)), f"{name}: model spikes are not binary"
        out[name] = a.astype(np.uint8)
    return out


def reference_dense(net, x: np.ndarray, steps: int) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Independent int64 reference for a static-input net of dense layers, written from docs/integer-semantics.md §2
    with Python-style rounding toward zero; returns (spikes, saturation counts) per layer."""
    spikes_out, sats = {}, {}
    h = np.broadcast_to(x, (steps,) + x.shape).astype(np.int64)
    for layer in net.layers:
        j = h.reshape(steps, h.shape[1], -1) @ layer.synapse.weight.astype(np.int64).T  # exact int64 GEMM
        v = np.zeros(j.shape[1:], dtype=np.int64)
        th, b, d, vmax = layer.neuron.threshold, layer.neuron.bias, layer.neuron.decay, layer.state_limit
        spikes = np.zeros(j.shape, dtype=np.uint8)
        n_sat = 0
        for t in range(steps):
            r = v > th
            if layer.neuron.reset == "zero":
                v = np.where(r, 0, v)
            prod = v * d
            v = np.sign(prod) * (np.abs(prod) >> 12) + (j[t] << layer.neuron.frac_bits) + b
            if layer.neuron.reset == "subtract":
                v = v - r * th
            n_sat += int(np.count_nonzero(np.abs(v) > vmax))
            v = np.clip(v, -vmax, vmax)
            spikes[t] = v > th
        spikes_out[layer.name] = spikes
        sats[layer.name] = n_sat
        h = spikes.astype(np.int64)
    return spikes_out, sats


# ----------------------------------------------------------------------------- comparisons
def assert_spikes_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray], what: str = "") -> None:
    """Every layer, every step, every neuron: identical spike trains (names and shapes included)."""
    assert list(a) == list(b), f"{what}: layer names differ: {list(a)} vs {list(b)}"
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        assert x.shape == y.shape, f"{what}: layer {name!r} shapes {x.shape} vs {y.shape}"
        if not np.array_equal(x, y):
            idx = tuple(int(i) for i in np.argwhere(x != y)[0])
            n_bad = int(np.count_nonzero(x != y))
            pytest.fail(f"{what}: layer {name!r}: {n_bad} spikes differ; first at (t, n, ...) = {idx}: {x[idx]} vs {y[idx]}")


def run_both_sims(net, x, steps=None, record_states=True):
    """NumPy (its Numba kernels and its plain-NumPy twin) and torch-CPU simulations of ``net``;
    asserts they agree on spikes, states, saturations."""
    res_np = NumpySimulator(net).run(x, steps, record_states=record_states)
    res_th = TorchSimulator(net, device="cpu").run(x, steps, record_states=record_states)
    res_plain = NumpySimulator(net, use_numba=False).run(x, steps, record_states=record_states)
    res_ops = TorchSimulator(net, device="cpu", scan="torch").run(x, steps, record_states=record_states)
    assert_spikes_equal(res_ops.spikes, res_th.spikes, "torch-sim: torch-op recurrence (as on CUDA) vs fused kernel")
    assert res_ops.saturations == res_th.saturations
    if record_states:
        for name in res_ops.states:
            assert np.array_equal(res_ops.states[name], res_th.states[name]), f"states of {name!r} differ (torch ops)"
    assert_spikes_equal(res_np.spikes, res_plain.spikes, "numpy (numba kernels) vs numpy (whole-array ops)")
    assert res_np.saturations == res_plain.saturations
    if record_states:
        for name in res_np.states:
            assert np.array_equal(res_np.states[name], res_plain.states[name]), f"states of {name!r} differ (numba)"
    assert_spikes_equal(res_np.spikes, res_th.spikes, "numpy vs torch-sim")
    if record_states:
        for name in res_np.states:
            assert np.array_equal(res_np.states[name], res_th.states[name]), f"states of {name!r} differ"
    assert res_np.saturations == res_th.saturations
    for name, s in res_np.spikes.items():
        assert s.dtype == np.uint8 and res_th.spikes[name].dtype == np.uint8
    return res_np, res_th


def mnist_model_with_negative_gammas(deploy_faithful: bool, images: np.ndarray, seed: int = 0, num_steps: int = 100):
    """The seeds' MNIST architecture (16C5-AP2-BN-LIF, 64C5-AP2-BN-LIF, 1024→10 LIF), untrained, with
    ~20% negative BatchNorm gammas (their channels' weights get negated when frozen) and per-channel
    thresholds from the BN fold; BN statistics from one train-mode pass over ``images[:100]``."""
    from qsnn_deploy.models import build_model, mnist_arch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(mnist_arch(num_steps=num_steps, deploy_faithful=deploy_faithful))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                sign = np.where(rng.random(c) < 0.2, -1.0, 1.0)  # some negative gammas: weights get negated
                m.weight.copy_(torch.tensor(sign * rng.uniform(0.5, 1.5, c), dtype=torch.float32))
                m.bias.copy_(torch.tensor(rng.uniform(-0.2, 0.6, c), dtype=torch.float32))
    # running statistics from one train-mode pass over real digits (few steps suffice), then eval
    calibrate_batchnorm(model, images[:100].astype(np.int64), model.input_scale, steps=8)
    reset_saturation(model)
    return model.eval()
