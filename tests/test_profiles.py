"""The ``loihi`` training profile (issue 12, item 1): every layer it trains maps onto Lava's stock LIF.

* the profile's arch has zero reset, one θ and β per layer on the 64-unit grid, no BatchNorm or
  bias, F = 6; an arch that breaks it is refused naming layer, field and limit;
* the state-budget projection makes every layer provably saturation-free, even from weights blown
  far past it;
* a profile model (trained a few steps) freezes to a net the stock-Loihi check accepts, exports
  with ``--strict``, and its faithful forward equals the frozen integer net bit for bit;
* the default model is refused by ``--strict``, with a message pointing at ``--profile loihi``,
  and nothing is written.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from qsnn_deploy import freeze
from qsnn_deploy.cli.export import main as export_main
from qsnn_deploy.errors import FrozenNetError
from qsnn_deploy.lava.check import check_net
from qsnn_deploy.models import build_model, init_uniform_fan_in, preset_arch
from qsnn_deploy.profiles import (LOIHI_THRESHOLD_STEP, apply_profile, calibrate_initial_firing, check_arch,
                                  project_to_state_budget)
from qsnn_deploy.simulators.numpy_sim import NumpySimulator
from qsnn_deploy.statebound import net_state_bounds
from qsnn_deploy.train.losses import spike_count_loss

from conftest import REPO


def _loihi_model(seed: int = 0):
    torch.manual_seed(seed)
    arch = apply_profile(preset_arch("mnist", "int4", num_steps=8, beta=0.5), "loihi")
    return arch, init_uniform_fan_in(build_model(arch))


def test_profile_arch_has_only_what_stock_lif_computes():
    arch, model = _loihi_model()
    kinds = [e["type"] for e in arch["layers"]]
    assert "batchnorm" not in kinds
    for e in arch["layers"]:
        if e["type"] in ("conv", "linear"):
            assert e["bias"] is True  # BatchNorm's shift survives as a bias on the 64-unit grid
        if e["type"] == "lif":
            assert (e["reset"], e["frac_bits"], e["state_bits"], e["threshold_step"]) == ("zero", 6, 24, LOIHI_THRESHOLD_STEP)
    for block in model.blocks:
        assert block.neuron.threshold_step == 64 and block.neuron.reset_mechanism_val == 1


@pytest.mark.parametrize("field,change,needle", [
    ("batchnorm", lambda a: a["layers"].insert(2, {"type": "batchnorm", "name": "bn1", "num_features": 16}), "bn1"),
    ("reset", lambda a: next(e for e in a["layers"] if e["type"] == "lif").update(reset="subtract"), "lif1"),
    ("beta", lambda a: next(e for e in a["layers"] if e["type"] == "lif").update(beta=[0.5] * 16), "lif1"),
    ("weight_bits", lambda a: a["layers"][0].update(weight_bits=12), "conv1"),
    ("weight_bits", lambda a: a["layers"][0].update(weight_bits=8), "conv1"),  # 8-bit x 2x2 pool folds to 10 bits
])
def test_an_arch_that_breaks_the_profile_is_refused_by_name(field, change, needle):
    arch, _ = _loihi_model()
    change(arch)
    with pytest.raises(FrozenNetError) as err:
        check_arch(arch, "loihi")
    assert needle in str(err.value) and field in str(err.value)


def test_projection_makes_every_layer_provably_saturation_free():
    _, model = _loihi_model()
    with torch.no_grad():
        for block in model.blocks:
            block.synapse.weight.mul_(50.0)  # far past any budget
    assert project_to_state_budget(model) > 0
    net = freeze(model)
    assert all(b.saturation_free for b in net_state_bounds(net))
    assert project_to_state_budget(model) == 0  # idempotent once inside


def test_projection_fits_a_cuba_layer_without_silencing_it():
    """A CUBA layer's current multiplies the proven bound by 1/(1 − α): scaling whole channels cannot fit the
    channel that holds the per-tensor largest weight (its integer pattern does not change) and, θ being fixed,
    used to shrink the weights until no layer fired. The projection shrinks the over side of each channel."""
    arch = preset_arch("mnist", num_steps=8)
    for entry in arch["layers"]:
        if entry["type"] == "lif":
            entry.update(kind="cuba", alpha=0.5, beta=0.5)
    torch.manual_seed(0)
    model = init_uniform_fan_in(build_model(apply_profile(arch, "loihi")))
    project_to_state_budget(model)
    x = torch.as_tensor(np.random.default_rng(0).integers(0, 256, (16, 1, 28, 28)) / 255.0, dtype=torch.float32)
    rates = calibrate_initial_firing(model, x, num_steps=8)
    assert all(r > 0.01 for r in rates), rates
    net = freeze(model)
    assert all(b.saturation_free for b in net_state_bounds(net))


def test_projection_refuses_a_layer_it_cannot_fit_by_name():
    """An integer weight pattern over the bound that no shrink changes (every conv1 weight equal and negative: the
    per-tensor scale follows any shrink, 25 taps × 4 pooled × 8 × 255 stays over the 24-bit state): the layer is
    named instead of being shrunk until it never fires."""
    _, model = _loihi_model()
    with torch.no_grad():
        model.blocks[0].synapse.weight.fill_(-0.1)
    with pytest.raises(FrozenNetError, match=f"{model.blocks[0].name}.*weight.*does not lower it"):
        project_to_state_budget(model)


def test_a_briefly_trained_profile_model_runs_on_stock_loihi(tmp_path):
    """A few Adam steps on random digits-shaped data (calibrated, projected as the trainer does):
    the frozen net fits stock Loihi 2 exactly, its reference run never clips, and the model's own
    forward equals the frozen integer net spike for spike."""
    arch, model = _loihi_model(seed=1)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (32, 1, 28, 28), generator=gen).float() / 255.0
    y = torch.randint(0, 10, (32,), generator=gen)
    with torch.no_grad():  # biases of both signs, some past Lava's 13-bit bias mantissa (the projection clamps them)
        for block in model.blocks:
            block.synapse.bias.uniform_(-2.0, 2.0, generator=gen)
    rates = calibrate_initial_firing(model, x, num_steps=8)
    assert all(r > 0 for r in rates)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = spike_count_loss(0.8, 0.2)
    model.train()
    for _ in range(3):
        loss = loss_fn(model(x, num_steps=8), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        project_to_state_budget(model)
    model.eval()
    net = freeze(model)
    fit = check_net(net)
    assert fit.fits, fit.verdict()
    assert "runs on stock Loihi 2" in fit.verdict()
    assert all(int(l.neuron.threshold[0]) % 64 == 0 and len(set(l.neuron.threshold.tolist())) == 1 for l in net.layers)
    assert all(np.all(l.neuron.bias % 64 == 0) and np.all(np.abs(l.neuron.bias >> 6) < (1 << 12)) for l in net.layers)
    assert all(np.any(l.neuron.bias > 0) and np.any(l.neuron.bias < 0) for l in net.layers)
    x_int = (x * 255).round().to(torch.uint8).numpy()
    ref = NumpySimulator(net).run(x_int)
    assert sum(ref.saturations.values()) == 0
    with torch.no_grad():
        _, rec = model(x, num_steps=8, record=True)
    for name, spikes in rec.items():
        assert np.array_equal(spikes.numpy().astype(np.uint8), ref.spikes[name]), name
    # the CLI agrees: --strict exports it
    path = net.save(tmp_path / "loihi.qsnn")
    assert export_main([str(path), "--target", "lava", "--strict", "-o", str(tmp_path / "out")]) == 0
    assert any((tmp_path / "out").iterdir())


def test_strict_refuses_the_default_model_and_points_to_the_profile(tmp_path, capsys):
    out = tmp_path / "out"
    rc = export_main([str(REPO / "examples" / "mnist_int4_qsnn.pt"), "--target", "lava", "--strict", "-o", str(out)])
    text = capsys.readouterr().out
    assert rc == 1 and "--profile loihi" in text.replace("\n", " ")
    assert not out.exists() or not any(out.iterdir())
