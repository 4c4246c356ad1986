"""The report's plots: matplotlib figures, embedded in the page as inline SVG.

Each figure has a builder (``figure_*``: returns the matplotlib Figure, for tests and reuse) and a
``fig_*`` wrapper that returns its inline ``<svg>``. Figures are drawn about 6 inches wide with
10-11 pt text so that they stay legible when a phone (420 px) shrinks them to its width; text is
written as glyph paths grouped per text (``<g id="…text_N">``), so a browser can measure every
text against its figure; dense artists (raster dots, outlier markers) are embedded as one
raster image inside the SVG. Every figure uses matplotlib's constrained layout (labels, titles,
legends and tick labels get room inside the figure), bar labels get headroom inside their axes,
crowded category labels are rotated, spike rasters have integer ticks.
"""
from __future__ import annotations

import functools
import html
import io
import itertools
import re
from typing import TYPE_CHECKING

import numpy as np

from .glossary import backend_label
from .metrics import Report, human_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Figure width (inches) and base font size (pt): legible at 420 px.
WIDTH_IN = 6.4
FONT_PT = 10.5
_RC = {"font.size": FONT_PT, "axes.titlesize": FONT_PT, "axes.labelsize": FONT_PT, "xtick.labelsize": 10,
       "ytick.labelsize": 10, "legend.fontsize": 10, "svg.fonttype": "path", "svg.hashsalt": "qsnn-report"}
_counter = itertools.count(1)


def _mpl():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _styled(builder):
    """Run a figure builder under the report's style (:data:`_RC`), leaving matplotlib's global settings alone."""
    @functools.wraps(builder)
    def wrapper(*args, **kwargs):
        with _mpl().rc_context(_RC):
            return builder(*args, **kwargs)
    return wrapper


def svg(fig: Figure, alt: str) -> str:
    """``fig`` as an inline ``<svg>`` element (closes the figure): no XML prolog or metadata, ids made unique on
    the page, sized by its viewBox (``width: 100%`` up to its natural width in CSS pixels)."""
    buf = io.StringIO()
    with _mpl().rc_context(_RC):
        fig.savefig(buf, format="svg", dpi=150, bbox_inches="tight", pad_inches=0.08, metadata={"Date": None})
    _mpl().close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    pre = f"f{next(_counter)}-"
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{pre}{m.group(1)}"', text)
    text = re.sub(r'xlink:href="#([^"]+)"', lambda m: f'href="#{pre}{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{pre}{m.group(1)})", text)
    text = re.sub(r'xlink:href="data:', 'href="data:', text)
    m = re.match(r'<svg([^>]*)>', text)
    attrs = m.group(1)
    w_pt = float(re.search(r'width="([\d.]+)pt"', attrs).group(1))
    vb = re.search(r'viewBox="([^"]+)"', attrs).group(1)
    head = (f'<svg class="fig" viewBox="{vb}" role="img" aria-label="{html.escape(alt)}" '
            f'style="max-width:{w_pt * 96 / 72:.0f}px" preserveAspectRatio="xMidYMid meet">')
    return head + text[m.end():].strip()


def _category_axis(ax, x, names: list[str]) -> None:
    """Category ticks; rotated when many or long names would collide."""
    crowded = len(names) > 5 or sum(len(n) for n in names) > 30
    ax.set_xticks(x, names, rotation=30 if crowded else 0, ha="right" if crowded else "center")


def _log_headroom(ax, values, factor: float = 8.0) -> None:
    """Room above the tallest bar of a log axis for its label."""
    top = max([float(v) for v in values if v] or [1.0])
    ax.set_ylim(top=top * factor)


@_styled
def figure_firing_rates(report: Report) -> Figure:
    """Mean firing rate per layer (bars) and the per-neuron rate distribution (box plots), one above the other."""
    plt = _mpl()
    names = [lr.name for lr in report.layers]
    means = [lr.activity.firing_rate for lr in report.layers]
    fig, (a, b) = plt.subplots(2, 1, figsize=(WIDTH_IN, 5.6), layout="constrained")
    x = np.arange(len(names))
    bars = a.bar(x, means, color="#4c72b0")
    a.bar_label(bars, labels=[f"{m:.3g}" for m in means], padding=2)
    a.margins(y=0.2)
    _category_axis(a, x, names)
    a.set_ylabel("firing rate")
    a.set_title("mean firing rate per layer (spikes / neuron / step)")
    rates = [lr.neuron_rates if lr.neuron_rates is not None and lr.neuron_rates.size else np.zeros(1) for lr in report.layers]
    b.boxplot(rates, positions=x, showfliers=True,
              flierprops={"markersize": 2, "alpha": 0.4, "rasterized": True})
    _category_axis(b, x, names)
    b.set_ylabel("firing rate")
    b.set_title("firing rate of each neuron (spikes / neuron / step)")
    return fig


def fig_firing_rates(report: Report) -> str:
    """:func:`figure_firing_rates` as inline SVG."""
    return svg(figure_firing_rates(report), "firing rate per layer")


@_styled
def figure_raster(report: Report) -> Figure:
    """The raster sample's input image and every layer's spikes over time (integer ticks on both axes)."""
    from matplotlib.ticker import MaxNLocator

    plt = _mpl()
    layers = report.layers
    steps = report.num_steps
    img = report.raster_input
    show_img = img is not None and img.ndim == 3 and img.shape[0] in (1, 3)
    heights = [max(1.4, np.log2(max(lr.static.neurons, 2))) for lr in layers]
    fig = plt.figure(figsize=(WIDTH_IN, 1.6 + 0.45 * sum(heights)), layout="constrained")
    gs = fig.add_gridspec(len(layers), 2 if show_img else 1, width_ratios=[1, 3.2] if show_img else [1],
                          height_ratios=heights)
    col = 1 if show_img else 0
    if show_img:
        ax = fig.add_subplot(gs[:, 0])
        ax.imshow(img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1), cmap="gray")
        ax.set_title(f"input\n(sample {report.raster_sample})")
        ax.axis("off")
    axes = []
    for i, lr in enumerate(layers):
        ax = fig.add_subplot(gs[i, col], sharex=axes[0] if axes else None)
        axes.append(ax)
        r = lr.raster
        if r is not None and r.any():
            t, n = np.nonzero(r)
            ax.scatter(t, n, s=2 if t.size > 2000 else 8, marker="s", color="#222", linewidths=0, rasterized=True)
        ax.set_xlim(-0.5, steps - 0.5)
        ax.set_ylim(-0.5, lr.static.neurons - 0.5)
        # neuron indices and time steps are integers: no fractional ticks (e.g. a 10-neuron layer)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4, min_n_ticks=1))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        total = int(r.sum()) if r is not None else 0
        ax.set_ylabel("neuron")  # the layer's name is in the title (a long name would not fit here)
        ax.set_title(f"{lr.name}: {lr.static.neurons:,} neurons, {total:,} spikes", loc="left")
        if i < len(layers) - 1:
            ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time step")
    return fig


def fig_raster(report: Report) -> str:
    """:func:`figure_raster` as inline SVG."""
    return svg(figure_raster(report), "spike raster of one sample")


def _pow10(t: int) -> str:
    return f"10$^{{{int(round(np.log10(t)))}}}$"


@_styled
def figure_states(report: Report) -> Figure:
    """Membrane-state histogram per layer against the threshold θ and the ±(2^(B_v−1)−1) state bound.

    The bins are about four per factor of two in |v|, so they hold different numbers of integers (1 near 0,
    thousands near the bound); the bar height is the count divided by the integers in the bin — states per
    integer value — so a bin's height does not depend on its width (no false steps or plateaus)."""
    from matplotlib.ticker import NullLocator

    plt = _mpl()
    layers = [lr for lr in report.layers if lr.activity and lr.activity.state_histogram]
    fig, axes = plt.subplots(len(layers), 1, figsize=(WIDTH_IN, 2.9 * len(layers) + 0.4), squeeze=False,
                             layout="constrained")
    for ax, lr in zip(axes[:, 0], layers):
        h = lr.activity.state_histogram
        edges, counts = np.asarray(h["edges"], dtype=np.int64), np.asarray(h["counts"], dtype=float)
        density = counts / np.diff(edges)
        floor = max(density[density > 0].min(initial=1.0) / 3, 1e-12)
        ax.stairs(np.where(density > 0, density, floor), edges, fill=True, color="#4c72b0", alpha=0.85, baseline=floor)
        vmax = 2 ** (lr.static.state_bits - 1) - 1
        ax.set_xscale("symlog", linthresh=1.0, linscale=0.25)  # the linear part holds the bins of -1 and 0 only
        ax.set_yscale("log")
        ax.set_ylim(bottom=floor)
        top = int(np.ceil(np.log10(vmax)))
        step = 2 if top > 4 else 1
        ticks = [10 ** k for k in range(step, top + 1, step)]
        ax.set_xticks([-t for t in ticks[::-1]] + [0] + ticks,
                      ["−" + _pow10(t) for t in ticks[::-1]] + ["0"] + [_pow10(t) for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        th_lo, th_hi = lr.static.threshold_min, lr.static.threshold_max
        if th_lo == th_hi:
            ax.axvline(th_lo, color="#2ca02c", lw=1.5, label=f"threshold θ = {th_lo:,}")
        else:
            ax.axvspan(th_lo, th_hi, color="#2ca02c", alpha=0.3, label=f"threshold θ = {th_lo:,} … {th_hi:,}")
        ax.axvline(vmax, color="#d62728", ls="--", lw=1.2, label=f"state bound ±{vmax:,} ({lr.static.state_bits}-bit)")
        ax.axvline(-vmax, color="#d62728", ls="--", lw=1.2)
        a = lr.activity
        ax.set_title(f"{lr.name}: v from {a.state_min:,} to {a.state_max:,}; "
                     f"{a.state_bits_used} of {lr.static.state_bits} bits used", loc="left")
        ax.set_ylabel("states per value")
        ax.legend(loc="upper left", fontsize=9, framealpha=0.85)
        ax.margins(y=0.05)
        ax.set_ylim(top=density.max(initial=1.0) * 400)  # room for the legend above the bars
    axes[-1, 0].set_xlabel("membrane state v (state units, symmetric log scale)")
    return fig


def fig_states(report: Report) -> str:
    """:func:`figure_states` as inline SVG."""
    return svg(figure_states(report), "membrane state histograms")


@_styled
def figure_memory(report: Report) -> Figure:
    """Bytes per layer: deployed weights, Loihi 8-bit weights, states, θ/b/d (log scale)."""
    plt = _mpl()
    names = [lr.name for lr in report.layers]
    series = [
        ("weights, deployed width", [lr.static.weight_bytes for lr in report.layers], "#4c72b0"),
        ("weights, Loihi 8-bit", [lr.static.loihi_weight_bytes for lr in report.layers], "#8172b2"),
        ("neuron states", [lr.static.state_bytes for lr in report.layers], "#55a868"),
        ("θ / b / d", [lr.static.neuron_param_bytes for lr in report.layers], "#c44e52"),
    ]
    x = np.arange(len(names))
    w = 0.2
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.6), layout="constrained")
    for k, (label, vals, color) in enumerate(series):
        bars = ax.bar(x + (k - 1.5) * w, vals, w, label=label, color=color)
        ax.bar_label(bars, labels=[human_bytes(v) for v in vals], fontsize=8.5, rotation=90, padding=2)
    _category_axis(ax, x, names)
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.8, top=max(max(v) for _, v, _ in series) * 200)
    ax.set_ylabel("bytes (log scale)")
    ax.set_title("memory per layer")
    fig.legend(*ax.get_legend_handles_labels(), ncols=2, loc="outside lower center", frameon=False)
    return fig


def fig_memory(report: Report) -> str:
    """:func:`figure_memory` as inline SVG."""
    return svg(figure_memory(report), "memory per layer")


@_styled
def figure_sops(report: Report) -> Figure:
    """Synaptic operations vs dense MACs per layer (log scale), with the graded input's ops."""
    plt = _mpl()
    names = [lr.name for lr in report.layers]
    macs = [lr.dense_macs for lr in report.layers]
    sops = [lr.activity.sops_mean if lr.activity.sops_mean is not None else 0.0 for lr in report.layers]
    ia = report.input_activity or {}
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.4), layout="constrained")
    b1 = ax.bar(x - 0.2, macs, 0.4, label="dense MACs / sample", color="#999999")
    b2 = ax.bar(x + 0.2, sops, 0.4, label="SOPs / sample (mean)", color="#dd8452")
    fmt = lambda v: f"{v:,.0f}" if v >= 1000 else f"{v:.3g}"  # noqa: E731  (the page's number format)
    ax.bar_label(b1, labels=[fmt(v) for v in macs], fontsize=8.5, padding=2, rotation=90)
    ax.bar_label(b2, labels=[fmt(v) if v else "" for v in sops], fontsize=8.5, padding=2, rotation=90)  # 0: no bar
    if ia.get("ops_mean") is not None:
        b3 = ax.bar([0.2], [ia["ops_mean"]], 0.4, color="none", edgecolor="#dd8452", hatch="//",
                    label="input ops / sample (graded input)")
        ax.bar_label(b3, labels=[fmt(ia["ops_mean"])], fontsize=8.5, padding=2, rotation=90)
    _category_axis(ax, x, names)
    ax.set_yscale("log")
    ax.set_ylim(bottom=1)
    _log_headroom(ax, macs + sops + [ia.get("ops_mean") or 0], factor=2000)
    ax.set_ylabel("operations per sample (log)")
    ax.set_title("synaptic operations vs dense MACs")
    fig.legend(*ax.get_legend_handles_labels(), ncols=1, loc="outside lower center", frameon=False)
    return fig


def fig_sops(report: Report) -> str:
    """:func:`figure_sops` as inline SVG."""
    return svg(figure_sops(report), "synaptic operations per layer")


@_styled
def figure_agreement(report: Report) -> Figure | None:
    """Spike-count agreement per layer, one bar per backend that ran (None without a verify run)."""
    v = report.verify
    if not v or not v["backends"]:
        return None
    plt = _mpl()
    names = [layer["name"] for layer in v["backends"][0]["layers"]]
    x = np.arange(len(names))
    nb = len(v["backends"])
    w = 0.8 / nb
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.6 + 0.25 * nb), layout="constrained")
    lo = 100.0
    for k, b in enumerate(v["backends"]):
        vals = [100 * layer["spike_count_agreement"] for layer in b["layers"]]
        lo = min(lo, min(vals, default=100.0))
        ax.bar(x + (k - (nb - 1) / 2) * w, vals, w, label=backend_label(b["name"]))
    _category_axis(ax, x, names)
    bottom = max(0.0, lo - 5)
    ax.set_ylim(bottom, 100 + (100 - bottom) * 0.05)
    ax.set_ylabel("spike counts equal (%)")
    ax.set_title("spike counts equal to the reference's, per (sample, neuron)")
    fig.legend(*ax.get_legend_handles_labels(), ncols=1, loc="outside lower center", frameon=False)
    return fig


def fig_agreement(report: Report) -> str | None:
    """:func:`figure_agreement` as inline SVG (None without a verify run)."""
    fig = figure_agreement(report)
    return None if fig is None else svg(fig, "spike-count agreement per layer and backend")


__all__ = ["svg", "figure_firing_rates", "figure_raster", "figure_states", "figure_memory", "figure_sops",
           "figure_agreement", "fig_firing_rates", "fig_raster", "fig_states", "fig_memory", "fig_sops", "fig_agreement"]
