"""Torch modules for deploy-faithful training: :class:`QLeaky`, :class:`QSynaptic` and :class:`QSequential`."""
from .blocks import SUPPORTED, Block, parse_blocks
from .neuron import QLeaky, QNeuron
from .sequential import QSequential
from .synaptic import QSynaptic
from .xylo import QXylo, XyloLinear

__all__ = ["QLeaky", "QSynaptic", "QXylo", "XyloLinear", "QNeuron", "QSequential", "Block", "parse_blocks", "SUPPORTED"]
