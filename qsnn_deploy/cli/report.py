"""``qsnn-report``: per-layer memory, spikes and synaptic operations of a deployed network.

    qsnn-report model.pt                                        # static figures only (no data)
    qsnn-report model.pt --data ../shared/data/mnist -n 1000 --json report.json --html report.html
    qsnn-report net.qsnn --random -n 32 --steps 50
    qsnn-report model.pt --data ../shared/data/mnist -n 100 --target lava

With data, the NumPy reference simulates the inputs (states recorded), and — when MODEL is a
torch model — :func:`qsnn_deploy.verify.verify` compares the trained model and the other backends
against it (``--verify-backends``; ``--no-verify`` skips it). Definitions, units and the JSON
schema (``qsnn-report`` v4): docs/report.md. The energy estimate uses Loihi 1 (2018) per-operation
energies unless ``--energy-costs FILE.json`` / ``--energy-pj-per-*`` give your own.

Exit status: 0 on success, 2 on bad input.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import QSNNError
from ..fileio import check_output_path
from ..log import get_logger
from ..report import (ActivityAccumulator, add_energy_arguments, collect_activity, compute_report,
                      energy_model_from_args, print_report, resolve_backends, write_html, write_json)
from ..verify_report import REFERENCE
from .common import add_input_arguments, add_logging_arguments, add_model_arguments, load_model, run_cli, show_progress

logger = get_logger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The ``qsnn-report`` argument parser (``qsnn-report --help`` prints it)."""
    p = argparse.ArgumentParser(prog="qsnn-report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    add_input_arguments(p, samples=1000, data_help="MNIST / FashionMNIST idx folder, or its parent (the dataset is "
                        "picked by the model's name); without --data/--random: static figures only")
    p.add_argument("--batch-size", type=int, default=50, help="samples simulated together (states are recorded)")
    p.add_argument("--raster-sample", type=int, default=0, help="sample shown in the spike raster (default 0)")
    p.add_argument("--target", help="deployment target whose fit to show (e.g. lava); shows a note while none is registered")
    p.add_argument("--verify-backends", default="auto",
                   help="backends compared with the reference besides the trained model: 'auto' (default: torch, onnx, "
                        "nir, and the --target's own, e.g. loihi,lava or xylo; those that cannot run here, or "
                        "whose kernels refuse the net's neuron kinds, are listed as not run), a comma-separated "
                        "list, or '' for none")
    p.add_argument("--no-verify", action="store_true", help="skip the agreement check against the trained model")
    p.add_argument("--device", default="cpu", help="device of the PyTorch model and torch backend in the agreement check")
    p.add_argument("--json", help="write the report as JSON (schema qsnn-report v4)")
    p.add_argument("--html", help="write a self-contained HTML page with the plots")
    p.add_argument("--neurobench", nargs="?", const=True, default=None, metavar="FILE",
                   help="also measure the net with NeuroBench's own metrics (footprint, connection and activation "
                        "sparsity, synaptic operations) on the same inputs and show them next to ours "
                        "(docs/report.md, 'NeuroBench'): on the terminal, in --json (the 'neurobench' object) and "
                        "in --html (the 'neurobench' section); FILE: also write that comparison as its own JSON "
                        "file. Needs data and the peers extra (tools/install_peers.py)")
    add_energy_arguments(p)
    add_logging_arguments(p)
    return p


def _neurobench_section(console, net, x, y, args, report, model, path) -> None:
    """NeuroBench's metrics next to ours on the same net and inputs (qsnn_deploy.report.neurobench): printed,
    written to ``path`` (when given) and set as ``report.neurobench`` (the JSON's and the HTML's section)."""
    import json

    from rich.table import Table

    from ..report import to_dict
    from ..report.neurobench import compare_with_neurobench, report_section

    try:
        import neurobench  # noqa: F401
    except ImportError:
        raise QSNNError("--neurobench needs NeuroBench: python tools/install_peers.py (the peers extra)") from None
    cmp = compare_with_neurobench(net, x, y, num_steps=args.steps, report=to_dict(report), model=model)
    table = Table(title=f"NeuroBench {cmp['neurobench_version']} vs this report ({cmp['n_samples']} samples, "
                        f"T = {cmp['num_steps']}; spikes NeuroBench saw = reference: {cmp['spikes_identical']})")
    for col in ("metric", "NeuroBench", "ours (report)", "ours, NeuroBench's definition", "equal"):
        table.add_column(col)
    fmt = lambda v: "–" if v is None else (f"{v:.4f}" if abs(float(v)) < 10 else f"{float(v):,.1f}")  # noqa: E731
    for r in cmp["rows"]:
        table.add_row(r["metric"], fmt(r["neurobench"]), fmt(r["ours"]), fmt(r["ours_same_definition"]),
                      "–" if r["equal"] is None else ("yes" if r["equal"] else "NO"))
    console.print(table)
    for r in cmp["rows"]:
        console.print(f"• {r['metric']}: {r['note']}", highlight=False)
    report.neurobench = report_section(cmp)
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cmp, f, indent=1)
        logger.info("wrote %s", path)


def main(argv: list[str] | None = None) -> int:
    """``qsnn-report``: per-layer memory, spikes, synaptic operations and energy of a deployed net, as a
    table, JSON and HTML. Exit 0 on success, 2 on bad input.
    """
    args = build_parser().parse_args(argv)

    def body() -> int:
        from .verify import _inputs

        console = Console()
        t0 = time.perf_counter()
        nb_file = args.neurobench if isinstance(args.neurobench, str) else None
        if (args.data or args.random) and args.num_samples < 1:
            raise QSNNError(f"-n {args.num_samples}: a report on data needs at least 1 sample")
        if args.steps is not None and args.steps < 1:
            raise QSNNError(f"--steps {args.steps}: needs at least 1 time step")
        if args.neurobench and not (args.data or args.random):
            raise QSNNError("--neurobench needs inputs: give --data DIR or --random")
        for out in (args.json, args.html, nb_file):  # before the (long) run, not after it
            if out:
                check_output_path(out, "file")
        energy_model = energy_model_from_args(args)  # bad costs are refused before the run
        loaded = load_model(args)
        net = loaded.net
        activity = vreport = None
        skipped: list[dict[str, str]] = []
        if args.data or args.random:
            x, y, source = _inputs(args, net)
            # [N, *shape], or [T, N, *shape] for an encoded sequence (e.g. rows over time)
            n_samples = x.shape[1] if np.ndim(x) == len(net.input.shape) + 2 else len(x)
            if n_samples == 0:
                raise QSNNError(f"no samples in {source} (split {args.split}): nothing to report on")
            if not 0 <= args.raster_sample < n_samples:
                raise QSNNError(f"--raster-sample {args.raster_sample} is outside the {n_samples} samples")
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True, disable=not show_progress()) as bar:
                if loaded.model is not None and not args.no_verify:
                    # One reference run serves both: verify hands each batch's result (states recorded)
                    # to the activity accumulator instead of the report simulating the inputs again.
                    acc = ActivityAccumulator(net, args.raster_sample, source)
                    backends, skipped = resolve_backends(args.verify_backends, args.target, net)
                    from ..verify import verify

                    tasks: dict[str, int] = {}

                    def progress(stage: str, done: int, total: int) -> None:
                        if stage not in tasks:
                            label = "simulate (numpy, states)" if stage == REFERENCE else f"verify: {stage}"
                            tasks[stage] = bar.add_task(label, total=total)
                        bar.update(tasks[stage], completed=done)

                    vreport = verify(net, x, y, model=loaded.model, layers=loaded.layers, backends=backends, num_steps=args.steps,
                                     device=args.device, batch_size=args.batch_size, model_name=loaded.name,
                                     progress=progress, on_reference=acc.add, record_reference_states=True)
                    activity = acc.finish()
                else:
                    task = bar.add_task("simulate (numpy, states)", total=n_samples)
                    activity = collect_activity(net, x, y, num_steps=args.steps, batch_size=args.batch_size,
                                                raster_sample=args.raster_sample, source=source,
                                                progress=lambda k: bar.advance(task, k))
            logger.info("inputs: %s (%d samples)", source, n_samples)
        report = compute_report(net, activity, vreport, model_name=loaded.name, target=args.target,
                                energy_model=energy_model, skipped_backends=skipped)
        print_report(console, report)
        if args.neurobench:
            _neurobench_section(console, net, x, y, args, report, loaded.model, nb_file)
        if activity is not None and loaded.model is None:
            logger.info("no trained model was given (a .qsnn file): no agreement check")
        if args.json:
            write_json(report, args.json)
            logger.info("wrote %s", args.json)
        if args.html:
            write_html(report, args.html)
            logger.info("wrote %s", args.html)
        logger.info("done in %.1f s", time.perf_counter() - t0)
        return 0

    return run_cli(body, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
