"""The models people write, in: nn.Sequential with init_hidden neurons, the snnTorch tutorials'
classes (forward(x) loops over a module-level num_steps), functional ops between layers; the data
doors (--data: the folder or its parent; flat-input nets); errors in the user's terms."""
from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import snntorch as snn
from snntorch import utils as snn_utils
import torch
import torch.nn as nn
import torch.nn.functional as F

from qsnn_deploy import freeze
from qsnn_deploy.calling import inspect_model
from qsnn_deploy.cli import verify as verify_cli
from qsnn_deploy.data import DatasetError, default_data_dir, fit_to_input, resolve_idx_dir
from qsnn_deploy.errors import QSNNError, UnsupportedLayerError
from qsnn_deploy.verify import verify

num_steps = 12  # read by the tutorial-style classes below, as in snnTorch's tutorials


def sequential_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 16), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True),
                         nn.Linear(16, 4), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True, output=True))


class TutorialNet(nn.Module):
    """snnTorch tutorial 5's network: forward(x) runs the time loop and returns the records."""

    def __init__(self, n_in: int = 20):
        super().__init__()
        self.fc1 = nn.Linear(n_in, 16)
        self.lif1 = snn.Leaky(beta=0.9, threshold=0.5)
        self.fc2 = nn.Linear(16, 4)
        self.lif2 = snn.Leaky(beta=0.9, threshold=0.5)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk2_rec, mem2_rec = [], []
        for _step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)


class ConvTutorialNet(nn.Module):
    """Tutorial 6 style with functional ops between the layers."""

    def __init__(self, pool=F.avg_pool2d):
        super().__init__()
        self.pool = pool
        self.conv1 = nn.Conv2d(1, 4, 5)
        self.lif1 = snn.Leaky(beta=0.9, threshold=0.5)
        self.fc1 = nn.Linear(4 * 12 * 12, 10)
        self.lif2 = snn.Leaky(beta=0.9, threshold=0.5)

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        rec = []
        for _step in range(num_steps):
            spk1, mem1 = self.lif1(self.pool(self.conv1(x), 2), mem1)
            spk2, mem2 = self.lif2(self.fc1(spk1.view(x.size(0), -1)), mem2)
            rec.append(spk2)
        return torch.stack(rec)


def manual_output_counts(run, x_int: np.ndarray, scale: float) -> np.ndarray:
    with torch.no_grad():
        return run(torch.as_tensor(x_int, dtype=torch.float32) * scale).numpy()


def model_row(report):
    rows = [b for b in report.backends if b.name.startswith("torch-model")]
    assert len(rows) == 1
    return rows[0]


def test_plain_sequential_with_init_hidden_verifies():
    m = sequential_model()
    net = freeze(m, input_shape=(20,), num_steps=10)
    x = np.random.default_rng(0).integers(0, 256, (9, 20))
    report = verify(net, x, None, model=m, backends=["torch"], batch_size=4)
    assert report.all_exact  # the torch integer backend
    assert inspect_model(m, (20,)).convention == "per_step"

    def run(xf):  # what verify must have done: reset, then 10 calls per sample batch
        snn_utils.reset(m)
        out = [m(xf)[0] for _ in range(10)]
        return torch.stack(out).sum(0)

    counts = manual_output_counts(run, x, net.input.scale)
    fc = model_row(report).layers[-1]
    assert fc.spikes == int(counts.sum()) > 0


def test_tutorial_class_runs_its_own_loop_and_t_is_counted():
    m = TutorialNet()
    torch.manual_seed(1)
    m.fc1.weight.data.uniform_(-0.3, 0.3)
    call = inspect_model(m, (20,))
    assert (call.convention, call.num_steps) == ("own_loop", num_steps)
    assert [n for n, _ in call.layers] == ["fc1", "lif1", "fc2", "lif2"]
    net = freeze(m, input_shape=(20,))
    assert net.num_steps == num_steps  # the model's own T, not the default 100
    x = np.random.default_rng(1).integers(0, 256, (7, 20))
    report = verify(net, x, None, model=m, backends=["torch"])
    counts = manual_output_counts(lambda xf: m(xf)[0].sum(0), x, net.input.scale)
    assert model_row(report).layers[-1].spikes == int(counts.sum()) > 0
    with pytest.raises(QSNNError, match=f"own loop of {num_steps} steps"):
        verify(net, x, None, model=m, backends=[], num_steps=num_steps + 1)


def test_issue_must_show_calls():
    m = sequential_model()
    x = np.random.default_rng(2).integers(0, 256, (5, 20))
    assert verify(freeze(m, input_shape=(20,), num_steps=10), x, None, model=m, backends=["torch"]).n_samples == 5
    t = TutorialNet()
    assert verify(freeze(t, input_shape=(20,), num_steps=num_steps), x, None, model=t, backends=["torch"]).n_samples == 5


def test_functional_pool_and_view_become_layers():
    m = ConvTutorialNet()
    net = freeze(m, input_shape=(1, 28, 28))
    assert [layer.name for layer in net.layers] == ["conv1", "fc1"]
    assert net.layers[0].synapse.pool == (2, 2) and net.layers[1].synapse.flatten_input
    x = np.random.default_rng(3).integers(0, 256, (3, 1, 28, 28))
    assert verify(net, x, None, model=m, backends=["torch"]).all_exact


def test_unsupported_functional_op_is_named():
    with pytest.raises(UnsupportedLayerError, match="max_pool2d"):
        freeze(ConvTutorialNet(pool=F.max_pool2d), input_shape=(1, 28, 28))


def test_sequential_without_init_hidden_says_what_to_change():
    m = nn.Sequential(nn.Linear(20, 4), snn.Leaky(beta=0.9))
    net = freeze(m, input_shape=(20,))  # freezing reads parameters only
    with pytest.raises(UnsupportedLayerError, match="init_hidden=True"):
        verify(net, np.zeros((2, 20), np.int64), None, model=m, backends=[])


def test_flat_linear_fed_an_image_says_what_to_do():
    m = nn.Sequential(nn.Linear(784, 10), snn.Leaky(beta=0.9, init_hidden=True))
    with pytest.raises(UnsupportedLayerError) as info:
        freeze(m, input_shape=(1, 28, 28))
    assert "input_shape=(784,)" in str(info.value) and "flatten_input" not in str(info.value)


def test_class_without_input_shape_asks_for_it():
    with pytest.raises(QSNNError, match="input_shape"):
        freeze(TutorialNet())


# ----------------------------------------------------------------------------- data doors
def mnist_dir():
    data = default_data_dir("mnist")
    if not data.exists():
        from conftest import missing_data
        missing_data("../shared/data/mnist not present")
    return data


def test_data_folder_or_its_parent():
    data = mnist_dir()
    assert resolve_idx_dir(data) == data
    assert resolve_idx_dir(data.parent, hint="mnist_int4_qsnn") == data
    fashion = data.parent / "fashion-mnist"
    if fashion.is_dir():
        assert resolve_idx_dir(data.parent, hint="fmnist_int4_qsnn") == fashion
        with pytest.raises(DatasetError, match="several datasets"):
            resolve_idx_dir(data.parent, hint="my_net")


def test_data_door_errors_name_the_layout(tmp_path):
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte"):
        resolve_idx_dir(tmp_path)
    with pytest.raises(DatasetError, match="folder not found"):
        resolve_idx_dir(tmp_path / "nope")
    images = np.zeros((2, 1, 28, 28), np.uint8)
    assert fit_to_input(images, (784,)).shape == (2, 784)
    with pytest.raises(DatasetError, match=r"\(100,\)"):
        fit_to_input(images, (100,))


def test_flat_input_qsnn_verifies_on_mnist(tmp_path):
    data = mnist_dir()
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(784, 32), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True),
                      nn.Linear(32, 10), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True))
    path = tmp_path / "flat.qsnn"
    freeze(m, input_shape=(784,), num_steps=8).save(path)
    assert verify_cli.main([str(path), "--data", str(data), "-n", "20"]) == 0
    assert verify_cli.main([str(path), "--data", str(data.parent), "-n", "4", "--backends", "torch"]) == 2  # which dataset?


def test_model_class_cli_for_a_tutorial_class(tmp_path, monkeypatch, capsys):
    data = mnist_dir()
    (tmp_path / "tutorial_net.py").write_text(textwrap.dedent('''
        import torch, torch.nn as nn, snntorch as snn
        num_steps = 6
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(784, 32); self.lif1 = snn.Leaky(beta=0.9, threshold=0.5)
                self.fc2 = nn.Linear(32, 10); self.lif2 = snn.Leaky(beta=0.9, threshold=0.5)
            def forward(self, x):
                mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
                spk_rec, mem_rec = [], []
                for step in range(num_steps):
                    spk1, mem1 = self.lif1(self.fc1(x), mem1)
                    spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                    spk_rec.append(spk2); mem_rec.append(mem2)
                return torch.stack(spk_rec), torch.stack(mem_rec)
    '''))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("tutorial_net", None)
    import tutorial_net

    torch.save(tutorial_net.Net().state_dict(), tmp_path / "w.pt")
    args = ["w.pt", "--model-class", "tutorial_net:Net", "--data", str(data), "-n", "6", "--backends", "torch"]
    assert verify_cli.main(args + ["--input-shape", "784", "--json", "v.json"]) == 0
    import json
    assert json.loads((tmp_path / "v.json").read_text())["num_steps"] == 6  # the class's own T
    assert verify_cli.main(args) == 2
    assert "--input-shape" in capsys.readouterr().err
    assert verify_cli.main(args + ["--input-shape", "784", "--layer-order", "fc1,lif1,fc2,lif2"]) == 0
    assert verify_cli.main(args + ["--input-shape", "784", "--layer-order", "fc1,nope"]) == 2
    assert "no submodule 'nope'" in capsys.readouterr().err
