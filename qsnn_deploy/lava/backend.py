"""Backend ``lava``: run the exported netx file in Intel Lava (CPU, ``Loihi2SimCfg`` fixed point).

The network Lava runs comes from ``lava.lib.dl.netx.hdf5.Network`` reading the ``.net`` file that
``qsnn-export --target lava`` writes (or a temporary one written from the frozen net). Every layer
whose ``qsnn/route`` is ``stock`` runs on Lava's own LIF (``LIFReset``, ``PyLifResetModelBitAcc``);
every ``custom`` layer runs on qsnn-deploy's :class:`~qsnn_deploy.lava.models.QLIF` process
(``PyQLifModelFixed``), or :class:`~qsnn_deploy.lava.models.QCUBA` (``PyQCubaModelFixed``) for a
current-based layer, substituted for netx's LIF while netx builds that block. A recurrent dense layer
is netx's ``dense_rec`` block (``RecurrentDense``): a Lava ``Dense`` from the neuron's ``s_out`` back to
its ``a_in``, whose one-step delay is the reference's ``R·z_{t-1}``.

**Timing.** Lava's synapses add one step each, so layer l (0-based) sees input column k at step
k + l + 2 (1-based). One sample needs T + L steps (its T columns, then L zero columns that drain
the pipeline). ``info["raw_spikes"]`` holds the raw, Lava-timed trains of every sample over its
own T + L steps ([T+L, N, ...], directly comparable with
:class:`~qsnn_deploy.lava.loihi_sim.LoihiSimulator`'s) and ``spikes`` holds them aligned back
to the reference (layer l shifted by l + 1 steps).

**Compile once, stream many samples.** The network is built, compiled and started once (per T and
lane count) and kept running paused between samples; ``close()`` (or garbage collection, or the
end of the process) stops it. Samples follow each other every R = T + L + P steps (a *period*;
P = 0 except in mixed nets, below). Input and spikes cross the process boundary through
memory-mapped files (:class:`~qsnn_deploy.lava.models.StreamSource` /
``StreamRecorder``): the parent writes a period's input columns, runs R steps, reads the spikes.

**Reset rule (every sample starts from u = v = 0 in every layer, no spike in flight).** With
τ = period-local step (1-based), layer l receives the sample's first column at τ = l + 2:

* ``stock`` layers are netx's ``LIFReset`` (``hdf5.Network(..., reset_interval=R,
  reset_offset=1)``: netx staggers the phase per layer, layer l resets when ``t % R == (l + 2) % R``),
  so u = v = 0 just before layer l integrates the sample's first input: ``PyLifResetModelBitAcc.run_spk``
  receives a_in, zeroes u and v when ``time_step % reset_interval == reset_offset``, then runs
  ``subthr_dynamics`` (bias included) on that step's input. From τ = l + 2 to τ = R + l + 1 (the
  next reset) layer l therefore computes the reference's v_t = decay(v) + (a << 6) + b exactly, from
  its own inputs, which come from layer l - 1's window. What it did before τ = l + 2 (the bias
  integrated during the warm-up of a fresh network, or the previous sample continued) is wiped, and
  its spikes then reach layer l + 1 before *its* reset (also wiped). Without a bias those rows are
  silent (v ≤ vth after every step and a zero input only decays v); with a bias they show the
  previous sample of the lane continued past its period end (a fresh network's warm-up for a lane's
  first sample), which :class:`~qsnn_deploy.lava.loihi_sim.LoihiSimulator` mirrors.
* ``custom`` layers (QLIF, ``reset_interval=R``) repeat the per-sample hold every period: v = 0
  and silent for τ ≤ l + 1, live for l + 1 < τ ≤ T + L. A QLIF layer with a bias may keep spiking
  on zero input, so when a stock layer follows a custom one (a mixed net) the period gets P extra
  zero steps (P = the longest run of stock layers right after a custom layer) in which the QLIF
  layers are held silent and the stock layers after them drain (QLIF ``window_steps = T + L``).

* a stock recurrent layer's loop keeps running through its rows before the window (the previous sample
  continued, or a biased warm-up), so a spike of τ = l + 1 would reach the sample's first step through
  the recurrent synapse: each period's run pauses after τ = l + 1 and clears that synapse's output in
  flight (``a_buff``, Lava's ``Var.set``), the recurrent counterpart of the reset one step later. A
  custom recurrent layer needs nothing: it is silent before its window.

So every period reproduces one independent per-sample run of T + L steps exactly (the window of
each layer; the rows before it show the lane's previous sample where a stock layer has a bias);
QLIF counts clips only in its live window, per lane, so saturation counts equal the reference's.

**Two builds.**

* ``build="lanes"`` (default, fast): the netx network is replicated k lanes wide (k samples side
  by side, lane-major; default k = 12) on Lava's own processes: every netx Conv and Dense synapse
  becomes a Lava ``Sparse`` synapse (``PySparseModelBitAcc``) holding the same integer weights
  block-diagonally (the conv unrolled by Lava's own ``lava.proc.conv.utils.conv_to_sparse``, its
  8-bit mantissas / exponent chosen by netx's ``optimize_weight_bits`` and checked to reproduce the
  kernel exactly through Lava's clip and truncation and, on a probe input, Lava's own conv; a dense
  layer keeps netx's weights, exponent and bit count, its columns permuted for netx's (c, y, x)
  flatten), every neuron a k-times wider ``LIFReset`` / QLIF / QCUBA with the same per-neuron
  parameters, and a recurrent layer's ``synapse_rec`` a block-diagonal Sparse from the neurons back
  to themselves (netx's recurrent weights, exponent and bit count, checked exact at build time).
  No synapse connects two lanes, so each lane computes exactly what a one-sample network computes.
  Spike-fed synapses take the 0/1 spikes as 1-valued graded messages (``num_message_bits = 1``):
  Lava's Sparse then computes W·s as a sparse matrix-vector product instead of summing the columns
  of the spiking inputs, the same integers ≈ 3× faster. If a conv does not survive that mapping
  exactly (a weight past an 8-bit mantissa, a current that may leave the signed 24 bits Lava's
  Conv clamps to), the runner falls back to ``build="netx"`` and says so in ``info["build_note"]``.
* ``build="netx"``: the network exactly as netx builds it (Lava ``Conv`` / ``Dense`` blocks), one
  sample per step, streamed with netx's own ``reset_interval``.

Why the lanes build, measured by ``bench/bench_lava.py --profile`` (shipped MNIST nets, T = 100,
2 shared cores): Lava's ``Conv`` model (``lava/proc/conv/utils.py``, torch disabled there) loops
``scipy.signal.convolve2d`` over every (output, input) channel pair at stride 1: ≈ 18.6 ms of the
21.6 ms of a step go to conv2 (64×16 pairs), so the netx build streams ≈ 0.45 samples/s, and
spreading samples over the conv's width only halves that cost. Lava's fixed cost per step (the
same 10 processes, one neuron each) is 1-2 ms. With 12 lanes a step takes 8.3-9.3 ms for 12
samples (conv2's Sparse product ≈ 5.8 ms of compute, the other processes ≈ 3.5 ms together, over 2
cores): 11-13 samples/s end to end over 200 samples, start-up (0.6-0.9 s) included.

Saturation events: a ``custom`` (QLIF / QCUBA) layer counts its clips, equal to the reference's; Lava's
stock LIF does not count them, so a ``stock`` layer reports 0 (its spikes are still compared).
"""
from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import QSNNError
from .check import stock_pad
from .lava_import import LavaUnavailableError, import_lava  # noqa: F401 - re-exported: callers import them from here
from .lanes import NotExact, check_dense_synapse, check_stock_params, lanes_network
from ..frozen import FrozenNet
from ..log import get_logger
from ..simulators.base import SimResult, check_saturation_mode, prepare_input

logger = get_logger(__name__)

BUILDS = ("lanes", "netx")
DEFAULT_LANES = 12


@contextlib.contextmanager
def _neuron_factory(hdf5, qlif_cls, specs: list[dict], period: int | None = None,
                    window: int | None = None, steps: int | None = None) -> Iterator[list[tuple[Any, dict]]]:
    """While netx builds the network, make its CUBA neurons ``QLIF`` (``QCUBA`` for a ``cuba`` layer) for
    ``custom`` layers (with the periodic hold when ``period`` is given) and record the stock parameters
    netx chose for each layer as ``(process, params)``. ``steps``: T, the live steps in which a custom layer
    counts its clips (the reference's)."""
    from .models import QCUBA

    stock_lif, stock_reset = hdf5.LIF, hdf5.LIFReset
    made: list[tuple[Any, dict]] = []

    def make(shape, vth, du, dv, bias_exp, bias_mant=0, **kwargs):
        i = len(made)
        if i >= len(specs):
            raise QSNNError(f"netx built more neuron layers than the file's {len(specs)} qsnn layers")
        spec = specs[i]
        params = dict(shape=tuple(int(s) for s in shape), vth=vth, du=du, dv=dv, bias_exp=bias_exp,
                      bias_mant=bias_mant, **kwargs)
        if spec["route"] == "stock":
            proc = (stock_reset if "reset_interval" in kwargs else stock_lif)(**params)
        else:
            periodic = {} if period is None else {"reset_interval": period, "reset_offset": 0,
                                                  "window_steps": window if window and window < period else None,
                                                  "count_steps": steps}
            common = dict(shape=shape, vth=spec["threshold"], bias=spec["bias"], decay=spec["decay"], reset=spec["reset"],
                          frac_bits=spec["frac_bits"], state_bits=spec["state_bits"], hold_steps=i + 1,
                          name=spec["name"], **periodic)
            if spec.get("kind") == "cuba":
                cb = spec.get("current_bias")
                proc = QCUBA(current_decay=spec["current_decay"], current_bias=0 if cb is None else cb,
                             current_bits=spec.get("current_bits") or spec["state_bits"], **common)
            else:
                proc = qlif_cls(**common)
        made.append((proc, params))
        return proc

    from .recipe import netx_reads_custom_layers

    hdf5.LIF = hdf5.LIFReset = make
    try:
        with netx_reads_custom_layers(hdf5):  # custom layers: neuron type QSNN_QLIF, text bias (lava/recipe.py)
            yield made
    finally:
        hdf5.LIF, hdf5.LIFReset = stock_lif, stock_reset


def _runtime_errors(proc) -> str:
    """Lava hides child-process exceptions behind "See output above": collect them."""
    msgs = []
    with contextlib.suppress(Exception):
        for actor in proc.runtime._messaging_infrastructure.actors:
            exc = getattr(actor, "exception", None)
            if exc is not None:
                msgs.append(f"{type(exc).__name__}: {exc}")
    return "; ".join(msgs)


def _to_lava_flat(xs: np.ndarray) -> np.ndarray:
    """Samples [T, m, C, H, W] / [T, m, N] -> Lava's per-sample (x, y, c) order flattened: [T, m, n]."""
    if xs.ndim == 5:
        xs = xs.transpose(0, 1, 4, 3, 2)
    return xs.reshape(xs.shape[:2] + (-1,))


def _from_lava_flat(rows: np.ndarray, lava_shape: tuple[int, ...]) -> np.ndarray:
    """Recorded spikes [t, m, n] in Lava (x, y, c) order -> [t, m, C, H, W] / [t, m, N], uint8."""
    rows = rows.reshape(rows.shape[:2] + tuple(lava_shape))
    return rows.transpose(0, 1, 4, 3, 2) if rows.ndim == 5 else rows


def _stock_pad(routes: list[str]) -> int:
    """Extra zero steps per period: the longest run of stock layers right after a custom layer (they
    need that many steps to drain once the custom layers are held silent). 0 in single-route nets.
    (:func:`qsnn_deploy.lava.check.stock_pad`; a module name the tests can replace.)"""
    return stock_pad(routes)


@dataclasses.dataclass
class _Stream:
    """A compiled, paused Lava network that streams samples, ``lanes`` at a time, one per period."""

    root: Any                      # the process the runtime was created on (run / stop)
    build: str                     # "lanes" or "netx"
    lanes: int
    steps: int                     # T
    period: int                    # R = T + L + pad [steps]
    src: np.memmap                 # int32 [period, lanes, n_in]
    recs: list[np.memmap]          # uint8 [period, lanes, n_l], one per layer
    lava_shapes: list[tuple]       # per layer, one sample's Lava shape ((x, y, c) or (n,))
    qlifs: list                    # per layer the QLIF / QCUBA process, None for stock layers
    sat_seen: list[np.ndarray]     # per layer the last per-lane clip counts read
    tmp: tempfile.TemporaryDirectory
    note: str = ""
    #: where a period's run pauses: (step τ, recurrent synapses whose output in flight is cleared there);
    #: a stock recurrent layer l pauses at τ = l + 1 (its reset comes at τ = l + 2); the last entry is (R, [])
    stops: list = dataclasses.field(default_factory=list)

    def run_period(self, RunSteps, cfg) -> None:
        """Run one period of R steps; clear each stock recurrent layer's recurrent synapse after its τ = l + 1."""
        done = 0
        for stop, synapses in self.stops or [(self.period, [])]:
            self.root.run(condition=RunSteps(num_steps=stop - done), run_cfg=cfg)
            done = stop
            for syn in synapses:
                syn.a_buff.set(np.zeros(syn.a_buff.shape, np.int32))

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.root.stop()
        for mm in [self.src, *self.recs]:
            with contextlib.suppress(Exception):
                mm._mmap.close()
        with contextlib.suppress(Exception):
            self.tmp.cleanup()


def _stop_stream(holder: list) -> None:
    """weakref.finalize target: stop the held stream (also runs at interpreter exit)."""
    while holder:
        holder.pop().stop()


class LavaSimulator:
    """Run a frozen net (through its netx file) in Lava, compiled once, many samples streamed.
    See the module docstring.

    Args:
        net: the frozen net. Ignored when ``netx_path`` is given and ``net`` is None.
        netx_path: an existing ``.net`` file from ``qsnn-export --target lava``; by default the
            net is exported to a temporary file.
        saturation: "count" only (Lava's models clip; the QLIF model counts the clips).
        progress: optional callback, called with the number of samples finished after each period.
        build: "lanes" (k samples side by side on Lava Sparse synapses; default) or "netx" (netx's
            own Conv/Dense network, one sample per step).
        lanes: k, samples run side by side per period in the "lanes" build (default 12; at most the
            number of samples of the first ``run`` call).

    ``close()`` stops the Lava processes (also done on garbage collection and at exit); the
    simulator can be used as a context manager. ``startup_seconds`` (build + compile + start) and
    ``run_seconds`` (streaming: writing inputs, Lava steps, reading spikes) accumulate over calls.
    """

    name = "lava"
    preferred_batch_size = 48  # verify hands this many samples per run(); the compiled network persists

    def __init__(self, net: FrozenNet | None = None, netx_path: str | Path | None = None, saturation: str = "count",
                 progress=None, build: str = "lanes", lanes: int = DEFAULT_LANES):
        check_saturation_mode(saturation, backend=self.name)
        if saturation != "count":
            raise QSNNError("the lava backend counts saturation events; --saturation raise is for the integer "
                            "simulators (numpy, torch, loihi)")
        if build not in BUILDS:
            raise ValueError(f"build must be one of {BUILDS}, got {build!r}")
        if int(lanes) < 1:
            raise ValueError(f"lanes must be ≥ 1, got {lanes}")
        self.lava = import_lava()
        from .export import read_layer_specs, read_netx, write_netx

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
        self.build = build
        self.lanes = int(lanes)
        self.startup_seconds = 0.0
        self.run_seconds = 0.0
        self._holder: list[_Stream] = []
        self._finalizer = weakref.finalize(self, _stop_stream, self._holder)

    # ------------------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Stop the Lava processes of the compiled network (a later ``run`` builds a new one)."""
        _stop_stream(self._holder)

    def __enter__(self) -> "LavaSimulator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------ running
    def run(self, x: np.ndarray, num_steps: int | None = None, record_states: bool = False) -> SimResult:
        """Stream the samples of ``x`` (integer input, [N, *shape] static or [T, N, *shape]) through the
        compiled network, ``lanes`` per period of R steps. ``record_states`` is accepted for the
        backend interface but Lava's states are not read back (``states`` is None)."""
        arr, static, steps = prepare_input(self.net, x, num_steps)
        n = arr.shape[0] if static else arr.shape[1]
        L = len(self.net.layers)
        window = steps + L
        stream = self._stream(steps, n)
        _, RunSteps, Loihi2SimCfg, *_ = self.lava
        cfg = Loihi2SimCfg(select_tag="fixed_pt")
        shapes = [tuple(s) for _, s in self.net.layer_shapes()]
        raw = {l.name: np.zeros((window, n) + shape, np.uint8) for l, shape in zip(self.net.layers, shapes)}
        sats = {l.name: 0 for l in self.net.layers}
        t0 = time.perf_counter()
        for start in range(0, n, stream.lanes):
            m = min(stream.lanes, n - start)
            xs = np.broadcast_to(arr[start:start + m], (steps, m) + arr.shape[1:]) if static else arr[:, start:start + m]
            stream.src[:] = 0
            stream.src[:steps, :m] = _to_lava_flat(np.asarray(xs))
            try:
                stream.run_period(RunSteps, cfg)
                for i, (layer, rec) in enumerate(zip(self.net.layers, stream.recs)):
                    raw[layer.name][:, start:start + m] = _from_lava_flat(rec[:window, :m], stream.lava_shapes[i])
                    if stream.qlifs[i] is not None:
                        seen = np.asarray(stream.qlifs[i].saturations.get(), np.int64)
                        sats[layer.name] += int((seen - stream.sat_seen[i])[:m].sum())
                        stream.sat_seen[i] = seen
            except Exception as exc:  # noqa: BLE001 - turn Lava's "see output above" into the child's error
                detail = _runtime_errors(stream.root) or f"{type(exc).__name__}: {exc}"
                self.close()
                raise QSNNError(f"Lava run of {self.netx_path} failed: {detail}") from None
            if self.progress:
                self.progress(m)
        self.run_seconds += time.perf_counter() - t0
        aligned = {l.name: raw[l.name][i + 1:i + 1 + steps] for i, l in enumerate(self.net.layers)}
        return SimResult(aligned, sats, None, backend=self.name,
                         info={"raw_spikes": raw, "routes": list(self.routes), "timing": "lava-pipeline",
                               "startup_seconds": self.startup_seconds, "run_seconds": self.run_seconds,
                               "build": stream.build, "lanes": stream.lanes, "period_steps": stream.period,
                               "build_note": stream.note})

    def _stream(self, steps: int, n: int) -> _Stream:
        """The compiled network for T = ``steps``: reused when it fits, else (re)built and started."""
        lanes = 1 if self.build == "netx" else max(1, min(self.lanes, n))
        if self._holder:
            cur = self._holder[0]
            if cur.steps == steps and (cur.lanes >= lanes or cur.build == "netx"):
                return cur
            self.close()
        t0 = time.perf_counter()
        L = len(self.specs)
        period = steps + L + _stock_pad(self.routes)
        note = ""
        stream = None
        if self.build == "lanes":
            try:
                stream = self._build(period, steps, lanes, "lanes")
            except NotExact as exc:
                note = f"lanes build not exact for this net ({exc}); ran netx's network, one sample per step"
                if any(r == "stock" and (np.any(np.asarray(sp["bias"]) != 0) or sp.get("recurrent") is not None)
                       for r, sp in zip(self.routes, self.specs)):
                    note += (" (one lane: the raw rows before a biased or recurrent stock layer's window follow "
                             "LoihiSimulator(lanes=1), not the default 12 lanes)")
                logger.info("lava: %s", note)
        if stream is None:
            stream = self._build(period, steps, 1, "netx")
        stream.note = note
        self._holder.append(stream)
        self.startup_seconds += time.perf_counter() - t0
        logger.debug("lava: %s build, %d lane(s), period %d steps: built, compiled and started in %.2f s",
                     stream.build, stream.lanes, period, time.perf_counter() - t0)
        return stream

    # ------------------------------------------------------------------------------ building
    def _prototype(self):
        """netx's one-sample network of the file (not compiled) and the neuron parameters it chose."""
        hdf5, *_, QLIF = self.lava
        with _neuron_factory(hdf5, QLIF, self.specs) as made:
            proto = hdf5.Network(net_config=str(self.netx_path), input_message_bits=self.root["input_message_bits"])
        if len(made) != len(self.specs) or len(proto.layers) != len(self.specs):
            raise QSNNError(f"{self.netx_path}: netx built {len(made)} neuron layers, the file describes {len(self.specs)}")
        return proto, made

    def _build(self, period: int, steps: int, lanes: int, build: str) -> _Stream:
        hdf5, _, Loihi2SimCfg, Source, Recorder, QLIF = self.lava
        L = len(self.specs)
        window = steps + L
        made: list[tuple[Any, dict]]
        if build == "netx":
            with _neuron_factory(hdf5, QLIF, self.specs, period=period, window=window, steps=steps) as made:
                network = hdf5.Network(net_config=str(self.netx_path), input_message_bits=self.root["input_message_bits"],
                                       reset_interval=period, reset_offset=1)
            if len(made) != L:
                raise QSNNError(f"{self.netx_path}: netx built {len(made)} neuron layers, the file describes {L}")
            in_shape = tuple(int(s) for s in network.inp.shape)
            lava_shapes = [tuple(int(s) for s in b.out.shape) for b in network.layers]
            outs = [b.out for b in network.layers]
            qlifs = [p if s["route"] == "custom" else None for (p, _), s in zip(made, self.specs)]
            rec_syns = [getattr(b, "synapse_rec", None) for b in network.layers]
            for i, ((_, params), spec) in enumerate(zip(made, self.specs)):
                if spec["route"] == "stock" and int(params.get("reset_offset", -1)) != i + 2:
                    raise QSNNError(f"netx gave layer {spec['name']} reset_offset {params.get('reset_offset')}, "
                                    f"expected {i + 2}: this lava-dl's reset phase convention is not the one "
                                    "the stream relies on (lava-dl 0.6.0)")
            inp = network.inp
        else:
            proto, made = self._prototype()
            in_shape = tuple(int(s) for s in proto.inp.shape)
            lava_shapes = [tuple(int(s) for s in b.out.shape) for b in proto.layers]
            inp, outs, qlifs, rec_syns = lanes_network(proto, made, self.specs, period, window, lanes, in_shape,
                                                       lava_shapes, self.root["input_message_bits"], steps)
        blocks = network.layers if build == "netx" else proto.layers
        for (_, params), spec, block in zip(made, self.specs, blocks):
            if spec["route"] == "stock":
                check_stock_params(spec, params)
            if spec.get("recurrent") is not None:  # netx's dense_rec: both synapses exactly the frozen integers
                check_dense_synapse(block.synapse, np.asarray(spec["weight"]).reshape(len(spec["recurrent"]), -1),
                                    spec["name"], "feed-forward")  # netx's own weights: the flatten is in the connection
                check_dense_synapse(block.synapse_rec, spec["recurrent"], spec["name"], "recurrent")
        stops = {}
        for i, (spec, syn) in enumerate(zip(self.specs, rec_syns)):
            if syn is not None and spec["route"] == "stock":  # custom layers are silent before their window anyway
                stops.setdefault(i + 1, []).append(syn)
        stops = sorted(stops.items()) + [(period, [])]

        tmp = tempfile.TemporaryDirectory(prefix="qsnn-lava-stream-")
        n_in = int(np.prod(in_shape))
        src_path = Path(tmp.name) / "input.i32"
        src = np.memmap(src_path, dtype=np.int32, mode="w+", shape=(period, lanes, n_in))
        source = Source(shape=in_shape if build == "netx" else (lanes * n_in,), path=str(src_path), ring_steps=period)
        source.s_out.connect(inp)
        recs = []
        for i, (out, shape) in enumerate(zip(outs, lava_shapes)):
            path = Path(tmp.name) / f"spikes{i}.u8"
            n_l = int(np.prod(shape))
            recs.append(np.memmap(path, dtype=np.uint8, mode="w+", shape=(period, lanes, n_l)))
            rec = Recorder(shape=tuple(out.shape), path=str(path), ring_steps=period)
            out.connect(rec.a_in)
        cfg = Loihi2SimCfg(select_tag="fixed_pt")
        try:
            source.create_runtime(run_cfg=cfg)
        except Exception as exc:  # noqa: BLE001
            detail = _runtime_errors(source) or f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                source.stop()
            tmp.cleanup()
            raise QSNNError(f"Lava could not compile {self.netx_path}: {detail}") from None
        sat_seen = [np.zeros(lanes, np.int64) for _ in range(L)]
        return _Stream(source, build, lanes, steps, period, src, recs, lava_shapes, qlifs, sat_seen, tmp, stops=stops)
