"""Training curves: loss and learning rate per step, accuracy per epoch, one PNG."""
from __future__ import annotations

from pathlib import Path

from ..fileio import atomic_path


def plot_training(steps: list[dict], epochs: list[dict], path: str | Path, title: str = "",
                  loss_label: str = "spike-count MSE loss") -> Path:
    """Write the training-curve PNG: loss and learning rate per iteration, test (and validation) accuracy per epoch.

    ``steps``: dicts with ``iteration``, ``loss``, ``lr``; ``epochs``: dicts with ``epoch``,
    ``test_accuracy`` (fraction) and optionally ``val_accuracy``; ``loss_label``: the loss axis's label.
    Written atomically; returns the path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    it = [s["iteration"] for s in steps]
    axes[0].plot(it, [s["loss"] for s in steps], lw=0.6, color="tab:blue")
    axes[0].set(xlabel="iteration", ylabel=loss_label, title="training loss")
    axes[1].plot([e["epoch"] for e in epochs], [100 * e["test_accuracy"] for e in epochs], "o-", label="test")
    if epochs and "val_accuracy" in epochs[0]:
        axes[1].plot([e["epoch"] for e in epochs], [100 * e["val_accuracy"] for e in epochs], "s--", label="validation")
    axes[1].set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    axes[1].legend()
    axes[2].plot(it, [s["lr"] for s in steps], color="tab:orange")
    axes[2].set(xlabel="iteration", ylabel="learning rate", title="learning rate")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
