"""Our report's figures next to NeuroBench's own metrics (qsnn_deploy.report.neurobench).

NeuroBench (the `peers` extra, installed by `make setup`) runs its own Benchmark and metric code on
a torch view of the frozen net. Checked: the view's spikes are the NumPy reference's; where the
definitions agree the figures are equal (connection sparsity, activation sparsity, dense synaptic
operations, effective ACs/MACs counted NeuroBench's way from our spikes and weights); where they do
not, the difference is the documented one (zero weights: ours count them); the CLI's --neurobench
(terminal table, its own JSON file, and the report's --json "neurobench" object and --html section).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qsnn_deploy import freeze
from qsnn_deploy.report import validate
from qsnn_deploy.report.neurobench import compare_with_neurobench, connection_sparsity, neurobench_view, nonzero_fan_out
from qsnn_deploy.simulators.numpy_sim import NumpySimulator
from test_nir import _mnist_digits, random_frozen_net, random_input

REPO = Path(__file__).resolve().parents[1]


def _rows(cmp):
    return {r["metric"].split(" (")[0]: r for r in cmp["rows"]}


def test_neurobench_on_the_shipped_model_equals_ours_where_definitions_agree():
    from qsnn_deploy.checkpoint import model_from_checkpoint

    model = model_from_checkpoint(REPO / "examples" / "mnist_int4_qsnn.pt")[0]
    net = freeze(model)
    x, y = _mnist_digits(12)
    cmp = compare_with_neurobench(net, x, y, num_steps=10, model=model, batch_size=5)
    assert cmp["spikes_identical"]
    rows = _rows(cmp)
    for name in ("connection sparsity", "activation sparsity", "synaptic ops, dense", "synaptic ops, effective ACs",
                 "synaptic ops, effective MACs"):
        assert rows[name]["equal"] is True, rows[name]
    # the documented differences: ours count zero weights (the shipped int4 weights have zeros)
    assert rows["synaptic ops, effective ACs"]["neurobench"] < rows["synaptic ops, effective ACs"]["ours"]
    assert rows["synaptic ops, effective MACs"]["neurobench"] < rows["synaptic ops, effective MACs"]["ours"]
    assert rows["synaptic ops, dense"]["neurobench"] == rows["synaptic ops, dense"]["ours"]
    assert rows["activation sparsity"]["neurobench"] == pytest.approx(rows["activation sparsity"]["ours"], abs=1e-12)
    assert 0 < rows["connection sparsity"]["ours_same_definition"] < 1
    assert rows["footprint"]["equal"] is None and rows["footprint"]["neurobench"] > rows["footprint"]["ours"]
    # NeuroBench on the trained Brevitas model: footprint counts its float parameters; connection sparsity
    # fails inside NeuroBench (it descends into Brevitas' quantizer submodules and finds no weight layer)
    assert cmp["trained_model"]["Footprint"] > 0
    assert str(cmp["trained_model"]["ConnectionSparsity"]).startswith("ZeroDivisionError")
    assert cmp["accuracy"] == pytest.approx(float(np.mean(NumpySimulator(net).run(x, 10).predictions() == y)))


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_neurobench_view_and_counts_on_random_nets(seed):
    """Convs with padding, stride and pools, dense layers, both resets, saturating states, spike input
    (so the first layer's operations are ACs too): the view reproduces the reference spike for spike
    and every same-definition figure is equal."""
    rng = np.random.default_rng(seed)
    net = random_frozen_net(rng, n_layers=3, input_kind="spikes", min_channels=2)
    x = random_input(net, rng, 6)
    cmp = compare_with_neurobench(net, x, None, num_steps=7, batch_size=4)
    assert cmp["spikes_identical"]
    for r in cmp["rows"]:
        assert r["equal"] in (True, None), r
    assert _rows(cmp)["synaptic ops, effective MACs"]["neurobench"] == 0.0   # spike input: no MACs


def test_nonzero_fan_out_counts_each_nonzero_weight_a_spike_reaches():
    """Against a brute-force count on a padded, strided conv with zero weights."""
    import torch

    from qsnn_deploy import FrozenNet, InputSpec, LIFLayer

    rng = np.random.default_rng(9)
    weight = rng.integers(-3, 4, size=(3, 2, 3, 2)).astype(np.int8)
    weight[..., 0, 0] = 0
    layer = LIFLayer("c", "conv", weight, 3, np.full(3, 5), np.zeros(3, np.int64), np.full(3, 2048), stride=(2, 1),
                     padding=(1, 1), pool=(2, 2))
    net = FrozenNet(InputSpec((2, 9, 8), 1, False, 1.0, True), [layer], 4, {}).validate()
    in_shape = net.layer_shapes()[0][0]
    got = nonzero_fan_out(layer, in_shape)
    from qsnn_deploy.report.neurobench import deployed_weight

    w, stride = deployed_weight(layer)
    expected = np.zeros(int(np.prod(in_shape)), dtype=np.int64)
    for i in range(expected.size):   # one input spike: how many nonzero-weight synapses carry it
        x = torch.zeros((1,) + tuple(in_shape), dtype=torch.float64)
        x.view(-1)[i] = 1
        y = torch.nn.functional.conv2d(x, torch.as_tensor((w != 0).astype(np.float64)), stride=stride,
                                       padding=tuple(layer.synapse.padding))
        expected[i] = int(y.sum())
    assert np.array_equal(got, expected)
    assert 0 < connection_sparsity(net) < 1


def _workload_equals_neurobench(w: dict, rows: dict) -> None:
    """The report's NeuroBench-named figures (computed by our code, shown by default) equal NeuroBench's own."""
    # NeuroBench's ConnectionSparsity comes rounded to 4 decimals
    assert w["connection_sparsity"] == pytest.approx(rows["connection sparsity"]["neurobench"], abs=5e-5)
    assert w["activation_sparsity"] == pytest.approx(rows["activation sparsity"]["neurobench"], abs=1e-9)
    assert w["dense_ops"] == pytest.approx(rows["synaptic ops, dense"]["neurobench"], rel=1e-12)
    assert w["effective_acs"] == pytest.approx(rows["synaptic ops, effective ACs"]["neurobench"], rel=1e-9, abs=1e-9)
    assert w["effective_macs"] == pytest.approx(rows["synaptic ops, effective MACs"]["neurobench"], rel=1e-9, abs=1e-9)


def test_report_cli_neurobench(tmp_path, capsys):
    from qsnn_deploy.cli import report as report_cli

    net = random_frozen_net(np.random.default_rng(5), n_layers=2, input_kind="spikes", min_channels=2)
    qsnn = tmp_path / "n.qsnn"
    net.save(qsnn)
    out, js = tmp_path / "nb.json", tmp_path / "r.json"
    assert report_cli.main([str(qsnn), "--random", "-n", "8", "--steps", "6", "--neurobench", str(out),
                            "--json", str(js)]) == 0
    text = capsys.readouterr().out
    assert "NeuroBench" in text and "effective ACs" in text
    cmp = json.loads(out.read_text())          # --neurobench FILE: the comparison in its own file, as before
    assert cmp["spikes_identical"] is True and cmp["n_samples"] == 8
    assert all(r["equal"] in (True, None) for r in cmp["rows"])
    d = json.loads(js.read_text())             # ... and in the report's JSON
    validate(d)
    assert d["neurobench"]["rows"] == cmp["rows"] and d["neurobench"]["n_samples"] == 8
    _workload_equals_neurobench(d["workload"], _rows(cmp))   # spike input: the input's ops are ACs
    assert report_cli.main([str(qsnn), "--neurobench"]) == 2          # no inputs: refused, nothing run
    assert "--neurobench needs inputs" in capsys.readouterr().err


def test_report_cli_neurobench_in_json_and_html_on_the_shipped_model(tmp_path, capsys):
    """qsnn-report examples/mnist_int4_qsnn.pt --data <mnist> -n 20 --neurobench --json r.json --html r.html:
    the comparison is in the report's JSON (schema v4, validated) and in its HTML page, and still on the terminal."""
    from conftest import missing_data
    from qsnn_deploy.checkpoint import load_checkpoint
    from qsnn_deploy.cli import report as report_cli
    from qsnn_deploy.data import default_data_dir
    from test_report import check_page

    data = default_data_dir("mnist")
    if not (data / "t10k-images-idx3-ubyte.gz").is_file():
        missing_data(f"no MNIST at {data}")
    js, page = tmp_path / "r.json", tmp_path / "r.html"
    rc = report_cli.main([str(REPO / "examples" / "mnist_int4_qsnn.pt"), "--data", str(data), "-n", "20", "--neurobench",
                          "--json", str(js), "--html", str(page)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "NeuroBench" in out and "effective ACs" in out          # the terminal table is kept
    d = json.loads(js.read_text())
    validate(d)
    assert d["version"] == 4
    nb = d["neurobench"]
    default_steps = load_checkpoint(REPO / "examples" / "mnist_int4_qsnn.pt")["arch"]["num_steps"]  # 100 (issue 28)
    assert nb["n_samples"] == 20 and nb["num_steps"] == d["num_steps"] == default_steps and nb["spikes_identical"] is True
    assert nb["neurobench_version"].startswith("2.")
    rows = _rows(nb)
    assert set(rows) == {"footprint", "connection sparsity", "activation sparsity", "synaptic ops, dense",
                         "synaptic ops, effective ACs", "synaptic ops, effective MACs"}
    for name, r in rows.items():
        assert r["equal"] is (None if name == "footprint" else True), r
        assert r["note"]
    _workload_equals_neurobench(d["workload"], rows)   # graded pixels: the input's ops are MACs
    # "ours" is this report's own figure, from the same JSON
    tot = d["totals"]
    assert rows["footprint"]["ours"] == tot["memory_bytes"]
    assert rows["activation sparsity"]["ours"] == pytest.approx(1 - tot["firing_rate"], abs=1e-12)
    assert rows["synaptic ops, dense"]["ours"] == tot["dense_macs"] == rows["synaptic ops, dense"]["neurobench"]
    assert rows["synaptic ops, effective ACs"]["ours"] == pytest.approx(tot["sops_mean"])
    assert rows["synaptic ops, effective MACs"]["ours"] == pytest.approx(tot["input_ops_mean"])
    assert nb["accuracy"] == pytest.approx(d["data"]["accuracy"])
    assert nb["trained_model"]["Footprint"] > 0
    assert str(nb["trained_model"]["ConnectionSparsity"]).startswith("ZeroDivisionError")
    text = page.read_text()
    check_page(text, {"summary", "layers", "verify", "neurobench"})
    section = text[text.index('id="neurobench"'):]
    section = section[:section.index("</section>")]
    assert "<th class=\"l\">metric</th>" in section and "NeuroBench" in section and "why different" in section
    for name, r in rows.items():
        assert f'<td class="l">{r["metric"]}</td>' in section, name
    assert section.count("<td class=\"l\">yes</td>") == 5 and "not the same quantity" in section
    workload = text[text.index('id="workload"'):]
    workload = workload[:workload.index("</section>")]
    assert "run with --neurobench" not in workload   # NeuroBench's own column is filled beside ours


def test_neurobench_view_is_a_plain_torch_model():
    """What NeuroBench hooks: nn.Conv2d/nn.Linear (deployed kernels) and the integer LIF modules."""
    import torch.nn as nn

    from qsnn_deploy.report.neurobench import IntegerLIF

    net = random_frozen_net(np.random.default_rng(7), n_layers=2, input_kind="spikes")
    view = neurobench_view(net)
    kinds = [type(m) for m in view.modules() if isinstance(m, (nn.Conv2d, nn.Linear, IntegerLIF))]
    assert kinds.count(IntegerLIF) == len(net.layers)
    assert len(kinds) == 2 * len(net.layers)
