"""Install Intel Lava (lava-nc 0.10.0, lava-dl 0.6.0) on Python 3.11 / numpy 2 and fix it in place.

Why this script exists (see ../shared/FACTS.md and docs/lava.md):

* lava-nc 0.10.0 and lava-dl 0.6.0 declare ``Python <3.11`` and pin old torch / numpy / torchvision.
  They are pure Python, so they are installed with ``--no-deps --ignore-requires-python`` and
  their real run-time needs are installed separately (pinned in requirements/constraints.txt).
* Three lines of Lava do not run on Python 3.11 / numpy 2 / a machine without torchvision; this
  script rewrites them in the installed copy. Each patch is idempotent (a second run changes
  nothing) and refuses to touch a file whose text it does not recognise:

  1. ``lava/magma/compiler/var_model.py``: dataclass fields with a mutable default
     ``ByteEncoder()`` are an error on Python 3.11 -> ``field(default_factory=ByteEncoder)``.
  2. ``lava/lib/dl/slayer/__init__.py``: ``from . import object_detection`` imports torchvision
     eagerly; the registry's torchvision does not load with CPU torch and is not installed. The
     import is made optional (``slayer.obd`` is None when torchvision is unusable); nothing
     qsnn-deploy uses (netx, slayer.neuron) needs it.
  3. ``lava/magma/core/process/ports/ports.py``: ``np.reshape(..., newshape=...)`` fails in
     numpy 2.x (a netx network with a flatten layer crashes in a Lava child process); replaced by
     a positional reshape that works with numpy 1.26 and 2.x.

Usage: ``python tools/install_lava.py [--pip "python -m pip install -c requirements/constraints.txt"]``
or ``python tools/install_lava.py --patch-only``.
"""
from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

LAVA_PACKAGES = ["lava-nc==0.10.0", "lava-dl==0.6.0"]
# What Lava really imports at run time (its declared pins are for Python <3.11).
LAVA_RUNTIME_DEPS = ["asteval<0.10", "scipy", "scikit-learn", "h5py", "matplotlib", "networkx"]

_BYTE_FIELD = re.compile(r"^(\s+\w+): ByteEncoder = ByteEncoder\(\)$", re.M)
_RESHAPE_HELPER = (
    "\n\ndef _qsnn_reshape(data, shape):\n"
    "    \"\"\"np.reshape with a positional shape (numpy 1.26 and 2.x); patched in by qsnn-deploy.\"\"\"\n"
    "    return np.reshape(data, shape)\n"
)


def _patch_var_model(text: str) -> str:
    if "ByteEncoder = ByteEncoder()" not in text:
        return text
    text = _BYTE_FIELD.sub(r"\1: ByteEncoder = field(default_factory=ByteEncoder)", text)
    return text.replace("from dataclasses import dataclass, InitVar",
                        "from dataclasses import dataclass, InitVar, field", 1)


def _patch_slayer_init(text: str) -> str:
    old = "from . import object_detection as obd\n"
    if "patched by qsnn-deploy" in text or old not in text:
        return text
    new = ("try:  # patched by qsnn-deploy: object_detection needs torchvision, which is optional\n"
           "    from . import object_detection as obd\n"
           "except Exception:  # noqa: BLE001 - a broken torchvision raises more than ImportError\n"
           "    obd = None\n")
    return text.replace(old, new, 1)


def _patch_ports(text: str) -> str:
    if "newshape=" not in text:  # also true once patched
        return text
    text = text.replace("ft.partial(np.reshape, newshape=self.shape)",
                        "ft.partial(_qsnn_reshape, shape=self.shape)")
    text = text.replace("ft.partial(np.reshape, newshape=self.old_shape)",
                        "ft.partial(_qsnn_reshape, shape=self.old_shape)")
    if "_qsnn_reshape(data, shape)" not in text:
        text = text.rstrip("\n") + "\n" + _RESHAPE_HELPER
    return text


PATCHES = {
    ("lava-nc", "lava/magma/compiler/var_model.py"): (_patch_var_model, "ByteEncoder = ByteEncoder()"),
    ("lava-dl", "lava/lib/dl/slayer/__init__.py"): (_patch_slayer_init, "\nfrom . import object_detection"),
    ("lava-nc", "lava/magma/core/process/ports/ports.py"): (_patch_ports, "newshape="),
}


def patch_installed() -> list[str]:
    """Apply every patch to the installed Lava; returns one line per file (patched / already fine)."""
    lines = []
    for (dist, rel), (patch, marker) in PATCHES.items():
        try:
            path = Path(metadata.distribution(dist).locate_file(rel))
        except metadata.PackageNotFoundError:
            raise SystemExit(f"install_lava: {dist} is not installed; run without --patch-only")
        if not path.is_file():
            raise SystemExit(f"install_lava: {path} not found; is {dist} the tested version?")
        text = path.read_text()
        new = patch(text)
        if marker in new:
            raise SystemExit(f"install_lava: could not patch {path} (unrecognised text near {marker!r})")
        if new != text:
            path.write_text(new)
            for cache in path.parent.glob(f"__pycache__/{path.stem}.*.pyc"):
                cache.unlink()
            lines.append(f"patched {rel}")
        else:
            lines.append(f"ok      {rel}")
    return lines


def _installed(requirement: str) -> bool:
    name, _, version = requirement.partition("==")
    try:
        return metadata.version(name) == version
    except metadata.PackageNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pip", default=f"{shlex.quote(sys.executable)} -m pip install -q "
                    "--disable-pip-version-check -c requirements/constraints.txt",
                    help="pip command prefix (default: this Python, with the project's constraints)")
    ap.add_argument("--patch-only", action="store_true", help="only patch an installed Lava")
    args = ap.parse_args(argv)
    if not args.patch_only:
        pip = shlex.split(args.pip)
        subprocess.run(pip + LAVA_RUNTIME_DEPS, check=True)
        if not all(_installed(r) for r in LAVA_PACKAGES):
            subprocess.run(pip + ["--no-deps", "--ignore-requires-python"] + LAVA_PACKAGES, check=True)
    for line in patch_installed():
        print("install_lava:", line)
    check = "import lava.lib.dl.netx, lava.proc.lif.models; print('install_lava: lava imports fine')"
    return subprocess.run([sys.executable, "-c", check]).returncode


if __name__ == "__main__":
    sys.exit(main())
