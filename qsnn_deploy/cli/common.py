"""What the command-line tools share: loading a model from the user's arguments, clean errors, and
the messages each command shows (``--quiet`` / ``--verbose``, set up once here by :func:`run_cli`)."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch.nn as nn

from ..errors import CheckpointError, QSNNError, QSNNWarning
from ..frozen import FrozenNet
from ..log import LOGGER_NAME, get_logger, progress_enabled, set_progress
from ..malloc_tuning import malloc_settings

logger = get_logger(__name__)


@dataclass
class LoadedModel:
    """A frozen net and, when the source was a torch model, that model."""

    net: FrozenNet
    model: nn.Module | None
    name: str
    #: the model's layer order when the user named it (--layer-order)
    layers: list[str] | None = None


def _frac_bits(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or an integer 0..46, got {text!r}") from None
    if not 0 <= value <= 46:
        raise argparse.ArgumentTypeError(f"F must be in 0..46 (B_v - 2 for a 48-bit state), got {value}")
    return value


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 1,28,28 or 784, got {text!r}") from None
    if not shape or any(v <= 0 for v in shape):
        raise argparse.ArgumentTypeError(f"expected positive sizes like 1,28,28 or 784, got {text!r}")
    return shape


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected submodule names separated by commas, e.g. fc1,lif1,fc2,lif2")
    return names


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options every command shares for reading a model: ``model``, ``--model-class`` (with
    ``--input-shape``, ``--layer-order``), ``--weight-bits``, ``--frac-bits``, ``--state-bits`` and the NIR
    import group (``--input-bits``, ``--input-scale``, ``--dt``).
    """
    parser.add_argument("model", help="qsnn checkpoint (.pt), frozen network (.qsnn), NIR graph (.nir), netx HDF5 from --target lava (.net), "
                             "or weights with --model-class")
    parser.add_argument("--model-class", metavar="PKG.MODULE:CLASS",
                        help="your own nn.Module class (imported from code you name; built with no arguments); "
                             "MODEL is then a state_dict saved with torch.save. An nn.Sequential with "
                             "init_hidden=True neurons, or a class whose forward(x) runs its own time loop "
                             "(snnTorch tutorials): layer order and T are found by running it once")
    parser.add_argument("--input-shape", type=_shape, metavar="C,H,W|N",
                        help="one sample's shape for --model-class, e.g. 1,28,28 or 784 (required there)")
    parser.add_argument("--layer-order", type=_names, metavar="NAME,NAME,...",
                        help="--model-class: the submodules in the order one time step applies them, where "
                             "detection from the forward pass cannot find it (e.g. conv1,lif1,fc1,lif2)")
    parser.add_argument("--weight-bits", type=int, default=8, help="width for float (non-Brevitas) synapses (default 8)")
    parser.add_argument("--frac-bits", type=_frac_bits, default=None, metavar="auto|F",
                        help="F for plain snnTorch neurons: 'auto' (default) picks the largest F ≤ 6 per layer whose "
                             "state provably never clips (docs/integer-semantics.md §2b), or one F for every layer")
    parser.add_argument("--state-bits", type=int, default=24, help="B_v for plain snnTorch neurons (default 24)")
    nir = parser.add_argument_group("NIR graphs from other tools (.nir without qsnn metadata; docs/nir.md)")
    nir.add_argument("--input-bits", type=int, default=8, help="width of the integer input (default 8: pixels)")
    nir.add_argument("--input-scale", type=float, default=None,
                     help="float value of one input unit (default 1/255 for 8-bit input, 1 otherwise)")
    nir.add_argument("--dt", type=float, default=1e-4, help="time step the graph's tau are read with (default 1e-4, snnTorch's; "
                     "Norse's to_nir: its dt squared, e.g. 1e-6; Sinabs: 1; Rockpool: its dt)")
    nir.add_argument("--tau-rule", choices=("euler", "exp"), default="euler",
                     help="how tau gives the decay: euler, beta = 1 - dt/tau (snnTorch, Norse; default) or exp, "
                          "beta = exp(-dt/tau) (Sinabs, Rockpool)")
    nir.add_argument("--cuba-input-gain", choices=("nir", "w_in", "rockpool"), default="nir",
                     help="how a CubaLIF's current takes its input: nir, gain w_in*dt/tau_syn (NIR's equation; snnTorch; "
                          "default), w_in (Norse's LIFCell, whose to_nir writes w_in = 1 and adds the input with gain 1) "
                          "or rockpool (Rockpool's LIFTorch: I = alpha*(I + w_in*S), v = beta*v + I; with --tau-rule exp "
                          "and Rockpool's --dt, which the file's r is checked against)")


def load_model(args: argparse.Namespace) -> LoadedModel:
    """Build (model, frozen net) from the command line, never unpickling code from a data file.

    Every problem with the file raises a :class:`QSNNError` whose message names the file."""
    path = Path(args.model)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory; expected a model file (.pt, .qsnn, .nir or .net)")
    logger.debug("loading %s (%d bytes)", path, path.stat().st_size)
    try:
        loaded = _load_model(args, path)
    except QSNNError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise CheckpointError(f"{path}: {exc}") from exc
    logger.debug("%s: %d LIF layers, input %s, T=%d", path, len(loaded.net.layers), tuple(loaded.net.input.shape),
                 loaded.net.num_steps)
    return loaded


def _load_model(args: argparse.Namespace, path: Path) -> LoadedModel:
    from ..freeze import freeze

    if path.suffix == ".onnx":
        raise CheckpointError(f"{path}: an ONNX file is an export target, not a model this tool reads; give the "
                              ".pt, .qsnn, .nir or .net it was exported from")
    if path.suffix == ".qsnn":
        return LoadedModel(FrozenNet.load(path), None, path.stem)
    if path.suffix == ".net":
        from ..lava.export import read_netx

        return LoadedModel(read_netx(path), None, path.stem)
    if path.suffix == ".nir":
        from ..interop.nir_import import load_nir

        net, model = load_nir(path, weight_bits=args.weight_bits, frac_bits=args.frac_bits, state_bits=args.state_bits,
                              input_bits=getattr(args, "input_bits", 8), input_scale=getattr(args, "input_scale", None),
                              dt=getattr(args, "dt", 1e-4), tau_rule=getattr(args, "tau_rule", "euler"),
                              cuba_input_gain=getattr(args, "cuba_input_gain", "nir"))
        return LoadedModel(net, model, path.stem)
    opts = dict(weight_bits=args.weight_bits, frac_bits=args.frac_bits, state_bits=args.state_bits)
    if args.model_class:
        model = _user_model(args.model_class, path)
        shape = getattr(args, "input_shape", None)
        if shape is None:
            from ..nn.sequential import QSequential

            if not isinstance(model, QSequential):
                raise QSNNError(f"--model-class {args.model_class}: give one sample's shape with --input-shape "
                                "(e.g. 1,28,28 for images, 784 for flat samples)")
        net = freeze(model, input_shape=shape, layers=getattr(args, "layer_order", None),
                     metadata={"checkpoint": str(path)}, **opts)
        return LoadedModel(net, model, path.stem, getattr(args, "layer_order", None))
    from ..checkpoint import model_from_checkpoint

    model, ckpt = model_from_checkpoint(path)
    meta = {"checkpoint": path.name, "arch_name": ckpt["arch"].get("name", "")}
    return LoadedModel(freeze(model, metadata=meta, **opts), model, path.stem)


def _user_model(spec: str, weights: Path) -> nn.Module:
    if ":" not in spec:
        raise QSNNError(f"--model-class must look like package.module:Class, got {spec!r}")
    module_name, cls_name = spec.split(":", 1)
    sys.path.insert(0, str(Path.cwd()))
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise QSNNError(f"--model-class {spec}: cannot import: {exc}") from exc
    try:
        model = cls()
    except Exception as exc:  # noqa: BLE001 - the user's class: report, do not crash
        raise QSNNError(f"--model-class {spec}: cannot build it with no arguments: {type(exc).__name__}: {exc}") from exc
    from ..checkpoint import load_state_dict_file

    state = load_state_dict_file(weights)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{weights}: does not fit --model-class {spec}: {exc}") from exc
    return model.eval()


def _one_line(text: object) -> str:
    """A message on one line (library messages may hold newlines and long advice)."""
    return " ".join(str(text).split()) or "unknown error"


def _tolerant_streams() -> None:
    """Non-UTF-8 terminals (``LC_ALL=C``, ``PYTHONIOENCODING=ascii``): escape characters a path may
    hold (``módel_ü.qsnn``) instead of failing on them."""
    for stream in (sys.stdout, sys.stderr):
        enc = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if enc != "utf8" and getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # pragma: no cover - a stream that cannot be reconfigured
                pass


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {_one_line(message)}", file=sys.stderr)


def add_input_arguments(parser: argparse.ArgumentParser, *, samples: int, data_help: str) -> None:
    """Add the options choosing the input samples, shared by ``qsnn-verify`` and ``qsnn-report``: ``--data``
    or ``--random`` (one of them), ``--split``, ``-n/--num-samples`` (default ``samples``), ``--steps``
    (T; default the model's) and ``--seed`` (for ``--random``)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help=data_help)
    source.add_argument("--random", action="store_true", help="random integer inputs within the net's input range")
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("-n", "--num-samples", type=int, default=samples)
    parser.add_argument("--steps", type=int, help="time steps T (default: the model's)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --random")


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` / ``--verbose``, the same on every command; :func:`run_cli` applies them."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true",
                       help="warnings and errors only: no progress bars, no 'wrote FILE' / 'inputs' lines "
                            "(the command's results, tables and verdicts, are still printed)")
    group.add_argument("-v", "--verbose", action="store_true",
                       help="also debug messages (on stderr), and the torch/brevitas/h5py warnings hidden by default")


class CLIHandler(logging.Handler):
    """How a command shows the ``qsnn_deploy`` logger: INFO as plain lines on stdout (beside the
    command's results, as before), WARNING and ERROR as one ``warning: ...`` / ``error: ...`` line on
    stderr, DEBUG as ``debug: <logger>: ...`` on stderr. Streams are looked up per message."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            if record.levelno >= logging.WARNING:
                stream, text = sys.stderr, f"{record.levelname.lower()}: {_one_line(msg)}"
            elif record.levelno >= logging.INFO:
                stream, text = sys.stdout, msg
            else:
                stream, text = sys.stderr, f"debug: {record.name}: {msg}"
            stream.write(text + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging's contract: a failing handler reports, never raises
            self.handleError(record)


def cli_level(args: argparse.Namespace | None) -> int:
    """The ``qsnn_deploy`` logger level a command runs at: WARNING with ``--quiet``, DEBUG with
    ``--verbose``, INFO otherwise."""
    if getattr(args, "quiet", False):
        return logging.WARNING
    return logging.DEBUG if getattr(args, "verbose", False) else logging.INFO


@contextlib.contextmanager
def cli_logging(args: argparse.Namespace | None) -> Iterator[int]:
    """While a command runs: a :class:`CLIHandler` on the ``qsnn_deploy`` logger at
    :func:`cli_level` (yielded), and progress bars off under ``--quiet``; all restored afterwards."""
    package = logging.getLogger(LOGGER_NAME)
    handler, level = CLIHandler(), cli_level(args)
    previous_level = package.level
    package.addHandler(handler)
    package.setLevel(level)
    previous_progress = set_progress(level <= logging.INFO)
    try:
        yield level
    finally:
        package.removeHandler(handler)
        package.setLevel(previous_level)
        set_progress(previous_progress)


def show_progress() -> bool:
    """Whether a command shows progress bars (not under ``--quiet``)."""
    return progress_enabled()


def run_cli(main: Callable[[], int], args: argparse.Namespace | None = None) -> int:
    """Run a CLI body; turn bad input into exactly one line on stderr (``error: ...``) and exit
    status 2 (docs/bad-input.md). ``args`` carries ``--quiet`` / ``--verbose``
    (:func:`add_logging_arguments`, applied by :func:`cli_logging`). Library warnings are not shown
    (except with ``--verbose``): every problem the tools know about is an error with its own
    message; qsnn-deploy's own warnings are shown on stderr."""
    _tolerant_streams()
    try:
        with warnings.catch_warnings(), cli_logging(args) as level:
            # torch/brevitas/h5py advice is not for the CLI user, unless they ask for everything
            warnings.simplefilter("default" if level <= logging.DEBUG else "ignore")
            warnings.simplefilter("default", QSNNWarning)
            warnings.showwarning = _show_warning
            logger.debug(malloc_settings())
            return main()
    except (QSNNError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {_one_line(msg)}", file=sys.stderr)
        return 2
    except OSError as exc:  # unreadable input or unwritable output that no loader turned into a QSNNError
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{_one_line(exc.strerror or exc)}", file=sys.stderr)
        return 2
    except UnicodeError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
