"""qsnn-report: every figure checked against values computed by hand for a tiny net; JSON schema;
HTML page; the qsnn-report and qsnn-export command lines."""
from __future__ import annotations

import base64
import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

from qsnn_deploy import FrozenNet, InputSpec, LIFLayer
from qsnn_deploy.checkpoint import save_checkpoint
from qsnn_deploy.cli import export as export_cli
from qsnn_deploy.cli import report as report_cli
from qsnn_deploy.models import build_model, mnist_arch
from qsnn_deploy.report import (FIT_CHECKS, LOIHI_2018, activity_from_result, collect_activity, compute_report,
                                memory_table, register_fit_check, render_html, report_short, synapse_geometry, to_dict,
                                validate)
from qsnn_deploy.report.metrics import state_histogram, state_histogram_counts
from qsnn_deploy.simulators import SimResult, create_backend

T = 4


# ------------------------------------------------------------------------------ the tiny net
def tiny_net() -> FrozenNet:
    """input 1×5×5 (8-bit) -> conv 2×1×3×3 (pad 1) + sum pool 2×2 -> 2×2×2 -> dense 3×8."""
    w_conv = np.stack([np.full((1, 3, 3), 7), np.full((1, 3, 3), -1)]).astype(np.int8)  # (2, 1, 3, 3)
    w_fc = (np.arange(24).reshape(3, 8) % 15 - 7).astype(np.int8)                       # values in -7..7
    conv = LIFLayer("conv1", "conv", w_conv, 4, threshold=np.array([100, 300]), bias=np.array([5, -7]),
                    decay=np.array([2048, 2048]), state_bits=24, frac_bits=6, stride=(1, 1), padding=(1, 1), pool=(2, 2))
    fc = LIFLayer("fc", "dense", w_fc, 4, threshold=np.array([64, 64, 64]), bias=np.zeros(3, dtype=np.int64),
                  decay=np.full(3, 4096), state_bits=16, frac_bits=6, flatten_input=True)
    return FrozenNet(InputSpec((1, 5, 5), bits=8), [conv, fc], num_steps=T).validate()


def tiny_data():
    """Input, labels and a hand-made SimResult (spikes, states, saturations) for 2 samples, T=4."""
    x = np.zeros((2, 1, 5, 5), dtype=np.uint8)
    x[0, 0, 0, 0], x[0, 0, 2, 2], x[0, 0, 4, 4] = 10, 255, 3   # fan-outs 2, 8, 2
    x[1, 0, 1, 3] = 1                                           # fan-out 4
    s1 = np.zeros((T, 2, 2, 2, 2), dtype=np.uint8)              # [T, N, C, H, W]
    for t, n, c, h, w in [(0, 0, 0, 0, 0), (1, 0, 0, 0, 0), (1, 0, 1, 1, 1), (2, 0, 0, 0, 1), (3, 0, 1, 0, 0),
                          (0, 1, 1, 1, 0), (3, 1, 1, 1, 0)]:
        s1[t, n, c, h, w] = 1
    s2 = np.zeros((T, 2, 3), dtype=np.uint8)
    for t, n, k in [(1, 0, 0), (2, 0, 0), (3, 0, 2), (3, 1, 1)]:
        s2[t, n, k] = 1
    v1 = np.zeros((T, 2, 2, 2, 2), dtype=np.int64)
    v1[0, 0, 0, 0, 0], v1[1, 1, 1, 1, 1], v1[2, 0, 1, 0, 0] = 1000, -5, 1
    v2 = np.full((T, 2, 3), 70, dtype=np.int64)
    v2[0, 0, 0] = -70
    res = SimResult({"conv1": s1, "fc": s2}, {"conv1": 3, "fc": 0}, {"conv1": v1, "fc": v2}, backend="hand")
    return x, np.array([0, 2]), res


@pytest.fixture
def tiny_report():
    net = tiny_net()
    x, y, res = tiny_data()
    return compute_report(net, activity_from_result(net, res, x, y, source="hand"), model_name="tiny")


# ------------------------------------------------------------------------------ static figures by hand
def test_static_figures_by_hand():
    rep = compute_report(tiny_net(), model_name="tiny")
    conv, fc = (lr.static for lr in rep.layers)
    # conv1: 2×1×3×3 int4 weights, pool folded into a 4×4 kernel, stride 2, padding 1; output 2×2×2
    assert conv.output_shape == [2, 2, 2] and conv.description == "conv 3×3 p1 + sumpool 2×2"
    assert (conv.weights, conv.weight_bytes) == (18, 9)                       # ceil(18 × 4 / 8)
    assert conv.loihi_weight_shape == [2, 1, 4, 4]
    assert (conv.loihi_weights, conv.loihi_weight_bytes, conv.loihi_weight_max_abs) == (32, 32, 28)  # 4 × 7
    assert conv.fan_in == 16                                                  # 1 channel × 4×4 folded kernel
    # per axis, input rows reached by the 2 output rows: [1, 2, 2, 1, 1] -> Σ = 7; 7 × 7 × C_in × C_out
    assert conv.synapses == 98
    assert (conv.neurons, conv.state_bits, conv.state_bytes) == (8, 24, 24)   # 8 × 24 / 8
    assert (conv.threshold_bits, conv.threshold_bytes) == (9, 3)              # 300 < 2^9; ceil(2 × 9 / 8)
    assert (conv.bias_bits, conv.bias_bytes) == (4, 1)                        # |−7| needs 4 signed bits; ceil(8/8)
    assert (conv.decay_bits, conv.decay_bytes) == (12, 3)                     # ceil(2 × 12 / 8)
    assert (conv.neuron_param_bytes, conv.neuron_params, conv.parameters) == (7, 6, 24)
    assert conv.memory_bytes == 9 + 24 + 7
    assert (conv.fan_out_mean, conv.fan_out_max) == (3.0, 3)                  # each conv1 neuron -> 3 fc synapses
    assert conv.current_bound == 63 * 4 * 255                                # Σ|W| of channel 0 × pool area × 255
    # fc: 3×8 int4
    assert (fc.weights, fc.weight_bytes, fc.loihi_weights, fc.loihi_weight_bytes) == (24, 12, 24, 24)
    assert (fc.fan_in, fc.synapses, fc.fan_out_mean, fc.fan_out_max) == (8, 24, 0.0, 0)
    assert (fc.neurons, fc.state_bytes) == (3, 6)                            # 3 × 16 / 8
    assert (fc.threshold_bits, fc.threshold_bytes) == (7, 3)                  # 64 < 2^7; ceil(21 / 8)
    assert (fc.bias_bits, fc.bias_bytes) == (0, 0)                            # all-zero bias: nothing stored
    assert (fc.decay_bits, fc.decay_bytes) == (12, 5)                         # ceil(36 / 8)
    assert (fc.parameters, fc.memory_bytes) == (33, 12 + 6 + 8)
    # input pixels: fan-out 2 × S[i, j], S = outer([1,2,2,1,1], [1,2,2,1,1])
    assert (rep.input.neurons, rep.input.fan_out_max, rep.input.fan_out_mean) == (25, 8, 98 / 25)
    # dense MACs per sample = synapses × T
    assert [lr.dense_macs for lr in rep.layers] == [98 * T, 24 * T]
    assert rep.totals == {"weights": 42, "parameters": 57, "synapses": 122, "weight_bytes": 21, "loihi_weight_bytes": 56,
                          "neurons": 11, "state_bytes": 30, "neuron_param_bytes": 15, "memory_bytes": 66,
                          "dense_macs": 488}
    assert rep.data is None and rep.energy is None and all(lr.activity is None for lr in rep.layers)


def test_fan_out_map_by_hand():
    net = tiny_net()
    g = synapse_geometry(net.layers[0], (1, 5, 5))
    c = np.array([1, 2, 2, 1, 1])
    assert np.array_equal(g.fan_out.reshape(5, 5), 2 * np.outer(c, c))
    folded = g.loihi_weight[0, 0]
    assert np.array_equal(folded, 7 * np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]]))


@pytest.mark.parametrize("geom", [dict(h=9, w=7, k=3, s=1, p=0, pool=None), dict(h=9, w=8, k=3, s=2, p=1, pool=None),
                                  dict(h=28, w=28, k=5, s=1, p=0, pool=2), dict(h=11, w=10, k=3, s=2, p=1, pool=2),
                                  dict(h=12, w=12, k=5, s=1, p=2, pool=3)])
def test_fan_out_matches_autograd_on_the_folded_footprint(geom):
    """Exact fan-out = gradient of Σ conv(x, footprint of ones) w.r.t. x, on the pool-folded conv."""
    from qsnn_deploy.intmath import fold_sum_pool

    c_in, c_out, k = 2, 3, geom["k"]
    pool = (geom["pool"],) * 2 if geom["pool"] else None
    layer = LIFLayer("c", "conv", np.ones((c_out, c_in, k, k), dtype=np.int8), 4, np.ones(c_out, dtype=np.int64),
                     np.zeros(c_out, dtype=np.int64), np.full(c_out, 2048), stride=(geom["s"],) * 2,
                     padding=(geom["p"],) * 2, pool=pool)
    in_shape = (c_in, geom["h"], geom["w"])
    g = synapse_geometry(layer, in_shape)
    fp = np.ones((1, 1, k, k))
    stride = (geom["s"],) * 2
    if pool:
        fp, stride = fold_sum_pool(fp, stride, pool)
    x = torch.zeros((1,) + in_shape, dtype=torch.float64, requires_grad=True)
    wt = torch.as_tensor((fp != 0).astype(np.float64)).expand(c_out, c_in, -1, -1)
    y = torch.nn.functional.conv2d(x, wt, stride=stride, padding=layer.synapse.padding)
    assert tuple(y.shape[1:]) == layer.output_shape(in_shape)
    y.sum().backward()
    assert np.array_equal(g.fan_out, x.grad.numpy().reshape(-1).astype(np.int64))
    assert g.synapses == int(x.grad.sum())


# ------------------------------------------------------------------------------ activity by hand
def test_activity_figures_by_hand(tiny_report):
    rep = tiny_report
    conv, fc = rep.layers
    a, b = conv.activity, fc.activity
    # spikes per sample: conv1 [5, 2], fc [3, 1]
    assert (a.spikes_mean, a.spikes_max, b.spikes_mean, b.spikes_max) == (3.5, 5, 2.0, 3)
    assert a.firing_rate == pytest.approx(3.5 / (8 * T)) and b.firing_rate == pytest.approx(2 / (3 * T))
    assert (a.silent_neurons, b.silent_neurons) == (3, 0)
    # conv1 is fed pixels (graded, not spikes): no SOPs; its input ops: sample 0 (2 + 8 + 2) × T, sample 1 4 × T
    assert a.sops_mean is None and a.sops_max is None and a.sop_per_mac is None
    assert rep.input_activity == {"nonzero_mean": 8.0, "ops_mean": 32.0, "ops_max": 48}
    # fc SOPs = conv1 spikes × fan-out 3: [15, 6]
    assert (b.sops_mean, b.sops_max) == (10.5, 15)
    assert b.sop_per_mac == pytest.approx(10.5 / (24 * T))
    assert (a.saturation_events, b.saturation_events) == (3, 0)
    # states: conv1 -5..1000 (11 signed bits), fc -70..70 (8 bits)
    assert (a.state_min, a.state_max, a.state_bits_used) == (-5, 1000, 11)
    assert (b.state_min, b.state_max, b.state_bits_used) == (-70, 70, 8)
    h = a.state_histogram
    assert h["edges"][0] == -(2**23 - 1) and h["edges"][-1] == 2**23 and len(h["edges"]) == len(h["counts"]) + 1
    assert sum(h["counts"]) == T * 2 * 8
    assert _count_at(h, 0) == 61 and _count_at(h, 1000) == 1 and _count_at(h, 1) == 1 and _count_at(h, -5) == 1
    assert _count_at(fc.activity.state_histogram, 70) == T * 2 * 3 - 1 and _count_at(fc.activity.state_histogram, -70) == 1
    t = rep.totals
    assert (t["spikes_mean"], t["spikes_max"], t["sops_mean"], t["sops_max"]) == (5.5, 8, 10.5, 15)
    assert t["firing_rate"] == pytest.approx(5.5 / (11 * T)) and t["saturation_events"] == 3
    assert t["input_ops_mean"] == 32.0
    assert rep.data == {"source": "hand", "n_samples": 2, "num_steps": T, "backend": "hand", "accuracy": 0.5}
    assert conv.raster.shape == (T, 8) and int(conv.raster.sum()) == 5 and int(fc.raster.sum()) == 3
    assert np.array_equal(conv.neuron_rates.reshape(2, 2, 2) * 2 * T,
                          np.array([[[2, 1], [0, 0]], [[1, 0], [2, 1]]]))


def test_energy_estimate_by_hand(tiny_report):
    e = tiny_report.energy
    assert LOIHI_2018.sop_pj == 23.6 and LOIHI_2018.neuron_update_pj == 81.0
    assert LOIHI_2018.neuron_update_low_pj == 52.0 and LOIHI_2018.spike_pj == 1.7
    # 10.5 SOPs × 23.6 pJ + 32 input ops × 23.6 pJ + (8 + 3) neurons × 4 steps × 81 pJ + 5.5 spikes × 1.7 pJ;
    # input ops: sample 0 pixels of fan-out 2 + 8 + 2, sample 1 one of fan-out 4, × T = 4 -> (48 + 16) / 2
    assert e.counts == {"sops": 10.5, "input_ops": 32.0, "neuron_updates": 44.0, "spikes": 5.5}
    assert e.synaptic_nj == pytest.approx(0.2478) and e.input_nj == pytest.approx(0.7552)
    assert e.neuron_nj == pytest.approx(3.564) and e.neuron_low_nj == pytest.approx(2.288)
    assert e.spike_nj == pytest.approx(0.00935)
    assert e.total_nj == pytest.approx(4.57635) and e.total_low_nj == pytest.approx(3.30035)
    assert e.static_nj is None and any("static" in u for u in e.unpriced)
    assert not any("not spikes" in u for u in e.unpriced) and "Davies" in e.citation and "estimate" in e.note


def test_spiking_input_counts_sops_in_the_first_layer():
    net = tiny_net()
    net.input = InputSpec((1, 5, 5), bits=1, scale=1.0)
    x, y, res = tiny_data()
    x = (x > 0).astype(np.uint8)
    rep = compute_report(net, activity_from_result(net, res, x, y))
    assert rep.layers[0].activity.sops_mean == (12 * T + 4 * T) / 2       # spikes × fan-out, as SOPs now
    assert rep.input_activity["ops_mean"] is None
    assert not any("not spikes" in u for u in rep.energy.unpriced)


def test_batches_accumulate_to_the_same_report():
    """collect_activity in batches of 2 == one SimResult of all samples (simulated tiny net)."""
    net = tiny_net()
    net.layers[0].neuron.threshold = np.array([20000, 30000])
    x = np.random.default_rng(1).integers(0, 256, size=(5, 1, 5, 5)).astype(np.uint8)
    y = np.arange(5) % 3
    full = create_backend("numpy", net).run(x, T, record_states=True)
    one = compute_report(net, activity_from_result(net, full, x, y, raster_sample=3))
    parts = compute_report(net, collect_activity(net, x, y, batch_size=2, raster_sample=3))
    d1, d2 = to_dict(one), to_dict(parts)
    d1["data"]["backend"] = d2["data"]["backend"] = ""
    assert d1 == d2
    assert np.array_equal(one.layers[0].raster, parts.layers[0].raster)
    assert one.totals["spikes_mean"] > 0
    # SOPs = Σ spikes × fan-out, brute force
    fo = synapse_geometry(net.layers[1], (8,)).fan_out
    s = full.spikes["conv1"].reshape(T, 5, -1)
    assert one.layers[1].activity.sops_mean == pytest.approx(np.mean([(s[:, n] * fo).sum() for n in range(5)]))


def _count_at(hist, v: int) -> int:
    """Count of the bin [a, b) holding integer v."""
    e = hist["edges"]
    i = next(i for i in range(len(e) - 1) if e[i] <= v < e[i + 1])
    return hist["counts"][i]


def test_state_histogram_bins():
    values = np.array([0, 0, -1, 1, 2, 3, 5, 6, 100, 127, -127, -2, -3])
    edges, counts = state_histogram(state_histogram_counts(values, 8), 8)
    assert edges[0] == -127 and edges[-1] == 128 and all(a < b for a, b in zip(edges, edges[1:]))
    assert edges[edges.index(0):edges.index(0) + 9] == [0, 1, 2, 3, 4, 5, 6, 7, 8]   # no bin without an integer
    assert edges[edges.index(-1) - 1:edges.index(0) + 1] == [-2, -1, 0]
    hist = {"edges": edges, "counts": counts}
    assert sum(counts) == len(values)
    for v in (0, -1, 1, 2, 3, 5, 6, -2, -3, 127, -127):   # each alone in its bin among these values
        assert _count_at(hist, v) == int(np.count_nonzero(values == v)), v
    assert _count_at(hist, 100) == 1
    # a bin [a, b) counts exactly the values in a..b-1: the same as numpy's histogram on these edges
    assert counts == np.histogram(values, bins=np.array(edges))[0].tolist()


# ------------------------------------------------------------------------------ JSON schema
def test_json_validates_and_broken_json_does_not(tiny_report):
    d = json.loads(json.dumps(to_dict(tiny_report)))
    validate(d)
    assert d["schema"] == "qsnn-report" and d["version"] == 4 and d["energy"]["estimate"] is True
    assert d["neurobench"] is None      # only with qsnn-report --neurobench (tests/test_neurobench.py)
    validate(to_dict(compute_report(tiny_net())))  # static form
    breakages = [
        lambda j: j.pop("layers"),
        lambda j: j["layers"][0].__setitem__("weight_bytes", -1),
        lambda j: j["layers"][0].__setitem__("weight_bytes", "9"),
        lambda j: j.__setitem__("version", 1),
        lambda j: j["energy"].__setitem__("estimate", False),
        lambda j: j["layers"][1]["activity"].__setitem__("firing_rate", 1.5),
        lambda j: j["layers"][0].__setitem__("surprise", 1),
        lambda j: j.__setitem__("data", None),  # no data but activity and energy: inconsistent
        lambda j: j.__setitem__("version", 2),  # v3 added "neurobench"
        lambda j: j.pop("neurobench"),
        lambda j: j.__setitem__("neurobench", {"rows": []}),
        lambda j: j.__setitem__("version", 3),  # v4 added verdicts, resources, workload, energy input/static
        lambda j: j.pop("verdicts"),
        lambda j: j["verdicts"]["bit_exact"].__setitem__("status", "maybe"),
        lambda j: j["workload"].__setitem__("activation_sparsity", 1.2),
        lambda j: j["energy"]["counts"].pop("input_ops"),
        lambda j: j["layers"][0].__setitem__("fit", None) or j.__setitem__("resources", {"layers": []}),
    ]
    for i, brk in enumerate(breakages):
        bad = copy.deepcopy(d)
        brk(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate(bad)
            pytest.fail(f"breakage {i} validated")


# ------------------------------------------------------------------------------ target hook
def test_target_without_fit_check_is_a_note_not_columns():
    rep = compute_report(tiny_net(), target="speck")
    assert rep.target["available"] is False and "no fit check" in rep.target["note"]
    assert all(lr.fit is None for lr in rep.layers)
    validate(to_dict(rep))


def test_registered_fit_check_adds_its_rows():
    register_fit_check("toychip", lambda net, rep: {"fits": False, "summary": "fc too wide",
                                                    "layers": {"conv1": {"fits": True, "detail": "1 core"},
                                                               "fc": {"fits": False, "detail": "fan-in 8 > 4"}}})
    try:
        rep = compute_report(tiny_net(), target="toychip")
    finally:
        FIT_CHECKS.unregister("toychip")
    assert rep.target["available"] and rep.target["fits"] is False
    assert rep.layers[1].fit == {"fits": False, "detail": "fan-in 8 > 4"}
    validate(to_dict(rep))
    from rich.console import Console

    con = Console(record=True, width=120)
    con.print(memory_table(rep))
    assert "fits toychip" in con.export_text()


# ------------------------------------------------------------------------------ HTML
class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.figs, self.ids, self.refs, self.tags = [], [], set(), [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            assert a["id"] not in self.ids, f"duplicate id {a['id']}"
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a)
        if tag == "svg" and a.get("class") == "fig":
            self.figs.append(a)
        if tag == "image":  # raster parts inside a figure (spike dots): embedded PNG
            assert a["href"].startswith("data:image/png;base64,")
            assert base64.b64decode(a["href"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        for key in ("src", "href", "srcset", "data", "action", "poster", "xlink:href"):
            if key in a:
                self.refs.append(a[key])


def check_page(text: str, sections: set[str]) -> _Page:
    """The page is self-contained: every plot an inline SVG with a label, every reference a data: URI or
    an in-page anchor (that exists), no script, no external URL, unique ids."""
    page = _Page()
    page.feed(text)
    assert sections <= page.ids, f"missing sections {sections - page.ids}"
    assert page.figs, "no plots"
    assert not page.imgs, "plots are inline SVG"
    assert all(f.get("aria-label") and f.get("viewbox") for f in page.figs)
    assert all(r.startswith("data:") or r.startswith("#") for r in page.refs), page.refs
    assert all(r[1:] in page.ids for r in page.refs if r.startswith("#")), "dangling in-page links"
    assert "script" not in page.tags and "iframe" not in page.tags
    assert "http://" not in text and "https://" not in text
    assert all(u.startswith("url(#") for u in re.findall(r"url\([^)]*\)", text)), "url() to outside the page"
    assert "docs/report.md" not in text, "a repository path does not resolve from the page"
    return page


def test_html_page_is_self_contained(tiny_report):
    text = render_html(tiny_report)
    page = check_page(text, {"verdicts", "summary", "workload", "layers", "energy", "firing-rate", "raster", "states",
                             "memory", "sops", "verify", "glossary"})
    assert len(page.figs) == 5
    assert "ESTIMATE" in text and "No trained model was given" in text
    assert "conv1: 3 (neuron, step) events clipped to the 24-bit state bound" in text


def test_static_html_has_memory_plot_only():
    text = render_html(compute_report(tiny_net()))
    page = check_page(text, {"verdicts", "summary", "layers", "memory", "verify"})
    assert len(page.figs) == 1 and "energy" not in page.ids and "workload" not in page.ids


# ------------------------------------------------------------------------------ CLIs
def _checkpoint(tmp_path: Path, steps: int = 4) -> Path:
    torch.manual_seed(3)
    arch = mnist_arch(num_steps=steps, deploy_faithful=True)
    model = build_model(arch)
    for bn in (model.bn1, model.bn2):
        bn.bias.data.uniform_(0.3, 1.0)
    model.fc.weight.data.normal_(0.0, 0.3)
    return save_checkpoint(tmp_path / "tiny.pt", model.eval(), arch)


def test_report_cli_on_real_mnist(tmp_path, capsys):
    from qsnn_deploy.data import default_data_dir

    data = default_data_dir("mnist")
    if not data.exists():
        from conftest import missing_data
        missing_data("../shared/data/mnist not present")
    ckpt = _checkpoint(tmp_path)
    js, page = tmp_path / "r.json", tmp_path / "r.html"
    rc = report_cli.main([str(ckpt), "--data", str(data), "-n", "6", "--steps", "3", "--batch-size", "4",
                          "--json", str(js), "--html", str(page), "--target", "lava"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "memory per layer" in out and "activity per sample" in out and "ESTIMATE" in out
    d = json.loads(js.read_text())
    validate(d)
    assert d["data"]["n_samples"] == 6 and d["num_steps"] == 3
    assert [layer["name"] for layer in d["layers"]] == ["conv1", "conv2", "fc"]
    # --verify-backends auto: torch, onnx, nir and, for --target lava, loihi and lava; each ran or is listed as not run
    ran = [b["name"] for b in d["verify"]["backends"]]
    assert d["verify"]["all_exact"] and ran[:4] == ["torch-model (cpu)", "torch-cpu", "onnx", "nir"]
    assert {"loihi", "lava"} <= set(ran) | {s["name"] for s in d["verify"]["skipped"]}
    assert d["target"]["name"] == "lava" and d["target"]["available"] is True
    # tiny_net has subtract reset and per-channel thresholds: Lava runs it only with the custom QLIF model
    assert d["target"]["fits"] is False and "custom QLIF" in d["target"]["summary"]
    assert all("subtract reset" in layer["fit"]["detail"] for layer in d["layers"])
    assert d["layers"][0]["loihi"]["weight_shape"] == [16, 1, 6, 6]
    text = page.read_text()
    page = check_page(text, {"summary", "layers", "energy", "firing-rate", "raster", "states", "memory", "sops", "verify",
                             "target"})
    assert "neurobench" not in page.ids and d["neurobench"] is None   # only with --neurobench
    assert "No trained model was given" not in text
    verify_html = text[text.index('id="verify"'):]
    assert all(f'<td class="l">{name}</td>' in verify_html for name in ran), ran


def test_report_cli_folds_verify_reference_into_the_activity(tmp_path):
    """With a trained model the report simulates the reference once (inside verify, states recorded,
    batch by batch); its activity figures equal those of the separate pass it makes with --no-verify."""
    ckpt = _checkpoint(tmp_path)
    outs = {}
    for mode in ("verify", "no-verify"):
        js = tmp_path / f"{mode}.json"
        flags = ["--verify-backends", "torch"] if mode == "verify" else ["--no-verify"]
        rc = report_cli.main([str(ckpt), "--random", "-n", "7", "--steps", "3", "--batch-size", "3",
                              "--raster-sample", "5", "--json", str(js), *flags])
        assert rc == 0
        outs[mode] = json.loads(js.read_text())
    folded, separate = outs["verify"], outs["no-verify"]
    assert folded["verify"]["all_exact"] and separate["verify"] is None
    assert folded["data"]["n_samples"] == 7
    assert folded["layers"][0]["activity"]["spikes_mean"] > 0   # the comparison below is not of empty figures
    for key in ("data", "layers", "totals", "energy", "input", "workload", "resources"):
        assert folded[key] == separate[key], key


def test_report_cli_on_a_qsnn_file_without_model(tmp_path, capsys):
    net = tiny_net()
    path = net.save(tmp_path / "tiny.qsnn")
    js = tmp_path / "r.json"
    assert report_cli.main([str(path), "--random", "-n", "3", "--json", str(js), "--html", str(tmp_path / "r.html")]) == 0
    assert "no trained model was given" in capsys.readouterr().out
    d = json.loads(js.read_text())
    validate(d)
    assert d["verify"] is None and d["data"]["n_samples"] == 3 and d["num_steps"] == T
    assert "No trained model was given" in (tmp_path / "r.html").read_text()


def test_report_cli_static_and_bad_input(tmp_path, capsys):
    path = tiny_net().save(tmp_path / "tiny.qsnn")
    js = tmp_path / "s.json"
    assert report_cli.main([str(path), "--json", str(js)]) == 0
    d = json.loads(js.read_text())
    validate(d)
    assert d["data"] is None and d["energy"] is None
    assert report_cli.main([str(path), "--random", "-n", "2", "--raster-sample", "5"]) == 2
    assert "raster-sample" in capsys.readouterr().err
    assert report_cli.main([str(tmp_path / "missing.pt")]) == 2


def test_export_prints_the_short_report(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path)
    assert export_cli.main([str(ckpt), "--target", "numpy", "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "memory per layer" in out and "Loihi weights" in out and "fan-out" in out and "max |J|" in out


def test_report_short_is_static(capsys):
    from rich.console import Console

    con = Console(record=True, width=100)
    con.print(report_short(tiny_net(), "tiny"))
    text = con.export_text()
    assert "tiny" in text and "Loihi weights" in text and "conv3×3 p1 pool2×2" in text
    assert "spikes" not in text
