"""``qsnn-export``: freeze a model into integer tensors and write it for a target.

    qsnn-export model.pt --target numpy -o out/            # -> out/model.qsnn
    qsnn-export model.pt --target numpy -o out/mnist.qsnn
    qsnn-export weights.pt --model-class mypkg.nets:Net --target numpy -o out/
"""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from ..exporters import available_targets, get_exporter
from ..frozen import FrozenNet
from ..report import report_short
from .common import add_model_arguments, load_model, run_cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qsnn-export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    p.add_argument("--target", default="numpy", help=f"export target: {', '.join(available_targets())} (default numpy)")
    p.add_argument("-o", "--output", default="out", help="output file or directory (default: out/)")
    return p


def layer_table(net: FrozenNet, title: str) -> Table:
    """A short per-layer summary of a frozen net."""
    t = Table(title=title, caption=f"input {'×'.join(map(str, net.input.shape))} {net.input.bits}-bit, scale "
                                   f"{net.input.scale:.6g}; T={net.num_steps}")
    for col in ("layer", "weights", "in → out", "pool", "reset", "F/B_v", "θ (state units)"):
        t.add_column(col)
    for layer, (i, o) in zip(net.layers, net.layer_shapes()):
        t.add_row(layer.name, f"{layer.synapse} int{layer.weight_bits} {'×'.join(map(str, layer.weight.shape))}",
                  f"{'×'.join(map(str, i))} → {'×'.join(map(str, o))}", "×".join(map(str, layer.pool)) if layer.pool else "-",
                  layer.reset, f"{layer.frac_bits}/{layer.state_bits}",
                  f"{int(layer.threshold.min())}..{int(layer.threshold.max())}")
    return t


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        console = Console()
        exporter = get_exporter(args.target)
        loaded = load_model(args)
        paths = exporter(loaded.net, args.output, stem=loaded.name)
        faithful = loaded.net.metadata.get("deploy_faithful")
        console.print(layer_table(loaded.net, f"{loaded.name}: frozen, {'deploy-faithful' if faithful else 'rounded from a float model'}"))
        for p in paths:
            console.print(f"wrote [bold]{p}[/bold] (target {args.target})")
        console.print(report_short(loaded.net, loaded.name))
        console.print("spikes, synaptic operations and energy need data: qsnn-report MODEL --data DIR")
        return 0

    return run_cli(body)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
