"""The ``.qsnn`` format: round trip, validation errors naming layer and field, corrupt files,
atomic saving, and no unpickling anywhere in the package."""
from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from qsnn_deploy import CheckpointError, FrozenNet, FrozenNetError, freeze
from qsnn_deploy.models import build_model, mnist_arch

PACKAGE = Path(__file__).resolve().parents[1] / "qsnn_deploy"


@pytest.fixture(scope="module")
def seed_net() -> FrozenNet:
    torch.manual_seed(3)
    model = build_model(mnist_arch(num_steps=25)).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(-1.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return freeze(model)


@pytest.fixture
def net(seed_net) -> FrozenNet:
    return copy.deepcopy(seed_net)


def _layer_dict(layer):
    """Every field of a layer, its synapse's and its neuron's, flat (``synapse.weight``, ``neuron.threshold``...)."""
    out = {"name": layer.name, "kind": layer.kind}
    for part in ("synapse", "neuron"):
        obj = getattr(layer, part)
        out.update({f"{part}.{f.name}": getattr(obj, f.name) for f in dataclasses.fields(obj)})
    return out


# ----------------------------------------------------------------------------- round trip
def test_save_load_round_trip(seed_net, tmp_path):
    path = seed_net.save(tmp_path / "mnist.qsnn")
    assert path.is_file()
    loaded = FrozenNet.load(path)
    m0, a0 = seed_net.to_manifest()
    m1, a1 = loaded.to_manifest()
    assert m0 == m1
    assert sorted(a0) == sorted(a1)
    for key in a0:
        assert a0[key].dtype == a1[key].dtype, key
        assert np.array_equal(a0[key], a1[key]), key
    assert loaded.input == seed_net.input
    assert loaded.num_steps == seed_net.num_steps and loaded.metadata == seed_net.metadata
    for l0, l1 in zip(seed_net.layers, loaded.layers):
        d0, d1 = _layer_dict(l0), _layer_dict(l1)
        assert sorted(d0) == sorted(d1)
        for k in d0:
            if isinstance(d0[k], np.ndarray):
                assert np.array_equal(d0[k], d1[k]) and d0[k].dtype == d1[k].dtype, (l0.name, k)
            else:
                assert d0[k] == d1[k], (l0.name, k)
    # the file is the documented container: a plain npz with a JSON manifest, no pickles
    with np.load(path, allow_pickle=False) as npz:
        manifest = json.loads(npz["manifest.json"].tobytes().decode("utf-8"))
        assert all(npz[k].dtype != object for k in npz.files)
    assert manifest["format"] == "qsnn-frozen" and manifest["version"] == 2
    assert [entry["name"] for entry in manifest["layers"]] == ["conv1", "conv2", "fc"]
    # saving the loaded net again gives an identical manifest
    again = FrozenNet.load(loaded.save(tmp_path / "again.qsnn"))
    assert again.to_manifest()[0] == m0


# ----------------------------------------------------------------------------- validation
def _mutate_weight_out_of_range(net):
    layer = net.layers[0]
    layer.synapse.weight = layer.synapse.weight.copy()
    layer.synapse.weight.flat[3] = 1 << (layer.synapse.weight_bits - 1)  # one past the top of the declared width
    return "conv1", "weight"


def _mutate_threshold_shape(net):
    layer = net.layers[1]
    layer.neuron.threshold = np.concatenate([layer.neuron.threshold, layer.neuron.threshold[:1]])
    return "conv2", "threshold"


def _mutate_threshold_2d(net):
    layer = net.layers[2]
    layer.neuron.threshold = layer.neuron.threshold.reshape(1, -1)
    return "fc", "threshold"


def _mutate_negative_threshold(net):
    layer = net.layers[2]
    layer.neuron.threshold = layer.neuron.threshold.copy()
    layer.neuron.threshold[4] = -1
    return "fc", "threshold"


def _mutate_decay_too_big(net):
    layer = net.layers[1]
    layer.neuron.decay = layer.neuron.decay.copy()
    layer.neuron.decay[0] = 4097
    return "conv2", "decay"


def _mutate_reset(net):
    net.layers[0].neuron.reset = "foo"
    return "conv1", "reset"


def _mutate_dense_input_size(net):
    layer = net.layers[2]
    layer.synapse.weight = layer.synapse.weight[:, :-1].copy()  # expects 1023 inputs, conv2 gives 1024
    return "fc", "weight"


def _mutate_float_weight(net):
    net.layers[0].synapse.weight = net.layers[0].synapse.weight.astype(np.float32)
    return "conv1", "weight"


def _mutate_bias_too_big(net):
    layer = net.layers[0]
    layer.neuron.bias = layer.neuron.bias.copy()
    layer.neuron.bias[1] = 1 << (layer.neuron.state_bits - 1)
    return "conv1", "bias"


def _mutate_conv_channels(net):
    layer = net.layers[1]
    layer.synapse.weight = layer.synapse.weight[:, :-1].copy()  # 15 input channels, conv1 gives 16
    return "conv2", "weight"


MUTATIONS = [_mutate_weight_out_of_range, _mutate_threshold_shape, _mutate_threshold_2d, _mutate_negative_threshold,
             _mutate_decay_too_big, _mutate_reset, _mutate_dense_input_size, _mutate_float_weight,
             _mutate_bias_too_big, _mutate_conv_channels]


@pytest.mark.parametrize("mutate", MUTATIONS, ids=[m.__name__[len("_mutate_"):] for m in MUTATIONS])
def test_validation_error_names_layer_and_field(net, mutate, tmp_path):
    layer, fld = mutate(net)
    with pytest.raises(FrozenNetError) as info:
        net.validate()
    assert (info.value.layer, info.value.field) == (layer, fld), str(info.value)
    assert repr(layer) in str(info.value) and repr(fld) in str(info.value)
    # saving validates first and writes nothing
    target = tmp_path / "bad.qsnn"
    with pytest.raises(FrozenNetError):
        net.save(target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_invalid_file_content_is_rejected_on_load(seed_net, tmp_path):
    """A file written by someone else (not through save) is validated on load too."""
    manifest, arrays = seed_net.to_manifest()
    arrays = dict(arrays)
    arrays["layer1.decay"] = np.full_like(arrays["layer1.decay"], 5000)
    arrays["manifest.json"] = np.frombuffer(json.dumps(manifest).encode("utf-8"), dtype=np.uint8)
    path = tmp_path / "hand.qsnn"
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(FrozenNetError) as info:
        FrozenNet.load(path)
    assert (info.value.layer, info.value.field) == ("conv2", "decay")


# ----------------------------------------------------------------------------- corrupt files
def test_truncated_file_raises_checkpoint_error(seed_net, tmp_path):
    path = seed_net.save(tmp_path / "net.qsnn")
    blob = path.read_bytes()
    for cut in (0, 1, 10, 100, len(blob) // 3, len(blob) // 2, len(blob) - 200, len(blob) - 1):
        bad = tmp_path / f"cut{cut}.qsnn"
        bad.write_bytes(blob[:cut])
        with pytest.raises(CheckpointError):
            FrozenNet.load(bad)


def test_random_bytes_and_foreign_files_raise_checkpoint_error(tmp_path):
    rng = np.random.default_rng(0)
    junk = tmp_path / "junk.qsnn"
    junk.write_bytes(rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError):
        FrozenNet.load(junk)
    # a zip-looking header followed by garbage
    zipish = tmp_path / "zipish.qsnn"
    zipish.write_bytes(b"PK\x03\x04" + rng.integers(0, 256, size=2000, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError):
        FrozenNet.load(zipish)
    # a valid npz without a manifest
    plain = tmp_path / "plain.qsnn"
    with open(plain, "wb") as fh:
        np.savez(fh, a=np.arange(3))
    with pytest.raises(CheckpointError):
        FrozenNet.load(plain)
    # a manifest that is not JSON
    notjson = tmp_path / "notjson.qsnn"
    with open(notjson, "wb") as fh:
        np.savez(fh, **{"manifest.json": np.frombuffer(b"\xff{not json", dtype=np.uint8)})
    with pytest.raises(CheckpointError):
        FrozenNet.load(notjson)
    with pytest.raises(CheckpointError):
        FrozenNet.load(tmp_path / "missing.qsnn")


def test_pickled_object_array_is_refused(seed_net, tmp_path):
    """An npz smuggling a pickled object array must not be unpickled."""
    manifest, arrays = seed_net.to_manifest()
    arrays = dict(arrays)
    arrays["manifest.json"] = np.frombuffer(json.dumps(manifest).encode("utf-8"), dtype=np.uint8)
    arrays["evil"] = np.array([{"a": 1}], dtype=object)
    path = tmp_path / "evil.qsnn"
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(CheckpointError):
        FrozenNet.load(path)


def test_wrong_format_or_version_raises_checkpoint_error(seed_net, tmp_path):
    for key, value in (("format", "something-else"), ("version", 99)):
        manifest, arrays = seed_net.to_manifest()
        manifest[key] = value
        arrays = dict(arrays, **{"manifest.json": np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)})
        path = tmp_path / f"{key}.qsnn"
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
        with pytest.raises(CheckpointError):
            FrozenNet.load(path)


# ----------------------------------------------------------------------------- atomic save
class _Boom(RuntimeError):
    pass


def _failing_savez(file, *args, **kwargs):
    file.write(b"PK\x03\x04 half a file")
    file.flush()
    raise _Boom("disk full (simulated)")


def test_failed_save_leaves_no_file(seed_net, tmp_path, monkeypatch):
    target = tmp_path / "new.qsnn"
    monkeypatch.setattr(np, "savez", _failing_savez)
    with pytest.raises(_Boom):
        seed_net.save(target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == [], "temporary files were left behind"


def test_failed_save_keeps_older_file_intact(seed_net, tmp_path, monkeypatch):
    target = seed_net.save(tmp_path / "net.qsnn")
    before = target.read_bytes()
    other = copy.deepcopy(seed_net)
    other.num_steps = 77
    monkeypatch.setattr(np, "savez", _failing_savez)
    with pytest.raises(_Boom):
        other.save(target)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert FrozenNet.load(target).num_steps == seed_net.num_steps
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.qsnn"]


# ----------------------------------------------------------------------------- no pickle
def test_package_never_unpickles():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 10
    offenders = []
    for src in sources:
        text = src.read_text(encoding="utf-8")
        rel = src.relative_to(PACKAGE.parent)
        if re.search(r"allow_pickle\s*=\s*True", text):
            offenders.append(f"{rel}: allow_pickle=True")
        for call in re.finditer(r"\b(?:np|numpy)\.load\(([^)]*)\)", text):
            if "allow_pickle=False" not in call.group(1):
                offenders.append(f"{rel}: np.load without allow_pickle=False: {call.group(0)}")
        for call in re.finditer(r"\btorch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in call.group(1):
                offenders.append(f"{rel}: torch.load without weights_only=True: {call.group(0)}")
        if re.search(r"\bpickle\.loads?\(", text):
            offenders.append(f"{rel}: pickle.load")
    assert not offenders, "\n".join(offenders)


# ----------------------------------------------------------------------------- repr
@pytest.mark.parametrize("name", ["mnist_int4_qsnn.pt", "mnist_int4_loihi.pt"])
def test_repr_is_short_and_names_every_layer(name):
    from qsnn_deploy.checkpoint import model_from_checkpoint

    model, _ = model_from_checkpoint(PACKAGE.parent / "examples" / name)
    net = freeze(model)
    text = repr(net)
    assert str(net) == text and len(text) < 2000, text
    assert "array" not in text and "[[" not in text
    lines = text.splitlines()
    assert lines[0].startswith("FrozenNet(input 1×28×28 8-bit unsigned") and len(lines) == 1 + len(net.layers)
    for layer, line, (i, o) in zip(net.layers, lines[1:], net.layer_shapes()):
        shape = lambda s: "×".join(map(str, s))  # noqa: E731
        assert line.strip().startswith(f"{layer.name}: {layer.synapse.kind}"), line
        for part in (f"{shape(i)} -> {shape(o)}", f"int{layer.synapse.weight_bits}", f"F={layer.neuron.frac_bits}",
                     f"B_v={layer.neuron.state_bits}", f"reset={layer.neuron.reset}"):
            assert part in line, (part, line)
    for layer in net.layers:
        r = repr(layer)
        assert "\n" not in r and len(r) < 300 and repr(layer.name) in r and "array" not in r, r
    assert len(repr(net.layers)) < 1000


def test_repr_of_an_invalid_net_does_not_fail(net):
    net.layers[1].synapse.weight = net.layers[1].synapse.weight.reshape(64, -1)  # a conv with a 2-D weight: no shapes
    text = repr(net)
    assert "conv2: conv 64×400" in text and "? -> ?" in text and len(text.splitlines()) == 4


# ----------------------------------------------------------------------------- version 1 (before neuron kinds)
V1_DIR = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("stem", ["mnist_int4_qsnn", "mnist_int4_loihi"])
def test_version_1_files_load_and_run_identically(stem, tmp_path):
    """A .qsnn written by the format-1 code (before neuron kinds) loads as LIF layers and gives the very spikes
    and states recorded by that code (sha256 fingerprints on 8 MNIST digits); re-saved as version 2, the same."""
    import gzip
    import hashlib

    from qsnn_deploy.simulators.numpy_sim import NumpySimulator
    from conftest import REPO, missing_data

    images = REPO.parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
    if not images.is_file():
        missing_data(f"{images} not found")
    with gzip.open(images) as fh:
        x = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:8]
    want = json.loads((V1_DIR / "frozen_v1_fingerprints.json").read_text())["nets"][stem]
    path = V1_DIR / f"frozen_v1_{stem}.qsnn"
    with np.load(path, allow_pickle=False) as npz:
        assert json.loads(npz["manifest.json"].tobytes())["version"] == 1
    v1 = FrozenNet.load(path)
    assert [layer.kind for layer in v1.layers] == ["lif"] * 3
    v2 = FrozenNet.load(v1.save(tmp_path / "v2.qsnn"))
    for net in (v1, v2):
        res = NumpySimulator(net).run(x, num_steps=30, record_states=True)
        for name, fp in want.items():
            assert hashlib.sha256(np.ascontiguousarray(res.spikes[name]).tobytes()).hexdigest() == fp["spikes_sha256"], name
            assert hashlib.sha256(np.ascontiguousarray(res.states[name].astype(np.int64)).tobytes()).hexdigest() == \
                fp["states_sha256"], name
            assert int(res.spikes[name].sum()) == fp["spikes"] > 0
