"""``qsnn-train``: the papers' QAT recipe; every model it writes deploys bit-exact.

    qsnn-train --dataset mnist --precision int4 --schedule cosine --epochs 4 --steps 25 --out runs/mnist
    qsnn-train --dataset fashion-mnist --precision binary --anneal-alpha 1e-3 --anneal-initial 0.2 ...
    qsnn-train --resume runs/mnist/last.pt --epochs 8 --out runs/mnist
    qsnn-train --dataset mnist-rows --profile xylo --xylo-chip syns63300 --precision int8 --epochs 20 --out runs/xylo
    qsnn-train sweep --dataset mnist --trials 20 --storage sqlite:///sweep.db --epochs 2 --steps 25
    torchrun --nproc-per-node 2 -m qsnn_deploy.cli.train --dataset mnist ...     (DistributedDataParallel)

Writes into --out: <name>.pt (qsnn checkpoint: arch + weights + config + metrics, resumable),
last.pt (after every epoch), steps.csv (loss and LR per step), metrics.json (per epoch and final)
and training.png (loss, accuracy and LR curves). Presets (Table I of the paper) fill every option
left unset. On Linux with glibc the command runs with malloc tuned for tensor work (freed activations are
reused instead of returned to the kernel: qsnn_deploy.malloc_tuning; QSNN_MALLOC_TUNING=0 turns it off).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from ..fileio import check_output_path
from ..log import get_logger
from ..models.zoo import PRECISION_BITS
from ..train.schedules import SCHEDULES
from ..train.trainer import TrainConfig, Trainer
from .common import add_logging_arguments, run_cli

logger = get_logger("qsnn_deploy.cli.train")  # the same name when run as __main__

DATASETS = ("mnist", "fashion-mnist", "mnist-rows", "fashion-mnist-rows", "dvs128", "synthetic-dvs")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Add every training option (``qsnn-train`` and ``qsnn-train sweep`` share them); unset options take the
    dataset's preset.
    """
    p.add_argument("--dataset", default="mnist", choices=DATASETS)
    p.add_argument("--precision", default="int4", choices=sorted(PRECISION_BITS))
    p.add_argument("--schedule", default="cosine", choices=SCHEDULES)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--steps", type=int, help="T while training (preset: 100 for MNIST, 200 for DVS128)")
    p.add_argument("--eval-steps", type=int, help="T for test accuracy and the saved model (default: --steps)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--beta", type=float)
    p.add_argument("--threshold", type=float)
    p.add_argument("--slope", type=float, help="fast-sigmoid surrogate slope k")
    p.add_argument("--dropout", type=float)
    p.add_argument("--reset", default="subtract", choices=("subtract", "zero"))
    p.add_argument("--neuron", default="lif", choices=("lif", "cuba"),
                   help="neuron kind of every spiking layer: lif (snnTorch Leaky) or cuba (Synaptic: a decaying current "
                        "feeds the membrane; with --profile loihi it maps onto Loihi 2's stock LIF with its own du)")
    p.add_argument("--alpha", type=float, help="cuba: current decay α (default 0.5)")
    p.add_argument("--profile", default="default", choices=("default", "loihi", "xylo"),
                   help="hardware profile: 'loihi' trains zero-reset, one-θ/β-per-layer, bias-free, BatchNorm-free layers "
                        "that run on Lava's stock LIF (β defaults to 0.5; see docs/lava.md); 'xylo' trains SynSense Xylo "
                        "nets (16 input channels, recurrent hidden layer, readout) that fit --xylo-chip (the rows datasets' "
                        "default)")
    p.add_argument("--xylo-chip", default="syns63300", choices=("syns63300", "syns61201"),
                   help="xylo profile: the chip the net must fit (syns63300 Xylo IMU: 16 readouts, default; syns61201 "
                        "Xylo Audio 2: 8 readouts)")
    p.add_argument("--hidden", type=int, help="rows datasets: hidden Xylo neurons per layer (default 128)")
    p.add_argument("--hidden-layers", type=int, default=1, help="rows datasets: recurrent hidden Xylo layers (default 1)")
    p.add_argument("--steps-per-row", type=int, default=1, help="rows datasets: steps each image row is shown for")
    p.add_argument("--blank-steps", type=int, default=0, help="rows datasets: silent steps after the last row")
    p.add_argument("--float-neurons", action="store_true", help="plain snntorch.Leaky instead of the deploy-faithful QLeaky")
    p.add_argument("--period-epochs", type=float, help="cosine period in epochs (paper: 10)")
    p.add_argument("--step-epochs", type=int, default=10, help="lrstep: halve every N epochs")
    p.add_argument("--loss-patience", type=int, default=3, help="lossstep: halve after P epochs without improvement")
    p.add_argument("--grad-clip", type=float, help="max gradient norm (0 = off; preset 1.0)")
    p.add_argument("--weight-clip", type=float, help="synaptic weights clamped to ±c (0 = off; preset 1.0)")
    p.add_argument("--anneal-alpha", type=float, help="threshold annealing: θ += (θ_final-θ)·α after every step")
    p.add_argument("--anneal-initial", type=float, help="θ_0 for threshold annealing")
    p.add_argument("--anneal-final", type=float, help="θ_final (default: the preset threshold)")
    p.add_argument("--early-stopping", type=int, metavar="PATIENCE", help="stop after PATIENCE epochs without a better validation accuracy; restores the best weights")
    p.add_argument("--keep-epochs", default="", metavar="all|N,N,...",
                   help="also keep last.pt as epoch_<N>.pt after these epochs (e.g. 10,30,50: the ends of the cosine "
                        "descents) or after every epoch ('all'); each is resumable and deployable")
    p.add_argument("--val-size", type=int, default=0, help="validation samples taken from the end of the training set")
    p.add_argument("--limit-train", type=int)
    p.add_argument("--limit-test", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    p.add_argument("--out", default="runs/qsnn", help="output folder")
    p.add_argument("--name", default="model", help="file stem of the final checkpoint")
    p.add_argument("--loss", default="mse_count", choices=("mse_count", "ce_count"),
                   help="spike-count loss: the papers' MSE to 0.8·T / 0.2·T (default), or cross entropy of the counts")
    p.add_argument("--fixed-frac-bits", action="store_true",
                   help="default profile: keep F = 6 in every layer instead of re-fitting it after every epoch to the "
                        "largest F whose proven state bound cannot clip (a model trained this way may clip when deployed)")
    p.add_argument("--init-from", metavar="CKPT",
                   help="start from the weights of a qsnn checkpoint of the same arch (fine-tuning with a new schedule)")


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    """The :class:`~qsnn_deploy.train.trainer.TrainConfig` the parsed command line describes."""
    return TrainConfig(
        dataset=a.dataset, precision=a.precision, schedule=a.schedule, epochs=a.epochs, num_steps=a.steps,
        eval_steps=a.eval_steps, batch_size=a.batch_size, lr=a.lr, beta=a.beta, threshold=a.threshold, slope=a.slope,
        dropout=a.dropout, reset=a.reset, neuron=a.neuron, alpha=a.alpha, deploy_faithful=not a.float_neurons, profile=a.profile, xylo_chip=a.xylo_chip,
        hidden=a.hidden, hidden_layers=a.hidden_layers, steps_per_row=a.steps_per_row, blank_steps=a.blank_steps, period_epochs=a.period_epochs,
        step_epochs=a.step_epochs, loss_patience=a.loss_patience, grad_clip=a.grad_clip, weight_clip=a.weight_clip,
        anneal_alpha=a.anneal_alpha, anneal_initial=a.anneal_initial, anneal_final=a.anneal_final,
        early_stopping=a.early_stopping, keep_epochs=a.keep_epochs, val_size=a.val_size, limit_train=a.limit_train, limit_test=a.limit_test,
        seed=a.seed, loss=a.loss, init_from=a.init_from, fit_frac_bits=not a.fixed_frac_bits, data_dir=a.data_dir, device=a.device, out_dir=a.out, name=a.name)


#: command-line option (argparse dest) -> the TrainConfig field it sets
FIELD_OF_DEST = {"steps": "num_steps", "float_neurons": "deploy_faithful", "out": "out_dir",
                 "fixed_frac_bits": "fit_frac_bits"}


def explicit_fields(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The :class:`TrainConfig` fields the user gave on the command line ``argv`` (given, not defaulted):
    a resume compares only these with the checkpoint's config."""
    defaults = {a.dest: a.default for a in parser._actions}
    try:
        for action in parser._actions:
            action.default = argparse.SUPPRESS
        given = vars(parser.parse_args(argv))
    finally:
        for action in parser._actions:
            action.default = defaults[action.dest]
    known = {f.name for f in fields(TrainConfig)}
    return {FIELD_OF_DEST.get(dest, dest) for dest in given} & known


def main(argv: list[str] | None = None) -> int:
    """``qsnn-train`` (or ``qsnn-train sweep ...``): train one model, or run an Optuna search. Exit 0 on
    success, 2 on bad input.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sweep"]:
        p = argparse.ArgumentParser(prog="qsnn-train sweep", description="Optuna TPE search (validation accuracy)")
        add_train_arguments(p)
        p.add_argument("--trials", type=int, default=10)
        p.add_argument("--storage", default="sqlite:///sweep.db", help="any Optuna storage URL (sqlite, postgresql, ...)")
        p.add_argument("--study", default="qsnn", help="study name (shared by every process of one search)")
        add_logging_arguments(p)
        args = p.parse_args(argv[1:])

        def sweep_body() -> int:
            from ..train.sweep import run_sweep

            if args.quiet:  # Optuna logs every trial on its own logger
                import optuna

                optuna.logging.set_verbosity(optuna.logging.WARNING)
            summary = run_sweep(config_from_args(args), args.trials, args.storage, args.study, seed=args.seed)
            print(json.dumps(summary, indent=2))
            return 0

        return run_cli(sweep_body, args)
    p = argparse.ArgumentParser(prog="qsnn-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(p)
    p.add_argument("--resume", help="continue a run from its last.pt / checkpoint (config is taken from it; it may change "
                                    "only --epochs, --early-stopping, --eval-steps, --out, --device, --data-dir, --name, --keep-epochs: another option "
                                    "that differs from the checkpoint's run is refused, naming it)")
    add_logging_arguments(p)
    args = p.parse_args(argv)

    def body() -> int:
        check_output_path(args.out, "dir")  # before loading data and training, not after an epoch
        explicit = explicit_fields(p, argv) if args.resume else None
        Trainer(config_from_args(args), resume=args.resume, explicit=explicit).fit()
        return 0

    return run_cli(body, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
