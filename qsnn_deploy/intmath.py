"""The integer rules every backend shares (docs/integer-semantics.md §2), in one place.

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

from typing import TYPE_CHECKING, Iterator

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

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


def decay_from_beta(beta: npt.ArrayLike) -> np.ndarray:
    """12-bit decay integer ``d = round(clip(beta, 0, 1) * 4096)`` (snnTorch clamps beta to [0, 1])."""
    beta = np.clip(np.asarray(beta, dtype=np.float64), 0.0, 1.0)
    return np.round(beta * DECAY_ONE).astype(np.int64)


def decay_toward_zero_np(v: np.ndarray, d: int | np.ndarray) -> np.ndarray:
    """``sign(v*d) * (|v*d| >> 12)`` on int64 arrays (exact; no float)."""
    x = v * d
    # Arithmetic shift floors; adding 4095 to negative values first makes it round toward zero.
    return (x + ((x >> 63) & (DECAY_ONE - 1))) >> DECAY_BITS


def quantize_on_grid(value: npt.ArrayLike, sigma_abs: npt.ArrayLike, frac_bits: int) -> np.ndarray:
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


# ---------------------------------------------------------------------------------------------
# Exact integer GEMMs through float arithmetic (docs/integer-semantics.md, "Why every path is exact")
#
# A float GEMM/conv of integer operands is exact, in ANY summation order, with or without FMA, on
# any CPU or GPU kernel that really computes in that float format, when every partial sum is an
# integer the format holds: |partial| <= max_c sum_k |w_ck| * max|x| < 2**24 (float32) or 2**53
# (float64). Past the bound, the operands are cut into digits so that every piece is again under
# it, and the pieces are recombined in int64 (exact: FrozenNet.validate() keeps |J| << F < 2**62):
#
#     x = sum_k 2**(s*k) * x_k,   x_k in [0, 2**s)                       (x >= 0; signed x = x+ - x-)
#     w = sum_j 2**(m*j) * w_j,   w_j = sign(w) * ((|w| >> m*j) & (2**m - 1))
#     J = sum_j sum_k 2**(m*j + s*k) * (w_j . x_k)                         each piece < the bound
#
# No integer-GEMM kernel of a library is trusted: those kernels differ between CPUs (onnxruntime's
# AVX2 u8 x s8 MatMulInteger adds pairs of products in saturating int16, so it is wrong for
# 255*127*2 > 32767 while the AVX-512 VNNI kernel is right).
# ---------------------------------------------------------------------------------------------


def row_abs_sum_max(weight: np.ndarray) -> int:
    """``max_c sum_k |w[c, k...]|`` over output channels c (axis 0): the GEMM's worst row."""
    w = np.abs(np.asarray(weight).astype(np.int64))
    if w.size == 0:
        return 0
    return int(w.reshape(w.shape[0], -1).sum(axis=1).max())


def _bit_length(value: int) -> int:
    return max(int(value).bit_length(), 1)


def weight_digits(weight: np.ndarray, digit_bits: int) -> list[np.ndarray]:
    """Sign-magnitude digits ``w_j`` (int64) with ``w = sum_j 2**(m*j) * w_j`` and ``|w_j| < 2**m``."""
    w = np.asarray(weight).astype(np.int64)
    mag, sign = np.abs(w), np.sign(w)
    n = -(-_bit_length(int(mag.max(initial=0))) // digit_bits)
    mask = (1 << digit_bits) - 1
    return [sign * ((mag >> (digit_bits * j)) & mask) for j in range(n)]


def input_digits(x: np.ndarray, digit_bits: int, count: int) -> list[np.ndarray]:
    """Digits ``x_k`` of a NON-NEGATIVE integer array: ``x = sum_k 2**(s*k) * x_k``, ``0 <= x_k < 2**s``."""
    x = np.asarray(x).astype(np.int64)
    mask = (1 << digit_bits) - 1
    return [(x >> (digit_bits * k)) & mask for k in range(count)]


class ExactSplit:
    """How to compute ``J = W . x`` exactly with float GEMMs whose accumulator holds integers below ``limit``.

    Attributes:
        weight_digit_bits: m, bits per weight digit (the full width when the weights are not split).
        weights: the weight digits ``w_j`` (int64, W's layout), ``W = sum_j 2**(m*j) w_j``.
        input_digit_bits: s, bits per input digit.
        input_digit_count: number of input digits ``x_k``.
        signed_input: the input may be negative: it is split as ``x = x+ - x-`` (both >= 0) first.
        bound: the largest |partial sum| any piece can reach (< ``limit``).
        limit: the accumulator's exact-integer limit (2**24 float32, 2**53 float64).
    """

    def __init__(self, weight_digit_bits: int, weights: list[np.ndarray], input_digit_bits: int,
                 input_digit_count: int, signed_input: bool, bound: int, limit: int):
        self.weight_digit_bits = weight_digit_bits
        self.weights = weights
        self.input_digit_bits = input_digit_bits
        self.input_digit_count = input_digit_count
        self.signed_input = signed_input
        self.bound = bound
        self.limit = limit

    @property
    def pieces(self) -> int:
        """Number of float GEMMs one exact J costs (1 = no split)."""
        return len(self.weights) * self.input_digit_count * (2 if self.signed_input else 1)

    def terms(self) -> Iterator[tuple[np.ndarray, int, int, int]]:
        """``(weight digit, weight shift, input digit index, input shift)`` for every piece."""
        for j, wj in enumerate(self.weights):
            for k in range(self.input_digit_count):
                yield wj, self.weight_digit_bits * j, k, self.input_digit_bits * k

    def input_parts(self, x: np.ndarray) -> list[tuple[int, list[np.ndarray]]]:
        """``[(sign, digits)]``: the non-negative parts of ``x`` (one, or x+ and x-) cut into digits."""
        x = np.asarray(x).astype(np.int64)
        parts = [(1, np.maximum(x, 0)), (-1, np.maximum(-x, 0))] if self.signed_input else [(1, x)]
        return [(sign, input_digits(p, self.input_digit_bits, self.input_digit_count)) for sign, p in parts]

    def describe(self) -> str:
        """One line for logs and reports: "1 GEMM", or the number of GEMMs and the digits they come from."""
        if self.pieces == 1:
            return "1 GEMM"
        return (f"{self.pieces} GEMMs: {len(self.weights)} weight digit(s) of {self.weight_digit_bits} bits × "
                f"{self.input_digit_count} input digit(s) of {self.input_digit_bits} bits"
                + (" × input sign (x+, x-)" if self.signed_input else ""))


def plan_exact_split(weight: np.ndarray, x_max_abs: int, signed_input: bool, limit: int) -> ExactSplit:
    """The cheapest digit split that makes every piece of ``W . x`` exact below ``limit``.

    Args:
        weight: integer weights, output channels on axis 0 (any layout after it).
        x_max_abs: largest |x| (2**(b-1) for signed b-bit input, 2**b - 1 unsigned).
        signed_input: whether x may be negative.
        limit: exact-integer limit of the float accumulator (:data:`FLOAT32_EXACT` or :data:`FLOAT64_EXACT`).
    Raises:
        ValueError: no split exists (a single row of 1-bit digits already reaches ``limit``).
    """
    w = np.asarray(weight).astype(np.int64)
    x_max_abs = max(int(x_max_abs), 1)
    w_bits = _bit_length(int(np.abs(w).max(initial=0)))
    x_bits = _bit_length(x_max_abs)
    full = row_abs_sum_max(w) * x_max_abs
    if full < limit:
        return ExactSplit(w_bits, [w], x_bits, 1, False, full, limit)
    best = None
    for m in range(w_bits, 0, -1):
        digits = weight_digits(w, m)
        s_w = max(row_abs_sum_max(d) for d in digits)
        for s in range(x_bits, 0, -1):
            bound = s_w * min((1 << s) - 1, x_max_abs)
            if bound < limit:
                count = -(-x_bits // s)
                cand = ExactSplit(m, digits, s, count, signed_input, bound, limit)
                if best is None or cand.pieces < best.pieces:
                    best = cand
                break
    if best is None:
        raise ValueError(f"no exact float split: a single row of one-bit digits sums to ≥ {limit}")
    return best
