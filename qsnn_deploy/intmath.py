"""The integer rules every backend shares (DESIGN.md section 3), in one place.

Quantities and units
--------------------
* ``F`` (``frac_bits``, default 6): fractional bits of the membrane state. One unit of synaptic
  current ``J`` (an exact integer: integer weights times integer inputs) enters the state as
  ``J << F``, like Loihi's ``a << 6``.
* ``B_v`` (``state_bits``, default 24): signed width of the membrane state ``v``. ``v`` saturates
  at ``±(2**(B_v-1) - 1)``.
* ``d`` (decay, 12 bits): ``d = round(beta * 4096)``, ``0 <= d <= 4096``.
  ``decay(v) = sign(v*d) * (|v*d| >> 12)`` (rounds toward zero, as Loihi/Lava do).
* ``sigma`` (per output channel, float): the size of one unit of ``J`` in the float model's
  membrane units, ``sigma = a_bn * s_w * s_x * p``. ``q = |sigma| / 2**F`` is the size of one unit
  of ``v``. Thresholds and biases are quantized on that grid:
  ``theta_int = round(theta / q)``, ``b_int = round(b / q)`` (round half to even, float64).

Both :func:`qsnn_deploy.freeze` and the deploy-faithful neuron (:class:`qsnn_deploy.nn.QLeaky`)
call the functions here, so the integers they produce are identical by construction.
"""
from __future__ import annotations

import numpy as np

DECAY_BITS = 12
DECAY_ONE = 1 << DECAY_BITS  # 4096: d for beta = 1 (no decay)
DEFAULT_FRAC_BITS = 6
DEFAULT_STATE_BITS = 24
RESET_MODES = ("subtract", "zero")

#: Largest integer every float32 value (and every partial sum of a float32 GEMM) holds exactly.
FLOAT32_EXACT = 1 << 24
#: Largest integer float64 holds exactly.
FLOAT64_EXACT = 1 << 53


def state_limit(state_bits: int) -> int:
    """Largest magnitude of a signed ``state_bits``-wide membrane state: ``2**(B_v-1) - 1``."""
    return (1 << (state_bits - 1)) - 1


def decay_from_beta(beta) -> np.ndarray:
    """12-bit decay integer ``d = round(clip(beta, 0, 1) * 4096)`` (snnTorch clamps beta to [0, 1])."""
    beta = np.clip(np.asarray(beta, dtype=np.float64), 0.0, 1.0)
    return np.round(beta * DECAY_ONE).astype(np.int64)


def decay_toward_zero_np(v: np.ndarray, d) -> np.ndarray:
    """``sign(v*d) * (|v*d| >> 12)`` on int64 arrays (exact; no float)."""
    x = v * d
    # Arithmetic shift floors; adding 4095 to negative values first makes it round toward zero.
    return (x + ((x >> 63) & (DECAY_ONE - 1))) >> DECAY_BITS


def quantize_on_grid(value, sigma_abs, frac_bits: int) -> np.ndarray:
    """``round(value * 2**F / |sigma|)`` in float64, half to even, as int64.

    Used for thresholds and biases. ``sigma_abs`` must be > 0.
    """
    value = np.asarray(value, dtype=np.float64)
    sigma_abs = np.asarray(sigma_abs, dtype=np.float64)
    return np.round(value * float(1 << frac_bits) / sigma_abs).astype(np.int64)


def weight_range(bits: int, narrow: bool = True) -> tuple[int, int]:
    """Signed integer range of a ``bits``-wide weight (narrow range drops the most negative code)."""
    hi = (1 << (bits - 1)) - 1
    lo = -hi if narrow else -hi - 1
    return lo, hi


def bits_for_signed(max_abs: int) -> int:
    """Smallest signed (narrow-range) width holding every value in ``[-max_abs, max_abs]``."""
    max_abs = int(max_abs)
    bits = 1
    while (1 << (bits - 1)) - 1 < max_abs:
        bits += 1
    return max(bits, 2)


def fold_sum_pool(weight: np.ndarray, stride: tuple[int, int], pool: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Fold ``conv(stride s) -> sum-pool(k, stride k)`` into ONE conv (exact, integer).

    The folded kernel has size ``s*(k-1) + K`` and stride ``s*k`` (per axis); its weights are the
    sum of the ``k*k`` shifted copies of the original kernel, so a narrow-range int4 kernel with a
    2x2 pool folds into weights in [-28, 28]. Output sizes agree with torch's floor-mode pooling:
    ``floor((L + s)/(s*k)) == floor((floor(L/s) + 1)/k)`` for ``L = H + 2P - K``.

    Args:
        weight: int array (C_out, C_in, kH, kW).
        stride: conv stride (sH, sW).
        pool: sum-pool kernel (kH_pool, kW_pool), stride equal to the kernel.
    Returns:
        (folded int64 weight, folded stride).
    """
    c_out, c_in, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, pool
    out = np.zeros((c_out, c_in, sh * (ph - 1) + kh, sw * (pw - 1) + kw), dtype=np.int64)
    w64 = weight.astype(np.int64)
    for i in range(ph):
        for j in range(pw):
            out[:, :, sh * i: sh * i + kh, sw * j: sw * j + kw] += w64
    return out, (sh * ph, sw * pw)
