"""The ``lanes`` build of the Lava backend: netx's blocks mapped onto Lava's own ``Sparse`` synapses,
k samples side by side, with every mapping checked exact at build time (:mod:`.backend`).

A netx ``Conv`` is unrolled into a sparse matrix by Lava's ``conv_to_sparse`` and must come through
Lava's 8-bit weight handling (mantissa, exponent) unchanged; anything that cannot is refused with
:class:`NotExact` and the backend falls back to netx's own network.
"""
from __future__ import annotations

import numpy as np

from ..errors import QSNNError

CONV_CURRENT_BITS = 24  # Lava's Conv clamps its output to signed 24 bits (lava/proc/conv/models.py)

class NotExact(Exception):
    """A conv whose weights or currents a Lava Sparse synapse cannot reproduce exactly."""


def conv_as_sparse(conv, in_max: int):
    """Lava's Conv synapse ``conv`` as the per-sample CSR matrix of a Lava ``Sparse`` synapse that
    computes the identical current: (weights, weight_exp, num_weight_bits, sign_mode).

    The kernel (Lava layout (C_out, kx, ky, C_in)) is unrolled by Lava's ``conv_to_sparse``; netx's
    ``optimize_weight_bits`` picks the 8-bit mantissas and exponent (as netx does for dense layers);
    Lava's own clip and truncation (what ``PySparseModelBitAcc`` applies) must give the kernel back
    exactly, and the current, |a| ≤ Σ|w|·in_max per neuron, must stay inside the signed 24 bits that
    Lava's Conv clamps to (and the scaled sum inside int32).

    Raises:
        NotExact: with the reason.
    """
    import scipy.sparse as sp
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.proc.conv import utils as conv_utils
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights

    kernel = np.asarray(conv.weight.init).astype(np.int64)
    in_shape = tuple(int(s) for s in conv.s_in.shape)
    out_shape = tuple(int(s) for s in conv.a_out.shape)
    geometry = [tuple(int(v) for v in np.atleast_1d(getattr(conv, k).init)) for k in ("stride", "padding", "dilation")]
    groups = int(np.asarray(conv.groups.init).item())
    if not kernel.any():
        raise NotExact("all-zero kernel")
    scaled, weight_bits, weight_exp, sign = optimize_weight_bits(kernel)
    scaled = np.asarray(scaled, np.int64)
    if weight_exp > 0 or not np.array_equal(scaled >> -weight_exp, kernel) or \
            not np.array_equal((scaled >> -weight_exp) << -weight_exp, scaled):
        raise NotExact("its weights need more than an 8-bit mantissa under one exponent")
    dst, srcs, wgt = conv_utils.conv_to_sparse(in_shape, out_shape, scaled, *geometry, groups)
    n_out, n_in = int(np.prod(out_shape)), int(np.prod(in_shape))
    w = sp.csr_matrix((np.asarray(wgt, np.int64), (np.asarray(dst), np.asarray(srcs))), shape=(n_out, n_in))
    w.sum_duplicates()
    sign = SignMode(int(sign))
    eff = truncate_weights(clip_weights(w, sign, num_bits=8), sign, weight_bits)
    if (abs(eff - w) > 0).nnz:
        raise NotExact("Lava's 8-bit synapse clip / truncation changes its weights")
    row_abs = np.asarray(abs(w).sum(axis=1)).ravel()
    if row_abs.max(initial=0) * in_max >= 1 << 31:
        raise NotExact("its scaled synaptic sum may overflow int32")
    if (row_abs.max(initial=0) >> -weight_exp) * in_max >= 1 << (CONV_CURRENT_BITS - 1):
        raise NotExact(f"its current may exceed the {CONV_CURRENT_BITS}-bit clamp of Lava's Conv")
    # the unrolled matrix must compute Lava's own conv: one random input, checked here
    probe = np.random.default_rng(0).integers(0, in_max + 1, in_shape)
    ref = conv_utils.conv(probe, kernel, kernel.shape[1:3], *geometry, groups).astype(np.int64).reshape(-1)
    if not np.array_equal((w @ probe.reshape(-1).astype(np.int64)) >> -weight_exp, ref):
        raise NotExact("Lava's conv_to_sparse does not reproduce Lava's conv for it")
    return w.astype(np.int32), int(weight_exp), int(weight_bits), sign


def check_stock_params(spec: dict, params: dict) -> None:
    """A stock layer must be what the route promises: a single-state LIF (du = 4095), or for a ``cuba``
    layer the current decay a of the file (du = 4095 - a), whose bias, as netx built it
    (``bias_mant << bias_exp``, per neuron in Lava's layout), is the file's exact per-channel bias b
    (a multiple of 64). Anything else is refused rather than run inexactly."""
    name = spec["name"]
    a = int(np.asarray(spec["current_decay"]).reshape(-1)[0]) if spec.get("kind") == "cuba" else 0
    if int(np.asarray(params["du"]).item()) != 4095 - a:
        raise QSNNError(f"layer {name}: netx built du = {int(np.asarray(params['du']).item())}, the file's "
                        f"{spec.get('kind', 'lif')} neuron needs du = 4095 - {a} = {4095 - a}")
    mant = np.asarray(params["bias_mant"], dtype=np.int64)
    built = mant << int(np.asarray(params["bias_exp"]).item())
    want = np.asarray(spec["bias"], dtype=np.int64)  # per channel: Lava's layout is channel-last
    try:
        shape = np.broadcast_shapes(built.shape, want.shape)
    except ValueError:
        raise QSNNError(f"layer {name}: netx built a bias of shape {built.shape} for {want.size} channels") from None
    if not np.array_equal(np.broadcast_to(built, shape), np.broadcast_to(want, shape)):
        raise QSNNError(f"layer {name}: netx built bias_mant << bias_exp = {_range(built)}, the file's exact bias is "
                        f"{_range(want)} (a stock bias must be a multiple of 64 within Lava's 13-bit mantissa)")


def _range(a: np.ndarray) -> str:
    a = np.asarray(a)
    return str(int(a.min())) if a.size and a.min() == a.max() else f"{int(a.min(initial=0))}..{int(a.max(initial=0))}"
