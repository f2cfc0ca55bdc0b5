"""Where `parity run --save` keeps the trained models of a run, and the record of how their inputs were made.

RUN_DIR/models/ holds, per seed, each Keras worker's `.keras` file (with the optimizer's state), the
course's space-saving `.keras` file without it (keras-seedN for Keras on TensorFlow, keras-torch-seedN
for Keras on torch), Lightning's checkpoint and a plain torch `state_dict`, and
one `inputs.json`: how training turned raw data into model inputs (vocabulary and padding of text,
size and pixel scaling of images, window of a series, class names), so that `parity predict` can
encode a sentence, an image or a window exactly as training did. Loading a model is the
frameworks' business (tf_models.saving.load_trained, torch_models.saving.load_trained); this
module imports neither framework.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from parity.catalog import ModelSpec
from parity.datasets import DataSplit
from parity.datasets.store import PixelScale
from parity.errors import DataError
from parity.fileio import write_json_atomic
from parity.spec_types import IdxData, ImageFolderData, SeriesData, TextData, TextGenData
from parity.text import FILTERS, OOV_TOKEN, TextVectorization, Tokenizer, pad_sequences, standardize, standardize_c3w2

MODELS_DIR = "models"
INPUTS_FILE = "inputs.json"
DEFAULT_STANDARDIZE = "lower_and_strip_punctuation"
# An inputs record's "standardize" name -> the function (the names the text loaders put in DataSplit.info).
STANDARDIZERS = {DEFAULT_STANDARDIZE: standardize, "c3w2_stopwords": standardize_c3w2}
# How new image files are made the size training saw: parity.datasets.decode.decode_one (Pillow's bilinear filter).
IMAGE_RESIZE = "bilinear"


def models_dir(run_dir: Path) -> Path:
    """RUN_DIR/models."""
    return Path(run_dir) / MODELS_DIR


def keras_model_path(run_dir: Path, seed: int, framework: str = "keras") -> Path:
    """The Keras model of `seed` with its optimizer's state (`model.save`), as the Keras worker `framework`
    (keras, keras-torch) trained it."""
    return models_dir(run_dir) / f"{framework}-seed{seed}.keras"


def keras_light_path(run_dir: Path, seed: int, framework: str = "keras") -> Path:
    """The Keras model of `seed` without the optimizer (the course's `include_optimizer=False`, to save space)."""
    return models_dir(run_dir) / f"{framework}-seed{seed}-no-optimizer.keras"


def lightning_checkpoint_path(run_dir: Path, seed: int) -> Path:
    """Lightning's checkpoint of `seed` (`trainer.save_checkpoint`: weights, optimizer, loops, hyperparameters)."""
    return models_dir(run_dir) / f"lightning-seed{seed}.ckpt"


def lightning_state_dict_path(run_dir: Path, seed: int) -> Path:
    """The plain torch `state_dict` of `seed`'s LightningModule (tensors only: loads with weights_only=True)."""
    return models_dir(run_dir) / f"lightning-seed{seed}.pt"


def inputs_path(run_dir: Path) -> Path:
    """RUN_DIR/models/inputs.json."""
    return models_dir(run_dir) / INPUTS_FILE


def write_inputs(run_dir: Path, record: dict[str, Any]) -> None:
    """Write `record` (see `inputs_record`) as RUN_DIR/models/inputs.json."""
    write_json_atomic(inputs_path(run_dir), record)


def read_inputs(run_dir: Path) -> dict[str, Any]:
    """The inputs record of the run in `run_dir`; a clear error when the run kept no models."""
    path = inputs_path(run_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run `parity run MODEL --save` to keep the trained models "
                                "and the record of their inputs")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise DataError(f"{path}: not a readable inputs record ({error}); rerun `parity run MODEL --save` to write "
                        "it again") from None
    if not isinstance(record, dict) or "model" not in record:
        raise DataError(f"{path}: not a readable inputs record (no model named); rerun `parity run MODEL --save` to "
                        "write it again")
    return record


def inputs_record(spec: ModelSpec, split: DataSplit) -> dict[str, Any]:
    """How the run's inputs were made from raw data: {model, task, input_shape, text, image, series, classes}.

    Exactly one of text, image and series is set for models of those kinds (all None for the inline data
    of hello-world and house prices). `classes` are the class names in label order where the data has them.
    """
    return {
        "model": spec.id,
        "task": spec.task,
        "input_shape": list(spec.input_shape),
        "text": _text_record(spec, split) if isinstance(spec.data, (TextData, TextGenData)) else None,
        "image": _image_record(spec, split) if isinstance(spec.data, (IdxData, ImageFolderData)) else None,
        "series": _series_record(spec.data) if isinstance(spec.data, SeriesData) else None,
        "classes": list(split.info["classes"]) if "classes" in split.info else None,
        "spec_overrides": split.spec_overrides(spec.id),  # the sizes the data fixed: the saved model's shape
    }


def _text_record(spec: ModelSpec, split: DataSplit) -> dict[str, Any]:
    """The fitted vocabulary and the tokenizer's settings (parity.datasets.sarcasm.tokenize), padding per spec."""
    data: TextData | TextGenData = spec.data
    if split.vocabulary is None:
        raise ValueError(f"{spec.id}: the data split holds no fitted vocabulary; its loader must set "
                         "DataSplit.vocabulary (see parity.datasets.sarcasm.encode_split)")
    if isinstance(data, TextGenData):
        # Next-word models (parity.datasets.textgen): the whole fitted vocabulary (a Keras 2 Tokenizer without an
        # OOV token, as the labs fit it); the course's generation loop pads and truncates 'pre' to the input length.
        common = {"tokenizer": data.tokenizer, "vocabulary": list(split.vocabulary),
                  "max_length": split.info["max_sequence_len"] - 1, "padding": data.padding, "truncating": "pre"}
        oov_token, size = None, None
    else:
        common = {"tokenizer": data.tokenizer, "vocabulary": list(split.vocabulary), "max_length": data.max_length,
                  "padding": data.padding, "truncating": data.truncating}
        oov_token, size = data.oov_token, data.vocab_size
    if data.tokenizer == "keras2_tokenizer":
        # Keras 2 Tokenizer defaults: lower-case, FILTERS replaced by `split`, split on it; ids >= num_words -> OOV.
        return {**common, "oov_token": oov_token, "num_words": size,
                "lower": True, "filters": FILTERS, "split": " "}
    if data.tokenizer == "text_vectorization":
        # The loader's standardization (bbc: the C3W2 assignment's stopwords; else Keras' default).
        return {**common, "oov_token": OOV_TOKEN, "max_tokens": size,
                "standardize": split.info.get("standardize", DEFAULT_STANDARDIZE), "split": "whitespace"}
    if data.tokenizer == "wordpiece":  # parity.subwords: BERT splitting, then the vocabulary's longest pieces
        return {**common, "oov_token": "[UNK]", "lower": True}
    raise ValueError(f"{spec.id}: tokenizer {data.tokenizer!r} has no inputs record yet "
                     "(implemented: keras2_tokenizer, text_vectorization, wordpiece)")


def _image_record(spec: ModelSpec, split: DataSplit) -> dict[str, Any]:
    """Size, channels and colour mode from the spec; the pixel scaling the loader gave the training source
    (factor, divide and offset of its `PixelScale`: `preprocess` inception_v3 is / 127.5 then - 1)."""
    scale = split.train.scale
    channels = spec.input_shape[2] if len(spec.input_shape) == 3 else 1
    color_mode = spec.data.color_mode if isinstance(spec.data, ImageFolderData) else "grayscale"
    return {"size": list(spec.input_shape[:2]), "channels": channels, "color_mode": color_mode,
            "scale": None if scale is None else scale.factor, "divide": bool(scale and scale.divide),
            "offset": 0.0 if scale is None else scale.offset, "resize": IMAGE_RESIZE}


def _series_record(data: SeriesData) -> dict[str, Any]:
    return {"window": data.window_size, "expand_dims": data.expand_dims}


def encode_texts(text: dict[str, Any], texts: Sequence[str]) -> np.ndarray:
    """`texts` as the int32 token ids training fed the model, from an inputs record's `text` block.

    Padded and truncated as training did; without a `max_length`, to the longest of `texts` (training
    padded each batch to its longest).
    """
    if text["tokenizer"] == "keras2_tokenizer":
        tokenizer = Tokenizer(num_words=text["num_words"], oov_token=text["oov_token"], filters=text["filters"],
                              lower=text["lower"], split=text["split"])
        tokenizer.set_vocabulary(text["vocabulary"])
        ids = tokenizer.texts_to_sequences(texts)
    elif text["tokenizer"] == "text_vectorization":
        vectorizer = TextVectorization(max_tokens=text["max_tokens"], standardize=STANDARDIZERS[text["standardize"]])
        vectorizer.set_vocabulary(text["vocabulary"])
        ids = vectorizer(texts)
    elif text["tokenizer"] == "wordpiece":
        from parity import subwords

        ids = subwords.encode(text["vocabulary"], texts)
    else:
        raise ValueError(f"tokenizer {text['tokenizer']!r} is not one of keras2_tokenizer, text_vectorization, wordpiece")
    return pad_sequences(ids, maxlen=text["max_length"], padding=text["padding"], truncating=text["truncating"])


def scale_pixels(image: dict[str, Any], pixels: np.ndarray) -> np.ndarray:
    """Integer `pixels` as the float32 values training fed the model, from an inputs record's `image` block.

    A record without "offset" was written before offsets existed, when every scale had offset 0.
    """
    if image["scale"] is None:
        return np.asarray(pixels, dtype=np.float32)
    return PixelScale(image["scale"], image["divide"], image.get("offset", 0.0)).apply(np.asarray(pixels))


def reload_record(path: Path, loader: str, before: np.ndarray, after: np.ndarray | None, error: str | None = None,
                  required: bool = True) -> dict[str, Any]:
    """One saved file loaded back: how, whether it loaded (else `error`), and whether the loaded model's predictions
    on the probe inputs equal `before`, the in-memory model's, bit for bit (np.array_equal).

    `required` False marks a file whose safe loading is only tried (Lightning's checkpoint under weights_only).
    """
    equal = None if after is None else bool(np.array_equal(before, after))
    diff = None if after is None or before.shape != after.shape else float(
        np.max(np.abs(before.astype(np.float64) - after.astype(np.float64)), initial=0.0))
    return {"file": Path(path).name, "loader": loader, "required": required, "loaded": after is not None,
            "error": error, "predictions_equal": equal, "max_abs_diff": diff}


def saved_record(files: Sequence[tuple[Path, str]], reloads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One seed's saved files ((path, what it holds) -> name, bytes, holds), its reloads, and `equal`: every
    required file loaded and every file that loaded predicts bit for bit as the in-memory model did."""
    equal = all(row["loaded"] or not row["required"] for row in reloads) and all(
        row["predictions_equal"] for row in reloads if row["loaded"])
    return {"files": [{"file": Path(path).name, "bytes": Path(path).stat().st_size, "holds": holds}
                      for path, holds in files],
            "reloads": list(reloads), "equal": equal}


def first_line(error: BaseException) -> str:
    """A framework's (often multi-line) error in one line: the line that names the cause where there is one."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # torch's weights_only refusal names the blocked object on a later line ("Trying to load unsupported GLOBAL ...").
    cause = next((line for line in lines if "unsupported global" in line.lower()), None)
    return f"{type(error).__name__}: {cause or (lines[0] if lines else '')}"
