"""Our ``.nir`` files run by simulators we did not write: snnTorch, Norse, Sinabs, Rockpool.

Each peer's own NIR importer builds its own network from the graph (no code of ours in the loop);
:func:`run_peer` feeds it the integer input, records every LIF layer's spikes with forward hooks
and returns a :class:`~qsnn_deploy.simulators.SimResult` that :func:`compare` sets against our
NumPy reference. ``bench/nir_peers.py`` writes the table in ``docs/nir.md`` §3a; the reasons
for each difference (reset kind, rounding, float vs integer, dt and τ conventions) are there.

NIR fixes the ODE (``τ dv/dt = (v_leak − v) + R·I``, spike on ``v > v_threshold``, then
``v = v_reset``) but not its discretization, and every peer discretizes it its own way, so one
file cannot be read the same by all of them. :data:`EXPORT_OPTIONS` holds, per peer, the options
of :func:`~qsnn_deploy.exporters.nir_export.export` that it reads as we mean them (each reads back
bit-exactly in our own importer: the integer net is in the metadata):

* snnTorch 1.0: the default file (``β = 1 − dt/τ`` with its hard-coded ``dt = 1e-4``, gain
  ``r·dt/τ``, one threshold per LIF node, ``AvgPool2d`` but no ``SumPool2d``).
* Norse 1.1: ``β = 1 − dt/τ`` with the ``dt`` passed to ``from_nir``; it ignores ``r`` (input gain
  ``dt/τ = 1 − β``, hence ``r_rule="one"``); no ``AvgPool2d`` (hence ``pool="fold"``); its
  ``Flatten`` keeps NIR's per-sample ``start_dim=0``, so it is fed one sample at a time.
* Sinabs 2.0: ``α = exp(−1/τ)`` with τ in time steps (no dt: hence ``dt=1, tau_rule="exp"``),
  input gain 1, ``MultiSpike`` (⌊v/θ⌋ spikes when ``v ≥ θ``) and subtract reset always; no
  ``AvgPool2d``. Its LIF import evaluates ``any(node.v_leak)``, which raises for a LIF whose
  parameters have more than one dimension (every conv layer): :func:`run_peer` passes Sinabs a
  copy of the graph whose ``v_leak`` (all zeros) is reshaped to 1-D, the only field that check reads.
* Rockpool 3.1: cannot import our graphs (no ``Conv2d`` in its NIR map; its LIF import reads
  ``node.tau_mem``, a field NIR's ``LIF`` does not have): :func:`run_peer` raises
  :class:`PeerLoadError` with the peer's own exception.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..exporters import nir_export
from ..frozen import FrozenNet

if TYPE_CHECKING:
    import nir

    from ..simulators.base import SimResult

PEERS = ("snntorch", "norse", "sinabs", "rockpool")

#: The export options each peer reads as we mean them (see the module docstring).
EXPORT_OPTIONS = {
    "snntorch": dict(pool="avg", threshold_layout="auto"),
    "norse": dict(pool="fold", threshold_layout="integer", r_rule="one"),
    "sinabs": dict(pool="fold", threshold_layout="integer", dt=1.0, tau_rule="exp"),
    "rockpool": dict(pool="avg", threshold_layout="auto"),
}


class PeerLoadError(RuntimeError):
    """A peer's own NIR importer refused the graph (message: the peer's exception, and where)."""


def peer_versions() -> dict[str, str]:
    """Installed version of each peer (and nir, nirtorch, neurobench); absent ones are left out."""
    from importlib import metadata

    out = {}
    for name in PEERS + ("nir", "nirtorch", "neurobench"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _lif_layer_names(graph) -> dict[str, str]:
    """NIR LIF node name -> qsnn layer name (metadata) or the node name, in chain order."""
    import nir

    out = {}
    for name, node in nir_export._chain(graph):
        if isinstance(node, nir.LIF):
            layer = (node.metadata or {}).get("qsnn_layer", name)
            out[name] = layer.decode("utf-8") if isinstance(layer, bytes) else str(layer)
    return out


def _load_error(peer: str, exc: BaseException) -> PeerLoadError:
    import traceback

    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {frame.filename.split('site-packages/')[-1]}:{frame.lineno}" if frame else ""
    return PeerLoadError(f"{peer} cannot import the graph: {type(exc).__name__}: {exc}{where}")


@contextlib.contextmanager
def _quiet():
    """Peers print and log warnings on import (r != 1, 'replace rnn subgraph'): keep the output clean."""
    level = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(level)


def load_peer(peer: str, graph: nir.NIRGraph, *, batch_size: int = 1, num_steps: int | None = None,
              as_is: bool = False) -> torch.nn.Module:
    """The module ``peer``'s own importer builds from ``graph`` (raises :class:`PeerLoadError`).

    Sinabs gets a copy with a 1-D ``v_leak`` (see the module docstring) unless ``as_is``."""
    if peer not in PEERS:
        raise ValueError(f"peer must be one of {PEERS}, got {peer!r}")
    try:
        with _quiet():
            if peer == "snntorch":
                from snntorch.import_nir import import_from_nir

                return import_from_nir(graph)
            if peer == "norse":
                import norse.torch

                dt = float(np.asarray((graph.metadata or {}).get("dt", nir_export.DT)))
                return norse.torch.from_nir(graph, dt=dt)
            if peer == "sinabs":
                import sinabs

                return sinabs.from_nir(graph if as_is else _sinabs_view(graph), batch_size=batch_size,
                                       num_timesteps=num_steps)
            from rockpool.nn.modules.torch.nir import from_nir

            return from_nir(graph)
    except Exception as exc:  # the peer's own failure, reported with its type, message and place
        raise _load_error(peer, exc) from exc


def _sinabs_view(graph):
    """A copy of ``graph`` whose LIF ``v_leak`` is 1-D (same values): Sinabs 2.0's importer tests
    ``any(node.v_leak) != 0``, which raises ValueError on a multi-dimensional array."""
    import nir

    graph = copy.deepcopy(graph)
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF):
            node.v_leak = np.asarray(node.v_leak).reshape(-1)
    return graph


def _prepare(net: FrozenNet | None, x, num_steps: int | None):
    from ..simulators.base import prepare_input

    if net is not None:
        return prepare_input(net, x, num_steps)
    return np.asarray(x), True, int(num_steps or 100)


def run_peer(peer: str, graph: nir.NIRGraph, x_int: np.ndarray, num_steps: int | None = None,
             net: FrozenNet | None = None, batch_size: int = 50, per_sample: bool = False,
             torch_threads: int | None = 1) -> SimResult:
    """Run ``graph`` in ``peer``'s own simulator on integer inputs; spikes per LIF layer.

    snnTorch's and Norse's executors keep NIR's per-sample ``Flatten(start_dim=0)``, which flattens
    a batch dimension too. ``per_sample=True`` feeds them one sample at a time without a batch
    dimension (the network exactly as the peer built it); by default the executor's flattens are
    given ``start_dim=1`` and ``batch_size`` samples run together (the same neurons and arithmetic;
    ``tests/test_nir_peers.py`` checks both give identical spikes).

    ``torch_threads`` (default 1, restored afterwards): once the NumPy reference's parallel Numba
    kernels have run in the process, torch's OpenMP pool with more threads than that was 35× slower
    on this project's 2-core machine (measured: 28.6 s vs 0.8 s for the same run).

    Returns a :class:`~qsnn_deploy.simulators.SimResult` (layer names from the LIF nodes'
    ``qsnn_layer`` metadata); ``info["output_counts"]`` holds the peer's own output spike counts
    (Sinabs' MultiSpike can emit several spikes per step; ``spikes`` records ``count > 0``) and
    ``info["multi_spike_events"]`` how many (neuron, step) events carried more than one spike.
    """
    threads = torch.get_num_threads()
    if torch_threads:
        torch.set_num_threads(int(torch_threads))
    try:
        return _run_peer(peer, graph, x_int, num_steps, net, batch_size, per_sample)
    finally:
        torch.set_num_threads(threads)


def _run_peer(peer, graph, x_int, num_steps, net, batch_size, per_sample):
    from ..simulators.base import SimResult

    if peer == "snntorch" and per_sample:
        res = run_snntorch_import(graph, x_int, num_steps=num_steps, net=net)
        res.info["output_counts"] = res.output_counts()
        res.info["multi_spike_events"] = 0
        return res
    arr, static, steps = _prepare(net, x_int, num_steps)
    n = arr.shape[0] if static else arr.shape[1]
    names = _lif_layer_names(graph)
    if peer in ("snntorch", "norse"):
        spikes = _run_stepwise(peer, graph, arr, static, steps, n, names, 1 if per_sample else batch_size, per_sample)
    elif peer == "sinabs":
        spikes = _run_sinabs(graph, arr, static, steps, n, names, batch_size)
    else:
        load_peer(peer, graph)
        raise PeerLoadError(f"{peer}: no runner (its importer accepted the graph)")
    counts = {k: v for k, v in spikes.items()}
    out = list(counts)[-1]
    binary = {k: (v > 0).astype(np.uint8) for k, v in counts.items()}
    res = SimResult(binary, {k: 0 for k in binary}, backend=f"{peer}-from_nir")
    res.info["output_counts"] = counts[out].sum(axis=0, dtype=np.int64).reshape(n, -1)
    res.info["multi_spike_events"] = {k: int((v > 1).sum()) for k, v in counts.items()}
    return res


def _hooks(modules: dict[str, torch.nn.Module], pick):
    recorded = {k: [] for k in modules}
    handles = [m.register_forward_hook(lambda _m, _i, out, key=k: recorded[key].append(pick(out).detach().clone()))
               for k, m in modules.items()]
    return recorded, handles


def _batch_flattens(module: torch.nn.Module) -> int:
    """Give every ``nn.Flatten(start_dim=0)`` of a peer's executor ``start_dim=1`` (keep the batch)."""
    changed = 0
    for m in module.modules():
        if isinstance(m, torch.nn.Flatten) and m.start_dim == 0:
            m.start_dim = 1
            changed += 1
    return changed


def _run_stepwise(peer, graph, arr, static, steps, n, names, batch_size, per_sample):
    """snnTorch / Norse: the executor is called once per step; spikes of each LIF module recorded."""
    if peer == "snntorch":
        import snntorch as snn

        module = load_peer("snntorch", graph)
        cells = {name: m for name, m in module.named_modules() if isinstance(m, snn.Leaky)}
        pick = (lambda out: out[0] if isinstance(out, tuple) else out)
    else:
        from norse.torch.module.lif_box import LIFBoxCell

        module = load_peer("norse", graph)
        cells = {name: m for name, m in module.named_modules() if isinstance(m, LIFBoxCell)}
        pick = (lambda out: out[0])
    module.eval()
    if not per_sample:
        _batch_flattens(module)
    by_node = {}
    for node in names:
        mod = cells.get(nir_export._node_name(node), cells.get(node))
        if mod is None:
            raise PeerLoadError(f"{peer}'s executor has no LIF module for NIR node {node!r}")
        by_node[node] = mod
    recorded, handles = _hooks(by_node, pick)
    chunks = {k: [] for k in by_node}
    try:
        with torch.no_grad(), _quiet():
            for lo in range(0, n, batch_size):
                hi = min(n, lo + batch_size)
                for v in recorded.values():
                    v.clear()
                if peer == "snntorch":
                    for m in cells.values():
                        m.reset_mem()
                state = None
                for t in range(steps):
                    xt = arr[lo:hi] if static else arr[t, lo:hi]
                    xt = torch.as_tensor(np.asarray(xt[0] if per_sample else xt), dtype=torch.float32)
                    if peer == "snntorch":
                        module(xt)
                    else:
                        _, state = module(xt, state)
                for k in by_node:
                    s = torch.stack(recorded[k])
                    chunks[k].append((s.unsqueeze(1) if per_sample else s).numpy())
    finally:
        for h in handles:
            h.remove()
    return {names[k]: np.rint(np.concatenate(v, axis=1)).astype(np.int64) for k, v in chunks.items()}


def _run_sinabs(graph, arr, static, steps, n, names, batch_size):
    import sinabs
    import sinabs.layers as sl

    out = {names[k]: [] for k in names}
    for lo in range(0, n, batch_size):
        hi = min(n, lo + batch_size)
        b = hi - lo
        module = load_peer("sinabs", graph, batch_size=b)
        module.eval()
        lifs = {name: m for name, m in module.named_modules() if isinstance(m, sl.LIFSqueeze)}
        by_node = {node: lifs.get(nir_export._node_name(node), lifs.get(node)) for node in names}
        missing = [k for k, v in by_node.items() if v is None]
        if missing:
            raise PeerLoadError(f"sinabs' network has no LIF layer for NIR nodes {missing}")
        sinabs.reset_states(module)
        recorded, handles = _hooks(by_node, lambda o: o)
        try:
            if static:  # Squeeze layers take (batch·time, ...), batch-major
                xb = np.broadcast_to(arr[lo:hi, None], (b, steps) + arr.shape[1:])
            else:
                xb = np.moveaxis(arr[:steps, lo:hi], 0, 1)
            xt = torch.as_tensor(np.array(xb, dtype=np.float32)).reshape((b * steps,) + xb.shape[2:])
            with torch.no_grad(), _quiet():
                module(xt)
        finally:
            for h in handles:
                h.remove()
        for k, v in recorded.items():
            s = v[-1].reshape((b, steps) + v[-1].shape[1:]).transpose(0, 1)
            out[names[k]].append(np.rint(s.numpy()).astype(np.int64))
    return {k: np.concatenate(v, axis=1) for k, v in out.items()}


@dataclass
class PeerComparison:
    """A peer's spikes against the reference's, layer by layer."""

    peer: str
    n_samples: int
    num_steps: int
    layer_agreement: dict[str, float]      # fraction of equal (step, sample, neuron) spike values
    identical_samples: dict[str, float]    # fraction of samples whose train in that layer is identical
    spikes_peer: dict[str, int]
    spikes_ref: dict[str, int]
    prediction_agreement: float
    accuracy_peer: float | None
    accuracy_ref: float | None
    multi_spike_events: dict[str, int]

    @property
    def exact(self) -> bool:
        """True when every layer's spike agreement with the reference is 100%."""
        return all(v == 1.0 for v in self.layer_agreement.values())


def compare(peer: str, ref: SimResult, res: SimResult, labels: np.ndarray | None = None) -> PeerComparison:
    """Per-layer spike agreement and prediction agreement of a peer's run with the reference."""
    agree, ident, sp, sr = {}, {}, {}, {}
    for (name, r), (pname, p) in zip(ref.spikes.items(), res.spikes.items()):
        p = p.reshape(r.shape)
        eq = p == r
        agree[name] = float(eq.mean())
        ident[name] = float(eq.reshape(r.shape[0], r.shape[1], -1).all(axis=(0, 2)).mean())
        sp[name], sr[name] = int(p.sum()), int(r.sum())
    pred_ref = ref.predictions()
    pred_peer = np.asarray(res.info.get("output_counts", res.output_counts())).argmax(axis=1)
    acc = (lambda p: float(np.mean(p == np.asarray(labels)[:len(p)]))) if labels is not None else (lambda p: None)
    multi = res.info.get("multi_spike_events", 0)
    multi = multi if isinstance(multi, dict) else {k: int(multi) for k in agree}
    steps, n = next(iter(ref.spikes.values())).shape[:2]
    return PeerComparison(peer, int(n), int(steps), agree, ident, sp, sr, float(np.mean(pred_ref == pred_peer)),
                          acc(pred_peer), acc(pred_ref), {k: int(v) for k, v in multi.items()})


def run_snntorch_import(graph_or_path: nir.NIRGraph | str | Path, x_int: np.ndarray, num_steps: int | None = None,
                        net: FrozenNet | None = None) -> SimResult:
    """Run a NIR graph in snnTorch's own importer (``snntorch.import_nir.import_from_nir``).

    snnTorch builds a nirtorch graph executor (a ``torch.fx.GraphModule``) of ``Leaky``
    (``init_hidden=True``, ``reset_mechanism="zero"``, ``reset_delay=False``) and torch layers.
    Its ``Flatten`` keeps NIR's per-sample ``start_dim=0``, so the executor is fed ONE sample at a
    time without a batch dimension: for every sample the neurons' membranes are zeroed, then the
    executor is called once per step with the integer input as float32 (the graph's input unit).
    Spikes of every ``Leaky`` are captured with forward hooks.

    Returns a :class:`~qsnn_deploy.simulators.SimResult` whose layer names are the qsnn layer names
    (from the LIF nodes' metadata) or the NIR node names of a foreign graph.
    """
    import nir
    import snntorch as snn
    from snntorch.import_nir import import_from_nir

    from ..simulators.base import SimResult, prepare_input

    graph = nir_export.read_graph(graph_or_path) if isinstance(graph_or_path, (str, Path)) else graph_or_path
    lif_names = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.LIF):
            meta = node.metadata or {}
            layer = meta.get("qsnn_layer", name)
            lif_names[name] = layer.decode("utf-8") if isinstance(layer, bytes) else str(layer)
    if net is not None:
        arr, static, steps = prepare_input(net, x_int, num_steps)
    else:
        arr = np.asarray(x_int)
        static, steps = True, int(num_steps or 100)
    with contextlib.redirect_stdout(io.StringIO()):
        module = import_from_nir(graph)
    module.eval()
    leaky = [(n, m) for n, m in module.named_modules() if isinstance(m, snn.Leaky)]
    order = [n for n, _ in nir_export._chain(graph) if n in lif_names]
    by_name = dict(leaky)
    missing = [n for n in order if nir_export._node_name(n) not in by_name and n not in by_name]
    if missing:
        raise RuntimeError(f"snnTorch's executor has no Leaky for LIF nodes {missing}")
    recorded: dict[str, list] = {n: [] for n in order}
    hooks = []
    for n in order:
        mod = by_name.get(n, by_name.get(nir_export._node_name(n)))
        hooks.append(mod.register_forward_hook(
            lambda _m, _i, out, key=n: recorded[key].append((out[0] if isinstance(out, tuple) else out).detach().to(torch.uint8))))
    n_samples = arr.shape[0] if static else arr.shape[1]
    per_sample: dict[str, list] = {n: [] for n in order}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(n_samples):
                for _, m in leaky:
                    m.reset_mem()
                for key in recorded:
                    recorded[key].clear()
                for t in range(steps):
                    xt = arr[i] if static else arr[t, i]
                    module(torch.as_tensor(np.asarray(xt), dtype=torch.float32))
                for key in order:
                    per_sample[key].append(torch.stack(recorded[key]).numpy())
    finally:
        for h in hooks:
            h.remove()
    spikes = {lif_names[k]: np.stack(v, axis=1).astype(np.uint8) for k, v in per_sample.items()}
    return SimResult(spikes, {k: 0 for k in spikes}, backend="snntorch-import_nir")
