"""The broken-input corpus (issue 11, deliverable 4; docs/bad-input.md): every CLI, every file type
it reads or writes, one parametrized suite.

Each bad case must: exit 2; print exactly one line on stderr, ``error: ...``, naming the file (and
the layer/field and limit where there is one); print no traceback or library warning; leave no
file behind (the case folder is listed before and after); never run code from the file (pickles
whose unpickling would create a marker file). Headers claiming absurd sizes run under an
address-space limit (RLIMIT_AS: what the process has mapped + 1 GiB), so a loader that tried to
allocate what the header claims would fail with a MemoryError, not with the clean error.
Valid inputs under non-ASCII names and outputs into missing folders must WORK (exit 0).

Most cases run the CLIs in-process (``main(argv)``, stdout/stderr captured at the file-descriptor
level); a few run the installed console scripts in a subprocess, which also shows that no
warning printed while torch/brevitas/h5py are imported leaks out.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
import torch

from qsnn_deploy import freeze
from qsnn_deploy.checkpoint import save_checkpoint
from qsnn_deploy.cli import export as export_cli
from qsnn_deploy.cli import report as report_cli
from qsnn_deploy.cli import train as train_cli
from qsnn_deploy.cli import verify as verify_cli
from qsnn_deploy.exporters import nir_export, onnx_export
from qsnn_deploy.lava import export as lava_export
from qsnn_deploy.frozen import MAX_NEURONS, MAX_STEPS
from qsnn_deploy.models import build_model

MAINS = {"export": export_cli.main, "verify": verify_cli.main, "train": train_cli.main, "report": report_cli.main}
SCRIPTS = {"export": "qsnn-export", "verify": "qsnn-verify", "train": "qsnn-train", "report": "qsnn-report"}
MARKER = "PWNED"  # created only if code from a file ran
# A read-only directory that even root cannot write into: sysfs (EPERM/EACCES as root, EROFS in
# containers). chmod 0o555 does not stop root, and these tests may run as root.
READ_ONLY = Path("/sys")
RAND = ["--random", "-n", "2", "--steps", "3"]


# ----------------------------------------------------------------------------- assets
def tiny_arch() -> dict:
    # θ = 0.05: every layer spikes, so that valid runs print no "never spiked" warning of verify
    lif = {"type": "lif", "beta": 0.5, "threshold": 0.05, "slope": 25.0, "reset": "subtract",
           "deploy_faithful": True, "frac_bits": 6, "state_bits": 24}
    return {"format": "qsnn-arch", "version": 1, "name": "tiny",
            "input": {"shape": [1, 28, 28], "scale": 1 / 255, "bits": 8, "signed": False}, "num_steps": 4,
            "layers": [{"type": "conv", "name": "conv1", "in_channels": 1, "out_channels": 2, "kernel_size": 5,
                        "bias": False, "weight_bits": 4},
                       {"type": "avgpool", "name": "pool1", "kernel_size": 2}, dict(lif, name="lif1"),
                       {"type": "flatten", "name": "flatten"},
                       {"type": "linear", "name": "fc", "in_features": 288, "out_features": 10, "bias": False,
                        "weight_bits": 4},
                       dict(lif, name="lif2")]}


def idx_bytes(array: np.ndarray, dims: tuple[int, ...] | None = None) -> bytes:
    dims = array.shape if dims is None else dims
    return bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + array.astype(">u1").tobytes()


def write_mnist(folder: Path, n: int = 6, images: dict | None = None) -> Path:
    """An MNIST-style folder (both splits, gzip); ``images``: file name -> raw bytes to use instead."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        files = {f"{prefix}-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
                 f"{prefix}-labels-idx1-ubyte.gz": idx_bytes(np.arange(n, dtype=np.uint8) % 10)}
        for name, data in files.items():
            (folder / name).write_bytes(gzip.compress(data))
    for name, data in (images or {}).items():
        if data is None:
            (folder / name).unlink()
            (folder / name).mkdir()
        else:
            (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("assets")
    torch.manual_seed(0)
    arch = tiny_arch()
    model = build_model(arch).eval()
    net = freeze(model)
    return {"pt": save_checkpoint(d / "tiny.pt", model, arch),
            "qsnn": net.save(d / "tiny.qsnn"),
            "nir": nir_export.export(net, d / "tiny.nir")[0],
            "net": lava_export.write_netx(net, d / "tiny.net"),
            "onnx": onnx_export.export(net, d / "tiny.onnx")[0],
            "data": write_mnist(d / "mnist")}


class Evil:
    """Unpickling this calls ``open(marker, "w")``: the marker exists iff code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class Env:
    """One case's folder: copies of the assets, bad files, the marker."""

    def __init__(self, root: Path, assets: dict[str, Path]):
        self.root, self.assets = root, assets
        self.marker = root / MARKER

    def p(self, name: str) -> Path:
        return self.root / name

    def copy(self, key: str, name: str | None = None) -> Path:
        src = self.assets[key]
        dst = self.root / (name or src.name)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
        return dst

    def write(self, name: str, data: bytes) -> Path:
        (self.root / name).write_bytes(data)
        return self.root / name

    def mkdir(self, name: str) -> Path:
        (self.root / name).mkdir(parents=True)
        return self.root / name

    def truncated(self, key: str, name: str) -> Path:
        data = self.assets[key].read_bytes()
        return self.write(name, data[: len(data) // 2])


# ----------------------------------------------------------------------------- file makers
def pt_edit(env: Env, name: str, edit: Callable[[dict], None]) -> Path:
    ckpt = torch.load(env.assets["pt"], weights_only=True)
    edit(ckpt)
    path = env.p(name)
    torch.save(ckpt, path)
    return path


def pt_set(key: str, index, value: float) -> Callable[[dict], None]:
    def edit(ckpt):
        ckpt["state_dict"][key][index] = value
    return edit


def pt_huge_storage(env: Env, name: str) -> Path:
    """A torch zip whose pickle claims a 10^12-element tensor over a 12-byte storage record."""
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    pkl = next(n for n in src.namelist() if n.endswith("data.pkl"))
    data = src.read(pkl)
    big = b"\x8a\x06" + (10**12).to_bytes(6, "little")  # LONG1, 6 bytes: 10^12
    forged = data.replace(b"cpuq\x06K\x03", b"cpuq\x06" + big).replace(b"K\x00K\x03\x85", b"K\x00" + big + b"\x85")
    assert forged.count(big) == 2, "torch's pickle layout changed: update the forging"
    with zipfile.ZipFile(env.p(name), "w") as out:
        for n in src.namelist():
            out.writestr(src.getinfo(n), forged if n == pkl else src.read(n))
    return env.p(name)


def qsnn_parts(env: Env) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(env.assets["qsnn"], allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(arrays.pop("manifest.json").tobytes()), arrays


def qsnn_write(env: Env, name: str, manifest, arrays: dict, raw_manifest: bytes | None = None, **extra) -> Path:
    blob = json.dumps(manifest).encode() if raw_manifest is None else raw_manifest
    with open(env.p(name), "wb") as fh:
        np.savez(fh, **arrays, **{"manifest.json": np.frombuffer(blob, np.uint8)}, **extra)
    return env.p(name)


def qsnn_edit(env: Env, name: str, edit: Callable[[dict, dict], None]) -> Path:
    manifest, arrays = qsnn_parts(env)
    edit(manifest, arrays)
    return qsnn_write(env, name, manifest, arrays)


def qsnn_huge_header(env: Env, name: str) -> Path:
    """A .qsnn whose conv1 weight member has a .npy header claiming 10^12 int8 values (16 stored)."""
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "|i1", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(env.assets["qsnn"]) as src, zipfile.ZipFile(env.p(name), "w") as out:
        for n in src.namelist():
            out.writestr(n, hdr.getvalue() + b"\0" * 16 if n == "layer0.weight.npy" else src.read(n))
    return env.p(name)


def h5_edit(env: Env, key: str, name: str, edit: Callable[[h5py.File], None]) -> Path:
    path = env.copy(key, name)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def replace_ds(f: h5py.File, where: str, data=None, **kw) -> None:
    del f[where]
    f.create_dataset(where, data=data, **kw)


def huge_ds(f: h5py.File, where: str) -> None:
    """A dataset claiming 10^6 x 10^6 int64 (8 TB); no chunk is ever written, the file stays small."""
    replace_ds(f, where, shape=(10**6, 10**6), dtype="i8", chunks=(100, 100))


def netx_layer(f: h5py.File, name: str) -> str:
    """HDF5 path of the netx block of LIF layer ``name``."""
    for k in f["layer"]:
        g = f["layer"][k]
        if "qsnn" in g and g["qsnn/name"][()].decode() == name:
            return f"layer/{k}"
    raise AssertionError(name)


def net_weight(f: h5py.File, name: str, value) -> None:
    where = netx_layer(f, name) + "/weight"
    w = f[where][()]
    w = w.astype(np.float64) if isinstance(value, float) else w
    w.flat[0] = value
    replace_ds(f, where, w)


def nir_weight(f: h5py.File, value, where: str = "node/nodes/fc/weight") -> None:
    w = f[where][()]
    w.flat[0] = value
    f[where][...] = w


# ----------------------------------------------------------------------------- cases
@dataclass
class Case:
    id: str
    cli: str
    make: Callable[[Env], list[str]]
    expect: tuple[str, ...] = ()  # substrings of the error line: the file, the layer/field, the limit
    ok: bool = False  # valid input: must exit 0 and write ``outputs``
    outputs: tuple[str, ...] = ()
    subprocess: bool = False
    huge: bool = False  # a header claiming an absurd size: run under RLIMIT_AS, must be quick
    env: dict | None = None


def cuba_recurrent_qsnn(env: Env, name: str, recurrent: bool = True, rec_max: int = 3) -> Path:
    """A valid .qsnn holding a current-based (cuba) layer, recurrent (weights in ±``rec_max``) or not: kinds
    some targets do not run."""
    from qsnn_deploy import FrozenNet, InputSpec, Layer, Synapse
    from qsnn_deploy.neurons import CubaLIF

    rng = np.random.default_rng(0)
    syn = Synapse("dense", rng.integers(-7, 8, (6, 9)).astype(np.int8), 4,
                  recurrent=rng.integers(-rec_max, rec_max + 1, (6, 6)).astype(np.int16) if recurrent else None,
                  recurrent_bits=int(rec_max).bit_length() + 1 if recurrent else None)
    neuron = CubaLIF(np.full(6, 300), np.zeros(6, np.int64), np.full(6, 2000), np.full(6, 3000), reset="subtract")
    return FrozenNet(InputSpec((9,), bits=4, scale=1.0), [Layer("rec1", syn, neuron)], num_steps=10).save(env.p(name))


def cuba_nir_edited(env: Env, name: str) -> Path:
    """Our .nir of the recurrent cuba layer with the CubaLIF's ``w_in`` edited (the float fields no longer
    match the integer metadata)."""
    from qsnn_deploy import FrozenNet

    path = nir_export.export(FrozenNet.load(cuba_recurrent_qsnn(env, name + ".qsnn")), env.p(name))[0]
    with h5py.File(path, "r+") as f:
        nir_weight(f, 2.5, "node/nodes/rec1_rec/nodes/cuba/w_in")
    return path


def evil_pickle(env: Env, name: str) -> Path:
    torch.save({"format": "qsnn-checkpoint", "version": 1, "x": Evil(env.marker)}, env.p(name))
    return env.p(name)


def evil_npz(env: Env, name: str) -> Path:
    manifest, arrays = qsnn_parts(env)
    return qsnn_write(env, name, manifest, arrays, evil=np.array([Evil(env.marker)], dtype=object))


def bad_arch(env: Env, name: str, layer: int, **fields) -> Path:
    def edit(ckpt):
        ckpt["arch"]["layers"][layer].update(fields)
    return pt_edit(env, name, edit)


def data_case(env: Env, name: str, images: dict) -> Path:
    return write_mnist(env.p(name), images=images)


IMG = "t10k-images-idx3-ubyte.gz"
TRAIN_IMG = "train-images-idx3-ubyte.gz"
HUGE_IDX = gzip.compress(idx_bytes(np.zeros((2, 28, 28), np.uint8), dims=(10**9, 28, 28)))

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"

CASES = [
    # ---- a model for one target exported to another (issue 25: the Xylo kind, a conv net on Xylo)
    Case("xylo-model-to-lava", "export", lambda e: [str(EXAMPLES_DIR / "mnist_rows_xylo.pt"), "--target", "lava",
                                                    "-o", str(e.p("out"))], ("hidden", "lava", "xylo")),
    Case("conv-model-to-xylo", "export", lambda e: [str(EXAMPLES_DIR / "mnist_int4_qsnn.pt"), "--target", "xylo",
                                                    "-o", str(e.p("out"))], ("conv1", "synapse", "convolution")),
    # ---- .pt qsnn checkpoints (read by export, verify, report; train --resume)
    Case("pt-empty", "export", lambda e: [str(e.write("empty.pt", b"")), "-o", str(e.p("out"))], ("empty.pt", "corrupt")),
    Case("pt-truncated", "verify", lambda e: [str(e.truncated("pt", "cut.pt"))] + RAND, ("cut.pt", "corrupt")),
    Case("pt-wrong-format-text", "report", lambda e: [str(e.write("text.pt", b"model = 'not a checkpoint'\n"))],
         ("text.pt", "not a torch checkpoint")),
    Case("pt-wrong-format-qsnn", "export", lambda e: [str(e.copy("qsnn", "frozen.pt")), "-o", str(e.p("out"))],
         ("frozen.pt", "corrupt")),
    Case("pt-directory", "export", lambda e: [str(e.mkdir("dir.pt")), "-o", str(e.p("out"))], ("dir.pt", "is a directory")),
    Case("pt-pickle-runs-code", "export", lambda e: [str(evil_pickle(e, "evil.pt")), "-o", str(e.p("out"))],
         ("evil.pt", "would execute code", "io.open"), subprocess=True),
    Case("pt-nan-weight", "report", lambda e: [str(pt_edit(e, "nan.pt", pt_set("fc.weight", (0, 0), float("nan"))))],
         ("nan.pt", "fc.weight", "NaN")),
    Case("pt-inf-weight", "verify", lambda e: [str(pt_edit(e, "inf.pt", pt_set("conv1.weight", (0, 0, 0, 0), float("inf"))))] + RAND,
         ("inf.pt", "conv1.weight", "inf")),
    Case("pt-wrong-shape", "export",
         lambda e: [str(pt_edit(e, "shape.pt", lambda c: c["state_dict"].__setitem__("fc.weight", torch.zeros(10, 100)))),
                    "-o", str(e.p("out"))], ("shape.pt", "fc.weight", "[10, 100]", "[10, 288]")),
    Case("pt-state-bits-over-limit", "export", lambda e: [str(bad_arch(e, "bits.pt", 5, state_bits=64)), "-o", str(e.p("out"))],
         ("bits.pt", "state_bits", "64", "48")),
    Case("pt-weight-bits-over-limit", "verify", lambda e: [str(bad_arch(e, "wbits.pt", 0, weight_bits=40))] + RAND,
         ("wbits.pt", "weight_bits", "40")),
    Case("pt-absurd-storage-size", "verify", lambda e: [str(pt_huge_storage(e, "huge.pt"))] + RAND,
         ("huge.pt", "4000000000000"), huge=True),
    Case("pt-absurd-arch-size", "export", lambda e: [str(bad_arch(e, "arch.pt", 4, in_features=10**6, out_features=10**6)),
                                                     "-o", str(e.p("out"))], ("arch.pt", "'fc'", "[1000000, 1000000]", "[10, 288]"),
         huge=True),
    Case("pt-model-class-mismatch", "export", lambda e: [str(e.copy("pt")), "--model-class", "torch.nn:Identity", "-o", str(e.p("out"))],
         ("tiny.pt", "torch.nn:Identity", "fc.weight")),
    Case("pt-model-class-unbuildable", "verify", lambda e: [str(e.copy("pt")), "--model-class", "torch.nn:Linear"] + RAND,
         ("tiny.pt", "torch.nn:Linear", "cannot build")),
    Case("onnx-as-input", "verify", lambda e: [str(e.copy("onnx"))] + RAND, ("tiny.onnx", "export target")),
    Case("pt-resume-empty", "train", lambda e: ["--resume", str(e.write("empty.pt", b"")), "--out", str(e.p("run"))],
         ("empty.pt", "corrupt"), subprocess=True),
    Case("pt-resume-pickle-runs-code", "train", lambda e: ["--resume", str(evil_pickle(e, "evil.pt")), "--out", str(e.p("run"))],
         ("evil.pt", "would execute code")),
    Case("pt-resume-directory", "train", lambda e: ["--resume", str(e.mkdir("dir.pt")), "--out", str(e.p("run"))],
         ("dir.pt", "is a directory")),
    Case("pt-resume-without-train-state", "train", lambda e: ["--resume", str(e.copy("pt")), "--out", str(e.p("run"))],
         ("tiny.pt", "train_state")),
    Case("pt-non-ascii-name", "export", lambda e: [str(e.copy("pt", "módel_ü.pt")), "-o", str(e.p("out"))], ok=True,
         outputs=("out/módel_ü.qsnn",), subprocess=True, env={"PYTHONIOENCODING": "ascii", "LC_ALL": "C"}),
    # ---- .qsnn frozen nets
    Case("qsnn-empty", "verify", lambda e: [str(e.write("empty.qsnn", b""))] + RAND, ("empty.qsnn", "not a readable .qsnn")),
    Case("qsnn-truncated", "report", lambda e: [str(e.truncated("qsnn", "cut.qsnn"))], ("cut.qsnn", "not a readable .qsnn")),
    Case("qsnn-wrong-format", "verify", lambda e: [str(e.copy("pt", "ckpt.qsnn"))] + RAND, ("ckpt.qsnn",)),
    Case("qsnn-directory", "export", lambda e: [str(e.mkdir("dir.qsnn")), "--target", "onnx", "-o", str(e.p("out"))],
         ("dir.qsnn", "is a directory")),
    Case("qsnn-pickle-runs-code", "verify", lambda e: [str(evil_npz(e, "evil.qsnn"))] + RAND,
         ("evil.qsnn", "'evil.npy'", "Python objects")),
    Case("qsnn-nan-sigma", "report", lambda e: [str(qsnn_edit(e, "nan.qsnn", lambda m, a: a["layer0.sigma"].__setitem__(0, np.nan)))],
         ("nan.qsnn", "conv1", "sigma", "finite"), subprocess=True),
    Case("qsnn-nan-float-weight", "export",
         lambda e: [str(qsnn_edit(e, "nanw.qsnn", lambda m, a: a.__setitem__("layer1.weight", np.full((10, 288), np.nan)))),
                    "-o", str(e.p("out"))], ("nanw.qsnn", "fc", "weight", "integer")),
    Case("qsnn-wrong-shape", "verify",
         lambda e: [str(qsnn_edit(e, "shape.qsnn", lambda m, a: a.__setitem__("layer0.threshold", np.ones(3, np.int64))))] + RAND,
         ("shape.qsnn", "conv1", "threshold", "(2,)")),
    Case("qsnn-weight-over-bit-width", "export",
         lambda e: [str(qsnn_edit(e, "wide.qsnn", lambda m, a: a["layer1.weight"].__setitem__((0, 0), 100))),
                    "--target", "lava", "-o", str(e.p("out"))], ("wide.qsnn", "fc", "weight", "100", "4-bit", "-8..7")),
    Case("qsnn-cuba-recurrent-to-nir", "export", lambda e: [str(cuba_recurrent_qsnn(e, "cuba.qsnn")), "--target", "nir",
                                                            "-o", str(e.p("out"))], ok=True, outputs=("out/cuba.nir",)),
    Case("nir-cuba-recurrent-w_in-edited", "verify", lambda e: [str(cuba_nir_edited(e, "cubaed.nir"))] + RAND,
         ("cubaed.nir", "rec1_rec.cuba", "w_in", "disagrees")),
    # a recurrent cuba layer off the stock route exports (netx dense_rec + QCUBA), unless netx's one-exponent
    # encoding cannot carry its weights exactly: then it is refused by name, nothing written
    Case("qsnn-recurrent-to-lava", "export", lambda e: [str(cuba_recurrent_qsnn(e, "rec.qsnn")), "--target", "lava",
                                                        "-o", str(e.p("out"))], ok=True, outputs=("out/rec.net", "out/run_rec.py")),
    Case("qsnn-recurrent-past-netx-to-lava", "export",
         lambda e: [str(cuba_recurrent_qsnn(e, "recw.qsnn", rec_max=300)), "--target", "lava", "-o", str(e.p("out"))],
         ("rec1", "lava", "recurrent cuba", "dense_rec", "-256..254")),
    Case("qsnn-cuba-subtract-to-lava", "export", lambda e: [str(cuba_recurrent_qsnn(e, "cubs.qsnn", recurrent=False)), "--target",
                                                            "lava", "-o", str(e.p("out"))], ok=True, outputs=("out/cubs.net",)),
    Case("qsnn-absurd-npy-header", "verify", lambda e: [str(qsnn_huge_header(e, "huge.qsnn"))] + RAND,
         ("huge.qsnn", "layer0.weight.npy", "(1000000000000,)"), huge=True),
    Case("qsnn-absurd-num-steps", "verify", lambda e: [str(qsnn_edit(e, "steps.qsnn", lambda m, a: m.__setitem__("num_steps", 10**15)))]
         + ["--random", "-n", "2"], ("steps.qsnn", "num_steps", str(MAX_STEPS)), huge=True),
    Case("qsnn-absurd-input-shape", "report",
         lambda e: [str(qsnn_edit(e, "shape.qsnn", lambda m, a: m["input"].__setitem__("shape", [1, 10**6, 10**6])))],
         ("shape.qsnn", "input", "shape", str(MAX_NEURONS)), huge=True),
    Case("qsnn-manifest-not-json", "verify",
         lambda e: [str(qsnn_write(e, "junk.qsnn", None, qsnn_parts(e)[1], raw_manifest=b"\xff{not json"))] + RAND,
         ("junk.qsnn", "manifest.json")),
    Case("qsnn-manifest-wrong-type", "verify",
         lambda e: [str(qsnn_write(e, "list.qsnn", [1, 2, 3], qsnn_parts(e)[1]))] + RAND, ("list.qsnn", "manifest.json", "list")),
    Case("qsnn-non-ascii-name", "verify", lambda e: [str(e.copy("qsnn", "módel_ü.qsnn"))] + RAND, ok=True),
    # ---- .nir graphs
    Case("nir-empty", "export", lambda e: [str(e.write("empty.nir", b"")), "-o", str(e.p("out"))], ("empty.nir", "NIR")),
    Case("nir-truncated", "verify", lambda e: [str(e.truncated("nir", "cut.nir"))] + RAND, ("cut.nir", "NIR")),
    Case("nir-wrong-format", "report", lambda e: [str(e.copy("qsnn", "frozen.nir"))], ("frozen.nir", "NIR")),
    Case("nir-directory", "verify", lambda e: [str(e.mkdir("dir.nir"))] + RAND, ("dir.nir", "is a directory")),
    Case("nir-nan-weight", "export", lambda e: [str(h5_edit(e, "nir", "nan.nir", lambda f: nir_weight(f, np.nan))), "-o", str(e.p("out"))],
         ("nan.nir", "fc", "weight", "NaN")),
    Case("nir-wrong-shape", "verify",
         lambda e: [str(h5_edit(e, "nir", "shape.nir", lambda f: replace_ds(f, "node/nodes/fc/metadata/weight",
                                                                            np.zeros((10, 100), np.int8))))] + RAND,
         ("shape.nir", "fc", "288")),
    Case("nir-weight-over-bit-width", "export",
         lambda e: [str(h5_edit(e, "nir", "wide.nir", lambda f: nir_weight(f, 100, "node/nodes/fc/metadata/weight"))),
                    "-o", str(e.p("out"))], ("wide.nir", "fc", "weight", "-8..7")),
    Case("nir-absurd-dataset-shape", "export",
         lambda e: [str(h5_edit(e, "nir", "huge.nir", lambda f: huge_ds(f, "node/nodes/fc/weight"))), "-o", str(e.p("out"))],
         ("huge.nir", "node/nodes/fc/weight", "(1000000, 1000000)", "8000000000000"), huge=True),
    Case("nir-non-ascii-name", "export",
         lambda e: [str(e.copy("nir", "módel_ü.nir")), "--target", "numpy", "-o", str(e.p("ausgabe_ö"))], ok=True,
         outputs=("ausgabe_ö/módel_ü.qsnn",)),
    # ---- .net netx HDF5 (qsnn-export --target lava output; read back by every CLI)
    Case("net-empty", "verify", lambda e: [str(e.write("empty.net", b""))] + RAND, ("empty.net", "HDF5")),
    Case("net-truncated", "verify", lambda e: [str(e.truncated("net", "cut.net"))] + RAND, ("cut.net", "HDF5")),
    Case("net-wrong-format", "report", lambda e: [str(e.copy("pt", "ckpt.net"))], ("ckpt.net", "HDF5")),
    Case("net-wrong-hdf5", "report", lambda e: [str(e.copy("nir", "graph.net"))], ("graph.net", "not a qsnn-deploy netx file")),
    Case("net-directory", "export", lambda e: [str(e.mkdir("dir.net")), "-o", str(e.p("out"))], ("dir.net", "is a directory")),
    Case("net-nan-weight", "verify", lambda e: [str(h5_edit(e, "net", "nan.net", lambda f: net_weight(f, "fc", np.nan)))] + RAND,
         ("nan.net", "fc", "weight", "NaN"), subprocess=True),
    Case("net-wrong-shape", "verify",
         lambda e: [str(h5_edit(e, "net", "shape.net", lambda f: replace_ds(f, netx_layer(f, "conv1") + "/qsnn/threshold",
                                                                            np.ones(3, np.int64))))] + RAND,
         ("shape.net", "conv1", "threshold", "(2,)")),
    Case("net-weight-over-bit-width", "export",
         lambda e: [str(h5_edit(e, "net", "wide.net", lambda f: net_weight(f, "fc", 10**6))), "-o", str(e.p("out"))],
         ("wide.net", "fc", "weight", "1000000", "16-bit")),
    Case("net-absurd-dataset-shape", "verify",
         lambda e: [str(h5_edit(e, "net", "huge.net", lambda f: huge_ds(f, netx_layer(f, "fc") + "/weight")))] + RAND,
         ("huge.net", "weight", "(1000000, 1000000)", "8000000000000"), huge=True),
    # issue 26: a hand-edited .net is refused naming the layer and field (docs/lava.md, "The netx file")
    Case("net-missing-layer-group", "verify",
         lambda e: [str(h5_edit(e, "net", "gap.net", lambda f: f["layer"].move(netx_layer(f, "fc").split("/")[1], "9")))] + RAND,
         ("gap.net", "layer group layer/3 missing")),
    Case("net-reset-interval-short", "report",
         lambda e: [str(h5_edit(e, "net", "short.net", lambda f: replace_ds(f, "qsnn/reset_interval", np.int64(1))))],
         ("short.net", "qsnn/reset_interval", "shorter than the pipeline")),
    Case("net-custom-layer-typed-stock", "verify",
         lambda e: [str(h5_edit(e, "net", "cuba.net", lambda f: replace_ds(f, netx_layer(f, "conv1") + "/neuron/type",
                                                                           np.bytes_("CUBA"))))] + RAND,
         ("cuba.net", "layer conv1", "neuron/type", "custom-route")),
    Case("net-non-ascii-name", "report", lambda e: [str(e.copy("net", "módel_ü.net")), "--random", "-n", "2", "--steps", "3",
                                                    "--json", str(e.p("r.json"))], ok=True, outputs=("r.json",)),
    # ---- dataset folders (--data, --data-dir: MNIST idx files)
    Case("data-missing-folder", "verify", lambda e: [str(e.copy("qsnn")), "--data", str(e.p("nowhere")), "-n", "2"],
         ("nowhere", "not found")),
    Case("data-folder-is-a-file", "report", lambda e: [str(e.copy("qsnn")), "--data", str(e.write("digits.txt", b"1 2 3")), "-n", "2"],
         ("digits.txt", "is a file")),
    Case("data-empty-file", "verify", lambda e: [str(e.copy("qsnn")), "--data", str(data_case(e, "d", {IMG: gzip.compress(b"")})),
                                                  "-n", "2"], (IMG, "4-byte idx magic")),
    Case("data-truncated-gzip", "verify",
         lambda e: [str(e.copy("qsnn")), "--data",
                    str(data_case(e, "d", {IMG: gzip.compress(idx_bytes(np.full((6, 28, 28), 7, np.uint8)))[:-6]})), "-n", "2"],
         (IMG, "truncated")),
    Case("data-wrong-format", "report", lambda e: [str(e.copy("qsnn")), "--data", str(data_case(e, "d", {IMG: b"P5 28 28 255\n"})),
                                                    "-n", "2"], (IMG, "gzip")),
    Case("data-not-idx", "verify", lambda e: [str(e.copy("qsnn")), "--data", str(data_case(e, "d", {IMG: gzip.compress(b"{}" * 40)})),
                                               "-n", "2"], (IMG, "magic")),
    Case("data-directory-as-file", "verify", lambda e: [str(e.copy("qsnn")), "--data", str(data_case(e, "d", {IMG: None})), "-n", "2"],
         (IMG, "is a directory")),
    Case("data-wrong-image-shape", "verify",
         lambda e: [str(e.copy("qsnn")), "--data",
                    str(data_case(e, "d", {IMG: gzip.compress(idx_bytes(np.zeros((6, 32, 32), np.uint8)))})), "-n", "2"],
         (IMG, "[N, 28, 28]", "[2, 32, 32]")),
    Case("data-label-over-range", "report",
         lambda e: [str(e.copy("qsnn")), "--data",
                    str(data_case(e, "d", {"t10k-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(np.full(6, 12, np.uint8)))})),
                    "-n", "2"], ("t10k-labels-idx1-ubyte.gz", "0..9", "12")),
    Case("data-absurd-idx-header", "verify",
         lambda e: [str(e.copy("qsnn")), "--data", str(data_case(e, "d", {IMG: HUGE_IDX})), "-n", str(2 * 10**9)],
         (IMG, "(1000000000, 28, 28)", "784000000000"), huge=True),
    Case("data-absurd-idx-header-train", "train",
         lambda e: ["--data-dir", str(data_case(e, "d", {TRAIN_IMG: HUGE_IDX})), "--out", str(e.p("run")), "--epochs", "1"],
         (TRAIN_IMG, "(1000000000, 28, 28)", "784000000000"), subprocess=True),
    Case("data-train-missing-folder", "train", lambda e: ["--data-dir", str(e.p("nowhere")), "--out", str(e.p("run"))],
         ("nowhere", "not found")),
    Case("data-non-ascii-folder", "verify", lambda e: [str(e.copy("qsnn")), "--data", str(e.copy("data", "dätä_ü")), "-n", "2",
                                                        "--steps", "2"], ok=True),
    # ---- outputs (-o, --json, --check-json, --html, --out)
    Case("out-under-a-file", "export", lambda e: [str(e.copy("pt")), "-o", str(e.write("file.txt", b"x") / "sub")],
         ("file.txt", "not a directory")),
    Case("out-read-only-dir", "export", lambda e: [str(e.copy("pt")), "--target", "onnx", "-o", str(READ_ONLY / "qsnn-out")],
         (str(READ_ONLY / "qsnn-out"),)),
    Case("out-json-read-only-dir", "verify", lambda e: [str(e.copy("qsnn"))] + RAND + ["--json", str(READ_ONLY / "v.json")],
         (str(READ_ONLY / "v.json"),)),
    Case("out-html-under-a-file", "report", lambda e: [str(e.copy("qsnn")), "--html", str(e.write("file.txt", b"x") / "r.html")],
         ("r.html", "file.txt", "not a directory")),
    Case("out-qsnn-is-a-directory", "export", lambda e: [str(e.copy("pt")), "-o", str(e.mkdir("out/m.qsnn"))],
         ("m.qsnn", "is a directory")),
    Case("out-default-name-is-a-directory", "export", lambda e: [str(e.copy("pt")), "--target", "nir", "-o",
                                                                str(e.mkdir("out/tiny.nir").parent)], ("tiny.nir", "is a directory")),
    Case("out-net-is-a-directory", "export", lambda e: [str(e.copy("pt")), "--target", "lava", "-o", str(e.mkdir("m.net"))],
         ("m.net", "is a directory")),
    Case("out-onnx-is-a-directory", "export", lambda e: [str(e.copy("qsnn")), "--target", "onnx", "-o", str(e.mkdir("m.onnx"))],
         ("m.onnx", "is a directory")),
    Case("out-json-is-a-directory", "verify", lambda e: [str(e.copy("qsnn"))] + RAND + ["--json", str(e.mkdir("v.json"))],
         ("v.json", "is a directory")),
    Case("out-check-json-is-a-directory", "export",
         lambda e: [str(e.copy("qsnn")), "--target", "lava", "--check-json", str(e.mkdir("fit.json")), "-o", str(e.p("out"))],
         ("fit.json", "is a directory")),
    Case("out-train-under-a-file", "train", lambda e: ["--data-dir", str(e.copy("data")), "--out", str(e.write("file.txt", b"x") / "run")],
         ("file.txt", "not a directory")),
    Case("out-train-is-a-file", "train", lambda e: ["--data-dir", str(e.copy("data")), "--out", str(e.write("run", b"x"))],
         ("run", "is a file")),
    Case("out-missing-folders-are-created", "export", lambda e: [str(e.copy("pt")), "--target", "lava", "-o", str(e.p("new/deeper"))],
         ok=True, outputs=("new/deeper/tiny.net",)),
    Case("out-missing-json-folder-is-created", "report", lambda e: [str(e.copy("qsnn")), "--json", str(e.p("new/r.json")),
                                                                    "--html", str(e.p("new2/r.html"))],
         ok=True, outputs=("new/r.json", "new2/r.html")),
    Case("out-non-ascii-path", "export", lambda e: [str(e.copy("qsnn")), "--target", "nir", "-o", str(e.p("ausgabe_ö/módel_ü.nir"))],
         ok=True, outputs=("ausgabe_ö/módel_ü.nir",)),
    Case("out-non-ascii-check-json", "export", lambda e: [str(e.copy("qsnn")), "--target", "lava", "--check-json",
                                                          str(e.p("prüfung/fit.json")), "-o", str(e.p("ausgabe_ö"))],
         ok=True, outputs=("prüfung/fit.json", "ausgabe_ö/tiny.net")),
]


# ----------------------------------------------------------------------------- running
def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@contextlib.contextmanager
def address_space_limit(extra: int = 1 << 30):
    """Cap this process's address space at what it maps now + ``extra``: allocating what a forged
    header claims (GBs to TBs) fails instead of succeeding lazily."""
    status = Path("/proc/self/status").read_text()
    vm = int(re.search(r"VmSize:\s+(\d+) kB", status).group(1)) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = vm + extra if hard == resource.RLIM_INFINITY else min(vm + extra, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_in_process(case: Case, argv: list[str], capfd) -> tuple[int, str, str]:
    limit = address_space_limit() if case.huge else contextlib.nullcontext()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with limit:
            rc = MAINS[case.cli](argv)
    out, err = capfd.readouterr()
    leaked = [f"{w.category.__name__}: {w.message}" for w in caught]
    return rc, out, err + "".join(f"\nleaked warning {m}" for m in leaked)


def run_script(case: Case, argv: list[str], cwd: Path) -> tuple[int, str, str]:
    exe = Path(sys.executable).with_name(SCRIPTS[case.cli])
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", f"qsnn_deploy.cli.{case.cli}"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "COLUMNS")}
    env.update(case.env or {})
    proc = subprocess.run(cmd + argv, capture_output=True, cwd=cwd, env=env, timeout=240)
    return (proc.returncode, proc.stdout.decode("utf-8", "backslashreplace"),
            proc.stderr.decode("utf-8", "backslashreplace"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_input(case: Case, assets, tmp_path, capfd):
    env = Env(tmp_path, assets)
    argv = case.make(env)
    if any(a.startswith(f"{READ_ONLY}/") for a in argv) and not READ_ONLY.is_dir():
        pytest.skip(f"no {READ_ONLY} on this system to stand for a read-only directory")
    capfd.readouterr()
    before = _tree(tmp_path)
    t0 = time.perf_counter()
    rc, out, err = run_script(case, argv, tmp_path) if case.subprocess else run_in_process(case, argv, capfd)
    seconds = time.perf_counter() - t0
    assert not env.marker.exists(), "code from the file ran"
    assert not re.search(r"Traceback|Warning|warning:", out + err), (out + err)[-3000:]
    if case.ok:
        assert rc == 0, (out + err)[-3000:]
        assert not err.strip(), err
        for rel in case.outputs:
            assert (tmp_path / rel).is_file(), f"{rel} not written; folder holds {sorted(_tree(tmp_path))}"
        return
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, (rc, (out + err)[-3000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in case.expect:
        assert word in lines[0], f"{word!r} missing from: {lines[0]}"
    assert _tree(tmp_path) == before, f"left behind: {sorted(_tree(tmp_path) - before)}"
    if case.huge:
        assert seconds < 20, f"took {seconds:.1f} s: was the claimed size read?"
