"""``bench/gpu_check.py`` (issue 11, deliverable 5): without CUDA it stops at once with one clear
line and exit 2; its checks, run on the CPU (CPU vs CPU), find everything exact on real digits."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gc():
    return _module()


@pytest.fixture(scope="module")
def data_dir(gc):
    from conftest import missing_data

    folder = Path(gc.DEFAULT_DATA)
    for name in ("t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz"):
        if not (folder / name).is_file():
            missing_data(f"no MNIST at {folder}")
    return folder


def test_without_cuda_one_clear_line_and_exit_2():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # no GPU visible, even on a machine that has one
    proc = subprocess.run([sys.executable, str(SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and "CUDA" in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_checks_on_cpu_are_exact(gc, data_dir):
    from qsnn_deploy.data import load_mnist

    model, ckpt, net = gc.load_shipped()
    x, y = load_mnist(data_dir, split="test", limit=64)
    # two chunks, so the per-chunk results are added up
    res = gc.verify_streamed(model, net, x, y, model.num_steps, device="cpu", batch_size=32, chunk=32, progress=False)
    assert res["n_samples"] == 64 and res["all_exact"] is True
    assert set(res["backends"]) == {"torch-model (cpu)", "torch-cpu"}
    for b in res["backends"].values():
        assert b["exact_required"] and b["bit_exact"] and b["prediction_agreement"] == 1.0
        assert list(b["layers"]) == [layer.name for layer in net.layers]
        assert all(la["mismatched_values"] == 0 and la["spikes"] == la["reference_spikes"] > 0 for la in b["layers"].values())
    assert res["reference"]["accuracy"] >= 0.95

    xt, yt = load_mnist(data_dir, split="train", limit=16)
    tr = gc.check_training_step("cpu", xt, yt, steps=8, seed=3)
    assert tr["same_initial_weights"] and tr["forward_spikes_equal"] is True
    assert set(tr["spikes"]) == {layer.name for layer in net.layers}
    assert tr["dropout_shared_mask"] == ["dropout"]
    for key in ("conv1.weight", "conv2.weight", "fc.weight", "bn1.running_mean"):
        w = tr["weights"][key]
        assert np.isfinite(w["max_abs_diff"]) and w["max_abs_update"] > 0  # the step did change the weights
    assert tr["weights_equal"] == all(w["max_abs_diff"] == 0.0 for w in tr["weights"].values())
    assert tr["weight_difference_reason"] is None if tr["weights_equal"] else "not associative" in tr["weight_difference_reason"]
    assert tr["loss_reference"] == tr["loss_device"]

    th = gc.throughput(model, net, x[:16], 4, device="cpu", batch_size=8)
    assert all(th[k]["samples_per_s"] > 0 for k in ("torch_model", "torch_backend", "numpy_reference"))


def test_cli_on_cpu_writes_json_and_exit_status(gc, data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "gpu_check.json"
    rc = gc.main(["--device", "cpu", "--limit", "24", "--train-batch", "8", "--train-steps", "4",
                  "--bench-samples", "8", "--no-progress", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "gpu_check: PASS" in text and "NOT EXACT" not in text
    rep = json.loads(out.read_text())
    assert rep["schema"] == "qsnn-gpu-check" and rep["all_required_exact"] is True
    assert rep["inference"]["n_samples"] == 24 and rep["training_step"]["forward_spikes_equal"] is True
    assert set(rep["throughput"]) >= {"torch_model", "torch_backend", "numpy_reference"}
    assert all(rep["required"].values()) and len(rep["required"]) == 3

    # a required comparison that is not exact: exit status 1
    real = gc.check_training_step

    def broken(*a, **k):
        r = real(*a, **k)
        r["forward_spikes_equal"] = False
        return r

    monkeypatch.setattr(gc, "check_training_step", broken)
    rc = gc.main(["--device", "cpu", "--limit", "8", "--train-batch", "4", "--train-steps", "2",
                  "--bench-samples", "0", "--no-progress"])
    assert rc == 1 and "gpu_check: FAIL" in capsys.readouterr().out


def test_bad_input_is_one_line_exit_2(gc, tmp_path, capsys):
    assert gc.main(["--device", "cpu", "--data", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "missing" in err[0]
    assert gc.main(["--device", "tpu"]) == 2
    assert capsys.readouterr().err.startswith("error:")
