"""Issue 26: the exported ``.net`` runs with lava-dl alone through the ``run_<stem>.py`` recipe written
beside it (real Lava, plain subprocesses), a custom-route file never runs silently on stock netx, a
hand-edited file is refused naming the layer and field, and the fit check shows margins."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from qsnn_deploy.cli import export as export_cli
from qsnn_deploy.errors import QSNNError
from qsnn_deploy.lava.export import export as lava_export
from qsnn_deploy.lava.export import read_netx
from qsnn_deploy.lava.recipe import CUSTOM_NEURON_TYPE, check_netx_file
from qsnn_deploy.simulators.numpy_sim import NumpySimulator
from test_lava import biased_stock_net, small_net

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def mnist_dir() -> Path:
    from qsnn_deploy.data import default_data_dir

    data = default_data_dir("mnist")
    if not data.exists():
        from conftest import missing_data
        missing_data("../shared/data/mnist not present")
    return data


def run_script(script: Path, *args: str) -> subprocess.CompletedProcess:
    """``python <script> ARGS`` in the script's folder, as a user runs it (PYTHONPATH: this checkout)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    return subprocess.run([sys.executable, script.name, *args], cwd=script.parent, env=env, capture_output=True,
                          text=True, timeout=600)


def relative_data(folder: Path, data: Path) -> str:
    """``data`` as the user types it from ``folder`` (relative when it can be, like ../shared/data/mnist)."""
    try:
        return os.path.relpath(data, folder)
    except ValueError:  # another drive
        return str(data)


def export_model(model: Path, out: Path) -> Path:
    assert export_cli.main([str(model), "--target", "lava", "-o", str(out)]) == 0
    script = out / f"run_{model.stem}.py"
    assert script.is_file() and (out / f"{model.stem}.net").is_file()
    return script


# ------------------------------------------------------------------------------ must show
def test_recipe_runs_the_stock_model_bit_exact_with_netx_alone(tmp_path):
    """examples/mnist_int4_loihi.pt exported at its T = 100: the generated script, run in its folder as a
    plain subprocess, prints a bit-exact verdict for every layer and exits 0; its .npz holds the spikes."""
    data = mnist_dir()
    script = export_model(EXAMPLES / "mnist_int4_loihi.pt", tmp_path / "out")
    proc = run_script(script, "--data", relative_data(script.parent, data), "-n", "5", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "T = 100; reset_interval = T + 3 = 103, reset_offset = 1" in out and "8-bit graded spikes" in out
    for layer in ("conv1", "conv2", "fc"):
        assert f"  {layer}: bit-exact" in out
    assert "verdict: bit-exact" in out and "QLIF" not in out
    spikes = np.load(script.parent / "mnist_int4_loihi.lava_spikes.npz")
    assert spikes["conv1"].shape == (100, 5, 16, 12, 12) and spikes["fc"].shape == (100, 5, 10)
    assert int(spikes["meta_reset_interval"]) == 103


def test_recipe_runs_the_shipped_cuba_model_on_stock_lif_with_its_own_du(tmp_path):
    """Issue 24: examples/mnist_int4_cuba_loihi.pt (current-based, --profile loihi) is a plain stock-Loihi .net:
    every layer is netx CUBA with a current decay (iDecay < 4096: the current is kept between steps), and the
    generated script, with lava-dl alone, is bit-exact in every layer."""
    data = mnist_dir()
    script = export_model(EXAMPLES / "mnist_int4_cuba_loihi.pt", tmp_path / "out")
    with h5py.File(script.parent / "mnist_int4_cuba_loihi.net", "r") as f:
        layers = [f["layer"][k] for k in sorted(f["layer"], key=int)]
        decays = [int(np.asarray(g["neuron"]["iDecay"])) for g in layers if "neuron" in g]
        types = {bytes(np.asarray(g["neuron"]["type"])).decode() if np.asarray(g["neuron"]["type"]).dtype.kind == "S"
                 else str(np.asarray(g["neuron"]["type"])) for g in layers if "neuron" in g}
    assert len(decays) == 3 and all(0 < d < 4096 for d in decays), decays
    assert types == {"CUBA"}, types
    proc = run_script(script, "--data", relative_data(script.parent, data), "-n", "3", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for layer in ("conv1", "conv2", "fc"):
        assert f"  {layer}: bit-exact" in proc.stdout
    assert "verdict: bit-exact" in proc.stdout and "QLIF" not in proc.stdout


def test_recipe_runs_the_custom_route_model_with_qlif_and_says_so(tmp_path):
    """examples/mnist_int4_qsnn.pt (custom route): the script never runs it on stock neurons: it names the
    custom route, runs it with qsnn-deploy's QLIF (bit-exact), and with --stock-only refuses (exit 2)."""
    data = mnist_dir()
    script = export_model(EXAMPLES / "mnist_int4_qsnn.pt", tmp_path / "out")
    rel = relative_data(script.parent, data)
    proc = run_script(script, "--data", rel, "-n", "5", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "custom route: layers conv1, conv2, fc need qsnn-deploy's QLIF process" in proc.stdout
    assert "running them with qsnn_deploy.lava.models.QLIF" in proc.stdout
    assert all(f"  {layer}: bit-exact" in proc.stdout for layer in ("conv1", "conv2", "fc"))
    assert "verdict: bit-exact: Lava (netx, QLIF for the custom route)" in proc.stdout
    refused = run_script(script, "--data", rel, "-n", "1", "--stock-only", "--out", "stock.npz")
    assert refused.returncode == 2 and "custom route" in refused.stderr and "--stock-only" in refused.stderr
    assert not (script.parent / "stock.npz").exists()
    from qsnn_deploy.lava.backend import import_lava

    with pytest.raises(ValueError, match="layer conv1 is qsnn-deploy's custom route.*QLIF"):  # stock netx alone
        import_lava()[0].Network(net_config=str(script.parent / "mnist_int4_qsnn.net"), input_message_bits=8)


# ------------------------------------------------------------------------------ no silent wrong load
def test_stock_netx_refuses_a_custom_route_file_naming_the_route(tmp_path):
    from qsnn_deploy.lava.backend import import_lava

    hdf5 = import_lava()[0]
    path = lava_export(small_net(), tmp_path)[0]  # subtract reset, per-channel θ: custom in every layer
    with h5py.File(path, "r") as f:
        assert f["layer/1/neuron/type"][()].decode() == CUSTOM_NEURON_TYPE
    with pytest.raises(ValueError, match=r"layer conv1 is qsnn-deploy's custom route \(subtract reset.*QLIF"):
        hdf5.Network(net_config=str(path), input_message_bits=8)
    # a netx-typed custom layer (an old or edited file) is refused by every qsnn reader and the script
    path = lava_export(small_net(), tmp_path / "edited")[0]  # (netx's failed load still holds the first open)
    with h5py.File(path, "a") as f:
        del f["layer/1/neuron/type"]
        f["layer/1/neuron"].create_dataset("type", data=np.bytes_("CUBA"))
    with pytest.raises(QSNNError, match=r"layer conv1 \(layer/1\), field neuron/type: 'CUBA' on a custom-route layer"):
        read_netx(path)


@pytest.mark.parametrize("kind", ["stock", "mixed"])
def test_recipe_at_another_T_and_npy_input(tmp_path, kind):
    """A biased stock net and a mixed one (custom conv1, biased stock fc: one pad step): the script run at
    T = 7 (the file's T is 13) gets reset_interval = 7 + pipeline, and equals the reference."""
    net = biased_stock_net(kind)
    net_path, script = lava_export(net, tmp_path)
    x = np.random.default_rng(4).integers(0, 256, (3, 1, 10, 10)).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    pipeline = 2 + (kind == "mixed")
    with h5py.File(net_path, "r") as f:
        assert int(f["qsnn/pipeline_steps"][()]) == pipeline
        assert int(f["qsnn/reset_interval"][()]) == net.num_steps + pipeline
    proc = run_script(script, "--data", "x.npy", "-n", "3", "--steps", "7", "--check", "--out", "s.npz")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"T = 7 (the file was exported at T = {net.num_steps}); reset_interval = T + {pipeline} = {7 + pipeline}" in proc.stdout
    assert ("custom route: layers conv1 need" in proc.stdout) == (kind == "mixed")
    got = np.load(tmp_path / "s.npz")
    ref = NumpySimulator(net).run(x.astype(np.int64), 7).spikes
    for name in ref:
        assert ref[name].any() and np.array_equal(got[name], ref[name])


# ------------------------------------------------------------------------------ bad input
def _edit(path: Path, fn) -> Path:
    with h5py.File(path, "a") as f:
        fn(f)
    return path


def _replace(f, where: str, value) -> None:
    del f[where]
    f.create_dataset(where, data=value)


BAD_EDITS = {
    # bias mantissa 5000 > 4095 (and the exact bias says the same): past the signed 13 bits
    "mantissa": (lambda f: (_replace(f, "layer/1/bias", np.array([5000, 0, 0, 0])),
                            _replace(f, "layer/1/qsnn/bias", np.array([5000 * 64, 0, 0, 0]))),
                 r"layer conv1 \(layer/1\), field bias: -?\d+\.\.5000 outside its limit -4096\.\.4095"),
    # netx's vThMant no longer the exact threshold: what netx runs would differ
    "threshold": (lambda f: _replace(f, "layer/1/neuron/vThMant", np.int64(7)),
                  r"layer conv1 \(layer/1\), field neuron/vThMant: netx would run 448, the exact semantics"),
    "missing group": (lambda f: f["layer"].move("3", "4"),  # layer/3 (fc) renumbered: netx stops at the gap
                      r"layer group layer/3 missing"),
    "dropped layer": (lambda f: (f["layer"].__delitem__("3"), f["layer"].__delitem__("2")),
                      r"layer fc, group layer/: missing \(the manifest lists conv1, fc"),
    "short reset": (lambda f: _replace(f, "qsnn/reset_interval", np.int64(2)),
                    r"field qsnn/reset_interval: 2 steps, shorter than the pipeline \(the 2 layers need T \+ 2 = 15"),
}


@pytest.mark.parametrize("edit", list(BAD_EDITS))
def test_hand_edited_net_is_refused_naming_layer_and_field(tmp_path, edit):
    fn, message = BAD_EDITS[edit]
    net_path, script = lava_export(biased_stock_net("stock"), tmp_path)
    _edit(net_path, fn)
    with pytest.raises(QSNNError, match=message):
        check_netx_file(net_path)
    with pytest.raises(QSNNError, match=message):  # every qsnn-deploy reader of the file (qsnn-verify, ...)
        read_netx(net_path)
    if edit in ("mantissa", "short reset"):  # the script: one line, exit 2, nothing run, nothing written
        np.save(tmp_path / "x.npy", np.zeros((1, 1, 10, 10), np.uint8))
        proc = run_script(script, "--data", "x.npy", "-n", "1", "--out", "s.npz")
        assert proc.returncode == 2 and proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: ")
        assert not (tmp_path / "s.npz").exists()


def test_script_refuses_a_weight_past_a_loihi_synapse(tmp_path):
    """--hardware reading (the script's): a stock layer's 9-bit weight mantissa is refused; qsnn-deploy's
    own readers still run it (Lava's CPU conv computes it exactly)."""
    net_path, _ = lava_export(biased_stock_net("stock"), tmp_path)
    _edit(net_path, lambda f: f["layer/1/weight"].__setitem__((0, 0, 0, 0), 255))
    with pytest.raises(QSNNError, match=r"layer conv1 \(layer/1\), field weight: a 9-bit mantissa, past a Loihi 2 synapse's 8 bits"):
        check_netx_file(net_path, hardware=True)
    check_netx_file(net_path)


# ------------------------------------------------------------------------------ margins
def test_check_shows_margins_and_strict_margin_bits_refuses(tmp_path, capsys):
    model = EXAMPLES / "mnist_int4_loihi.pt"
    js = tmp_path / "fit.json"
    assert export_cli.main([str(model), "--target", "lava", "--check", "--check-json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "margins to the limits" in out and "bias mantissa" in out
    import json

    margins = {(m["layer"], m["field"]): m for m in json.loads(js.read_text())["margins"]}
    bias = margins[("conv1", "bias mantissa (bias_mant)")]
    assert (bias["value"], bias["limit"], bias["margin_bits"]) == (4093, 4095, 0)
    assert margins[("conv1", "weight mantissa")]["margin_bits"] == 2  # 6 of 8 bits
    assert {m["field"] for (layer, _), m in margins.items() if layer == "fc"} >= {
        "weight exponent (range -8..7)", "bias exponent (range 0..7; netx fixes it)", "state |v| (24-bit)",
        "threshold mantissa (vThMant)", "current |a| << 6 (u, wraps)"}
    assert export_cli.main([str(model), "--target", "lava", "--strict", "--margin-bits", "1", "-o", str(tmp_path / "o")]) == 1
    out = capsys.readouterr().out.replace("\n", " ")
    assert "layer conv1, field bias mantissa (bias_mant): 4,093 of 4,095" in out and "--margin-bits 1" in out
    assert not (tmp_path / "o").exists()
    assert export_cli.main([str(model), "--target", "lava", "--check", "--margin-bits", "0"]) == 0
    assert export_cli.main([str(model), "--target", "lava", "--margin-bits", "1", "-o", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_script_refuses_a_dataset_claiming_more_than_the_file_holds(tmp_path):
    """The stand-alone reader refuses, before reading it, a dataset whose shape claims terabytes."""
    from qsnn_deploy.lava.recipe_script import RecipeError, read_settings

    net_path, _ = lava_export(biased_stock_net("stock"), tmp_path)
    _edit(net_path, lambda f: (f["layer/3"].__delitem__("weight"),
                               f["layer/3"].create_dataset("weight", shape=(10**6, 10**6), dtype="i8", chunks=(100, 100))))
    with pytest.raises(RecipeError, match=r"dataset layer/3/weight claims 8000000000000 bytes"):
        read_settings(net_path)
