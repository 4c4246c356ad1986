"""How to run a user's spiking torch model: its calling convention, layer order and T, found from
the model itself.

qsnn-deploy needs three facts about a torch model before it can freeze or verify it:

* **the calling convention**: how one call advances time. Four are recognised:

  ``num_steps``  ``model(x, num_steps=T)`` runs T steps (:class:`~qsnn_deploy.nn.QSequential`, the
                 zoo models; any ``forward`` with a ``num_steps`` parameter);
  ``per_step``   ``model(x)`` is one time step and the neurons keep their own state
                 (``nn.Sequential`` of layers and ``snntorch.Leaky(init_hidden=True)``); the caller
                 loops over time after resetting the hidden state;
  ``own_loop``   ``model(x)`` runs its own time loop over a fixed T (a module-level ``num_steps`` as
                 in the snnTorch tutorials) and returns spike (and membrane) records; T is counted;
  ``custom``     a ``forward(model, x, num_steps)`` callable the user supplies.

* **the layer order** one time step applies (what :func:`qsnn_deploy.nn.blocks.parse_blocks` reads):
  the children of an ``nn.Sequential``, an explicit ``layers=[...]`` list, or — for any other module —
  the order in which one forward pass first calls its layers, recorded with forward hooks. Functional
  ops between layers on the data path are recorded too and mapped to modules
  (``x.flatten(1)``/``x.view(N, -1)`` -> ``nn.Flatten()``, ``F.avg_pool2d`` -> ``nn.AvgPool2d``,
  ``F.dropout`` -> ``nn.Dropout``); any other op on the data path (``F.max_pool2d``, ``torch.relu``)
  becomes a placeholder layer named after the op, which :func:`parse_blocks` refuses by name;

* **T**: counted for ``own_loop`` models (the number of calls each neuron gets in one forward pass).

The probe forward pass runs once, on zeros of shape ``[1, *input_shape]``, without gradients; the
model's neuron states are reset before and after it.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from .errors import QSNNError, UnsupportedLayerError
from .nn.blocks import NEURON_TYPES, POST_TYPES, PRE_TYPES, is_synapse
from .nn.neuron import QLeaky

__all__ = ["ModelCall", "ForwardFn", "inspect_model", "layer_order", "reset_neuron_states"]

#: ``forward(model, x, num_steps)``: run ``model`` for ``num_steps`` steps on ``x`` (float model units,
#: [N, *input_shape] repeated every step, or [T, N, *input_shape]); the return value is ignored
ForwardFn = Callable[[nn.Module, torch.Tensor, int], Any]

CONVENTIONS = ("num_steps", "per_step", "own_loop", "custom")
_NEURONS = NEURON_TYPES + (QLeaky,)
#: tensor methods that do not change values or shape (skipped on the data path)
_NEUTRAL_OPS = {"to", "float", "double", "contiguous", "clone", "detach", "type", "cpu", "cuda", "requires_grad_",
                "__get__", "size", "dim", "numel", "requires_grad"}
_FLATTEN_OPS = {"flatten", "view", "reshape"}


class _FunctionalOp(nn.Module):
    """Placeholder for a functional op found on a model's data path that has no supported module
    equivalent: :func:`~qsnn_deploy.nn.blocks.parse_blocks` refuses it, naming the op."""

    def __init__(self, op: str, after: str):
        super().__init__()
        self.op, self.after = op, after

    def extra_repr(self) -> str:
        return f"functional {self.op} after {self.after}"

    def forward(self, x):  # pragma: no cover - never run: freeze refuses it first
        raise RuntimeError(f"functional op {self.op} is a placeholder")


@dataclass
class ModelCall:
    """How to run one torch model: its convention, the layer order of one step and its own T.

    Attributes:
        convention: one of ``num_steps``, ``per_step``, ``own_loop``, ``custom`` (module docstring).
        layers: ``(name, module)`` in the order one time step applies them.
        num_steps: the model's own T (``own_loop`` models, or the ``num_steps`` attribute of a
            QSequential); None when the model takes any T.
        user_forward: the ``custom`` callable.
    """

    convention: str
    layers: list[tuple[str, nn.Module]] = field(default_factory=list)
    num_steps: int | None = None
    user_forward: ForwardFn | None = None

    def run(self, model: nn.Module, x: torch.Tensor, num_steps: int, static: bool = True) -> None:
        """Run ``model`` for ``num_steps`` steps on ``x`` (float model units; [N, *shape] when
        ``static``, else [T, N, *shape]); the neurons' forward hooks capture what is needed."""
        if self.convention == "custom":
            self.user_forward(model, x, num_steps)
        elif self.convention == "num_steps":
            model(x, num_steps=num_steps)
        elif self.convention == "per_step":
            for name, m in self.layers:
                if isinstance(m, NEURON_TYPES) and not getattr(m, "init_hidden", False):
                    raise UnsupportedLayerError(
                        f"{type(model).__name__}(x) runs one time step, and its neuron {name!r} ({type(m).__name__}) "
                        "has init_hidden=False, so it cannot keep its membrane between steps: build it as "
                        "snn.Leaky(..., init_hidden=True), loop over time inside forward, or pass forward=...")
            reset_neuron_states(model)
            for t in range(num_steps):
                model(x if static else x[t])
            reset_neuron_states(model)
        else:  # own_loop
            if self.num_steps is not None and num_steps != self.num_steps:
                raise QSNNError(f"{type(model).__name__}.forward runs its own loop of {self.num_steps} steps, but "
                                f"{num_steps} steps were asked for: freeze/verify with num_steps={self.num_steps} "
                                "(or pass forward=... to run it another way)")
            reset_neuron_states(model)
            model(x)
            reset_neuron_states(model)

    def forward_fn(self, static: bool = True) -> ForwardFn:
        """This call as a ``forward(model, x, num_steps)`` function."""
        return lambda model, x, num_steps: self.run(model, x, num_steps, static)


def reset_neuron_states(model: nn.Module) -> None:
    """Zero the hidden states (membrane, synaptic current, last spikes) of every snnTorch neuron with
    ``init_hidden=True`` in ``model`` (a fresh sample starts at rest, as in every simulator)."""
    for m in model.modules():
        if isinstance(m, NEURON_TYPES) and getattr(m, "init_hidden", False):
            for attr in ("mem", "syn", "spk"):
                state = getattr(m, attr, None)
                if isinstance(state, torch.Tensor):
                    setattr(m, attr, torch.zeros(1, dtype=state.dtype, device=state.device))


def _takes_num_steps(model: nn.Module) -> bool:
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return "num_steps" in params


def _is_atomic(m: nn.Module) -> bool:
    """A module the layer order lists as one layer (not looked into)."""
    return (is_synapse(m) or isinstance(m, _NEURONS + PRE_TYPES + POST_TYPES)
            or isinstance(m, (nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.ReLU, nn.Sigmoid))
            or not any(True for _ in m.children()))


def _atomic_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    out: list[tuple[str, nn.Module]] = []

    def walk(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            full = f"{prefix}.{name}" if prefix else name
            if _is_atomic(child):
                out.append((full, child))
            else:
                walk(full, child)

    walk("", model)
    return out


def _tensors(obj) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


class _Trace(TorchFunctionMode):
    """Records, during one forward pass, every call of the hooked layers and every torch op applied
    outside them; tensors are followed by identity (kept alive, so ids are not reused)."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.events: list[dict] = []      # {"kind": "module"|"op", "name", "module"|"func", "inputs", "outputs"}
        self.keep: list[torch.Tensor] = []
        self.calls: dict[str, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.depth == 0:
            outs = _tensors(out)
            if outs:
                ins = _tensors(args) + _tensors(kwargs)
                self.keep.extend(ins + outs)
                self.events.append({"kind": "op", "name": getattr(func, "__name__", str(func)), "func": func,
                                    "args": args, "kwargs": kwargs, "inputs": [id(t) for t in ins],
                                    "outputs": [id(t) for t in outs], "in_shapes": [tuple(t.shape) for t in ins],
                                    "out_shapes": [tuple(t.shape) for t in outs]})
        return out

    def pre_hook(self, name: str):
        def hook(_m, inp):
            if self.depth == 0:
                ins = _tensors(inp)
                self.keep.extend(ins)
                self.events.append({"kind": "module", "name": name, "inputs": [id(t) for t in ins], "outputs": []})
                self.calls[name] = self.calls.get(name, 0) + 1
            self.depth += 1
        return hook

    def post_hook(self, name: str):
        def hook(_m, _inp, out):
            self.depth -= 1
            if self.depth == 0:
                outs = _tensors(out)
                self.keep.extend(outs)
                for ev in reversed(self.events):
                    if ev["kind"] == "module" and ev["name"] == name and not ev["outputs"]:
                        ev["outputs"] = [id(t) for t in outs]
                        break
        return hook


def _probe(model: nn.Module, input_shape: Sequence[int], forward: ForwardFn | None,
           device: torch.device) -> tuple[_Trace, list[tuple[str, nn.Module]], int]:
    atoms = _atomic_modules(model)
    trace = _Trace()
    handles = []
    for name, m in atoms:
        handles.append(m.register_forward_pre_hook(trace.pre_hook(name)))
        handles.append(m.register_forward_hook(trace.post_hook(name)))
    x = torch.zeros((1,) + tuple(int(s) for s in input_shape), device=device)
    trace.keep.append(x)
    was_training = model.training
    model.eval()
    reset_neuron_states(model)
    try:
        with torch.no_grad(), trace:
            if forward is not None:
                forward(model, x, 2)
            else:
                model(x)
    except QSNNError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's model: report what failed and what to do
        how = "forward(model, x, 2)" if forward is not None else "model(x)"
        raise UnsupportedLayerError(
            f"the layer order of {type(model).__name__} is found by running {how} once, with x of shape "
            f"{tuple(x.shape)} (zeros), and that failed: {type(exc).__name__}: {exc}. Check input_shape, or say how "
            "the model runs: layers=[...] (the modules in the order one time step applies them; CLI: --layer-order) "
            "and forward=<callable(model, x, num_steps)>") from exc
    finally:
        for h in handles:
            h.remove()
        reset_neuron_states(model)
        model.train(was_training)
    return trace, atoms, id(x)


def _ordered_from_trace(trace: _Trace, atoms: list[tuple[str, nn.Module]], input_id: int) -> list[tuple[str, nn.Module]]:
    """The layers of the first time step in data-path order, functional ops mapped to modules."""
    modules = dict(atoms)
    neuron_names = [n for n, m in atoms if isinstance(m, _NEURONS)]
    # the first time step: events up to the first repeated neuron call
    first: list[dict] = []
    seen_neurons: set[str] = set()
    for ev in trace.events:
        if ev["kind"] == "module" and ev["name"] in neuron_names:
            if ev["name"] in seen_neurons:
                break
            seen_neurons.add(ev["name"])
        first.append(ev)
    producer: dict[int, dict] = {}
    for ev in first:
        for o in ev["outputs"]:
            producer[o] = ev
    order: list[tuple[str, nn.Module]] = []
    placed: set[int] = set()

    def chain(tensor_id: int) -> list[dict]:
        """The ops between the nearest module output (or the model input) and ``tensor_id``."""
        ops = []
        while tensor_id != input_id and tensor_id in producer and producer[tensor_id]["kind"] == "op":
            ev = producer[tensor_id]
            ops.append(ev)
            data_inputs = [i for i in ev["inputs"] if i in producer or i == input_id]
            if not data_inputs:
                break
            tensor_id = data_inputs[0]
        return ops[::-1]

    last_module = "input"
    for ev in first:
        if ev["kind"] != "module":
            continue
        data_inputs = [i for i in ev["inputs"] if i in producer or i == input_id]
        for op_ev in (chain(data_inputs[0]) if data_inputs else []):
            if id(op_ev) in placed:
                continue
            placed.add(id(op_ev))
            mod = _module_for_op(op_ev, last_module)
            if mod is not None:
                order.append((f"{op_ev['name']}@{last_module}", mod))
        if all(ev["name"] != n for n, _ in order):
            order.append((ev["name"], modules[ev["name"]]))
        last_module = ev["name"]
    return order


def _module_for_op(ev: dict, after: str) -> nn.Module | None:
    """The module equivalent of a functional op on the data path (None: no effect on values)."""
    name = ev["name"].lstrip("_")
    in_shape, out_shape = (ev["in_shapes"] or [()])[0], (ev["out_shapes"] or [()])[0]
    if name in _NEUTRAL_OPS:
        return None
    if name in _FLATTEN_OPS:
        if in_shape == out_shape:
            return None
        if len(out_shape) == 2 and len(in_shape) > 2 and out_shape[0] == in_shape[0]:
            return nn.Flatten()
        return _FunctionalOp(f"{name} to shape {list(out_shape)}", after)
    if name == "avg_pool2d":
        args = list(ev["args"][1:]) + [None] * 3
        k = ev["kwargs"].get("kernel_size", args[0])
        s = ev["kwargs"].get("stride", args[1])
        p = ev["kwargs"].get("padding", args[2] if args[2] is not None else 0)
        return nn.AvgPool2d(k, stride=s if s not in (None, []) else None, padding=p or 0)
    if name in ("dropout", "dropout1d", "dropout2d", "feature_dropout"):
        return nn.Dropout()
    return _FunctionalOp(name, after)


def layer_order(model: nn.Module, input_shape: Sequence[int] | None = None,
                forward: ForwardFn | None = None) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` in the order one time step applies them (see the module docstring)."""
    return inspect_model(model, input_shape, forward=forward).layers


def inspect_model(model: nn.Module, input_shape: Sequence[int] | None = None, *, forward: ForwardFn | None = None,
                  layers: Sequence | None = None) -> ModelCall:
    """Find how ``model`` is called, the layer order of one step and its own T.

    Args:
        model: any spiking torch module (see the module docstring for what is recognised).
        input_shape: one sample's shape, e.g. ``(1, 28, 28)`` or ``(784,)``; needed for models that
            are neither a QSequential nor an ``nn.Sequential`` (one probe pass runs on zeros).
        forward: ``forward(model, x, num_steps)`` for a model called in a way not recognised here.
        layers: the layer order, when it cannot be found from the forward pass (modules or
            ``(name, module)`` pairs in the order one step applies them).

    Raises:
        QSNNError: the probe pass fails, a neuron is never called, or the neurons are called
            unequal numbers of times (messages say what to pass instead).
    """
    from .nn.sequential import QSequential

    explicit = _named(model, layers) if layers is not None else None
    if explicit is not None and forward is not None:
        return ModelCall("custom", explicit, None, forward)
    if isinstance(model, QSequential):
        return ModelCall("custom" if forward else "num_steps", explicit or list(model.named_children()),
                         getattr(model, "num_steps", None), forward)
    takes_num_steps = forward is None and _takes_num_steps(model)
    if takes_num_steps:
        if explicit is None and isinstance(model, nn.Sequential):
            explicit = list(model.named_children())
        if explicit is not None:
            return ModelCall("num_steps", explicit)
    if isinstance(model, nn.Sequential) and forward is None:
        return ModelCall("per_step", explicit or list(model.named_children()))
    if input_shape is None:
        raise QSNNError(f"{type(model).__name__} is not a Sequential: its layer order and time loop are found by "
                        "running it once, which needs input_shape=(C, H, W) or (features,) (CLI: --input-shape)")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    probe_forward = (lambda m, x, steps: m(x, num_steps=steps)) if takes_num_steps else forward
    trace, atoms, input_id = _probe(model, input_shape, probe_forward, device)
    neurons = [n for n, m in atoms if isinstance(m, _NEURONS)]
    if not neurons:
        raise UnsupportedLayerError(f"{type(model).__name__} holds no snntorch.Leaky / QLeaky neuron")
    counts = {n: trace.calls.get(n, 0) for n in neurons}
    never = [n for n, c in counts.items() if c == 0]
    if never:
        raise QSNNError(f"{type(model).__name__}.forward never called neuron(s) {never}; pass layers=[...] "
                        "(CLI: --layer-order) or forward=...")
    if len(set(counts.values())) != 1:
        raise QSNNError(f"{type(model).__name__}: its neurons are called unequal numbers of times in one forward pass "
                        f"({counts}); each LIF layer must run once per step")
    calls = next(iter(counts.values()))
    named = explicit or _ordered_from_trace(trace, atoms, input_id)
    if forward is not None:
        return ModelCall("custom", named, None, forward)
    if takes_num_steps:
        return ModelCall("num_steps", named)
    if calls == 1:
        return ModelCall("per_step", named)
    return ModelCall("own_loop", named, calls)


def _named(model: nn.Module, layers: Sequence) -> list[tuple[str, nn.Module]]:
    names = {id(m): n for n, m in model.named_modules()}
    by_name = dict(model.named_modules())
    out = []
    for i, item in enumerate(layers):
        if isinstance(item, tuple):
            out.append((str(item[0]), item[1]))
        elif isinstance(item, nn.Module):
            out.append((names.get(id(item), f"layer{i}"), item))
        elif isinstance(item, str):
            if item not in by_name:
                raise UnsupportedLayerError(f"layers[{i}]: {type(model).__name__} has no submodule {item!r} "
                                            f"(it has: {', '.join(n for n in by_name if n)})")
            out.append((item, by_name[item]))
        else:
            raise UnsupportedLayerError(f"layers[{i}]: expected an nn.Module, a submodule name or (name, module), "
                                        f"got {type(item).__name__}")
    return out
