"""``bench/record.py``: a benchmark's figures kept as JSON with the machine they ran on (``--json`` of
``bench_numpy_sim``, ``bench_train``, ``bench_lava``, ``bench_commands``, ``nir_peers``)."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def record():
    spec = importlib.util.spec_from_file_location("bench_record", REPO / "bench" / "record.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_machine_names_the_cpu_commit_and_load(record):
    info = record.machine()
    assert isinstance(info["cpu"], str) and info["cpu"]
    assert info["logical_cpus"] == os.cpu_count()
    assert info["torch"] and isinstance(info["torch_threads"], int) and info["numpy"] == np.__version__
    assert info["load_average_1min"] is None or info["load_average_1min"] >= 0
    if (REPO / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", info["commit"]), info["commit"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", info["utc"])


def test_git_commit_outside_a_checkout_is_none(record, tmp_path):
    assert record.git_commit(tmp_path) is None


def test_write_results_round_trip_with_numpy_values(record, tmp_path):
    out = tmp_path / "sub" / "figures.json"
    figures = {"rate": np.float32(12.5), "count": np.int64(3), "spikes": np.array([1, 2])}
    path = record.write_results(out, "bench_x", figures, argv=[str(REPO / "bench" / "bench_x.py"), "--json", str(out)])
    assert path == out
    data = json.loads(out.read_text())
    assert data["schema"] == record.SCHEMA and data["version"] == record.VERSION and data["bench"] == "bench_x"
    assert data["command"] == f"python bench/bench_x.py --json {out}"  # the script shown relative to the repository
    assert data["results"] == {"rate": 12.5, "count": 3, "spikes": [1, 2]}
    assert data["machine"]["cpu"] == record.cpu_model()


def test_unserialisable_figures_leave_an_older_file_untouched(record, tmp_path):
    out = tmp_path / "figures.json"
    out.write_text("older figures")
    with pytest.raises(TypeError, match="not JSON-serialisable: object"):
        record.write_results(out, "bench_x", {"bad": object()}, argv=["bench_x.py"])
    assert out.read_text() == "older figures"
    assert [p.name for p in tmp_path.iterdir()] == ["figures.json"]  # no temporary file left behind


def test_bench_numpy_sim_json_holds_what_it_printed(tmp_path):
    """A tiny real run of the bench (shipped model, 2 digits, T = 3): the file holds the printed rows."""
    from conftest import missing_data
    from qsnn_deploy.data import default_data_dir

    if not (Path(default_data_dir("mnist")) / "t10k-images-idx3-ubyte.gz").is_file():
        missing_data("no MNIST test set")
    out = tmp_path / "numpy_sim.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "bench_numpy_sim.py"), "--batch", "2", "--steps", "3",
                           "--repeats", "1", "--json", str(out)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    res = data["results"]
    assert data["bench"] == "bench_numpy_sim" and res["model"] == "mnist_int4_qsnn.pt"
    assert res["steps"] == 3 and res["batch"] == 2 and res["kinds"] == []
    names = [row["name"] for row in res["rows"]]
    assert names[0].startswith("snnTorch") and "NumPy integer simulator" in names and len(names) == 4
    assert res["rows"][0]["ratio_to_snntorch"] == 1.0
    for row in res["rows"]:
        assert row["samples_per_s"] > 0
        assert f"{row['samples_per_s']:9.1f} samples/s" in proc.stdout  # the same figure the bench printed
    assert set(res["spike_rates"]) == {"conv1", "conv2", "fc"}
    assert res["dense_floor"]["macs_per_sample"] > 0


def test_bench_train_json_holds_every_run_and_the_ratio(tmp_path):
    """A tiny real run (snnTorch loop and the fused deploy-faithful net, 4 digits, T = 3, one step each)."""
    from conftest import missing_data
    from qsnn_deploy.data import default_data_dir

    if not (Path(default_data_dir("mnist")) / "train-images-idx3-ubyte.gz").is_file():
        missing_data("no MNIST training set")
    out = tmp_path / "train.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "bench_train.py"), "--steps", "3", "--batch", "4",
                           "--iters", "1", "--device", "cpu", "--variants", "snntorch,fused", "--json", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(out.read_text())["results"]
    assert res["batch"] == 4 and res["device"] == "cpu" and res["neuron"] == "lif"
    assert [(r["steps"], r["variant"], r["malloc"]) for r in res["runs"]] == [(3, "snntorch", "tuned"), (3, "fused", "tuned")]
    assert all(r["samples_per_s"] == pytest.approx(4 / r["seconds"]) and r["peak_bytes"] > 0 for r in res["runs"])
    (ratio,) = res["ratios"]
    seconds = {r["variant"]: r["seconds"] for r in res["runs"]}
    assert ratio["throughput_fused_to_snntorch"] == pytest.approx(seconds["snntorch"] / seconds["fused"])
    assert f"ratio {ratio['throughput_fused_to_snntorch']:.2f}x" in proc.stdout


def test_nir_peers_json_prints_back_the_table_it_ran(tmp_path):
    """A tiny real run of bench/nir_peers.py (shipped model, snnTorch only, 4 digits, T = 5): the file names
    the data and the machine, and ``--from-json`` prints the very table the run printed."""
    from conftest import missing_data
    from qsnn_deploy.data import default_data_dir

    if not (Path(default_data_dir("mnist")) / "t10k-images-idx3-ubyte.gz").is_file():
        missing_data("no MNIST test set")
    out = tmp_path / "peers.json"
    script = str(REPO / "bench" / "nir_peers.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, script, "-n", "4", "--steps", "5", "--peers", "snntorch",
                           "--models", "examples/mnist_int4_qsnn.pt", "--json", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["bench"] == "nir_peers" and data["machine"]["cpu"] and data["results"]["data"] == "mnist"
    (row,) = data["results"]["rows"]
    assert (row["model"], row["peer"], row["n"], row["steps"]) == ("mnist_int4_qsnn.pt", "snntorch", 4, 5)
    again = subprocess.run([sys.executable, script, "--from-json", str(out)], cwd=tmp_path, capture_output=True,
                           text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    printed = proc.stdout[proc.stdout.index("4 mnist test images"):]
    assert again.stdout == printed and "| mnist_int4_qsnn.pt | snntorch" in printed
