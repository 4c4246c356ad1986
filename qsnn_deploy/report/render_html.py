"""One self-contained HTML page of a :class:`~qsnn_deploy.report.metrics.Report`.

The first screen holds the verdicts (bit-exact, fits the target, latency, accuracy: :mod:`.verdicts`)
and the key figures; then the target chip's resources and headroom (:mod:`.resources`), the
NeuroBench-named workload (:mod:`.workload`), the per-layer tables, the energy estimate, the plots
(inline SVG, :mod:`.figures`), the agreement check, NeuroBench's own metrics (``--neurobench``),
the target's per-layer fit and a glossary of every abbreviation (:mod:`.glossary`).

The page references no external resource (no CDN, script, font or stylesheet link) and needs no
JavaScript. Wide tables scroll inside their own box, plots scale to the screen, so a phone
(420 px) never scrolls the page sideways. Section ids: verdicts, summary, resources, workload,
layers, energy, firing-rate, raster, states, memory, sops, verify, neurobench, target, glossary.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from ..fileio import write_text_atomic
from .figures import (fig_agreement, fig_firing_rates, fig_memory, fig_raster, fig_sops, fig_states,  # noqa: F401
                      figure_agreement, figure_firing_rates, figure_memory, figure_raster, figure_sops, figure_states)
from .glossary import backend_label, glossary_html, term
from .metrics import SCHEMA_VERSION, Report, human_bytes, human_energy, span
from .render_sections import energy_html, neurobench_html, resources_html, target_html, verify_html, workload_html
from .render_util import CSS, e, n, pct, table

_STATUS_WORD = {"pass": "✓", "fail": "✗", "unknown": "?"}


def _card(label: str, status: str, headline: str, text: str, wide: bool = False) -> str:
    cls = f"card {status}" + (" wide" if wide else "")
    return (f'<div class="{cls}"><div class="k">{label}</div>'
            f'<div class="v"><span aria-hidden="true">{_STATUS_WORD.get(status, "")}</span> {e(headline)}</div>'
            f'<p>{e(text)}</p></div>')


def verdicts_html(report: Report) -> str:
    """The first screen: four verdict cards (colour states the status, the words say it too)."""
    v = report.verdicts or {}
    cards = []
    be = v.get("bit_exact")
    if be:
        cards.append(_card(term("bit-exact", "Bit-exact?"), be["status"], be["headline"], be["text"], wide=True))
    ft = v.get("fits")
    if ft:
        cards.append(_card("Fits the target?", ft["status"], ft["headline"], ft["text"], wide=True))
    lt = v.get("latency")
    if lt:
        cards.append(_card(term("latency", "Latency"), "info", f"{n(lt['steps'])} time steps", lt["text"]))
    acc = v.get("accuracy")
    if acc:
        cards.append(_card(term("95 % interval", "Accuracy"), "info", pct(acc["value"]), acc["text"]))
    else:
        cards.append(_card("Accuracy", "unknown", "not measured", "no labelled data given (--data)"))
    return f'<section id="verdicts" aria-label="verdicts"><div class="cards">{"".join(cards)}</div></section>'


def _fig(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


def summary_html(report: Report) -> str:
    """Key figures (cards, not tables): memory, chip footprint, energy, NeuroBench-named workload."""
    t, d = report.totals, report.data
    # (label as HTML, value, note)
    cards = [("memory at deployed widths", human_bytes(t["memory_bytes"]),
              f"weights {human_bytes(t['weight_bytes'])} + states {human_bytes(t['state_bytes'])} + θ/b/d "
              f"{human_bytes(t['neuron_param_bytes'])}; not a chip footprint (see chip resources)")]
    r = report.resources
    if r:
        mem = sum(lr["memory_bytes_per_core"] * lr["cores"] for lr in r["layers"])
        cards.append((f"{e(r['chip'])} footprint", f"{r['cores']} of {r['cores_per_chip']} cores",
                      f"{human_bytes(mem)} of synapse and neuron-state memory in those cores"))
    cards.append(("parameters", n(t["parameters"]), f"{n(t['neurons'])} neurons, {n(t['synapses'])} synapses"))
    w = report.workload
    if d and w:
        cards += [(term("connection sparsity"), f"{w['connection_sparsity']:.3f}", "zero weights / all weights, deployed kernels"),
                  (term("activation sparsity"), f"{w['activation_sparsity']:.3f}",
                   f"1 − firing rate; {n(t['spikes_mean'])} spikes / sample"),
                  ("effective " + term("AC", "ACs") + " / sample", n(w["effective_acs"]), "spike-driven ops on nonzero weights"),
                  ("effective " + term("MAC", "MACs") + " / sample", n(w["effective_macs"]),
                   "graded-input (8-bit) ops on nonzero weights"),
                  (term("membrane updates") + " / sample", n(w["membrane_updates"]), "neurons × T")]
    if report.energy:
        en = report.energy
        cards.append(("energy / inference (ESTIMATE)", human_energy(en.total_nj),
                      f"dynamic, input layer included; range {span(en.total_low_nj, en.total_nj, human_energy)}; "
                      f"{en.chip} per-op figures; static not given"))
    body = "".join(f'<div class="card info"><div class="k">{a}</div><div class="v">{e(b)}</div><p>{e(c)}</p></div>'
                   for a, b, c in cards)
    return f'<section id="summary"><h2>Key figures</h2><div class="cards small">{body}</div></section>'


def _memory_rows(report: Report) -> list[list[str]]:
    B = lambda v: f"{n(v)}\u00a0B"  # noqa: E731  (no-break space: a number and its unit stay on one line)
    shape = lambda s: "×".join(str(int(x)) for x in s)  # noqa: E731
    rows = []
    for lr in report.layers:
        s = lr.static
        rows.append([s.name, f"{s.description}, int{s.weight_bits} {shape(s.weight_shape)}",
                     f"{shape(s.input_shape)} → {shape(s.output_shape)}", n(s.fan_in),
                     f"{n(s.fan_out_mean)} / {n(s.fan_out_max)}" if s.fan_out_max else "–", n(s.synapses),
                     n(s.parameters), B(s.weight_bytes),
                     f"{B(s.loihi_weight_bytes)} ({shape(s.loihi_weight_shape)}, |w| ≤ {s.loihi_weight_max_abs})",
                     n(s.neurons), f"{B(s.state_bytes)} ({s.state_bits}-bit)",
                     f"{B(s.threshold_bytes)} / {B(s.bias_bytes)} / {B(s.decay_bytes)} ({s.threshold_bits} / {s.bias_bits} / "
                     f"{s.decay_bits} bits)", B(s.memory_bytes), n(s.current_bound), str(s.frac_bits)])
    t = report.totals
    rows.append(["total", "", "", "", "", n(t["synapses"]), n(t["parameters"]), B(t["weight_bytes"]),
                 B(t["loihi_weight_bytes"]), n(t["neurons"]), B(t["state_bytes"]), B(t["neuron_param_bytes"]),
                 B(t["memory_bytes"]), "", ""])
    return rows


def layers_html(report: Report) -> str:
    """The two per-layer tables (static memory; activity per sample) and their notes."""
    head = ["layer", "synapse", "shape in → out", term("fan-in"), term("fan-out") + " mean / max", "synapses",
            "parameters", "weights (deployed width)", "weights (Loihi 8-bit)", "neurons", "state (" + term("B_v") + ")",
            term("θ") + " / " + term("b") + " / " + term("d"), "memory (deployed)", term("max |J|"), term("F")]
    out = ['<section id="layers"><h2>Per-layer figures</h2><h3>Memory (static)</h3>',
           table(head, _memory_rows(report), left=3, total_last=True),
           '<p class="note">Row = one layer: its neurons and its incoming synapse, counted in the deployed form (a conv '
           'followed by a sum pool is one pool-folded conv). Bytes: deployed width packed (int4: two weights per byte); '
           'Loihi: one 8-bit mantissa per weight of the folded kernel. θ/b/d stored per output channel at the smallest '
           'width holding their largest value (decay: 12 bits).</p>']
    d = report.data
    if d:
        ia = report.input_activity or {}
        rows, classes = [], []
        for i, lr in enumerate(report.layers):
            a, s = lr.activity, lr.static
            full = a.saturation_events or (a.state_bits_used is not None and a.state_bits_used >= s.state_bits)
            classes.append("near" if full else "")
            sops = (f"{n(a.sops_mean)} / {n(a.sops_max)}" if a.sops_mean is not None else
                    f"(input ops {n(ia['ops_mean'])} / {n(ia['ops_max'])})" if i == 0 and ia.get("ops_mean") is not None
                    else "–")
            rows.append([s.name, f"{n(a.spikes_mean)} / {n(a.spikes_max)}", n(a.firing_rate),
                         f"{n(a.silent_neurons)} / {n(s.neurons)}", sops, n(lr.dense_macs),
                         pct(a.sop_per_mac) if a.sop_per_mac is not None else "–", n(a.saturation_events),
                         f"{n(a.state_min)} … {n(a.state_max)}" if a.state_min is not None else "–",
                         f"{a.state_bits_used} of {s.state_bits}" if a.state_bits_used is not None else "–"])
        t = report.totals
        rows.append(["total", f"{n(t['spikes_mean'])} / {n(t['spikes_max'])}", n(t["firing_rate"]), "",
                     f"{n(t['sops_mean'])} / {n(t['sops_max'])}", n(t["dense_macs"]),
                     pct(t["sops_mean"] / t["dense_macs"]) if t["dense_macs"] else "–", n(t["saturation_events"]), "", ""])
        out += ["<h3>Activity per sample</h3>",
                table(["layer", "spikes / sample (mean / max)", term("firing rate") + " (spikes / neuron / step)",
                       "silent neurons", term("SOP", "SOPs") + " / sample (mean / max)", "dense " + term("MAC", "MACs") +
                       " / sample", "SOPs / dense MACs", term("saturation") + " events (all samples)",
                       "state range " + term("v") + " (state units)", "state bits used"], rows, total_last=True,
                      row_classes=classes + [""])]
        full = [lr.name for lr, c in zip(report.layers, classes) if c]
        if full:
            out.append(f'<p class="warn">{e(", ".join(full))}: the membrane states use every bit of the state width '
                       f'(highlighted): no headroom left; see the histograms and the chip resources.</p>')
        sat = [(lr.name, lr.activity.saturation_events, lr.static.state_bits) for lr in report.layers
               if lr.activity.saturation_events]
        if sat:
            out.append('<p class="warn">Saturation: ' + "; ".join(
                f"{e(name)}: {n(k)} (neuron, step) events clipped to the {b}-bit state bound" for name, k, b in sat)
                + ". These states reached the bound and were clipped: a target must saturate the same way (or hold "
                "wider states) to reproduce these spikes; see the histograms.</p>")
        if ia.get("ops_mean") is not None:
            out.append(f'<p class="note">The input is integer (e.g. 8-bit pixels), not spikes: its {n(ia["nonzero_mean"])} '
                       f'nonzero values per sample (over T) drive {n(ia["ops_mean"])} operations in '
                       f'{e(report.layers[0].name)} (max {n(ia["ops_max"])}), shown as input ops, not SOPs; NeuroBench '
                       f'counts them as MACs and the energy estimate prices them.</p>')
    out.append("</section>")
    return "".join(out)


def plots_html(report: Report) -> str:
    """The plots, two per row on a wide screen, one on a phone."""
    figs = []
    if report.data:
        figs.append(('firing-rate', _fig(fig_firing_rates(report), "Firing rate per layer: mean and per neuron.")))
        figs.append(('raster', _fig(fig_raster(report), f"Spikes of sample {report.raster_sample} in every layer.")))
        if any(lr.activity.state_histogram for lr in report.layers):
            figs.append(('states', _fig(fig_states(report), "Membrane states against the threshold θ and the state "
                                        "bound; height = states per integer value, so wide bins are not inflated.")))
    figs.append(('memory', _fig(fig_memory(report), "Bytes per layer.")))
    if report.data:
        figs.append(('sops', _fig(fig_sops(report), "Synaptic operations per sample vs every synapse every step.")))
    return ('<section id="plots"><h2>Plots</h2><div class="figs">'
            + "".join(f'<div id="{i}">{f}</div>' for i, f in figs) + "</div></section>")


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (string)."""
    title = f"qsnn-report: {report.model}"
    d = report.data
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if d:
        src = Path(str(d["source"])).name if d.get("source") else "the given data"
        what = (f"{n(d['n_samples'])} samples from {e(src)}, {term('T')} = {n(report.num_steps)} steps, simulated by the "
                f"{e(backend_label(d['backend']))}")
    else:
        what = f"no data: static figures only ({term('T')} = {n(report.num_steps)})"
    parts = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
             f'<meta name="viewport" content="width=device-width, initial-scale=1">'
             f'<link rel="icon" href="data:,"><title>{e(title)}</title><style>{CSS}</style></head><body>',
             f"<h1>{e(title)}</h1>",
             f'<p class="meta">{what}. {e(report.generator)}, {when}; JSON schema qsnn-report v{SCHEMA_VERSION}. '
             f'Terms: <a href="#glossary">glossary</a>.</p>',
             verdicts_html(report), summary_html(report)]
    if report.resources:
        parts.append(resources_html(report.resources))
    if report.workload:
        parts.append(workload_html(report))
    parts.append(layers_html(report))
    if report.energy is not None:
        parts.append(energy_html(report.energy))
    parts.append(plots_html(report))
    parts.append(verify_html(report))
    if report.neurobench is not None:
        parts.append(neurobench_html(report.neurobench))
    if report.target is not None:
        parts.append(target_html(report))
    parts.append(glossary_html())
    parts.append("</body></html>\n")
    return "".join(parts)


def write_html(report: Report, path: str | Path) -> Path:
    """Write the page atomically."""
    write_text_atomic(path, render_html(report))
    return Path(path)


__all__ = ["render_html", "write_html", "verdicts_html", "summary_html", "layers_html", "plots_html"]
