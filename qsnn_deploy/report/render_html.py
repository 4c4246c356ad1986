"""One self-contained HTML page of a :class:`~qsnn_deploy.report.metrics.Report`.

Every plot is a matplotlib figure embedded as a base64 PNG (``data:`` URI); the page references
no external resource (no CDN, no script, no font, no stylesheet link) and needs no JavaScript.
Sections (``id``): summary, layers, energy, firing-rate, raster, states, memory, sops, verify,
neurobench (only with ``--neurobench``), target (only with ``--target``), definitions.
"""
from __future__ import annotations

import base64
import html
import io
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..fileio import write_text_atomic
from .metrics import SCHEMA_VERSION, Report, fmt_num, human_bytes, human_count, human_energy, span

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1280px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em} th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left} tr.total td{font-weight:bold;background:#fafafa}
.meta{color:#555} .estimate{background:#fff6dd;border-left:4px solid #e0a800;padding:.5em 1em}
.note{color:#666;font-size:.9em} .ok{color:#1a7f37} .bad{color:#c62828} img{max-width:100%;height:auto}
.cards{display:flex;flex-wrap:wrap;gap:.8em} .card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:12em}
.card b{display:block;font-size:1.3em}
"""


# ------------------------------------------------------------------------------ figures
# Each figure has a builder (``figure_*``: returns the matplotlib Figure, for tests and reuse) and a
# ``fig_*`` wrapper that embeds it as a PNG. Every figure uses matplotlib's constrained layout (labels,
# titles, legends and tick labels are given room inside the figure, nothing is clipped), bar labels get
# headroom inside their axes, crowded category labels are rotated, and spike rasters have integer ticks.
def _mpl():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", pad_inches=0.1)
    _mpl().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _category_axis(ax, x, names: list[str]) -> None:
    """Category ticks; rotated when many or long names would collide."""
    crowded = len(names) > 8 or sum(len(n) for n in names) > 70
    ax.set_xticks(x, names, rotation=30 if crowded else 0, ha="right" if crowded else "center")


def _log_headroom(ax, values, factor: float = 8.0) -> None:
    """Room above the tallest bar of a log axis for its label."""
    top = max([float(v) for v in values if v] or [1.0])
    ax.set_ylim(top=top * factor)


def figure_firing_rates(report: Report):
    """Mean firing rate per layer (bars) and the per-neuron rate distribution (box plots)."""
    plt = _mpl()
    names = [lr.name for lr in report.layers]
    means = [lr.activity.firing_rate for lr in report.layers]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    x = np.arange(len(names))
    bars = a.bar(x, means, color="#4c72b0")
    a.bar_label(bars, labels=[f"{m:.3f}" for m in means], fontsize=8, padding=2)
    a.margins(y=0.15)
    _category_axis(a, x, names)
    a.set_ylabel("spikes / neuron / step")
    a.set_title("mean firing rate per layer")
    rates = [lr.neuron_rates if lr.neuron_rates is not None and lr.neuron_rates.size else np.zeros(1) for lr in report.layers]
    b.boxplot(rates, positions=x, showfliers=True, flierprops={"markersize": 2, "alpha": 0.4})
    _category_axis(b, x, names)
    b.set_ylabel("spikes / neuron / step")
    b.set_title("firing rate of each neuron (distribution)")
    return fig


def fig_firing_rates(report: Report) -> str:
    """:func:`figure_firing_rates` as an embedded PNG (``data:`` URI)."""
    return _png(figure_firing_rates(report))


def figure_raster(report: Report):
    """The raster sample's input image and every layer's spikes over time (integer ticks on both axes)."""
    from matplotlib.ticker import MaxNLocator

    plt = _mpl()
    layers = report.layers
    steps = report.num_steps
    img = report.raster_input
    show_img = img is not None and img.ndim == 3 and img.shape[0] in (1, 3)
    heights = [max(1.2, np.log2(max(lr.static.neurons, 2))) for lr in layers]
    fig = plt.figure(figsize=(11, 1.2 + 0.4 * sum(heights)), layout="constrained")
    gs = fig.add_gridspec(len(layers), 2 if show_img else 1, width_ratios=[1, 5] if show_img else [1],
                          height_ratios=heights)
    col = 1 if show_img else 0
    if show_img:
        ax = fig.add_subplot(gs[:, 0])
        ax.imshow(img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1), cmap="gray")
        ax.set_title(f"input (sample {report.raster_sample})", fontsize=9)
        ax.axis("off")
    axes = []
    for i, lr in enumerate(layers):
        ax = fig.add_subplot(gs[i, col], sharex=axes[0] if axes else None)
        axes.append(ax)
        r = lr.raster
        if r is not None and r.any():
            t, n = np.nonzero(r)
            ax.scatter(t, n, s=1.5 if t.size > 2000 else 6, marker="s", color="#222", linewidths=0)
        ax.set_xlim(-0.5, steps - 0.5)
        ax.set_ylim(-0.5, lr.static.neurons - 0.5)
        # neuron indices and time steps are integers: no fractional ticks (e.g. a 10-neuron layer)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins="auto", min_n_ticks=1))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        total = int(r.sum()) if r is not None else 0
        ax.set_ylabel("neuron", fontsize=8)  # the layer's name is in the title (a long name would not fit here)
        ax.tick_params(labelsize=7)
        ax.set_title(f"{lr.name}: {lr.static.neurons} neurons, {total} spikes", fontsize=8, loc="left")
        if i < len(layers) - 1:
            ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time step")
    return fig


def fig_raster(report: Report) -> str:
    """:func:`figure_raster` as an embedded PNG (``data:`` URI)."""
    return _png(figure_raster(report))


def figure_states(report: Report):
    """Membrane-state histogram per layer against the threshold θ and the ±(2^(B_v−1)−1) state bound."""
    plt = _mpl()
    layers = [lr for lr in report.layers if lr.activity and lr.activity.state_histogram]
    fig, axes = plt.subplots(len(layers), 1, figsize=(11, 2.8 * len(layers)), squeeze=False, layout="constrained")
    for ax, lr in zip(axes[:, 0], layers):
        h = lr.activity.state_histogram
        edges, counts = np.asarray(h["edges"]), np.asarray(h["counts"], dtype=float)
        ax.stairs(counts, edges, fill=True, color="#4c72b0", alpha=0.85, baseline=0.5)
        vmax = 2 ** (lr.static.state_bits - 1) - 1
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.5)
        th_lo, th_hi = lr.static.threshold_min, lr.static.threshold_max
        if th_lo == th_hi:
            ax.axvline(th_lo, color="#2ca02c", lw=1.5, label=f"threshold θ = {th_lo}")
        else:
            ax.axvspan(th_lo, th_hi, color="#2ca02c", alpha=0.3, label=f"threshold θ = {th_lo}..{th_hi}")
        ax.axvline(vmax, color="#d62728", ls="--", lw=1.2, label=f"state bound ±{vmax} ({lr.static.state_bits}-bit)")
        ax.axvline(-vmax, color="#d62728", ls="--", lw=1.2)
        a = lr.activity
        ax.set_title(f"{lr.name}: membrane states v over all samples and steps; range {a.state_min}..{a.state_max}, "
                     f"{a.state_bits_used} of {lr.static.state_bits} bits used", fontsize=9, loc="left")
        ax.set_ylabel("count", fontsize=8)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("membrane state v (state units, symmetric log scale)")
    return fig


def fig_states(report: Report) -> str:
    """:func:`figure_states` as an embedded PNG (``data:`` URI)."""
    return _png(figure_states(report))


def figure_memory(report: Report):
    """Bytes per layer: deployed weights, Loihi 8-bit weights, states, θ/b/d (log scale)."""
    plt = _mpl()
    names = [lr.name for lr in report.layers]
    series = [
        ("weights, deployed width", [lr.static.weight_bytes for lr in report.layers], "#4c72b0"),
        ("weights, Loihi 8-bit mantissas", [lr.static.loihi_weight_bytes for lr in report.layers], "#8172b2"),
        ("neuron states", [lr.static.state_bytes for lr in report.layers], "#55a868"),
        ("θ / b / d", [lr.static.neuron_param_bytes for lr in report.layers], "#c44e52"),
    ]
    x = np.arange(len(names))
    w = 0.2
    fig, ax = plt.subplots(figsize=(11, 4.0), layout="constrained")
    for k, (label, vals, color) in enumerate(series):
        bars = ax.bar(x + (k - 1.5) * w, vals, w, label=label, color=color)
        ax.bar_label(bars, labels=[human_bytes(v) for v in vals], fontsize=7, rotation=90, padding=2)
    _category_axis(ax, x, names)
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.8, top=max(max(v) for _, v, _ in series) * 60)
    ax.set_ylabel("bytes (log scale)")
    ax.set_title("memory per layer")
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, ncols=4, loc="outside lower center", frameon=False)
    return fig


def fig_memory(report: Report) -> str:
    """:func:`figure_memory` as an embedded PNG (``data:`` URI)."""
    return _png(figure_memory(report))


def figure_sops(report: Report):
    """Synaptic operations vs dense MACs per layer (log scale), with the graded input's ops."""
    plt = _mpl()
    names = [lr.name for lr in report.layers]
    macs = [lr.dense_macs for lr in report.layers]
    sops = [lr.activity.sops_mean if lr.activity.sops_mean is not None else 0.0 for lr in report.layers]
    ia = report.input_activity or {}
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(11, 3.8), layout="constrained")
    b1 = ax.bar(x - 0.2, macs, 0.4, label="dense MACs / sample", color="#999999")
    b2 = ax.bar(x + 0.2, sops, 0.4, label="synaptic ops (SOPs) / sample, mean", color="#dd8452")
    ax.bar_label(b1, labels=[human_count(v) for v in macs], fontsize=7, padding=2)
    ax.bar_label(b2, labels=[human_count(v) if v else "" for v in sops], fontsize=7, padding=2)  # 0: no bar on a log axis
    if ia.get("ops_mean") is not None:
        b3 = ax.bar([0.2], [ia["ops_mean"]], 0.4, color="none", edgecolor="#dd8452", hatch="//",
                    label="input ops / sample (graded input, not spikes)")
        ax.bar_label(b3, labels=[human_count(ia["ops_mean"])], fontsize=7, padding=2)
    _category_axis(ax, x, names)
    ax.set_yscale("log")
    ax.set_ylim(bottom=1)
    _log_headroom(ax, macs + sops + [ia.get("ops_mean") or 0])
    ax.set_ylabel("operations per sample (log)")
    ax.set_title("synaptic operations vs dense MACs per layer")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0)
    return fig


def fig_sops(report: Report) -> str:
    """:func:`figure_sops` as an embedded PNG (``data:`` URI)."""
    return _png(figure_sops(report))


def figure_agreement(report: Report):
    """Spike-count agreement per layer, one bar per backend that ran (None without a verify run)."""
    v = report.verify
    if not v or not v["backends"]:
        return None
    plt = _mpl()
    names = [layer["name"] for layer in v["backends"][0]["layers"]]
    x = np.arange(len(names))
    nb = len(v["backends"])
    w = 0.8 / nb
    rotate = nb > 3
    fig, ax = plt.subplots(figsize=(11, 3.8 if rotate else 3.4), layout="constrained")
    lo = 100.0
    for k, b in enumerate(v["backends"]):
        vals = [100 * layer["spike_count_agreement"] for layer in b["layers"]]
        lo = min(lo, min(vals, default=100.0))
        bars = ax.bar(x + (k - (nb - 1) / 2) * w, vals, w, label=b["name"])
        ax.bar_label(bars, labels=[f"{val:.2f}%" for val in vals], fontsize=6 if rotate else 7,
                     rotation=90 if rotate else 0, padding=2)
    _category_axis(ax, x, names)
    bottom = max(0.0, lo - 5)
    ax.set_ylim(bottom, 100 + (100 - bottom) * (0.4 if rotate else 0.12))
    ax.set_yticks([t for t in ax.get_yticks() if bottom <= t <= 100])  # room for the labels, no ticks past 100 %
    ax.set_ylabel("spike-count agreement (%)")
    ax.set_title(f"spike counts per (sample, neuron) equal to the {v['reference']} reference")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0)
    return fig


def fig_agreement(report: Report) -> str | None:
    """:func:`figure_agreement` as an embedded PNG (``data:`` URI)."""
    fig = figure_agreement(report)
    return None if fig is None else _png(fig)


# ------------------------------------------------------------------------------ HTML
def _e(x) -> str:
    return html.escape(str(x))


def _table(headers: list[str], rows: list[list], left: int = 1, total_last: bool = False,
           also_left: tuple[int, ...] = ()) -> str:
    """Columns ``< left`` and those in ``also_left`` are left-aligned (text), the others right (numbers)."""
    lft = lambda i: "l" if i < left or i in also_left else ""  # noqa: E731
    out = ["<table><thead><tr>"]
    out += [f'<th class="{lft(i)}">{_e(h)}</th>' for i, h in enumerate(headers)]
    out.append("</tr></thead><tbody>")
    for j, row in enumerate(rows):
        cls = ' class="total"' if total_last and j == len(rows) - 1 else ""
        out.append(f"<tr{cls}>" + "".join(f'<td class="{lft(i)}">{_e(c)}</td>' for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _img(src: str, alt: str) -> str:
    return f'<img src="{src}" alt="{_e(alt)}">'


def _shape(s) -> str:
    return "×".join(str(int(v)) for v in s)


def _memory_html(report: Report) -> str:
    B = lambda n: f"{fmt_num(n)} B"  # noqa: E731
    rows = []
    for lr in report.layers:
        s = lr.static
        rows.append([s.name, f"{s.description}, int{s.weight_bits} {_shape(s.weight_shape)}",
                     f"{_shape(s.input_shape)} → {_shape(s.output_shape)}", fmt_num(s.fan_in),
                     f"{s.fan_out_mean:.4g} / {s.fan_out_max}" if s.fan_out_max else "-", fmt_num(s.synapses),
                     fmt_num(s.parameters), B(s.weight_bytes),
                     f"{B(s.loihi_weight_bytes)} ({_shape(s.loihi_weight_shape)}, |w| ≤ {s.loihi_weight_max_abs})",
                     fmt_num(s.neurons), f"{B(s.state_bytes)} ({s.state_bits}-bit)",
                     f"{s.threshold_bytes} / {s.bias_bytes} / {s.decay_bytes} B ({s.threshold_bits} / {s.bias_bits} / {s.decay_bits} bits)",
                     B(s.memory_bytes), fmt_num(s.current_bound)])
    t = report.totals
    inp = report.input
    rows.append(["total", f"input {_shape(inp.shape)}, {inp.bits}-bit", f"input fan-out {inp.fan_out_mean:.4g} / {inp.fan_out_max}",
                 "", "", fmt_num(t["synapses"]), fmt_num(t["parameters"]), B(t["weight_bytes"]), B(t["loihi_weight_bytes"]),
                 fmt_num(t["neurons"]), B(t["state_bytes"]), B(t["neuron_param_bytes"]), B(t["memory_bytes"]), ""])
    return _table(["layer", "synapse", "in → out", "fan-in", "fan-out mean / max", "synapses", "params",
                   "weights (deployed width)", "weights (Loihi 8-bit)", "neurons", "state", "θ / b / d",
                   "memory (deployed)", "max |J|"], rows, left=3, total_last=True)


def _activity_html(report: Report) -> str:
    rows = []
    ia = report.input_activity or {}
    for i, lr in enumerate(report.layers):
        a, s = lr.activity, lr.static
        sops = f"{fmt_num(a.sops_mean)} / {fmt_num(a.sops_max)}" if a.sops_mean is not None else (
            f"(input ops {fmt_num(ia['ops_mean'])} / {fmt_num(ia['ops_max'])})" if i == 0 and ia.get("ops_mean") is not None else "-")
        rows.append([s.name, f"{fmt_num(a.spikes_mean)} / {fmt_num(a.spikes_max)}", f"{a.firing_rate:.5f}",
                     f"{a.silent_neurons} / {s.neurons}", sops, fmt_num(lr.dense_macs),
                     f"{100 * a.sop_per_mac:.2f}%" if a.sop_per_mac is not None else "-", fmt_num(a.saturation_events),
                     f"{fmt_num(a.state_min)} .. {fmt_num(a.state_max)}" if a.state_min is not None else "-",
                     f"{a.state_bits_used} / {s.state_bits}" if a.state_bits_used is not None else "-"])
    t = report.totals
    rows.append(["total", f"{fmt_num(t['spikes_mean'])} / {fmt_num(t['spikes_max'])}", f"{t['firing_rate']:.5f}", "",
                 f"{fmt_num(t['sops_mean'])} / {fmt_num(t['sops_max'])}", fmt_num(t["dense_macs"]),
                 f"{100 * t['sops_mean'] / t['dense_macs']:.2f}%" if t["dense_macs"] else "-", fmt_num(t["saturation_events"]), "", ""])
    return _table(["layer", "spikes / sample (mean / max)", "rate / neuron / step", "silent neurons",
                   "SOPs / sample (mean / max)", "dense MACs / sample", "SOP / MAC", "saturation events",
                   "state range", "state bits used"], rows, total_last=True)


def _neurobench_html(nb: dict) -> str:
    """The ``neurobench`` section: NeuroBench's metrics next to ours (one row per metric)."""
    def val(v) -> str:
        return "-" if v is None else fmt_num(v)

    rows = [[r["metric"], val(r["ours"]), val(r["neurobench"]), val(r["ours_same_definition"]),
             "– (not the same quantity)" if r["equal"] is None else ("yes" if r["equal"] else "NO"), r["note"]]
            for r in nb["rows"]]
    same = '<span class="ok">yes</span>' if nb["spikes_identical"] else '<span class="bad">NO</span>'
    acc = (f" NeuroBench's ClassificationAccuracy: {100 * nb['accuracy']:.2f}%." if nb.get("accuracy") is not None else "")
    out = [f'<section id="neurobench"><h2>NeuroBench\'s metrics next to ours</h2>'
           f"<p>NeuroBench {_e(nb['neurobench_version'])}'s own <code>Benchmark</code> and metrics (Footprint, "
           f"ConnectionSparsity, ActivationSparsity, SynapticOperations) on a torch view of the deployed integer net "
           f"(its kernels, our integer neuron), on the same {nb['n_samples']} samples × {nb['num_steps']} steps. "
           f"The spikes NeuroBench saw are the reference's, every layer and step: {same}.{_e(acc)}</p>",
           _table(["metric", "ours (report)", "NeuroBench", "ours, NeuroBench's definition", "equal?",
                   "why different"], rows, left=1, also_left=(4, 5))]
    tm = nb.get("trained_model")
    if tm:
        fig = lambda v: _e(v) if isinstance(v, str) else fmt_num(v)  # noqa: E731
        out.append(f'<p class="note">NeuroBench on the trained torch model: Footprint {fig(tm["Footprint"])} B, '
                   f'ParameterCount {fig(tm["ParameterCount"])}, ConnectionSparsity {fig(tm["ConnectionSparsity"])}.</p>')
    out.append('<p class="note">"ours, NeuroBench\'s definition": our figure counted the way NeuroBench defines it, '
               'from our own weights and spikes; "equal?" compares it with NeuroBench\'s (tolerance 1e-9). '
               'Definitions: docs/report.md, "NeuroBench".</p></section>')
    return "".join(out)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (string)."""
    parts: list[str] = []
    title = f"qsnn-report: {report.model}"
    parts.append(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                 f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                 f'<link rel="icon" href="data:,"><title>{_e(title)}</title><style>{_CSS}</style></head><body>')
    parts.append(f"<h1>{_e(title)}</h1>")
    d = report.data
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    src = (f"{d['n_samples']} samples from {d['source'] or 'the given data'}, T = {report.num_steps}, simulated by "
           f"the {d['backend']} backend" if d else f"no data: static figures only (T = {report.num_steps})")
    parts.append(f'<p class="meta">{_e(report.generator)}, {when}. {_e(src)}. Definitions: docs/report.md '
                 f'(schema qsnn-report v{SCHEMA_VERSION}).</p>')
    # ---- summary cards
    t = report.totals
    cards = [("memory at deployed widths", human_bytes(t["memory_bytes"]),
              f"weights {human_bytes(t['weight_bytes'])}, states {human_bytes(t['state_bytes'])}, θ/b/d {human_bytes(t['neuron_param_bytes'])}"),
             ("weights as Loihi 8-bit mantissas", human_bytes(t["loihi_weight_bytes"]), "pool-folded kernels"),
             ("parameters", human_count(t["parameters"]), f"{t['neurons']} neurons, {human_count(t['synapses'])} synapses")]
    if d:
        cards += [("spikes / sample", human_count(t["spikes_mean"]), f"max {human_count(t['spikes_max'])}, rate {t['firing_rate']:.4f}"),
                  ("SOPs / sample", human_count(t["sops_mean"]), f"dense MACs {human_count(t['dense_macs'])}")]
        if report.energy:
            cards.append(("energy / inference (ESTIMATE)", human_energy(report.energy.total_nj),
                          f"range {span(report.energy.total_low_nj, report.energy.total_nj, human_energy)}, "
                          f"{report.energy.chip}"))
        if d.get("accuracy") is not None:
            cards.append(("accuracy (deployed net)", f"{100 * d['accuracy']:.2f}%", f"on {d['n_samples']} samples"))
    parts.append('<section id="summary"><h2>Summary</h2><div class="cards">' + "".join(
        f'<div class="card">{_e(a)}<b>{_e(b)}</b><span class="note">{_e(c)}</span></div>' for a, b, c in cards) + "</div></section>")
    # ---- tables
    parts.append('<section id="layers"><h2>Per-layer figures</h2><h3>Memory (static)</h3>' + _memory_html(report))
    parts.append('<p class="note">Row = one layer: its neurons and its incoming synapse, counted in the deployed '
                 'form (a conv followed by a sum pool is one pool-folded conv). fan-out = synapses one neuron drives '
                 'in the next layer, counted exactly on the conv geometry (borders included). Bytes: deployed width '
                 'packed (int4: two weights per byte); Loihi: one 8-bit mantissa per weight of the folded kernel. '
                 'θ/b/d: stored per output channel at the smallest width holding their largest value (decay: 12 bits).</p>')
    if d:
        parts.append("<h3>Activity per sample</h3>" + _activity_html(report))
        sat = [(lr.name, lr.activity.saturation_events, lr.static.state_bits) for lr in report.layers
               if lr.activity.saturation_events]
        if sat:
            parts.append('<p class="bad">Saturation: ' + "; ".join(
                f"{_e(n)}: {fmt_num(k)} (neuron, step) events clipped to the {b}-bit state bound" for n, k, b in sat)
                + ". These states reached the bound and were clipped: a target must saturate the same way (or hold "
                "wider states) to reproduce these spikes; see the histograms.</p>")
        ia = report.input_activity or {}
        if ia.get("ops_mean") is not None:
            parts.append(f'<p class="note">The input is integer (e.g. pixels), not spikes: its '
                         f'{fmt_num(ia["nonzero_mean"])} nonzero values per sample (over T) drive {fmt_num(ia["ops_mean"])} '
                         f'operations in {_e(report.layers[0].name)} (max {fmt_num(ia["ops_max"])}); they are not counted '
                         f'as SOPs. {_e(report.layers[0].name)}\'s dense MACs: {fmt_num(report.layers[0].dense_macs)}.</p>')
    parts.append("</section>")
    # ---- energy
    e = report.energy
    if e is not None:
        p, c = e.per_op_pj, e.counts
        src = e.per_op_source
        cost_rows = [["synaptic op (E_sop)", f"{p['synaptic_op']:g}", src["synaptic_op"]],
                     ["neuron update (E_neuron)", f"{p['neuron_update']:g}", src["neuron_update"]],
                     ["neuron update, low end of the range", f"{p['neuron_update_low']:g}", src["neuron_update_low"]],
                     ["spike sent (E_spike)", f"{p['spike']:g}", src["spike"]]]
        who = "your own per-operation energies" if e.user_costs else "published per-operation energies"
        parts.append(
            f'<section id="energy"><h2>Energy per inference — estimate</h2><div class="estimate">'
            f'<p><b>ESTIMATE: {human_energy(e.total_nj)} per inference</b> (range '
            f'{span(e.total_low_nj, e.total_nj, human_energy)}), computed from {who} of <b>{_e(e.chip)}</b> ({_e(e.model)}); '
            f'not a measurement.</p>'
            f'<p>E = SOPs × E<sub>sop</sub> + neuron updates × E<sub>neuron</sub> + spikes × E<sub>spike</sub><br>'
            f'= {fmt_num(c["sops"])} × {p["synaptic_op"]:g} pJ ({human_energy(e.synaptic_nj)}) + '
            f'{fmt_num(c["neuron_updates"])} × {span(p["neuron_update_low"], p["neuron_update"], "{:g}".format)} pJ '
            f'({span(e.neuron_low_nj, e.neuron_nj, human_energy)}) + '
            f'{fmt_num(c["spikes"])} × {p["spike"]:g} pJ ({human_energy(e.spike_nj)})</p>'
            + _table(["operation", "energy (pJ)", "source"], cost_rows, left=1, also_left=(2,))
            + f'<p class="note">Chip: {_e(e.chip)}. Source: {_e(e.citation)}. {_e(e.note)}.</p>'
            f'<p class="note">Not priced: {_e("; ".join(e.unpriced))}. Your own costs: '
            f'<code>qsnn-report --energy-costs FILE.json</code> or <code>--energy-pj-per-sop X</code> … '
            f'(docs/report.md).</p></div></section>')
        # ---- plots
        parts.append('<section id="firing-rate"><h2>Firing rate per layer</h2>'
                     + _img(fig_firing_rates(report), "firing rate per layer") + "</section>")
        parts.append(f'<section id="raster"><h2>Spike raster of sample {report.raster_sample} across layers</h2>'
                     + _img(fig_raster(report), "spike raster of one sample") + "</section>")
        if any(lr.activity.state_histogram for lr in report.layers):
            parts.append('<section id="states"><h2>Membrane states against the threshold and the state bound</h2>'
                         + _img(fig_states(report), "membrane state histograms") + "</section>")
    parts.append('<section id="memory"><h2>Memory per layer</h2>' + _img(fig_memory(report), "memory per layer") + "</section>")
    if d:
        parts.append('<section id="sops"><h2>Synaptic operations vs dense MACs</h2>'
                     + _img(fig_sops(report), "synaptic operations per layer") + "</section>")
    # ---- verify
    parts.append('<section id="verify"><h2>Agreement: trained model and deployed backends</h2>')
    v = report.verify
    if v is None:
        parts.append('<p class="note">No trained model was given (or verification was skipped), so there is no '
                     'agreement to show: a .qsnn file holds only the frozen integer network.</p>')
    else:
        rows = []
        for b in v["backends"]:
            for i, layer in enumerate(b["layers"]):
                rows.append([b["name"] if i == 0 else "", layer["name"], f"{100 * layer['spike_count_agreement']:.2f}%",
                             "bit-exact" if layer["bit_exact"] else f"{layer['mismatched_values']} spike values differ",
                             f"{100 * b['prediction_agreement']:.2f}%" if i == 0 else "",
                             (f"{100 * b['accuracy']:.2f}%" if b["accuracy"] is not None else "-") if i == 0 else "",
                             b["note"] if i == 0 else ""])
        for sk in v.get("skipped") or ():
            rows.append([sk["name"], "", "", "not run", "", "", sk["reason"]])
        verdict = '<span class="ok">all required backends bit-exact</span>' if v["all_exact"] else '<span class="bad">NOT bit-exact</span>'
        ran = ", ".join(b["name"] for b in v["backends"]) or "none"
        parts.append(f'<p>Each backend against the {_e(v["reference"])} reference (the deployed integer net) on '
                     f'{v["n_samples"]} samples × {v["num_steps"]} steps: {verdict}. Compared: {_e(ran)}.</p>')
        parts.append(_table(["backend", "layer", "spike-count agreement", "spike trains", "prediction agreement",
                             "accuracy", "note"], rows, left=2, also_left=(6,)))
        if v.get("skipped"):
            parts.append('<p class="note">Not run: ' + "; ".join(f"{_e(sk['name'])} ({_e(sk['reason'])})"
                                                              for sk in v["skipped"]) + ".</p>")
        img = fig_agreement(report)
        if img:
            parts.append(_img(img, "spike-count agreement per layer and backend"))
    parts.append("</section>")
    if report.neurobench is not None:
        parts.append(_neurobench_html(report.neurobench))
    if report.target is not None:
        tg = report.target
        parts.append(f'<section id="target"><h2>Target {_e(tg["name"])}</h2>')
        if tg.get("available"):
            parts.append(f"<p>{_e(tg.get('summary', ''))}</p>")
            parts.append(_table(["layer", "fits", "detail"],
                                [[lr.name, "yes" if (lr.fit or {}).get("fits") else "no", (lr.fit or {}).get("detail", "")]
                                 for lr in report.layers]))
        else:
            parts.append(f'<p class="note">{_e(tg["note"])}</p>')
        parts.append("</section>")
    parts.append('<section id="definitions"><h2>Definitions</h2><ul>'
                 "<li>SOPs of a layer: spikes of the layer before × the fan-out of the neuron that spiked into this "
                 "layer, summed over all steps; per sample.</li>"
                 "<li>Dense MACs: every synapse of the layer once per step (synapses × T); per sample.</li>"
                 "<li>Firing rate: spikes per neuron per time step. Silent: neurons with no spike over the data.</li>"
                 "<li>State memory: neurons × B_v bits; saturation events: (neuron, step) pairs clipped to B_v bits.</li>"
                 "<li>Energy: an estimate from per-operation energies, see the energy section.</li></ul></section>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_html(report: Report, path: str | Path) -> Path:
    """Write the page atomically."""
    write_text_atomic(path, render_html(report))
    return Path(path)
