"""Torch modules for deploy-faithful training: :class:`QLeaky` and :class:`QSequential`."""
from .blocks import SUPPORTED, Block, parse_blocks
from .neuron import QLeaky
from .sequential import QSequential

__all__ = ["QLeaky", "QSequential", "Block", "parse_blocks", "SUPPORTED"]
