"""The NumPy reference's fused kernels (qsnn_deploy.simulators.lif_scan, .event_synapse) against
plain integer arithmetic, on operands chosen to expose any kernel that is not exact: currents at
the int64 / int32 edges, saturation in both directions, β = 0 and β = 1, per-channel parameters,
both reset modes, graded signed inputs."""
from __future__ import annotations

import numpy as np
import pytest

from qsnn_deploy import intmath
from qsnn_deploy.errors import SaturationError
from qsnn_deploy.simulators import event_synapse, lif_scan as scan_mod
from qsnn_deploy.simulators.lif_scan import lif_scan

pytestmark = pytest.mark.skipif(not scan_mod.HAVE_NUMBA, reason="numba not installed (the NumPy twin is the fallback)")


def _scan_loop(j, static, steps, frac_bits, th, b, d, reset, state_bits):
    """The recurrence written out one neuron at a time in Python ints (the spec, no vectorisation)."""
    shape = j.shape if static else j.shape[1:]
    c = shape[-1]
    flat = j.reshape(1 if static else steps, -1)
    n = flat.shape[1]
    vmax = intmath.state_limit(state_bits)
    spikes = np.zeros((steps, n), np.uint8)
    states = np.zeros((steps, n), np.int64)
    sat = 0
    for i in range(n):
        ch = i % c
        v = 0
        for t in range(steps):
            fired = v > th[ch]
            if fired and reset == "zero":
                v = 0
            x = v * int(d[ch])
            v = (1 if x >= 0 else -1) * (abs(x) >> 12)
            v += (int(flat[0 if static else t, i]) << frac_bits) + int(b[ch])
            if fired and reset == "subtract":
                v -= int(th[ch])
            if abs(v) > vmax:
                v = max(-vmax, min(vmax, v))
                sat += 1
            states[t, i] = v
            spikes[t, i] = v > th[ch]
    return spikes.reshape((steps,) + shape), states.reshape((steps,) + shape), sat


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("static", [True, False])
def test_lif_scan_kernels_equal_the_recurrence(reset, static):
    rng = np.random.default_rng(7)
    steps, c = 9, 5
    shape = (3, 4, c)
    state_bits, frac_bits = 12, 3
    vmax = intmath.state_limit(state_bits)
    # currents reaching past the state limit in both directions, zeros, and tiny values
    j = rng.choice([-(vmax >> 2), -300, -1, 0, 0, 1, 7, 300, vmax >> 2], size=shape if static else (steps,) + shape)
    th = np.array([0, 1, 250, vmax - 1, vmax])                 # per channel, up to the limit
    b = np.array([-vmax // 3, 0, 17, -5, vmax // 2])
    d = np.array([0, 4096, 2048, 4095, 1])                     # β = 0, β = 1, and the edges
    want = _scan_loop(j, static, steps, frac_bits, th, b, d, reset, state_bits)
    assert want[2] > 0  # the operands do saturate
    for use_numba in (True, False):
        spikes, states, sat = lif_scan(j, static, steps, frac_bits, th, b, d, reset, state_bits, record=True,
                                       use_numba=use_numba)
        assert np.array_equal(spikes, want[0]), use_numba
        assert np.array_equal(states, want[1]), use_numba
        assert sat == want[2], use_numba


def test_lif_scan_kernels_hold_int64_extremes():
    """|v·d| up to 2^(B_v - 1 + 12) with B_v = 48: products past 2^53 (float would round) stay exact."""
    state_bits, frac_bits, steps = 48, 0, 6
    vmax = intmath.state_limit(state_bits)
    j = np.array([[vmax, -vmax, vmax - 3, -(vmax - 3)]], dtype=np.int64).reshape(1, 4)
    th = np.array([vmax, vmax, vmax - 5, vmax])
    d = np.array([4095, 4095, 4093, 1])
    b = np.zeros(4, dtype=np.int64)
    want = _scan_loop(j, True, steps, frac_bits, th, b, d, "subtract", state_bits)
    for use_numba in (True, False):
        got = lif_scan(j, True, steps, frac_bits, th, b, d, "subtract", state_bits, record=True, use_numba=use_numba)
        assert np.array_equal(got[1], want[1]) and got[2] == want[2]


def test_lif_scan_raise_names_layer_step_and_count_in_both_kernels():
    j = np.zeros((4, 1, 3), dtype=np.int64)
    j[2, 0, :2] = 1 << 20
    msgs = []
    for use_numba in (True, False):
        with pytest.raises(SaturationError) as exc:
            lif_scan(j, False, 4, 6, np.full(3, 1 << 22), np.zeros(3), np.zeros(3), "zero", 24, name="conv9",
                     saturation="raise", use_numba=use_numba)
        msgs.append(str(exc.value))
    assert msgs[0] == msgs[1]
    assert "conv9" in msgs[0] and "step 2" in msgs[0] and "(2 neurons)" in msgs[0]


def _conv_int64(x, w, stride, out_hw):
    """Exact reference: int64 einsum over each output position's window."""
    n, (ho, wo) = x.shape[0], out_hw
    kh, kw = w.shape[:2]
    out = np.zeros((n, ho, wo, w.shape[3]), dtype=np.int64)
    for oy in range(ho):
        for ox in range(wo):
            win = x[:, oy * stride[0]:oy * stride[0] + kh, ox * stride[1]:ox * stride[1] + kw, :].astype(np.int64)
            out[:, oy, ox] = np.einsum("nhwc,hwco->no", win, w.astype(np.int64))
    return out


@pytest.mark.parametrize("wdtype", [np.int16, np.int32, np.int64])
def test_event_conv_is_exact_on_adversarial_operands(wdtype):
    rng = np.random.default_rng(3)
    # graded signed inputs (int16) with most values zero, extreme weights; with int64 the sums pass 2**31
    x = rng.integers(-32768, 32767, size=(5, 9, 8, 3)).astype(np.int16)
    if wdtype is np.int16:  # Σ|x·w| over the 18-input window below 2**15, products up to 1800
        x = np.clip(x, -100, 100)
    x[rng.random(x.shape) < 0.7] = 0
    hi = (1 << 15) - 1 if wdtype is np.int32 else (1 << 40)
    w = rng.choice([-hi, -1, 0, 1, hi], size=(3, 2, 3, 7)).astype(wdtype)
    if wdtype is np.int32:
        w = np.clip(w, -(1 << 13), 1 << 13)  # Σ|x·w| over the 18-input window stays below 2**31
    if wdtype is np.int16:
        w = np.clip(w, -18, 18)
        w[..., 0] = 18
        x[0, :3, :2, :] = 100  # output (0, 0, 0, 0) = 18 · 100 · 18 = 32400, just below 2**15
    stride = (2, 3)
    out_hw = ((9 - 3) // 2 + 1, (8 - 2) // 3 + 1)
    got = event_synapse.event_conv(x, w, stride, out_hw)
    want = _conv_int64(x, w, stride, out_hw)
    assert got.dtype == np.int64 and np.array_equal(got, want)
    if wdtype is np.int16:
        assert np.abs(want).max() > 1 << 14 and event_synapse.accumulator_dtype(18 * 100 * 18) is np.int16
    if wdtype is np.int64:
        assert np.abs(want).max() > (1 << 53)  # exact where float64 would not be


@pytest.mark.parametrize("wdtype", [np.int16, np.int32, np.int64])
def test_event_dense_equals_integer_matmul(wdtype):
    """Spikes and graded signed inputs, rows all silent and all active, more rows than one chunk."""
    rng = np.random.default_rng(4)
    n = event_synapse.DENSE_ROWS * 2 + 7
    x = (rng.random((n, 70)) < 0.1).astype(np.uint8)
    x[0] = 0
    x[1] = 1
    top = {np.int16: 468, np.int32: 1 << 24, np.int64: 1 << 40}[wdtype]  # 70 · 468 = 32760 < 2**15
    w = rng.choice([-top, -1, 0, 1, top], size=(70, 6)).astype(wdtype)
    w[:, 0] = top
    assert np.array_equal(event_synapse.event_dense(x, w), x.astype(np.int64) @ w.astype(np.int64))
    graded = np.where(rng.random((n, 70)) < 0.2, rng.integers(-3, 4, (n, 70)), 0).astype(np.int8)
    if wdtype is np.int16:
        w = np.clip(w, -156, 156)  # 70 · 3 · 156 = 32760
    assert np.array_equal(event_synapse.event_dense(graded, w), graded.astype(np.int64) @ w.astype(np.int64))


def test_kernels_leave_multiprocessing_start_method_unset():
    """Numba's first parallel launch would fix the start method, and Lava's own unforced
    set_start_method('fork') on import would then fail; the kernels put it back (fresh process)."""
    import subprocess
    import sys

    code = ("import multiprocessing as mp, numpy as np\n"
            "from qsnn_deploy.simulators.lif_scan import lif_scan\n"
            "from qsnn_deploy.simulators.event_synapse import event_dense\n"
            "lif_scan(np.zeros((4, 3), np.int64), True, 3, 6, np.ones(3), np.zeros(3), np.zeros(3), 'zero', 24)\n"
            "event_dense(np.ones((2, 3), np.uint8), np.ones((3, 2), np.int32))\n"
            "assert mp.get_start_method(allow_none=True) is None, mp.get_start_method(allow_none=True)\n"
            "mp.set_start_method('fork')\n")
    subprocess.run([sys.executable, "-c", code], check=True)
