"""``qsnn-export --target xylo``: the ``.npz`` specification Rockpool's ``XyloSim.from_specification`` loads.

The file holds exactly keyword arguments of ``rockpool.devices.xylo.<version>.XyloSim.from_specification``
(rockpool 3.1.0; syns63300 and syns61201 take the same ones), so the spec runs with Rockpool alone::

    spec = dict(np.load("model.npz", allow_pickle=False))
    mod = XyloSim.from_specification(**spec)      # keep `mod` alive while it runs (xylosim's raw pointers)
    out, _, rec = mod.evolve(counts)              # counts: int [T + L, 16], L = number of hidden layers

Keys (shapes for N_in inputs, H hidden, O readout neurons; one synapse per neuron is used):
``weights_in`` int8 (N_in, H, 1), ``weights_rec`` int8 (H, H, 1), ``weights_out`` int8 (H, O),
``dash_mem``, ``dash_syn``, ``dash_syn_2`` uint8 (H,), ``dash_mem_out``, ``dash_syn_out`` uint8 (O,),
``threshold``, ``bias`` int16 (H,), ``threshold_out``, ``bias_out`` int16 (O,), ``weight_shift_in``,
``weight_shift_rec``, ``weight_shift_out`` int8 scalars, ``dt`` float64 scalar (1 ms: no meaning for the
integer result). ``aliases`` (none), ``verify_config`` and ``output_mode`` keep Rockpool's defaults and
are not stored. The mapping, latency and limits: :mod:`.check`, docs/xylo.md.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, FrozenNetError
from ..fileio import atomic_path
from ..frozen import FrozenNet
from .check import XyloFit, check_net, matrix_groups, plan_layers

SUFFIX = ".npz"
#: the spec's keys: keyword arguments of XyloSim.from_specification (rockpool 3.1.0, syns63300 / syns61201)
SPEC_KEYS = ("weights_in", "weights_out", "weights_rec", "dash_mem", "dash_mem_out", "dash_syn", "dash_syn_2",
             "dash_syn_out", "threshold", "threshold_out", "bias", "bias_out", "weight_shift_in", "weight_shift_rec",
             "weight_shift_out", "dt")
DT = 1e-3


def refuse(fit: XyloFit) -> None:
    """:class:`FrozenNetError` naming the first layer, field and limit the fit misses (nothing when it fits)."""
    for lf in fit.layers:
        for ck in lf.checks:
            if ck.blocking and not ck.ok:
                raise FrozenNetError(lf.name, ck.field, f"{ck.value} does not fit {fit.chip.name} ({fit.chip.version}): "
                                     f"limit {ck.limit}{'; ' + ck.why if ck.why else ''}")
    for ck in fit.net_checks:
        if ck.blocking and not ck.ok:
            raise FrozenNetError("net", ck.field, f"{ck.value} does not fit {fit.chip.name} ({fit.chip.version}): "
                                 f"limit {ck.limit}{'; ' + ck.why if ck.why else ''}")


def build_spec(net: FrozenNet, version: str | None = None) -> dict[str, np.ndarray]:
    """The ``from_specification`` keyword arguments of ``net`` on chip ``version`` (module docstring);
    :class:`FrozenNetError` naming layer, field and limit when it does not fit."""
    fit = check_net(net, version)
    refuse(fit)
    hidden, readout, offsets = plan_layers(net)
    n_in, n_hid, n_out = int(net.input.shape[0]), fit.hidden, readout.out_channels
    shifts = fit.shifts
    w_in = np.zeros((n_in, n_hid, 1), np.int64)
    w_rec = np.zeros((n_hid, n_hid, 1), np.int64)
    w_out = np.zeros((n_hid, n_out), np.int64)
    first = hidden[0]
    w_in[:, :first.out_channels, 0] = first.synapse.weight.astype(np.int64).T >> shifts["in"]
    for i, (layer, off) in enumerate(zip(hidden, offsets)):
        size = layer.out_channels
        if i:
            prev_off, prev = offsets[i - 1], hidden[i - 1].out_channels
            w_rec[prev_off:prev_off + prev, off:off + size, 0] = layer.synapse.weight.astype(np.int64).T >> shifts["rec"]
        if layer.synapse.is_recurrent:
            w_rec[off:off + size, off:off + size, 0] = layer.synapse.recurrent.astype(np.int64).T >> shifts["rec"]
    last_off = offsets[-1]
    w_out[last_off:last_off + hidden[-1].out_channels] = readout.synapse.weight.astype(np.int64).T >> shifts["out"]

    def cat(name: str, dtype) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(l.neuron, name), np.int64) for l in hidden]).astype(dtype)

    spec = {
        "weights_in": w_in.astype(np.int8), "weights_out": w_out.astype(np.int8), "weights_rec": w_rec.astype(np.int8),
        "dash_mem": cat("dash_mem", np.uint8), "dash_mem_out": np.asarray(readout.neuron.dash_mem).astype(np.uint8),
        "dash_syn": cat("dash_syn", np.uint8), "dash_syn_2": cat("dash_syn", np.uint8),
        "dash_syn_out": np.asarray(readout.neuron.dash_syn).astype(np.uint8),
        "threshold": cat("threshold", np.int16), "threshold_out": np.asarray(readout.neuron.threshold).astype(np.int16),
        "bias": cat("bias", np.int16), "bias_out": np.asarray(readout.neuron.bias).astype(np.int16),
        "weight_shift_in": np.int8(shifts["in"]), "weight_shift_rec": np.int8(shifts["rec"]),
        "weight_shift_out": np.int8(shifts["out"]), "dt": np.float64(DT),
    }
    assert tuple(spec) == SPEC_KEYS
    _check_round_trip(net, spec, shifts)
    return {k: np.asarray(v) for k, v in spec.items()}


def _check_round_trip(net: FrozenNet, spec: dict, shifts: dict) -> None:
    """The int8 matrices shifted back equal the net's weights (a guard on the factoring; never fails on a fit)."""
    hidden, readout, offsets = plan_layers(net)
    for key, members in matrix_groups(hidden, readout).items():
        for layer, f in members:
            w = getattr(layer.synapse, f).astype(np.int64)
            if np.any(((w >> shifts[key]) << shifts[key]) != w):  # pragma: no cover - factor_shift guarantees it
                raise FrozenNetError(layer.name, f, f"weights_{key}: not exactly int8 << {shifts[key]}")


def export(net: FrozenNet, out: str | Path, stem: str = "model", *, version: str | None = None) -> list[Path]:
    """Write ``out/<stem>.npz`` (or ``out`` itself when it ends in .npz) atomically: nothing is written when the
    net does not fit (:class:`FrozenNetError` naming layer, field and limit)."""
    spec = build_spec(net.validate(), version)
    out = Path(out)
    path = out if out.suffix == SUFFIX else out / f"{stem}{SUFFIX}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **spec)
    return [path]


def load_spec(path: str | Path) -> dict[str, np.ndarray]:
    """Read a spec back (``np.load(path, allow_pickle=False)``), checked (keys, dtypes, shapes); :class:`CheckpointError` in one line
    naming the file and what is wrong (truncated, not an npz, a key missing, a shape that does not agree)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            spec = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"{path}: not a readable Xylo spec (.npz): {type(exc).__name__}: {exc}") from None
    missing = [k for k in SPEC_KEYS if k not in spec]
    extra = [k for k in spec if k not in SPEC_KEYS]
    if missing or extra:
        raise CheckpointError(f"{path}: Xylo spec keys {'missing ' + ', '.join(missing) if missing else ''}"
                              f"{'; ' if missing and extra else ''}{'unknown ' + ', '.join(extra) if extra else ''}")
    w_in, w_rec, w_out = spec["weights_in"], spec["weights_rec"], spec["weights_out"]
    if w_in.ndim != 3 or w_rec.ndim != 3 or w_out.ndim != 2:
        raise CheckpointError(f"{path}: Xylo spec weights must be weights_in (N_in, H, syn), weights_rec (H, H, syn), "
                              f"weights_out (H, O); got {w_in.shape}, {w_rec.shape}, {w_out.shape}")
    h, o = w_rec.shape[0], w_out.shape[1]
    want = {"weights_in": (w_in.shape[0], h, w_in.shape[2]), "weights_rec": (h, h, w_rec.shape[2]), "weights_out": (h, o),
            "dash_mem": (h,), "dash_syn": (h,), "dash_syn_2": (h,), "threshold": (h,), "bias": (h,),
            "dash_mem_out": (o,), "dash_syn_out": (o,), "threshold_out": (o,), "bias_out": (o,),
            "weight_shift_in": (), "weight_shift_rec": (), "weight_shift_out": (), "dt": ()}
    for k, shape in want.items():
        if spec[k].shape != shape:
            raise CheckpointError(f"{path}: Xylo spec field {k} has shape {spec[k].shape}, expected {shape} "
                                  f"(H = {h} hidden, O = {o} readout neurons)")
        if k != "dt" and spec[k].dtype.kind not in "iu":
            raise CheckpointError(f"{path}: Xylo spec field {k} must be integer, got {spec[k].dtype}")
    return spec
