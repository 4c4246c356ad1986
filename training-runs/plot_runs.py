"""Plot the issue-28 runs' test accuracy per epoch beside the paper's figure and the shipped model.

    python training-runs/plot_runs.py            # writes training-runs/progress.png

One panel per dataset; each line is one run folder's epochs.json (test accuracy at T = 100 on all
10,000 test images, of the deploy-faithful PyTorch model the trainer tests after every epoch). Marked:
the paper's Table II mean ± σ (int4, cosine), the accuracy of the model shipped in examples/ now (from
its metrics note), and the epochs where a run's learning rate reaches 0 (the ends of its cosine
descents: the declared shipping candidates of mnist_t100_s1 and fmnist_q4; mnist_t100 chose on a
validation split). The figures come from those files and bench/accuracy_table.py's PAPER (Table II).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(root))
sys.path.insert(0, str(root / "bench"))

from accuracy_table import PAPER  # noqa: E402  (Table II, int4, cosine, T = 100: mean %, σ)
from qsnn_deploy.fileio import atomic_path  # noqa: E402
PANELS = [  # dataset, shipped model, runs (folder, label)
    ("mnist", "examples/mnist_int4_qsnn.metrics.json",
     [("mnist_t100", "seed 0, 55,000 images + 5,000 validation"),
      ("mnist_t100_s1", "seed 1, all 60,000 images (in progress)")]),
    ("fashion-mnist", "examples/fmnist_int4_qsnn.metrics.json",
     [("fmnist_q4", "seed 0, all 60,000 images (authors' later configuration)")]),
]


def run_curve(folder: str) -> tuple[list[int], list[float], list[int]]:
    """(epochs, test accuracy in %, the epochs that end with the learning rate at 0) of one training-runs folder."""
    epochs = json.loads((root / "training-runs" / folder / "epochs.json").read_text())["epochs"]
    peak = max(e["lr"] for e in epochs)
    return ([e["epoch"] for e in epochs], [100 * e["test_accuracy"] for e in epochs],
            [e["epoch"] for e in epochs if e["lr"] <= 1e-9 * peak])


def shipped_accuracy(metrics_path: str) -> float:
    """The shipped model's deployed test accuracy in % (its metrics note, written when it shipped)."""
    final = json.loads((root / metrics_path).read_text())["final"]
    return 100 * float(final["test_accuracy"])


def main(out: Path = root / "training-runs" / "progress.png") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(13, 5.0))
    for ax, (dataset, metrics, runs) in zip(axes, PANELS):
        mean, sigma = PAPER[(dataset, "int4", "cosine")]
        ax.axhspan(mean - sigma, mean + sigma, color="tab:green", alpha=0.15, lw=0)
        ax.axhline(mean, color="tab:green", lw=1.2, label=f"paper, int4: {mean:.2f} ± {sigma:.2f}% (3 trials)")
        shipped = shipped_accuracy(metrics)
        ax.axhline(shipped, color="0.3", ls="--", lw=1.0, label=f"shipped now: {shipped:.2f}%")
        low = mean
        for folder, label in runs:
            epochs, acc, ends = run_curve(folder)
            line, = ax.plot(epochs, acc, "o-", ms=2.5, lw=1.0, label=label)
            ax.plot(ends, [a for e, a in zip(epochs, acc) if e in ends], "D", ms=7, mfc="none", color=line.get_color())
            low = min([low] + acc[2:])  # the first two epochs would flatten the rest
        ax.set_ylim(low - 0.15, mean + 0.2)
        ax.set(xlabel="epoch", ylabel="test accuracy at T = 100 (%)",
               title=f"{dataset}, int4 (◇: the learning rate reaches 0, end of a cosine descent)")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(main())
