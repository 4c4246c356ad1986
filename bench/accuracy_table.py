"""Accuracy table in the layout of the paper's Table II: precision × LR schedule, best / mean / σ of
test accuracy over n trials, for MNIST and FashionMNIST, trained with ``qsnn-train``'s Trainer.

    python bench/accuracy_table.py --setting reduced     # finishes on a 2-core CPU (~10-15 min)
    python bench/accuracy_table.py --setting full        # the paper's setting: for a GPU

reduced: 2,000 training digits, 1 epoch, T=10, 2 trials, 1,000 test digits (a smoke-level table:
the numbers show the recipe learns, they are NOT the paper's figures).
full: all 60,000, 100 epochs, T=100, 3 trials, 10,000 test digits, cosine period 10 epochs.
Writes a Markdown table to stdout and, with --json, every trial's metrics.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qsnn_deploy.train import TrainConfig, Trainer  # noqa: E402

SETTINGS = {
    "reduced": dict(limit_train=2000, limit_test=1000, epochs=1, num_steps=10, trials=2, period_epochs=1),
    "full": dict(limit_train=None, limit_test=None, epochs=100, num_steps=100, trials=3, period_epochs=10),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setting", choices=sorted(SETTINGS), default="reduced")
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    p.add_argument("--precisions", nargs="+", default=["float", "int4"])
    p.add_argument("--schedules", nargs="+", default=["none", "lrstep", "lossstep", "cosine"])
    p.add_argument("--device", default="auto")
    p.add_argument("--json")
    args = p.parse_args()
    s = SETTINGS[args.setting]
    rows, raw = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for ds in args.datasets:
            for prec in args.precisions:
                for sched in args.schedules:
                    accs = []
                    for trial in range(s["trials"]):
                        cfg = TrainConfig(dataset=ds, precision=prec, schedule=sched, epochs=s["epochs"], num_steps=s["num_steps"],
                                          limit_train=s["limit_train"], limit_test=s["limit_test"], period_epochs=s["period_epochs"],
                                          step_epochs=max(1, s["epochs"] // 4), seed=trial, device=args.device,
                                          out_dir=f"{tmp}/{ds}-{prec}-{sched}-{trial}")
                        m = Trainer(cfg, log=lambda msg: None).fit()
                        accs.append(100 * m["test_accuracy"])
                        raw.append({"dataset": ds, "precision": prec, "schedule": sched, "trial": trial, **m})
                    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
                    rows.append((ds, prec, sched, max(accs), statistics.mean(accs), sd))
                    print(f"{ds:13s} {prec:6s} {sched:9s} best {max(accs):6.2f}  mean {statistics.mean(accs):6.2f}  σ {sd:5.2f}", flush=True)
    print(f"\nTable II layout ({args.setting} setting: {s})\n")
    print("| dataset | precision | schedule | best (%) | mean (%) | σ |")
    print("|---|---|---|---|---|---|")
    for ds, prec, sched, best, mean, sd in rows:
        print(f"| {ds} | {prec} | {sched} | {best:.2f} | {mean:.2f} | {sd:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=2))


if __name__ == "__main__":
    main()
