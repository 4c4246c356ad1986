"""verify() and the qsnn-export / qsnn-verify command lines."""
from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from qsnn_deploy import FrozenNet, freeze
from qsnn_deploy.checkpoint import save_checkpoint
from qsnn_deploy.cli import export as export_cli
from qsnn_deploy.cli import verify as verify_cli
from qsnn_deploy.models import build_model, mnist_arch
from qsnn_deploy.verify import SCHEMA, verify

STEPS = 8


def _active_model(deploy_faithful: bool = True, seed: int = 3):
    """The seeds' MNIST net with weights that make every layer spike."""
    torch.manual_seed(seed)
    arch = mnist_arch(num_steps=STEPS, deploy_faithful=deploy_faithful)
    model = build_model(arch)
    for bn in (model.bn1, model.bn2):
        bn.bias.data.uniform_(0.3, 1.0)
    model.fc.weight.data.normal_(0.0, 0.3)
    return model.eval(), arch


def _pixels(n: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8)


def test_deploy_faithful_model_verifies_bit_exact():
    model, _ = _active_model()
    net = freeze(model)
    x = _pixels()
    labels = np.arange(len(x)) % 10
    report = verify(net, x, labels, model=model, backends=["torch"])
    assert report.all_exact
    assert [b.name for b in report.backends] == ["torch-model (cpu)", "torch-cpu"]
    for b in report.backends:
        assert b.exact_required and b.bit_exact
        assert all(layer.spikes > 0 for layer in b.layers), "test model must spike in every layer"
        assert b.prediction_agreement == 1.0
    assert report.reference_accuracy is not None


def _perturbed(net: FrozenNet, layer_index: int = 1) -> tuple[FrozenNet, int]:
    """A copy of ``net`` whose layer has one channel's threshold moved so that its spikes change."""
    from qsnn_deploy.simulators import create_backend

    layer = net.layers[layer_index]
    states = create_backend("numpy", net).run(_pixels(), STEPS, record_states=True).states[layer.name]
    th = layer.neuron.threshold.reshape((1, 1, -1) + (1,) * (states.ndim - 3))
    hits = np.argwhere(states == th)  # a state exactly on the threshold: θ-1 makes it fire
    channel = int(hits[0][2]) if len(hits) else 0
    bad = copy.deepcopy(net)
    bad.layers[layer_index].neuron.threshold = layer.neuron.threshold.copy()
    bad.layers[layer_index].neuron.threshold[channel] -= 1 if len(hits) else layer.neuron.threshold[channel] // 2
    return bad, channel


def test_a_threshold_change_is_caught_and_located():
    model, _ = _active_model()
    net = freeze(model)
    x = _pixels()
    bad, channel = _perturbed(net)
    assert verify(net, x, model=model, backends=[]).all_exact
    report = verify(bad, x, model=model, backends=[])
    assert not report.all_exact
    comp = report.backends[0]
    assert comp.layers[0].bit_exact  # conv1 untouched
    assert not comp.layers[1].bit_exact
    mm = comp.layers[1].first_mismatch
    assert mm.layer == "conv2" and mm.neuron[0] == channel and 0 <= mm.step < STEPS
    assert mm.reference_state is not None and mm.other_state is not None
    assert mm.threshold == bad.layers[1].neuron.threshold[channel]
    # no disagreement anywhere in that layer at an earlier step
    from qsnn_deploy.simulators import create_backend
    a = create_backend("numpy", bad).run(x, STEPS).spikes["conv2"]
    b = create_backend("numpy", net).run(x, STEPS).spikes["conv2"]
    assert np.array_equal(a[:mm.step], b[:mm.step]) and not np.array_equal(a[mm.step], b[mm.step])


def test_streamed_verify_gives_the_same_report_for_any_batch_size():
    """verify compares batch by batch and keeps no spike trains: the counts, the agreement, the
    accuracy and the earliest mismatch (sample index across batches) do not depend on the batch size."""
    model, _ = _active_model()
    net = freeze(model)
    x = _pixels()
    bad, _ = _perturbed(net)
    labels = np.arange(x.shape[0]) % 10
    reports = [verify(bad, x, labels, model=model, backends=["torch"], batch_size=bs).to_dict() for bs in (1, 3, 64)]
    for d in reports:
        for b in d["backends"]:
            b["seconds"] = 0.0
        d["reference_seconds"] = 0.0
    assert reports[0] == reports[1] == reports[2]
    model_cmp = reports[0]["backends"][0]
    assert not model_cmp["bit_exact"] and model_cmp["layers"][1]["first_mismatch"] is not None


def test_float_model_agreement_is_measured_not_required():
    model, _ = _active_model(deploy_faithful=False)
    net = freeze(model)
    report = verify(net, _pixels(), model=model, backends=["torch"])
    float_cmp = report.backends[0]
    assert not float_cmp.exact_required
    assert 0.0 <= float_cmp.prediction_agreement <= 1.0
    assert report.backends[1].bit_exact  # torch integer backend == numpy reference
    assert report.all_exact  # only required backends count


def test_json_schema_fields():
    model, _ = _active_model()
    net = freeze(model)
    d = json.loads(verify(net, _pixels(3), np.zeros(3, int), model=model, backends=["torch"]).to_json())
    assert d["schema"] == SCHEMA and d["version"] == 1
    assert {"model", "n_samples", "num_steps", "reference", "all_exact", "backends", "reference_accuracy"} <= set(d)
    for b in d["backends"]:
        assert {"name", "exact_required", "bit_exact", "seconds", "prediction_agreement", "accuracy", "layers"} <= set(b)
        for layer in b["layers"]:
            assert {"name", "bit_exact", "mismatched_values", "reference_spikes", "spikes",
                    "spike_count_agreement", "saturations", "first_mismatch"} <= set(layer)


# ------------------------------------------------------------------------------ CLI
@pytest.fixture
def checkpoint(tmp_path) -> Path:
    model, arch = _active_model()
    return save_checkpoint(tmp_path / "tiny.pt", model, arch, config={"note": "test"}, metrics={})


def test_export_writes_a_loadable_frozen_net(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert export_cli.main([str(checkpoint), "--target", "numpy", "-o", str(out)]) == 0
    path = out / "tiny.qsnn"
    net = FrozenNet.load(path)
    assert [layer.name for layer in net.layers] == ["conv1", "conv2", "fc"]
    assert net.metadata["deploy_faithful"] is True
    assert "wrote" in capsys.readouterr().out


def test_verify_cli_exit_code_and_json(checkpoint, tmp_path):
    js = tmp_path / "v.json"
    rc = verify_cli.main([str(checkpoint), "--random", "-n", "4", "--steps", str(STEPS), "--json", str(js)])
    assert rc == 0
    d = json.loads(js.read_text())
    assert d["all_exact"] is True and d["n_samples"] == 4 and d["num_steps"] == STEPS


def test_verify_cli_on_real_mnist(checkpoint):
    from qsnn_deploy.data import default_data_dir

    data = default_data_dir("mnist")
    if not data.exists():
        from conftest import missing_data
        missing_data("../shared/data/mnist not present")
    assert verify_cli.main([str(checkpoint), "--data", str(data), "-n", "5", "--steps", "4"]) == 0


def test_verify_cli_exits_1_when_a_backend_differs(checkpoint, capsys):
    """A registered backend that simulates a perturbed net must turn the verdict (exit 1) and be named."""
    from qsnn_deploy.simulators import BACKENDS, register_backend
    from qsnn_deploy.simulators.numpy_sim import NumpySimulator

    register_backend("perturbed", lambda net, **kw: NumpySimulator(_perturbed(net)[0]))
    try:
        rc = verify_cli.main([str(checkpoint), "--random", "-n", "6", "--steps", str(STEPS), "--backends", "torch,perturbed"])
    finally:
        BACKENDS.unregister("perturbed")
    out = capsys.readouterr().out
    assert rc == 1
    assert "NOT BIT-EXACT" in out and "first mismatch: layer conv2" in out


def test_hostile_checkpoint_exit_2_no_code_run(tmp_path, capsys):
    evil = tmp_path / "evil.pt"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    with open(evil, "wb") as fh:
        pickle.dump({"format": "qsnn-checkpoint", "x": Evil()}, fh, protocol=2)
    assert verify_cli.main([str(evil), "--random", "-n", "2"]) == 2
    assert not (tmp_path / "pwned").exists()
    assert "would execute code" in capsys.readouterr().err


def test_export_refuses_nan_weights_and_writes_nothing(tmp_path, capsys):
    model, arch = _active_model()
    path = save_checkpoint(tmp_path / "m.pt", model, arch)
    ckpt = torch.load(path, weights_only=True)
    ckpt["state_dict"]["conv2.weight"][0, 0, 0, 0] = float("nan")
    torch.save(ckpt, path)
    out = tmp_path / "out"
    assert export_cli.main([str(path), "--target", "numpy", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "conv2.weight" in err and "error:" in err
    assert not out.exists() or not any(out.iterdir())


def test_unknown_target_is_a_clear_error(checkpoint, capsys):
    assert export_cli.main([str(checkpoint), "--target", "vhdl", "-o", "unused"]) == 2
    assert "unknown target 'vhdl'" in capsys.readouterr().err


def test_console_scripts_are_installed(checkpoint, tmp_path):
    """The installed entry points run (as a user types them)."""
    exe = Path(sys.executable).with_name("qsnn-verify")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "qsnn_deploy.cli.verify"]
    proc = subprocess.run(cmd + [str(checkpoint), "--random", "-n", "2", "--steps", "3"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ALL BIT-EXACT" in proc.stdout


# ------------------------------------------------------------------------------ honest verdicts
def test_an_active_net_gets_no_warning():
    model, _ = _active_model()
    report = verify(freeze(model), _pixels(6), model=model, backends=["torch"])
    assert report.all_exact and report.warnings == []
    assert json.loads(report.to_json())["warnings"] == []


def test_a_silent_layer_a_constant_output_and_chance_accuracy_are_warned(tmp_path, capsys):
    """Equality of silence proves nothing: a net whose fc layer can never fire is still bit-exact
    everywhere, but verify says why that verdict is weak (report, JSON, CLI line beside the verdict)."""
    model, arch = _active_model()
    net = freeze(model)
    net.layers[-1].neuron.threshold[:] = net.layers[-1].state_limit  # fc: v can never exceed θ
    x = _pixels(24)
    labels = np.arange(24) % 10
    report = verify(net, x, labels, backends=["torch"])
    assert report.all_exact
    w = " | ".join(report.warnings)
    assert "layer 'fc' never spiked (24 samples × 8 steps)" in w
    assert "the output is the same for all 24 samples" in w
    assert "at chance level (10 classes: 10.0%)" in w
    assert "conv1" not in w and "conv2" not in w  # those layers do spike
    path = tmp_path / "silent.qsnn"
    net.save(path)
    js = tmp_path / "v.json"
    rc = verify_cli.main([str(path), "--random", "-n", "4", "--steps", str(STEPS), "--json", str(js)])
    out = capsys.readouterr().out
    assert rc == 0  # the verdict (and exit status) is about equality; the warnings say what it is worth
    assert "ALL BIT-EXACT" in out and "weak evidence: 2 warnings" in out
    assert "warning: layer 'fc' never spiked" in out.replace("\n", " ")
    assert len(json.loads(js.read_text())["warnings"]) == 2
