"""``--target lava``: the frozen net as a Lava netx HDF5 file (``.net``), read back by
``lava.lib.dl.netx.hdf5.Network`` and by :func:`read_netx`. Documented in docs/lava.md.

File layout (netx's, lava-dl 0.6.0 ``netx/hdf5.py``), one group per block under ``layer/``:

* ``layer/0``: ``type = "input"``, ``shape = (C, H, W)`` (a shape-only input: a pass-through, so the
  first synapse sees the raw integers; the runner feeds them as graded spikes of
  ``qsnn/input_message_bits`` bits, 8 for uint8 pixels).
* ``conv``: ``shape`` (C_out, H_out, W_out), ``weight`` (C_out, C_in, kH, kW) with any sum pool
  folded in, ``stride``/``padding``/``dilation`` in (H, W) order, ``groups``, ``neuron``.
* ``flatten`` before a dense layer whose input is a (C, H, W) map (netx flattens in torch's order).
* ``dense``: ``shape`` (N,), ``weight`` (N, fan-in), ``neuron``.
* ``dense_rec`` (a recurrent dense layer): as ``dense`` plus ``weight_rec`` (N, N), the recurrent weights R
  (row = receiving neuron). lava-dl 0.6.0's netx reads it as its ``RecurrentDense`` block (one exponent
  for ``weight`` and ``weight_rec`` together: :mod:`.netx_weights`), whose recurrent ``Dense`` from the
  neuron's ``s_out`` back to its ``a_in`` delivers R·z one step later, the reference's ``R·z_{t-1}``.
* ``neuron``: ``type = "CUBA"``, ``iDecay = 4096`` (the current is fully decayed each step: a
  single-state LIF), ``vDecay = 4096 - d``, ``vThMant = θ >> 6``, ``refDelay = 1``,
  ``gradedSpike = False``; ``bias`` (= b >> 6 per channel, netx's bias exponent is 6) only when
  nonzero. A ``stock`` layer's bias is a multiple of 64 (the route rule), so ``bias << 6`` is b.
* Root ``qsnn`` metadata on how to run the file: ``reset_interval`` (R = T + L (+ P) at the file's
  T), ``reset_offset`` (1), ``needs_periodic_reset`` (True when a stock layer has a bias) and
  ``run_note`` (text). netx's ``hdf5.Network(..., reset_interval=R, reset_offset=1)`` makes layer l
  zero u and v at step l + 2 of each R-step period, before integrating: with a bias on a stock
  layer that reset is required for exactness, since Lava's LIF integrates the bias from step 1,
  before the layer's first input arrives (docs/lava.md, "Bias on the stock route").

A ``custom`` layer's ``neuron/type`` is ``"QSNN_QLIF"`` (``"QSNN_QCUBA"`` for a current-based one) and its
netx ``bias`` is a text naming the route
and what to do: stock netx's integer read of it fails with that text, so such a file never runs
silently on stock neurons (:mod:`.recipe`); ``qsnn/pipeline_steps`` (R - T) gives the reset interval
for any T. :func:`read_layer_specs` checks every field netx would run (:func:`.recipe_script.read_settings`).
``export`` also writes the stand-alone Lava recipe ``run_<stem>.py`` beside the file.

Extension (ignored by netx, read by the runner and :func:`read_netx`): a ``qsnn`` group per layer
with the exact integer semantics, ``route`` (``stock``: Lava's LIF computes this layer exactly;
``custom``: only qsnn-deploy's QLIF / QCUBA ProcessModels do: subtract reset, per-channel θ / b / d, F or
B_v other than Lava's), ``kind`` (``lif`` or ``cuba``), ``threshold``/``bias``/``decay`` per channel
(state units, int64), ``reset``, ``frac_bits``, ``state_bits``; for a ``cuba`` layer also
``current_decay``, ``current_bits`` and, when nonzero, ``current_bias``; and a root ``qsnn`` group with the input description,
T, the layer names and the original frozen manifest (JSON) so that the round trip is lossless.
For a ``custom`` layer the netx ``neuron`` fields vThMant / vDecay are Lava's closest stock reading
(first channel's θ), for reference only: stock netx refuses the layer (its type and text bias), and
``--strict`` refuses such nets at export.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError, FrozenNetError, UnsupportedLayerError, UnsupportedNeuronError
from ..fileio import atomic_path, check_hdf5_sizes
from ..frozen import FrozenNet, InputSpec, Layer, LIFLayer
from ..neurons import CubaLIF
from ..simulators.base import NeuronKernels
from .check import (LAVA_SHIFT, NETX_RESET_OFFSET, NetFit, biased_stock_layers, check_net, deploy_stride_padding,
                    deploy_weight, period_steps, recurrent_weight_error)
from .recipe_script import CUSTOM_NEURON_TYPES, RecipeError, read_settings

SUFFIX = ".net"
FORMAT_NAME = "qsnn-netx"
VERSION = 1
MAX_WEIGHT_BITS = 16  # the frozen format's widest weight (FrozenNet.validate)


#: Neuron kinds the netx export writes (and the ``lava`` backend runs): each on Lava's stock LIF where it maps
#: exactly (the stock route), else on qsnn-deploy's custom process in Lava's CPU simulator. Recurrent dense
#: layers run as netx's ``dense_rec`` block; what remains refused, by name, is a recurrent layer whose weights
#: netx's one-exponent encoding cannot hold exactly (:func:`write_netx`, :func:`~.check.recurrent_weight_error`).
#: (A conv recurrent synapse does not exist in the frozen format: ``Synapse.recurrent`` is dense only.)
LAVA_KERNELS = NeuronKernels("lava", {"lif": "LIF (stock) / QLIF (custom)", "cuba": "LIF (stock) / QCUBA (custom)"},
                             recurrent=True,
                             reasons={"xylo": "Loihi 2's neurons have no Xylo neuron: int16 saturating bit-shift decay with "
                                              "a minimum leak of 1, up to 31 spikes per step, synaptic terms added in order "
                                              "with saturation; export it with --target xylo"})


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("the lava target needs h5py (pip install -c requirements/constraints.txt h5py)") from exc
    return h5py


def input_message_bits(net: FrozenNet) -> int:
    """Graded-spike width for the network input: 0 (binary spikes) when inputs are 0/1."""
    if net.input.max_abs <= 1 and not net.input.signed:
        return 0
    return max(int(net.input.max_abs).bit_length(), 1) + (1 if net.input.signed else 0)


def _str(group, key: str, value: str) -> None:
    group.create_dataset(key, data=np.bytes_(value))


def _neuron(group, layer: Layer, route: str = "stock") -> None:
    n = group.create_group("neuron")
    _str(n, "type", CUSTOM_NEURON_TYPES[layer.kind] if route == "custom" else "CUBA")  # stock netx refuses the custom types
    # netx: du = iDecay - 1 and Lava decays u by 4096 - (du + 1) = 4096 - iDecay: a one-state LIF has
    # iDecay = 4096 (u = a << 6 every step); a CUBA layer's current decay a gives iDecay = 4096 - a
    current_decay = int(layer.neuron.current_decay[0]) if layer.kind == "cuba" else 0
    n.create_dataset("iDecay", data=np.int64(4096 - current_decay))
    n.create_dataset("vDecay", data=np.int64(4096 - int(layer.neuron.decay[0])))
    n.create_dataset("vThMant", data=np.int64(int(layer.neuron.threshold[0]) >> LAVA_SHIFT))
    n.create_dataset("refDelay", data=np.int64(1))
    n.create_dataset("gradedSpike", data=np.bool_(False))


def _extension(group, layer: Layer, route: str) -> None:
    q = group.create_group("qsnn")
    _str(q, "name", layer.name)
    _str(q, "route", route)
    _str(q, "reset", layer.neuron.reset)
    _str(q, "kind", layer.kind)
    for key in ("threshold", "bias", "decay") + (("current_decay",) if layer.kind == "cuba" else ()):
        q.create_dataset(key, data=np.asarray(getattr(layer.neuron, key), dtype=np.int64))
    q.create_dataset("frac_bits", data=np.int64(layer.neuron.frac_bits))
    q.create_dataset("state_bits", data=np.int64(layer.neuron.state_bits))
    if layer.kind == "cuba":
        q.create_dataset("current_bits", data=np.int64(layer.neuron.current_bits))
        if layer.neuron.current_bias is not None and np.any(layer.neuron.current_bias != 0):
            q.create_dataset("current_bias", data=np.asarray(layer.neuron.current_bias, dtype=np.int64))
    if layer.neuron.sigma is not None:
        q.create_dataset("sigma", data=np.asarray(layer.neuron.sigma, dtype=np.float64))


def run_note(net: FrozenNet, routes: list[str]) -> str:
    """The file's ``qsnn/run_note``: how to load it in netx so that it runs exactly."""
    biased = biased_stock_layers(net, routes)
    R = period_steps(net.num_steps, routes)
    L = len(routes)
    note = (f"Load with lava.lib.dl.netx.hdf5.Network(net_config=..., input_message_bits={input_message_bits(net)}, "
            f"reset_interval=R, reset_offset={NETX_RESET_OFFSET}) and give each sample its own R steps "
            f"(R = T + {L}{' + ' + str(R - net.num_steps - L) if R - net.num_steps - L else ''} for any T, qsnn/pipeline_steps; "
            f"R = {R} at T = {net.num_steps}): its T input columns, then zeros; layer l (0-based) then sets u = v = 0 "
            f"at step l + 2 of each period, just before it integrates the sample's first input.")
    if biased:
        note += (f" REQUIRED for exactness: the stock layers {', '.join(biased)} have a bias, which Lava's LIF "
                 "integrates from step 1; only that reset wipes what it integrated before the layer's first input "
                 "(a netx load without reset_interval runs those layers differently from the reference).")
    if any(r == "custom" for r in routes):
        note += (" Layers whose qsnn/route is 'custom' (neuron type QSNN_QLIF / QSNN_QCUBA) need qsnn-deploy's QLIF / "
                 "QCUBA ProcessModels (qsnn_deploy.lava.backend and the run_*.py recipe do the substitution); stock netx "
                 "refuses them.")
    rec_stock = [(i, l.name) for i, (l, r) in enumerate(zip(net.layers, routes)) if r == "stock" and l.synapse.is_recurrent]
    if rec_stock:
        note += (" REQUIRED for exactness of the recurrent stock layers " + ", ".join(f"{n} (l = {i})" for i, n in rec_stock)
                 + ": pause after step l + 1 of each period and clear the block's recurrent synapse output in flight "
                 "(network.layers[l].synapse_rec.a_buff.set(0)); otherwise a spike of the step before the layer's reset "
                 "(the previous sample's last step, or the warm-up) reaches the sample's first step.")
    note += (" The run_<stem>.py script qsnn-export writes beside this file does all of this with netx and Lava's "
             "RingBuffers (--check compares every layer with the reference).")
    return note


def write_netx(net: FrozenNet, path: str | Path, fit: NetFit | None = None) -> Path:
    """Write ``net`` as a netx HDF5 file at ``path`` (atomic). Returns the path."""
    LAVA_KERNELS.check(net)
    h5py = _h5py()
    fit = fit or check_net(net)
    in_max = int(net.input.max_abs)
    for i, layer in enumerate(net.layers):  # netx's dense_rec encodes W and R under one exponent: exactly, or refused
        why = recurrent_weight_error(layer, in_max if i == 0 else 1)
        if why:
            raise UnsupportedNeuronError(layer.name, f"recurrent {layer.kind}", "lava",
                                         f"netx's dense_rec block cannot carry its weights exactly ({why}); "
                                         "Lava would run other integers than the reference")
    path = Path(path)
    manifest, _ = net.to_manifest()
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            root = f.create_group("qsnn")
            _str(root, "format", FORMAT_NAME)
            root.create_dataset("version", data=np.int64(VERSION))
            root.create_dataset("input_message_bits", data=np.int64(input_message_bits(net)))
            root.create_dataset("num_steps", data=np.int64(net.num_steps))
            _str(root, "manifest", json.dumps(manifest))
            routes = [lf.route for lf in fit.layers]
            biased = biased_stock_layers(net, routes)
            root.create_dataset("needs_periodic_reset", data=np.bool_(bool(biased)))
            root.create_dataset("reset_interval", data=np.int64(period_steps(net.num_steps, routes)))
            # R - T: the reset interval for any other T is T + pipeline_steps
            root.create_dataset("pipeline_steps", data=np.int64(period_steps(0, routes)))
            root.create_dataset("reset_offset", data=np.int64(NETX_RESET_OFFSET))
            _str(root, "run_note", run_note(net, routes))
            layers = f.create_group("layer")
            k = 0

            def block(kind: str):
                nonlocal k
                g = layers.create_group(str(k))
                _str(g, "type", kind)
                k += 1
                return g

            block("input").create_dataset("shape", data=np.asarray(net.input.shape, dtype=np.int64))
            for layer, (in_shape, out_shape), lf in zip(net.layers, net.layer_shapes(), fit.layers):
                if layer.synapse.kind == "conv":
                    stride, padding = deploy_stride_padding(layer)
                    g = block("conv")
                    g.create_dataset("shape", data=np.asarray(out_shape, dtype=np.int64))
                    g.create_dataset("weight", data=deploy_weight(layer).astype(np.int64))
                    g.create_dataset("stride", data=np.asarray(stride, dtype=np.int64))
                    g.create_dataset("padding", data=np.asarray(padding, dtype=np.int64))
                    g.create_dataset("dilation", data=np.asarray((1, 1), dtype=np.int64))
                    g.create_dataset("groups", data=np.int64(1))
                elif layer.synapse.kind == "dense":
                    if len(in_shape) == 3:
                        if not layer.synapse.flatten_input:
                            raise UnsupportedLayerError(f"layer {layer.name}: dense on a {in_shape} map without flatten_input")
                        block("flatten")
                    g = block("dense_rec" if layer.synapse.is_recurrent else "dense")
                    g.create_dataset("shape", data=np.asarray(out_shape, dtype=np.int64))
                    g.create_dataset("weight", data=layer.synapse.weight.astype(np.int64).reshape(layer.synapse.weight.shape[0], -1))
                    if layer.synapse.is_recurrent:  # netx's RecurrentDense: R (receiving neuron, sending neuron)
                        g.create_dataset("weight_rec", data=np.asarray(layer.synapse.recurrent, dtype=np.int64))
                else:  # pragma: no cover - validate() refuses other synapses
                    raise UnsupportedLayerError(f"layer {layer.name}: synapse {layer.synapse.kind!r} has no netx block")
                _neuron(g, layer, lf.route)
                if lf.route == "custom":  # text: stock netx's int conversion fails with it (lava/recipe.py)
                    from .recipe import custom_bias_message

                    _str(g, "bias", custom_bias_message(layer.name, lf.stock_reasons, layer.kind))
                elif np.any(layer.neuron.bias != 0):
                    g.create_dataset("bias", data=(layer.neuron.bias >> LAVA_SHIFT).astype(np.int64))
                _extension(g, layer, lf.route)
    return path


def _read_str(ds) -> str:
    v = ds[()]
    return v.decode("ascii") if isinstance(v, bytes) else str(v)


def read_layer_specs(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``qsnn`` extension of a file written by :func:`write_netx`: (root info, one dict per
    layer in order with name, route, reset, kind, threshold, bias, decay, frac_bits, state_bits, the
    cuba fields (current_decay, current_bias, current_bits; None for lif), weight, recurrent
    (``weight_rec`` of a ``dense_rec`` block, else None), ``type`` (conv or dense)).

    Raises:
        CheckpointError: not a file, not HDF5, not written by qsnn-deploy, incomplete, or a dataset
            whose shape claims more bytes than the file can hold (refused before reading it).
    """
    h5py = _h5py()
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory; expected a netx HDF5 file (.net)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            check_hdf5_sizes(f, path)
            if "qsnn" not in f or _read_str(f["qsnn/format"]) != FORMAT_NAME:
                raise CheckpointError(f"{path}: not a qsnn-deploy netx file (no 'qsnn' group); export it with "
                                      "qsnn-export --target lava")
            try:  # every layer group there, what netx would run = the qsnn groups, Lava's widths (recipe_script.py)
                run = read_settings(path)
            except RecipeError as exc:
                raise CheckpointError(str(exc)) from None
            root = {"input_message_bits": int(f["qsnn/input_message_bits"][()]),
                    "num_steps": int(f["qsnn/num_steps"][()]),
                    "manifest": json.loads(_read_str(f["qsnn/manifest"])),
                    "version": int(f["qsnn/version"][()]),
                    # written since stock layers may carry a bias (absent in older files: no stock bias then)
                    "needs_periodic_reset": bool(f["qsnn/needs_periodic_reset"][()]) if "needs_periodic_reset" in f["qsnn"] else False,
                    "run_note": _read_str(f["qsnn/run_note"]) if "run_note" in f["qsnn"] else "", "run": run}
            specs = []
            for i in range(len(f["layer"])):
                g = f["layer"][str(i)]
                if "qsnn" not in g:
                    continue
                q = g["qsnn"]
                specs.append({"name": _read_str(q["name"]), "route": _read_str(q["route"]), "reset": _read_str(q["reset"]),
                              "threshold": q["threshold"][()], "bias": q["bias"][()], "decay": q["decay"][()],
                              "frac_bits": int(q["frac_bits"][()]), "state_bits": int(q["state_bits"][()]),
                              "sigma": q["sigma"][()] if "sigma" in q else None,
                              "type": {"dense_rec": "dense"}.get(_read_str(g["type"]), _read_str(g["type"])),
                              "recurrent": g["weight_rec"][()] if _read_str(g["type"]) == "dense_rec" else None,
                              "kind": _read_str(q["kind"]) if "kind" in q else "lif",
                              "current_decay": q["current_decay"][()] if "current_decay" in q else None,
                              "current_bias": q["current_bias"][()] if "current_bias" in q else None,
                              "current_bits": int(q["current_bits"][()]) if "current_bits" in q else None,
                              "weight": g["weight"][()], "shape": tuple(int(s) for s in g["shape"][()]),
                              "stride": tuple(int(s) for s in g["stride"][()]) if "stride" in g else (1, 1),
                              "padding": tuple(int(s) for s in g["padding"][()]) if "padding" in g else (0, 0),
                              "after_flatten": _read_str(f["layer"][str(i - 1)]["type"]) == "flatten"})
    except CheckpointError:
        raise
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read as HDF5 (empty, truncated or not an HDF5 file: {exc})") from None
    except KeyError as exc:
        raise CheckpointError(f"{path}: incomplete qsnn netx file (missing {exc})") from None
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError, OverflowError) as exc:
        raise CheckpointError(f"{path}: malformed qsnn netx file ({type(exc).__name__}: {exc})") from None
    if root["version"] > VERSION:
        raise CheckpointError(f"{path}: qsnn netx version {root['version']} is newer than this qsnn-deploy reads ({VERSION})")
    return root, specs


def _int_array(layer: str, field: str, value: Any) -> np.ndarray:
    """An integer dataset of the file as int64; a float one (NaN, inf, fractions) is refused."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise FrozenNetError(layer, field, f"must be an integer dataset, found {arr.dtype}"
                             + (" holding NaN or infinite values" if arr.dtype.kind == "f" and not np.isfinite(arr).all() else ""))
    return arr.astype(np.int64)


def read_netx(path: str | Path) -> FrozenNet:
    """The frozen net the file runs: built from the netx blocks (weights as Lava sees them, sum pools
    folded) and the ``qsnn`` extension (exact thresholds, biases, decays, reset). Its spikes equal
    the original net's, every step (the round trip the tests pin)."""
    path = Path(path)
    root, specs = read_layer_specs(path)
    man = root["manifest"]
    try:
        inp = InputSpec(**{k: (tuple(v) if k == "shape" else v) for k, v in man["input"].items()})
        layers = []
        for s in specs:
            name = s["name"]
            weight = _int_array(name, "weight", s["weight"])
            w_max = int(np.abs(weight).max(initial=0))
            if w_max.bit_length() + 1 > MAX_WEIGHT_BITS:
                raise FrozenNetError(name, "weight", f"|weight| up to {w_max} needs {w_max.bit_length() + 1} bits, "
                                     f"over the {MAX_WEIGHT_BITS}-bit limit")
            kw = dict(name=name, synapse=s["type"], weight=weight, weight_bits=max(w_max.bit_length() + 1, 2),
                      threshold=_int_array(name, "threshold", s["threshold"]),
                      bias=_int_array(name, "bias", s["bias"]), decay=_int_array(name, "decay", s["decay"]),
                      reset=s["reset"], frac_bits=s["frac_bits"], state_bits=s["state_bits"], sigma=s["sigma"])
            if s["type"] == "conv":
                kw.update(stride=s["stride"], padding=s["padding"])
            else:
                kw.update(flatten_input=s["after_flatten"])
            if s.get("recurrent") is not None:
                rec = _int_array(name, "weight_rec", s["recurrent"])
                kw.update(recurrent=rec, recurrent_bits=max(int(np.abs(rec).max(initial=0)).bit_length() + 1, 2))
            layer = LIFLayer(**kw)
            if s.get("kind", "lif") == "cuba":  # the current's fields are in the extension (older files: 24 bits, no bias)
                lif = layer.neuron
                cb = None if s.get("current_bias") is None else _int_array(name, "current_bias", s["current_bias"])
                layer = dataclasses.replace(layer, neuron=CubaLIF(
                    lif.threshold, lif.bias, _int_array(name, "current_decay", s["current_decay"]), lif.decay, cb,
                    lif.reset, lif.frac_bits, lif.state_bits, s.get("current_bits") or lif.state_bits, lif.sigma))
            elif s.get("kind", "lif") != "lif":
                raise FrozenNetError(name, "qsnn/kind", f"unknown neuron kind {s.get('kind')!r} (lif, cuba)")
            layers.append(layer)
        net = FrozenNet(inp, layers, num_steps=root["num_steps"], metadata=dict(man.get("metadata", {})))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, FrozenNetError):
            raise
        raise CheckpointError(f"{path}: malformed qsnn netx file ({type(exc).__name__}: {exc})") from None
    return net.validate()


def export(net: FrozenNet, out: str | Path, stem: str = "model") -> list[Path]:
    """Write ``out/<stem>.net`` (or ``out`` itself when it ends in .net) and, beside it, the stand-alone
    Lava recipe ``run_<stem>.py`` (:mod:`.recipe`)."""
    from .recipe import write_recipe

    out = Path(out)
    path = out if out.suffix == SUFFIX else out / f"{stem}{SUFFIX}"
    net_path = write_netx(net.validate(), path)
    return [net_path, write_recipe(net_path)]
