"""The report's verdicts, chip resources and NeuroBench-named workload, checked by hand on the tiny net
of test_report (conv 2×1×3×3 pad 1 + sum pool 2×2 -> dense 3×8, T = 4, 2 samples)."""
from __future__ import annotations

import json

import pytest
from test_report import T, tiny_data, tiny_net
from test_report_polish import _fake_verify

from qsnn_deploy.report import activity_from_result, compute_report, render_html, to_dict, validate, wilson_interval
from qsnn_deploy.report.neurobench import our_counts
from qsnn_deploy.verify import Mismatch


def _report(verify=None, target=None):
    net = tiny_net()
    x, y, res = tiny_data()
    return compute_report(net, activity_from_result(net, res, x, y, source="hand"), verify, model_name="tiny",
                          target=target)


def test_wilson_interval_known_values():
    # textbook values of the 95 % Wilson score interval
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson_interval(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    assert wilson_interval(1, 2) == pytest.approx((0.094531, 0.905469), abs=1e-6)
    lo, hi = wilson_interval(991, 1000)
    assert lo < 0.991 < hi and hi - lo == pytest.approx(0.0123, abs=5e-4)   # ≈ ±0.6 points, as the issue says


def test_verdicts_without_verify_or_target_say_not_checked():
    v = _report().verdicts
    assert v["bit_exact"]["status"] == "unknown" and "not checked" in v["bit_exact"]["headline"]
    assert v["fits"]["status"] == "unknown" and "--target" in v["fits"]["text"]
    assert v["latency"] == {"steps": T, "num_steps": T, "pipeline_delay_steps": 0, "text": v["latency"]["text"]}
    acc = v["accuracy"]   # labels [0, 2], one right
    assert acc["value"] == 0.5 and acc["n_samples"] == 2 and acc["correct"] == 1
    assert (acc["low"], acc["high"]) == pytest.approx(wilson_interval(1, 2))


def test_lava_target_latency_and_refusal_reason():
    v = _report(target="lava").verdicts
    assert v["latency"]["steps"] == T + 2 and v["latency"]["pipeline_delay_steps"] == 2   # two synapses
    assert v["fits"]["status"] == "fail" and v["fits"]["headline"] == "does NOT fit stock Loihi 2"
    assert "subtract reset" in v["fits"]["text"] and "per-channel threshold" in v["fits"]["text"]
    assert v["fits"]["route"] == "custom" and v["fits"]["text"].startswith("custom route: runs bit-exactly in Lava")


def test_a_mismatch_is_named_on_the_first_screen():
    vr = _fake_verify(["torch-cpu", "onnx", "nir"])   # nir's fc differs
    vr.backends[2].layers[1].first_mismatch = Mismatch("fc", 1, 3, [2], 0, 1)
    rep = _report(vr)
    d = json.loads(json.dumps(to_dict(rep)))
    validate(d)
    be = d["verdicts"]["bit_exact"]
    assert be["status"] == "fail" and be["headline"] == "NOT bit-exact"
    assert be["first_mismatch"] == {"backend": "nir", "layer": "fc", "sample": 1, "step": 3, "neuron": [2],
                                    "reference_spike": 0, "other_spike": 1}
    assert "first mismatch: NIR graph round trip, layer fc, sample 1, step 3, neuron (2,)" in be["text"]
    assert d["verify"]["backends"][2]["layers"][1]["first_mismatch"]["step"] == 3
    text = render_html(rep)
    assert "layer fc, sample 1, step 3, neuron (2,)" in text[:text.index("<table")]


def test_resources_by_hand():
    r = _report(target="lava").resources
    conv, fc = r["layers"]
    # conv1: 8 neurons, folded kernel 2×1×4×4 = 32 one-byte mantissas in its core; custom route: u, v, vth × 24 bits
    assert (conv["cores"], conv["neurons_per_core"], conv["synapse_bytes_per_core"], conv["state_bytes_per_core"]) == \
        (1, 8, 32, 8 * 3 * 3)
    assert (fc["cores"], fc["neurons_per_core"], fc["synapse_bytes_per_core"], fc["state_bytes_per_core"]) == (1, 3, 24, 27)
    assert conv["memory_bytes_per_core"] == 104 and conv["memory_limit_bytes"] == 192 * 1024
    rows = {(h["layer"], h["field"]): h for h in r["headroom"]}
    assert rows[("conv1", "weight mantissa")]["value"] == 6 and rows[("conv1", "weight mantissa")]["status"] == "ok"
    assert rows[("fc", "state width B_v")]["status"] == "ok" and rows[("conv1", "state width B_v")]["status"] == "ok"
    # conv1's worst case reaches 98 % of its 24-bit bound: near; fc never leaks (d = 4096): unbounded, over
    assert rows[("conv1", "worst-case |v| (any input in range)")]["status"] == "near"
    assert rows[("fc", "worst-case |v| (any input in range)")]["status"] == "over"
    assert not rows[("fc", "worst-case |v| (any input in range)")]["blocking"]
    assert rows[("conv1", "weight exponent")]["used_fraction"] is None
    assert rows[("input", "input message (graded spike)")]["value"] == 8
    html = render_html(_report(target="lava"))
    res = html[html.index('id="resources"'):html.index('id="workload"')]
    assert '<tr class="near">' in res and '<tr class="over">' in res and "near limit" in res and "OVER limit" in res


def test_workload_equals_the_neurobench_definition_counts():
    net = tiny_net()
    x, y, res = tiny_data()
    w = _report().workload
    c = our_counts(net, x, res.spikes, T)
    assert w["effective_acs"] == pytest.approx(c.sops_nonzero) and w["effective_macs"] == pytest.approx(c.input_ops_nonzero)
    assert w["dense_ops"] == c.dense and w["membrane_updates"] == c.neuron_steps == 44
    assert w["activation_sparsity"] == pytest.approx(1 - 5.5 / 44)
    # the conv weights are all nonzero (7 and -1), so the input's effective MACs equal its input ops; fc has two
    # zero weights (arange(24) % 15 - 7 is 0 at 7 and 22), so its effective ACs are fewer than its SOPs
    assert w["effective_macs"] == pytest.approx(_report().input_activity["ops_mean"])
    assert w["effective_acs"] < _report().totals["sops_mean"]


def test_resources_name_the_custom_process_of_each_layer():
    """Off the stock route a lif layer runs on QLIF and a cuba layer on QCUBA: the resources rows record the
    process (schema field ``layers[].process``) and the HTML table names it, instead of calling both QLIF."""
    import dataclasses

    import numpy as np

    from qsnn_deploy.frozen import FrozenNet
    from qsnn_deploy.neurons import CubaLIF

    net = tiny_net()
    fc = net.layers[1]
    cuba = CubaLIF(fc.neuron.threshold, fc.neuron.bias, np.full(3, 2048), fc.neuron.decay, reset="subtract",
                   frac_bits=6, state_bits=16, current_bits=16)
    net = FrozenNet(net.input, [net.layers[0], dataclasses.replace(fc, neuron=cuba)], num_steps=T).validate()
    x, y, res = tiny_data()
    rep = compute_report(net, activity_from_result(net, res, x, y, source="hand"), None, model_name="tiny-cuba",
                         target="lava")
    conv, dense = rep.resources["layers"]
    assert (conv["route"], conv["process"]) == ("custom", "QLIF")
    assert (dense["route"], dense["process"]) == ("custom", "QCUBA")
    validate(to_dict(rep))
    html = render_html(rep)
    res_html = html[html.index('id="resources"'):html.index('id="workload"')]
    assert '<td class="l">custom QCUBA</td>' in res_html and '<td class="l">custom QLIF</td>' in res_html
    # a report written before the field existed still validates and reads as before
    old = to_dict(rep)
    for layer in old["resources"]["layers"]:
        del layer["process"]
    validate(old)
