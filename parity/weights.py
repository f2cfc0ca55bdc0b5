"""Keras -> torch weight mapping, layer type by layer type (pure numpy).

The only module that knows both layouts. The Keras worker exports its layers in order
(`save_keras_layers`); the torch worker lists its weight modules in registration order and
asks `keras_to_torch` for the arrays of each one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity import align

# Keras layer class -> the torch module class that holds the same weights.
# A torch subclass (e.g. torch_models.layers.KerasBatchNorm2d) counts as its torch base class.
KERAS_TO_TORCH = {
    "Dense": "Linear",
    "Conv2D": "Conv2d",
    "Embedding": "Embedding",
    "BatchNormalization": "BatchNorm2d",
    "GRU": "GRU",
    "LSTM": "LSTM",
}
# Keras layers without weights: nothing to transfer, listed so an unknown layer is an error.
WEIGHTLESS = frozenset(
    {"InputLayer", "Flatten", "MaxPooling2D", "GlobalAveragePooling1D", "Dropout", "Activation"}
)


class WeightMappingError(ValueError):
    """The two models do not line up layer by layer."""


@dataclass(frozen=True)
class KerasLayer:
    """One Keras layer's weights as exported by the Keras worker."""

    name: str
    kind: str
    arrays: dict[str, np.ndarray]
    flatten_from: tuple[int, ...] | None = None


def save_keras_layers(path: Path, layers: list[KerasLayer]) -> None:
    """Write layers to `path` (.npz arrays plus a JSON manifest inside the same file)."""
    manifest = [
        {"name": layer.name, "kind": layer.kind, "arrays": list(layer.arrays), "flatten_from": layer.flatten_from}
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
                flatten_from=tuple(entry["flatten_from"]) if entry["flatten_from"] else None,
            )
            for i, entry in enumerate(manifest)
        ]


def weighted_layers(layers: list[KerasLayer]) -> list[KerasLayer]:
    """The layers that carry weights; an unknown layer type raises."""
    unknown = [f"{l.name} ({l.kind})" for l in layers if l.kind not in KERAS_TO_TORCH and l.kind not in WEIGHTLESS]
    if unknown:
        raise WeightMappingError(f"no Keras->torch mapping for layer(s): {', '.join(unknown)}")
    return [layer for layer in layers if layer.kind in KERAS_TO_TORCH]


def _dense(layer: KerasLayer, alignment: align.Alignment) -> dict[str, np.ndarray]:
    kernel = layer.arrays["kernel"]  # (in, out)
    if layer.flatten_from is not None and len(layer.flatten_from) == 3 and align.reorder_flatten(alignment):
        # Keras flattened (H, W, C); torch flattens NCHW as (C, H, W): reorder the input rows.
        height, width, channels = layer.flatten_from
        kernel = kernel.reshape(height, width, channels, -1).transpose(2, 0, 1, 3).reshape(kernel.shape)
    out = {"weight": np.ascontiguousarray(kernel.T)}
    if "bias" in layer.arrays:
        out["bias"] = layer.arrays["bias"]
    return out


def _conv2d(layer: KerasLayer, alignment: align.Alignment) -> dict[str, np.ndarray]:
    out = {"weight": np.ascontiguousarray(layer.arrays["kernel"].transpose(3, 2, 0, 1))}  # (kh,kw,in,out)->(out,in,kh,kw)
    if "bias" in layer.arrays:
        out["bias"] = layer.arrays["bias"]
    return out


def _embedding(layer: KerasLayer, alignment: align.Alignment) -> dict[str, np.ndarray]:
    return {"weight": layer.arrays["embeddings"]}  # (vocab, dim) in both


def _batchnorm(layer: KerasLayer, alignment: align.Alignment) -> dict[str, np.ndarray]:
    names = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
    return {names[key]: value for key, value in layer.arrays.items()}  # per-channel vectors in both


def _gru(layer: KerasLayer, alignment: align.Alignment) -> dict[str, np.ndarray]:
    arrays = layer.arrays
    if "bias" in arrays and arrays["bias"].ndim != 2:
        raise WeightMappingError(f"GRU {layer.name} has reset_after=False (bias {arrays['bias'].shape}): torch.nn.GRU "
                                 "applies the reset gate after the recurrent matmul; rebuild it with reset_after=True")

    def torch_order(array: np.ndarray) -> np.ndarray:
        z, r, h = np.split(array, 3, axis=-1)  # Keras [z, r, h] -> torch [r, z, n]
        return np.concatenate([r, z, h] if align.reorder_gru_gates(alignment) else [z, r, h], axis=-1)

    out = {
        "weight_ih_l0": np.ascontiguousarray(torch_order(arrays["kernel"]).T),  # (in, 3H) -> (3H, in)
        "weight_hh_l0": np.ascontiguousarray(torch_order(arrays["recurrent_kernel"]).T),  # (H, 3H) -> (3H, H)
    }
    if "bias" in arrays:
        input_bias, recurrent_bias = arrays["bias"]  # (2, 3H) = [input; recurrent]
        out |= {"bias_ih_l0": torch_order(input_bias), "bias_hh_l0": torch_order(recurrent_bias)}
    return out


def _lstm(layer: KerasLayer, alignment: align.Alignment) -> dict[str, np.ndarray]:
    arrays = layer.arrays  # gate order [i, f, c, o] in both
    out = {
        "weight_ih_l0": np.ascontiguousarray(arrays["kernel"].T),  # (in, 4H) -> (4H, in)
        "weight_hh_l0": np.ascontiguousarray(arrays["recurrent_kernel"].T),  # (H, 4H) -> (4H, H)
    }
    if "bias" in arrays:
        out["bias_ih_l0"] = arrays["bias"]
        if align.zero_lstm_recurrent_bias(alignment):
            out["bias_hh_l0"] = np.zeros_like(arrays["bias"])  # b_ih + b_hh is Keras' one bias
    return out  # lstm_biases native: bias_hh_l0 keeps torch's own initialisation


_CONVERTERS = {"Dense": _dense, "Conv2D": _conv2d, "Embedding": _embedding, "BatchNormalization": _batchnorm,
               "GRU": _gru, "LSTM": _lstm}


def keras_to_torch(layer: KerasLayer, torch_kind: str, alignment: align.Alignment = align.ALIGNED) -> dict[str, np.ndarray]:
    """The torch parameters (name -> array) for the module of class `torch_kind` that mirrors `layer`.

    `alignment` decides the layout choices that are documented differences (flatten order,
    GRU gate order, LSTM biases); the default maps every layer exactly.
    """
    expected = KERAS_TO_TORCH.get(layer.kind)
    if expected != torch_kind:
        raise WeightMappingError(
            f"Keras layer {layer.name} ({layer.kind}) maps to torch {expected}, but the torch module is {torch_kind}"
        )
    return _CONVERTERS[layer.kind](layer, alignment)


def plan_transfer(layers: list[KerasLayer], torch_kinds: list[str],
                  alignment: align.Alignment = align.ALIGNED) -> list[dict[str, np.ndarray] | None]:
    """Arrays for each torch weight module, in order; the two sequences must line up one to one.

    A module whose Keras layer kind keeps its own torch initialisation under `alignment`
    (align.copied_keras_kinds) gets None.
    """
    keras_weighted = weighted_layers(layers)
    if len(keras_weighted) != len(torch_kinds):
        raise WeightMappingError(
            f"Keras has {len(keras_weighted)} weight layers "
            f"({', '.join(l.kind for l in keras_weighted)}), torch has {len(torch_kinds)} ({', '.join(torch_kinds)})"
        )
    copied = align.copied_keras_kinds(alignment)
    return [keras_to_torch(layer, kind, alignment) if layer.kind in copied else None
            for layer, kind in zip(keras_weighted, torch_kinds)]
