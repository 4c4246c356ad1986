"""Lava 0.10 on Python 3.11 / numpy 2 without editing Lava's files: three modules are patched in
memory as they are imported.

lava-nc 0.10.0 and lava-dl 0.6.0 were released for Python < 3.11 and numpy 1.x. Three lines of
them do not run on Python 3.11 / numpy 2 / a machine without torchvision:

1. ``lava.magma.compiler.var_model`` (lava-nc): dataclass fields with a mutable default
   ``ByteEncoder()`` are an error on Python 3.11 -> ``field(default_factory=ByteEncoder)``.
2. ``lava.lib.dl.slayer`` (lava-dl, its ``__init__``): ``from . import object_detection``
   imports torchvision eagerly; a CPU torch without a matching torchvision cannot load it. The
   import is made optional (``slayer.obd`` is None then); nothing qsnn-deploy uses (netx,
   slayer.neuron) needs it.
3. ``lava.magma.core.process.ports.ports`` (lava-nc): ``np.reshape(..., newshape=...)`` fails on
   numpy 2.x (a netx network with a flatten layer crashes in a Lava child process) -> a positional
   reshape that works on numpy 1.26 and 2.x.

:func:`install` puts a :class:`PatchingFinder` first on :data:`sys.meta_path`. For exactly those
three module names it locates the installed source file as Python would, reads it, applies the
text patch and compiles the result; the file on disk, and its ``__pycache__``, are never
written. Each patch is idempotent (a source that is already fixed, by a newer Lava or by the old
``tools/install_lava.py`` that used to edit the files, is compiled unchanged) and refuses a source
whose text it does not recognise with :class:`LavaPatchError`, naming the file.

``qsnn_deploy.lava`` calls :func:`install` when it is imported, so every ``import lava`` of
qsnn-deploy (all of them live under ``qsnn_deploy.lava``) goes through it. Lava runs its
processes with the ``fork`` start method: the children inherit the patched modules already in
:data:`sys.modules` and the finder on :data:`sys.meta_path`. Importing this module does not import
Lava.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import linecache
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, ModuleType
from typing import Callable, Sequence

logger = logging.getLogger(__name__)

#: Attribute set on a module compiled by :class:`PatchingFinder`: True when its text was changed.
PATCHED_ATTR = "__qsnn_patched__"


class LavaPatchError(ImportError):
    """A Lava source file whose text a patch does not recognise (another Lava version), or a Lava
    module that was imported unpatched before :func:`install` ran."""


@dataclass(frozen=True)
class SourcePatch:
    """One idempotent text patch of one module's source.

    Attributes:
        module: dotted module name (``"lava.magma.compiler.var_model"``); a package's name patches
            its ``__init__.py``.
        apply: source text -> patched source text; returns the text unchanged when it needs no patch.
        marker: text that must not remain after ``apply``; if it does, the source is unrecognised.
        reason: one line: what the patch fixes.
    """

    module: str
    apply: Callable[[str], str]
    marker: str
    reason: str

    def patched(self, text: str, filename: str | Path) -> str:
        """``apply(text)``, or :class:`LavaPatchError` naming ``filename`` when the text is unrecognised."""
        new = self.apply(text)
        if self.marker in new:
            raise LavaPatchError(f"{filename}: cannot patch {self.module} for this Python/numpy ({self.reason}): "
                                 f"unrecognised text near {self.marker!r}; qsnn-deploy supports lava-nc 0.10.0 and "
                                 "lava-dl 0.6.0 (python tools/install_lava.py)", name=self.module, path=str(filename))
        return new


# ------------------------------------------------------------------------------------ the patches
_BYTE_FIELD = re.compile(r"^(\s+\w+): ByteEncoder = ByteEncoder\(\)$", re.M)
_RESHAPE_HELPER = (
    "\n\ndef _qsnn_reshape(data, shape):\n"
    "    \"\"\"np.reshape with a positional shape (numpy 1.26 and 2.x); patched in by qsnn-deploy.\"\"\"\n"
    "    return np.reshape(data, shape)\n"
)


def patch_var_model(text: str) -> str:
    """``x: ByteEncoder = ByteEncoder()`` -> ``x: ByteEncoder = field(default_factory=ByteEncoder)``."""
    if "ByteEncoder = ByteEncoder()" not in text:
        return text
    text = _BYTE_FIELD.sub(r"\1: ByteEncoder = field(default_factory=ByteEncoder)", text)
    return text.replace("from dataclasses import dataclass, InitVar",
                        "from dataclasses import dataclass, InitVar, field", 1)


def patch_slayer_init(text: str) -> str:
    """``from . import object_detection as obd`` -> the same import, with ``obd = None`` when it fails."""
    old = "from . import object_detection as obd\n"
    if "patched by qsnn-deploy" in text or old not in text:
        return text
    new = ("try:  # patched by qsnn-deploy: object_detection needs torchvision, which is optional\n"
           "    from . import object_detection as obd\n"
           "except Exception:  # noqa: BLE001 - a broken torchvision raises more than ImportError\n"
           "    obd = None\n")
    return text.replace(old, new, 1)


def patch_ports(text: str) -> str:
    """``ft.partial(np.reshape, newshape=s)`` -> ``ft.partial(_qsnn_reshape, shape=s)`` (positional reshape)."""
    if "newshape=" not in text:  # also true once patched
        return text
    text = text.replace("ft.partial(np.reshape, newshape=self.shape)",
                        "ft.partial(_qsnn_reshape, shape=self.shape)")
    text = text.replace("ft.partial(np.reshape, newshape=self.old_shape)",
                        "ft.partial(_qsnn_reshape, shape=self.old_shape)")
    if "_qsnn_reshape(data, shape)" not in text:
        text = text.rstrip("\n") + "\n" + _RESHAPE_HELPER
    return text


#: The three patches Lava 0.10 needs on Python 3.11 / numpy 2 (module docstring).
LAVA_PATCHES: tuple[SourcePatch, ...] = (
    SourcePatch("lava.magma.compiler.var_model", patch_var_model, "ByteEncoder = ByteEncoder()",
                "mutable dataclass default, an error on Python 3.11"),
    SourcePatch("lava.lib.dl.slayer", patch_slayer_init, "\nfrom . import object_detection",
                "object_detection imports torchvision eagerly"),
    SourcePatch("lava.magma.core.process.ports.ports", patch_ports, "newshape=",
                "np.reshape(newshape=...) fails on numpy 2"),
)


# ------------------------------------------------------------------------------------ the import hook
class PatchedSourceLoader(importlib.abc.InspectLoader):
    """Loads one module from its source file with a :class:`SourcePatch` applied; writes nothing."""

    def __init__(self, patch: SourcePatch, path: str, is_package: bool):
        self.patch, self.path, self._is_package = patch, path, is_package
        self._source: str | None = None
        self.changed = False

    def get_filename(self, fullname: str) -> str:
        """The module's source file (the installed, unmodified one)."""
        return self.path

    def is_package(self, fullname: str) -> bool:
        return self._is_package

    def get_source(self, fullname: str) -> str:
        """The patched source text (what the module runs; tracebacks and ``inspect`` show it)."""
        if self._source is None:
            text = Path(self.path).read_text(encoding="utf-8")
            self._source = self.patch.patched(text, self.path)
            self.changed = self._source != text
        return self._source

    def get_code(self, fullname: str) -> CodeType:
        return compile(self.get_source(fullname), self.path, "exec", dont_inherit=True)

    def exec_module(self, module: ModuleType) -> None:
        code = self.get_code(module.__name__)
        source = self._source or ""
        # tracebacks read the patched lines, not the file's (mtime None: linecache never reloads them)
        linecache.cache[self.path] = (len(source), None, source.splitlines(True), self.path)
        setattr(module, PATCHED_ATTR, self.changed)
        if self.changed:
            logger.debug("lava compat: %s compiled from %s with its patch (%s)", module.__name__, self.path,
                         self.patch.reason)
        exec(code, module.__dict__)


class PatchingFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that hands the modules named in ``patches`` to a :class:`PatchedSourceLoader`
    (found where Python's own path finder finds them) and leaves every other import alone."""

    def __init__(self, patches: Sequence[SourcePatch] = LAVA_PATCHES):
        self.patches = {p.module: p for p in patches}

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        """For a module named in ``patches`` and installed as a plain source file: its spec with a
        :class:`PatchedSourceLoader`; otherwise what Python's path finder says (None for other modules:
        the next finder is asked).
        """
        patch = self.patches.get(fullname)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec  # not installed (ImportError as usual), or not a plain source file: nothing to patch
        is_package = spec.submodule_search_locations is not None
        spec.loader = PatchedSourceLoader(patch, spec.origin, is_package)  # never reads or writes __pycache__
        return spec


def installed_finder() -> PatchingFinder | None:
    """The :class:`PatchingFinder` for Lava on :data:`sys.meta_path`, or None."""
    return next((f for f in sys.meta_path if isinstance(f, PatchingFinder) and
                 set(f.patches) == {p.module for p in LAVA_PATCHES}), None)


def install() -> PatchingFinder:
    """Put the Lava :class:`PatchingFinder` first on :data:`sys.meta_path` (once; a second call
    returns the same finder). Imports nothing; never raises. Modules imported before it ran are
    checked by :func:`check_loaded`."""
    finder = installed_finder()
    if finder is None:
        finder = PatchingFinder(LAVA_PATCHES)
        sys.meta_path.insert(0, finder)
    return finder


def check_loaded(patches: Sequence[SourcePatch] = LAVA_PATCHES) -> None:
    """Raise :class:`LavaPatchError` when a module in ``patches`` was imported without its patch
    (``import lava...`` ran before ``qsnn_deploy.lava`` was imported) and its installed source
    needs one. Modules not imported yet, or whose source needs nothing, pass."""
    for patch in patches:
        module = sys.modules.get(patch.module)
        if module is None or hasattr(module, PATCHED_ATTR):
            continue
        filename = getattr(module, "__file__", None)
        if not filename or not Path(filename).is_file():
            continue
        text = Path(filename).read_text(encoding="utf-8")
        if patch.patched(text, filename) != text:
            raise LavaPatchError(f"{patch.module} was imported before qsnn_deploy.lava and runs unpatched "
                                 f"({patch.reason}); import qsnn_deploy.lava (or qsnn_deploy.lava.backend) "
                                 "before any 'import lava' in this process", name=patch.module, path=filename)
