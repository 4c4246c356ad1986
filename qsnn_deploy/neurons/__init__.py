"""Neuron kinds: one module each (parameters, equation, validation, state bound, reference step).

A frozen layer (:class:`qsnn_deploy.frozen.Layer`) is a synapse plus one of these neurons. Every
backend looks the neuron up by ``kind`` in its own kernel table and refuses a kind it does not
run, by name, with the reason (:func:`qsnn_deploy.simulators.base.kernel_for`).

Adding a kind: one module here (a :class:`~.base.NeuronParams` dataclass with its equation in the
docstring, ``validate``, ``state_bound``, ``reference_step``, and, where Numba kernels run it, its
one-neuron step beside ``reference_step``, as :func:`~.lif.lif_kernel_step`), one line in
:data:`NEURON_KINDS`, and one kernel per backend that runs it, each tested against ``reference_step``.
"""
from __future__ import annotations

from ..errors import FrozenNetError
from .base import NeuronParams, decay_toward_zero, saturate
from .cuba import CubaLIF
from .lif import LIF
from .xylo import XyloNeuron, xylo_decay

#: kind name -> parameter class
NEURON_KINDS: dict[str, type[NeuronParams]] = {cls.kind: cls for cls in (LIF, CubaLIF, XyloNeuron)}


def neuron_class(kind: str, layer: str = "") -> type[NeuronParams]:
    """The parameter class of neuron ``kind``; :class:`FrozenNetError` naming the known kinds otherwise."""
    try:
        return NEURON_KINDS[kind]
    except (KeyError, TypeError):
        raise FrozenNetError(layer or "?", "neuron.kind", f"unknown neuron kind {kind!r}; known: "
                             f"{', '.join(sorted(NEURON_KINDS))}") from None


__all__ = ["NeuronParams", "LIF", "CubaLIF", "XyloNeuron", "xylo_decay", "NEURON_KINDS", "neuron_class", "decay_toward_zero", "saturate"]
