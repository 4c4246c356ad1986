"""What netx (lava-dl 0.6.0) and Lava's ``Dense`` synapse make of integer dense weights (no Lava import).

netx builds a ``dense`` block's synapse from the file's integer weights with
``lava.lib.dl.netx.utils.optimize_weight_bits``, and a ``dense_rec`` block (feed-forward ``weight`` and
recurrent ``weight_rec``) from ONE call on the two side by side, ``np.hstack((weight, weight_rec))``: both
synapses share one weight exponent and one bit count (netx's sign mode is not passed on: each Lava synapse
takes its own, ``determine_sign_mode`` of its own weights). Lava's bit-accurate ``Dense`` / ``Sparse``
models (``PyDenseModelBitAcc``, ``lava/proc/dense/models.py``) then clip and truncate the stored weights
once (``lava.utils.weightutils.clip_weights`` to 8 bits, ``truncate_weights``) and compute, per step,
``a = (Σ w_stored · s) >> -weight_exp`` (``<< weight_exp`` when positive) in int32.

:func:`netx_dense_encoding` restates ``optimize_weight_bits`` and :func:`netx_dense_error` says whether the
integers that reach the neuron are exactly the frozen ones (tests/test_lava_recurrent.py checks both
against Lava's own functions). Units: weights in J units (one unit of input times one unit of weight).
"""
from __future__ import annotations

import math

import numpy as np

MIXED, EXCITATORY, INHIBITORY = "mixed", "excitatory", "inhibitory"
INT32_MAX = (1 << 31) - 1


def netx_dense_encoding(weight: np.ndarray) -> tuple[np.ndarray, int, int, str]:
    """``optimize_weight_bits`` of lava-dl 0.6.0 (``netx/utils.py``) on integer weights: (stored weights
    int64, num_weight_bits, weight_exp, sign mode). Mixed-sign weights past -256..254 are clipped there
    (netx prints a warning), as here. The weights must not be all zero (netx takes log2 of an infinite
    scale then) and the scale shift must be ≥ 0 (checked by :func:`netx_dense_error` first)."""
    w = np.asarray(weight, dtype=np.int64)
    hi, lo = int(w.max()), int(w.min())
    if (hi > 254 and lo < 0) or (lo < -256 and hi > 0):
        w = np.clip(w, -256, 254)
        hi, lo = int(w.max()), int(w.min())
    if hi < 0:
        mode, signed, scale = INHIBITORY, 0, -256 / lo
    elif lo >= 0:
        mode, signed, scale = EXCITATORY, 0, 255 / hi
    else:
        mode, signed, scale = MIXED, 1, min(127 / hi if hi else math.inf, -128 / lo)  # numpy: 127 / 0 = inf
    scale_bits = math.floor(math.log2(scale)) + signed
    n = 8
    while n > 0 and np.sum(np.abs(w / 2 ** n - np.round(w / 2 ** n))) != 0:
        n -= 1
    n -= signed
    return w << scale_bits, int(8 - scale_bits - n), int(-scale_bits), mode


def lava_sign_mode(stored: np.ndarray) -> str:
    """Lava's ``determine_sign_mode``: excitatory when no weight is negative, inhibitory when none is positive."""
    w = np.asarray(stored)
    return EXCITATORY if w.min() >= 0 else INHIBITORY if w.max() <= 0 else MIXED


def lava_stored_weights(stored: np.ndarray, num_weight_bits: int, mode: str | None = None) -> np.ndarray:
    """The weights a bit-accurate Lava Dense uses: ``clip_weights(w, mode, 8)`` then
    ``truncate_weights(w, mode, num_weight_bits)`` (``lava/utils/weightutils.py``); ``mode`` defaults to
    the synapse's own (:func:`lava_sign_mode`), as netx's blocks leave it."""
    w = np.asarray(stored, dtype=np.int64)
    mode = mode or lava_sign_mode(w)
    mixed = int(mode == MIXED)
    if mode == INHIBITORY:
        w = -w
    w = np.clip(w, -(2 ** 8) * mixed, 2 ** 8 - 1).astype(np.int32)
    drop = 8 - int(num_weight_bits) + mixed  # negative when netx asked for 9 bits: numpy's shifts then give 0
    w = ((w >> drop) << drop).astype(np.int64)
    return -w if mode == INHIBITORY else w


def netx_dense_error(weight: np.ndarray, in_max: int = 1, what: str = "weights", split: int | None = None) -> str | None:
    """None when netx's encoding of the integer ``weight`` matrix, run by Lava's bit-accurate Dense on
    inputs in 0..``in_max``, gives exactly ``weight · x``; else the reason, one phrase naming ``what``.
    ``split``: the columns ``[:split]`` and ``[split:]`` are two synapses encoded together (netx's
    ``dense_rec``: ``weight`` and ``weight_rec``), each clipped and truncated under its own sign mode."""
    w = np.asarray(weight, dtype=np.int64)
    if w.size == 0 or not w.any():
        return f"{what} are all zero (netx's optimize_weight_bits takes log2 of an infinite scale)"
    hi, lo = int(w.max()), int(w.min())
    if (hi > 254 and lo < 0) or (lo < -256 and hi > 0):
        return f"mixed-sign {what} {lo}..{hi}: netx clips them to -256..254 (optimize_weight_bits)"
    if (lo >= 0 and hi > 255) or (hi < 0 and lo < -256):
        return f"one-sign {what} up to |w| = {max(hi, -lo)}: past netx's 8-bit range (optimize_weight_bits shifts by a negative count)"
    stored, bits, exp, _ = netx_dense_encoding(w)
    cols = [slice(None)] if split is None else [slice(None, split), slice(split, None)]
    for c in cols:
        part = stored[:, c]
        if not part.size:
            continue
        used = lava_stored_weights(part, bits)
        if not np.array_equal(used, part):
            bad = tuple(np.argwhere(used != part)[0])
            return (f"{what}: netx stores {int(w[:, c][bad])} as {int(part[bad])} (exponent {exp}), which Lava's "
                    f"8-bit clip / truncation ({bits} weight bits, {lava_sign_mode(part)}) turns into {int(used[bad])}")
    if exp > 0 or not np.array_equal(stored >> -exp, w) or not np.array_equal((stored >> -exp) << -exp, stored):
        return f"{what}: netx's weight exponent {exp} does not hold them exactly"
    if int(np.abs(stored).sum(axis=-1).max(initial=0)) * int(in_max) > INT32_MAX:
        return f"{what}: the scaled synaptic sum may overflow Lava's int32 accumulator"
    return None
