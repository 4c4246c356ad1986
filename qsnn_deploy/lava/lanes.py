"""The ``lanes`` build of the Lava backend: netx's blocks mapped onto Lava's own ``Sparse`` synapses,
k samples side by side, with every mapping checked exact at build time (:mod:`.backend`).

A netx ``Conv`` is unrolled into a sparse matrix by Lava's ``conv_to_sparse`` and must come through
Lava's 8-bit weight handling (mantissa, exponent) unchanged; anything that cannot is refused with
:class:`NotExact` and the backend falls back to netx's own network.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import QSNNError

if TYPE_CHECKING:
    import scipy.sparse as sp
    from lava.lib.dl.netx.hdf5 import Network
    from lava.magma.core.process.ports.ports import InPort, OutPort
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.sparse.process import Sparse
    from lava.utils.weightutils import SignMode

    from .models import QCUBA, QLIF

CONV_CURRENT_BITS = 24  # Lava's Conv clamps its output to signed 24 bits (lava/proc/conv/models.py)


class NotExact(Exception):
    """A conv whose weights or currents a Lava Sparse synapse cannot reproduce exactly."""


def conv_as_sparse(conv: Conv, in_max: int) -> tuple[sp.csr_matrix, int, int, SignMode]:
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


def check_dense_synapse(syn: Dense, expected: np.ndarray, layer: str, what: str) -> None:
    """A Lava ``Dense`` synapse netx built must compute exactly ``expected · s``: its stored weights after
    Lava's own 8-bit clip and truncation (what ``PyDenseModelBitAcc`` applies on its first step), shifted by
    its weight exponent, are the frozen integers. :class:`QSNNError` naming the layer otherwise (the Lava-free
    :func:`~.netx_weights.netx_dense_error` refuses such nets at export; this guards against a different lava-dl)."""
    from lava.utils.weightutils import SignMode, clip_weights, determine_sign_mode, truncate_weights

    stored = np.asarray(syn.weights.init).astype(np.int64)
    exp = int(syn.proc_params.get("weight_exp", 0))
    bits = int(syn.proc_params.get("num_weight_bits", 8))
    sign = syn.proc_params.get("sign_mode") or determine_sign_mode(stored)
    sign = sign if isinstance(sign, SignMode) else SignMode(int(sign))
    used = np.asarray(truncate_weights(clip_weights(stored, sign, num_bits=8), sign, bits), np.int64)
    ok = exp <= 0 and np.array_equal(used, stored) and np.array_equal(used >> -exp, np.asarray(expected, np.int64)) \
        and np.array_equal((used >> -exp) << -exp, used)
    if not ok:
        raise QSNNError(f"layer {layer}: netx built its {what} synapse with weights Lava does not run exactly "
                        f"(exponent {exp}, {bits} bits, {sign.name}); refusing to run other integers than the reference")


def lanes_network(proto: Network, made: list[tuple[Any, dict]], specs: list[dict], period: int, window: int,
                  lanes: int, in_shape: tuple, lava_shapes: list[tuple], input_message_bits: int,
                  steps: int | None = None
                  ) -> tuple[InPort, list[OutPort], list[QLIF | QCUBA | None], list[Sparse | None]]:
    """Lava processes for ``lanes`` samples side by side: Sparse synapses (block-diagonal), k-wide LIFReset /
    QLIF / QCUBA neurons, and for a recurrent layer a block-diagonal Sparse from the neurons' ``s_out`` back to
    their ``a_in`` (netx's ``synapse_rec`` weights: one step later, R·z_{t-1}). Custom layers count clips in
    their first ``steps`` (T) live steps, the reference's.

    Returns (first synapse's input port, per-layer output ports, per-layer custom process or None, per-layer
    recurrent synapse or None).
    """
    import scipy.sparse as sp
    from lava.proc.lif.process import LIFReset
    from lava.proc.sparse.process import Sparse
    from lava.utils.weightutils import determine_sign_mode

    from .models import QCUBA, QLIF

    in_max = (1 << 8) - 1 if input_message_bits > 0 else 1
    first_in, outs, customs, recs = None, [], [], []
    prev_out, prev_shape = None, in_shape

    def sparse_of(syn, after_flatten: bool = False):
        """netx Dense -> its weights, exponent, bits and sign as a CSR matrix (columns in torch's flatten order)."""
        dense = np.asarray(syn.weights.init)
        if after_flatten and len(prev_shape) == 3:  # netx: out.transpose([2, 1, 0]).flatten()
            x_, y_, c_ = prev_shape
            dense = dense[:, np.arange(x_ * y_ * c_).reshape(c_, y_, x_).transpose(2, 1, 0).reshape(-1)]
        return (sp.csr_matrix(dense), int(syn.proc_params["weight_exp"]), int(syn.proc_params["num_weight_bits"]),
                determine_sign_mode(np.asarray(syn.weights.init)))

    for i, (block, (_, params), spec) in enumerate(zip(proto.layers, made, specs)):
        syn = block.synapse
        kind = type(block).__name__
        if kind == "Conv":
            try:
                w, weight_exp, weight_bits, sign = conv_as_sparse(syn, in_max if i == 0 else 1)
            except NotExact as exc:
                raise NotExact(f"{spec['name']}: {exc}") from None
        elif kind in ("Dense", "RecurrentDense"):  # netx's weights / exponent / bits, Lava's sign rule
            w, weight_exp, weight_bits, sign = sparse_of(syn, spec["after_flatten"])
        else:
            raise NotExact(f"{spec['name']}: netx block {kind} has no lanes mapping")
        # A spike-fed synapse takes the neurons' 0/1 spikes as 1-valued graded messages: Lava's Sparse then
        # computes W·s as a sparse matrix-vector product instead of summing the columns of the spiking
        # inputs (same integers; ≈ 3× faster for the shipped conv2). The input layer keeps netx's setting.
        msg_bits = int(np.asarray(syn.num_message_bits.init).item())
        synapse = Sparse(weights=sp.block_diag([w] * lanes, format="csr"), weight_exp=weight_exp,
                         num_weight_bits=weight_bits, sign_mode=sign,
                         num_message_bits=msg_bits if i == 0 else max(1, msg_bits), name=f"{spec['name']}_syn")
        n = int(np.prod(lava_shapes[i]))

        def tile(a, shape=lava_shapes[i]):
            return np.tile(np.broadcast_to(np.asarray(a, np.int64), shape).reshape(-1), lanes)
        live = dict(hold_steps=i + 1, reset_interval=period, reset_offset=0,
                    window_steps=window if window < period else None, lanes=lanes, count_steps=steps, name=spec["name"])
        if spec["route"] == "stock":
            neuron = LIFReset(shape=(lanes * n,), vth=params["vth"], du=params["du"], dv=params["dv"],
                              bias_mant=tile(params["bias_mant"]).astype(np.int32), bias_exp=params["bias_exp"],
                              reset_interval=period, reset_offset=(i + 2) % period, name=spec["name"])
            customs.append(None)
        elif spec.get("kind") == "cuba":
            cb = spec.get("current_bias")
            neuron = QCUBA(shape=(lanes * n,), vth=tile(spec["threshold"]), bias=tile(spec["bias"]),
                           decay=tile(spec["decay"]), current_decay=tile(spec["current_decay"]),
                           current_bias=tile(0 if cb is None else cb), reset=spec["reset"],
                           frac_bits=spec["frac_bits"], state_bits=spec["state_bits"],
                           current_bits=spec.get("current_bits") or spec["state_bits"], **live)
            customs.append(neuron)
        else:
            neuron = QLIF(shape=(lanes * n,), vth=tile(spec["threshold"]), bias=tile(spec["bias"]),
                          decay=tile(spec["decay"]), reset=spec["reset"], frac_bits=spec["frac_bits"],
                          state_bits=spec["state_bits"], **live)
            customs.append(neuron)
        if prev_out is None:
            first_in = synapse.s_in
        else:
            prev_out.connect(synapse.s_in)
        synapse.a_out.connect(neuron.a_in)
        rec = None
        if kind == "RecurrentDense":  # the layer's own spikes back to its input, one Lava step later
            w_rec, rec_exp, rec_bits, rec_sign = sparse_of(block.synapse_rec)
            rec = Sparse(weights=sp.block_diag([w_rec] * lanes, format="csr"), weight_exp=rec_exp,
                         num_weight_bits=rec_bits, sign_mode=rec_sign, num_message_bits=1, name=f"{spec['name']}_rec")
            neuron.s_out.connect(rec.s_in)
            rec.a_out.connect(neuron.a_in)
        recs.append(rec)
        outs.append(neuron.s_out)
        prev_out, prev_shape = neuron.s_out, lava_shapes[i]
    return first_in, outs, customs, recs
