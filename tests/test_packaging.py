"""Packaging: compatible ranges in pyproject.toml, exact pins only in requirements/constraints.txt,
py.typed shipped, Lava as an extra."""
from __future__ import annotations

import re
import tomllib

import pytest

from conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]


def _name(requirement: str) -> str:
    """PEP 503 normalised distribution name of a requirement string."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert name, f"cannot read a name from {requirement!r}"
    return re.sub(r"[-_.]+", "-", name.group(1)).lower()


def _constraints() -> dict[str, str]:
    """name -> specifier of every line of requirements/constraints.txt."""
    out = {}
    for line in (REPO / "requirements" / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name = _name(line)
            assert name not in out, f"constraints.txt names {name} twice"
            out[name] = line
    return out


ALL_REQUIREMENTS = [("dependencies", r) for r in PROJECT["dependencies"]] + [
    (f"optional-dependencies.{extra}", r) for extra, reqs in PROJECT["optional-dependencies"].items() for r in reqs]


def test_project_dependencies_are_ranges_not_pins():
    pinned = [f"{where}: {r}" for where, r in ALL_REQUIREMENTS if "==" in r or "===" in r]
    assert not pinned, f"exact pins belong in requirements/constraints.txt, not pyproject.toml: {pinned}"
    assert PROJECT["dependencies"], "no dependencies read"


def test_every_dependency_is_pinned_in_constraints():
    pins = _constraints()
    unpinned = sorted({_name(r) for _, r in ALL_REQUIREMENTS} - {n for n, spec in pins.items() if "==" in spec})
    assert not unpinned, f"pin these in requirements/constraints.txt (the tested versions): {unpinned}"


def test_constraints_keep_the_tested_pins():
    """Everything pinned before ranges moved into pyproject.toml is still pinned (make uses this file)."""
    pins = _constraints()
    for name, version in {"torch": "2.13.0", "snntorch": "1.0.0", "brevitas": "0.13.4", "nir": "1.0.8",
                          "nirtorch": "2.6", "onnx": "1.23.2", "onnxruntime": "1.32.0", "numpy": "2.4.6",
                          "numba": "0.68.1", "lava-nc": "0.10.0", "lava-dl": "0.6.0", "asteval": "0.9.33",
                          "tonic": "1.7.0", "aedat": "2.3.0", "jsonschema": "4.26.0"}.items():
        assert pins.get(name) is not None and pins[name].endswith(f"=={version}"), (name, pins.get(name))
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "-c requirements/constraints.txt" in makefile


def test_installed_versions_satisfy_the_ranges():
    """The pinned versions this machine runs are inside pyproject's ranges (the ranges are not fiction)."""
    from importlib import metadata

    packaging = pytest.importorskip("packaging.requirements")
    for where, text in ALL_REQUIREMENTS:
        req = packaging.Requirement(text)
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            continue  # an extra this machine does not use
        assert req.specifier.contains(version, prereleases=True), f"{where}: installed {req.name} {version} is outside {text!r}"


def test_lava_extra_and_py_typed():
    lava = {_name(r) for r in PROJECT["optional-dependencies"]["lava"]}
    assert {"asteval", "scipy", "scikit-learn", "networkx", "h5py"} <= lava
    assert not lava & {"lava-nc", "lava-dl"}  # they declare Python <3.11: tools/install_lava.py installs them
    assert (REPO / "qsnn_deploy" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["qsnn_deploy"]
