"""What the installer scripts share: the requirements of one of qsnn-deploy's optional extras."""
from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def extra_requirements(extra: str, tool: str) -> list[str]:
    """Requirements of qsnn-deploy's ``extra``: from the installed package's metadata, else from
    ``pyproject.toml`` next to ``tools/``. Exits with a message prefixed by ``tool`` when neither has it."""
    try:
        reqs = metadata.requires("qsnn-deploy") or []
    except metadata.PackageNotFoundError:
        reqs = []
    marker = re.compile(r"""\s*;\s*extra\s*==\s*['"]""" + re.escape(extra) + r"""['"]\s*$""")
    found = [marker.sub("", r) for r in reqs if marker.search(r)]
    if found:
        return found
    try:
        return list(tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"][extra])
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise SystemExit(f"{tool}: cannot read the {extra!r} extra from the installed qsnn-deploy or {PYPROJECT}: "
                         f"{type(exc).__name__}: {exc}") from None
