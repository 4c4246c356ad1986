"""tools/install_lava.py: each patch fixes its line, is idempotent, and the installed Lava is patched."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

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
    from qsnn_deploy.lava.backend import import_lava

    import_lava()  # the backend's import: works even when this process used multiprocessing before
    import lava.lib.dl.netx  # noqa: F401
    import lava.magma.compiler.var_model  # noqa: F401


@pytest.mark.parametrize("method,ok", [("fork", True), ("spawn", False)])
def test_lava_imports_after_the_process_used_multiprocessing(method, ok):
    """Lava calls multiprocessing.set_start_method('fork') unforced at import: a process that used
    multiprocessing before (a tqdm bar's lock) crashed with 'context has already been set'."""
    import subprocess
    import sys

    code = (f"import multiprocessing as mp; mp.set_start_method({method!r}); mp.RLock()\n"
            "from qsnn_deploy.lava.backend import import_lava, LavaUnavailableError\n"
            "try:\n    import_lava(); print('imported')\nexcept LavaUnavailableError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if ok:
        assert out.stdout.strip() == "imported"
    else:
        assert out.stdout.startswith("refused:") and "'fork' start method" in out.stdout and "'spawn'" in out.stdout
