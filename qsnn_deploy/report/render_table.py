"""Terminal tables (rich) of a :class:`~qsnn_deploy.report.metrics.Report`."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..frozen import FrozenNet
from .metrics import Report, compute_report, human_bytes, human_count, human_energy, span

if TYPE_CHECKING:
    from .static import LayerStatic


def _shape(s) -> str:
    return "×".join(str(int(v)) for v in s)


def short_kind(s: LayerStatic) -> str:
    """Compact synapse description for narrow tables: conv5×5 s2 p1 pool2×2, dense."""
    return (s.description.replace("conv ", "conv").replace(" + sumpool ", " pool").replace(" (flatten)", ""))


def _layer_table(report: Report, title: str, caption: str) -> Table:
    t = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    t.add_column("", style="bold", no_wrap=True)
    for lr in report.layers:
        t.add_column(lr.name, justify="right")
    t.add_column("total", justify="right", style="bold")
    return t


def memory_table(report: Report, title: str | None = None) -> Table:
    """Static figures (one column per layer): kind and shape, fan-in/out, parameters, memory at the
    deployed width and as Loihi 8-bit mantissas, state and θ/b/d memory, worst-case current."""
    fit = report.target if report.target and report.target.get("available") else None
    tot = report.totals
    inp = report.input
    t = _layer_table(report, title or f"{report.model}: memory per layer (deployed widths)",
                     f"input {_shape(inp.shape)} {inp.bits}-bit {'spikes' if inp.is_spikes else 'integers'}, "
                     f"fan-out {inp.fan_out_mean:.3g}/{inp.fan_out_max}; T={report.num_steps}. fan-out: synapses one "
                     "neuron drives in the next layer (mean/max); Loihi: pool-folded kernel, 8-bit mantissas")
    L = [lr.static for lr in report.layers]
    rows = [
        ("synapse", [short_kind(s) for s in L], ""),
        ("weights", [f"int{s.weight_bits} {_shape(s.weight_shape)}" for s in L], ""),
        ("output", [_shape(s.output_shape) for s in L], ""),
        ("fan-in", [str(s.fan_in) for s in L], ""),
        ("fan-out mean/max", [f"{s.fan_out_mean:.3g}/{s.fan_out_max}" if s.fan_out_max else "-" for s in L], ""),
        ("synapses", [human_count(s.synapses) for s in L], human_count(tot["synapses"])),
        ("parameters", [human_count(s.parameters) for s in L], human_count(tot["parameters"])),
        ("weight memory", [human_bytes(s.weight_bytes) for s in L], human_bytes(tot["weight_bytes"])),
        ("Loihi weights 8b", [human_bytes(s.loihi_weight_bytes) for s in L], human_bytes(tot["loihi_weight_bytes"])),
        ("neurons", [str(s.neurons) for s in L], str(tot["neurons"])),
        ("state memory", [f"{human_bytes(s.state_bytes)} ({s.state_bits}b)" for s in L], human_bytes(tot["state_bytes"])),
        ("θ/b/d memory", [human_bytes(s.neuron_param_bytes) for s in L], human_bytes(tot["neuron_param_bytes"])),
        ("memory total", [human_bytes(s.memory_bytes) for s in L], human_bytes(tot["memory_bytes"])),
        ("max |J|", [human_count(s.current_bound) for s in L], ""),
    ]
    if fit:
        rows.append((f"fits {fit['name']}", [("[green]yes[/green]" if (lr.fit or {}).get("fits") else "[red]no[/red]")
                                              if lr.fit else "-" for lr in report.layers],
                     "[green]yes[/green]" if fit.get("fits") else "[red]no[/red]"))
    for label, vals, total in rows:
        t.add_row(label, *vals, total)
    return t


def activity_table(report: Report) -> Table | None:
    """Activity per sample over the data, one column per layer (None for a static report)."""
    if not report.has_activity:
        return None
    d = report.data
    tot = report.totals
    ia = report.input_activity or {}
    t = _layer_table(report, f"activity per sample: {d['n_samples']} samples × {report.num_steps} steps",
                     "SOPs of a layer = spikes of the layer before × their fan-out into it; dense MACs = synapses × T; "
                     "rate = spikes per neuron per step")
    A = [lr.activity for lr in report.layers]
    S = [lr.static for lr in report.layers]
    sops = [human_count(a.sops_mean) if a.sops_mean is not None else "-" for a in A]
    sops_max = [human_count(a.sops_max) if a.sops_max is not None else "-" for a in A]
    rows = [
        ("spikes mean", [human_count(a.spikes_mean) for a in A], human_count(tot["spikes_mean"])),
        ("spikes max", [human_count(a.spikes_max) for a in A], human_count(tot["spikes_max"])),
        ("rate /neuron/step", [f"{a.firing_rate:.4f}" for a in A], f"{tot['firing_rate']:.4f}"),
        ("silent neurons", [f"{a.silent_neurons}/{s.neurons}" for a, s in zip(A, S)], ""),
        ("SOPs mean", sops, human_count(tot["sops_mean"])),
        ("SOPs max", sops_max, human_count(tot["sops_max"])),
    ]
    if ia.get("ops_mean") is not None:
        rows.append(("input ops mean", [human_count(ia["ops_mean"])] + [""] * (len(A) - 1), human_count(ia["ops_mean"])))
    rows += [
        ("dense MACs", [human_count(lr.dense_macs) for lr in report.layers], human_count(tot["dense_macs"])),
        ("SOP / MAC", [f"{100 * a.sop_per_mac:.2f}%" if a.sop_per_mac is not None else "-" for a in A],
         f"{100 * tot['sops_mean'] / tot['dense_macs']:.2f}%" if tot["dense_macs"] else "-"),
        ("saturations", [("[red]" + str(a.saturation_events) + "[/red]") if a.saturation_events else "0" for a in A],
         str(tot["saturation_events"])),
        ("state min", [human_count(a.state_min) for a in A], ""),
        ("state max", [human_count(a.state_max) for a in A], ""),
        ("state bits used", [f"{a.state_bits_used}/{s.state_bits}" if a.state_bits_used is not None else "-"
                             for a, s in zip(A, S)], ""),
    ]
    for label, vals, total in rows:
        t.add_row(label, *vals, total)
    return t


def energy_lines(report: Report) -> list[str]:
    """The energy estimate as terminal lines: the figure and its range, the chip generation and the
    per-op costs it is priced with, their source(s), and what is not priced (none without data)."""
    e = report.energy
    if e is None:
        return []
    c, p = e.counts, e.per_op_pj
    pj = lambda v: f"{v:g}"  # noqa: E731
    lines = [f"[bold]energy per inference: ESTIMATE {human_energy(e.total_nj)}[/bold] (range "
             f"{span(e.total_low_nj, e.total_nj, human_energy)}), priced with {escape(e.chip)} per-op energies "
             f"({escape(e.model)}): {human_count(c['sops'])} SOPs × {p['synaptic_op']:g} pJ = "
             f"{human_energy(e.synaptic_nj)}; "
             + (f"{human_count(c['input_ops'])} input ops (graded) × {p['synaptic_op']:g} pJ = {human_energy(e.input_nj)}; "
                if c.get("input_ops") else "")
             + f"{human_count(c['neuron_updates'])} neuron updates × "
             f"{span(p['neuron_update_low'], p['neuron_update'], pj)} pJ = "
             f"{span(e.neuron_low_nj, e.neuron_nj, human_energy)}; "
             f"{human_count(c['spikes'])} spikes × {p['spike']:g} pJ = {human_energy(e.spike_nj)}"]
    src = e.per_op_source
    if len(set(src.values())) == 1:
        lines.append(f"  [dim]source: {escape(e.citation)}.[/dim]")
    else:
        lines.append("  [dim]sources: " + "; ".join(f"{k} {p[k]:g} pJ: {escape(v)}" for k, v in src.items()) + ".[/dim]")
    lines.append(f"  [dim]{escape(e.note)}. Not priced: {'; '.join(e.unpriced)}. Your own costs: --energy-costs "
                 "FILE.json or --energy-pj-per-sop X ... (docs/report.md). Dynamic energy only: the source gives no "
                 "static power.[/dim]")
    return lines


def verify_table(report: Report) -> Table | None:
    """The agreement table: one block of rows per backend that ran (per layer: spike-count agreement,
    bit-exact or not), then one row per backend that could not run, with the reason (None: no check)."""
    v = report.verify
    if v is None:
        return None
    t = Table(title=f"agreement with the {v['reference']} reference ({v['n_samples']} samples): spike counts per layer")
    for col in ("backend", "layer", "count agr.", "spike trains", "pred. agr.", "accuracy"):
        t.add_column(col, justify="left" if col in ("backend", "layer", "spike trains") else "right")
    acc = lambda a: "-" if a is None else f"{100 * a:.2f}%"  # noqa: E731
    for b in v["backends"]:
        for i, layer in enumerate(b["layers"]):
            t.add_row(b["name"] if i == 0 else "", layer["name"], f"{100 * layer['spike_count_agreement']:.2f}%",
                      "[green]bit-exact[/green]" if layer["bit_exact"] else
                      (f"[red]{layer['mismatched_values']} differ[/red]" if b["exact_required"] else f"{layer['mismatched_values']} differ"),
                      f"{100 * b['prediction_agreement']:.2f}%" if i == 0 else "", acc(b["accuracy"]) if i == 0 else "")
    for sk in v.get("skipped") or ():
        t.add_row(escape(sk["name"]), "", "", f"[yellow]not run: {escape(sk['reason'])}[/yellow]", "", "")
    return t


_STYLE = {"pass": "green", "fail": "red", "unknown": "yellow"}


def verdict_lines(report: Report) -> list[str]:
    """The four verdicts (bit-exact, fits the target, latency, accuracy), one line each, as on the page's first
    screen."""
    v = report.verdicts
    if not v:
        return []
    out = []
    for key in ("bit_exact", "fits"):
        x = v[key]
        st = _STYLE[x["status"]]
        out.append(f"[bold {st}]{escape(x['headline'])}[/bold {st}]: {escape(x['text'])}")
    lt = v["latency"]
    out.append(f"[bold]latency {lt['steps']:,} time steps[/bold]: {escape(lt['text'])}")
    acc = v.get("accuracy")
    if acc:
        out.append(f"[bold]accuracy {100 * acc['value']:.1f} %[/bold]: {escape(acc['text'])}")
    w = report.workload
    if w:
        out.append(f"NeuroBench terms: connection sparsity {w['connection_sparsity']:.4f}, activation sparsity "
                   f"{w['activation_sparsity']:.4f}, effective ACs {w['effective_acs']:,.0f} / sample, effective MACs "
                   f"{w['effective_macs']:,.0f} / sample, membrane updates {w['membrane_updates']:,.0f} / sample")
    return out


def print_report(console: Console, report: Report) -> None:
    """The whole report on the terminal (the verdicts last, where the eye lands when the command ends)."""
    console.print(memory_table(report))
    act = activity_table(report)
    if act is not None:
        console.print(act)
        ia = report.input_activity or {}
        if ia.get("ops_mean") is not None:
            console.print(f"input: integer values, not spikes: {human_count(ia['nonzero_mean'])} nonzero values per sample "
                          f"over T drive {human_count(ia['ops_mean'])} ops (max {human_count(ia['ops_max'])}) in "
                          f"{report.layers[0].name}, whose dense MACs are {human_count(report.layers[0].dense_macs)}")
        if report.data.get("accuracy") is not None:
            console.print(f"accuracy of the deployed net ({report.data['backend']}): {100 * report.data['accuracy']:.2f}%")
        for line in energy_lines(report):
            console.print(line)
    vt = verify_table(report)
    if vt is not None:
        console.print(vt)
    if report.target is not None:
        tg = report.target
        if tg.get("available"):
            console.print(f"target {tg['name']}: {'[green]' if tg.get('fits') else '[yellow]'}{escape(str(tg.get('summary', '')))}{'[/green]' if tg.get('fits') else '[/yellow]'}")
            if tg.get("note") and tg["name"] != "lava":  # lava's note explains its table column (shown in the HTML)
                console.print(f"  {escape(str(tg['note']))}", highlight=False)
        else:
            console.print(f"[yellow]target {tg['name']}: {tg['note']}[/yellow]")
    r = report.resources
    if r:
        near = [h for h in r["headroom"] if h["status"] != "ok"]
        console.print(f"{escape(r['chip'])}: {r['cores']} of {r['cores_per_chip']} cores"
                      + ("; near or over a limit: " + "; ".join(
                          f"{h['layer']} {escape(h['field'])} {escape(h['shown'])} of {escape(h['limit_shown'])}"
                          for h in near) if near else "; every field within 90 % of its limit"), highlight=False)
    for line in verdict_lines(report):
        console.print(line, highlight=False)


def report_short(net: FrozenNet, model_name: str = "", target: str | None = None) -> Table:
    """The short form (no data needed): memory, parameters, fan-in/out, worst-case current per layer."""
    rep = compute_report(net, model_name=model_name, target=target)
    return memory_table(rep, title=f"{rep.model}: memory per layer at the deployed widths")
