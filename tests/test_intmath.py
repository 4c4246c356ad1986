"""The shared integer rules: decay rounding toward zero, and conv + sum-pool folding."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qsnn_deploy import LIFLayer, intmath
from qsnn_deploy.simulators.torch_sim import decay_toward_zero

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decay_python(v: int, d: int) -> int:
    """sign(v*d) * (|v*d| >> 12) with Python's unbounded ints."""
    x = v * d
    return (1 if x > 0 else -1 if x < 0 else 0) * (abs(x) >> 12)


@settings(max_examples=40, **SETTINGS)
@given(v=st.lists(st.integers(-(2**23), 2**23), min_size=1, max_size=64),
       d=st.integers(0, 4096))
def test_decay_toward_zero_matches_python_ints(v, d):
    arr = np.array(v, dtype=np.int64)
    want = np.array([_decay_python(x, d) for x in v], dtype=np.int64)
    got = intmath.decay_toward_zero_np(arr, d)
    assert got.dtype == np.int64
    assert np.array_equal(got, want)
    # per-element decays and the torch twin used by the torch simulator
    ds = np.array([(d * (i + 7)) % 4097 for i in range(len(v))], dtype=np.int64)
    want_vec = np.array([_decay_python(x, int(e)) for x, e in zip(v, ds)], dtype=np.int64)
    assert np.array_equal(intmath.decay_toward_zero_np(arr, ds), want_vec)
    assert np.array_equal(decay_toward_zero(torch.from_numpy(arr), torch.from_numpy(ds)).numpy(), want_vec)


def test_decay_edge_cases():
    v = np.array([-1, 1, -4095, 4095, -4096, 4096, -4097, 4097, -(2**23), 2**23 - 1, 0], dtype=np.int64)
    for d in (0, 1, 2048, 4095, 4096):
        want = np.array([_decay_python(int(x), d) for x in v], dtype=np.int64)
        assert np.array_equal(intmath.decay_toward_zero_np(v, d), want), d
    # rounds toward zero, not floor: -1 * 2048 >> 12 would be -1 with floor
    assert intmath.decay_toward_zero_np(np.array([-1], dtype=np.int64), 2048)[0] == 0
    assert intmath.decay_toward_zero_np(np.array([-3], dtype=np.int64), 4095)[0] == -2
    # d = 4096 is the identity (no leak)
    assert np.array_equal(intmath.decay_toward_zero_np(v, 4096), v)
    # the largest product the simulators allow (48-bit state times 4096) stays exact in int64
    big = np.array([-(2**47 - 1), 2**47 - 1], dtype=np.int64)
    assert np.array_equal(intmath.decay_toward_zero_np(big, 4095),
                          np.array([_decay_python(int(x), 4095) for x in big], dtype=np.int64))


def test_decay_from_beta():
    assert intmath.decay_from_beta(0.5) == 2048
    assert intmath.decay_from_beta(1.0) == 4096 and intmath.decay_from_beta(1.5) == 4096
    assert intmath.decay_from_beta(-0.2) == 0
    assert np.array_equal(intmath.decay_from_beta([0.25, 0.9]), [1024, round(0.9 * 4096)])


def test_weight_range_and_bits():
    assert intmath.weight_range(4) == (-7, 7)
    assert intmath.weight_range(4, narrow=False) == (-8, 7)
    assert intmath.bits_for_signed(28) == 6 and intmath.bits_for_signed(7) == 4 and intmath.bits_for_signed(0) == 2


@st.composite
def fold_cases(draw):
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pool = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    # input sizes such that the conv output holds at least one pool window (odd sizes included)
    h = draw(st.integers(max(1, k[0] - 2 * pad[0] + s[0] * (pool[0] - 1)), 17))
    w = draw(st.integers(max(1, k[1] - 2 * pad[1] + s[1] * (pool[1] - 1)), 17))
    return dict(kernel=k, stride=s, pool=pool, padding=pad, hw=(h, w), c_in=draw(st.integers(1, 3)),
                c_out=draw(st.integers(1, 4)), n=draw(st.integers(1, 3)), seed=draw(st.integers(0, 2**31)))


@settings(max_examples=40, **SETTINGS)
@given(case=fold_cases())
def test_fold_sum_pool_equals_conv_then_sum_pool(case):
    rng = np.random.default_rng(case["seed"])
    (kh, kw), stride, pool, pad, (h, w) = case["kernel"], case["stride"], case["pool"], case["padding"], case["hw"]
    weight = rng.integers(-7, 8, size=(case["c_out"], case["c_in"], kh, kw))
    x = torch.tensor(rng.integers(0, 256, size=(case["n"], case["c_in"], h, w)), dtype=torch.float64)
    wt = torch.tensor(weight, dtype=torch.float64)
    conv = F.conv2d(x, wt, stride=stride, padding=pad)
    assert conv.shape[2] >= pool[0] and conv.shape[3] >= pool[1]
    want = F.avg_pool2d(conv, pool, pool) * float(pool[0] * pool[1])  # sum pool, floor mode: drops a border
    folded, fstride = intmath.fold_sum_pool(weight, stride, pool)
    assert folded.dtype == np.int64
    assert folded.shape == (case["c_out"], case["c_in"], stride[0] * (pool[0] - 1) + kh, stride[1] * (pool[1] - 1) + kw)
    assert fstride == (stride[0] * pool[0], stride[1] * pool[1])
    assert np.abs(folded).max(initial=0) <= pool[0] * pool[1] * np.abs(weight).max(initial=0)
    assert folded.sum() == weight.sum() * pool[0] * pool[1]
    got = F.conv2d(x, torch.tensor(folded, dtype=torch.float64), stride=fstride, padding=pad)
    assert got.shape == want.shape
    assert torch.equal(got, want)
    # the frozen format's own shape rule agrees with torch
    layer = LIFLayer("c", "conv", weight.astype(np.int8), 4, np.zeros(case["c_out"], np.int64),
                     np.zeros(case["c_out"], np.int64), np.zeros(case["c_out"], np.int64),
                     stride=stride, padding=pad, pool=pool)
    assert layer.output_shape((case["c_in"], h, w)) == tuple(want.shape[1:])


def test_fold_sum_pool_seed_shapes_and_range():
    """conv5x5 + 2x2 sum pool == one 6x6 stride-2 conv with weights in [-28, 28] (narrow int4)."""
    w = np.full((2, 1, 5, 5), 7)
    w[1] = -7
    folded, stride = intmath.fold_sum_pool(w, (1, 1), (2, 2))
    assert folded.shape == (2, 1, 6, 6) and stride == (2, 2)
    assert folded.max() == 28 and folded.min() == -28
    assert intmath.bits_for_signed(np.abs(folded).max()) <= 8
    # odd conv output (27 -> 13, the last row/column dropped by the pool)
    x = torch.tensor(np.random.default_rng(1).integers(0, 256, size=(1, 1, 31, 31)), dtype=torch.float64)
    want = F.avg_pool2d(F.conv2d(x, torch.tensor(w, dtype=torch.float64)), 2) * 4
    got = F.conv2d(x, torch.tensor(folded, dtype=torch.float64), stride=2)
    assert want.shape[-2:] == (13, 13)
    assert torch.equal(got, want)


@pytest.mark.parametrize("value, sigma, frac, want", [
    (1.0, 1.0, 6, 64), (0.5, 1 / 64, 0, 32), (2.5 / 64, 1.0, 6, 2), (3.5 / 64, 1.0, 6, 4), (-1.0, 0.5, 2, -8),
])
def test_quantize_on_grid_half_to_even(value, sigma, frac, want):
    assert int(intmath.quantize_on_grid(value, sigma, frac)) == want
