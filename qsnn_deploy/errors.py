"""Error types of qsnn-deploy.

Every error raised on bad input names *where* the problem is (layer, field) and *which limit*
was broken, so that a user never has to read a traceback from deep inside a library.
"""
from __future__ import annotations


class QSNNError(Exception):
    """Base class of every error qsnn-deploy raises on purpose."""


class FrozenNetError(QSNNError, ValueError):
    """A frozen network (or a value going into one) breaks a rule of the integer format.

    Args:
        layer: name of the offending layer (or ``"input"`` / ``"net"``).
        field: the field of that layer, e.g. ``"weight"`` or ``"threshold"``.
        message: what is wrong and which limit applies.
    """

    def __init__(self, layer: str, field: str, message: str):
        self.layer = layer
        self.field = field
        super().__init__(f"layer {layer!r}, field {field!r}: {message}")


class UnsupportedLayerError(QSNNError, TypeError):
    """A torch module that :func:`qsnn_deploy.freeze` cannot translate."""


class UnsupportedNeuronError(QSNNError, ValueError):
    """A backend or target cannot run a layer's neuron kind (or its recurrent synapse).

    Args:
        layer: the layer's name.
        kind: the neuron kind (``"cuba"``, ``"recurrent lif"``...).
        target: the backend or export target that refuses it.
        reason: why, and what to do instead.
    """

    def __init__(self, layer: str, kind: str, target: str, reason: str):
        self.layer = layer
        self.kind = kind
        self.target = target
        self.reason = reason
        super().__init__(f"layer {layer!r}: {target} cannot run neuron kind {kind!r}: {reason}")


class CheckpointError(QSNNError, ValueError):
    """A checkpoint or frozen-network file is unreadable, truncated or unsafe."""


class TrainConfigError(QSNNError, ValueError):
    """A training configuration that cannot run (a field out of its range, options that exclude each other),
    refused before any weight is trained; the message names the field."""


class SaturationError(QSNNError, OverflowError):
    """A membrane state left its B_v-bit range while saturation was configured to raise."""


class QSNNWarning(UserWarning):
    """Something the user should know about that is not an error (e.g. a threshold clamped at freeze
    time). The command-line tools show these, as ``warning: ...`` lines, and silence library warnings."""


class SaturationWarning(QSNNWarning):
    """No proof keeps a layer's membrane state inside its B_v bits (:mod:`qsnn_deploy.statebound`):
    some input may clip it. ``qsnn-export`` prints these itself from the frozen net, whatever it was
    loaded from, and so ignores the copy ``freeze`` raises while loading a checkpoint."""
