"""Training curves: loss and learning rate per step, accuracy per epoch, one PNG."""
from __future__ import annotations

from pathlib import Path

import numpy as np

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
    loss = np.asarray([s["loss"] for s in steps], dtype=np.float64)
    axes[0].plot(it, loss, lw=0.5, color="tab:blue", alpha=0.35, label="per batch")
    if len(loss) >= 20:
        window = max(5, len(loss) // 100)
        axes[0].plot(it[window - 1:], moving_mean(loss, window), lw=1.4, color="tab:blue",
                     label=f"mean of {window} batches")
        axes[0].legend(loc="upper right", fontsize=8)
    top = loss_axis_top(loss)
    if top is not None:
        axes[0].set_ylim(top=top)
        axes[0].annotate(f"axis cut at {top:.3g}: the first batches reach {np.nanmax(loss):.3g}", xy=(0.02, 0.03),
                         xycoords="axes fraction", va="bottom", fontsize=8, color="0.35")
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


def moving_mean(values: np.ndarray, window: int) -> np.ndarray:
    """The mean of every ``window`` consecutive values (``len(values) - window + 1`` of them)."""
    c = np.cumsum(np.concatenate([[0.0], np.asarray(values, dtype=np.float64)]))
    return (c[window:] - c[:-window]) / window


def loss_axis_top(loss: np.ndarray) -> float | None:
    """An upper limit for the loss axis when the first batches' loss (often 10x the rest) would flatten
    the curve: 1.25 x the 99th percentile of the batches after the first 2%; None when nothing is cut."""
    loss = np.asarray(loss, dtype=np.float64)
    loss = loss[np.isfinite(loss)]
    if len(loss) < 50:
        return None
    rest = loss[len(loss) // 50:]
    top = 1.25 * float(np.percentile(rest, 99))
    return top if float(loss.max()) > top else None
