"""Loihi-style simulator == NumPy reference, with and without Lava's pipeline delay."""
import numpy as np
import pytest

from qsnn_deploy.frozen import FrozenNet, InputSpec, LIFLayer
from qsnn_deploy.simulators import create_backend
from qsnn_deploy.lava.loihi_sim import LoihiSimulator, stock_exact
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


# ------------------------------------------------------------------------------ stock route with a bias
def _biased_stock_net(seed=0):
    """Dense 20 -> 12 -> 5, stock route (zero reset, one θ and β per layer) with per-channel biases that
    are multiples of 64, both signs; some neurons spike on zero input."""
    rng = np.random.default_rng(seed)
    b1 = np.array([59, 30, 25, -40, -10, 0, 45, 22, -64, 10, 35, -5]) * 64
    b2 = np.array([6, -3, 2, 0, 3]) * 64
    l1 = LIFLayer("fc1", "dense", rng.integers(-7, 8, (12, 20)), 4, np.full(12, 64 * 40), b1, np.full(12, 2048),
                  reset="zero")
    l2 = LIFLayer("fc2", "dense", rng.integers(-7, 8, (5, 12)), 4, np.full(5, 64 * 4), b2, np.full(5, 3072),
                  reset="zero")
    return FrozenNet(InputSpec((20,)), [l1, l2], num_steps=9).validate()


def _lava_lane(net, samples, T):
    """Lava's LIFReset rules written out step by step (lava-nc 0.10.0 PyLifResetModelBitAcc.run_spk: the
    reset, when time_step % R == offset, comes before the step's integration) for ONE lane running
    ``samples`` one per period of R = T + L steps, every synapse one step late; the reset offset of layer l
    is l + 2 (netx's reset_offset=1 plus the layer index + 1). Returns per layer [samples, T + L, N]."""
    L = len(net.layers)
    R = T + L
    tz = lambda x: np.sign(x) * (np.abs(x) >> 12)  # noqa: E731
    v = [np.zeros(l.synapse.weight.shape[0], np.int64) for l in net.layers]
    prev = [np.zeros(net.input.shape[0], np.int64)] + [np.zeros(l.synapse.weight.shape[0], np.int64) for l in net.layers]
    rows = [[] for _ in net.layers]
    for n in range(1, len(samples) * R + 1):
        q, c = divmod(n - 1, R)
        cur = [samples[q] if c < T else np.zeros_like(prev[0])]
        for l, layer in enumerate(net.layers):
            a = layer.synapse.weight.astype(np.int64) @ prev[l]
            if n % R == (l + 2) % R:
                v[l][:] = 0  # (u too; with du = 4095 u is a << 6 every step anyway)
            u = a << 6
            dv = 4096 - int(layer.neuron.decay[0])
            v[l] = np.clip(tz(v[l] * (4096 - dv)) + u + layer.neuron.bias, -(2 ** 23 - 1), 2 ** 23 - 1)
            s = v[l] > ((int(layer.neuron.threshold[0]) >> 6) << 6)
            v[l][s] = 0
            cur.append(s.astype(np.int64))
            rows[l].append(s)
        prev = cur
    return [np.array(r).reshape(len(samples), R, -1)[:, :T + L] for r in rows]


def test_biased_stock_layers_equal_the_reference_and_the_written_out_lava_stream():
    net = _biased_stock_net()
    T = 9
    assert all(stock_exact(l) for l in net.layers)
    rng = np.random.default_rng(3)
    x = np.concatenate([np.full((1, 20), 255), np.zeros((1, 20), np.int64), rng.integers(0, 256, (3, 20))])
    calls = [x, x[[4, 0, 2]]]
    ref = NumpySimulator(net).run(x, T)
    assert ref.spikes["fc1"][:, 1].any() and ref.spikes["fc2"][:, 1].any()  # the dark sample: bias alone
    for pipeline in (True, False):
        res = LoihiSimulator(net, pipeline=pipeline).run(x, T)
        assert all(np.array_equal(res.spikes[k], ref.spikes[k]) for k in ref.spikes)
    for lanes in (1, 2):
        sim = LoihiSimulator(net, lanes=lanes)
        assert sim.streamed and sim.preferred_batch_size == 48
        results = []
        for xs in calls:
            results.append(sim.run(xs, T))
            want = NumpySimulator(net).run(xs, T)
            assert all(np.array_equal(results[-1].spikes[k], want.spikes[k]) for k in want.spikes)
        # the same samples as Lava's lanes run them: lane j takes samples j, j + k, ... of each call, a zero
        # sample where a call's last group is partial; the state carries over from one call to the next
        lane_in = [[] for _ in range(lanes)]
        who = [[] for _ in range(lanes)]
        for c, xs in enumerate(calls):
            for g in range(-(-len(xs) // lanes)):
                for j in range(lanes):
                    q = g * lanes + j
                    lane_in[j].append(xs[q] if q < len(xs) else np.zeros(20, np.int64))
                    who[j].append((c, q) if q < len(xs) else None)
        pre = 0
        for j in range(lanes):
            out = _lava_lane(net, lane_in[j], T)
            for pos, w in enumerate(who[j]):
                if w is not None:
                    c, q = w
                    for i, name in enumerate(("fc1", "fc2")):
                        raw = results[c].info["raw_spikes"][name][:, q]
                        assert np.array_equal(out[i][pos], raw), (lanes, j, pos, name)
                        pre += int(raw[:i + 1].sum())
        assert pre > 0  # rows before the layers' windows are active, modelled spike for spike
    fresh = LoihiSimulator(net, lanes=None).run(x, T).info["raw_spikes"]
    assert any(not np.array_equal(fresh[k][:i + 1], results[0].info["raw_spikes"][k][:i + 1])
               for i, k in enumerate(("fc1", "fc2")))


def test_without_the_reset_a_stock_bias_is_not_exact():
    """Lava's plain LIF (a netx load without reset_interval) integrates the bias during the pipeline warm-up:
    the spikes then differ from the reference. The periodic reset is what makes the stock bias exact."""
    class NoReset(LoihiSimulator):
        @staticmethod
        def _stock(p, j, start, end, *count_end):
            return LoihiSimulator._stock(p, j, -1, end, *count_end)

    net = _biased_stock_net()
    x = np.random.default_rng(3).integers(0, 256, (4, 20))
    ref = NumpySimulator(net).run(x, 9)
    res = NoReset(net, lanes=None).run(x, 9)
    assert any(not np.array_equal(res.spikes[k], ref.spikes[k]) for k in ref.spikes)
