"""Every public module, function and class of qsnn_deploy has a docstring (issue 16, "Docs stand alone").

Public: no leading underscore, defined in the module being checked (re-exports are checked where
they are defined), including the methods, class/static methods and properties of public classes.
A method that overrides a documented base-class method inherits its documentation
(:func:`inspect.getdoc`). A dataclass without a docstring gets an automatic one that only repeats
its signature ("Name(a: int, ...)"): that counts as missing.

Modules that need an optional package that is not installed (Lava for ``qsnn_deploy.lava.models``,
the events extra) are skipped, not failed.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import qsnn_deploy

#: Top-level packages whose absence makes a module optional here (not a failure).
OPTIONAL_DEPENDENCIES = {"lava", "tonic", "aedat"}


def _modules():
    names = [qsnn_deploy.__name__]
    for info in pkgutil.walk_packages(qsnn_deploy.__path__, qsnn_deploy.__name__ + "."):
        names.append(info.name)
    return sorted(names)


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as e:
        missing = (getattr(e, "name", None) or "").split(".")[0]
        if missing in OPTIONAL_DEPENDENCIES:
            pytest.skip(f"{name} needs the optional package {missing!r}")
        raise


def _has_doc(doc: str | None) -> bool:
    return bool(doc and doc.strip())


def _class_doc_ok(cls: type) -> bool:
    doc = cls.__dict__.get("__doc__")
    if not _has_doc(doc):
        return False
    # dataclasses / namedtuples without a docstring get "Name(field: type, ...)" generated
    return not doc.strip().startswith(cls.__name__ + "(")


def _member_functions(cls: type):
    for name, raw in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(raw, (staticmethod, classmethod)):
            yield name, raw.__func__
        elif isinstance(raw, property):
            yield name, raw
        elif inspect.isfunction(raw):
            yield name, raw


def _undocumented(module) -> list[str]:
    missing = []
    if not _has_doc(module.__doc__):
        missing.append(f"{module.__name__} (module docstring)")
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj):
            if not _class_doc_ok(obj):
                missing.append(f"{module.__name__}.{name} (class)")
            for mname, member in _member_functions(obj):
                if not _has_doc(inspect.getdoc(member)):
                    missing.append(f"{module.__name__}.{name}.{mname}")
        elif inspect.isfunction(obj):
            if not _has_doc(obj.__doc__):
                missing.append(f"{module.__name__}.{name} (function)")
    return missing


@pytest.mark.parametrize("module_name", _modules())
def test_public_objects_have_docstrings(module_name):
    module = _import(module_name)
    missing = _undocumented(module)
    assert not missing, "public objects without a docstring:\n  " + "\n  ".join(missing)


def test_the_walk_finds_the_package():
    names = _modules()
    for expected in ("qsnn_deploy.freeze", "qsnn_deploy.verify", "qsnn_deploy.frozen",
                     "qsnn_deploy.simulators.numpy_sim", "qsnn_deploy.lava.export", "qsnn_deploy.report.metrics"):
        assert expected in names


def test_the_check_catches_a_missing_docstring():
    import dataclasses
    import types

    mod = types.ModuleType("fake_mod", "A module.")

    @dataclasses.dataclass
    class Bare:
        x: int

        @property
        def y(self):
            return self.x

    def f():
        pass

    for obj in (Bare, f):
        obj.__module__ = "fake_mod"
        setattr(mod, obj.__name__, obj)
    found = _undocumented(mod)
    assert "fake_mod.Bare (class)" in found
    assert "fake_mod.Bare.y" in found
    assert "fake_mod.f (function)" in found
