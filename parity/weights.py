"""Keras -> torch weight transfer by layer name, complete or refused (pure numpy).

The only module that knows both layouts. The Keras side exports every layer that holds
variables (tf_models.weights.export_layers): its name path in the model (`hidden`,
`trunk/conv_1` inside a nested model), its class, the config bits a converter needs, whether
it is trainable, and its arrays keyed by the variable path relative to the layer (`kernel`,
`lstm_cell/recurrent_kernel`, `forward_lstm/lstm_cell/bias`). The torch side describes the
module each Keras name goes to (`TorchTarget`, from the model's `keras_layers()`, see
torch_models.weights) and every parameter and buffer of the model.

`plan_transfer` converts each Keras layer with the converter of its (Keras class, torch class)
pair and checks the result as a whole. The completeness rule:

- every Keras layer with variables has a torch module, and every name the torch model maps
  exists in the Keras model;
- every Keras variable is read exactly once, and every tensor of its torch module gets exactly
  one assignment of the right shape;
- every parameter and buffer of the torch model belongs to exactly one mapped module;
- an assignment either copies a converted array, or sets a stated constant (torch's second
  recurrent bias, BatchNorm's `num_batches_tracked`, gamma of `scale=False`), or keeps torch's
  own value where the alignment says so: layers whose class align.copied_keras_kinds does not
  copy keep their torch initialisation (their conversion is still run and checked), and
  `lstm_biases` native keeps torch's own b_hh of an LSTM or SimpleRNN (nn.LSTM, nn.RNN).

Anything else is one WeightMappingError that names every leftover. Trainability follows Keras:
a parameter of a layer with `trainable=False` gets requires_grad=False, and the constants that
stand for a variable Keras does not have (a zero second bias, gamma 1 of `scale=False`, beta 0
of `center=False`) are frozen too, so training moves exactly what Keras moves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parity import align


class WeightMappingError(ValueError):
    """The Keras and torch models do not line up by name, or a layer cannot be converted."""


@dataclass(frozen=True)
class KerasLayer:
    """One Keras layer with variables, as exported by the Keras worker.

    `name` is its name path in the model ("hidden", "trunk/conv_1"); `arrays` are keyed by the
    variable path relative to the layer; `config` holds what a converter reads (e.g.
    `reset_after`, `center`, `scale`, Bidirectional `merge_mode` and its inner `layer` class);
    `flatten_from` is the shape a Flatten flattened before this Dense (through shape-preserving
    layers such as Dropout), None otherwise.
    """

    name: str
    kind: str
    arrays: dict[str, np.ndarray]
    config: dict[str, Any] = field(default_factory=dict)
    trainable: bool = True
    flatten_from: tuple[int, ...] | None = None


@dataclass(frozen=True)
class TorchTarget:
    """The torch module that receives one Keras layer's weights.

    `path` is its qualified name in the torch model ("" for the model itself); `kind` the torch
    class it is or derives from ("Linear", "BatchNorm2d", ...); `tensors` its parameters and
    buffers (names relative to the module, recursively) with their shapes; `settings` the module
    options a converter checks (`num_layers`, `bidirectional`, `nonlinearity`).
    """

    path: str
    kind: str
    tensors: Mapping[str, tuple[int, ...]]
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    """What one torch parameter or buffer receives.

    `array` None keeps torch's own value; `trainable` is requires_grad for a parameter (unused
    for a buffer); `source` names the Keras variable it came from, or the constant and why.
    """

    array: np.ndarray | None
    trainable: bool
    source: str


@dataclass(frozen=True)
class TransferPlan:
    """An assignment for every parameter and buffer of the torch model, by qualified name."""

    assignments: dict[str, Assignment]


def save_keras_layers(path: Path, layers: Sequence[KerasLayer]) -> None:
    """Write layers to `path`: a JSON manifest and layer i's arrays as "i/<relative path>", in one .npz."""
    manifest = [
        {"name": layer.name, "kind": layer.kind, "config": layer.config, "trainable": layer.trainable,
         "flatten_from": layer.flatten_from, "arrays": list(layer.arrays)}
        for layer in layers
    ]
    arrays = {f"{i}/{key}": value for i, layer in enumerate(layers) for key, value in layer.arrays.items()}
    np.savez(path, __manifest__=np.array(json.dumps(manifest)), **arrays)


def load_keras_layers(path: Path) -> list[KerasLayer]:
    """Read layers written by `save_keras_layers`."""
    with np.load(path) as data:
        manifest = json.loads(str(data["__manifest__"]))
        return [
            KerasLayer(
                name=entry["name"],
                kind=entry["kind"],
                arrays={key: data[f"{i}/{key}"] for key in entry["arrays"]},
                config=entry["config"],
                trainable=entry["trainable"],
                flatten_from=tuple(entry["flatten_from"]) if entry["flatten_from"] else None,
            )
            for i, entry in enumerate(manifest)
        ]


class _Variables:
    """A Keras layer's arrays for one converter, recording which ones it read (each at most once)."""

    def __init__(self, layer: KerasLayer) -> None:
        self.layer = layer
        self._taken: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self.layer.arrays

    def take(self, key: str) -> np.ndarray:
        if key not in self.layer.arrays:
            raise WeightMappingError(f"Keras layer {self.layer.name} ({self.layer.kind}) has no variable {key!r}; "
                                     f"it has {sorted(self.layer.arrays)}")
        if key in self._taken:
            raise WeightMappingError(f"Keras variable {self.layer.name}/{key} would go into two torch tensors")
        self._taken.add(key)
        return self.layer.arrays[key]

    def cell_key(self, prefix: str, variable: str) -> str | None:
        """The key of `variable` under `prefix`, directly or inside one cell (`lstm_cell/kernel`); None if absent."""
        matches = [key for key in self.layer.arrays if key.startswith(prefix)
                   and key[len(prefix):].rsplit("/", 1)[-1] == variable and key[len(prefix):].count("/") <= 1]
        if len(matches) > 1:
            raise WeightMappingError(f"Keras layer {self.layer.name}: several variables match {prefix}*/{variable}: "
                                     f"{matches}")
        return matches[0] if matches else None

    def unused(self) -> list[str]:
        return [f"{self.layer.name}/{key}" for key in self.layer.arrays if key not in self._taken]

    def copy(self, key: str, transform: Callable[[np.ndarray], np.ndarray] = lambda a: a) -> Assignment:
        """The variable `key`, converted by `transform`, trainable as the Keras layer is."""
        return Assignment(np.array(transform(self.take(key)), order="C"), self.layer.trainable,
                          f"{self.layer.name}/{key}")


# A converter: one Keras layer's variables -> the assignments of its torch module's tensors (local names).
Converter = Callable[[_Variables, TorchTarget, align.Alignment], dict[str, Assignment]]


def _constant(array: np.ndarray, why: str) -> Assignment:
    """A fixed value standing for something Keras does not have; frozen, since Keras has nothing to train."""
    return Assignment(np.array(array, order="C"), False, why)


def _dense(v: _Variables, target: TorchTarget, alignment: align.Alignment) -> dict[str, Assignment]:
    def torch_layout(kernel: np.ndarray) -> np.ndarray:  # (in, out) -> (out, in)
        shape = v.layer.flatten_from
        if shape is not None and len(shape) == 3 and align.reorder_flatten(alignment):
            # Keras flattened an NHWC map as (H, W, C); torch flattens NCHW as (C, H, W): reorder the input rows.
            # A flattened (T, C) sequence or (H, W) image keeps its order: torch models keep those batch-first.
            height, width, channels = shape
            kernel = kernel.reshape(height, width, channels, -1).transpose(2, 0, 1, 3).reshape(kernel.shape)
        return kernel.T

    out = {"weight": v.copy("kernel", torch_layout)}
    if v.has("bias"):
        out["bias"] = v.copy("bias")
    return out


def _conv(axes: tuple[int, ...]) -> Converter:
    def convert(v: _Variables, target: TorchTarget, alignment: align.Alignment) -> dict[str, Assignment]:
        out = {"weight": v.copy("kernel", lambda kernel: kernel.transpose(axes))}
        if v.has("bias"):
            out["bias"] = v.copy("bias")
        return out

    return convert


def _embedding(v: _Variables, target: TorchTarget, alignment: align.Alignment) -> dict[str, Assignment]:
    return {"weight": v.copy("embeddings")}  # (vocab, dim) in both


def _batchnorm(v: _Variables, target: TorchTarget, alignment: align.Alignment) -> dict[str, Assignment]:
    """gamma, beta, moving mean and variance are per-channel vectors in both frameworks.

    `scale=False` (InceptionV3) has no gamma: torch's weight is 1 and frozen; `center=False`
    has no beta: torch's bias is 0 and frozen (torch with affine=False has neither tensor).
    `num_batches_tracked` gets 0: Keras keeps no count, and torch reads it only when momentum
    is None (a cumulative average), which align.torch_batchnorm never sets.
    """
    out = {"running_mean": v.copy("moving_mean"), "running_var": v.copy("moving_variance")}
    channels = out["running_mean"].array.shape
    if "weight" in target.tensors:
        out["weight"] = v.copy("gamma") if v.has("gamma") else _constant(
            np.ones(channels, np.float32), f"{v.layer.name} has scale=False: gamma 1, frozen")
    if "bias" in target.tensors:
        out["bias"] = v.copy("beta") if v.has("beta") else _constant(
            np.zeros(channels, np.float32), f"{v.layer.name} has center=False: beta 0, frozen")
    if "num_batches_tracked" in target.tensors:
        out["num_batches_tracked"] = _constant(np.array(0, np.int64),
                                               "no Keras counterpart; torch reads it only if momentum=None")
    return out


_GATE_BLOCKS = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
_TORCH_RECURRENT = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}


def _check_recurrent(v: _Variables, kind: str, config: Mapping[str, Any], target: TorchTarget,
                     bidirectional: bool) -> None:
    name = v.layer.name
    if target.settings.get("num_layers", 1) != 1:
        raise WeightMappingError(f"{name}: one Keras {kind} maps to a one-layer torch {target.kind}, which has "
                                 f"num_layers={target.settings['num_layers']}; use one torch module per Keras layer")
    if bool(target.settings.get("bidirectional", False)) != bidirectional:
        raise WeightMappingError(f"{name}: Keras {'Bidirectional ' if bidirectional else ''}{kind} needs torch "
                                 f"{target.kind}(bidirectional={bidirectional})")
    activations = {"activation": config.get("activation", "tanh"),
                   "recurrent_activation": config.get("recurrent_activation", "sigmoid")}
    gates_differ = kind != "SimpleRNN" and activations["recurrent_activation"] != "sigmoid"
    if activations["activation"] != "tanh" or gates_differ:
        raise WeightMappingError(f"{name}: torch {target.kind} computes tanh with sigmoid gates; the Keras {kind} has "
                                 f"{activations}; rebuild it with the defaults")
    if kind == "SimpleRNN" and target.settings.get("nonlinearity", "tanh") != "tanh":
        raise WeightMappingError(f"{name}: Keras SimpleRNN uses tanh; build torch nn.RNN(nonlinearity='tanh')")
    if kind == "GRU" and not config.get("reset_after", True):
        raise WeightMappingError(f"{name}: GRU with reset_after=False applies the reset gate before the recurrent "
                                 "matmul, torch.nn.GRU after it; rebuild the Keras GRU with reset_after=True")


def _recurrent_direction(v: _Variables, kind: str, prefix: str, suffix: str,
                         alignment: align.Alignment) -> dict[str, Assignment]:
    """torch `*_l0{suffix}` tensors from the Keras cell under `prefix`: kernels (in, nH) -> (nH, in)."""
    blocks = _GATE_BLOCKS[kind]
    reorder = kind == "GRU" and align.reorder_gru_gates(alignment)

    def gates(array: np.ndarray) -> np.ndarray:  # gate blocks on the last axis
        if not reorder:
            return array
        z, r, h = np.split(array, 3, axis=-1)  # Keras [z, r, h] -> torch [r, z, n]
        return np.concatenate([r, z, h], axis=-1)

    keys = {variable: v.cell_key(prefix, variable) for variable in ("kernel", "recurrent_kernel", "bias")}
    missing = [variable for variable in ("kernel", "recurrent_kernel") if keys[variable] is None]
    if missing:
        raise WeightMappingError(f"Keras {kind} {v.layer.name} has no {prefix}*/{missing[0]}; it has "
                                 f"{sorted(v.layer.arrays)}")
    out = {f"weight_ih_l0{suffix}": v.copy(keys["kernel"], lambda k: gates(k).T),
           f"weight_hh_l0{suffix}": v.copy(keys["recurrent_kernel"], lambda k: gates(k).T)}
    if keys["bias"] is None:
        return out
    if kind == "GRU":
        bias = v.take(keys["bias"])  # (2, 3H) = [input; recurrent] with reset_after=True
        if bias.ndim != 2:
            raise WeightMappingError(f"{v.layer.name}: GRU bias {bias.shape} is from reset_after=False; rebuild the "
                                     "Keras GRU with reset_after=True")
        source = f"{v.layer.name}/{keys['bias']}"
        return out | {f"bias_ih_l0{suffix}": Assignment(np.array(gates(bias[0])), v.layer.trainable, f"{source}[0]"),
                      f"bias_hh_l0{suffix}": Assignment(np.array(gates(bias[1])), v.layer.trainable, f"{source}[1]")}
    out[f"bias_ih_l0{suffix}"] = v.copy(keys["bias"])
    units = out[f"bias_ih_l0{suffix}"].array.shape[0] // blocks
    if not align.zero_lstm_recurrent_bias(alignment):  # LSTM and SimpleRNN: one Keras bias, two torch biases
        out[f"bias_hh_l0{suffix}"] = Assignment(None, v.layer.trainable, "lstm_biases native: torch's own b_hh")
    else:
        # b_ih + b_hh is Keras' one bias: b_hh is 0 and frozen, or training would move the sum twice as fast.
        out[f"bias_hh_l0{suffix}"] = _constant(np.zeros(blocks * units, np.float32),
                                               f"{v.layer.name}: Keras {kind} has one bias; b_hh 0, frozen")
    return out


def _recurrent(kind: str) -> Converter:
    """LSTM (gates [i, f, c, o] = torch [i, f, g, o]), GRU ([z, r, h] -> torch [r, z, n]), SimpleRNN (tanh)."""

    def convert(v: _Variables, target: TorchTarget, alignment: align.Alignment) -> dict[str, Assignment]:
        _check_recurrent(v, kind, v.layer.config, target, bidirectional=False)
        return _recurrent_direction(v, kind, "", "", alignment)

    return convert


def _bidirectional(kind: str) -> Converter:
    """Bidirectional(kind): the forward layer to torch's `*_l0`, the backward one to `*_l0_reverse`.

    The weights do not depend on `merge_mode`; the torch model merges its two output halves the
    way Keras does ("concat", the default, is torch's own layout: forward features first).
    """

    def convert(v: _Variables, target: TorchTarget, alignment: align.Alignment) -> dict[str, Assignment]:
        config = v.layer.config
        inner = (config.get("layer"), config.get("backward_layer"))
        if inner != (kind, kind):
            raise WeightMappingError(f"{v.layer.name}: Bidirectional of {inner[0]} (backward {inner[1]}) cannot go "
                                     f"into a torch {target.kind}; it holds a Keras {kind} in both directions")
        _check_recurrent(v, kind, config.get("inner", {}), target, bidirectional=True)
        return (_recurrent_direction(v, kind, f"{config['forward']}/", "", alignment)
                | _recurrent_direction(v, kind, f"{config['backward']}/", "_reverse", alignment))

    return convert


CONVERTERS: dict[tuple[str, str], Converter] = {
    ("Dense", "Linear"): _dense,
    ("Conv1D", "Conv1d"): _conv((2, 1, 0)),  # (k, in, out) -> (out, in, k)
    ("Conv2D", "Conv2d"): _conv((3, 2, 0, 1)),  # (kh, kw, in, out) -> (out, in, kh, kw)
    ("Embedding", "Embedding"): _embedding,
    ("BatchNormalization", "BatchNorm1d"): _batchnorm,
    ("BatchNormalization", "BatchNorm2d"): _batchnorm,
    **{(kind, torch_kind): _recurrent(kind) for kind, torch_kind in _TORCH_RECURRENT.items()},
    **{("Bidirectional", torch_kind): _bidirectional(kind) for kind, torch_kind in _TORCH_RECURRENT.items()},
}
# The torch classes a target may be (or derive from), e.g. KerasBatchNorm2d counts as BatchNorm2d.
TORCH_KINDS = frozenset(torch_kind for _, torch_kind in CONVERTERS)


def _qualified(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _convert(layer: KerasLayer, target: TorchTarget, alignment: align.Alignment,
             problems: list[str]) -> dict[str, Assignment]:
    """One layer's assignments (local torch names), every problem appended to `problems`."""
    converter = CONVERTERS.get((layer.kind, target.kind))
    if converter is None:
        known = ", ".join(sorted({f"{k}->{t}" for k, t in CONVERTERS}))
        problems.append(f"no converter for Keras {layer.kind} -> torch {target.kind} ({layer.name}); known: {known}")
        return {}
    variables = _Variables(layer)
    try:
        local = converter(variables, target, alignment)
    except WeightMappingError as error:
        problems.append(str(error))
        return {}
    problems += [f"Keras variable {name} is not transferred" for name in variables.unused()]
    where = target.path or "the model"
    problems += [f"converter gives {layer.name} a tensor {name!r} that torch {where} ({target.kind}) lacks"
                 for name in local if name not in target.tensors]
    problems += [f"torch {_qualified(target.path, name)} gets nothing from Keras {layer.name}"
                 for name in target.tensors if name not in local]
    for name, assignment in local.items():
        expected = target.tensors.get(name)
        if assignment.array is not None and expected is not None and tuple(assignment.array.shape) != tuple(expected):
            problems.append(f"torch {_qualified(target.path, name)} has shape {tuple(expected)}, Keras "
                            f"{assignment.source} converts to {tuple(assignment.array.shape)}")
    if layer.kind not in align.copied_keras_kinds(alignment):
        reason = (f"{layer.kind} keeps torch's own initialisation under {alignment.describe()} "
                  "(align.copied_keras_kinds)")
        return {name: Assignment(None, layer.trainable, reason) for name in target.tensors}
    return local


def plan_transfer(layers: Sequence[KerasLayer], targets: Mapping[str, TorchTarget],
                  model_tensors: Mapping[str, tuple[int, ...]],
                  alignment: align.Alignment = align.ALIGNED) -> TransferPlan:
    """An assignment for every tensor in `model_tensors` (qualified name -> shape), or one error naming all leftovers.

    `targets` maps each Keras layer name to its torch module (torch_models.weights builds both
    mappings from a model). `alignment` decides the documented layout choices (flatten order,
    GRU gate order, LSTM biases) and which layers are copied at all (module docstring).
    """
    problems: list[str] = []
    names = [layer.name for layer in layers]
    problems += [f"Keras exports two layers named {name!r}" for name in sorted({n for n in names
                                                                              if names.count(n) > 1})]
    unmapped = [f"{layer.name} ({layer.kind})" for layer in layers if layer.name not in targets]
    if unmapped:
        problems.append(f"Keras layers with weights but no torch module in keras_layers(): {', '.join(unmapped)}")
    unknown = [name for name in targets if name not in names]
    if unknown:
        problems.append(f"keras_layers() names {', '.join(unknown)}, which the Keras model lacks; its layers with "
                        f"weights are {', '.join(names)}")
    assignments: dict[str, Assignment] = {}
    owner: dict[str, str] = {}
    for layer in layers:
        if layer.name not in targets:
            continue
        target = targets[layer.name]
        for name, assignment in _convert(layer, target, alignment, problems).items():
            qualified = _qualified(target.path, name)
            if qualified in owner:
                problems.append(f"torch {qualified} would be assigned twice "
                                f"(Keras {owner[qualified]} and {layer.name})")
            owner[qualified] = layer.name
            assignments[qualified] = assignment
    orphans = [name for name in model_tensors if name not in assignments]
    if orphans:
        problems.append(f"torch tensors that no Keras layer assigns: {', '.join(orphans)}")
    outside = [name for name in assignments if name not in model_tensors]
    if outside:
        problems.append(f"mapped torch tensors that are not in the model: {', '.join(outside)}")
    if problems:
        raise WeightMappingError("Keras -> torch weight transfer is incomplete (fix keras_layers() or the Keras layer "
                                 "names):\n  - " + "\n  - ".join(problems))
    return TransferPlan(assignments)
