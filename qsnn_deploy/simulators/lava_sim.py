"""Backend ``lava``: run the exported netx file in Intel Lava (CPU, ``Loihi2SimCfg`` fixed point).

The network Lava runs is built by ``lava.lib.dl.netx.hdf5.Network`` from the ``.net`` file that
``qsnn-export --target lava`` writes (or a temporary one written from the frozen net). Every layer
whose ``qsnn/route`` is ``stock`` runs on Lava's own ``LIF`` (``PyLifModelBitAcc``); every
``custom`` layer runs on qsnn-deploy's :class:`~qsnn_deploy.exporters.lava_models.QLIF` process
(``PyQLifModelFixed``), substituted for netx's LIF while netx builds that block. Synapses (netx
Dense / Conv blocks, their weights) are Lava's.

Timing: Lava's Dense/Conv add one step each, so layer l (0-based) sees input column k at step
k + l + 2 (1-based). One sample is run for T + L steps (the input padded with L zero columns); the
raw, Lava-timed spike trains are returned in ``info["raw_spikes"]`` ([T+L, N, ...], directly
comparable with :class:`~qsnn_deploy.simulators.loihi_sim.LoihiSimulator`'s) and ``spikes`` holds
them aligned back to the reference (layer l shifted by l + 1 steps).

Lava runs one sample per network (batch size 1): each sample builds, compiles and starts a fresh
network (about 0.4 s here), reported separately as ``info["startup_seconds"]``.

Saturation events: a ``custom`` (QLIF) layer counts its clips, equal to the reference's; Lava's
stock LIF does not count them, so a ``stock`` layer reports 0 (its spikes are still compared).
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import QSNNError
from ..frozen import FrozenNet
from .base import SATURATION_MODES, SimResult, prepare_input


class LavaUnavailableError(QSNNError):
    """Lava (lava-nc / lava-dl) is not installed or not patched for this Python."""


def _allow_lava_fork_start_method() -> None:
    """Lava's message infrastructure calls ``multiprocessing.set_start_method('fork')`` (unforced) when
    it is first imported, which raises "context has already been set" in any process that has used
    multiprocessing before (a tqdm progress bar's lock is enough). When the process already uses
    'fork' that call changes nothing, so the setting is cleared for Lava to make it again; any other
    start method is a clear error rather than Lava's crash."""
    import multiprocessing
    import sys

    if "lava.magma.runtime.message_infrastructure.multiprocessing" in sys.modules:
        return
    method = multiprocessing.get_start_method(allow_none=True)
    if method is None:
        return
    if method != "fork":
        raise LavaUnavailableError(f"Lava runs its processes with the 'fork' start method, but this Python process "
                                   f"already uses {method!r} (multiprocessing.set_start_method); run Lava in a process "
                                   "that keeps the default 'fork'")
    multiprocessing.set_start_method(None, force=True)


def import_lava():
    """Import what the runner needs from Lava, with a clear error when Lava is missing."""
    _allow_lava_fork_start_method()
    try:
        from lava.lib.dl.netx import hdf5
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.io.source import RingBuffer as Source

        from ..exporters.lava_models import QLIF, SpikeRecorder
    except Exception as exc:  # noqa: BLE001 - ImportError, or Lava's own errors on an unpatched Python 3.11
        raise LavaUnavailableError(
            f"the lava backend needs lava-nc 0.10.0 and lava-dl 0.6.0, installed and patched by "
            f"'python tools/install_lava.py' (make setup does it): {type(exc).__name__}: {exc}") from None
    return hdf5, RunSteps, Loihi2SimCfg, Source, SpikeRecorder, QLIF


@contextlib.contextmanager
def _neuron_factory(hdf5, qlif_cls, specs: list[dict]) -> Iterator[list]:
    """While netx builds the network, make its CUBA neurons ``QLIF`` for ``custom`` layers."""
    stock_lif = hdf5.LIF
    made: list = []

    def make(shape, vth, du, dv, bias_exp, bias_mant=0, **kwargs):
        i = len(made)
        spec = specs[i]
        if spec["route"] == "stock":
            proc = stock_lif(shape=shape, vth=vth, du=du, dv=dv, bias_exp=bias_exp, bias_mant=bias_mant, **kwargs)
        else:
            proc = qlif_cls(shape=shape, vth=spec["threshold"], bias=spec["bias"], decay=spec["decay"],
                            reset=spec["reset"], frac_bits=spec["frac_bits"], state_bits=spec["state_bits"],
                            hold_steps=i + 1, name=spec["name"])
        made.append(proc)
        return proc

    hdf5.LIF = make
    try:
        yield made
    finally:
        hdf5.LIF = stock_lif


def _runtime_errors(proc) -> str:
    """Lava hides child-process exceptions behind "See output above": collect them."""
    msgs = []
    with contextlib.suppress(Exception):
        for actor in proc.runtime._messaging_infrastructure.actors:
            exc = getattr(actor, "exception", None)
            if exc is not None:
                msgs.append(f"{type(exc).__name__}: {exc}")
    return "; ".join(msgs)


def _to_lava(x_chw_t: np.ndarray) -> np.ndarray:
    """[T, *shape] (C,H,W or N) -> Lava's (x, y, c, T) / (N, T), int32."""
    if x_chw_t.ndim == 4:
        return np.ascontiguousarray(x_chw_t.transpose(3, 2, 1, 0)).astype(np.int32)
    return np.ascontiguousarray(x_chw_t.transpose(1, 0)).astype(np.int32)


def _from_lava(train: np.ndarray) -> np.ndarray:
    """Recorded spikes [T, x, y, c] / [T, N] (Lava order) -> [T, C, H, W] / [T, N], uint8."""
    if train.ndim == 4:
        return np.ascontiguousarray(train.transpose(0, 3, 2, 1))
    return train


class LavaSimulator:
    """Run a frozen net (through its netx file) in Lava. See the module docstring.

    Args:
        net: the frozen net. Ignored when ``netx_path`` is given and ``net`` is None.
        netx_path: an existing ``.net`` file from ``qsnn-export --target lava``; by default the
            net is exported to a temporary file.
        saturation: "count" only (Lava's models clip; the QLIF model counts the clips).
    """

    name = "lava"
    preferred_batch_size = 1  # one Lava network per sample; verify's progress bar ticks per sample

    def __init__(self, net: FrozenNet | None = None, netx_path: str | Path | None = None, saturation: str = "count",
                 progress=None):
        if saturation not in SATURATION_MODES:
            raise ValueError(f"saturation must be one of {SATURATION_MODES}")
        if saturation != "count":
            raise QSNNError("the lava backend counts saturation events; --saturation raise is for the integer "
                            "simulators (numpy, torch, loihi)")
        self.lava = import_lava()
        from ..exporters.lava_export import read_layer_specs, read_netx, write_netx

        self._tmp = None
        if netx_path is None:
            if net is None:
                raise ValueError("give a frozen net or a netx_path")
            self._tmp = tempfile.TemporaryDirectory(prefix="qsnn-lava-")
            netx_path = write_netx(net, Path(self._tmp.name) / "net.net")
        self.netx_path = Path(netx_path)
        self.root, self.specs = read_layer_specs(self.netx_path)
        self.net = net if net is not None else read_netx(self.netx_path)
        if [s["name"] for s in self.specs] != [l.name for l in self.net.layers]:
            raise QSNNError(f"{self.netx_path}: layers {[s['name'] for s in self.specs]} do not match the frozen net's "
                            f"{[l.name for l in self.net.layers]}")
        self.routes = [s["route"] for s in self.specs]
        self.progress = progress
        self.startup_seconds = 0.0
        self.run_seconds = 0.0

    def run(self, x, num_steps: int | None = None, record_states: bool = False) -> SimResult:
        arr, static, steps = prepare_input(self.net, x, num_steps)
        n = arr.shape[0] if static else arr.shape[1]
        L = len(self.net.layers)
        raw: dict[str, list[np.ndarray]] = {l.name: [] for l in self.net.layers}
        sats = {l.name: 0 for l in self.net.layers}
        for i in range(n):
            xs = np.broadcast_to(arr[i], (steps,) + arr.shape[1:]) if static else arr[:, i]
            xs = np.concatenate([xs, np.zeros((L,) + xs.shape[1:], xs.dtype)], axis=0)
            trains, sat = self._run_one(xs)
            for name in raw:
                raw[name].append(trains[name])
                sats[name] += sat[name]
            if self.progress:
                self.progress(1)
        raw_spikes = {k: np.stack(v, axis=1) for k, v in raw.items()}
        aligned = {l.name: raw_spikes[l.name][i + 1:i + 1 + steps] for i, l in enumerate(self.net.layers)}
        return SimResult(aligned, sats, None, backend=self.name,
                         info={"raw_spikes": raw_spikes, "routes": list(self.routes), "timing": "lava-pipeline",
                               "startup_seconds": self.startup_seconds, "run_seconds": self.run_seconds})

    def _run_one(self, xs: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        hdf5, RunSteps, Loihi2SimCfg, Source, Recorder, QLIF = self.lava
        from ..exporters.lava_models import unpack_spikes

        total = xs.shape[0]
        t0 = time.perf_counter()
        with _neuron_factory(hdf5, QLIF, self.specs) as neurons:
            network = hdf5.Network(net_config=str(self.netx_path), input_message_bits=self.root["input_message_bits"])
        if len(neurons) != len(self.specs):
            raise QSNNError(f"{self.netx_path}: netx built {len(neurons)} neuron layers, the file describes {len(self.specs)}")
        source = Source(data=_to_lava(xs))
        source.s_out.connect(network.inp)
        sinks = []
        for block in network.layers:  # every layer's spikes, bit-packed (Lava's Var.get is per element)
            sink = Recorder(shape=block.out.shape, num_steps=total)
            block.out.connect(sink.a_in)
            sinks.append(sink)
        cfg = Loihi2SimCfg(select_tag="fixed_pt")
        try:
            network.create_runtime(run_cfg=cfg)
            t1 = time.perf_counter()
            network.run(condition=RunSteps(num_steps=total), run_cfg=cfg)
            t2 = time.perf_counter()
            trains = {s["name"]: _from_lava(unpack_spikes(sink.packed.get(), sink.a_in.shape, total))
                      for s, sink in zip(self.specs, sinks)}
            sat = {s["name"]: (int(p.saturations.get()[0]) if s["route"] == "custom" else 0)
                   for s, p in zip(self.specs, neurons)}
        except Exception as exc:  # noqa: BLE001 - turn Lava's "see output above" into the child's error
            detail = _runtime_errors(network) or f"{type(exc).__name__}: {exc}"
            raise QSNNError(f"Lava run of {self.netx_path} failed: {detail}") from None
        finally:
            with contextlib.suppress(Exception):
                network.stop()
        self.startup_seconds += t1 - t0
        self.run_seconds += t2 - t1
        return trains, sat
