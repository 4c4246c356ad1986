"""tools/install_lava.py: each patch fixes its line, is idempotent, and the installed Lava is patched."""
from __future__ import annotations

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("install_lava", Path(__file__).resolve().parents[1] / "tools" / "install_lava.py")
install_lava = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install_lava)

VAR_MODEL = """from dataclasses import dataclass, InitVar

@dataclass
class CoreEncoder:
    x: ByteEncoder = ByteEncoder()
    y: ByteEncoder = ByteEncoder()
"""
SLAYER = "from . import io\nfrom . import object_detection as obd\n\n__all__ = ['io']\n"
PORTS = ("        return ft.partial(np.reshape, newshape=self.shape)\n"
         "        return ft.partial(np.reshape, newshape=self.old_shape)\n")


def test_each_patch_fixes_its_text_once():
    for patch, text, gone in ((install_lava._patch_var_model, VAR_MODEL, "ByteEncoder = ByteEncoder()"),
                              (install_lava._patch_slayer_init, SLAYER, "\nfrom . import object_detection"),
                              (install_lava._patch_ports, PORTS, "newshape=")):
        once = patch(text)
        assert gone not in once and once != text
        assert patch(once) == once  # idempotent
    ns: dict = {}
    exec(install_lava._patch_var_model(VAR_MODEL).replace("ByteEncoder)", "dict)").replace(
        ": ByteEncoder", ": dict"), ns)  # valid Python 3.11 dataclass now
    assert ns["CoreEncoder"]().x == {}
    ns = {"np": __import__("numpy"), "ft": __import__("functools")}
    body = install_lava._patch_ports("def f(self):\n" + PORTS.splitlines(True)[0])
    exec(body.replace("self.shape", "(2, 3)"), ns)
    assert ns["f"](None)(__import__("numpy").arange(6)).shape == (2, 3)  # numpy 1.26 and 2.x


def test_installed_lava_is_patched_and_imports():
    lines = install_lava.patch_installed()
    assert all(line.startswith("ok") for line in lines), lines  # make setup patched it already
    import lava.lib.dl.netx  # noqa: F401
    import lava.magma.compiler.var_model  # noqa: F401
