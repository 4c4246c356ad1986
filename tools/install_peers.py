"""Install the NIR peers (snnTorch's neighbours: Norse, Sinabs, Rockpool), NeuroBench and xylosim for qsnn-deploy.

xylosim (SynSense's Xylo simulator, what Rockpool's XyloSim runs) has no wheel: pip builds it from its
source package with pybind11 and the machine's C++ compiler (``make setup`` installs g++ first when
none is there); it installs with its dependencies like the extra's other requirements.

They are the ``peers`` extra of pyproject.toml (versions pinned in requirements/constraints.txt).
A plain ``pip install "qsnn-deploy[peers]"`` works, but also installs three packages their
metadata names and no code path of ours imports, and which this project never installs:

* ``torchvision`` (Norse 1.1 declares it; only ``norse.task``, its example tasks, imports it),
* ``samna`` (Sinabs 2.0 declares it: SynSense's chip driver, a large binary; only the
  ``sinabs.backend.dynapcnn`` hardware path imports it),
* ``torchaudio`` (NeuroBench 2.3 declares it; only its audio datasets and pre-processors import it;
  pip picks a build for another torch than the pinned 2.13).

So this script installs the extra's other requirements as usual and the four peer packages with
``--no-deps`` (everything they import at run time is then present: torch, numpy, nir, nirtorch,
snntorch, tonic, numba, tqdm from the core and test requirements, pbr and scipy from the extra),
then imports each peer's NIR importer and NeuroBench's metrics. Exit 1 when one does not import.

Usage: ``python tools/install_peers.py [--pip "python -m pip install -c requirements/constraints.txt"]``;
``--check`` installs nothing and only checks the imports.
"""
from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extras import extra_requirements  # noqa: E402

#: Installed with --no-deps (their declared dependencies include torchvision, samna, torchaudio).
NO_DEPS = ("norse", "sinabs", "rockpool", "neurobench")
#: What must import afterwards: each peer's NIR importer, NeuroBench's metrics.
IMPORTS = ("norse.torch", "sinabs", "rockpool.nn.modules.torch.nir", "neurobench.metrics.static",
           "neurobench.metrics.workload", "neurobench.benchmarks", "xylosim.v2")


def peers_extra_requirements() -> list[str]:
    """Requirements of qsnn-deploy's ``peers`` extra (installed metadata, else pyproject.toml)."""
    return extra_requirements("peers", "install_peers")


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)).lower()


def check() -> int:
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    proc = subprocess.run([sys.executable, "-c", code, *IMPORTS], capture_output=True, text=True)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"install_peers: a peer does not import ({last})")
        return 1
    versions = ", ".join(f"{n} {metadata.version(n)}" for n in NO_DEPS)
    print(f"install_peers: {versions} import fine")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pip", default=f"{shlex.quote(sys.executable)} -m pip install -q "
                    "--disable-pip-version-check -c requirements/constraints.txt",
                    help="pip command prefix (default: this Python, with the project's constraints)")
    ap.add_argument("--check", action="store_true", help="install nothing; check that the peers import")
    args = ap.parse_args(argv)
    if args.check:
        return check()
    reqs = peers_extra_requirements()
    pip = shlex.split(args.pip)
    plain = [r for r in reqs if _name(r) not in NO_DEPS]
    bare = [r for r in reqs if _name(r) in NO_DEPS]
    if plain:
        subprocess.run(pip + plain, check=True)
    subprocess.run(pip + ["--no-deps"] + bare, check=True)
    return check()


if __name__ == "__main__":
    sys.exit(main())
