"""Install Intel Lava (lava-nc 0.10.0, lava-dl 0.6.0) for qsnn-deploy on Python 3.11 / numpy 2.

Why a script and not a pip extra (docs/lava.md, set-up):

* lava-nc 0.10.0 and lava-dl 0.6.0 declare ``Requires-Python <3.11`` and pin old torch / numpy /
  torchvision, so pip refuses them as dependencies of a Python 3.11 package. They are pure Python,
  so this script installs them with ``--no-deps --ignore-requires-python``; what they really
  import at run time is qsnn-deploy's ``lava`` extra (``pip install "qsnn-deploy[lava]"``), which
  this script installs first (from the installed qsnn-deploy's metadata, else from the
  pyproject.toml beside this folder).
* No installed file is edited. The three lines of Lava that do not run on Python 3.11 / numpy 2
  are patched in memory when they are imported, by ``qsnn_deploy.lava.compat`` (installed by
  ``import qsnn_deploy.lava``). An installed copy that an older version of this script edited in
  place is reinstalled from its wheel, so the files on disk are Lava's own again.

Usage: ``python tools/install_lava.py [--pip "python -m pip install -c requirements/constraints.txt"]``;
``python tools/install_lava.py --check`` only checks (exit 1 when Lava is missing, edited, or does
not import through qsnn-deploy). ``--patch-only``, from when this script edited the files, is kept
as an alias of ``--check``.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extras import extra_requirements  # noqa: E402

LAVA_PACKAGES = ["lava-nc==0.10.0", "lava-dl==0.6.0"]
#: The installed files the old version of this script rewrote (qsnn_deploy.lava.compat patches them in memory now).
PATCHED_FILES = [("lava-nc", "lava/magma/compiler/var_model.py"), ("lava-dl", "lava/lib/dl/slayer/__init__.py"),
                 ("lava-nc", "lava/magma/core/process/ports/ports.py")]


def lava_extra_requirements() -> list[str]:
    """Requirements of qsnn-deploy's ``lava`` extra (installed metadata, else pyproject.toml)."""
    return extra_requirements("lava", "install_lava")


def _installed(requirement: str) -> bool:
    name, _, version = requirement.partition("==")
    try:
        return metadata.version(name) == version
    except metadata.PackageNotFoundError:
        return False


def edited_files() -> list[str]:
    """Installed Lava files whose content differs from the hash in their wheel's RECORD (an older
    version of this script edited them in place); empty when Lava is untouched or not installed."""
    edited = []
    for dist_name, rel in PATCHED_FILES:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
        entry = next((f for f in dist.files or [] if f.as_posix() == rel), None)
        if entry is None or entry.hash is None or entry.hash.mode != "sha256":
            continue
        path = Path(entry.locate())
        if not path.is_file():
            edited.append(f"{path} (missing)")
            continue
        digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
        if digest != entry.hash.value:
            edited.append(str(path))
    return edited


def check() -> int:
    """0 when Lava is installed, unedited, and imports through qsnn-deploy's import-time patches."""
    missing = [r for r in LAVA_PACKAGES if not _installed(r)]
    if missing:
        print(f"install_lava: not installed: {', '.join(missing)}")
        return 1
    edited = edited_files()
    if edited:
        print("install_lava: edited in place (run this script without --check to reinstall them): " + ", ".join(edited))
        return 1
    print("install_lava: installed Lava files match their wheels (no file edited)")
    code = ("from qsnn_deploy.lava.backend import import_lava; import_lava(); "
            "print('install_lava: lava imports fine (patched at import time by qsnn_deploy.lava.compat)')")
    return subprocess.run([sys.executable, "-c", code]).returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pip", default=f"{shlex.quote(sys.executable)} -m pip install -q "
                    "--disable-pip-version-check -c requirements/constraints.txt",
                    help="pip command prefix (default: this Python, with the project's constraints)")
    ap.add_argument("--check", action="store_true", help="install nothing; check that Lava is installed, unedited, "
                                                         "and imports through qsnn-deploy")
    ap.add_argument("--patch-only", action="store_true", help=argparse.SUPPRESS)  # old name of --check
    args = ap.parse_args(argv)
    if args.patch_only:
        print("install_lava: --patch-only is no longer needed (Lava is patched at import time, no file is edited); "
              "running --check")
    if args.check or args.patch_only:
        return check()
    pip = shlex.split(args.pip)
    subprocess.run(pip + lava_extra_requirements(), check=True)
    edited = edited_files()
    if edited:
        print("install_lava: reinstalling Lava from its wheels; files edited by an older version of this script: "
              + ", ".join(edited))
    if edited or not all(_installed(r) for r in LAVA_PACKAGES):
        subprocess.run(pip + ["--no-deps", "--ignore-requires-python"] + (["--force-reinstall"] if edited else [])
                       + LAVA_PACKAGES, check=True)
    return check()


if __name__ == "__main__":
    sys.exit(main())
