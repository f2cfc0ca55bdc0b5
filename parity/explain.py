"""`parity explain MODEL`: the framework differences one course model meets, and its Keras and Lightning source.

Which differences of `parity.align.DIFFERENCES` apply to a model is decided here, in one place:
RULES holds one rule per difference, a function of the spec (its layers, from `model_layers`,
and its recipe: optimizer, loss, task, lr sweep) that says why the difference applies, or None.
A rule marked `every_model` is a difference of the platform (summation order, TF32, ...) that
every trained model meets; a rule with an `unused` note is one no course model triggers today
(measured on a probe, for users' own models). Each difference carries its measured effect from
docs/differences.json (written by `parity differences`). The sources are read as text (ast),
so neither framework is imported.
"""

from __future__ import annotations

import ast
import json
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parity import align
from parity.catalog import ModelSpec
from parity.model_facts import model_packages, package_dir

MEASUREMENTS = Path(__file__).resolve().parents[1] / "docs" / "differences.json"
MIN_COLUMN = 60  # characters per column below which the two sources are printed one after the other
COLUMN_GAP = " | "
INITIALISED_KINDS = ("Dense", "Conv1D", "Conv2D", "SimpleRNN", "LSTM", "GRU")  # kernel_init
SQUARING_OPTIMIZERS = ("adam", "rmsprop")  # embedding_sparse_gradient: rules that square the gradient


@dataclass(frozen=True)
class LayerUse:
    """A Keras layer class in a model: whether it starts from random weights and whether it trains."""

    kind: str
    fresh: bool = True  # False: loaded weights (a pretrained trunk, GloVe vectors)
    trains: bool = True  # False: frozen (weights, and BatchNormalization's moving statistics)


def _recurrent(cell: str, bidirectional: bool) -> list[LayerUse]:
    return [LayerUse("Bidirectional"), LayerUse(cell)] if bidirectional else [LayerUse(cell)]


def _window_rnn(h: Any) -> list[LayerUse]:
    return [*_recurrent({"simple_rnn": "SimpleRNN", "lstm": "LSTM"}[h.cell], h.bidirectional),
            LayerUse("Dense"), LayerUse("Lambda")]


def _inception(h: Any) -> list[LayerUse]:
    trunk = [LayerUse(kind, fresh=False, trains=h.trainable_base)
             for kind in ("Conv2D", "BatchNormalization", "MaxPooling2D", "AveragePooling2D")]
    return [*trunk, LayerUse("Flatten"), LayerUse("Dense"), LayerUse("Dropout"), LayerUse("Dense")]


# The Keras layers of each architecture, in order (the builders in tf_models/ build them from the same spec).
ARCHITECTURE_LAYERS: dict[str, Callable[[Any], list[LayerUse]]] = {
    "single_neuron": lambda h: [LayerUse("Dense")],
    "mlp_classifier": lambda h: [LayerUse("Flatten"), LayerUse("Dense")],
    "cnn_classifier": lambda h: [LayerUse("Conv2D"), LayerUse("MaxPooling2D"), LayerUse("Flatten"),
                                 *([LayerUse("Dropout")] if h.flatten_dropout else []), LayerUse("Dense")],
    "inception_transfer": _inception,
    "embedding_flatten_classifier": lambda h: [LayerUse("Embedding"), LayerUse("Flatten"), LayerUse("Dense")],
    "embedding_gap_classifier": lambda h: [LayerUse("Embedding"), LayerUse("GlobalAveragePooling1D"),
                                           LayerUse("Dense")],
    "bilstm_classifier": lambda h: [LayerUse("Embedding"), *_recurrent("LSTM", True), LayerUse("Dense")],
    "conv1d_classifier": lambda h: [
        LayerUse("Embedding"), LayerUse("Conv1D"),
        LayerUse({"global_max": "GlobalMaxPooling1D", "global_average": "GlobalAveragePooling1D"}[h.pooling]),
        LayerUse("Dense")],
    "bigru_classifier": lambda h: [LayerUse("Embedding"), *_recurrent("GRU", True), LayerUse("Dense")],
    "glove_conv_lstm_classifier": lambda h: [
        LayerUse("Embedding", fresh=h.embedding_init != "glove", trains=h.embedding_trainable), LayerUse("Dropout"),
        LayerUse("Conv1D"), LayerUse("MaxPooling1D"), LayerUse("LSTM"), LayerUse("Dense")],
    "text_generator": lambda h: [LayerUse("Embedding"), *_recurrent("LSTM", h.bidirectional), LayerUse("Dense")],
    "window_dnn": lambda h: [LayerUse("Dense")],
    "window_rnn": _window_rnn,
    "window_conv_lstm": lambda h: [LayerUse("Conv1D"), LayerUse("LSTM"), LayerUse("Dense"), LayerUse("Lambda")],
}


def model_layers(spec: ModelSpec) -> list[LayerUse]:
    """The Keras layers of `spec`'s model, in order; [] for a spec that trains no network."""
    if not spec.trainable:
        return []
    if spec.architecture not in ARCHITECTURE_LAYERS:
        raise ValueError(f"{spec.id}: architecture {spec.architecture!r} has no entry in parity.explain."
                         "ARCHITECTURE_LAYERS; add its Keras layers there")
    return ARCHITECTURE_LAYERS[spec.architecture](spec.layers)


def _kinds(layers: list[LayerUse], **flags: bool) -> list[str]:
    """The kinds of `layers` (each once, in order) whose flags (fresh, trains) have the given values."""
    chosen = [layer.kind for layer in layers if all(getattr(layer, name) == value for name, value in flags.items())]
    return list(dict.fromkeys(chosen))


def _optimizer_words(spec: ModelSpec) -> str:
    optimizer = spec.optimizer
    momentum = f", momentum {optimizer.momentum:g}" if optimizer.momentum else ""
    return f"optimizer {optimizer.name} (lr {optimizer.learning_rate:g}{momentum})"


# ---------------------------------------------------------------- one reason function per difference


def _kernel_init(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    fresh = [kind for kind in _kinds(layers, fresh=True) if kind in INITIALISED_KINDS]
    return f"its {', '.join(fresh)} layers start from random weights" if fresh else None


def _embedding_init(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    if "Embedding" not in _kinds(layers, fresh=True):
        return None
    return f"its Embedding({spec.layers.vocab_size}, {spec.layers.embedding_dim}) starts from random weights"


def _embedding_sparse_gradient(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    if "Embedding" not in _kinds(layers, trains=True) or spec.optimizer.name not in SQUARING_OPTIMIZERS:
        return None
    return f"its Embedding trains with {spec.optimizer.name}, which squares the gradient of each token occurrence"


def _optimizer_is(name: str) -> Callable[[ModelSpec, list[LayerUse]], str | None]:
    return lambda spec, layers: _optimizer_words(spec) if spec.optimizer.name == name else None


def _sgd_momentum_form(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    if spec.optimizer.name != "sgd" or not spec.optimizer.momentum:
        return None
    sweep = "; the course's lr sweep changes the rate every epoch, where the two forms part" if spec.lr_sweep else ""
    return _optimizer_words(spec) + sweep


def _default_learning_rate(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    if not spec.optimizer.keras_default_lr:
        return None
    optimizer = spec.optimizer
    return f"the course compiles with optimizer='{optimizer.name}', Keras' default lr {optimizer.learning_rate:g}"


def _batchnorm(**flags: bool) -> Callable[[ModelSpec, list[LayerUse]], str | None]:
    state = " whose moving statistics train" if flags.get("trains") else ""
    return lambda spec, layers: (f"BatchNormalization layers{state}"
                                 if "BatchNormalization" in _kinds(layers, **flags) else None)


def _has_kind(*kinds: str) -> Callable[[ModelSpec, list[LayerUse]], str | None]:
    def reason(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
        present = [kind for kind in _kinds(layers) if kind in kinds]
        return f"its {', '.join(present)} layers" if present else None
    return reason


def _flatten_order(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    kinds = [layer.kind for layer in layers]
    if "Conv2D" in kinds and "Flatten" in kinds[kinds.index("Conv2D"):]:
        return "a Flatten of Conv2D feature maps feeds a Dense"
    return None


def _same_padding_stride(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    strides, padding = getattr(spec.layers, "conv_strides", 1), getattr(spec.layers, "conv_padding", "valid")
    return f"a convolution with padding='same' and strides {strides}" if padding == "same" and strides > 1 else None


def _crossentropy_on_probabilities(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    if not spec.loss.endswith("crossentropy"):
        return None
    return f"loss {spec.loss} on its {'softmax' if spec.task == 'multiclass' else 'sigmoid'} output"


def _accuracy_average(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    return f"accuracy over {spec.classes} classes" if spec.task == "multiclass" else None


def _loss_target_shape(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    if spec.task not in ("binary", "regression"):
        return None
    return f"{spec.task} targets, one column per sample, with loss {spec.loss}"


def _tensor_layout(spec: ModelSpec, layers: list[LayerUse]) -> str:
    convolutions = [kind for kind in _kinds(layers) if kind in ("Conv1D", "Conv2D")]
    channels = f"; its {', '.join(convolutions)} inputs go channels-first" if convolutions else ""
    return f"its weight matrices are stored transposed in torch{channels}"


def _avgpool_count_include_pad(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    if spec.architecture != "inception_transfer":
        return None
    return "InceptionV3's pool branches: AveragePooling2D(3, strides=1, padding='same')"


def _frozen_batchnorm_mode(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    if "BatchNormalization" not in _kinds(layers, trains=False):
        return None
    return "frozen BatchNormalization layers (trainable=False), which Keras keeps in inference mode in fit"


def _never(spec: ModelSpec, layers: list[LayerUse]) -> None:
    return None


def _augmentation(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    return "training-time augmentation with random layers" if getattr(spec.data, "augmentation", None) else None


def _augmentation_fill_mode(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    augmentation = getattr(spec.data, "augmentation", None)
    moves = augmentation and (augmentation.rotation or any(augmentation.translation) or augmentation.zoom
                              or augmentation.shear)
    return f"augmentation moves the image, fill_mode '{augmentation.fill_mode}'" if moves else None


def _augmentation_contrast_mean(spec: ModelSpec, layers: list[LayerUse]) -> str | None:
    augmentation = getattr(spec.data, "augmentation", None)
    return f"RandomContrast({augmentation.contrast:g})" if augmentation and augmentation.contrast else None


@dataclass(frozen=True)
class Rule:
    """When a difference applies: `reason(spec, layers)` says why, or None where it does not."""

    reason: Callable[[ModelSpec, list[LayerUse]], str | None]
    every_model: bool = False  # a difference of the platform: every trained model meets it
    unused: str | None = None  # why no course model triggers it today (it is measured on a probe)


FROZEN_BATCHNORM = ("the course's only BatchNormalization layers are in the frozen InceptionV3 trunk, whose moving "
                    "statistics do not change")
EARLY_STOPPING_ONLY = ("no course recipe stops early: only `parity run --early-stopping` (and `--checkpoint best`) "
                       "decide by a monitored value")
RULES: dict[str, Rule] = {
    "kernel_init": Rule(_kernel_init),
    "embedding_init": Rule(_embedding_init),
    "embedding_sparse_gradient": Rule(_embedding_sparse_gradient),
    "adam_epsilon_value": Rule(_optimizer_is("adam")),
    "adam_epsilon_placement": Rule(_optimizer_is("adam")),
    "rmsprop_rho": Rule(_optimizer_is("rmsprop")),
    "rmsprop_epsilon": Rule(_optimizer_is("rmsprop")),
    "sgd_momentum_form": Rule(_sgd_momentum_form),
    "default_learning_rate": Rule(_default_learning_rate),
    "batchnorm_epsilon": Rule(_batchnorm()),
    "batchnorm_momentum": Rule(_batchnorm(trains=True), unused=FROZEN_BATCHNORM),
    "batchnorm_variance": Rule(_batchnorm(trains=True), unused=FROZEN_BATCHNORM),
    "gru_layout": Rule(_has_kind("GRU")),
    "lstm_biases": Rule(_has_kind("LSTM", "SimpleRNN")),
    "flatten_order": Rule(_flatten_order),
    "avgpool_count_include_pad": Rule(_avgpool_count_include_pad),
    "frozen_batchnorm_mode": Rule(_frozen_batchnorm_mode),
    "same_padding_stride": Rule(_same_padding_stride, unused=(
        "every course convolution has stride 1 or 'valid'/'causal' padding")),
    "crossentropy_on_probabilities": Rule(_crossentropy_on_probabilities),
    "l2_vs_weight_decay": Rule(_never, unused="no course spec carries a kernel regularizer yet"),
    "lr_schedule_interval": Rule(_never, unused=(
        "the course's schedules (the lr sweeps' LearningRateScheduler) change the rate once per epoch in both "
        "frameworks; no course model uses a per-step LearningRateSchedule")),
    "accuracy_average": Rule(_accuracy_average),
    "early_stopping_mode": Rule(_never, unused=EARLY_STOPPING_ONLY),
    "early_stopping_non_finite": Rule(_never, unused=EARLY_STOPPING_ONLY),
    "early_stopping_restore_min_delta": Rule(_never, unused=EARLY_STOPPING_ONLY),
    "augmentation_stream": Rule(_augmentation),
    "augmentation_fill_mode": Rule(_augmentation_fill_mode),
    "augmentation_contrast_mean": Rule(_augmentation_contrast_mean),
    "tf32": Rule(lambda spec, layers: "on an Ampere or later NVIDIA GPU (no effect on a CPU)", every_model=True),
    "determinism": Rule(lambda spec, layers: "every model's kernels", every_model=True),
    "float32_summation_order": Rule(lambda spec, layers: "every model's float32 arithmetic", every_model=True),
    "tensor_layout": Rule(_tensor_layout, every_model=True),
    "loss_target_shape": Rule(_loss_target_shape),
}


@dataclass(frozen=True)
class Applicable:
    """A difference that applies to a model, and why."""

    difference: align.Difference
    reason: str
    every_model: bool


def applicable_differences(spec: ModelSpec) -> list[Applicable]:
    """The differences of parity.align that `spec`'s model meets, model-specific ones first, in align's order."""
    layers = model_layers(spec)
    if not layers:
        return []
    found = []
    for difference in align.DIFFERENCES:
        rule = RULES[difference.key]
        reason = rule.reason(spec, layers)
        if reason is not None:
            found.append(Applicable(difference, reason, rule.every_model))
    return sorted(found, key=lambda entry: entry.every_model)


def tensorflow_runtime_forms(spec: ModelSpec) -> list[str]:
    """The align.TENSORFLOW_RUNTIME_FORMS that `spec`'s model meets: the runtime differences Keras on torch never
    aligns (it computes torch's form)."""
    met = {entry.difference.key for entry in applicable_differences(spec)}
    return [key for key in align.TENSORFLOW_RUNTIME_FORMS if key in met]


# ---------------------------------------------------------------- measured effects


def load_measurements(path: Path = MEASUREMENTS) -> dict[str, dict[str, Any]]:
    """The measured effect of each difference by key (docs/differences.json); {} when the file is absent."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))["differences"]
    except FileNotFoundError:
        return {}


def measured_effect(measurement: dict[str, Any] | None) -> str:
    """One line: the setup of a lockstep measurement and its summary, a probe's summary, or 'not measured'."""
    if not measurement or not measurement.get("summary"):
        return "not measured"
    if measurement.get("kind") == "lockstep" and measurement.get("setup"):
        return f"{measurement['setup']}: {measurement['summary']}"
    return measurement["summary"]


# ---------------------------------------------------------------- sources, read as text


@dataclass(frozen=True)
class SourcePart:
    """One top-level function or class of a model package, as written."""

    path: str  # relative to the repository root, e.g. torch_models/text.py
    name: str
    line: int
    text: str


def _is_registered(node: ast.AST, name: str) -> bool:
    return (isinstance(node, ast.FunctionDef) and node.name == name
            and any(isinstance(d, ast.Attribute) and d.attr == "register" for d in node.decorator_list))


def _names_used(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}


def _defined_names(node: ast.stmt) -> list[str]:
    """The names a top-level function, class or assignment defines."""
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return [node.name]
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    return [target.id for target in targets if isinstance(target, ast.Name)]


def builder_source(package: str, architecture: str) -> list[SourcePart]:
    """The registered builder `architecture` of `package`, with the functions, classes and constants of its file
    that it uses (the LightningModule class, helpers), in file order; [] when the package has no such builder."""
    for path in sorted(package_dir(package).glob("*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        builder = next((node for node in tree.body if _is_registered(node, architecture)), None)
        if builder is None:
            continue
        definitions = {name: node for node in tree.body for name in _defined_names(node)}
        chosen, pending = {builder.name: builder}, [builder]
        while pending:
            for name in _names_used(pending.pop()):
                if name in definitions and name not in chosen:
                    chosen[name] = definitions[name]
                    pending.append(definitions[name])
        lines = source.splitlines()
        parts = []
        for name, node in sorted(chosen.items(), key=lambda item: item[1].lineno):
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
            parts.append(SourcePart(f"{package}/{path.name}", name, first, "\n".join(lines[first - 1:node.end_lineno])))
        return parts
    return []


# ---------------------------------------------------------------- the explanation and its renderings


def explanation(spec: ModelSpec, measurements: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """What `parity explain --json` prints: the model, its differences with their measured effects, its sources."""
    measurements = load_measurements() if measurements is None else measurements
    packages = model_packages()
    return {
        "model": spec.id,
        "title": spec.title,
        "part": spec.part,
        "week": spec.week,
        "dataset": spec.dataset,
        "task": spec.task,
        "architecture": spec.architecture,
        "layers": [layer.kind for layer in model_layers(spec)],
        "optimizer": None if spec.optimizer is None else _optimizer_words(spec).removeprefix("optimizer "),
        "loss": spec.loss,
        "metric": spec.metric,
        "differences": [
            {"key": entry.difference.key, "scope": "every_model" if entry.every_model else "model",
             "reason": entry.reason, "keras": entry.difference.keras, "torch": entry.difference.torch,
             "aligned": entry.difference.aligned, "switchable": entry.difference.switchable,
             "measured": measured_effect(measurements.get(entry.difference.key)),
             "measurement": measurements.get(entry.difference.key)}
            for entry in applicable_differences(spec)
        ],
        "sources": {framework: [vars(part) for part in builder_source(package, spec.architecture)]
                    if spec.trainable else [] for framework, package in packages.items()},
    }


def _wrapped(text: str, width: int, indent: str, hanging: str) -> list[str]:
    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=hanging,
                         break_on_hyphens=False) or [indent]


def _difference_lines(entry: dict[str, Any], width: int) -> list[str]:
    native = "" if entry["switchable"] else " (not switchable)"
    lines = _wrapped(f"{entry['key']}{native}: {entry['reason']}", width, "  ", "      ")
    for label in ("keras", "torch", "aligned", "measured"):
        lines += _wrapped(f"{label + ':':9} {entry[label]}", width, "      ", " " * 16)
    return lines


def _code_lines(parts: list[dict[str, Any]], package: str, width: int) -> list[str]:
    """The parts' text under a header naming each file and line, long lines wrapped with a hanging indent."""
    if not parts:
        return [f"({package} has no builder for this architecture yet)"]
    lines = []
    for part in parts:
        lines += [*([""] if lines else []), f"# {part['path']}:{part['line']}"]
        for line in part["text"].splitlines():
            indent = line[:len(line) - len(line.lstrip())]
            lines += _wrapped(line.strip(), width, indent, indent + "    ") if len(line) > width else [line]
    return lines


def _column_width(width: int) -> int | None:
    """The width of each of two columns side by side on a `width`-character terminal; None when it is too narrow."""
    column = (width - len(COLUMN_GAP)) // 2
    return column if column >= MIN_COLUMN else None


def _side_by_side(titles: tuple[str, str], columns: tuple[list[str], list[str]], column: int | None) -> list[str]:
    """Two columns `column` characters wide, or (None) the first above the second."""
    if column is None:
        return [titles[0], *columns[0], "", titles[1], *columns[1]]
    left, right = columns
    left, right = left + [""] * (len(right) - len(left)), right + [""] * (len(left) - len(right))
    rows = [(titles[0], titles[1]), ("-" * column, "-" * column), *zip(left, right)]
    return [f"{a:<{column}}{COLUMN_GAP}{b}".rstrip() for a, b in rows]


def render(record: dict[str, Any], width: int | None = None) -> str:
    """The explanation for a terminal `width` characters wide (default: the terminal's, or $COLUMNS)."""
    width = width or shutil.get_terminal_size().columns
    head = (f"{record['model']} (C{record['part']}W{record['week']}, {record['dataset']}, {record['task']}): "
            f"{record['title']}")
    lines = _wrapped(head, width, "", "  ")
    if record["architecture"] is None:
        lines += _wrapped("The course trains no network for this model: no framework differences apply, and there "
                          "is no model source to show.", width, "", "")
        return "\n".join(lines) + "\n"
    lines += _wrapped(f"architecture {record['architecture']}: {' -> '.join(record['layers'])}; "
                      f"{record['optimizer']}, loss {record['loss']}, metric {record['metric']}", width, "", "  ")
    model_specific = [entry for entry in record["differences"] if entry["scope"] == "model"]
    platform = [entry for entry in record["differences"] if entry["scope"] == "every_model"]
    lines += ["", *_wrapped(f"Framework differences this model meets ({len(model_specific)}). Aligned mode (the "
                            f"default) removes each switchable one; `parity run {record['model']} --native KEY` "
                            "keeps one as the frameworks' defaults have it, to see its effect alone:", width, "", "")]
    for entry in model_specific:
        lines += _difference_lines(entry, width)
    lines += ["", f"Differences every model meets ({len(platform)}):"]
    for entry in platform:
        lines += _difference_lines(entry, width)
    column = _column_width(width)
    sources = record["sources"]
    lines += ["", *_side_by_side(("Keras (tf_models)", "Lightning (torch_models)"),
                                 (_code_lines(sources["keras"], "tf_models", column or width),
                                  _code_lines(sources["lightning"], "torch_models", column or width)), column)]
    return "\n".join(lines) + "\n"
