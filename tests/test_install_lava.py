"""Lava without edited files: tools/install_lava.py only installs; qsnn_deploy.lava.compat patches
three modules at import time (each patch fixes its line, is idempotent, refuses unknown text, and
leaves the installed file untouched)."""
from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from qsnn_deploy.lava import compat

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


def _lava_installed() -> bool:
    return importlib.util.find_spec("lava") is not None and importlib.util.find_spec("lava.lib") is not None


def test_each_patch_fixes_its_text_once():
    for patch, text, gone in ((compat.patch_var_model, VAR_MODEL, "ByteEncoder = ByteEncoder()"),
                              (compat.patch_slayer_init, SLAYER, "\nfrom . import object_detection"),
                              (compat.patch_ports, PORTS, "newshape=")):
        once = patch(text)
        assert gone not in once and once != text
        assert patch(once) == once  # idempotent
    ns: dict = {}
    exec(compat.patch_var_model(VAR_MODEL).replace("ByteEncoder)", "dict)").replace(
        ": ByteEncoder", ": dict"), ns)  # valid Python 3.11 dataclass now
    assert ns["CoreEncoder"]().x == {}
    ns = {"np": __import__("numpy"), "ft": __import__("functools")}
    body = compat.patch_ports("def f(self):\n" + PORTS.splitlines(True)[0])
    exec(body.replace("self.shape", "(2, 3)"), ns)
    assert ns["f"](None)(__import__("numpy").arange(6)).shape == (2, 3)  # numpy 1.26 and 2.x
    assert [p.module for p in compat.LAVA_PATCHES] == ["lava.magma.compiler.var_model", "lava.lib.dl.slayer",
                                                        "lava.magma.core.process.ports.ports"]


@pytest.fixture
def fake_pkg(tmp_path, monkeypatch):
    """A package ``qsnnfake_<n>`` on sys.path with a module and a subpackage whose sources need a patch."""
    name = f"qsnnfake_{tmp_path.name.replace('-', '_')}"
    root = tmp_path / name
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "mod.py").write_text("VALUE = 'old'\ndef where():\n    raise RuntimeError('boom')\n")
    (root / "sub" / "__init__.py").write_text("VALUE = 'old'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, root
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def _finder(name: str, marker: str = "'old'") -> compat.PatchingFinder:
    fix = lambda text: text.replace("VALUE = 'old'", "VALUE = 'new'")  # noqa: E731
    return compat.PatchingFinder([compat.SourcePatch(f"{name}.mod", fix, marker, "test"),
                                  compat.SourcePatch(f"{name}.sub", fix, marker, "test")])


def test_finder_patches_in_memory_and_writes_nothing(fake_pkg, monkeypatch):
    name, root = fake_pkg
    before = {p: p.read_bytes() for p in root.rglob("*.py")}
    monkeypatch.setattr(sys, "meta_path", [_finder(name)] + sys.meta_path)
    mod = importlib.import_module(f"{name}.mod")
    sub = importlib.import_module(f"{name}.sub")
    assert mod.VALUE == "new" and sub.VALUE == "new"
    assert getattr(mod, compat.PATCHED_ATTR) is True and sub.__path__  # still a package
    assert {p: p.read_bytes() for p in root.rglob("*.py")} == before  # the files are untouched
    assert not list(root.rglob("mod.*.pyc")) and not (root / "sub" / "__pycache__").exists()  # no bytecode written
    with pytest.raises(RuntimeError) as info:  # tracebacks point at the real file
        mod.where()
    assert str(root / "mod.py") in "".join(__import__("traceback").format_tb(info.tb))


def test_finder_refuses_unrecognised_text_naming_the_file(fake_pkg, monkeypatch):
    name, root = fake_pkg
    (root / "mod.py").write_text("VALUE = 'changed upstream'\n# 'old' marker left\n")
    monkeypatch.setattr(sys, "meta_path", [_finder(name)] + sys.meta_path)
    with pytest.raises(compat.LavaPatchError, match=r"mod\.py: cannot patch .*unrecognised text"):
        importlib.import_module(f"{name}.mod")


def test_check_loaded_refuses_a_module_imported_before_the_hook(fake_pkg):
    name, root = fake_pkg
    importlib.import_module(f"{name}.mod")  # plain import: unpatched
    fix = lambda text: text.replace("VALUE = 'old'", "VALUE = 'new'")  # noqa: E731
    with pytest.raises(compat.LavaPatchError, match="imported before qsnn_deploy.lava"):
        compat.check_loaded([compat.SourcePatch(f"{name}.mod", fix, "'old'", "test")])
    compat.check_loaded([compat.SourcePatch(f"{name}.mod", lambda t: t, "'absent'", "test")])  # needs nothing: fine


def test_install_is_idempotent_and_qsnn_deploy_lava_installs_it():
    import qsnn_deploy.lava  # noqa: F401

    finder = compat.installed_finder()
    assert finder is not None and compat.install() is finder
    assert sum(isinstance(f, compat.PatchingFinder) and f is finder for f in sys.meta_path) == 1


@pytest.mark.skipif(not _lava_installed(), reason="Lava is not installed (python tools/install_lava.py)")
def test_installed_lava_is_unedited_and_imports_patched():
    """In a fresh process: Lava's files match their wheels before and after importing it through
    qsnn-deploy, and the three modules came from the patching loader."""
    assert install_lava.edited_files() == []
    code = ("import sys\nfrom qsnn_deploy.lava.backend import import_lava\nimport_lava()\n"
            "import lava.lib.dl.netx, lava.magma.compiler.var_model\n"
            "from qsnn_deploy.lava.compat import LAVA_PATCHES, PATCHED_ATTR\n"
            "print(','.join(str(getattr(sys.modules[p.module], PATCHED_ATTR)) for p in LAVA_PATCHES))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True,True,True"  # lava 0.10 as released: every patch applied in memory
    assert install_lava.edited_files() == []
    assert install_lava.check() == 0


@pytest.mark.skipif(not _lava_installed(), reason="Lava is not installed (python tools/install_lava.py)")
def test_bare_lava_import_first_is_a_clear_error():
    code = ("import lava.magma.core.process.ports.ports\n"  # unpatched: imports, but breaks later on numpy 2
            "from qsnn_deploy.lava.backend import import_lava, LavaUnavailableError\n"
            "try:\n    import_lava(); print('imported')\nexcept LavaUnavailableError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("refused:") and "imported before qsnn_deploy.lava" in out.stdout


def test_install_script_reads_the_lava_extra_and_only_installs(monkeypatch):
    reqs = install_lava.lava_extra_requirements()
    assert any(r.startswith("asteval") for r in reqs) and any(r.startswith("scipy") for r in reqs)
    calls = []
    monkeypatch.setattr(install_lava.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0))
    monkeypatch.setattr(install_lava, "_installed", lambda r: False)
    monkeypatch.setattr(install_lava, "edited_files", lambda: [])
    monkeypatch.setattr(install_lava, "check", lambda: 0)
    assert install_lava.main(["--pip", "pip install -c c.txt"]) == 0
    assert calls[0] == ["pip", "install", "-c", "c.txt"] + reqs
    assert calls[1] == ["pip", "install", "-c", "c.txt", "--no-deps", "--ignore-requires-python",
                        "lava-nc==0.10.0", "lava-dl==0.6.0"]
    assert not hasattr(install_lava, "patch_installed")  # it no longer edits files


def test_install_script_restores_files_an_old_version_edited(monkeypatch):
    calls = []
    monkeypatch.setattr(install_lava.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0))
    monkeypatch.setattr(install_lava, "_installed", lambda r: True)
    monkeypatch.setattr(install_lava, "edited_files", lambda: ["/x/lava/magma/compiler/var_model.py"])
    monkeypatch.setattr(install_lava, "check", lambda: 0)
    assert install_lava.main(["--pip", "pip install"]) == 0
    assert "--force-reinstall" in calls[1] and calls[1][-2:] == ["lava-nc==0.10.0", "lava-dl==0.6.0"]


@pytest.mark.skipif(not _lava_installed(), reason="Lava is not installed (python tools/install_lava.py)")
@pytest.mark.parametrize("method,ok", [("fork", True), ("spawn", False)])
def test_lava_imports_after_the_process_used_multiprocessing(method, ok):
    """Lava calls multiprocessing.set_start_method('fork') unforced at import: a process that used
    multiprocessing before (a tqdm bar's lock) crashed with 'context has already been set'."""
    code = (f"import multiprocessing as mp; mp.set_start_method({method!r}); mp.RLock()\n"
            "from qsnn_deploy.lava.backend import import_lava, LavaUnavailableError\n"
            "try:\n    import_lava(); print('imported')\nexcept LavaUnavailableError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if ok:
        assert out.stdout.strip() == "imported"
    else:
        assert out.stdout.startswith("refused:") and "'fork' start method" in out.stdout and "'spawn'" in out.stdout


def test_edited_files_compares_with_the_wheel_record(tmp_path, monkeypatch):
    import base64
    import hashlib
    from types import SimpleNamespace

    files = {}
    for dist, rel in install_lava.PATCHED_FILES:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {rel} as released\n")
        digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
        entry = SimpleNamespace(as_posix=lambda rel=rel: rel, hash=SimpleNamespace(mode="sha256", value=digest),
                                locate=lambda path=path: path)
        files.setdefault(dist, []).append(entry)
    monkeypatch.setattr(install_lava.metadata, "distribution", lambda name: SimpleNamespace(files=files[name]))
    assert install_lava.edited_files() == []
    edited = tmp_path / install_lava.PATCHED_FILES[2][1]
    edited.write_text(edited.read_text() + "# edited in place\n")
    assert install_lava.edited_files() == [str(edited)]
