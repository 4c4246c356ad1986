"""Safe checkpoints: round trip, and every kind of bad file refused with a CheckpointError."""
from __future__ import annotations

import os
import pickle
import warnings

import pytest
import torch

from qsnn_deploy.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from qsnn_deploy.errors import CheckpointError
from qsnn_deploy.models import build_model, mnist_arch


@pytest.fixture
def arch():
    return mnist_arch(num_steps=5)


@pytest.fixture
def trained(arch):
    """A model with non-default weights and BatchNorm statistics."""
    torch.manual_seed(0)
    model = build_model(arch)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(0.05 * torch.randn_like(p))
            if name.startswith("bn") and name.endswith("bias"):
                p.uniform_(0.3, 1.0)  # make every layer spike, so the comparison means something
            if name == "fc.weight":
                p.normal_(0.0, 0.3)
        for name, b in model.named_buffers():
            if "running_var" in name:
                b.uniform_(0.5, 2.0)
            elif "running_mean" in name:
                b.normal_(0.0, 0.1)
    return model.eval()


@pytest.fixture
def ckpt_path(tmp_path, trained, arch):
    return save_checkpoint(tmp_path / "model.pt", trained, arch, config={"lr": 1e-3, "epochs": 2},
                           metrics={"test_acc": 0.98, "history": [0.5, 0.9]})


def test_round_trip(ckpt_path, trained, arch):
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt["format"] == "qsnn-checkpoint" and ckpt["version"] == 1
    assert ckpt["arch"] == arch and ckpt["config"]["epochs"] == 2 and ckpt["metrics"]["test_acc"] == 0.98
    model, ckpt2 = model_from_checkpoint(ckpt_path)
    assert not model.training and ckpt2["arch"] == arch
    torch.manual_seed(1)
    x = torch.randint(0, 256, (2, 1, 28, 28)).float() / 255.0
    with torch.no_grad():
        expected, rec_expected = trained(x, record=True)
        got, rec_got = model(x, record=True)
    assert all(s.sum() > 0 for s in rec_expected.values())  # the comparison is not vacuous
    assert torch.equal(expected, got)
    assert all(torch.equal(rec_expected[k], rec_got[k]) for k in rec_expected)
    model3, _ = model_from_checkpoint(ckpt)  # from the loaded dict
    with torch.no_grad():
        assert torch.equal(model3(x), expected)


def test_save_is_atomic_and_leaves_no_temp(tmp_path, ckpt_path):
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_save_rejects_mismatched_model(tmp_path, trained):
    other = mnist_arch(num_steps=5, batchnorm=False)
    with pytest.raises(CheckpointError, match="missing keys|unexpected keys"):
        save_checkpoint(tmp_path / "m.pt", trained, other)
    assert not (tmp_path / "m.pt").exists()


def test_save_rejects_non_plain_config(tmp_path, trained, arch):
    with pytest.raises(CheckpointError, match=r"config\['out'\].*PosixPath|config\['out'\].*Path"):
        save_checkpoint(tmp_path / "m.pt", trained, arch, config={"out": tmp_path})


def test_save_rejects_bad_arch(tmp_path, trained):
    with pytest.raises(CheckpointError):
        save_checkpoint(tmp_path / "m.pt", trained, {"format": "nope"})


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.target}",))


@pytest.mark.parametrize("how", ["torch.save", "torch.save-legacy", "pickle-p2", "pickle-p4"])
def test_hostile_pickle_refused(tmp_path, how):
    pwned = tmp_path / "pwned"
    payload = {"format": "qsnn-checkpoint", "version": 1, "arch": _Evil(pwned)}
    path = tmp_path / "evil.pt"
    if how == "torch.save":
        torch.save(payload, path)
    elif how == "torch.save-legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        with open(path, "wb") as fh:
            pickle.dump(payload, fh, protocol=2 if how == "pickle-p2" else 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about the pickle protocol
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        with pytest.raises(CheckpointError):
            model_from_checkpoint(path)
    assert not pwned.exists()
    if how != "pickle-p4":  # protocol 4 fails earlier, on an opcode the weights-only unpickler lacks
        assert "execute code" in str(info.value) and "system" in str(info.value)
    assert "evil.pt" in str(info.value)


def test_truncated_file(tmp_path, ckpt_path):
    data = ckpt_path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt.*truncated or corrupt"):
        load_checkpoint(cut)


@pytest.mark.parametrize("content", [os.urandom(4096), b"", b"PK\x03\x04garbage"])
def test_random_bytes(tmp_path, content):
    path = tmp_path / "noise.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="noise.pt.*(truncated or corrupt|not a qsnn checkpoint)"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")


@pytest.mark.parametrize("payload, pattern", [
    ({"format": "something-else", "version": 1}, "not a qsnn checkpoint"),
    ({"format": "qsnn-checkpoint", "version": 99, "arch": {}, "state_dict": {}}, "unsupported checkpoint version 99"),
    ({"format": "qsnn-checkpoint", "version": 1, "state_dict": {}, "config": {}, "metrics": {}}, "'arch'.*missing"),
    ([1, 2, 3], "not a qsnn checkpoint.*list"),
    ({"model": torch.zeros(3)}, "not a qsnn checkpoint"),
])
def test_wrong_format(tmp_path, payload, pattern):
    path = tmp_path / "wrong.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=pattern):
        load_checkpoint(path)


def test_nan_weight_named(tmp_path, ckpt_path):
    ckpt = load_checkpoint(ckpt_path)
    ckpt["state_dict"]["conv2.weight"][0, 0, 0, 0] = float("nan")
    ckpt["state_dict"]["bn1.running_var"][3] = float("inf")
    with pytest.raises(CheckpointError, match="'conv2.weight'.*non-finite|'bn1.running_var'.*non-finite"):
        model_from_checkpoint(ckpt)
    path = tmp_path / "nan.pt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="nan.pt.*non-finite"):
        model_from_checkpoint(path)


def test_missing_and_mismatched_keys(ckpt_path):
    ckpt = load_checkpoint(ckpt_path)
    del ckpt["state_dict"]["fc.weight"]
    ckpt["state_dict"]["extra.weight"] = torch.zeros(1)
    ckpt["state_dict"]["conv1.weight"] = torch.zeros(8, 1, 5, 5)
    with pytest.raises(CheckpointError) as info:
        model_from_checkpoint(ckpt)
    msg = str(info.value)
    assert "missing keys: fc.weight" in msg and "unexpected keys: extra.weight" in msg
    assert "conv1.weight: shape [8, 1, 5, 5] in checkpoint, [16, 1, 5, 5] in the model" in msg


def test_arch_that_does_not_build(ckpt_path):
    ckpt = load_checkpoint(ckpt_path)
    ckpt["arch"]["layers"][0]["type"] = "transformer"
    with pytest.raises(CheckpointError, match="unknown type 'transformer'"):
        model_from_checkpoint(ckpt)
