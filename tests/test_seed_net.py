"""The seeds' networks end to end: PyTorch model == NumPy simulator == torch integer simulator.

* MNIST QSNN (16C5-AP2-BN-LIF, 64C5-AP2-BN-LIF, 1024->10 LIF), random int4 weights, BatchNorm
  statistics calibrated on real digits: 200 MNIST test digits at T=100, every layer, every step.
* DVS128 QSNN (no BatchNorm) with 4-bit event-count input, time-varying [T, N, 2, 32, 32].
* The same MNIST net built from plain snnTorch Leaky neurons (not deploy-faithful): NumPy ==
  torch-sim exactly; agreement with the float model is measured and printed, not asserted.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from conftest import assert_spikes_equal, mnist_model_with_negative_gammas as _mnist_model, model_spikes, run_both_sims
from qsnn_deploy import freeze
from qsnn_deploy.models import build_model, dvs_arch
from qsnn_deploy.nn import QLeaky

REPO = Path(__file__).resolve().parents[1]
N_DIGITS = 200
T_MNIST = 100


def _read_idx_gz(path: Path) -> np.ndarray:
    """A gzip idx file: 2 zero bytes, dtype code (0x08 = uint8), ndim, big-endian int32 dims, data."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    assert raw[0] == 0 and raw[1] == 0 and raw[2] == 0x08, f"{path}: not an unsigned-byte idx file"
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    assert data.size == int(np.prod(dims)), f"{path}: truncated idx file"
    return data.reshape(dims)


def _load_mnist_test(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` MNIST test digits as uint8 [n, 1, 28, 28] and their labels."""
    for d in (Path("/work/shared/data/mnist"), REPO / ".." / "shared" / "data" / "mnist"):
        if (d / "t10k-images-idx3-ubyte.gz").is_file():
            images = _read_idx_gz(d / "t10k-images-idx3-ubyte.gz")[:n]
            labels = _read_idx_gz(d / "t10k-labels-idx1-ubyte.gz")[:n]
            return images.reshape(-1, 1, 28, 28).copy(), labels.copy()
    from conftest import missing_data
    missing_data("MNIST test set not found (../shared/data/mnist)")


@pytest.fixture(scope="module")
def digits():
    images, labels = _load_mnist_test(N_DIGITS)
    assert images.shape == (N_DIGITS, 1, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (N_DIGITS,) and labels.max() <= 9
    assert 20 < images.mean() < 50  # real digits (MNIST mean pixel ≈ 33)
    return images, labels


def test_mnist_seed_net_model_numpy_torch_identical(digits):
    images, _ = digits
    model = _mnist_model(True, images)
    net = freeze(model)
    assert [layer.name for layer in net.layers] == ["conv1", "conv2", "fc"]
    assert [layer.synapse.pool for layer in net.layers] == [(2, 2), (2, 2), None]
    assert net.layers[0].synapse.weight_bits == 4 and net.metadata["deploy_faithful"] is True
    assert any(np.any(layer.neuron.sigma < 0) for layer in net.layers) is False  # |sigma| stored
    x = images.astype(np.int64)
    expected = model_spikes(model, x, T_MNIST)
    res_np, res_th = run_both_sims(net, x, T_MNIST, record_states=False)
    assert_spikes_equal(expected, res_np.spikes, "PyTorch model vs NumPy sim")
    assert_spikes_equal(expected, res_th.spikes, "PyTorch model vs torch-sim")
    for name, s in res_np.spikes.items():
        assert s.shape[:2] == (T_MNIST, N_DIGITS)
        assert 0 < s.mean() < 1, f"layer {name} is silent or saturated: the comparison would be weak"
    for block in model.blocks:
        assert block.neuron.saturation_events == res_np.saturations[block.name]
    # a few samples with the membrane states too
    few = x[:8]
    states: dict = {}
    model_spikes(model, few, 30, states=states)
    res_few, _ = run_both_sims(net, few, 30, record_states=True)
    for name in states:
        assert np.array_equal(states[name], res_few.states[name]), f"membrane states of {name!r} differ"


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_dvs_seed_net_time_varying_events_identical(reset):
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    steps, n = 20, 12
    # threshold 0.25 (default 1.0) so that random int4 weights drive every layer, the output included
    model = build_model(dvs_arch(input_bits=4, num_steps=steps, threshold=0.25, reset=reset)).eval()
    net = freeze(model)
    assert net.input.bits == 4 and net.input.scale == 1.0 and net.input.shape == (2, 32, 32)
    assert net.input.value_range == (0, 15)
    assert all(layer.neuron.reset == reset for layer in net.layers)
    events = np.minimum(rng.poisson(rng.uniform(0.05, 1.5, size=(steps, n, 2, 1, 1)), size=(steps, n, 2, 32, 32)), 15)
    events[3, 0, :, :4, :4] = 15  # the top of the 4-bit range
    expected = model_spikes(model, events, steps)
    res_np, res_th = run_both_sims(net, events, None, record_states=False)
    assert_spikes_equal(expected, res_np.spikes, "PyTorch model vs NumPy sim")
    assert_spikes_equal(expected, res_th.spikes, "PyTorch model vs torch-sim")
    for name, s in res_np.spikes.items():
        assert s.shape[:2] == (steps, n)
        assert 0 < s.mean() < 1, f"layer {name} is silent or saturated"
    states: dict = {}
    model_spikes(model, events[:, :4], steps, states=states)
    res_few, _ = run_both_sims(net, events[:, :4], steps, record_states=True)
    for name in states:
        assert np.array_equal(states[name], res_few.states[name]), f"membrane states of {name!r} differ"


def test_mnist_plain_snntorch_freeze_and_measured_agreement(digits):
    images, _ = digits
    model = _mnist_model(False, images)
    assert not any(isinstance(m, QLeaky) for m in model.modules())
    net = freeze(model)
    assert net.metadata["deploy_faithful"] is False
    x = images.astype(np.int64)
    res_np, _ = run_both_sims(net, x, T_MNIST, record_states=False)
    with torch.no_grad():
        out = model(torch.as_tensor(x, dtype=torch.float32) / 255.0, num_steps=T_MNIST)
    float_pred = out.sum(dim=0).argmax(dim=1).numpy()
    frozen_pred = res_np.predictions()
    agreement = float(np.mean(float_pred == frozen_pred))
    counts_float = out.sum(dim=0).numpy()
    counts_frozen = res_np.output_counts()
    print(f"\nplain snnTorch MNIST net: prediction agreement float vs frozen = {agreement:.3f}; "
          f"output spike counts equal for {np.mean(counts_float == counts_frozen):.3f} of (sample, class)")
    assert 0.0 <= agreement <= 1.0
    assert res_np.spikes["fc"].any()
