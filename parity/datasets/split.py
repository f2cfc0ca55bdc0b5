"""`DataSplit`, the training and validation samples both frameworks consume, the one place that fixes their layout, and
the course's ways of splitting a data set (by count, Keras' validation_split, the C2W3 test part)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

from parity.catalog import ModelSpec
from parity.datasets.store import Padding, PixelScale, Ragged, SampleSource
from parity.errors import DataError
from parity.plan import collate
from parity.spec_types import TextData

SOURCES = ("real", "synthetic")


@dataclass(frozen=True)
class DataSplit:
    """One data set's training source and validation source, exactly as both frameworks consume them.

    `val` is None when the course validates on nothing (spec.validation "none") and is the very
    `train` object when it validates on the training data ("train"). Inputs are
    (N, *spec.input_shape) or ragged token ids; labels follow spec.label_mode (see `make_split`).
    `source` is "real" or "synthetic"; `location` the file or directory read, or "inline"/"generated".
    For the data's provenance (parity.provenance) every loader puts in `info` either "files", the paths
    of the files it read, or "generator", the parameters that generated the data in code.
    `vocabulary`: for tokenized text, the fitted tokenizer's tokens in id order (id 0, padding, is ''),
    so that new text can be encoded as the training text was (parity.saved_models); None otherwise.
    """

    dataset_id: str
    source: str
    train: SampleSource
    val: SampleSource | None
    location: str
    info: Mapping[str, Any] = field(default_factory=dict)
    vocabulary: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source {self.source!r} is not one of {SOURCES}")
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))
        if self.vocabulary is not None:
            object.__setattr__(self, "vocabulary", tuple(self.vocabulary))

    @property
    def val_size(self) -> int:
        """The number of validation samples (0 without validation)."""
        return 0 if self.val is None else len(self.val)

    def head(self, train: int, val: int) -> DataSplit:
        """The first `train` training and `val` validation samples (views of the same arrays)."""
        val_head = None if self.val is None else self.val.head(val)
        return DataSplit(self.dataset_id, self.source, self.train.head(train), val_head, self.location, self.info,
                         self.vocabulary)

    def spec_overrides(self, model_id: str) -> dict[str, Any]:
        """{model_id: sizes only this data fixes} for a job's "spec_overrides" (parity.catalog.shaped_by_data);
        {} when the spec's own sizes hold."""
        overrides = self.info.get("spec_overrides")
        return {model_id: _plain(overrides)} if overrides else {}

    def probe_inputs(self, count: int) -> np.ndarray:
        """Model inputs of the first `count` validation samples (training samples without validation)."""
        source = self.train if self.val is None else self.val
        return collate(source, np.arange(min(count, len(source))))[0]


def _plain(value: Any) -> Any:
    """`value` with read-only mappings and tuples turned into JSON's dicts and lists."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def make_split(
    spec: ModelSpec,
    source: str,
    train: tuple[np.ndarray | Ragged, np.ndarray],
    val: tuple[np.ndarray | Ragged, np.ndarray] | None,
    location: str,
    info: Mapping[str, Any] | None = None,
    scale: PixelScale | None = None,
    vocabulary: Sequence[str] | None = None,
) -> DataSplit:
    """A DataSplit of (x, y) pairs; `val` None for no validation, `val is train` to validate on the training data.

    Dense x is shaped to `spec.input_shape` (left as it is, memory map included, when it already
    has that shape); integer pixels keep their dtype and are scaled per batch by `scale`. Ragged x
    is padded per batch as the spec's text settings say. Labels by `spec.label_mode`: "int" int64
    (N,), "binary" float32 (N, 1), "categorical" float32 one-hot (N, classes) (class ids are
    expanded), "none" (regression targets) float32 (N, k).
    """
    for role, part in (("training", train), ("validation", val)):
        if part is not None and len(part[0]) == 0:
            raise DataError(f"{location}: no {role} samples for {spec.id} ({spec.dataset}); the data set is empty "
                            f"there: give a data set with {role} samples")
    train_source = _source(spec, *train, scale)
    val_source = None if val is None else train_source if val is train else _source(spec, *val, scale)
    return DataSplit(spec.dataset, source, train_source, val_source, location, info or {}, vocabulary)


def _source(spec: ModelSpec, x: np.ndarray | Ragged, y: np.ndarray, scale: PixelScale | None) -> SampleSource:
    labels = _labels(spec, np.asarray(y), len(x))
    if isinstance(x, Ragged):
        data = spec.data
        padding = Padding(data.max_length, data.padding, data.truncating) if isinstance(data, TextData) else Padding()
        return SampleSource(x, labels, padding=padding)
    return SampleSource(_inputs(spec, x), labels, scale=scale)


def _inputs(spec: ModelSpec, x: np.ndarray) -> np.ndarray:
    shape = tuple(x.shape[1:])
    if len(shape) == len(spec.input_shape) and all(want in (None, got) for want, got in zip(spec.input_shape, shape)):
        return x
    if None in spec.input_shape or math.prod(x.shape[1:]) != math.prod(spec.input_shape):
        raise DataError(
            f"{spec.id}: samples of {spec.dataset} have shape {x.shape[1:]}, "
            f"which does not fit the model's input shape {spec.input_shape}"
        )
    return np.ascontiguousarray(x).reshape((len(x), *spec.input_shape))


def _labels(spec: ModelSpec, y: np.ndarray, count: int) -> np.ndarray:
    if len(y) != count:
        raise DataError(f"{spec.id}: {len(y)} labels for {count} samples of {spec.dataset}")
    if spec.label_mode == "int":
        return np.ascontiguousarray(y, dtype=np.int64).reshape(count)
    if spec.label_mode == "binary":
        return np.ascontiguousarray(y, dtype=np.float32).reshape(count, 1)
    if spec.label_mode == "categorical":
        return _one_hot(spec, y)
    return np.ascontiguousarray(y, dtype=np.float32).reshape(count, -1)


def _one_hot(spec: ModelSpec, y: np.ndarray) -> np.ndarray:
    classes = spec.classes
    if y.ndim == 2:
        if y.shape[1] != classes:
            raise DataError(f"{spec.id}: one-hot labels have {y.shape[1]} columns, the model has {classes} classes")
        return np.ascontiguousarray(y, dtype=np.float32)
    ids = np.asarray(y, dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= classes):
        raise DataError(f"{spec.id}: class id {ids.max() if ids.max() >= classes else ids.min()} is out of range "
                        f"for {classes} classes (ids 0..{classes - 1})")
    return np.eye(classes, dtype=np.float32)[ids]


@dataclass(frozen=True)
class CountSplit:
    """The course's "first N train, the rest validate" placed in a data set of `total` items.

    Items [0, train) train and [train, total) validate. `note` is set (for `DataSplit.info` and
    a printed line) when the data is smaller than the course's and the course's proportion was used.
    """

    train: int
    total: int
    note: str | None = None


def course_count_split(
    total: int, course_count: int, course_total: int, location: str, unit: str = "records",
    proportional: bool = False,
) -> CountSplit:
    """Where the course's split by count falls in data of `total` items.

    Data at least as large as the course's (`course_total` items) keeps the course's count, as
    the course's code would, unless `proportional` (data that is not the course's at all, e.g. a
    user's own series for a model of the generated series). Smaller data (a user's own file), or
    any size when `proportional`, keeps the course's proportion, course_count / course_total,
    rounded half up and held so both parts get at least one item; data of fewer than 2 items is
    a DataError naming `location`.
    """
    if total < 2:
        raise DataError(
            f"{location}: too few {unit} ({total}) to give training and validation one each (the course "
            f"trains on the first {course_count} of {course_total}); supply at least 2 {unit}"
        )
    if total == course_total or (total > course_total and not proportional):
        return CountSplit(course_count, total)
    train = (2 * total * course_count + course_total) // (2 * course_total)
    train = min(max(train, 1), total - 1)
    size = "fewer" if total < course_total else "more"
    note = (
        f"{location}: {total} {unit}, {size} than the course's {course_total}, so its split (the first "
        f"{course_count} train, the rest validate) is kept as a proportion: the first {train} train, "
        f"the other {total - train} validate"
    )
    return CountSplit(train, total, note)


def keras_validation_split(count: int, validation_split: float, seed: int,
                           location: str) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows) of Keras' `image_dataset_from_directory(validation_split=..., subset=
    "training"/"validation", seed=...)` over `count` files in Keras' index order (class by class, each class's
    file names sorted), each part in Keras' order.

    keras/src/utils/dataset_utils.py: `index_directory` shuffles the file list with
    `np.random.RandomState(seed).shuffle`; `get_training_or_validation_split` keeps the last
    int(validation_split * count) files for validation and the others for training. A split that
    leaves either part empty (Keras would give an empty training set) is a DataError naming `location`.
    """
    order = np.arange(count)
    np.random.RandomState(seed).shuffle(order)
    val_count = int(validation_split * count)
    if not 0 < val_count < count:
        raise DataError(f"{location}: {count} readable images, so validation_split {validation_split} leaves "
                        f"{val_count} for validation and {count - val_count} for training; give at least "
                        f"{math.ceil(1 / validation_split)} images so both parts get one")
    return order[:-val_count], order[-val_count:]


def course_test_split(count: int, batch_size: int, divisor: int, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(test rows, validation rows) of a validation set of `count` files, as the course v2's C2W3 assignment
    splits a test part off it: `test, val = keras.utils.split_dataset(val_ds, val_batches // divisor)` on the
    batched validation set, so the first (ceil(count / batch_size) // divisor) batches test and the rest validate.

    The files are in Keras' shuffled order (`index_directory` with `np.random.RandomState(seed)`; in
    index order when `seed` is None). The course's dataset also reshuffles them with tf.data's own
    generator before batching, which numpy cannot replay: so the test part has the course's size but
    not its files.
    """
    order = np.arange(count)
    if seed is not None:
        np.random.RandomState(seed).shuffle(order)
    test_count = min((-(-count // batch_size) // divisor) * batch_size, count)
    return order[:test_count], order[test_count:]
