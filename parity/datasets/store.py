"""Index-addressable samples, and the data directory both workers read them from.

A `SampleSource` holds one split's N samples as arrays that can be memory-mapped: dense
inputs (numbers, or integer pixels that each batch scales to float32) or ragged token-id
lists (a flat int32 array plus int64 offsets, padded per batch), and labels in the dtype the
loss takes. Nothing here builds a batch: `parity.plan.collate` does, for both frameworks.

On disk (`save_sources`), a data directory holds `manifest.json` and one .npy file per array.
An array that already is a whole .npy file opened with `mmap_mode="r"` (e.g. the decoded-image
cache) is referenced by its path instead of copied; workers open every file with mmap_mode="r",
so no worker holds a whole image set in memory.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
FORMAT = 1
SIDES = ("pre", "post")


@dataclass(frozen=True)
class Ragged:
    """N sequences of token ids: sequence i is values[offsets[i]:offsets[i + 1]]."""

    values: np.ndarray  # int32 (total,)
    offsets: np.ndarray  # int64 (N + 1,), non-decreasing

    def __post_init__(self) -> None:
        if self.values.ndim != 1 or self.values.dtype != np.int32:
            raise ValueError(f"ragged values must be a flat int32 array, got {self.values.dtype} {self.values.shape}")
        if self.offsets.ndim != 1 or self.offsets.dtype != np.int64 or len(self.offsets) == 0:
            raise ValueError(f"ragged offsets must be a non-empty int64 array, got {self.offsets.dtype} {self.offsets.shape}")
        if self.offsets[-1] > len(self.values) or np.any(np.diff(self.offsets) < 0):
            raise ValueError("ragged offsets must be non-decreasing and end within the values")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        return self.values[self.offsets[index] : self.offsets[index + 1]]

    def head(self, count: int) -> Ragged:
        """The first `count` sequences (views, no copy)."""
        return Ragged(self.values, self.offsets[: count + 1])


def ragged_array(sequences: Iterable[Sequence[int]]) -> Ragged:
    """Token-id lists of any lengths as one in-memory `Ragged` (int32 values, int64 offsets)."""
    rows = [np.asarray(sequence, dtype=np.int64).reshape(-1) for sequence in sequences]
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    offsets = np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths)])
    values = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    if values.size and (values.min() < 0 or values.max() > np.iinfo(np.int32).max):
        raise ValueError("token ids must lie in [0, 2**31 - 1] to be stored as int32")
    return Ragged(values.astype(np.int32), offsets)


def write_ragged(path: str | os.PathLike, sequences: Iterable[Sequence[int]]) -> Ragged:
    """Write token-id lists to directory `path` (values.npy, offsets.npy); returns them memory-mapped.

    The text loaders' one entry point for ragged text: `SampleSource(write_ragged(dir, ids), labels,
    padding=Padding(...))`, or `ragged_array(ids)` when the lists need not outlive the run.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    ragged = ragged_array(sequences)
    np.save(path / "values.npy", ragged.values)
    np.save(path / "offsets.npy", ragged.offsets)
    return read_ragged(path)


def read_ragged(path: str | os.PathLike) -> Ragged:
    """The token-id lists `write_ragged` wrote to directory `path`, memory-mapped."""
    path = Path(path)
    return Ragged(np.load(path / "values.npy", mmap_mode="r"), np.load(path / "offsets.npy", mmap_mode="r"))


@dataclass(frozen=True)
class PixelScale:
    """How a batch of integer pixels becomes float32: pixels * factor, or pixels / factor when `divide`, then
    + offset when `offset` is not 0, each step one float32 operation.

    Multiplying is Keras' `Rescaling(1/255)` and `ImageDataGenerator(rescale=1/255)`; dividing is the
    notebooks' numpy `images / 255.0` (float32 division is bit-identical to that float64 division cast
    to float32 for every uint8 value; multiplying by float32(1/255) differs from it in 126 of 256).
    `PixelScale(127.5, divide=True, offset=-1.0)` is Keras' `inception_v3.preprocess_input` (mode "tf":
    `x /= 127.5; x -= 1.0` on float32; adding -1.0 is subtracting 1.0 in IEEE arithmetic).
    """

    factor: float
    divide: bool = False
    offset: float = 0.0

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        x = pixels.astype(np.float32)
        x = x / np.float32(self.factor) if self.divide else x * np.float32(self.factor)
        return x + np.float32(self.offset) if self.offset else x


@dataclass(frozen=True)
class Padding:
    """How a batch of token-id lists becomes a rectangle of int32 (Keras `pad_sequences` semantics, value 0).

    `length` None pads each batch to its longest sequence (Keras 3 TextVectorization without
    output_sequence_length); otherwise longer sequences lose tokens on the `truncating` side.
    """

    length: int | None = None
    padding: str = "post"
    truncating: str = "post"

    def __post_init__(self) -> None:
        if self.padding not in SIDES or self.truncating not in SIDES:
            raise ValueError(f"padding and truncating must be one of {SIDES}, got {self.padding!r}, {self.truncating!r}")
        if self.length is not None and self.length < 0:
            raise ValueError(f"padding length must be >= 0 or None, got {self.length}")


@dataclass(frozen=True)
class SampleSource:
    """One split's samples, addressed by index: inputs `x` and labels `y` (N rows each).

    x: a dense array (N, *input_shape), integer pixels when `scale` is set; or `Ragged` token ids,
    padded per batch as `padding` says. y: int64 (N,) class ids, float32 (N, 1) binary labels or
    regression targets, float32 (N, C) one-hot rows. Arrays may be read-only memory maps.
    """

    x: np.ndarray | Ragged
    y: np.ndarray
    scale: PixelScale | None = None
    padding: Padding | None = None

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} inputs but {len(self.y)} labels")
        ragged = isinstance(self.x, Ragged)
        if self.scale is not None and (ragged or not np.issubdtype(self.x.dtype, np.integer)):
            raise ValueError(f"a pixel scale applies to integer pixel arrays, not {type(self.x).__name__}")
        if self.padding is not None and not ragged:
            raise ValueError("padding applies to ragged token ids only")

    def __len__(self) -> int:
        return len(self.y)

    def head(self, count: int) -> SampleSource:
        """The first `count` samples (views of the same arrays)."""
        return SampleSource(self.x.head(count) if isinstance(self.x, Ragged) else self.x[:count], self.y[:count],
                            self.scale, self.padding)


@dataclass(frozen=True)
class Sources:
    """What a worker trains on: the training source and the validation source (None: no validation)."""

    train: SampleSource
    val: SampleSource | None


def save_sources(directory: str | os.PathLike, train: SampleSource, val: SampleSource | None) -> Path:
    """Write a data directory (manifest.json + .npy files); returns it. `val is train` is stored once."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"format": FORMAT, "train": _write_source(directory, "train", train)}
    manifest["val"] = None if val is None else "train" if val is train else _write_source(directory, "val", val)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return directory


def load_sources(directory: str | os.PathLike) -> Sources:
    """The sources of a data directory written by `save_sources`, every array memory-mapped read-only."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{manifest_path}: not a readable data manifest ({error}); write it with save_sources") from None
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{manifest_path}: manifest format {manifest.get('format')!r}, this code reads format {FORMAT}")
    train = _read_source(directory, manifest["train"])
    val = manifest["val"]
    return Sources(train, None if val is None else train if val == "train" else _read_source(directory, val))


def _write_source(directory: Path, name: str, source: SampleSource) -> dict[str, Any]:
    entry: dict[str, Any] = {"size": len(source), "y": _write_array(directory, f"{name}-y.npy", source.y)}
    if isinstance(source.x, Ragged):
        padding = source.padding or Padding()
        entry["x"] = {"kind": "ragged", "values": _write_array(directory, f"{name}-x-values.npy", source.x.values),
                      "offsets": _write_array(directory, f"{name}-x-offsets.npy", source.x.offsets),
                      "padding": {"length": padding.length, "padding": padding.padding, "truncating": padding.truncating}}
    else:
        scale = None if source.scale is None else asdict(source.scale)
        entry["x"] = {"kind": "dense", "file": _write_array(directory, f"{name}-x.npy", source.x), "scale": scale}
    return entry


def _read_source(directory: Path, entry: dict[str, Any]) -> SampleSource:
    x_entry = entry["x"]
    y = _read_array(directory, entry["y"])
    if x_entry["kind"] == "ragged":
        ragged = Ragged(_read_array(directory, x_entry["values"]), _read_array(directory, x_entry["offsets"]))
        return SampleSource(ragged, y, padding=Padding(**x_entry["padding"]))
    scale = x_entry["scale"]
    return SampleSource(_read_array(directory, x_entry["file"]), y, scale=None if scale is None else PixelScale(**scale))


def _write_array(directory: Path, name: str, array: np.ndarray) -> str:
    """Save `array` as directory/name, or return the absolute path of the .npy file it already is."""
    whole_file = whole_npy_file(array)
    if whole_file is not None:
        return str(whole_file)
    np.save(directory / name, np.ascontiguousarray(array))
    return name


def _read_array(directory: Path, reference: str) -> np.ndarray:
    return np.load(directory / reference, mmap_mode="r")  # an absolute reference replaces the directory


def whole_npy_file(array: np.ndarray) -> Path | None:
    """The .npy file `array` maps entirely (np.load(..., mmap_mode="r") of it, not a view of it), else None."""
    if not (isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap) and array.mode == "r"
            and array.filename and str(array.filename).endswith(".npy")):
        return None
    on_disk = np.load(array.filename, mmap_mode="r")
    same = on_disk.shape == array.shape and on_disk.dtype == array.dtype and on_disk.offset == array.offset
    return Path(array.filename).resolve() if same else None
