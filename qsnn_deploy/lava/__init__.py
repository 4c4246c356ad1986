"""The Lava / Loihi 2 target, one spoke: everything that knows about Lava lives here.

* :mod:`.check` — which layers fit stock Loihi 2 (Lava's ``LIF``/``LIFReset``) and which need the
  custom ``QLIF`` process; Loihi 2 limits, cores; also ``qsnn-report --target lava``.
* :mod:`.export` — ``qsnn-export --target lava``: the netx HDF5 (``.net``) file, and reading it back.
* :mod:`.recipe` / :mod:`.recipe_script` — the stand-alone ``run_<stem>.py`` written beside the
  ``.net`` (lava-dl's netx and Lava's RingBuffers alone; ``--check`` against the reference), the
  ``.net`` field checks every reader runs, and the custom-route marking stock netx refuses.
* :mod:`.margins` — per layer, how close each field comes to its Loihi 2 limit (``--margin-bits``).
* :mod:`.models` — the custom ``QLIF`` process and its ProcessModel, and the memory-mapped stream
  source / recorder processes.
* :mod:`.backend` — backend ``lava``: the ``.net`` file built by netx, compiled once, samples
  streamed through it in Lava's CPU simulator (``Loihi2SimCfg`` fixed point).
* :mod:`.lanes` — the default ``lanes`` build of that backend (netx blocks on Lava ``Sparse``
  synapses, several samples side by side, checked exact at build time).
* :mod:`.loihi_sim` — backend ``loihi``: a NumPy simulator of Lava's fixed-point rules and timing,
  compared with Lava raw spike for spike.

* :mod:`.compat` — the import-time patches Lava 0.10 needs on Python 3.11 / numpy 2 (installed
  Lava files are never edited).

Lava itself is optional: importing this package does not import Lava (``backend.import_lava``
does, with a clear error when it is missing). It installs :mod:`.compat`'s import hook, so that
every ``import lava`` after it (all of qsnn-deploy's live in this package) gets the patched modules.
"""
from . import compat as _compat

_compat.install()
