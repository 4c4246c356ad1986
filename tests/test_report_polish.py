"""qsnn-report polish: every backend that ran is in the agreement table, the energy model names its
chip generation and source and takes the user's own (validated) costs, plots keep their labels
inside the figure, spike rasters have integer ticks."""
from __future__ import annotations

import importlib
import json
import math

import numpy as np
import pytest
from test_report import T, _checkpoint, tiny_data, tiny_net

from qsnn_deploy.report import (LOIHI_2018, EnergyCostError, activity_from_result, compute_report,
                                energy_model_from_costs, render_html, to_dict, validate)
from qsnn_deploy.report import agreement
from qsnn_deploy.report.glossary import backend_label
from qsnn_deploy.report.render_table import energy_lines, verify_table
from qsnn_deploy.verify import BackendComparison, LayerComparison, VerifyReport
from qsnn_deploy.cli import report as report_cli

html_mod = importlib.import_module("qsnn_deploy.report.figures")


def _activity(net=None):
    net = net or tiny_net()
    x, y, res = tiny_data()
    return net, activity_from_result(net, res, x, y, source="hand")


def _fake_verify(names: list[str]) -> VerifyReport:
    vr = VerifyReport("tiny", 2, T, "numpy", 0.0, 0.5)
    for k, name in enumerate(names):
        layers = [LayerComparison("conv1", True, 0, 7, 7, 1.0), LayerComparison("fc", k != 2, 0 if k != 2 else 1, 4, 4,
                                                                                1.0 if k != 2 else 0.5)]
        vr.backends.append(BackendComparison(name, True, layers, 0.0, 1.0, 0.5, note=f"note {k}"))
    return vr


# ------------------------------------------------------------------------------ agreement: every backend
def test_agreement_table_lists_every_backend_that_ran():
    names = ["torch-model (cpu)", "torch-cpu", "onnx", "nir", "loihi", "lava", "lava vs loihi"]
    net, act = _activity()
    skipped = [{"name": "xylo", "reason": "xylo-sdk not installed"}]
    rep = compute_report(net, act, _fake_verify(names), model_name="tiny", skipped_backends=skipped)
    d = json.loads(json.dumps(to_dict(rep)))
    validate(d)
    assert [b["name"] for b in d["verify"]["backends"]] == names and d["verify"]["skipped"] == skipped
    text = render_html(rep)
    section = text[text.index('id="verify"'):text.index('id="glossary"')]
    for name in names + ["xylo"]:
        assert f'<td class="l">{name}</td>' in section, name
    assert "xylo-sdk not installed" in section and "Compared: " + ", ".join(names) in section
    from rich.console import Console

    con = Console(record=True, width=200)
    con.print(verify_table(rep))
    out = con.export_text()
    assert all(name in out for name in names) and "not run: xylo-sdk not installed" in out
    # the agreement plot has one bar series per backend
    fig = html_mod.figure_agreement(rep)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [backend_label(n) for n in names]
    html_mod._mpl().close(fig)


def test_auto_backends_run_the_core_ones_and_the_targets(monkeypatch):
    run, skipped = agreement.resolve_backends("auto")
    assert run + [s["name"] for s in skipped] == ["torch", "onnx", "nir"]
    monkeypatch.setitem(agreement.AVAILABILITY, "lava", lambda: "lava-nc not installed")
    run, skipped = agreement.resolve_backends("auto", "lava")
    assert "loihi" in run and "lava" not in run and skipped == [{"name": "lava", "reason": "lava-nc not installed"}]
    assert agreement.resolve_backends("torch, onnx,torch", "lava") == (["torch", "onnx"], [])
    assert agreement.resolve_backends("", "lava") == ([], [])


def test_report_cli_verifies_the_backends_asked_for(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path)
    js, page = tmp_path / "r.json", tmp_path / "r.html"
    rc = report_cli.main([str(ckpt), "--random", "-n", "4", "--steps", "3", "--verify-backends", "torch,onnx,nir",
                          "--json", str(js), "--html", str(page)])
    out = capsys.readouterr().out
    assert rc == 0
    names = ["torch-model (cpu)", "torch-cpu", "onnx", "nir"]
    d = json.loads(js.read_text())
    validate(d)
    assert [b["name"] for b in d["verify"]["backends"]] == names and d["verify"]["skipped"] == []
    section = page.read_text()[page.read_text().index('id="verify"'):]
    assert all(f'<td class="l">{n}</td>' in section for n in names)
    assert all(n in out for n in ("onnx", "nir"))


# ------------------------------------------------------------------------------ energy: chip, source, own costs
def test_default_energy_names_loihi_1_and_its_source():
    net, act = _activity()
    rep = compute_report(net, act)
    e = to_dict(rep)["energy"]
    assert e["model"] == "loihi1-2018" and "Loihi 1" in e["chip"] and "2018" in e["chip"]
    assert "Davies" in e["citation"] and "IEEE Micro" in e["citation"] and "Table 2" in e["citation"]
    assert e["user_costs"] is False and set(e["per_op_source"].values()) == {LOIHI_2018.citation}
    assert e["per_op_pj"] == {"synaptic_op": 23.6, "neuron_update": 81.0, "neuron_update_low": 52.0, "spike": 1.7}
    text = render_html(rep)
    energy = text[text.index('id="energy"'):text.index("</section>", text.index('id="energy"'))]
    assert "Intel Loihi 1 (first generation" in energy and "Davies" in energy and "23.6" in energy
    lines = "\n".join(energy_lines(rep))
    assert "Loihi 1" in lines and "Davies" in lines and "--energy-costs" in lines


def test_own_costs_change_the_estimate_and_are_recorded():
    net, act = _activity()
    base = compute_report(net, act).energy
    costs = {"synaptic_op": 10.0, "neuron_update": 40.0, "spike": 2.0, "chip": "Loihi 2 (our board)",
             "citation": "our measurement, 2025"}
    rep = compute_report(net, act, energy_model=costs)
    e = rep.energy
    # (10.5 SOPs + 32 input ops) × 10 pJ + 44 neuron updates × 40 pJ + 5.5 spikes × 2 pJ (no low end given: no range)
    assert e.total_nj == pytest.approx(((10.5 + 32) * 10 + 44 * 40 + 5.5 * 2) / 1000) and e.total_nj != base.total_nj
    assert e.total_low_nj == e.total_nj
    d = json.loads(json.dumps(to_dict(rep)))
    validate(d)
    assert d["energy"]["per_op_pj"] == {"synaptic_op": 10.0, "neuron_update": 40.0, "neuron_update_low": 40.0,
                                        "spike": 2.0}
    assert d["energy"]["chip"] == "Loihi 2 (our board)" and d["energy"]["user_costs"] is True
    assert set(d["energy"]["per_op_source"].values()) == {"our measurement, 2025"}
    assert "Loihi 2 (our board)" in render_html(rep) and "your own per-operation energies" in render_html(rep)
    # some costs only: the others stay Loihi 1's, and each figure says where it comes from
    part = compute_report(net, act, energy_model=LOIHI_2018.with_costs({"synaptic_op": 1.0}, source="costs.json"))
    src = part.energy.per_op_source
    assert part.energy.per_op_pj["synaptic_op"] == 1.0 and part.energy.per_op_pj["neuron_update"] == 81.0
    assert src["synaptic_op"] == "costs.json" and "Davies" in src["spike"] and part.energy.user_costs
    assert "Loihi 1" in part.energy.chip and "synaptic_op" in part.energy.chip
    validate(json.loads(json.dumps(to_dict(part))))


@pytest.mark.parametrize("costs, field", [
    ({"synaptic_op": -1.0}, "synaptic_op"),
    ({"spike": math.nan}, "spike"),
    ({"neuron_update": math.inf}, "neuron_update"),
    ({"spike": True}, "spike"),
    ({"spike": "1.7"}, "spike"),
    ({"sop": 3.0}, "sop"),
    ({"synaptic_op": 1.0, "chip": 7}, "chip"),
    ({"neuron_update": 10.0, "neuron_update_low": 20.0}, "neuron_update_low"),
    ({}, "synaptic_op"),
])
def test_bad_costs_are_refused_naming_the_field(costs, field):
    with pytest.raises(EnergyCostError, match=f"'{field}'" if costs else field):
        energy_model_from_costs(costs)
    net, act = _activity()
    with pytest.raises(EnergyCostError):
        compute_report(net, act, energy_model=costs)


def test_report_cli_takes_own_costs(tmp_path, capsys):
    path = tiny_net().save(tmp_path / "tiny.qsnn")
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"chip": "chip X", "synaptic_op": 3.0, "neuron_update": 9.0, "spike": 1.0}))
    js = tmp_path / "r.json"
    assert report_cli.main([str(path), "--random", "-n", "2", "--energy-costs", str(costs),
                            "--energy-pj-per-spike", "0.5", "--json", str(js)]) == 0
    assert "chip X" in capsys.readouterr().out
    e = json.loads(js.read_text())["energy"]
    assert e["per_op_pj"] == {"synaptic_op": 3.0, "neuron_update": 9.0, "neuron_update_low": 9.0, "spike": 0.5}
    assert e["per_op_source"]["synaptic_op"] == str(costs) and "--energy-pj-per-spike" in e["per_op_source"]["spike"]
    assert e["chip"] == "chip X" and e["user_costs"] is True


@pytest.mark.parametrize("args, needle", [
    (["--energy-pj-per-sop", "-1"], "--energy-pj-per-sop"),
    (["--energy-pj-per-spike", "nan"], "--energy-pj-per-spike"),
    (["--energy-costs", "{dir}/unknown.json"], "'sop'"),
    (["--energy-costs", "{dir}/nan.json"], "'spike'"),
    (["--energy-costs", "{dir}/list.json"], "expected an object"),
    (["--energy-costs", "{dir}/missing.json"], "missing.json"),
])
def test_report_cli_refuses_bad_costs(tmp_path, capsys, args, needle):
    path = tiny_net().save(tmp_path / "tiny.qsnn")
    (tmp_path / "unknown.json").write_text('{"sop": 3}')
    (tmp_path / "nan.json").write_text('{"spike": NaN}')
    (tmp_path / "list.json").write_text("[1, 2]")
    js = tmp_path / "r.json"
    argv = [str(path), "--random", "-n", "2", "--json", str(js)] + [a.format(dir=tmp_path) for a in args]
    assert report_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1, err
    assert not js.exists()


# ------------------------------------------------------------------------------ plots
def _texts(fig):
    """The texts matplotlib draws: tick labels only for ticks inside the view interval."""
    from matplotlib.text import Text

    tick_labels = set()
    drawn = []
    for ax in fig.axes:
        if not ax.axison:  # ax.axis("off"): its ticks are not drawn
            tick_labels.update(id(lb) for axis in (ax.xaxis, ax.yaxis)
                               for tick in axis.get_major_ticks() + axis.get_minor_ticks()
                               for lb in (tick.label1, tick.label2))
            continue
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                for lb in (tick.label1, tick.label2):
                    tick_labels.add(id(lb))
                    if lb.get_visible() and lb.get_text().strip() and lo <= tick.get_loc() <= hi:
                        drawn.append(lb)
    drawn += [t for t in fig.findobj(Text) if id(t) not in tick_labels and t.get_visible() and t.get_text().strip()]
    return drawn


def _check_inside(fig, what: str) -> None:
    """Every text (titles, axis and tick labels, bar labels, legends) lies inside the figure, and bar
    labels inside their axes (no collision with the title)."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    box = fig.bbox
    for t in _texts(fig):
        bb = t.get_window_extent(r)
        assert (bb.x0 >= box.x0 - 1 and bb.x1 <= box.x1 + 1 and bb.y0 >= box.y0 - 1 and bb.y1 <= box.y1 + 1), \
            f"{what}: text {t.get_text()!r} {bb} outside the figure {box}"
    for ax in fig.axes:
        ab = ax.get_window_extent(r)
        for t in ax.texts:  # bar labels
            if not t.get_text().strip():
                continue
            bb = t.get_window_extent(r)
            assert bb.y1 <= ab.y1 + 1 and bb.y0 >= ab.y0 - 1, f"{what}: bar label {t.get_text()!r} leaves its axes"
        labels = [lb for lb in ax.get_xticklabels() if lb.get_visible() and lb.get_text()]
        boxes = [lb.get_window_extent(r) for lb in labels]
        for a, b in zip(boxes, boxes[1:]):
            assert not a.overlaps(b), f"{what}: x tick labels overlap"


def _reports():
    net, act = _activity()
    yield "tiny", compute_report(net, act, _fake_verify(["torch-model (cpu)", "torch-cpu", "onnx", "nir", "loihi",
                                                          "lava", "lava vs loihi"]))
    long = tiny_net()
    for layer, name in zip(long.layers, ("first_convolution_with_a_long_name", "classifier_dense_layer_long")):
        layer.name = name
    x, y, res = tiny_data()
    res.spikes = dict(zip((lr.name for lr in long.layers), res.spikes.values()))
    res.states = dict(zip((lr.name for lr in long.layers), res.states.values()))
    res.saturations = dict(zip((lr.name for lr in long.layers), res.saturations.values()))
    yield "long names", compute_report(long, activity_from_result(long, res, x, y), _fake_verify(["torch-cpu"]))


@pytest.mark.parametrize("builder", ["figure_firing_rates", "figure_raster", "figure_states", "figure_memory",
                                     "figure_sops", "figure_agreement"])
def test_plots_keep_every_label_inside(builder):
    for what, rep in _reports():
        fig = getattr(html_mod, builder)(rep)
        try:
            assert fig.get_layout_engine() is not None, "no layout engine: labels may be clipped"
            _check_inside(fig, f"{builder} ({what})")
        finally:
            html_mod._mpl().close(fig)


def test_raster_ticks_are_integers():
    from matplotlib.ticker import MaxNLocator

    net, act = _activity()
    rep = compute_report(net, act)
    fig = html_mod.figure_raster(rep)
    try:
        fig.canvas.draw()
        rasters = [ax for ax in fig.axes if ax.get_ylabel().endswith("neuron")]
        assert len(rasters) == len(rep.layers)
        for ax in rasters:
            for axis, (lo, hi) in ((ax.yaxis, ax.get_ylim()), (ax.xaxis, ax.get_xlim())):
                loc = axis.get_major_locator()
                assert isinstance(loc, MaxNLocator) and loc._integer
                ticks = [t for t in axis.get_ticklocs() if lo <= t <= hi]
                assert ticks and all(float(t).is_integer() for t in ticks), ticks
    finally:
        html_mod._mpl().close(fig)
    # the 3-neuron fc layer of the tiny net: ticks 0, 1, 2 at most (no 0.5, 1.5 ...)
    assert rep.layers[-1].static.neurons == 3
