"""The catalog's types: a course model's spec, its typed hyperparameters, data settings and recipe.

Data only, no behaviour beyond validation. Every architecture has one frozen dataclass of
hyperparameters (`Layers` subclasses, keyed by `architecture`), so a misspelt or unknown key
is a TypeError when `parity.specs` is imported, not a value a builder silently ignores. This
module imports nothing from `parity`, so `parity.catalog` and `parity.specs.*` can both import
it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

TASKS = ("multiclass", "binary", "regression", "none")
LOSSES = (
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "mse",
    "huber",
    "none",
)
OPTIMIZERS = ("sgd", "adam", "rmsprop")
# How labels reach the loss: integer class ids, one float 0/1 column, or one-hot float rows.
LABEL_MODES = ("int", "binary", "categorical", "none")
# Where the validation data comes from: the set's own test/validation files, the training data
# itself (the course evaluates on it), a split of one file, or none at all (text generation).
VALIDATION = ("test", "validation", "train", "split", "none")


def _frozen_mapping(value: Mapping | None) -> Mapping | None:
    return None if value is None else MappingProxyType(dict(value))


def _check_choice(owner: str, name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{owner}: {name} {value!r} is not one of {choices}")


@dataclass(frozen=True)
class Optimizer:
    """An optimizer as the course compiles it; every value explicit, none left to defaults."""

    name: str
    learning_rate: float
    momentum: float = 0.0
    # True where the course passed the optimizer as a string ('sgd'), i.e. relied on Keras' default lr.
    keras_default_lr: bool = False

    def __post_init__(self) -> None:
        _check_choice("Optimizer", "name", self.name, OPTIMIZERS)


@dataclass(frozen=True)
class StopRule:
    """The course's stop-at-threshold callback, checked on the epoch-end logs.

    `also` holds further (monitor, threshold) pairs that must all be reached too (c2w1's
    "train accuracy >= 0.95 and val accuracy >= 0.80").
    """

    monitor: str
    threshold: float
    below: bool
    also: tuple[tuple[str, float], ...] = ()

    def reached(self, logs: Mapping[str, float]) -> bool:
        """True when the epoch-end `logs` hold `monitor` and every `also` key, each past its threshold."""
        pairs = ((self.monitor, self.threshold), *self.also)
        return all(key in logs and (float(logs[key]) < limit if self.below else float(logs[key]) >= limit)
                   for key, limit in pairs)

    def values(self, logs: Mapping[str, float]) -> str:
        """The monitored values in `logs`, e.g. "accuracy=0.9612, val_accuracy=0.8050"."""
        keys = (self.monitor, *(key for key, _ in self.also))
        return ", ".join(f"{key}={float(logs[key]):.4f}" for key in keys if key in logs)

    def describe(self) -> str:
        sign = "<" if self.below else ">="
        parts = [f"{self.monitor} {sign} {self.threshold}", *(f"{key} {sign} {limit}" for key, limit in self.also)]
        return "stop when " + " and ".join(parts)


@dataclass(frozen=True)
class Reference:
    """The course's own result for a model: a number where one was printed, and where it came from."""

    text: str
    val_metric: float | None = None


@dataclass(frozen=True)
class LrSchedule:
    """The course's LearningRateScheduler: lr(epoch) = initial * 10 ** (epoch / epochs_per_decade)."""

    initial: float
    epochs_per_decade: float

    def rate(self, epoch: int) -> float:
        return self.initial * 10 ** (epoch / self.epochs_per_decade)


@dataclass(frozen=True)
class LrSweep:
    """The course's learning-rate sweep: train `epochs` epochs under `schedule`, plot loss against lr."""

    schedule: LrSchedule
    epochs: int


@dataclass(frozen=True)
class Generation:
    """Next-word generation after training: seed text, words to add, and how the next word is picked."""

    seed_text: str
    next_words: int
    sampling: str = "greedy"  # greedy argmax (v1 and v2); "top3" samples among the three most likely (v2)

    def __post_init__(self) -> None:
        _check_choice("Generation", "sampling", self.sampling, ("greedy", "top3"))


# ---------------------------------------------------------------- hyperparameters per architecture


@dataclass(frozen=True, kw_only=True)
class Layers:
    """Base of the per-architecture hyperparameters; `architecture` names the builder in both packages."""

    architecture: ClassVar[str]

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, kw_only=True)
class SingleNeuron(Layers):
    architecture: ClassVar[str] = "single_neuron"
    units: int = 1


@dataclass(frozen=True, kw_only=True)
class MlpClassifier(Layers):
    architecture: ClassVar[str] = "mlp_classifier"
    hidden_units: int
    classes: int


@dataclass(frozen=True, kw_only=True)
class CnnClassifier(Layers):
    """N x (Conv2D + MaxPooling2D) -> Flatten -> [Dropout] -> Dense -> head; `rescale` as a first layer (v2)."""

    architecture: ClassVar[str] = "cnn_classifier"
    conv_filters: tuple[int, ...]
    kernel_size: int
    pool_size: int
    hidden_units: int
    classes: int
    flatten_dropout: float = 0.0  # Dropout between Flatten and the hidden Dense (c2w4_rps_cnn)


@dataclass(frozen=True, kw_only=True)
class InceptionTransfer(Layers):
    """A pretrained InceptionV3 trunk cut at `cut_layer`, frozen unless `trainable_base`, with a dense head."""

    architecture: ClassVar[str] = "inception_transfer"
    base: str
    weights: str
    weights_url: str
    cut_layer: str
    trainable_base: bool
    hidden_units: int
    dropout: float
    classes: int


@dataclass(frozen=True, kw_only=True)
class EmbeddingFlattenClassifier(Layers):
    architecture: ClassVar[str] = "embedding_flatten_classifier"
    vocab_size: int
    embedding_dim: int
    hidden_units: int


@dataclass(frozen=True, kw_only=True)
class EmbeddingGapClassifier(Layers):
    architecture: ClassVar[str] = "embedding_gap_classifier"
    vocab_size: int
    embedding_dim: int
    hidden_units: int
    classes: int = 1


@dataclass(frozen=True, kw_only=True)
class BilstmClassifier(Layers):
    """Embedding -> Bidirectional(LSTM) x N -> Dense -> head."""

    architecture: ClassVar[str] = "bilstm_classifier"
    vocab_size: int
    embedding_dim: int
    lstm_units: tuple[int, ...]
    return_sequences: tuple[bool, ...]
    hidden_units: int

    def __post_init__(self) -> None:
        if len(self.lstm_units) != len(self.return_sequences):
            raise ValueError("bilstm_classifier: lstm_units and return_sequences differ in length")


@dataclass(frozen=True, kw_only=True)
class Conv1dClassifier(Layers):
    architecture: ClassVar[str] = "conv1d_classifier"
    vocab_size: int
    embedding_dim: int
    conv_filters: int
    kernel_size: int
    pooling: str
    hidden_units: int

    def __post_init__(self) -> None:
        _check_choice("conv1d_classifier", "pooling", self.pooling, ("global_max", "global_average"))


@dataclass(frozen=True, kw_only=True)
class BigruClassifier(Layers):
    architecture: ClassVar[str] = "bigru_classifier"
    vocab_size: int
    embedding_dim: int
    gru_units: tuple[int, ...]
    return_sequences: tuple[bool, ...]
    hidden_units: int
    variant: str


@dataclass(frozen=True, kw_only=True)
class GloveConvLstmClassifier(Layers):
    architecture: ClassVar[str] = "glove_conv_lstm_classifier"
    vocab_size: int
    embedding_dim: int
    embedding_init: str
    embedding_trainable: bool
    dropout: float
    conv_filters: int
    kernel_size: int
    pool_size: int
    lstm_units: int
    # The pretrained matrix: a (vocab_size, embedding_dim) float32 .npy file that the data loader writes and states
    # in its spec_overrides; None: random weights (the forward check), frozen all the same.
    embedding_weights: str | None = None


@dataclass(frozen=True, kw_only=True)
class TextGenerator(Layers):
    """Embedding -> [Bidirectional] LSTM -> Dense(V, softmax); vocab_size None = known only after tokenizing."""

    architecture: ClassVar[str] = "text_generator"
    vocab_size: int | None
    embedding_dim: int
    lstm_units: int
    bidirectional: bool

    @property
    def classes(self) -> int | None:
        """One class per vocabulary id: the next word (ModelSpec.classes, the one-hot labels, the output layer)."""
        return self.vocab_size


@dataclass(frozen=True, kw_only=True)
class WindowDnn(Layers):
    architecture: ClassVar[str] = "window_dnn"
    hidden_units: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class WindowRnn(Layers):
    architecture: ClassVar[str] = "window_rnn"
    cell: str
    bidirectional: bool
    units: tuple[int, ...]
    return_sequences: tuple[bool, ...]
    output_scale: float

    def __post_init__(self) -> None:
        _check_choice("window_rnn", "cell", self.cell, ("simple_rnn", "lstm"))


@dataclass(frozen=True, kw_only=True)
class WindowConvLstm(Layers):
    """Conv1D -> LSTM x N -> Dense x M -> Dense(1) -> output scaling."""

    architecture: ClassVar[str] = "window_conv_lstm"
    conv_filters: int
    kernel_size: int
    conv_strides: int
    conv_padding: str
    lstm_units: tuple[int, ...]
    return_sequences: tuple[bool, ...]
    dense_units: tuple[int, ...]
    output_scale: float

    def __post_init__(self) -> None:
        _check_choice("window_conv_lstm", "conv_padding", self.conv_padding, ("causal", "valid", "same"))


# ---------------------------------------------------------------- data settings per kind of data set


@dataclass(frozen=True, kw_only=True)
class DataSettings:
    """Base of the per-kind data settings; `urls` are the course's download locations by role."""

    urls: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "urls", _frozen_mapping(self.urls))


@dataclass(frozen=True, kw_only=True)
class InlineData(DataSettings):
    """Data written in the notebook; `probe_x` is the course's own prediction probe (e.g. predict(10))."""

    probe_x: tuple[float, ...] = ()


@dataclass(frozen=True, kw_only=True)
class IdxData(DataSettings):
    """IDX image files (Fashion-MNIST, MNIST): train-* and t10k-*."""


@dataclass(frozen=True, kw_only=True)
class Augmentation:
    """The course's augmentation ranges (v2 preprocessing layers; v1 ImageDataGenerator arguments)."""

    flip: str | None = None
    rotation: float = 0.0  # fraction of a full turn (Keras RandomRotation factor)
    translation: tuple[float, float] = (0.0, 0.0)
    zoom: float = 0.0
    shear: float = 0.0
    contrast: float = 0.0
    fill_mode: str = "nearest"


@dataclass(frozen=True, kw_only=True)
class ImageFolderData(DataSettings):
    """One sub-folder per class, decoded and resized once to `image_size`, pixels times `rescale`."""

    image_size: tuple[int, int]
    rescale: float = 1.0
    color_mode: str = "rgb"
    augmentation: Augmentation | None = None
    preprocess: str | None = None  # "inception_v3": the trunk's own input scaling instead of `rescale`
    shuffle_buffer: int | None = None
    shuffle_seed: int | None = None
    validation_split: float | None = None
    split_seed: int | None = None
    drop_corrupt_files: bool = False
    class_names: tuple[str, ...] | None = None
    present_classes: int | None = None
    test_from_validation_batches: int | None = None
    expected_files: tuple[int, ...] | None = None  # the course's printed counts, for the report
    source: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("ImageFolderData", "color_mode", self.color_mode, ("rgb", "grayscale"))


@dataclass(frozen=True, kw_only=True)
class TextData(DataSettings):
    """Tokenized text classification data: tokenizer settings, padding, and the course's split."""

    tokenizer: str  # "keras2_tokenizer" (v1 Tokenizer), "text_vectorization" (v2), "wordpiece" (v2 subwords)
    vocab_size: int | None = None
    max_length: int | None = None  # None: each batch is padded to its longest sequence
    padding: str = "post"
    truncating: str = "post"
    oov_token: str | None = None
    training_size: int | None = None  # the course's count: the first N records train, the rest validate
    training_split: float | None = None
    shuffle_buffer: int | None = None
    reserved_tokens: tuple[str, ...] = ()
    remove_stopwords: bool = False
    label_lookup: str | None = None
    text_column: int | str | None = None
    label_column: int | str | None = None
    label_map: Mapping[Any, int] | None = None
    num_samples: int | None = None
    extras: Mapping[str, Any] | None = None  # the course's printed checks (vocabulary sizes, toy sentences)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("TextData", "tokenizer", self.tokenizer, ("keras2_tokenizer", "text_vectorization", "wordpiece"))
        _check_choice("TextData", "padding", self.padding, ("pre", "post"))
        _check_choice("TextData", "truncating", self.truncating, ("pre", "post"))
        object.__setattr__(self, "label_map", _frozen_mapping(self.label_map))
        object.__setattr__(self, "extras", _frozen_mapping(self.extras))


@dataclass(frozen=True, kw_only=True)
class TextGenData(DataSettings):
    """Next-word data: every prefix (>= min_ngram_length tokens) of each line, pre-padded, one-hot next word."""

    tokenizer: str = "text_vectorization"
    corpus: str | None = None
    lowercase: bool = True
    line_split: str = "\n"
    min_ngram_length: int = 2
    padding: str = "pre"
    shuffle: bool = True
    random_seed: int | None = None
    max_sequence_len: int | None = None
    expected_ngrams: int | None = None


# Series names (`DataSplit.info["series"]`, keys of `SeriesData.baselines`): the course's generated
# series by variant, the course's CSV file of a CSV data set, or a user's own CSV series.
LAB, ASSIGNMENT, COURSE_FILE, USER_FILE = "lab", "assignment", "file", "user"
SERIES_VARIANTS = (LAB, ASSIGNMENT)


@dataclass(frozen=True, kw_only=True)
class SeasonalPattern:
    """One season of the course's series, s in [0, 1): cos(cos_factor * pi * s) while s < switch,
    else decay_scale / exp(decay_rate * s)."""

    switch: float
    cos_factor: float
    decay_scale: float
    decay_rate: float


@dataclass(frozen=True, kw_only=True)
class SyntheticSeries:
    """One of the course's generated series (course_models.md 6.0), float32 over t = 0..steps-1:
    baseline + slope * t + amplitude * pattern((t mod period) / period) + noise_level * randn(seed)."""

    notebook: str  # where the course defines it
    pattern: SeasonalPattern
    baseline: float
    slope: float
    amplitude: float
    period: int
    noise_level: float
    noise_seed: int
    steps: int
    split_time: int


@dataclass(frozen=True, kw_only=True)
class BaselineSettings:
    """The course's statistical forecasts (C4W1) for one series: naive and a moving average always; with a
    `seasonal_period`, differencing plus the past and plus the smoothed past (`parity.baselines`).

    `expected_mae` / `expected_mse`: the course's values by method name, where it gives them.
    """

    moving_average_window: int
    seasonal_period: int | None = None
    diff_moving_average_window: int | None = None
    smoothing_window: int | None = None
    expected_mae: Mapping[str, float] | None = None
    expected_mse: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        seasonal = (self.diff_moving_average_window, self.smoothing_window)
        if self.seasonal_period is not None and None in seasonal:
            raise ValueError("BaselineSettings: a seasonal_period needs diff_moving_average_window and smoothing_window")
        if self.seasonal_period is None and seasonal != (None, None):
            raise ValueError("BaselineSettings: the differencing windows need a seasonal_period")
        object.__setattr__(self, "expected_mae", _frozen_mapping(self.expected_mae))
        object.__setattr__(self, "expected_mse", _frozen_mapping(self.expected_mse))


@dataclass(frozen=True, kw_only=True)
class SeriesData(DataSettings):
    """A univariate series, cut into windows of `window_size` steps, each with the next step as its target.

    Either generated (`synthetic`: the course's series by variant, "lab" and, where the course has
    one, "assignment") or read from a CSV file (`value_column`, optional `time_column`, the course
    file's `steps` and `split_time`). `known_gaps`: times the course's own file lacks, accepted as
    they are (never filled). `baselines`: the statistical forecasts by series name (a variant, or
    COURSE_FILE for a CSV data set). `window_size` None: no model (each step is its own window).
    """

    window_size: int | None = None
    shuffle_buffer: int | None = None
    expand_dims: bool = False  # windows of shape (window, 1) for Conv1D/RNN inputs
    synthetic: Mapping[str, SyntheticSeries] | None = None
    steps: int | None = None
    split_time: int | None = None
    time_column: int | str | None = None
    value_column: int | str | None = None
    known_gaps: tuple[str, ...] = ()
    baselines: Mapping[str, BaselineSettings] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "synthetic", _frozen_mapping(self.synthetic))
        object.__setattr__(self, "baselines", _frozen_mapping(self.baselines))
        if self.synthetic is not None:
            if LAB not in self.synthetic or not set(self.synthetic) <= set(SERIES_VARIANTS):
                raise ValueError(f"SeriesData: synthetic variants {sorted(self.synthetic)} must include {LAB!r} and "
                                 f"lie in {SERIES_VARIANTS}")
            names = set(self.synthetic)
        elif self.steps is None or self.split_time is None:
            raise ValueError("SeriesData: a CSV series needs the course file's steps and split_time")
        else:
            names = {COURSE_FILE}
        if self.baselines is not None and not set(self.baselines) <= names:
            raise ValueError(f"SeriesData: baselines for {sorted(set(self.baselines) - names)}, which this data "
                             f"does not have (series: {sorted(names)})")


# ---------------------------------------------------------------- the spec


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One course model: data, typed architecture hyperparameters, training recipe, reference."""

    id: str
    part: int
    week: int
    title: str
    dataset: str
    task: str
    layers: Layers | None  # None: the course trains no network for this id (preprocessing, statistics)
    input_shape: tuple[int, ...]
    optimizer: Optimizer | None
    loss: str
    epochs: int
    batch_size: int
    course_params: int | None
    reference: Reference
    data: DataSettings
    validation: str
    label_mode: str
    stop: StopRule | None = None
    lr_schedule: LrSchedule | None = None
    lr_sweep: LrSweep | None = None
    generation: Generation | None = None
    variant_of: str | None = None  # the course model this one is a variant of (selectable, not counted apart)

    def __post_init__(self) -> None:
        _check_choice(self.id, "task", self.task, TASKS)
        _check_choice(self.id, "loss", self.loss, LOSSES)
        _check_choice(self.id, "validation", self.validation, VALIDATION)
        _check_choice(self.id, "label_mode", self.label_mode, LABEL_MODES)
        expected_labels = {
            "sparse_categorical_crossentropy": "int",
            "categorical_crossentropy": "categorical",
            "binary_crossentropy": "binary",
        }.get(self.loss)
        if expected_labels and self.label_mode != expected_labels:
            raise ValueError(f"{self.id}: loss {self.loss} needs label_mode {expected_labels!r}, not {self.label_mode!r}")

    @property
    def architecture(self) -> str | None:
        """The builder name in both model packages; None when the course trains no network."""
        return None if self.layers is None else self.layers.architecture

    @property
    def metric(self) -> str | None:
        """The report's metric: `accuracy` for classification, `mae` for regression."""
        if self.task in ("multiclass", "binary"):
            return "accuracy"
        if self.task == "regression":
            return "mae"
        return None

    @property
    def trainable(self) -> bool:
        """Whether the course trains a network for this id (some labs only preprocess or forecast)."""
        return self.layers is not None

    @property
    def classes(self) -> int:
        """Output units of a classifier's head (1 for binary); 1 for regression."""
        return getattr(self.layers, "classes", 1) if self.task == "multiclass" else 1
