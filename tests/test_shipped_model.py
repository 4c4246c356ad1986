"""The shipped int4 models on their full 10,000-image test sets: the MNIST ones (default profile,
``--profile loihi``) ≥ 98.5% (the loihi one measures 98.70%), the ``--profile loihi --neuron cuba`` one
≥ 98.5% (98.54%), the FashionMNIST one ≥ 89.5% (issue 13),
each exactly its checkpoint's recorded accuracy; the same prediction for every digit from the PyTorch model and from the
frozen integer net, no layer whose state can clip (proven, and none clipped on the test set), and
the loihi one fitting stock Loihi 2 exactly; and the SynSense Xylo one (issue 25) on the same digits read as
rows over time."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from qsnn_deploy import freeze
from qsnn_deploy.checkpoint import model_from_checkpoint
from qsnn_deploy.simulators import create_backend

import pytest

from qsnn_deploy.lava.check import check_net
from qsnn_deploy.statebound import net_state_bounds

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SHIPPED = EXAMPLES / "mnist_int4_qsnn.pt"
LOIHI = EXAMPLES / "mnist_int4_loihi.pt"
FMNIST = EXAMPLES / "fmnist_int4_qsnn.pt"
CUBA = EXAMPLES / "mnist_int4_cuba_loihi.pt"
#: the CUBA model measures 98.54% (issue 24 asks 98.5%)
FLOOR = {SHIPPED: 0.985, LOIHI: 0.985, FMNIST: 0.895, CUBA: 0.985}


def _test_set(dataset: str):
    from conftest import missing_data
    from qsnn_deploy.data import default_data_dir, load_idx_dataset

    folder = default_data_dir(dataset)
    if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        missing_data(f"no {dataset} at {folder}")
    return load_idx_dataset(folder, split="test")


@pytest.mark.parametrize("path", [SHIPPED, LOIHI, FMNIST, CUBA], ids=["default", "loihi", "fmnist", "cuba"])
def test_shipped_model_accuracy_identical_on_torch_and_integer_net(path):
    model, ckpt = model_from_checkpoint(path)
    assert ckpt["config"]["precision"] == "int4" and ckpt["config"]["deploy_faithful"] is True
    x, y = _test_set(ckpt["config"]["dataset"])
    assert len(y) == 10000
    steps = model.num_steps
    net = freeze(model)
    assert all(b.saturation_free for b in net_state_bounds(net))
    fit = check_net(net)
    assert fit.fits == (path in (LOIHI, CUBA)), fit.verdict()
    if path == CUBA:  # issue 24: every layer current-based, on Lava's stock LIF with its own du
        assert [layer.kind for layer in net.layers] == ["cuba"] * 3
        assert all(int(np.max(layer.neuron.current_decay)) > 0 for layer in net.layers)
    sim = create_backend("numpy", net, batch_size=500).run(x, steps)
    assert sum(sim.saturations.values()) == 0
    preds_int = sim.predictions()
    preds_torch = []
    with torch.no_grad():
        for start in range(0, len(x), 500):
            xb = torch.as_tensor(x[start:start + 500], dtype=torch.float32) * net.input.scale
            preds_torch.append(model(xb, num_steps=steps).sum(0).argmax(1).numpy())
    preds_torch = np.concatenate(preds_torch)
    assert np.array_equal(preds_torch, preds_int)
    acc = float(np.mean(preds_int == y))
    # default: 99.30% at T = 100 (issue 28; the paper: 99.31%); loihi (stock-Loihi profile, no BatchNorm, one bias per channel): 98.70% at
    # T = 100 (issue 12 asks for 98.5%; docs/lava.md, "Which route"); FashionMNIST: issue 13 asks for 89.5%
    assert acc >= FLOOR[path], acc
    assert acc == ckpt["metrics"]["test_accuracy"]


XYLO = EXAMPLES / "mnist_rows_xylo.pt"


def test_shipped_xylo_model_on_the_10k_test_digits():
    """examples/mnist_rows_xylo.pt (issue 25): trained with --profile xylo, it fits Xylo IMU as it is; on all 10,000
    MNIST test digits read as rows over time (its recorded encoding) the PyTorch model and the NumPy reference
    predict the same digit every time, ≥ 93% (the recorded accuracy exactly)."""
    from qsnn_deploy.data.rows import encode_rows
    from qsnn_deploy.xylo.check import check_net as xylo_fit

    model, ckpt = model_from_checkpoint(XYLO)
    assert ckpt["config"]["profile"] == "xylo" and ckpt["config"]["dataset"] == "mnist-rows"
    x, y = _test_set("mnist")
    net = freeze(model)
    fit = xylo_fit(net, "syns63300")
    assert fit.fits, fit.verdict()
    seq = encode_rows(x, net.metadata["input_encoding"])
    assert seq.shape == (net.num_steps, 10000, 16)
    preds_int = create_backend("numpy", net, batch_size=1000).run(seq).predictions()
    model.eval()
    with torch.no_grad():
        preds_torch = np.concatenate([model(torch.from_numpy(seq[:, s:s + 1000]).float()).sum(0).argmax(1).numpy()
                                      for s in range(0, 10000, 1000)])
    assert np.array_equal(preds_torch, preds_int)
    acc = float(np.mean(preds_int == y))
    assert acc >= 0.93 and acc == pytest.approx(ckpt["metrics"]["test_accuracy"], abs=1e-12)
