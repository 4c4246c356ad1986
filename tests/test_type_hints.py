"""Every public function and method of qsnn_deploy annotates its parameters and its return (the code standard
"type hints on public functions").

Public as in :mod:`test_docstrings`: no leading underscore, defined in the module being checked, including the
methods, class/static methods and properties (their getter) of public classes. ``self``/``cls`` and ``__init__``'s
return are exempt. The annotations are postponed (``from __future__ import annotations``), so types of optional
packages sit under ``TYPE_CHECKING``; this test checks that each is written, not that it resolves at run time.
"""
from __future__ import annotations

import inspect
import types

import pytest
from test_docstrings import _import, _member_functions, _modules


def _unannotated(qualname: str, fn) -> list[str]:
    """``qualname(param)`` for each parameter without an annotation, ``qualname -> ?`` for a missing return."""
    if isinstance(fn, property):
        fn = fn.fget
    sig = inspect.signature(fn)
    missing = [f"{qualname}({p.name})" for i, p in enumerate(sig.parameters.values())
               if p.annotation is inspect.Parameter.empty and not (i == 0 and p.name in ("self", "cls"))]
    if sig.return_annotation is inspect.Signature.empty and fn.__name__ != "__init__":
        missing.append(f"{qualname} -> ?")
    return missing


def _missing_hints(module: types.ModuleType) -> list[str]:
    missing = []
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj):
            for mname, member in _member_functions(obj):
                missing += _unannotated(f"{module.__name__}.{name}.{mname}", member)
        elif inspect.isfunction(obj):
            missing += _unannotated(f"{module.__name__}.{name}", obj)
    return missing


@pytest.mark.parametrize("module_name", _modules())
def test_public_functions_have_type_hints(module_name):
    missing = _missing_hints(_import(module_name))
    assert not missing, "public functions without type hints:\n  " + "\n  ".join(missing)


def test_the_check_catches_a_missing_hint():
    mod = types.ModuleType("fake_mod", "A module.")

    class Thing:
        def method(self, a: int, b) -> int:
            return a

        @property
        def size(self):
            return 1

        @staticmethod
        def make(n: int):
            return n

        def fine(self, a: int) -> int:
            return a

    def f(x: int, *args, **kwargs: int) -> None:
        pass

    for obj in (Thing, f):
        obj.__module__ = "fake_mod"
        setattr(mod, obj.__name__, obj)
    assert sorted(_missing_hints(mod)) == ["fake_mod.Thing.make -> ?", "fake_mod.Thing.method(b)",
                                           "fake_mod.Thing.size -> ?", "fake_mod.f(args)"]
