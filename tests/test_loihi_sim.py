"""Loihi-style simulator == NumPy reference, with and without Lava's pipeline delay."""
import numpy as np
import pytest

from qsnn_deploy.frozen import FrozenNet, InputSpec, LIFLayer
from qsnn_deploy.simulators import create_backend
from qsnn_deploy.simulators.loihi_sim import LoihiSimulator, stock_exact
from qsnn_deploy.simulators.numpy_sim import NumpySimulator


def _net(reset, stock, seed=0):
    rng = np.random.default_rng(seed)
    def th(c):  # stock Lava LIF: one threshold per layer, a multiple of 64
        return np.full(c, int(rng.integers(20, 200)) * 64) if stock else rng.integers(500, 9000, c)
    def bias(c):
        return np.zeros(c, np.int64) if stock else rng.integers(-300, 300, c)
    def dec(c):
        return np.full(c, 3500) if stock else rng.integers(2000, 4097, c)
    l1 = LIFLayer("conv1", "conv", rng.integers(-7, 8, (4, 1, 3, 3)), 4, th(4), bias(4), dec(4), reset=reset,
                  pool=(2, 2))
    l2 = LIFLayer("fc", "dense", rng.integers(-7, 8, (5, 4 * 4 * 4)), 4, th(5) // 8 // 64 * 64 if stock else th(5) // 8,
                  bias(5), dec(5), reset=reset, flatten_input=True)
    return FrozenNet(InputSpec((1, 10, 10)), [l1, l2], num_steps=20).validate()


@pytest.mark.parametrize("reset,stock", [("zero", True), ("zero", False), ("subtract", False)])
@pytest.mark.parametrize("pipeline", [True, False])
def test_loihi_equals_reference(reset, stock, pipeline):
    net = _net(reset, stock)
    assert all(stock_exact(l) == stock for l in net.layers)
    x = np.random.default_rng(1).integers(0, 256, (6, 1, 10, 10))
    ref = NumpySimulator(net).run(x, 20)
    sim = LoihiSimulator(net, pipeline=pipeline)
    res = sim.run(x, 20)
    assert sim.routes == (["stock"] * 2 if stock else ["custom"] * 2)
    for name in ref.spikes:
        assert ref.spikes[name].sum() > 0
        assert np.array_equal(ref.spikes[name], res.spikes[name]), name
    if pipeline:  # Lava timing: layer l is late by l+1 steps
        for i, name in enumerate(ref.spikes):
            raw = res.info["raw_spikes"][name]
            assert not raw[: i + 1].any() and np.array_equal(raw[i + 1: i + 21], ref.spikes[name])


def test_stock_rules_forced_on_subtract_net_differ():
    net = _net("subtract", False)
    x = np.random.default_rng(1).integers(0, 256, (6, 1, 10, 10))
    ref = NumpySimulator(net).run(x, 20)
    res = LoihiSimulator(net, route="stock").run(x, 20)
    assert any(not np.array_equal(ref.spikes[n], res.spikes[n]) for n in ref.spikes)


def test_registered_backend():
    assert isinstance(create_backend("loihi", _net("zero", True)), LoihiSimulator)
