"""``qsnn-export``: freeze a model into integer tensors and write it for a target.

    qsnn-export model.pt --target numpy -o out/            # -> out/model.qsnn
    qsnn-export model.pt --target numpy -o out/mnist.qsnn
    qsnn-export weights.pt --model-class mypkg.nets:Net --target numpy -o out/
    qsnn-export model.pt --target lava -o out/             # -> out/model.net (netx HDF5), fit per layer
    qsnn-export model.pt --target lava --check             # Loihi 2 constraint check only, writes nothing
    qsnn-export model.pt --target lava --strict -o out/    # exit 1, write nothing, unless stock Loihi fits
    qsnn-export model.pt --target lava --strict --margin-bits 1 -o out/   # ... and every field 1 bit under its limit
    qsnn-export model.pt --target xylo --strict -o out/    # -> out/model.npz: the keyword arguments of XyloSim.from_specification
    qsnn-export model.pt --target xylo --chip syns61201 --check   # the fit on Xylo Audio 2 (default syns63300, Xylo IMU)

Exit status: 0 on success; 1 when --check/--strict find a layer that does not fit the target
(hardware limits, or a neuron the stock hardware cannot run); 2 on bad input.
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..exporters import CHECKS, available_targets, get_exporter, target_suffix
from ..errors import QSNNError, SaturationWarning
from ..fileio import check_output_path, write_text_atomic
from ..frozen import FrozenNet
from ..log import get_logger
from ..report import report_short
from ..statebound import clip_risk_message, net_state_bounds
from ..verify import SATURATION_FIX
from .common import add_logging_arguments, add_model_arguments, load_model, run_cli

if TYPE_CHECKING:
    from ..lava.check import NetFit
    from ..xylo.check import XyloFit

logger = get_logger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The ``qsnn-export`` argument parser (``qsnn-export --help`` prints it)."""
    p = argparse.ArgumentParser(prog="qsnn-export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    p.add_argument("--target", default="numpy", help=f"export target: {', '.join(available_targets())} (default numpy)")
    p.add_argument("-o", "--output", default="out", help="output file or directory (default: out/)")
    p.add_argument("--check", action="store_true",
                   help="only check the net against the target's hardware limits (per layer), write nothing; "
                        "exit 1 when a layer does not fit")
    p.add_argument("--strict", action="store_true",
                   help="refuse to export (exit 1, nothing written) when any layer misses a hardware limit or "
                        "needs a neuron model the stock hardware does not have")
    p.add_argument("--check-json", metavar="FILE", help="also write the constraint check as JSON")
    p.add_argument("--margin-bits", type=int, default=None, metavar="N",
                   help="with --check or --strict (target lava): also refuse when a field (weight, threshold or bias "
                        "mantissa, state, current) is less than N bits under its limit; the margins table shows each")
    p.add_argument("--chip", default=None, metavar="VERSION",
                   help="target xylo: the chip version, syns63300 (Xylo IMU, default, or the model's recorded one) "
                        "or syns61201 (Xylo Audio 2); syns65302 (Xylo Audio 3) is refused: it needs samna")
    add_logging_arguments(p)
    return p


def fit_table(fit: NetFit | XyloFit, target: str) -> Table:
    """Per-layer result of a target's constraint check."""
    t = Table(title=f"{target}: per-layer fit ({fit.summary()})", show_lines=True)
    for col in ("layer", "route", getattr(fit, "capacity_label", "cores"), "fits stock", "detail"):
        t.add_column(col, overflow="fold")
    for lf in fit.layers:
        t.add_row(lf.name, lf.route, str(lf.cores), "[green]yes[/green]" if lf.fits else "[red]no[/red]", lf.detail())
    return t


def layer_table(net: FrozenNet, title: str) -> Table:
    """A short per-layer summary of a frozen net."""
    t = Table(title=title, caption=f"input {'×'.join(map(str, net.input.shape))} {net.input.bits}-bit, scale "
                                   f"{net.input.scale:.6g}; T={net.num_steps}")
    for col in ("layer", "weights", "in → out", "pool", "reset", "F/B_v", "θ (state units)"):
        t.add_column(col)
    for layer, (i, o) in zip(net.layers, net.layer_shapes()):
        t.add_row(layer.name, f"{layer.synapse.kind} int{layer.synapse.weight_bits} {'×'.join(map(str, layer.synapse.weight.shape))}",
                  f"{'×'.join(map(str, i))} → {'×'.join(map(str, o))}", "×".join(map(str, layer.synapse.pool)) if layer.synapse.pool else "-",
                  getattr(layer.neuron, "reset", "-"), f"{layer.neuron.frac_bits}/{layer.neuron.state_bits}",
                  f"{int(layer.neuron.threshold.min())}..{int(layer.neuron.threshold.max())}")
    return t


def state_warnings(net: FrozenNet) -> list[str]:
    """One sentence per layer whose state no proof keeps inside B_v bits (:mod:`qsnn_deploy.statebound`)."""
    return [clip_risk_message(layer, bound, SATURATION_FIX)
            for layer, bound in zip(net.layers, net_state_bounds(net)) if not bound.saturation_free]


def main(argv: list[str] | None = None) -> int:
    """``qsnn-export``: freeze the model and write it for ``--target``. Exit 0 on success, 1 when
    ``--check``/``--strict`` find a layer that does not fit, 2 on bad input.
    """
    args = build_parser().parse_args(argv)

    def body() -> int:
        console = Console()
        exporter = get_exporter(args.target)
        target_options = {}
        if args.chip is not None:
            if args.target != "xylo":
                raise QSNNError(f"--chip {args.chip}: only for --target xylo")
            from ..xylo.chips import chip
            try:
                chip(args.chip)
            except ValueError as exc:
                raise QSNNError(str(exc)) from None
            target_options["version"] = args.chip
        checking = args.check or args.strict or args.check_json
        if checking and args.target not in CHECKS.names():
            raise QSNNError(f"target {args.target!r} has no constraint check (targets with one: {', '.join(CHECKS.names())})")
        if args.check_json:
            check_output_path(args.check_json, "file")
        if args.margin_bits is not None and (args.target != "lava" or not (args.check or args.strict) or args.margin_bits < 0):
            raise QSNNError(f"--margin-bits {args.margin_bits}: needs --target lava with --check or --strict, and N ≥ 0")
        # refuse an unwritable output before any work (nothing is created here), and again once the
        # file name (the model's stem) is known
        suffix = target_suffix(args.target)
        out_is_file = bool(suffix) and Path(args.output).suffix == suffix
        if not args.check:
            check_output_path(args.output, "file" if out_is_file else "dir")
        with warnings.catch_warnings():
            # freeze's SaturationWarning says what state_warnings() prints below for every model source
            warnings.filterwarnings("ignore", category=SaturationWarning)
            loaded = load_model(args)
        if not args.check and suffix and not out_is_file:
            check_output_path(Path(args.output) / f"{loaded.name}{suffix}", "file")
        fit = CHECKS.get(args.target)(loaded.net, **target_options) if args.target in CHECKS.names() else None
        if fit is not None:
            console.print(fit_table(fit, args.target))
        margins, short = None, []
        if checking and args.target == "lava":  # per-layer margins to the limits (lava/margins.py)
            from ..lava.margins import margin_line, margins_json, margins_table, net_margins, short_margins

            margins = net_margins(loaded.net, fit)
            console.print(margins_table(margins))
            if args.margin_bits is not None:
                short = short_margins(margins, args.margin_bits)
                for m in short:
                    console.print(f"[red]{escape(margin_line(m, args.margin_bits))}[/red]")
        if args.check_json:
            doc = fit.to_dict() if margins is None else {**fit.to_dict(), "margins": margins_json(margins)}
            write_text_atomic(args.check_json, json.dumps(doc, indent=2, default=str))
            logger.info("wrote %s", args.check_json)
        if args.check:
            console.print("[green]fits[/green]" if fit.fits and not short else
                          "[red]does not fit stock hardware[/red]" if not fit.fits else
                          f"[red]fits, but {len(short)} field(s) under the {args.margin_bits}-bit margin[/red]")
            return 0 if fit.fits and not short else 1
        clip_warnings = state_warnings(loaded.net)
        if clip_warnings and getattr(fit, "saturation_exact", False):
            # the target's saturating arithmetic IS the neuron kind (Xylo's int16 states): exact, not a risk
            console.print(f"saturation: {len(clip_warnings)} layer(s) may saturate their int16 states; that is "
                          f"{args.target}'s own arithmetic, reproduced exactly by every backend that runs it")
            clip_warnings = []
        for w in clip_warnings:
            console.print(f"[yellow]warning: {escape(w)}[/yellow]")
        if args.strict and not fit.fits:
            console.print(f"[red]--strict: not exported[/red] ({fit.summary()})")
            if any(l.route == "custom" for l in fit.layers):
                console.print("to run on stock Loihi 2, train with [bold]qsnn-train --profile loihi[/bold] (docs/lava.md: which route)")
            return 1
        if args.strict and clip_warnings:
            console.print("[red]--strict: not exported[/red] (the state may clip; see the warnings above)")
            return 1
        if args.strict and short:
            console.print(f"[red]--strict: not exported[/red] ({len(short)} field(s) less than --margin-bits "
                          f"{args.margin_bits} under their limit; listed above)")
            return 1
        paths = exporter(loaded.net, args.output, stem=loaded.name, **target_options)
        faithful = loaded.net.metadata.get("deploy_faithful")
        console.print(layer_table(loaded.net, f"{loaded.name}: frozen, {'deploy-faithful' if faithful else 'rounded from a float model'}"))
        for p in paths:
            logger.info("wrote %s (target %s)", p, args.target)
        console.print(report_short(loaded.net, loaded.name))
        logger.info("spikes, synaptic operations and energy need data: qsnn-report MODEL --data DIR")
        return 0

    return run_cli(body, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
