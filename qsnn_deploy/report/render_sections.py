"""Sections of the HTML report below the first screen: chip resources, NeuroBench-named workload,
energy, agreement, NeuroBench's own metrics, the target's per-layer fit (see :mod:`.render_html`)."""
from __future__ import annotations

from typing import Any

from .figures import fig_agreement
from .glossary import backend_label, term
from .metrics import EnergyEstimate, Report, human_bytes, human_energy, span
from .render_util import e, n, pct, table

_STATUS = {"ok": "ok", "near": "near limit", "over": "OVER limit"}


def _route_label(layer: dict[str, Any]) -> str:
    """``stock LIF`` or ``custom <process>`` (QLIF, QCUBA); reports written before ``process`` was recorded
    carried only QLIF layers off the stock route."""
    if layer["route"] == "stock":
        return "stock LIF"
    return f"custom {layer.get('process', 'QLIF')}"


def resources_html(r: dict[str, Any]) -> str:
    """Per-layer, per-core resources of the target chip and the headroom of every fitted field."""
    rows, classes = [], []
    for lr in r["layers"]:
        rows.append([lr["name"], _route_label(lr), n(lr["cores"]),
                     f"{lr['cores_by']}: {lr['cores_rule']}",
                     f"{n(lr['neurons_per_core'])} of {n(lr['neurons_limit'])}",
                     f"{n(lr['synapse_bytes_per_core'])}\u00a0B", f"{n(lr['state_bytes_per_core'])}\u00a0B ({', '.join(lr['state_vars'])})",
                     f"{n(lr['memory_bytes_per_core'])} B of {n(lr['memory_limit_bytes'])} B "
                     f"({pct(lr['memory_bytes_per_core'] / lr['memory_limit_bytes'])})", _STATUS[lr["status"]]])
        classes.append(lr["status"] if lr["status"] != "ok" else "")
    hrows, hcls = [], []
    for h in r["headroom"]:
        word = _STATUS[h["status"]] + ("" if h["blocking"] or h["status"] == "ok" else " (not blocking)")
        hrows.append([h["layer"], h["field"], h["shown"], h["limit_shown"], pct(h["used_fraction"]) if h["used_fraction"] is not None else "–", word, h["note"]])
        hcls.append(h["status"] if h["status"] != "ok" else "")
    near = [h for h in r["headroom"] if h["status"] != "ok"]
    warn = ""
    if near:
        warn = ('<p class="warn">Near or over a limit: ' + "; ".join(
            f"{e(h['layer'])} {e(h['field'])} {e(h['shown'])} of {e(h['limit_shown'])} ({_STATUS[h['status']]})"
            for h in near) + ".</p>")
    lim = r["core_limits"]
    return (f'<section id="resources"><h2>Chip resources: {e(r["chip"])}</h2>'
            f'<p>{n(r["cores"])} of {n(r["cores_per_chip"])} {term("core", "cores")}. Each core holds at most '
            f'{n(lim["neurons"])} neurons, {n(lim["synapses"])} synapses and {human_bytes(lim["memory_bytes"])} of memory '
            f'shared by synapses (8-bit weight mantissas) and neuron states ({term("u")}, {term("v")}: '
            f'{lim["state_var_bits"]} bits each). How the cores are counted: {e(r["rule"])}.</p>'
            + table(["layer", "neuron", "cores", "cores from", "neurons / core", "synapse memory / core",
                     "state memory / core", "memory / core", "status"], rows, left=2, also_left=(3, 8),
                    row_classes=classes, wrap=(3,))
            + f'<h3>{term("headroom", "Headroom")} of every field the fit check computes</h3>'
            + table(["layer", "field", "value", "limit", "of limit", "status", "note"], hrows, left=2,
                    also_left=(5, 6), row_classes=hcls)
            + warn + f'<p class="note">Sources: {e(r["source"])}. Capacity estimates, not a placement.</p></section>')


def workload_html(report: Report) -> str:
    """The NeuroBench-named workload, computed by our code, with NeuroBench's own figures when it ran."""
    w = report.workload
    t = report.totals
    ia = report.input_activity or {}
    nb = {row["metric"].split(" (")[0]: row for row in (report.neurobench or {}).get("rows", [])}

    def theirs(key: str) -> str:
        row = nb.get(key)
        return n(row["neurobench"]) if row else "– (run with --neurobench)"
    rows = [
        ["connection sparsity", f"{w['connection_sparsity']:.4f}", theirs("connection sparsity"),
         "zero weights / all weights of the deployed (pool-folded) kernels"],
        ["activation sparsity", f"{w['activation_sparsity']:.4f}", theirs("activation sparsity"),
         "1 − spikes / (neurons × T) over all layers, steps and samples"],
        ["synaptic ops: effective ACs / sample", n(w["effective_acs"]),
         theirs("synaptic ops, effective ACs"),
         "each spike × the nonzero-weight synapses it reaches (binary input: accumulate)"],
        ["synaptic ops: effective MACs / sample", n(w["effective_macs"]),
         theirs("synaptic ops, effective MACs"),
         "each nonzero graded input (8-bit pixels) × the nonzero-weight synapses it reaches (multiply-accumulate)"],
        ["synaptic ops: dense / sample", n(w["dense_ops"]), theirs("synaptic ops, dense"),
         "every synapse every step: synapses × T"],
        ["membrane updates / sample", n(w["membrane_updates"]), "– (not cross-checked)",
         "neurons × T: every neuron's state is updated every step"],
    ]
    ours = (f"Our own SOPs count every synapse a spike reaches, zero weights included: {n(t.get('sops_mean'))} / sample"
            + (f", and input ops {n(ia.get('ops_mean'))} / sample" if ia.get("ops_mean") is not None else "") + ".")
    return ('<section id="workload"><h2>Workload in ' + term("NeuroBench") + "'s terms</h2>"
            "<p>Computed by qsnn-deploy from the reference's integer spikes and the deployed kernels, under NeuroBench's "
            "metric names; <code>qsnn-report --neurobench</code> runs NeuroBench's own code on the same net and inputs "
            "and fills its column.</p>"
            + table(["metric", "ours", "NeuroBench's own", "definition"], rows, left=1, also_left=(3,), wrap=(3,))
            + f'<p class="note">{e(ours)} {term("AC", "ACs")}, {term("MAC", "MACs")}, {term("SOP", "SOPs")}: see the '
            f'glossary.</p></section>')


def energy_html(en: EnergyEstimate) -> str:
    """The energy estimate: the total, its formula with every count and cost, the per-op table and sources."""
    p, c, src = en.per_op_pj, en.counts, en.per_op_source
    cost_rows = [["synaptic op (E_sop)", f"{p['synaptic_op']:g}", src["synaptic_op"]],
                 ["neuron update (E_neuron)", f"{p['neuron_update']:g}", src["neuron_update"]],
                 ["neuron update, low end of the range", f"{p['neuron_update_low']:g}", src["neuron_update_low"]],
                 ["spike sent (E_spike)", f"{p['spike']:g}", src["spike"]]]
    who = "your own per-operation energies" if en.user_costs else "published per-operation energies"
    inp = (f" + {n(c['input_ops'])} input ops × {p['synaptic_op']:g} {term('pJ')} ({human_energy(en.input_nj)})"
           if c.get("input_ops") else "")
    return (f'<section id="energy"><h2>Energy per inference (estimate)</h2><div class="estimate">'
            f'<p><b>ESTIMATE: {human_energy(en.total_nj)} per inference, dynamic</b> (range '
            f'{span(en.total_low_nj, en.total_nj, human_energy)}), from {who} of <b>{e(en.chip)}</b>; not a measurement. '
            f'Static (leakage) energy: not given by the source, not included.</p>'
            f'<p>E = SOPs × E<sub>sop</sub> + input ops × E<sub>sop</sub> + neuron updates × E<sub>neuron</sub> + spikes × '
            f'E<sub>spike</sub><br>= {n(c["sops"])} SOPs × {p["synaptic_op"]:g} pJ ({human_energy(en.synaptic_nj)}){inp} + '
            f'{n(c["neuron_updates"])} × {span(p["neuron_update_low"], p["neuron_update"], "{:g}".format)} pJ '
            f'({span(en.neuron_low_nj, en.neuron_nj, human_energy)}) + {n(c["spikes"])} × {p["spike"]:g} pJ '
            f'({human_energy(en.spike_nj)})</p>'
            + table(["operation", "energy (pJ)", "source"], cost_rows, left=1, also_left=(2,), wrap=(2,))
            + f'<p class="note">The graded input\'s operations (8-bit values sent as graded spikes) are priced as synaptic '
            f'ops: a lower bound, as a graded op multiplies. Source: {e(en.citation)}. {e(en.note)}.</p>'
            f'<p class="note">Not priced: {e("; ".join(en.unpriced))}. Your own costs: '
            f'<code>qsnn-report --energy-costs FILE.json</code> or <code>--energy-pj-per-sop X</code>.</p></div></section>')


def verify_html(report: Report) -> str:
    """The agreement check: one line when every backend is bit-exact (table folded), the first mismatch and the
    table and plot when not."""
    v = report.verify
    out = ['<section id="verify"><h2>Agreement: trained model and deployed backends</h2>']
    if v is None:
        out.append('<p class="note">No trained model was given (or verification was skipped), so there is no agreement '
                   'to show: a .qsnn file holds only the frozen integer network.</p></section>')
        return "".join(out)
    rows = []
    for b in v["backends"]:
        for i, layer in enumerate(b["layers"]):
            mm = layer.get("first_mismatch")
            state = "bit-exact" if layer["bit_exact"] else f"{n(layer['mismatched_values'])} spike values differ"
            if mm:
                state += f"; first: sample {mm['sample']}, step {mm['step']}, neuron {tuple(mm['neuron'])}"
            rows.append([b["name"] if i == 0 else "", layer["name"], pct(layer["spike_count_agreement"]), state,
                         pct(b["prediction_agreement"]) if i == 0 else "",
                         (pct(b["accuracy"]) if b["accuracy"] is not None else "–") if i == 0 else "",
                         (backend_label(b["name"]) + (f". {b['note']}" if b["note"] else "")) if i == 0 else ""])
    for sk in v.get("skipped") or ():
        rows.append([sk["name"], "", "", "not run", "", "", f"{backend_label(sk['name'])}: {sk['reason']}"])
    tbl = table(["backend", "layer", "spike counts equal", "spike trains", "predictions equal", "accuracy", "what it is"],
                rows, left=2, also_left=(3, 6), wrap=(6,))
    be = (report.verdicts or {}).get("bit_exact") or {}
    compared = ", ".join(b["name"] for b in v["backends"]) or "none"
    if v["all_exact"]:
        k = sum(1 for b in v["backends"] if b["exact_required"])
        out.append(f'<p class="ok">All {k} backends bit-exact on {n(v["n_samples"])} samples × {n(v["num_steps"])} steps '
                   f'(every layer, neuron and step, against the {e(v["reference"])} reference). Compared: {e(compared)}.</p>')
        out.append(f"<details><summary>per-backend, per-layer table</summary>{tbl}</details>")
    else:
        out.append(f'<p class="bad">NOT bit-exact. {e(be.get("text", ""))}. Compared: {e(compared)}.</p>')
        out.append(tbl)
        img = fig_agreement(report)
        if img:
            out.append(f"<figure>{img}</figure>")
    if v.get("skipped"):
        out.append('<p class="note">Not run: ' + "; ".join(f"{e(sk['name'])} ({e(sk['reason'])})"
                                                          for sk in v["skipped"]) + ".</p>")
    out.append("</section>")
    return "".join(out)


def neurobench_html(nb: dict) -> str:
    """The ``neurobench`` section: NeuroBench's metrics next to ours (one row per metric)."""
    rows = [[r["metric"], n(r["ours"]), n(r["neurobench"]), n(r["ours_same_definition"]),
             "– (not the same quantity)" if r["equal"] is None else ("yes" if r["equal"] else "NO"), r["note"]]
            for r in nb["rows"]]
    same = '<span class="ok">yes</span>' if nb["spikes_identical"] else '<span class="bad">NO</span>'
    acc = f" NeuroBench's ClassificationAccuracy: {pct(nb['accuracy'])}." if nb.get("accuracy") is not None else ""
    out = [f'<section id="neurobench"><h2>NeuroBench\'s own metrics next to ours</h2>'
           f"<p>NeuroBench {e(nb['neurobench_version'])}'s own <code>Benchmark</code> and metrics on a torch view of the "
           f"deployed integer net (its kernels, our integer neuron), on the same {n(nb['n_samples'])} samples × "
           f"{n(nb['num_steps'])} steps. The spikes NeuroBench saw are the reference's, every layer and step: {same}."
           f"{e(acc)}</p>",
           table(["metric", "ours (report)", "NeuroBench", "ours, NeuroBench's definition", "equal?", "why different"],
                 rows, left=1, also_left=(4, 5), wrap=(5,))]
    tm = nb.get("trained_model")
    if tm:
        fig = lambda v: e(v) if isinstance(v, str) else n(v)  # noqa: E731
        out.append(f'<p class="note">NeuroBench on the trained torch model: Footprint {fig(tm["Footprint"])} B, '
                   f'ParameterCount {fig(tm["ParameterCount"])}, ConnectionSparsity {fig(tm["ConnectionSparsity"])}.</p>')
    out.append('<p class="note">"ours, NeuroBench\'s definition": our figure counted the way NeuroBench defines it, from '
               'our own weights and spikes; "equal?" compares it with NeuroBench\'s (tolerance 1e-9).</p></section>')
    return "".join(out)


def target_html(report: Report) -> str:
    """The target's per-layer fit (the fit check's own words) and its note."""
    tg = report.target
    out = [f'<section id="target"><h2>Target {e(tg["name"])}: per-layer fit</h2>']
    if tg.get("available"):
        out.append(f"<p>{e(tg.get('summary', ''))}</p>")
        lava = tg["name"] == "lava"
        out.append(table(["layer", "runs on stock neurons" if lava else "fits", "detail"],
                         [[lr.name, "yes" if (lr.fit or {}).get("fits") else "no", (lr.fit or {}).get("detail", "")]
                          for lr in report.layers], also_left=(1, 2), wrap=(2,)))
        if tg.get("note"):
            tail = f' {term("QLIF")}, {term("LIF")}: see the glossary.' if lava else ""
            out.append(f'<p class="note">{e(tg["note"])}.{tail}</p>')
    else:
        out.append(f'<p class="note">{e(tg["note"])}</p>')
    out.append("</section>")
    return "".join(out)


__all__ = ["resources_html", "workload_html", "energy_html", "verify_html", "neurobench_html", "target_html"]
