"""The Numba kernels' cache folder follows every source file of the package (qsnn_deploy/numba_support.py):
Numba alone checks only the file defining a kernel, not the neuron steps it inlines from other
files, so an edit there would run stale machine code. Pinned here: the hash, the folder choice and
pruning, the wiring at import, and, end to end, that editing an inlined neuron step in a copy of the
package changes what the kernel computes in the next process."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import pytest

import qsnn_deploy
from qsnn_deploy import numba_support
from qsnn_deploy.numba_support import KEEP_OLD_CACHES, kernel_cache_dir, source_hash

PACKAGE = Path(qsnn_deploy.__file__).resolve().parent


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_source_hash_changes_with_any_source_file_and_only_then(tmp_path):
    root = _tree(tmp_path / "pkg", {"a.py": "x = 1\n", "sub/b.py": "y = 2\n", "notes.txt": "not code\n"})
    first = source_hash(root)
    assert source_hash(root) == first and len(first) == 16
    (root / "notes.txt").write_text("edited\n")
    assert source_hash(root) == first  # only *.py files count
    (root / "sub/b.py").write_text("y = 3\n")
    edited = source_hash(root)
    assert edited != first
    (root / "sub/c.py").write_text("")
    assert source_hash(root) not in (first, edited)  # a new file counts too
    (root / "sub/c.py").unlink()
    (root / "sub/b.py").write_text("y = 2\n")
    assert source_hash(root) == first  # the same sources, the same folder


def test_cache_dir_honours_numba_cache_dir_then_xdg_and_prunes_old_folders(tmp_path):
    root = _tree(tmp_path / "pkg", {"a.py": "x = 1\n"})
    user = tmp_path / "user-cache"
    folder = kernel_cache_dir(root, {"NUMBA_CACHE_DIR": str(user), "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert folder == user / f"qsnn-deploy-{source_hash(root)}" and folder.is_dir()
    folder = kernel_cache_dir(root, {"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert folder == tmp_path / "xdg" / "qsnn-deploy" / f"numba-{source_hash(root)}" and folder.is_dir()
    os.utime(folder, (1e9 - 1, 1e9 - 1))
    made = [folder]
    for k in range(KEEP_OLD_CACHES + 2):  # edits: one folder per source version, the oldest pruned
        (root / "a.py").write_text(f"x = {k + 2}\n")
        made.append(kernel_cache_dir(root, {"XDG_CACHE_HOME": str(tmp_path / "xdg")}))
        os.utime(made[-1], (1e9 + k, 1e9 + k))  # strictly increasing ages
    left = sorted(p.name for p in (tmp_path / "xdg" / "qsnn-deploy").iterdir())
    assert len(left) == KEEP_OLD_CACHES + 1
    assert made[-1].name in left and made[0].name not in left


def test_unwritable_locations_fall_back(tmp_path, monkeypatch):
    root = _tree(tmp_path / "pkg", {"a.py": "x = 1\n"})
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")  # nothing can be created under it
    monkeypatch.setattr(numba_support.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    folder = kernel_cache_dir(root, {"NUMBA_CACHE_DIR": str(blocked), "XDG_CACHE_HOME": str(blocked)})
    assert folder is not None and folder.is_relative_to(tmp_path / "tmp")


def test_every_kernel_caches_in_the_folder_of_these_sources_and_numba_keeps_its_setting():
    from qsnn_deploy.nn import fused_cuba_cpu, fused_lif_cpu, fused_xylo
    from qsnn_deploy.simulators import cuba_scan, event_synapse, lif_scan, recurrent_scan

    folder = kernel_cache_dir()
    assert folder.name.endswith(source_hash(PACKAGE))
    kernels = [m.__dict__[name] for m in (fused_cuba_cpu, fused_lif_cpu, fused_xylo, cuba_scan, event_synapse,
                                           lif_scan, recurrent_scan) for name in dir(m)
               if isinstance(m.__dict__.get(name), numba.core.registry.CPUDispatcher)
               and m.__dict__[name]._cache is not None and type(m.__dict__[name]._cache).__name__ != "NullCache"]
    declared = sum(p.read_text().count("@cached_kernel(") for p in PACKAGE.rglob("*.py"))
    assert len(kernels) == declared == 12, (kernels, declared)  # every cached kernel, in the modules above
    assert not any("cache=True" in p.read_text() for p in PACKAGE.rglob("*.py") if p.name != "numba_support.py")
    for k in kernels:
        assert Path(k._cache._cache_path).is_relative_to(folder), k
    assert numba.config.CACHE_DIR == os.environ.get("NUMBA_CACHE_DIR", ""), "the process-wide setting was changed"


def test_editing_an_inlined_neuron_step_recompiles_the_kernel(tmp_path):
    """A copy of the package runs lif_scan (whose kernel inlines neurons/lif.py's step), its kernel then
    cached; the step is edited (subtract reset removes θ - 1); a fresh process must compute the edit."""
    copy = tmp_path / "src" / "qsnn_deploy"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    script = textwrap.dedent("""
        import numpy as np
        from qsnn_deploy.simulators.lif_scan import lif_scan
        j = np.array([[5, 3, 9, 1]], dtype=np.int64)  # static: one sample, 4 channels
        th = np.array([4, 4, 4, 4]); b = np.zeros(4, dtype=np.int64); d = np.full(4, 4096)
        spikes, states, _ = lif_scan(j, True, 6, 0, th, b, d, "subtract", 24, record=True, use_numba=True)
        import qsnn_deploy
        assert qsnn_deploy.__file__.startswith(COPY), qsnn_deploy.__file__
        print(states.sum())
    """)
    script = script.replace("COPY", repr(str(copy)))
    env = dict(os.environ, PYTHONPATH=str(copy.parent), NUMBA_CACHE_DIR=str(tmp_path / "cache"))

    def run() -> int:
        out = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=300)  # cwd: not the repository, whose qsnn_deploy "-c" would import first
        assert out.returncode == 0, out.stderr[-3000:]
        return int(out.stdout.split()[-1])

    before = run()
    assert run() == before  # cached, same result
    step = copy / "neurons" / "lif.py"
    text = step.read_text()
    edited = text.replace("        if fired and subtract:\n            v -= theta\n",
                          "        if fired and subtract:\n            v -= theta - 1\n")
    assert edited != text
    step.write_text(edited)
    after = run()
    assert after != before, "the kernel ran stale cached code after its inlined neuron step was edited"
    assert len(list((tmp_path / "cache").iterdir())) == 2  # one cache folder per source version
