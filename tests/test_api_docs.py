"""docs/api.md names only objects and parameters that exist.

Every ``### `dotted.name``` heading of the page must import, and the signature shown in the Python
block under it must use only parameter names the real signature has (checked with
:func:`inspect.signature`) and list every required one. A ``...`` stands for further keyword options.
"""
from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"
HEADING = re.compile(r"^### `([\w.]+)`\s*$")


def _entries() -> list[tuple[str, str | None]]:
    """(dotted name, the code block's signature text or None) per heading."""
    lines = API_PAGE.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        m = HEADING.match(line)
        if not m:
            continue
        block = None
        if i + 1 < len(lines) and lines[i + 1].startswith("```python"):
            end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
            block = "\n".join(lines[i + 2:end])
        out.append((m.group(1), block))
    return out


def _resolve(dotted: str):
    """The object ``dotted`` names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for k in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ModuleNotFoundError as e:
            if e.name and e.name.split(".")[0] == "lava":
                pytest.skip("needs Lava")
            continue
        try:
            for attr in parts[k:]:
                obj = getattr(obj, attr)
        except AttributeError:
            continue
        return obj
    raise ImportError(f"docs/api.md names {dotted}, which does not import")


def _split_top_level(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _listed(block: str) -> tuple[str, list[str]]:
    """(callable name, parameter names) of the first call in ``block``."""
    start = block.index("(")
    depth = 0
    for j in range(start, len(block)):
        depth += block[j] == "("
        depth -= block[j] == ")"
        if depth == 0:
            break
    name = block[:start].strip()
    names = []
    for part in _split_top_level(block[start + 1:j]):
        if part in ("...", "*", "/"):
            continue
        names.append(part.split("=")[0].strip().lstrip("*"))
    return name, names


ENTRIES = _entries()


def test_page_has_entries():
    assert len(ENTRIES) >= 20
    assert "qsnn_deploy.freeze" in {n for n, _ in ENTRIES}
    assert "qsnn_deploy.verify.VerifyReport" in {n for n, _ in ENTRIES}


@pytest.mark.parametrize("dotted,block", ENTRIES, ids=[n for n, _ in ENTRIES])
def test_entry_matches_the_code(dotted, block):
    obj = _resolve(dotted)
    if block is None:
        return
    name, listed = _listed(block)
    assert name == dotted.rsplit(".", 1)[-1], f"{dotted}: the block shows {name}(...)"
    sig = inspect.signature(obj)
    real = {p.name: p for p in sig.parameters.values()}
    unknown = [p for p in listed if p not in real]
    assert not unknown, f"{dotted}: docs/api.md lists parameters the code does not have: {unknown}"
    required = [p.name for p in real.values() if p.default is p.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    absent = [p for p in required if p not in listed]
    assert not absent, f"{dotted}: docs/api.md omits required parameters: {absent}"
