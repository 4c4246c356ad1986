"""The stand-alone Lava recipe written beside every ``.net`` (``qsnn-export --target lava``), and how a
custom-route layer is kept from running silently on stock netx.

* :func:`write_recipe` writes ``run_<stem>.py``: the template :mod:`.recipe_script` with its settings
  block filled from the file (:func:`~.recipe_script.read_settings`). The script loads the file with
  lava-dl's ``netx.hdf5.Network`` and runs it with Lava's own ``RingBuffer`` source and sinks
  (docs/lava.md, "Running the .net on Loihi 2").
* **Custom route.** A ``custom`` layer (qsnn-deploy's ``QLIF``: subtract reset, per-channel θ, any F;
  ``QCUBA`` for a current-based layer) is written with ``neuron/type = "QSNN_QLIF"`` (``"QSNN_QCUBA"``;
  :data:`CUSTOM_NEURON_TYPES`) and a ``bias`` dataset
  that holds, as text, the reason and what to do. lava-dl 0.6.0's ``hdf5.Network`` reads a block's
  ``bias`` with ``astype(int)`` (``netx/utils.py`` ``NetDict``, ``copy_keys``) before it builds the
  neuron, so stock netx stops with ``ValueError: invalid literal for int() with base 10: b"layer conv1
  is qsnn-deploy's custom route ..."``; were the bias read later, the unknown neuron type would still
  stop it (``get_neuron_params`` has no branch for it and returns None, and the block's
  ``neuron_params.pop`` raises ``AttributeError``). Nothing runs. qsnn-deploy's own builds enter
  :func:`netx_reads_custom_layers`, which lets netx read such a block as a CUBA one (the neuron is
  then replaced by QLIF, and QLIF takes θ, b, d from the block's ``qsnn`` group).

The exact per-channel bias of a custom layer lives, as before, in its ``qsnn/bias`` (state units).
"""
from __future__ import annotations

import contextlib
import pprint
import re
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

from ..errors import QSNNError
from ..fileio import write_text_atomic
from . import recipe_script
from .recipe_script import CUSTOM_NEURON_TYPE, CUSTOM_NEURON_TYPES, CUSTOM_PROCESSES, RecipeError, read_settings

__all__ = ["CUSTOM_NEURON_TYPE", "CUSTOM_NEURON_TYPES", "custom_bias_message", "netx_reads_custom_layers", "qlif_netx_build",
           "recipe_path", "write_recipe", "check_netx_file"]

_SETTINGS_BLOCK = re.compile(r"^# ==== settings:.*?^# ==== end of settings ====$", re.S | re.M)


def custom_bias_message(layer: str, reasons: list[str], kind: str = "lif") -> str:
    """The text a custom layer's netx ``bias`` holds: stock netx's error message when it loads the file
    (``kind``: the neuron kind, which names the process it needs: QLIF or QCUBA)."""
    # the first two reasons only: Python's int() quotes at most 200 characters of the text in its error
    short = [r.split(" (")[0] for r in reasons]
    why = "; ".join(short[:2]) + (f"; {len(short) - 2} more" if len(short) > 2 else "") or "not a stock Loihi 2 neuron"
    text = (f"layer {layer} is qsnn-deploy's custom route ({why}): it needs the {CUSTOM_PROCESSES[kind]} process, not a stock "
            f"netx/Loihi 2 neuron. Run the file with the run_*.py script qsnn-export wrote beside it, or "
            f"qsnn-verify FILE --backends lava; or train with qsnn-train --profile loihi for a stock net")
    for a, b in (("≥", ">="), ("≤", "<="), ("×", "x"), ("θ", "theta"), ("β", "beta"), ("−", "-"), ("…", "...")):
        text = text.replace(a, b)
    return text.encode("ascii", "replace").decode("ascii")  # an HDF5 ASCII string (netx decodes ASCII)


def recipe_path(net_path: str | Path) -> Path:
    """Where the recipe for ``net_path`` goes: ``run_<stem>.py`` in the same folder."""
    net_path = Path(net_path)
    return net_path.with_name(f"run_{net_path.stem}.py")


def check_netx_file(path: str | Path, hardware: bool = False) -> dict[str, Any]:
    """:func:`~.recipe_script.read_settings` with qsnn-deploy's error type: the run settings of the file,
    or a :class:`~qsnn_deploy.errors.QSNNError` naming the layer and field that is wrong."""
    try:
        return read_settings(path, hardware=hardware)
    except RecipeError as exc:
        raise QSNNError(str(exc)) from None


def write_recipe(net_path: str | Path, script: str | Path | None = None) -> Path:
    """Write the stand-alone Lava recipe for the ``.net`` at ``net_path`` (atomic; executable).

    Args:
        net_path: a file written by :func:`~qsnn_deploy.lava.export.write_netx`.
        script: where to write it (default :func:`recipe_path`); the script finds the ``.net`` by
            its name in the script's own folder (``--net`` overrides).

    Returns:
        the script's path.
    """
    net_path = Path(net_path)
    script = Path(script) if script is not None else recipe_path(net_path)
    settings = check_netx_file(net_path)
    src = Path(recipe_script.__file__).read_text(encoding="utf-8")
    block = ("# ==== settings: filled from the .net file by qsnn-export; read_settings() checks them against it ====\n"
             f"NET_FILE = {net_path.name!r}   # the .net file beside this script\n"
             f"SETTINGS = {pprint.pformat(settings, width=100, sort_dicts=False)}\n"
             "# ==== end of settings ====")
    text, count = _SETTINGS_BLOCK.subn(lambda _: block, src, count=1)
    if count != 1:  # pragma: no cover - the template is part of the package
        raise QSNNError("the recipe template lost its settings block (qsnn_deploy/lava/recipe_script.py)")
    text = text.replace("NET_FILE in Intel Lava", f"{net_path.name} in Intel Lava", 1).replace(
        "THIS_SCRIPT", script.name)
    write_text_atomic(script, text)
    script.chmod(script.stat().st_mode | 0o111)
    return script


@contextlib.contextmanager
def netx_reads_custom_layers(hdf5: ModuleType) -> Iterator[None]:
    """While netx builds a network from a qsnn file: read a ``QSNN_QLIF`` neuron group as CUBA (so
    that a neuron factory the caller installed, e.g. QLIF, is called) and its text ``bias`` as no
    bias. Stock netx refuses both (module docstring); outside this context nothing is changed."""
    from lava.lib.dl.netx.utils import NetDict

    network = hdf5.Network
    stock_params = network.__dict__["get_neuron_params"]
    stock_getitem = NetDict.__getitem__

    def get_neuron_params(neuron_config, *args, **kwargs):
        if neuron_config["type"] in CUSTOM_NEURON_TYPES.values():
            neuron_config = {"type": "CUBA", **{k: neuron_config[k] for k in ("iDecay", "vDecay", "vThMant")}}
        return stock_params.__func__(neuron_config, *args, **kwargs)

    def getitem(self, key):
        if key == "bias" and key in self.f and self.f[key].dtype.kind in "SOU":
            return None  # a custom layer's message; its bias is qsnn/bias, which QLIF takes
        return stock_getitem(self, key)

    network.get_neuron_params = staticmethod(get_neuron_params)
    NetDict.__getitem__ = getitem
    try:
        yield
    finally:
        network.get_neuron_params = stock_params
        NetDict.__getitem__ = stock_getitem


@contextlib.contextmanager
def qlif_netx_build(hdf5: ModuleType, path: str | Path, reset_interval: int, steps: int) -> Iterator[list]:
    """For the recipe script: while netx builds ``path``'s network with ``reset_interval`` R for T =
    ``steps``, build every custom-route layer as qsnn-deploy's ``QLIF`` (held silent outside its window
    of each R-step period, exactly as the ``lava`` backend's netx build does) and every stock layer as
    netx's own ``LIFReset``. Yields the (process, netx parameters) list netx built."""
    from .backend import _neuron_factory
    from .export import read_layer_specs
    from .models import QLIF

    _, specs = read_layer_specs(path)
    window = int(steps) + len(specs)
    with _neuron_factory(hdf5, QLIF, specs, period=int(reset_interval), window=window, steps=int(steps)) as made:
        yield made
