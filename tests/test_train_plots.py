"""The training-curve PNG's loss panel: a moving mean over the noisy per-batch loss, and an axis that the
first batches' loss (often 10x the rest) does not flatten."""
from __future__ import annotations

import numpy as np

from qsnn_deploy.train.plots import loss_axis_top, moving_mean, plot_training


def test_moving_mean_is_the_mean_of_every_window():
    x = np.random.default_rng(0).normal(size=137)
    for w in (1, 5, 20):
        assert np.allclose(moving_mean(x, w), np.convolve(x, np.ones(w) / w, mode="valid"))
        assert len(moving_mean(x, w)) == len(x) - w + 1


def test_loss_axis_is_cut_only_above_an_early_spike():
    rng = np.random.default_rng(1)
    steady = 0.7 + 0.1 * rng.random(1000)
    assert loss_axis_top(steady) is None                       # nothing to cut: matplotlib's own limits
    assert loss_axis_top(np.r_[9.7, 5.3, steady[:10]]) is None  # too short to tell a spike from the run
    spiked = np.r_[9.7, 5.3, 3.1, steady]
    top = loss_axis_top(spiked)
    assert top is not None and top < 3.1                      # the first batches are above the axis
    later = spiked[len(spiked) // 50:]
    assert np.mean(later <= top) >= 0.99                       # the run itself stays on the axis
    assert loss_axis_top(np.r_[np.nan, spiked]) == top        # a NaN batch does not disable the cut


def test_plot_training_writes_a_png_with_the_cut_axis(tmp_path):
    rng = np.random.default_rng(2)
    loss = np.r_[9.7, 5.3, 0.7 + 0.1 * rng.random(400)]
    steps = [{"iteration": i + 1, "loss": float(v), "lr": 1e-3} for i, v in enumerate(loss)]
    epochs = [{"epoch": 1, "test_accuracy": 0.8}, {"epoch": 2, "test_accuracy": 0.85}]
    path = plot_training(steps, epochs, tmp_path / "curves.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]   # no temporary file left
