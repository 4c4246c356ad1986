"""``qsnn-verify``: run the PyTorch model and the backends on the same inputs and compare every
LIF layer's spike train, every step, against the NumPy reference.

    qsnn-verify model.pt --data ../shared/data/mnist -n 1000
    qsnn-verify model.pt --data ../shared/data/mnist -n 200 --backends torch --device cuda --json verify.json
    qsnn-verify net.qsnn --random -n 16 --steps 50

Exit status: 0 when every backend that must be bit-exact is (the NumPy reference, the torch
backend, and the PyTorch model if it is deploy-faithful); 1 otherwise; 2 on bad input.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.markup import escape
from rich.table import Table

from ..errors import QSNNError
from ..fileio import check_output_path, write_text_atomic
from ..log import get_logger
from ..verify import VerifyReport, verify
from .common import add_input_arguments, add_logging_arguments, add_model_arguments, load_model, run_cli, show_progress

logger = get_logger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The ``qsnn-verify`` argument parser (``qsnn-verify --help`` prints it)."""
    p = argparse.ArgumentParser(prog="qsnn-verify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    add_input_arguments(p, samples=100, data_help="MNIST / FashionMNIST idx folder, or its parent (e.g. ../shared/data: "
                        "the dataset is picked by the model's name); flat-input nets get flattened images")
    p.add_argument("--backends", default="torch", help="comma-separated backends besides the NumPy reference (default: torch)")
    p.add_argument("--device", default="cpu", help="device of the PyTorch model and torch backend: cpu or cuda")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--saturation", default="count", choices=("count", "raise"),
                   help="state beyond B_v bits: clip and count (default) or stop with an error")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when the state clipped anywhere (saturation is a miss), even if every backend is bit-exact")
    p.add_argument("--json", help="write the full report (schema qsnn-verify v1, docs/verify-json.md)")
    add_logging_arguments(p)
    return p


def _inputs(args, net):
    if args.random:
        rng = np.random.default_rng(args.seed)
        lo, hi = net.input.value_range
        x = rng.integers(lo, hi + 1, size=(args.num_samples,) + tuple(net.input.shape))
        return x, None, "random"
    from ..data import default_data_dir, fit_to_input, load_idx_dataset, resolve_idx_dir

    hint = " ".join(str(v) for v in (args.model, net.metadata.get("arch_name", ""), net.metadata.get("checkpoint", "")))
    data_dir = resolve_idx_dir(Path(args.data) if args.data else default_data_dir("mnist"), hint=hint)
    encoding = net.metadata.get("input_encoding")
    if encoding:  # the net records how images become its input (e.g. rows over time): apply it
        from ..data.rows import encode_rows

        x, y = load_idx_dataset(data_dir, split=args.split, limit=args.num_samples)
        try:
            return encode_rows(x, encoding), y, f"{data_dir} (encoded: {_describe_encoding(encoding)})"
        except ValueError as exc:
            raise QSNNError(f"{args.model}: {exc}") from exc
    if int(np.prod(net.input.shape)) != 28 * 28:
        raise QSNNError(f"the net's input is {tuple(net.input.shape)}; --data reads 1x28x28 MNIST-style idx folders "
                        "(fed as (1, 28, 28) or flattened to (784,)). Use --random.")
    x, y = load_idx_dataset(data_dir, split=args.split, limit=args.num_samples)
    return fit_to_input(x, net.input.shape), y, str(data_dir)


def _describe_encoding(enc: dict) -> str:
    """A few words for an input encoding, e.g. ``rows 16×16, counts 0..15, 1 step/row``."""
    if enc.get("kind") == "rows":
        blank = f" + {enc.get('blank_steps')} blank" if enc.get("blank_steps") else ""
        return (f"rows {enc.get('size')}×{enc.get('size')}, counts 0..{enc.get('max_count')}, "
                f"{enc.get('steps_per_row')} step/row{blank}")
    return str(enc.get("kind"))


def print_report(console: Console, report: VerifyReport) -> None:
    """Print a :class:`~qsnn_deploy.verify.VerifyReport`: per backend and layer the spike-train verdict, then
    predictions, accuracy and run time per backend, each differing backend's first mismatch, the verdict
    and the warnings.
    """
    t = Table(title=f"{report.model}: {report.n_samples} samples × {report.num_steps} steps vs {report.reference}")
    for col in ("backend", "layer", "spike trains", "diffs", "spikes", "count agr.", "sat."):
        t.add_column(col)
    for b in report.backends:
        for i, layer in enumerate(b.layers):
            verdict = "[green]bit-exact[/green]" if layer.bit_exact else ("[red]DIFFER[/red]" if b.exact_required else "[yellow]differ[/yellow]")
            spikes = str(layer.spikes) if layer.spikes == layer.reference_spikes else f"{layer.spikes} (ref {layer.reference_spikes})"
            t.add_row(b.name if i == 0 else "", layer.name, verdict, str(layer.mismatched_values), spikes,
                      f"{100 * layer.spike_count_agreement:.2f}%", str(layer.saturations))
    console.print(t)
    s = Table(title="predictions")
    for col in ("backend", "exact?", "verdict", "pred. agr.", "accuracy", "s"):
        s.add_column(col)
    acc = lambda a: "-" if a is None else f"{100 * a:.2f}%"  # noqa: E731
    s.add_row(f"{report.reference} (reference)", "yes", "reference", "100.00%", acc(report.reference_accuracy), f"{report.reference_seconds:.2f}")
    for b in report.backends:
        s.add_row(b.name, "yes" if b.exact_required else "no: float",
                  "[green]bit-exact[/green]" if b.bit_exact else ("[red]NOT EQUAL[/red]" if b.exact_required else "[yellow]measured[/yellow]"),
                  f"{100 * b.prediction_agreement:.2f}%", acc(b.accuracy), f"{b.seconds:.2f}")
    console.print(s)
    for b in report.backends:
        for layer in b.layers:
            if layer.first_mismatch is not None:
                console.print(f"[bold]{b.name}[/bold] first mismatch: {layer.first_mismatch.describe()}")
                break
    verdict = "[bold green]ALL BIT-EXACT[/bold green]" if report.all_exact else "[bold red]NOT BIT-EXACT[/bold red]"
    if report.warnings:
        verdict += f" [bold yellow](weak evidence: {len(report.warnings)} warning{'s' if len(report.warnings) > 1 else ''})[/bold yellow]"
    console.print(verdict)
    for w in report.warnings + report.saturation_warnings:
        console.print(f"[yellow]warning: {escape(w)}[/yellow]")


def main(argv: list[str] | None = None) -> int:
    """``qsnn-verify``: compare the PyTorch model and the backends with the NumPy reference. Exit 0 when
    every backend that must be bit-exact is, 1 otherwise (or on a clip with ``--strict``), 2 on bad input.
    """
    args = build_parser().parse_args(argv)

    def body() -> int:
        console = Console()
        if args.json:
            check_output_path(args.json, "file")  # before the (long) run, not after it
        loaded = load_model(args)
        x, y, source = _inputs(args, loaded.net)
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True, disable=not show_progress()) as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done)

            report = verify(loaded.net, x, y, model=loaded.model, layers=loaded.layers, backends=backends, num_steps=args.steps,
                            device=args.device, batch_size=args.batch_size, model_name=loaded.name,
                            saturation=args.saturation, progress=progress)
        logger.info("inputs: %s", source)
        print_report(console, report)
        if args.json:
            write_text_atomic(args.json, report.to_json())
            logger.info("wrote %s", args.json)
        if args.strict and report.saturation_warnings:
            console.print("[red]--strict: the state clipped (see the warnings above)[/red]")
            return 1
        return 0 if report.all_exact else 1

    return run_cli(body, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
