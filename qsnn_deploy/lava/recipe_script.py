#!/usr/bin/env python3
"""Run NET_FILE in Intel Lava with lava-dl's own netx and Lava's own I/O, no qsnn-deploy code in the
loop; with ``--check``, compare every layer's spikes with qsnn-deploy's NumPy reference.

Written beside the ``.net`` by ``qsnn-export --target lava`` (this file is also the template it is
made from: ``qsnn_deploy/lava/recipe_script.py``; docs/lava.md, "Running the .net on Loihi 2").

    python THIS_SCRIPT --data ../shared/data/mnist -n 5 [--steps T] [--out spikes.npz] [--check]
    python THIS_SCRIPT --data digits.npy -n 5              # a .npy of uint8 inputs [N, C, H, W] or [N, H, W]

What it does (every setting comes from the ``.net`` file, read and checked by :func:`read_settings`):

* loads the file with ``lava.lib.dl.netx.hdf5.Network(net_config=..., input_message_bits=B,
  reset_interval=R, reset_offset=1)``: B = the file's ``qsnn/input_message_bits`` (8: each input
  value is an 8-bit graded spike; 0: 0/1 spikes), R = T + ``qsnn/pipeline_steps`` (T + L, plus a
  pad in mixed nets) for the T it runs, so that layer l sets u = v = 0 at step l + 2 of each
  R-step period, just before the sample's first input reaches it (a stock layer's bias would
  otherwise integrate during the pipeline warm-up);
* feeds each sample from Lava's ``RingBuffer`` source as R columns: T copies of the image in
  Lava's (x, y, c) order (the file's ``layer/0/shape`` is (C, H, W)), then R - T zero columns;
* records every layer with a Lava ``RingBuffer`` sink and runs n·R steps with
  ``Loihi2SimCfg(select_tag="fixed_pt")`` (Lava's bit-accurate CPU models);
* a recurrent layer is netx's own ``dense_rec`` block (``RecurrentDense``: its ``synapse_rec``, a Lava
  ``Dense`` from the neuron's ``s_out`` back to its ``a_in``, delivers R·z one step later, the
  reference's ``R·z_{t-1}``); for a stock-route one the run pauses after step l + 1 of every period
  and clears that synapse's pending output (``synapse_rec.a_buff.set(0)``), so the sample starts with
  no recurrent spike in flight, as the periodic reset starts it with u = v = 0 one step later;
* aligns: layer l's spike for the sample's step t is sink column k·R + t + l + 1 (each Lava
  synapse adds one step), and writes ``{layer: uint8 [T, n, C, H, W] or [T, n, N]}`` to ``--out``;
* ``--check``: computes the NumPy reference with qsnn-deploy (the only import of qsnn-deploy
  besides the import-time patch Lava 0.10 needs on Python 3.11 / numpy 2), prints a verdict per
  layer and exits 0 only if every spike of every layer, step and sample is equal.

Layers whose ``qsnn/route`` is ``custom`` (neuron type ``QSNN_QLIF``, or ``QSNN_QCUBA`` for a
current-based layer) are not stock Loihi 2 neurons:
stock netx refuses them (its ``bias`` read fails with a message naming the route). This script runs
them with qsnn-deploy's ``QLIF`` / ``QCUBA`` processes in Lava's CPU simulator and says so, or exits 2 naming the
custom route when qsnn-deploy is not installed or ``--stock-only`` is given.

Exit status: 0 ran (and, with --check, every spike equal); 1 --check found a difference;
2 refused (a bad or edited file, a custom route it may not run, bad arguments or data).
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# ==== settings: filled from the .net file by qsnn-export; read_settings() checks them against it ====
NET_FILE = None   # the .net file beside this script
SETTINGS = None   # what read_settings(NET_FILE) returned when the script was written
# ==== end of settings ====

FORMAT_NAME = "qsnn-netx"
CUSTOM_NEURON_TYPE = "QSNN_QLIF"  # neuron/type of a custom-route layer: no netx branch takes it
CUSTOM_NEURON_TYPES = {"lif": CUSTOM_NEURON_TYPE, "cuba": "QSNN_QCUBA"}   # per neuron kind (qsnn/kind)
CUSTOM_PROCESSES = {"lif": "QLIF", "cuba": "QCUBA"}                       # qsnn_deploy.lava.models
LAVA_SHIFT = 6                    # Lava's LIF: input and threshold shifted by 6 bits; netx's bias_exp = 6
LIMITS = {                        # lava-nc 0.10.0 lava/proc/lif/models.py, lava/proc/dense (docs/lava.md, limits)
    "vThMant": (0, (1 << 17) - 1),          # unsigned 17 bits
    "bias": (-(1 << 12), (1 << 12) - 1),    # bias_mant: signed 13 bits
    "vDecay": (0, 4095),                    # dv: unsigned 12 bits
    "weight_mantissa_bits": 8,              # synapse weights: 8-bit mantissa (sign included for mixed signs)
    "weight_exp": (-8, 7),
}


class RecipeError(ValueError):
    """The file, the arguments or the data are refused; the message is one line naming what and where."""


def _str(ds) -> str:
    v = ds[()]
    return v.decode("ascii", "replace") if isinstance(v, bytes) else str(v)


def _int(group, key: str, where: str, lo: int | None = None, hi: int | None = None) -> np.ndarray:
    """An integer dataset ``group[key]`` as int64, within [lo, hi]; anything else is refused naming ``where``."""
    if key not in group:
        raise RecipeError(f"{where}, field {key}: missing")
    arr = np.asarray(group[key][()])
    if arr.dtype.kind not in "iub":
        bad = " holding NaN or infinite values" if arr.dtype.kind == "f" and not np.isfinite(arr).all() else ""
        raise RecipeError(f"{where}, field {key}: must be an integer dataset, found {arr.dtype}{bad}")
    arr = arr.astype(np.int64)
    if arr.size and lo is not None and arr.min() < lo or arr.size and hi is not None and arr.max() > hi:
        raise RecipeError(f"{where}, field {key}: {int(arr.min())}..{int(arr.max())} outside its limit {lo}..{hi}")
    return arr


def weight_mantissa_bits(w: np.ndarray) -> tuple[int, int]:
    """(mantissa bits, sign included when mixed; exponent) of the exact m·2^e encoding of integer weights."""
    nz = np.asarray(w, np.int64)
    nz = nz[nz != 0]
    if nz.size == 0:
        return 1, 0
    exp = min(int((np.abs(nz) & -np.abs(nz)).min()).bit_length() - 1, LIMITS["weight_exp"][1])
    mag = int(np.abs(nz >> exp).max())
    mixed = bool((nz < 0).any() and (nz > 0).any())
    return mag.bit_length() + (1 if mixed else 0), exp


def read_settings(path: str | os.PathLike, hardware: bool = False) -> dict:
    """Everything a netx run of the qsnn ``.net`` file at ``path`` needs, checked field by field.

    Refuses (:class:`RecipeError`, one line naming the layer and field) a file that is not a
    qsnn-deploy netx file, a missing or extra ``layer/k`` group, a stock layer whose netx neuron
    fields leave Lava's widths (vThMant 17 bits unsigned, bias mantissa 13 bits signed, vDecay 12
    bits, iDecay 4096) or disagree with the exact semantics in its ``qsnn`` group, a custom layer
    typed as a stock neuron, and a ``qsnn/reset_interval`` other than T + pipeline_steps (shorter
    than the pipeline, or the wrong T). ``hardware``: also refuse weights of a stock layer whose
    mantissa is wider than a Loihi 2 synapse's 8 bits (Lava's CPU conv would still run them).

    Returns:
        dict: ``file_steps`` (T the file was exported for), ``layers`` (names), ``routes``,
        ``custom_layers``, ``custom_processes`` (QLIF and/or QCUBA), ``recurrent_layers`` (names of the ``dense_rec`` blocks), ``clear_recurrent``
        (indices l of the stock recurrent layers, whose recurrent synapse is cleared after step l + 1 of
        every period), ``input_shape`` ((C, H, W) or (N,)), ``input_message_bits`` [bits],
        ``pipeline_steps`` (R - T [steps]), ``reset_offset``, ``output_shift`` (l + 1 per layer
        [steps]), ``needs_periodic_reset``.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read as HDF5 ({exc})") from None
    with f:
        limit = 1100 * path.stat().st_size + (1 << 16)  # deflate decodes at most ~1032:1: a bigger claim is a lie

        def claims(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.size * obj.dtype.itemsize > limit:
                raise RecipeError(f"{path}: dataset {name} claims {obj.size * obj.dtype.itemsize} bytes, more than "
                                  f"the file's {path.stat().st_size} bytes can hold; refused without reading it")
        f.visititems(claims)
        if "qsnn" not in f or "format" not in f["qsnn"] or _str(f["qsnn/format"]) != FORMAT_NAME:
            raise RecipeError(f"{path}: not a qsnn-deploy netx file (no qsnn/format); export it with qsnn-export --target lava")
        root = f["qsnn"]
        if "layer" not in f:
            raise RecipeError(f"{path}: group layer/ missing")
        keys = sorted(f["layer"].keys(), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
        if keys != [str(i) for i in range(len(keys))]:
            have = set(keys)
            gap = next((str(i) for i in range(len(keys) + 1) if str(i) not in have), None)
            raise RecipeError(f"{path}: layer group layer/{gap} missing (the file holds layer/{', layer/'.join(keys)}); "
                              "netx numbers its blocks 0..n-1")
        import json

        try:
            manifest = json.loads(_str(root["manifest"]))
            expected = [entry["name"] for entry in manifest["layers"]]
        except (KeyError, ValueError, TypeError) as exc:
            raise RecipeError(f"{path}: field qsnn/manifest unreadable ({type(exc).__name__}: {exc})") from None
        blocks = [f["layer"][k] for k in keys]
        if not blocks or "type" not in blocks[0] or _str(blocks[0]["type"]) != "input":
            raise RecipeError(f"{path}: layer/0, field type: must be 'input' (a shape-only input block)")
        in_shape = tuple(int(s) for s in _int(blocks[0], "shape", "layer/0 (input)", 1).reshape(-1))
        names, routes, custom, recurrent, processes = [], [], [], [], set()
        for k, g in zip(keys[1:], blocks[1:]):
            kind = _str(g["type"]) if "type" in g else "?"
            if kind == "flatten":
                continue
            if kind not in ("conv", "dense", "dense_rec"):
                raise RecipeError(f"{path}: layer/{k}, field type: {kind!r}; a qsnn file holds input, conv, flatten, "
                                  "dense, dense_rec")
            if "qsnn" not in g or "neuron" not in g:
                raise RecipeError(f"{path}: layer/{k} ({kind}), group {'qsnn' if 'qsnn' not in g else 'neuron'}: missing")
            q, n = g["qsnn"], g["neuron"]
            name = _str(q["name"]) if "name" in q else f"layer/{k}"
            where = f"{path}: layer {name} (layer/{k})"
            route = _str(q["route"]) if "route" in q else "?"
            ntype = _str(n["type"]) if "type" in n else "?"
            if route not in ("stock", "custom"):
                raise RecipeError(f"{where}, field qsnn/route: {route!r}, expected 'stock' or 'custom'")
            w = _int(g, "weight", where)
            if kind == "dense_rec":  # netx's recurrent block: weight_rec (C, C), one exponent with weight
                w_rec = _int(g, "weight_rec", where)
                if w_rec.shape != (w.shape[0], w.shape[0]):
                    raise RecipeError(f"{where}, field weight_rec: shape {w_rec.shape}, expected {(w.shape[0], w.shape[0])} "
                                      "(the layer's own neurons)")
                w = np.hstack((w.reshape(w.shape[0], -1), w_rec))
                recurrent.append(len(names))
            neuron_kind = _str(q["kind"]) if "kind" in q else "lif"
            if neuron_kind not in CUSTOM_NEURON_TYPES:
                raise RecipeError(f"{where}, field qsnn/kind: {neuron_kind!r}, expected one of {', '.join(CUSTOM_NEURON_TYPES)}")
            thr = _int(q, "threshold", where, 0)
            bias = _int(q, "bias", where)
            decay = _int(q, "decay", where, 0, 4096)
            frac = int(_int(q, "frac_bits", where, 0, 62))
            state = int(_int(q, "state_bits", where, 2, 62))
            lim = (1 << (state - 1)) - 1
            if thr.max(initial=0) > lim or np.abs(bias).max(initial=0) > lim:
                field = "qsnn/threshold" if thr.max(initial=0) > lim else "qsnn/bias"
                raise RecipeError(f"{where}, field {field}: past the {state}-bit state (|value| ≤ {lim})")
            if route == "custom":
                if ntype != CUSTOM_NEURON_TYPES[neuron_kind]:
                    raise RecipeError(f"{where}, field neuron/type: {ntype!r} on a custom-route layer (qsnn/route "
                                      f"'custom', kind {neuron_kind}): stock netx would run it on the wrong neuron; expected "
                                      f"{CUSTOM_NEURON_TYPES[neuron_kind]!r} (re-export with this qsnn-deploy)")
                custom.append(name)
                processes.add(CUSTOM_PROCESSES[neuron_kind])
            else:
                if ntype != "CUBA":
                    raise RecipeError(f"{where}, field neuron/type: {ntype!r}, a stock layer is 'CUBA'")
                # a one-state LIF: iDecay 4096 (u = a << 6); a cuba layer: iDecay = 4096 - its current decay
                a_cur = int(_int(q, "current_decay", where, 0, 4095).reshape(-1)[0]) if neuron_kind == "cuba" else 0
                if neuron_kind == "cuba" and "current_bias" in q and _int(q, "current_bias", where).any():
                    raise RecipeError(f"{where}, field qsnn/current_bias: nonzero on a stock layer (Lava's LIF adds its "
                                      "bias to v only)")
                _int(n, "iDecay", where, 4096 - a_cur, 4096 - a_cur)
                vth = _int(n, "vThMant", where, *LIMITS["vThMant"])
                dv = _int(n, "vDecay", where, *LIMITS["vDecay"])
                mant = _int(g, "bias", where, *LIMITS["bias"]) if "bias" in g else np.zeros(1, np.int64)
                checks = (("neuron/vThMant", "qsnn/threshold", vth << LAVA_SHIFT, thr),
                          ("neuron/vDecay", "qsnn/decay", 4096 - dv, decay),
                          ("bias", "qsnn/bias", mant << LAVA_SHIFT, bias))
                for field, exact, built, want in checks:
                    try:
                        same = np.array_equal(*np.broadcast_arrays(built.reshape(-1), want.reshape(-1)))
                    except ValueError:
                        same = False
                    if not same:
                        raise RecipeError(f"{where}, field {field}: netx would run {_span(built)}, the exact "
                                          f"semantics ({exact}) say {_span(want)} (an edited file?)")
                if frac != LAVA_SHIFT or state != 24:
                    raise RecipeError(f"{where}, field qsnn/{'frac_bits' if frac != LAVA_SHIFT else 'state_bits'}: "
                                      f"{frac if frac != LAVA_SHIFT else state} on a stock layer (Lava's LIF: F = 6, 24 bits)")
                if hardware:
                    bits, exp = weight_mantissa_bits(w)
                    if bits > LIMITS["weight_mantissa_bits"]:
                        raise RecipeError(f"{where}, field weight: a {bits}-bit mantissa, past a Loihi 2 synapse's "
                                          f"{LIMITS['weight_mantissa_bits']} bits")
            names.append(name)
            routes.append(route)
        if names != expected:
            missing = [n for n in expected if n not in names]
            raise RecipeError(f"{path}: layer {missing[0] if missing else names[0]}, group layer/: "
                              f"{'missing' if missing else 'not in qsnn/manifest'} (the manifest lists "
                              f"{', '.join(expected)}; the file's blocks hold {', '.join(names) or 'none'})")
        steps = int(_int(root, "num_steps", f"{path}: qsnn", 1))
        bits = int(_int(root, "input_message_bits", f"{path}: qsnn", 0, 24))
        offset = int(_int(root, "reset_offset", f"{path}: qsnn", 1, 1)) if "reset_offset" in root else 1
        pad = _stock_pad(routes)
        pipeline = len(names) + pad
        if "pipeline_steps" in root:
            stored = int(_int(root, "pipeline_steps", f"{path}: qsnn"))
            if stored != pipeline:
                raise RecipeError(f"{path}: field qsnn/pipeline_steps: {stored}, but the {len(names)} layers (routes "
                                  f"{', '.join(routes)}) need {pipeline}")
        if "reset_interval" in root:
            R = int(_int(root, "reset_interval", f"{path}: qsnn"))
            if R < pipeline + 1:
                raise RecipeError(f"{path}: field qsnn/reset_interval: {R} steps, shorter than the pipeline (the "
                                  f"{len(names)} layers need T + {pipeline} = {steps + pipeline} steps per sample at "
                                  f"T = {steps})")
            if R != steps + pipeline:
                raise RecipeError(f"{path}: field qsnn/reset_interval: {R} steps, but T + {pipeline} = "
                                  f"{steps + pipeline} at the file's T = {steps} (qsnn/num_steps)")
        return {"file_steps": steps, "layers": names, "routes": routes, "custom_layers": custom,
                "custom_processes": sorted(processes),
                "recurrent_layers": [names[i] for i in recurrent],
                # stock recurrent layers (index l): their recurrent synapse's pending output is cleared after
                # step l + 1 of every period (run_lava), as the periodic reset clears u and v one step later
                "clear_recurrent": [i for i in recurrent if routes[i] == "stock"],
                "input_shape": list(in_shape), "input_message_bits": bits, "pipeline_steps": pipeline,
                "reset_offset": offset, "output_shift": [i + 1 for i in range(len(names))],
                "needs_periodic_reset": bool(root["needs_periodic_reset"][()]) if "needs_periodic_reset" in root else False}


def _span(a: np.ndarray) -> str:
    a = np.asarray(a).reshape(-1)
    return "nothing" if a.size == 0 else str(int(a[0])) if (a == a[0]).all() else f"{int(a.min())}..{int(a.max())}"


def _stock_pad(routes: list[str]) -> int:
    """Extra zero steps per period in a mixed net: the longest run of stock layers right after a custom one."""
    pad = run = 0
    seen = False
    for route in routes:
        if route == "custom":
            seen, run = True, 0
        elif seen:
            run += 1
            pad = max(pad, run)
    return pad


# ---------------------------------------------------------------------------------------------- data
def load_inputs(data: str, n: int, shape: list[int], message_bits: int = 8) -> np.ndarray:
    """The first ``n`` inputs as int64 [n, *shape]: an MNIST-style idx folder (its t10k images, .gz or
    not) or a .npy of uint8 [N, *shape] (or [N, H, W] for a one-channel input). Values must fit the
    input's graded spikes: 0/1 for ``message_bits`` 0, |x| < 2^message_bits otherwise."""
    p = Path(data)
    if p.is_dir():
        for name in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"):
            if (p / name).is_file():
                opener = gzip.open if name.endswith(".gz") else open
                with opener(p / name, "rb") as fh:
                    raw = fh.read()
                if len(raw) < 16 or int.from_bytes(raw[:4], "big") != 0x803:
                    raise RecipeError(f"{p / name}: not an idx3 uint8 image file")
                count, h, w = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
                if len(raw) < 16 + count * h * w:
                    raise RecipeError(f"{p / name}: truncated ({len(raw)} bytes for {count} images of {h}×{w})")
                x = np.frombuffer(raw, np.uint8, count * h * w, 16).reshape(count, h, w)
                break
        else:
            raise RecipeError(f"{p}: no t10k-images-idx3-ubyte(.gz) in this folder")
    elif p.suffix == ".npy" and p.is_file():
        x = np.load(p, allow_pickle=False)
    else:
        raise RecipeError(f"--data {data}: expected an idx folder or a .npy file")
    if x.ndim == len(shape) and len(shape) == 3 and shape[0] == 1:
        x = x[:, None]
    if tuple(x.shape[1:]) != tuple(shape):
        raise RecipeError(f"--data {data}: inputs of shape {tuple(x.shape[1:])}, the file's input is {tuple(shape)}")
    if x.dtype.kind not in "iub":
        raise RecipeError(f"--data {data}: {x.dtype} inputs; expected integers (uint8 pixels)")
    if n < 1 or n > len(x):
        raise RecipeError(f"-n {n}: the data holds {len(x)} inputs")
    x = x[:n].astype(np.int64)
    lo, hi = (0, 1) if message_bits == 0 else (-(1 << message_bits) + 1, (1 << message_bits) - 1)
    if x.size and (x.min() < lo or x.max() > hi):
        raise RecipeError(f"--data {data}: values {int(x.min())}..{int(x.max())} outside the input's "
                          f"{message_bits}-bit graded spikes ({lo}..{hi})")
    return x


def import_lava() -> tuple[object, type, type, type, type]:
    """Lava's netx, I/O processes and run settings. Lava 0.10 does not import on Python 3.11 or with
    numpy 2 without three small in-memory patches; qsnn-deploy applies them on import (no file edited)."""
    if sys.version_info >= (3, 11) or int(np.__version__.split(".")[0]) >= 2:
        try:
            import qsnn_deploy.lava  # noqa: F401 - Lava 0.10's import-time patches (docs/lava.md, set-up)
        except ImportError:
            raise RecipeError("Lava 0.10 needs import-time patches on Python 3.11 / numpy 2: pip install "
                              "qsnn-deploy (or run Lava on Python 3.10 with numpy < 2)") from None
    from lava.lib.dl.netx import hdf5
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    return hdf5, Source, Sink, RunSteps, Loihi2SimCfg


# ---------------------------------------------------------------------------------------------- the recipe
def run_lava(path: Path, s: dict, x: np.ndarray, steps: int, qlif: object | None = None) -> dict[str, np.ndarray]:
    """Run ``x`` [n, *input shape] through the netx network of ``path`` for ``steps`` steps each; return
    each layer's spikes aligned to the reference, uint8 [T, n, C, H, W] or [T, n, N]. ``qlif``: a
    context manager factory that lets netx build the custom-route layers as qsnn-deploy's QLIF / QCUBA."""
    hdf5, Source, Sink, RunSteps, Loihi2SimCfg = import_lava()
    n, R = len(x), steps + s["pipeline_steps"]            # one sample per reset period of R steps
    data = np.zeros(tuple(s["input_shape"][::-1]) + (n * R,), np.int32)   # Lava's (x, y, c) order, time last
    for k in range(n):
        data[..., k * R:k * R + steps] = x[k].T[..., None]  # T columns of the image, then zeros
    build = dict(net_config=str(path), input_message_bits=s["input_message_bits"],
                 reset_interval=R, reset_offset=s["reset_offset"])
    if qlif is None:
        net = hdf5.Network(**build)
    else:
        with qlif(hdf5, path, R, steps):
            net = hdf5.Network(**build)
    source = Source(data=data)
    source.s_out.connect(net.inp)
    sinks = [Sink(shape=block.out.shape, buffer=n * R) for block in net.layers]
    for block, sink in zip(net.layers, sinks):
        block.out.connect(sink.a_in)
    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    # stock recurrent layer l: pause after step l + 1 of each period, clear its recurrent synapse's output in flight
    clear = sorted(s.get("clear_recurrent", []))
    stops = sorted({k * R + l + 1 for k in range(n) for l in clear} | {n * R})
    try:
        done = 0
        for stop in stops:
            net.run(condition=RunSteps(num_steps=stop - done), run_cfg=cfg)
            done = stop
            for l in clear:
                if stop % R == l + 1:
                    syn = net.layers[l].synapse_rec
                    syn.a_buff.set(np.zeros(syn.a_buff.shape, np.int32))
        raw = [np.asarray(sink.data.get()) for sink in sinks]    # [(x, y, c) or (n,), n·R]
    finally:
        net.stop()
    out = {}
    for name, shift, r in zip(s["layers"], s["output_shift"], raw):
        cols = np.array([[k * R + t + shift for k in range(n)] for t in range(steps)])   # [T, n]
        a = r[..., cols]                                    # [*lava shape, T, n]
        a = np.moveaxis(a, (-2, -1), (0, 1))                # [T, n, *lava shape]
        out[name] = (a.transpose(0, 1, 4, 3, 2) if a.ndim == 5 else a).astype(np.uint8)  # (x, y, c) -> (C, H, W)
    return out


def save_npz(path: Path, spikes: dict[str, np.ndarray], **meta: object) -> None:
    """Write the spikes atomically (a temporary file in the same folder, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part.npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **spikes, **{f"meta_{k}": np.asarray(v) for k, v in meta.items()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compare(lava: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> list[tuple[str, bool, str]]:
    """Per layer: (name, equal, one-line detail)."""
    rows = []
    for name, a in lava.items():
        b = np.asarray(ref[name]).astype(np.uint8)
        if a.shape != b.shape:
            rows.append((name, False, f"shape {a.shape} vs the reference's {b.shape}"))
            continue
        diff = np.argwhere(a != b)
        if len(diff) == 0:
            rows.append((name, True, f"{int(a.sum())} spikes, every step and neuron equal"))
        else:
            t, k, *idx = (int(v) for v in diff[0])
            rows.append((name, False, f"{len(diff)} of {a.size} entries differ; first at sample {k}, step {t}, "
                                      f"neuron {tuple(idx)}: Lava {int(a[tuple(diff[0])])}, reference {int(b[tuple(diff[0])])}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    """The script's command line (module docstring). Returns the exit status: 0 ran (and, with
    --check, bit-exact), 1 --check found a difference, 2 refused (one line on stderr)."""
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", default=str(here / NET_FILE) if NET_FILE else None, help=f"the .net file (default: {NET_FILE})")
    p.add_argument("--data", required=True, help="an MNIST-style idx folder (its t10k images) or a .npy of uint8 inputs")
    p.add_argument("-n", type=int, default=5, help="number of inputs (default 5)")
    p.add_argument("--steps", type=int, default=None, help="T, steps per input (default: the file's T)")
    p.add_argument("--out", default=None, help="spikes .npz (default: <net stem>.lava_spikes.npz beside the .net)")
    p.add_argument("--check", action="store_true", help="compare every layer with qsnn-deploy's NumPy reference")
    p.add_argument("--stock-only", action="store_true",
                   help="refuse (exit 2) a file with custom-route layers instead of running them with QLIF / QCUBA")
    args = p.parse_args(argv)
    try:
        if not args.net:
            raise RecipeError("--net: no .net file given")
        path = Path(args.net)
        s = read_settings(path, hardware=True)
        if SETTINGS is not None and path.resolve() == (here / NET_FILE).resolve():
            for key, value in SETTINGS.items():
                if s.get(key) != value:
                    raise RecipeError(f"{path}: field {key}: the file says {s.get(key)!r}, this script was written for "
                                      f"{value!r} (the file changed since qsnn-export; export again)")
        steps = s["file_steps"] if args.steps is None else args.steps
        if steps < 1:
            raise RecipeError(f"--steps {steps}: T must be at least 1")
        R = steps + s["pipeline_steps"]
        other_t = "" if steps == s["file_steps"] else f" (the file was exported at T = {s['file_steps']})"
        print(f"{path.name}: {len(s['layers'])} layers ({', '.join(s['layers'])}); input {tuple(s['input_shape'])} as "
              f"{s['input_message_bits']}-bit graded spikes in (x, y, c) order; T = {steps}{other_t}; "
              f"reset_interval = T + {s['pipeline_steps']} = {R}, reset_offset = {s['reset_offset']}; layer l's spikes "
              "shifted back by l + 1 steps")
        qlif = None
        if s["custom_layers"]:
            procs = s.get("custom_processes") or ["QLIF"]
            types = [CUSTOM_NEURON_TYPES[k] for k, v in CUSTOM_PROCESSES.items() if v in procs]
            route = (f"custom route: layers {', '.join(s['custom_layers'])} need qsnn-deploy's {' / '.join(procs)} "
                     f"process{'es' if len(procs) > 1 else ''} (qsnn/route 'custom', neuron type {' / '.join(types)}), "
                     "not a stock Loihi 2 neuron")
            if args.stock_only:
                raise RecipeError(route + "; refused (--stock-only)")
            try:
                from qsnn_deploy.lava.recipe import qlif_netx_build as qlif
            except ImportError:
                raise RecipeError(route + "; stock netx cannot run them and qsnn-deploy is not installed") from None
            print(route + f": running them with qsnn_deploy.lava.models.{' / '.join(procs)} in Lava's CPU simulator "
                  "(verified there only; no Loihi 2 microcode)")
        x = load_inputs(args.data, args.n, s["input_shape"], s["input_message_bits"])
        t0 = time.perf_counter()
        spikes = run_lava(path, s, x, steps, qlif)
        seconds = time.perf_counter() - t0
        out = Path(args.out) if args.out else path.with_name(path.stem + ".lava_spikes.npz")
        save_npz(out, spikes, steps=steps, reset_interval=R, layers=np.array(s["layers"]))
        print(f"Lava: {args.n} inputs × {R} steps in {seconds:.1f} s; spikes of every layer, aligned, in {out}")
        if not args.check:
            return 0
        try:
            from qsnn_deploy.lava.export import read_netx
            from qsnn_deploy.simulators.numpy_sim import NumpySimulator
        except ImportError:
            raise RecipeError("--check needs qsnn-deploy (pip install qsnn-deploy) for the NumPy reference") from None
        ref = NumpySimulator(read_netx(path)).run(x, steps).spikes
        rows = compare(spikes, ref)
        for name, ok, detail in rows:
            print(f"  {name}: {'bit-exact' if ok else 'DIFFERS'} ({detail})")
        if all(ok for _, ok, _ in rows):
            print(f"verdict: bit-exact: Lava (netx{', ' + ' / '.join(procs) + ' for the custom route' if qlif else ''}) equals qsnn-deploy's "
                  f"NumPy reference in every layer, step and neuron ({args.n} inputs, T = {steps})")
            return 0
        print(f"verdict: NOT bit-exact in {', '.join(n for n, ok, _ in rows if not ok)}")
        return 1
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
