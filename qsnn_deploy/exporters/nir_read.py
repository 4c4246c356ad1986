"""Reading our own ``.nir`` files back (``docs/nir.md``): the graph walk (:func:`read_graph`, :func:`_chain`,
:func:`recurrent_parts`, shared with :mod:`qsnn_deploy.interop`), the identical
:class:`~qsnn_deploy.frozen.FrozenNet` rebuilt from the node metadata (:func:`frozen_from_nir_graph`,
:func:`read_nir`: every integer tensor, F, B_v, the 12-bit decays and the reset exactly as written) and the
check that a file's float fields (weights, τ, r, thresholds in units of the synaptic current, dt in s) still
agree with that metadata. Written by :mod:`.nir_export`, which re-exports everything here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CheckpointError, FrozenNetError, UnsupportedLayerError
from ..fileio import check_hdf5_sizes
from ..frozen import FrozenNet, InputSpec, Layer, Synapse
from ..neurons import NEURON_KINDS
from .nir_format import DT, FORMAT_KEY, FORMAT_NAME, VERSION

if TYPE_CHECKING:
    import nir

# ====================================================================================== round trip
def _collapse_flat_recurrence(graph):
    """``graph`` with every flat recurrent cycle ``neuron → W → neuron`` (a LIF/CubaLIF and a Linear/Affine
    whose only input and only output is that neuron: how snnTorch 1.0 + nirtorch 2.6 write an ``RLeaky``,
    e.g. nodes ``1.lif``, ``1.w_rec``) replaced by the nested form of :data:`RECURRENT_FORM`, keyed by the
    neuron's name; ``graph`` itself when it has none."""
    import nir

    succ: dict[str, list[str]] = {}
    pred: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    pairs = []
    for wk, w in graph.nodes.items():
        if isinstance(w, (nir.Linear, nir.Affine)) and len(pred.get(wk, [])) == 1 and succ.get(wk, []) == pred[wk]:
            nk = pred[wk][0]
            if isinstance(graph.nodes.get(nk), (nir.LIF, nir.CubaLIF)):
                pairs.append((nk, wk))
    if not pairs:
        return graph
    nodes, edges = dict(graph.nodes), [tuple(e) for e in graph.edges]
    for nk, wk in pairs:
        neuron = nodes[nk]
        shape = np.array(np.shape(neuron.v_threshold), dtype=np.int64)
        sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": shape}), nk: neuron, wk: nodes.pop(wk),
                                  "output": nir.Output(output_type={"output": shape.copy()})},
                           edges=[("input", nk), (nk, wk), (wk, nk), (nk, "output")], type_check=False)
        nodes[nk] = sub
        edges = [e for e in edges if e not in ((nk, wk), (wk, nk))]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=getattr(graph, "metadata", None) or {}, type_check=False)


def _chain(graph) -> list[tuple[str, Any]]:
    """The graph's nodes in order from its Input to its Output; anything but a chain is refused (a recurrent
    neuron, nested or as a flat cycle, counts as one node: :func:`_collapse_flat_recurrence`)."""
    import nir

    graph = _collapse_flat_recurrence(graph)
    succ: dict[str, list[str]] = {}
    pred: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            recurrent_parts(name, node)  # a recurrent neuron (snnTorch's RLeaky/RSynaptic form), or refused
        if len(succ.get(name, [])) > 1 or len(pred.get(name, [])) > 1:
            raise UnsupportedLayerError(f"NIR node {name!r} ({type(node).__name__}) has {len(pred.get(name, []))} inputs and "
                                        f"{len(succ.get(name, []))} outputs: only a single feed-forward chain is supported")
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise UnsupportedLayerError(f"the NIR graph needs exactly one Input node, found {inputs}")
    order, cur, seen = [], inputs[0], set()
    while True:
        if cur in seen:
            raise UnsupportedLayerError(f"the NIR graph has a cycle through node {cur!r}")
        seen.add(cur)
        order.append((cur, graph.nodes[cur]))
        nxt = succ.get(cur, [])
        if not nxt:
            break
        cur = nxt[0]
    missing = set(graph.nodes) - seen
    if missing:
        raise UnsupportedLayerError(f"NIR nodes {sorted(missing)} are not on the chain from the Input node")
    if not isinstance(order[-1][1], nir.Output):
        raise UnsupportedLayerError(f"the chain from the Input node ends at {order[-1][0]!r} "
                                    f"({type(order[-1][1]).__name__}), not at an Output node")
    return order


RECURRENT_FORM = ("a nested NIRGraph with exactly Input, one LIF or CubaLIF, one Linear/Affine and Output, and the "
                  "edges input→neuron, neuron→w_rec, w_rec→neuron, neuron→output (snnTorch's RLeaky/RSynaptic export)")


def recurrent_parts(name: str, sub: nir.NIRGraph) -> tuple[str, Any, str, Any]:
    """(neuron key, neuron node, w_rec key, w_rec node) of a nested NIRGraph holding one recurrent neuron layer
    (:data:`RECURRENT_FORM`, the cycle ``neuron → w_rec → neuron``); :class:`UnsupportedLayerError` naming
    the node for any other nested graph (a composite subgraph, a cycle through more nodes)."""
    import nir

    by_type: dict[str, list[str]] = {}
    for k, n in sub.nodes.items():
        t = ("io_in" if isinstance(n, nir.Input) else "io_out" if isinstance(n, nir.Output)
             else "neuron" if isinstance(n, (nir.LIF, nir.CubaLIF)) else "w" if isinstance(n, (nir.Linear, nir.Affine))
             else "other")
        by_type.setdefault(t, []).append(k)
    ok = all(len(by_type.get(t, [])) == 1 for t in ("io_in", "io_out", "neuron", "w")) and "other" not in by_type
    if ok:
        i, o, nk, wk = (by_type[t][0] for t in ("io_in", "io_out", "neuron", "w"))
        want = {(i, nk), (nk, wk), (wk, nk), (nk, o)}
        ok = len(sub.edges) == 4 and {tuple(e) for e in sub.edges} == want
    if not ok:
        kinds = {k: type(n).__name__ for k, n in sub.nodes.items()}
        raise UnsupportedLayerError(f"NIR node {name!r} is a nested NIRGraph {kinds} with edges {list(sub.edges)}: the only "
                                    f"nested graph supported is a recurrent neuron layer, {RECURRENT_FORM}")
    c = int(np.prod(np.shape(sub.nodes[nk].v_threshold)))
    w = np.asarray(sub.nodes[wk].weight)
    if w.shape != (c, c):
        raise UnsupportedLayerError(f"NIR node {name!r}: recurrent weight {wk!r} has shape {w.shape}, the neuron "
                                    f"{nk!r} has {c} neurons (needs ({c}, {c}))")
    return nk, sub.nodes[nk], wk, sub.nodes[wk]


def _meta_scalar(meta: dict, key: str, node: str, kind=int):
    if key not in meta:
        raise CheckpointError(f"NIR node {node!r}: metadata key {key!r} missing (file not written by qsnn-deploy, or edited)")
    value = meta[key]
    if isinstance(value, np.ndarray):
        value = value.reshape(()).item() if value.size == 1 else value
    if kind is str:
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)
    return kind(value)


def _meta_array(meta: dict, key: str, node: str) -> np.ndarray:
    if key not in meta:
        raise CheckpointError(f"NIR node {node!r}: metadata key {key!r} missing (file not written by qsnn-deploy, or edited)")
    return np.array(meta[key])


def _role(meta: dict) -> str | None:
    role = meta.get("qsnn_role")
    return role.decode("utf-8") if isinstance(role, bytes) else role


def _neuron_from_meta(kind: str, meta: dict, node: str, layer: str):
    """The neuron parameters of kind ``kind`` from a neuron node's metadata (its dataclass fields, written by
    :func:`_neuron_meta`), validated later with the net."""
    cls = NEURON_KINDS[kind]
    entry: dict[str, Any] = {"arrays": {}}
    arrays: dict[str, np.ndarray] = {}
    for fname in cls.array_fields():
        if fname in meta:
            arrays[fname] = np.array(meta[fname])
            entry["arrays"][fname] = fname
    for fname in cls.scalar_fields():
        if fname in meta:
            value = meta[fname]
            value = value.reshape(()).item() if isinstance(value, np.ndarray) and value.size == 1 else value
            entry[fname] = value.decode("utf-8") if isinstance(value, bytes) else value
    try:
        return cls.from_manifest(entry, arrays, layer)
    except FrozenNetError as exc:
        raise CheckpointError(f"NIR node {node!r}: {exc} (file not written by qsnn-deploy, or edited)") from None


def is_qsnn_graph(graph: nir.NIRGraph) -> bool:
    """True when ``graph`` was written by :func:`export` (carries the integer metadata)."""
    meta = getattr(graph, "metadata", None) or {}
    value = meta.get(FORMAT_KEY)
    value = value.decode("utf-8") if isinstance(value, bytes) else value
    return value == FORMAT_NAME


def frozen_from_nir_graph(graph: nir.NIRGraph, check_float_fields: bool = True) -> FrozenNet:
    """Rebuild the exact frozen net from a graph written by :func:`to_nir_graph` (node metadata).

    With ``check_float_fields`` the NIR float fields are regenerated from the rebuilt net and
    compared with the graph's: a graph edited after export (e.g. weights changed in another tool)
    is refused instead of silently ignored.
    """
    import nir

    if not is_qsnn_graph(graph):
        raise CheckpointError("this NIR graph was not written by qsnn-deploy (no qsnn integer metadata); import it with "
                              "qsnn_deploy.interop.nir_import.nir_graph_to_frozen() / `qsnn-export graph.nir`, which quantizes its float weights")
    gm = graph.metadata
    version = _meta_scalar(gm, "qsnn_format_version", "<graph>")
    if version != VERSION:
        raise CheckpointError(f"unsupported qsnn NIR version {version} (this build reads {VERSION})")
    spec = InputSpec(tuple(int(s) for s in _meta_array(gm, "input_shape", "<graph>")), _meta_scalar(gm, "input_bits", "<graph>"),
                     _meta_scalar(gm, "input_signed", "<graph>", bool), _meta_scalar(gm, "input_scale", "<graph>", float),
                     _meta_scalar(gm, "input_static", "<graph>", bool))
    layers, syn = [], None
    for name, node in _chain(graph):
        meta = getattr(node, "metadata", None) or {}
        role = _role(meta)
        if isinstance(node, (nir.Input, nir.Output)) or role in ("flatten", "pool"):
            continue
        if role == "synapse":
            syn = (name, meta)
            continue
        recurrent = None
        if isinstance(node, nir.NIRGraph):
            if role != "recurrent":
                raise CheckpointError(f"NIR node {name!r} (NIRGraph) has no qsnn role: the graph was edited after export")
            nk, inner, _, _ = recurrent_parts(name, node)
            recurrent, name, node = name, f"{name}.{nk}", inner
            meta = getattr(node, "metadata", None) or {}
            role = _role(meta)
        if role not in NEURON_KINDS:
            raise CheckpointError(f"NIR node {name!r} ({type(node).__name__}) has no qsnn role: the graph was edited after export")
        if syn is None:
            raise CheckpointError(f"NIR node {name!r}: {type(node).__name__} without a synapse in front of it")
        sname, sm = syn
        layer_name = _meta_scalar(meta, "qsnn_layer", name, str)
        if _meta_scalar(sm, "qsnn_layer", sname, str) != layer_name:
            raise CheckpointError(f"NIR nodes {sname!r} and {name!r} belong to different layers: the graph was edited")
        if (recurrent is not None) != ("recurrent" in sm):
            raise CheckpointError(f"NIR nodes {sname!r} and {name!r}: recurrent weights in the metadata "
                                  f"{'without' if recurrent is None else 'missing for'} a recurrent subgraph: the graph was edited")
        pool = tuple(int(p) for p in _meta_array(sm, "pool", sname))
        rb = sm.get("recurrent_bits")
        synapse = Synapse(
            _meta_scalar(sm, "synapse", sname, str), _meta_array(sm, "weight", sname), _meta_scalar(sm, "weight_bits", sname),
            tuple(int(s) for s in _meta_array(sm, "stride", sname)), tuple(int(p) for p in _meta_array(sm, "padding", sname)),
            pool if any(pool) else None, _meta_scalar(sm, "flatten_input", sname, bool),
            _meta_array(sm, "recurrent", sname) if recurrent is not None else None,
            None if rb is None else _meta_scalar(sm, "recurrent_bits", sname))
        layers.append(Layer(layer_name, synapse, _neuron_from_meta(role, meta, name, layer_name)))
        syn = None
    if syn is not None:
        raise CheckpointError(f"NIR node {syn[0]!r}: synapse without a neuron node after it")
    provenance = json.loads(_meta_scalar(gm, "provenance", "<graph>", str))
    net = FrozenNet(spec, layers, _meta_scalar(gm, "num_steps", "<graph>"), provenance).validate()
    if check_float_fields:
        _check_float_fields(graph, net, _meta_scalar(gm, "pool_mode", "<graph>", str),
                            _meta_scalar(gm, "threshold_layout", "<graph>", str), _meta_scalar(gm, "dt", "<graph>", float),
                            _meta_scalar(gm, "tau_rule", "<graph>", str) if "tau_rule" in gm else "euler",
                            _meta_scalar(gm, "r_rule", "<graph>", str) if "r_rule" in gm else "gain")
    return net


_FLOAT_FIELDS = ("weight", "bias", "stride", "padding", "kernel_size", "tau", "r", "v_leak", "v_threshold", "v_reset",
                 "start_dim", "end_dim", "tau_syn", "tau_mem", "w_in")


def _check_float_fields(graph, net: FrozenNet, pool: str, layout: str, dt: float = DT, tau_rule: str = "euler",
                        r_rule: str = "gain") -> None:
    from .nir_export import to_nir_graph  # the writer regenerates the graph the metadata implies (imported here:
    # nir_export imports this module at its top)

    try:
        expected = to_nir_graph(net, pool=pool, threshold_layout=layout, dt=dt, tau_rule=tau_rule, r_rule=r_rule)
    except ValueError as exc:
        raise CheckpointError(f"the NIR graph's export options are invalid ({exc}): the graph was edited after export") from None
    got, want = _chain(graph), _chain(expected)
    if [(n, type(v).__name__) for n, v in got] != [(n, type(v).__name__) for n, v in want]:
        raise CheckpointError(f"the NIR graph's nodes {[n for n, _ in got]} differ from the ones its integer metadata implies "
                              f"{[n for n, _ in want]}: the graph was edited after export")
    for (name, a), (_, b) in zip(got, want):
        _compare_float_fields(name, a, b)


def _compare_float_fields(name: str, a, b) -> None:
    """Refuse node ``a`` (from the file) when its float fields differ from ``b`` (regenerated from the metadata);
    a nested graph (a recurrent layer) is compared node by node."""
    import nir

    if isinstance(b, nir.NIRGraph):
        if not isinstance(a, nir.NIRGraph) or sorted(a.nodes) != sorted(b.nodes) or \
                sorted(map(tuple, a.edges)) != sorted(map(tuple, b.edges)):
            raise CheckpointError(f"NIR node {name!r}: the recurrent subgraph differs from the one its integer metadata "
                                  "implies: the graph was edited after export")
        for k in b.nodes:
            _compare_float_fields(f"{name}.{k}", a.nodes[k], b.nodes[k])
        return
    if type(a) is not type(b):
        raise CheckpointError(f"NIR node {name!r} is a {type(a).__name__}, its integer metadata implies a "
                              f"{type(b).__name__}: the graph was edited after export")
    for fname in _FLOAT_FIELDS:
        if not hasattr(b, fname):
            continue
        x, y = np.asarray(getattr(a, fname, None)), np.asarray(getattr(b, fname))
        if x.dtype.kind in "fc" and not np.isfinite(x).all() and np.isfinite(y).all():
            raise CheckpointError(f"NIR node {name!r}: field {fname!r} holds NaN or infinite values (its integer "
                                  "metadata has none: the graph was edited after export)")
        if x.shape != y.shape or not np.array_equal(x.astype(np.float64), y.astype(np.float64), equal_nan=True):
            raise CheckpointError(f"NIR node {name!r}: field {fname!r} disagrees with the node's integer metadata (the "
                                  "graph was edited after export). Re-export it, or import the edited graph as a "
                                  "foreign one with qsnn_deploy.interop.nir_import.nir_graph_to_frozen(graph), which reads only the float fields.")


def read_nir(path: str | Path, check_float_fields: bool = True) -> FrozenNet:
    """Read a ``.nir`` file written by :func:`export` back into the identical frozen net."""
    graph = read_graph(path)
    return frozen_from_nir_graph(graph, check_float_fields=check_float_fields)


def read_graph(path: str | Path) -> nir.NIRGraph:
    """``nir.read`` with clean errors."""
    import nir

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory; expected a NIR graph file (.nir)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        import h5py

        with h5py.File(path, "r") as f:  # refuse datasets claiming more than the file holds, before nir reads them
            check_hdf5_sizes(f, path)
        try:
            return nir.read(path)
        except ValueError as exc:
            if "type mismatch" not in str(exc):
                raise
            # nir 1.0.8 infers a Conv2d's output type from the kernel height only, so a graph with a
            # non-square kernel fails its own type check: read it without (shapes are computed here).
            return nir.read(path, type_check=False)
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, AssertionError, TypeError, AttributeError, IndexError, RuntimeError,
            UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not a readable NIR graph ({type(exc).__name__}: {exc})") from None
