"""One constraint of a hardware target, checked on one layer: what the targets' fit checks
(:mod:`qsnn_deploy.lava.check` for Loihi 2, :mod:`qsnn_deploy.xylo.check` for SynSense Xylo) are made of."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Check:
    """One constraint of one layer: the field, its value, the limit and whether it holds.

    ``blocking`` False marks an informational check (e.g. a state that may saturate, which the reference
    does identically): it is reported but does not make the layer unfit."""

    field: str
    value: Any
    limit: str
    ok: bool
    why: str = ""
    blocking: bool = True
