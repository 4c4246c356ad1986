"""The recurrent scan (qsnn_deploy.simulators.recurrent_scan): the fused Numba kernels and the whole-array
path against the neuron kinds' reference_step with ``J_t = j_t + R·z_{t-1}`` computed in int64, on operands
chosen to break a kernel that is not exact: both states saturating in both directions, every reset (incl.
``zero_delayed``), recurrent sums past 2**31 (the int64 path) and past 2**24 (float64 in the fallback's GEMM),
every neuron spiking and none spiking."""
from __future__ import annotations

import numpy as np
import pytest

from qsnn_deploy import intmath
from qsnn_deploy.neurons import CubaLIF, LIF
from qsnn_deploy.simulators import recurrent_scan as rs
from qsnn_deploy.simulators.recurrent_scan import RecurrentSynapse

NUMBA = [False, True] if rs.HAVE_NUMBA else [False]
KIND_RESETS = [("lif", "subtract"), ("lif", "zero"), ("cuba", "subtract"), ("cuba", "zero"), ("cuba", "zero_delayed")]


def reference(neuron, j, rec, static, steps):
    """The specification: int64 ``J_t = j_t + z_{t-1} @ Rᵀ``, then the kind's reference_step."""
    shape = j.shape if static else j.shape[1:]
    state = neuron.initial_state(shape)
    z = np.zeros(shape, np.uint8)
    spikes, states, sats, full = [], [], [], []
    for t in range(steps):
        jt = (j if static else j[t]).astype(np.int64) + z.astype(np.int64) @ rec.astype(np.int64).T
        state, z, n = neuron.reference_step(state, jt)
        spikes.append(z)
        states.append(state[-1])
        sats.append(n)
        full.append(state)
    return np.stack(spikes), np.stack(states), np.array(sats), full


def make_neuron(kind, reset, rng, c, state_bits=16, current_bits=None, frac_bits=3):
    vmax = intmath.state_limit(state_bits)
    th = rng.integers(0, vmax // 3, c)
    th[0] = vmax     # never fires
    th[1] = 0        # fires whenever v > 0
    decay = rng.choice([0, 1, 2048, 4095, 4096], c)
    decay[[0, 2]] = 4096  # no leak: a steady drive saturates them
    bias = rng.integers(-vmax // 16, vmax // 16, c)
    if kind == "lif":
        return LIF(th, bias, decay, reset, frac_bits=frac_bits, state_bits=state_bits)
    cb = current_bits or state_bits - 2
    current_decay = rng.choice([0, 1, 3000, 4095, 4096], c)
    current_decay[[0, 2]] = 4096
    return CubaLIF(th, bias, current_decay, decay,
                   rng.integers(-vmax // 32, vmax // 32, c), reset=reset, frac_bits=frac_bits, state_bits=state_bits,
                   current_bits=cb)


def check(neuron, j, rec, static, steps, use_numba):
    want = reference(neuron, j, rec, static, steps)
    got = RecurrentSynapse(rec).scan(neuron, j, static, steps, record=True, use_numba=use_numba)
    assert np.array_equal(got[0], want[0]), "spikes"
    assert np.array_equal(got[1], want[1]), "states"
    assert np.array_equal(got[2], want[2]), "saturations"
    return want


@pytest.mark.parametrize("kind,reset", KIND_RESETS)
@pytest.mark.parametrize("use_numba", NUMBA)
def test_recurrent_scan_equals_reference_step(kind, reset, use_numba):
    """Saturation of v (and of i for cuba) both ways, large recurrent weights, per-channel parameters."""
    rng = np.random.default_rng(hash((kind, reset)) % 2**32)
    c, n, steps = 11, 5, 40
    for static in (True, False):
        neuron = make_neuron(kind, reset, rng, c)
        vmax = neuron.state_limit
        j = rng.integers(-vmax // 12, vmax // 12, ((steps,) if not static else ()) + (n, c))
        j[..., 0] = vmax // 4          # channel 0 (never fires) is driven into the upper limit
        j[..., 2] = -(vmax // 4)       # channel 2 into the lower one
        rec = rng.integers(-(vmax // 6), vmax // 6, (c, c))  # one spike moves a neuron by a good part of its range
        want = check(neuron, j, rec, static, steps, use_numba)
        spikes, v, sats, full = want
        assert sats.sum() > 0 and 0.05 < spikes.mean() < 0.95
        assert (v == vmax).any() and (v == -vmax).any()
        if kind == "cuba":  # the current saturates too, both ways
            i = np.stack([s[0] for s in full])
            assert (i == neuron.current_limit).any() and (i == -neuron.current_limit).any()


@pytest.mark.parametrize("kind,reset", KIND_RESETS)
@pytest.mark.parametrize("use_numba", NUMBA)
def test_recurrent_scan_all_and_none_spiking(kind, reset, use_numba):
    rng = np.random.default_rng(11)
    c, n, steps = 7, 3, 12
    neuron = make_neuron(kind, reset, rng, c)
    neuron.threshold[:] = 0
    neuron.bias[:] = 0
    neuron.decay[:] = 4096
    if kind == "cuba":
        neuron.current_bias[:] = 0
        neuron.current_decay[:] = 0
    rec = np.ones((c, c), np.int64)  # every spike keeps every neuron above θ = 0
    j = np.full((n, c), 5)
    spikes = check(neuron, j, rec, True, steps, use_numba)[0]
    if reset != "zero_delayed":  # zero_delayed zeroes the state at every other step
        assert spikes.all()
    assert spikes[0].all()
    neuron.threshold[:] = neuron.state_limit  # nothing can exceed the limit: no neuron ever spikes
    assert not check(neuron, j, rec, True, steps, use_numba)[0].any()
    assert not check(neuron, np.zeros((steps, n, c), np.int64), rec, False, steps, use_numba)[0].any()


@pytest.mark.parametrize("c,top,acc", [(4, 8191, np.int16), (300, 7158278, np.int32), (300, (1 << 23) - 1, np.int64)])
@pytest.mark.parametrize("kind,reset", [("lif", "subtract"), ("cuba", "zero")])
@pytest.mark.parametrize("use_numba", NUMBA)
def test_recurrent_sums_at_each_accumulator_edge(c, top, acc, kind, reset, use_numba):
    """Rows of R whose sum, once every neuron spiked (step 0), is just below 2**15 (int16), just below 2**31
    (int32; past float32's 2**24: the fallback's GEMM is float64), and past 2**31 (int64)."""
    rng = np.random.default_rng(5)
    n, steps = 2, 4
    rec = rng.choice([-top, top, top - 1, 1, 0], (c, c))
    rec[:3] = top
    rec[3] = -top
    syn = RecurrentSynapse(rec)
    assert syn.rt_int.dtype == acc and syn.rt_gemm.dtype == (np.float32 if syn.bound < 1 << 24 else np.float64)
    neuron = make_neuron(kind, reset, rng, c, state_bits=48, current_bits=48, frac_bits=3)
    neuron.threshold[:] = 0
    neuron.bias[:] = 0
    if kind == "cuba":
        neuron.current_bias[:] = 0
    j = np.full((n, c), 1)
    want = check(neuron, j, rec, True, steps, use_numba)
    assert want[0][0].all()  # every neuron spiked at step 0: step 1 sees the full row sums
    j1 = want[0][0].astype(np.int64) @ rec.astype(np.int64).T
    lo, hi = {np.int16: (1 << 14, 1 << 15), np.int32: (1 << 30, 1 << 31), np.int64: (1 << 31, 1 << 62)}[acc]
    assert lo < np.abs(j1).max() < hi


def test_narrow_sums_are_chosen_only_under_their_bound():
    assert RecurrentSynapse(np.full((4, 4), 127)).rt_int.dtype == np.int16             # 508
    assert RecurrentSynapse(np.full((4, 4), 8192)).rt_int.dtype == np.int32            # 32768 = 2**15
    assert RecurrentSynapse(np.full((4, 4), 8191)).rt_int.dtype == np.int16            # 32764
    assert RecurrentSynapse(np.full((4, 4), 8191)).rt_gemm.dtype == np.float32
    with pytest.raises(ValueError, match="square"):
        RecurrentSynapse(np.ones((3, 4), np.int8))


@pytest.mark.skipif(not rs.HAVE_NUMBA, reason="numba not installed")
def test_fused_kernels_cover_the_kinds():
    assert set(rs.FUSED_KINDS) == {"lif", "cuba"}
