"""Bit-accurate NumPy reference simulator of a :class:`~qsnn_deploy.frozen.FrozenNet`.

Arithmetic (docs/integer-semantics.md §2, docstring of :mod:`qsnn_deploy.frozen`):

* Synaptic currents ``J`` are exact integers. Sparse inputs (spikes after the first layer: at most
  30% non-zero) go through an event-driven integer kernel (:mod:`.event_synapse`: only non-zero
  inputs are accumulated, int16 / int32 where the layer's bound proves every partial sum below 2**15 / 2**31).
  Dense inputs (pixels) use float32 BLAS GEMMs (im2col for convs, channels-last) because every
  partial sum is an integer below 2**24 when the accumulation bound checked here holds; float64
  (2**53) is used beyond it, and NumPy's own int64 matmul (plain loops, exact, ~300x slower) only
  past 2**53. No step depends on which BLAS kernel runs: any summation order of integers below
  the bound is exact.
* A conv followed by a sum pool runs as ONE folded conv (:func:`~qsnn_deploy.intmath.fold_sum_pool`).
* The network runs layer by layer over all T steps (feed-forward: layer l at step t depends only on
  layer l-1 at step t), so each layer's currents for all steps come from one large GEMM; a static
  input (the same image at every step) is multiplied once, not T times. Rows of silent input
  patches are skipped.
* Neuron updates are int64, one kernel per neuron kind (:data:`NUMPY_KERNELS`: :mod:`.lif_scan` for
  ``"lif"``, :mod:`.cuba_scan` for ``"cuba"``: one fused pass per step over cache-sized chunks of
  neurons), with the decay rounding toward zero: ``(x + ((x >> 63) & 4095)) >> 12`` equals
  ``sign(x) * (|x| >> 12)``. Each kernel is tested against its kind's ``reference_step``.
* Kind ``"xylo"`` takes the layer's input spike counts rather than J (:mod:`.xylo_scan`: its saturating
  adds depend on the order of the synaptic terms), so its layer runs through that kernel whole.
* A recurrent layer (``J_t = W·x_t + R·z_{t-1}``) runs through :mod:`.recurrent_scan`: one fused
  kernel per kind that adds, per step, the recurrent rows of only the neurons that spiked (exact
  integers) and updates the neurons in the same pass.
* Without Numba (or with ``use_numba=False``) everything runs as whole-array NumPy operations, bit-identical.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import intmath
from ..frozen import FrozenNet, Layer
from .base import (NeuronKernels, SimResult, batches, check_saturation_mode, merge_batches, prepare_input,
                   raise_on_saturation)
from .cuba_scan import cuba_scan
from .event_synapse import MAX_DENSITY, accumulator_dtype, event_conv, event_currents_available, event_dense
from .lif_scan import scan_lif
from .recurrent_scan import RecurrentSynapse
from .xylo_scan import HIDDEN_CAP, INPUT_CAP, xylo_layer_scan

#: The NumPy reference's kernel for each neuron kind: ``kernel(neuron, j, static, steps, record, use_numba)
#: -> (spikes, states, saturations per step)``.
NUMPY_KERNELS = NeuronKernels("numpy", {"lif": scan_lif, "cuba": cuba_scan, "xylo": xylo_layer_scan})

#: Rows per im2col chunk (bounds the temporary patch matrix to ~100-300 MB).
_MAX_PATCH_ELEMS = 1 << 25
#: Skip silent patches when fewer than this fraction of rows carry a spike.
_SPARSE_ROWS = 0.5


class _PreparedLayer:
    """One layer's arrays laid out for the channels-last GEMM."""

    def __init__(self, layer: Layer, in_shape: tuple[int, ...], x_bound: int, use_numba: bool | None = None):
        self.layer = layer
        self.kernel_fn = NUMPY_KERNELS.for_layer(layer)
        #: the kind's kernel takes the layer's input counts, not J (kind "xylo")
        self.takes_inputs = bool(getattr(self.kernel_fn, "takes_inputs", False))
        self.use_numba = event_currents_available() if use_numba is None else bool(use_numba)
        self.name = layer.name
        self.out_shape = layer.output_shape((int(np.prod(in_shape)),) if layer.synapse.flatten_input else in_shape)
        bound = layer.current_bound(x_bound)
        self.dtype = _gemm_dtype(bound)
        self.recurrent = self.recurrent_synapse = None
        if layer.synapse.is_recurrent:  # the fused scan's operands; R^T as an exact GEMM operand (the Loihi-style sim's)
            self.recurrent_synapse = RecurrentSynapse(layer.synapse.recurrent)
            self.recurrent = self.recurrent_synapse.rt_gemm
        if layer.synapse.kind == "conv":
            w, stride = layer.synapse.deployed()
            self.kernel = w.shape[2:]
            self.stride = stride
            self.padding = layer.synapse.padding
            # (C_out, C_in, kh, kw) -> (kh*kw*C_in, C_out): rows in (kh, kw, C) order = patch order, so
            # that patches copy contiguous channel runs from the channels-last input (~10x faster)
            wint = np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1).T)
            # the event kernel's layout: (kh, kw, C_in, C_out)
            self.wevent = wint.reshape(tuple(self.kernel) + (w.shape[1], w.shape[0]))
        else:
            w = layer.synapse.weight.astype(np.int64)
            if layer.synapse.flatten_input and len(in_shape) == 3:
                # Inputs are kept channels-last (H, W, C); torch flattens (C, H, W): permute columns once.
                c, h, ww = in_shape
                w = w.reshape(w.shape[0], c, h, ww).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
            wint = np.ascontiguousarray(w.T)
            self.wevent = wint
        self.wmat = np.ascontiguousarray(wint.astype(self.dtype))
        # event kernel: int16 / int32 products and sums when every partial sum is provably below 2**15 / 2**31
        self.wevent = self.wevent.astype(accumulator_dtype(bound))

    # -------------------------------------------------------------- synaptic current
    def currents(self, x: np.ndarray) -> np.ndarray:
        """J for a batch of channels-last inputs x [B, H, W, C] (or [B, F]); int64 [B, ..., C_out].

        Sparse inputs (at most :data:`~.event_synapse.MAX_DENSITY` non-zero, e.g. spikes) go through the
        event-driven kernel, dense ones through a float GEMM over im2col patches; both exact.
        """
        sparse = self.use_numba and x.size and np.count_nonzero(x) <= MAX_DENSITY * x.size
        if self.layer.synapse.kind == "dense":
            flat = x.reshape(x.shape[0], -1)
            if sparse:
                return event_dense(flat, self.wevent)
            return self._gemm(flat).reshape(x.shape[0], -1)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        b = x.shape[0]
        ho, wo = self.out_shape[1], self.out_shape[2]
        if sparse:
            xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0))) if (ph or pw) else x
            return event_conv(xp, self.wevent, (sh, sw), (ho, wo))
        out = np.empty((b, ho, wo, self.wmat.shape[1]), dtype=np.int64)
        per_sample = ho * wo * self.wmat.shape[0]
        chunk = max(1, _MAX_PATCH_ELEMS // max(per_sample, 1))
        for start in range(0, b, chunk):
            xs = x[start:start + chunk]  # patches stay in the input's compact dtype (uint8 for spikes)
            if ph or pw:
                xs = np.pad(xs, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
            win = sliding_window_view(xs, (kh, kw), axis=(1, 2))[:, ::sh, ::sw][:, :ho, :wo]
            cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(-1, self.wmat.shape[0])  # copy: (B*ho*wo, kh*kw*C)
            out[start:start + chunk] = self._gemm(cols).reshape(-1, ho, wo, self.wmat.shape[1])
        return out

    def _gemm(self, cols: np.ndarray) -> np.ndarray:
        """Exact integer product ``cols @ W`` through float BLAS; all-zero rows (silent patches) skipped."""
        active = cols.any(axis=1)
        n_active = int(np.count_nonzero(active))
        if n_active < _SPARSE_ROWS * cols.shape[0]:
            res = np.zeros((cols.shape[0], self.wmat.shape[1]), dtype=np.int64)
            if n_active:
                res[active] = self._to_int(cols[active].astype(self.dtype) @ self.wmat)
            return res
        return self._to_int(cols.astype(self.dtype, copy=False) @ self.wmat)

    @staticmethod
    def _to_int(j: np.ndarray) -> np.ndarray:
        """int64 J from the GEMM result; ``rint`` of a float result (no-op when exact), never of an int64
        one (``np.rint`` would return float64 and round values past 2**53)."""
        return j if j.dtype == np.int64 else np.rint(j).astype(np.int64)

    # -------------------------------------------------------------- neurons
    def scan(self, j: np.ndarray, static: bool, steps: int, record: bool):
        """Run the neuron kind's kernel over time. j: int64 [T, B, ..., C] or [B, ..., C] if static.
        Returns (spikes, states or None, saturation events per step)."""
        if self.recurrent_synapse is not None:
            return self.recurrent_synapse.scan(self.layer.neuron, j, static, steps, record, self.use_numba)
        return self.kernel_fn(self.layer.neuron, j, static, steps, record, self.use_numba)


class NumpySimulator:
    """The reference backend: exact integer semantics, vectorized over batch and time.

    Args:
        net: the frozen network (validated here).
        saturation: ``"count"`` (clip and count, default) or ``"raise"`` (:class:`SaturationError`).
        batch_size: samples simulated together (memory vs. GEMM efficiency).
        use_numba: run the fused Numba kernels (LIF scan, event-driven synapses); default: when
            Numba is installed. ``False`` runs the same arithmetic as whole-array NumPy operations.
    """

    name = "numpy"

    def __init__(self, net: FrozenNet, saturation: str = "count", batch_size: int = 128,
                 use_numba: bool | None = None):
        self.net = net.validate()
        self.saturation = check_saturation_mode(saturation, backend=self.name)
        self.batch_size = int(batch_size)
        self.layers: list[_PreparedLayer] = []
        x_bound = net.input.max_abs
        for layer, (in_shape, _) in zip(net.layers, net.layer_shapes()):
            self.layers.append(_PreparedLayer(layer, in_shape, x_bound, use_numba))
            x_bound = 1

    def run(self, x: np.ndarray, num_steps: int | None = None, record_states: bool = False) -> SimResult:
        """Simulate integer input ``x`` ([N, *shape] static or [T, N, *shape]) for T steps."""
        arr, static, steps = prepare_input(self.net, x, num_steps)
        parts = [self._run_batch(xs, static, steps, record_states) for xs in batches(arr, static, self.batch_size)]
        spikes, sats, states = merge_batches(parts, [p.name for p in self.layers], record_states)
        return SimResult(spikes, sats, states, backend=self.name, info={"kinds": {p.name: p.layer.kind for p in self.layers}})

    def _run_batch(self, x: np.ndarray, static: bool, steps: int, record: bool):
        x = x.astype(_compact_dtype(self.net), copy=False)
        # channels-last working layout
        if x.ndim >= 4 and len(self.net.input.shape) == 3:
            h = np.moveaxis(x, -3, -1)
        else:
            h = x
        spikes, states, sats = {}, {}, {}
        for i, p in enumerate(self.layers):
            if p.takes_inputs:
                hin = np.moveaxis(h, -1, -3) if h.ndim >= (4 if static else 5) else h  # torch's (C, H, W) flatten order
                s, v, per_step = p.kernel_fn(p.layer, hin, static, steps, record, INPUT_CAP if i == 0 else HIDDEN_CAP)
                static = False
                h = s
                spikes[p.name] = s
                sats[p.name] = raise_on_saturation(per_step, p.layer, self.saturation)
                if record:
                    states[p.name] = v
                continue
            if static:
                j = p.currents(h)
            else:
                t_, b_ = h.shape[:2]
                j = p.currents(h.reshape((t_ * b_,) + h.shape[2:])).reshape((t_, b_) + p_out_cl(p))
            s, v, per_step = p.scan(j, static, steps, record)
            static = False
            h = s
            spikes[p.name] = _to_torch_layout(s)
            sats[p.name] = raise_on_saturation(per_step, p.layer, self.saturation)
            if record:
                states[p.name] = _to_torch_layout(v)
        return spikes, sats, states


def _gemm_dtype(bound: int) -> type:
    """The float type whose GEMM is exact for partial sums up to ``bound``; int64 (NumPy's exact integer
    matmul, plain C loops) past 2**53 (``FrozenNet.validate`` rules out int64 overflow)."""
    if bound < intmath.FLOAT32_EXACT:
        return np.float32
    if bound < intmath.FLOAT64_EXACT:
        return np.float64
    return np.int64


def _compact_dtype(net: FrozenNet) -> np.dtype:
    """Smallest integer dtype holding every input value (keeps im2col patches small)."""
    lo, hi = net.input.value_range
    for dt in (np.uint8, np.int8, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def p_out_cl(p: _PreparedLayer) -> tuple[int, ...]:
    """Channels-last per-sample output shape of a prepared layer."""
    s = p.out_shape
    return (s[1], s[2], s[0]) if len(s) == 3 else s


def _to_torch_layout(a: np.ndarray) -> np.ndarray:
    """[T, B, H, W, C] -> [T, B, C, H, W]; dense outputs unchanged."""
    if a.ndim == 5:
        return np.ascontiguousarray(np.moveaxis(a, -1, 2))
    return a
