"""Rockpool 3.1 torch networks as NIR graphs that keep their recurrent weights (:func:`rockpool_to_nir`).

Rockpool 3.1.0's own writer, ``rockpool.nn.modules.torch.nir.to_nir``, writes a ``LIFTorch`` as a NIR
``CubaLIF`` node and **drops its recurrent weights** (``has_rec=True``: the node it writes is the same as
without them) and its bias (it writes ``v_leak = 0``), and it writes the ``Input`` type with a batch
dimension (``[1, N]``), so ``nir.read`` of its own file fails NIR's type check (and so does Rockpool's
``from_nir`` given that file's path). Rockpool's reader (``from_nir``) takes a recurrent ``LIFTorch`` as a
nested ``NIRGraph`` of exactly ``Input``, ``CubaLIF``, ``Linear``/``Affine`` and ``Output``, weight
``w_rec.T`` (NIR's ``(out, in)``). :func:`rockpool_to_nir` runs Rockpool's writer and puts each recurrent
layer in that nested form (the cycle ``neuron → w_rec → neuron``: also how snnTorch writes ``RLeaky``, read
by :mod:`.nir_import`), with per-sample ``Input``/``Output`` types.

Rockpool's ``LIFTorch`` per time step (its docstring and ``forward``; α_R = exp(−dt/τ_mem) and
β_R = exp(−dt/τ_syn) in Rockpool's names, n_t the spike counts)::

    I_t = β_R·(I_{t−1} + S_t + W_rec^T·n_{t−1})        the input joins the current before its decay
    v_t = α_R·v_{t−1} + I_t + b
    n_t = ⌊v_t/θ⌋ if v_t ≥ θ else 0                    several spikes per step, fired on ≥
    v_t = v_t − n_t·θ                                  subtract reset

:mod:`.nir_import` reads the current part exactly with ``cuba_input_gain="rockpool"``, ``tau_rule="exp"``
and Rockpool's ``dt`` (gain β_R on S and on the recurrent spikes, gain 1 on the membrane). The spike
rule and the reset are NIR's (one spike on v > θ, reset to ``v_reset = 0``, which Rockpool writes): the
agreement with Rockpool's own run is measured (docs/nir.md §5).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedLayerError

if TYPE_CHECKING:
    import nir


def _recurrent_node(neuron, w_rec: np.ndarray, size: int):
    """The nested NIR graph of one recurrent layer: Input → CubaLIF → Output and CubaLIF → Linear → CubaLIF."""
    import nir

    shape = np.array([size], dtype=np.int64)
    return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": shape}), "lif": neuron,
                               "w_rec": nir.Linear(weight=np.ascontiguousarray(w_rec.T, dtype=np.float32)),
                               "output": nir.Output(output_type={"output": shape.copy()})},
                        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                        type_check=False)


def rockpool_to_nir(module: Any, sample_data: Any = None, model_name: str = "rockpool") -> nir.NIRGraph:
    """``rockpool.nn.modules.torch.nir.to_nir(module)`` with each recurrent ``LIFTorch``'s weights kept.

    Args:
        module: a Rockpool torch module (e.g. ``Sequential(LinearTorch, LIFTorch(has_rec=True), ...)``).
        sample_data, model_name: passed to Rockpool's ``to_nir``.

    Returns:
        a ``nir.NIRGraph``: Rockpool's graph, where every ``LIFTorch`` with ``has_rec=True`` is the nested
        recurrent form Rockpool's ``from_nir`` reads, and the ``Input``/``Output`` types are per sample.

    Raises:
        UnsupportedLayerError: naming the module, for what Rockpool's writer would drop or cannot write
            and a NIR graph cannot hold: a ``LIFTorch`` with a nonzero ``bias`` (Rockpool writes
            ``v_leak = 0``) or ``noise_std`` (a random membrane drive), or more than one synapse per
            neuron; a ``LIFTorch`` whose node is missing from Rockpool's graph.
    """
    import nir
    from rockpool.nn.modules import LIFTorch
    from rockpool.nn.modules.torch.nir import to_nir

    for name, mod in module.named_modules():
        if type(mod) is not LIFTorch:  # noqa: E721  (Rockpool's writer maps the exact type)
            continue
        where = f"Rockpool module {name or type(mod).__name__!r} (LIFTorch)"
        if int(mod.n_synapses) != 1:
            raise UnsupportedLayerError(f"{where}: {int(mod.n_synapses)} synapses per neuron; NIR's CubaLIF (and "
                                        "Rockpool's to_nir) has one current per neuron")
        if bool(np.any(mod.bias.detach().cpu().numpy() != 0)):
            raise UnsupportedLayerError(f"{where}: bias ≠ 0 is not written (Rockpool's to_nir writes v_leak = 0)")
        if float(mod.noise_std) != 0.0:
            raise UnsupportedLayerError(f"{where}: noise_std = {float(mod.noise_std):g} (a random membrane drive) "
                                        "has no NIR field and no integer equivalent")
    graph = to_nir(module, sample_data, model_name=model_name)
    nodes = dict(graph.nodes)
    for name, mod in module.named_modules():
        if type(mod) is not LIFTorch or not bool(mod._has_rec):  # noqa: E721
            continue
        if not isinstance(nodes.get(name), nir.CubaLIF):
            raise UnsupportedLayerError(f"Rockpool module {name!r} (LIFTorch, has_rec): Rockpool's to_nir wrote no "
                                        f"CubaLIF node {name!r} for it (nodes: {sorted(nodes)})")
        nodes[name] = _recurrent_node(nodes[name], mod.w_rec.detach().cpu().numpy().astype(np.float64),
                                      int(mod.size_out))
    for key, node in nodes.items():  # per-sample types: Rockpool writes [1, N] (and [1, 1, N] for the Output)
        if isinstance(node, nir.Input):
            nodes[key] = nir.Input(input_type={"input": np.array([int(module.size_in)], dtype=np.int64)})
        elif isinstance(node, nir.Output):
            nodes[key] = nir.Output(output_type={"output": np.array([int(module.size_out)], dtype=np.int64)})
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=dict(getattr(graph, "metadata", None) or {}))
