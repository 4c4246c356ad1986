"""Issue 24's must-show: plain snnTorch nets with ``Synaptic`` (dense and conv) and ``RLeaky``
(all_to_all) neurons, trained a few steps with snnTorch's own recipe, frozen, and run bit-exact on
every backend (numpy reference, torch, onnx, nir round trip, the Loihi-style simulator), every layer,
every step; and the frozen integers agree with the float model's spikes as measured."""
from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import snntorch.utils
import torch
import torch.nn as nn
from snntorch import surrogate

from qsnn_deploy import freeze
from qsnn_deploy.errors import UnsupportedLayerError
from qsnn_deploy.verify import verify

BACKENDS = ("torch", "onnx", "nir", "loihi")
STEPS = 12


def dense_synaptic(reset: str = "subtract") -> nn.Module:
    g = surrogate.fast_sigmoid(slope=5)
    return nn.Sequential(nn.Linear(20, 24), snn.Synaptic(alpha=0.8, beta=0.9, spike_grad=g, init_hidden=True, reset_mechanism=reset),
                         nn.Linear(24, 5), snn.Synaptic(alpha=0.5, beta=0.85, spike_grad=g, init_hidden=True,
                                                        reset_mechanism=reset, output=True))


def conv_synaptic() -> nn.Module:
    g = surrogate.fast_sigmoid(slope=5)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.AvgPool2d((2, 2)), snn.Synaptic(alpha=0.7, beta=0.9, spike_grad=g, init_hidden=True),
                         nn.Flatten(), nn.Linear(4 * 3 * 3, 5),
                         snn.Synaptic(alpha=0.6, beta=0.8, spike_grad=g, init_hidden=True, output=True))


def rleaky(all_to_all: bool = True) -> nn.Module:
    g = surrogate.fast_sigmoid(slope=5)
    rec = dict(linear_features=16) if all_to_all else dict(all_to_all=False, V=0.3)
    return nn.Sequential(nn.Linear(20, 16), snn.RLeaky(beta=0.9, spike_grad=g, init_hidden=True, **rec),
                         nn.Linear(16, 5), snn.Leaky(beta=0.85, spike_grad=g, init_hidden=True, output=True))


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 3) -> None:
    """A few steps of snnTorch's usual recipe: spike-count cross entropy, Adam."""
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(steps):
        snn.utils.reset(model)
        counts = 0
        for t in range(STEPS):
            out = model(x)
            counts = counts + (out[0] if isinstance(out, tuple) else out)
        loss = nn.functional.cross_entropy(counts, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    snn.utils.reset(model)


@pytest.mark.parametrize("build,shape", [
    (dense_synaptic, (20,)), (lambda: dense_synaptic("zero"), (20,)), (conv_synaptic, (1, 8, 8)),
    (rleaky, (20,)), (lambda: rleaky(all_to_all=False), (20,)),
], ids=["dense-synaptic", "dense-synaptic-zero", "conv-synaptic", "rleaky-all-to-all", "rleaky-one-to-one"])
def test_plain_snntorch_kinds_freeze_and_run_bit_exact(build, shape):
    torch.manual_seed(0)
    model = build()
    rng = np.random.default_rng(0)
    x_int = rng.integers(0, 256, (20,) + shape)
    xf = torch.as_tensor(x_int / 255.0, dtype=torch.float32)
    _train(model, xf[:8], torch.as_tensor(rng.integers(0, 5, 8)))
    net = freeze(model, input_shape=shape, num_steps=STEPS)
    kinds = {layer.kind for layer in net.layers}
    assert kinds & {"cuba"} or any(layer.synapse.is_recurrent for layer in net.layers)
    report = verify(net, x_int, model=model, backends=BACKENDS, num_steps=STEPS)
    exact = [b for b in report.backends if b.exact_required]
    assert len(exact) == len(BACKENDS) and report.all_exact, [
        (b.name, [(la.name, la.first_mismatch) for la in b.layers if not la.bit_exact]) for b in exact]
    assert all(la.reference_spikes > 0 for la in exact[0].layers)  # every layer spiked: the equality is not vacuous
    model_cmp = [b for b in report.backends if not b.exact_required]
    assert model_cmp and min(la.spike_count_agreement for la in model_cmp[0].layers) > 0.5  # measured, not promised


def test_conv_recurrent_and_bad_resets_are_refused_by_name():
    conv_rec = nn.Sequential(nn.Conv2d(1, 2, 3), snn.RLeaky(beta=0.9, conv2d_channels=2, kernel_size=3, init_hidden=True,
                                                            output=True))
    with pytest.raises(UnsupportedLayerError, match="'0'.*convolutional recurrent"):
        freeze(conv_rec, input_shape=(1, 6, 6), num_steps=4)
    early = nn.Sequential(nn.Linear(4, 3), snn.Synaptic(alpha=0.5, beta=0.5, init_hidden=True, reset_delay=False,
                                                        output=True))
    with pytest.raises(UnsupportedLayerError, match="'0'.*reset_delay=False"):
        freeze(early, input_shape=(4,), num_steps=4)
