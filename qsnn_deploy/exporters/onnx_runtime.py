"""The ``"onnx"`` backend: an exported one-step ONNX model (:mod:`.onnx_export`) run for T steps with
onnxruntime, feeding each step's states (int64, state units) back as the next step's ``<layer>.<state>_prev``.

:class:`OnnxStepRunner` works from the ``.onnx`` file alone (layer names, shapes and states come from its
metadata); :class:`OnnxRuntimeBackend` builds the model from a :class:`~qsnn_deploy.frozen.FrozenNet` in
memory and runs it the same way, so ``qsnn-verify --backends onnx`` compares onnxruntime's spikes with the
NumPy reference's. Threads: ``OMP_NUM_THREADS`` when set, else onnxruntime's default.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SaturationError
from ..frozen import FrozenNet
from ..simulators.base import check_saturation_mode
from .onnx_export import FORMAT_NAME, INPUT_NAME, VERSION, _onnx, build_onnx_model

if TYPE_CHECKING:
    from ..simulators.base import SimResult


def _default_threads() -> int:
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


class OnnxStepRunner:
    """Runs an exported one-step model for T steps with onnxruntime (works from the .onnx file alone).

    Args:
        model: an ``onnx.ModelProto``, serialized bytes, or a path to a ``.onnx`` file.
        threads: onnxruntime intra-op threads (default: ``$OMP_NUM_THREADS`` if set, else onnxruntime's).
        providers: execution providers (default CPU).
    """

    def __init__(self, model, threads: int | None = None, providers: list[str] | None = None):
        import onnxruntime as ort

        onnx = _onnx()
        if isinstance(model, (str, Path)):
            model = onnx.load(str(model))
        elif isinstance(model, (bytes, bytearray)):
            model = onnx.load_from_string(bytes(model))
        props = {p.key: p.value for p in model.metadata_props}
        if props.get("qsnn_format") != FORMAT_NAME:
            raise ValueError("not a qsnn-deploy one-step ONNX model (metadata qsnn_format missing)")
        version = int(props.get("qsnn_version", "1"))
        if version > VERSION:
            raise ValueError(f"one-step ONNX model of version {version}: this qsnn-deploy reads versions up to {VERSION}")
        self.input = json.loads(props["input"])
        self.layers = json.loads(props["layers"])
        for layer in self.layers:
            layer.setdefault("states", ["v"])  # version 1: the one-state LIF
        self.num_steps = int(props["num_steps"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = _default_threads() if threads is None else int(threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # Every float32 op of the graph must run in full float32: onnxruntime's optional bf16 "fast
        # math" GEMM (ARM64) would break the exact-integer bound. It is off by default; pin it off.
        opts.add_session_config_entry("mlas.enable_gemm_fastmath_arm64_bfloat16", "0")
        # Worker threads sleep instead of spinning between the T small runs: on a shared 2-core machine
        # spinning threads starve everything else (measured 2.8 s -> 1.6 s per 128 digits at T = 100).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model.SerializeToString(), sess_options=opts,
                                            providers=providers or ["CPUExecutionProvider"])
        in_type = self.session.get_inputs()[0].type
        self._x_dtype = np.int32 if "int32" in in_type else np.int64
        self._outputs = [f"{l['name']}.{k}" for l in self.layers for k in ("spikes", *l["states"], "saturated")]

    def run(self, x: np.ndarray, static: bool, steps: int, record_states: bool = False,
            saturation: str = "count") -> SimResult:
        """x: int array [N, *shape] (static: fed at every step) or [T, N, *shape]. Returns a SimResult
        (``states``: the membrane ``v`` of every layer, int64 [T, N, ...], when ``record_states``)."""
        from ..simulators.base import SimResult

        n = x.shape[0] if static else x.shape[1]
        xs = np.ascontiguousarray(x, dtype=self._x_dtype)
        states = {l["name"]: {s: np.zeros((n, *l["out_shape"]), dtype=np.int64) for s in l["states"]} for l in self.layers}
        spikes = {l["name"]: np.empty((steps, n, *l["out_shape"]), dtype=np.uint8) for l in self.layers}
        rec = {l["name"]: np.empty((steps, n, *l["out_shape"]), dtype=np.int64) for l in self.layers} if record_states else None
        sats = {l["name"]: 0 for l in self.layers}
        for t in range(steps):
            feed = {INPUT_NAME: xs if static else xs[t]}
            for name, held in states.items():
                for s, value in held.items():
                    feed[f"{name}.{s}_prev"] = value
            outs = iter(self.session.run(self._outputs, feed))
            for l in self.layers:
                name = l["name"]
                spikes[name][t] = next(outs)
                for s in l["states"]:
                    states[name][s] = next(outs)
                sat = int(next(outs))
                if sat:
                    if saturation == "raise":
                        also = f" (or the current its {l['current_bits']}-bit range)" if "current_bits" in l else ""
                        raise SaturationError(f"layer {name!r}: membrane state left the {l['state_bits']}-bit range{also} "
                                              f"at step {t} ({sat} neurons)")
                    sats[name] += sat
                if record_states:
                    rec[name][t] = states[name]["v"]
        return SimResult(spikes, sats, rec, backend="onnx")


class OnnxRuntimeBackend:
    """Backend ``"onnx"``: the one-step ONNX graph of the net, stepped T times by onnxruntime.

    Args:
        net: the frozen network.
        saturation: ``"count"`` (default) or ``"raise"``.
        threads, providers: see :class:`OnnxStepRunner`.
    """

    name = "onnx"

    def __init__(self, net: FrozenNet, saturation: str = "count", threads: int | None = None,
                 providers: list[str] | None = None, batch_size: int | None = None):
        check_saturation_mode(saturation, backend=self.name)
        self.net = net.validate()
        self.saturation = saturation
        self.batch_size = batch_size
        self.model = build_onnx_model(net)
        self.runner = OnnxStepRunner(self.model, threads=threads, providers=providers)

    def run(self, x: np.ndarray, num_steps: int | None = None, record_states: bool = False) -> SimResult:
        """Step the ONNX graph T times with onnxruntime on integer input ``x`` ([N, *shape] static or [T, N, *shape]),
        in batches of ``batch_size``; returns spikes, saturation counts and (optionally) int64 states.
        """
        from ..simulators.base import SimResult, prepare_input

        arr, static, steps = prepare_input(self.net, x, num_steps)
        n = arr.shape[0] if static else arr.shape[1]
        bs = self.batch_size or max(n, 1)
        parts = []
        for start in range(0, max(n, 1), bs):
            xs = arr[start:start + bs] if static else arr[:, start:start + bs]
            parts.append(self.runner.run(xs, static, steps, record_states, self.saturation))
        if len(parts) == 1:
            return parts[0]
        names = list(parts[0].spikes)
        return SimResult({k: np.concatenate([p.spikes[k] for p in parts], axis=1) for k in names},
                         {k: int(sum(p.saturations[k] for p in parts)) for k in names},
                         {k: np.concatenate([p.states[k] for p in parts], axis=1) for k in names} if record_states else None,
                         backend=self.name)


__all__ = ["OnnxStepRunner", "OnnxRuntimeBackend"]
