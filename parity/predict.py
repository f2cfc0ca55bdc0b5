"""`parity predict RUN_DIR INPUT...`: both frameworks' trained models of a `--save` run, on an image, a sentence
or a series window.

Each INPUT is encoded once, here, exactly as training encoded its data (inputs.json of the run,
parity.saved_models): an image file is decoded and resized by the decoder training used
(parity.datasets.decode: Pillow, bilinear, grayscale or RGB) and scaled as training scaled it; a
sentence goes through the run's own vocabulary and padding (parity.text); a series window is
`window` numbers, comma-separated or in a CSV file. The encoded inputs are stacked into one batch
(the course's "predict one image" adds the batch axis with np.expand_dims; a batch of one is the
same), and each framework predicts it in its own worker process (the `predict` job,
tf_models/inside.py, torch_models/inside.py). Per input: both answers (class and probability
for a classifier, the value for regression) and the largest absolute difference of the raw outputs.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from parity import jobs, saved_models
from parity.compare import forward_tolerance, max_abs_diff
from parity.datasets.decode import decode_one
from parity.errors import ParityError

PREDICT_TIMEOUT_S = 600.0  # loading a trained model and predicting a few inputs takes seconds; a hang is a failure


@dataclass(frozen=True)
class SavedRun:
    """A `--save` run directory: its inputs.json and the seed whose models are used."""

    run_dir: Path
    inputs: Mapping[str, Any]
    seed: int

    @property
    def model_id(self) -> str:
        return self.inputs["model"]


def saved_seeds(run_dir: Path) -> list[int]:
    """The seeds whose Keras model and Lightning state_dict are both saved in RUN_DIR/models."""
    seeds = []
    for path in sorted(saved_models.models_dir(run_dir).glob("keras-seed*.keras")):
        match = re.fullmatch(r"keras-seed(\d+)\.keras", path.name)
        if match and saved_models.lightning_state_dict_path(run_dir, int(match.group(1))).is_file():
            seeds.append(int(match.group(1)))
    return sorted(seeds)


def open_run(run_dir: Path, seed: int | None = None) -> SavedRun:
    """The saved run at `run_dir` with `seed` (default: the first saved seed); a ParityError when none is saved."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ParityError(f"{run_dir}: no such run directory; give OUT/MODEL of a `parity run MODEL --save` run")
    seeds = saved_seeds(run_dir)
    if not seeds or not saved_models.inputs_path(run_dir).is_file():
        raise ParityError(f"{run_dir} holds no saved models; rerun with --save: "
                          f"`parity run MODEL --save --out {run_dir.parent}`")
    if seed is None:
        seed = seeds[0]
    elif seed not in seeds:
        raise ParityError(f"{run_dir}: no saved models of seed {seed} (saved seeds: {', '.join(map(str, seeds))}); "
                          "give one of those to --seed")
    return SavedRun(run_dir, saved_models.read_inputs(run_dir), seed)


# ---------------------------------------------------------------------------------------------- encoding


def input_kind(inputs: Mapping[str, Any]) -> str:
    """What one INPUT of this run is: "image", "text" or "series"."""
    for kind in ("image", "text", "series"):
        if inputs.get(kind):
            return kind
    raise ParityError(f"{inputs['model']}: its inputs are neither images, sentences nor series windows; "
                      "`parity predict` predicts image, text and series models")


def encode_image(path: Path, image: Mapping[str, Any]) -> np.ndarray:
    """An image file as training saw it: float32 (height, width, channels), decoded, resized and scaled alike."""
    from PIL import Image

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ParityError(f"{path}: cannot read the image file ({error.strerror}); give a PNG or JPEG file") from None
    try:
        pixels = decode_one(data, tuple(image["size"]), image["color_mode"])
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:  # as decode.py skips files
        raise ParityError(f"{path}: not a decodable image ({type(error).__name__}: {error}); "
                          "give a PNG or JPEG file") from None
    return saved_models.scale_pixels(image, pixels)


def encode_window(given: str, series: Mapping[str, Any]) -> np.ndarray:
    """A series window: `window` numbers, comma-separated or in a CSV file (one or more per line), as float32."""
    window = int(series["window"])
    path = Path(given)
    if path.is_file():
        try:
            with path.open(newline="") as handle:
                cells = [cell for row in csv.reader(handle) for cell in row if cell.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise ParityError(f"{path}: not a readable CSV file ({error}); give {window} numbers") from None
        where = str(path)
    else:
        cells, where = [cell for cell in given.split(",") if cell.strip()], repr(given)
    try:
        values = np.array([float(cell) for cell in cells], dtype=np.float32)
    except ValueError:
        raise ParityError(f"{where}: not a series window; give {window} numbers separated by commas, "
                          "or a CSV file of them") from None
    if len(values) != window or not np.isfinite(values).all():
        raise ParityError(f"{where}: {len(values)} values, the model's window is {window}; give exactly {window} "
                          "finite numbers")
    return values[:, None] if series.get("expand_dims") else values


def encode_inputs(run: SavedRun, given: Sequence[str]) -> np.ndarray:
    """Every INPUT encoded and stacked into one batch of the model's input shape (the batch axis added here)."""
    kind = input_kind(run.inputs)
    if kind == "text":  # the run's tokenizer and vocabulary, padded as training padded (parity.saved_models)
        batch = saved_models.encode_texts(run.inputs["text"], given)
    elif kind == "image":
        batch = np.stack([encode_image(Path(item), run.inputs["image"]) for item in given])
    else:
        batch = np.stack([encode_window(item, run.inputs["series"]) for item in given])
    expected = tuple(run.inputs["input_shape"])
    if len(expected) != batch.ndim - 1 or any(e is not None and e != b for e, b in zip(expected, batch.shape[1:])):
        raise ParityError(f"{run.model_id}: the inputs were encoded to {batch.shape[1:]}, the model takes {expected}; "
                          f"{saved_models.inputs_path(run.run_dir)} does not match the model")
    return batch


# ---------------------------------------------------------------------------------------------- answers


def answer(outputs: np.ndarray, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """One input's answer from the model's raw output: class and probability, or the predicted value(s)."""
    outputs = np.asarray(outputs, dtype=np.float64).ravel()
    classes = inputs.get("classes")
    if inputs["task"] == "multiclass":
        index = int(np.argmax(outputs))
        name = classes[index] if classes else f"class {index}"
        return {"class": name, "index": index, "probability": float(outputs[index])}
    if inputs["task"] == "binary":
        positive = float(outputs[0])  # the sigmoid's probability of class 1, as the course reads classes[0] > 0.5
        index = int(positive > 0.5)
        name = classes[index] if classes else f"class {index}"
        return {"class": name, "index": index, "probability": positive if index else 1.0 - positive,
                "probability_of_class_1": positive}
    return {"value": float(outputs[0]) if outputs.size == 1 else outputs.tolist()}


def compare_outputs(given: Sequence[str], keras: np.ndarray, lightning: np.ndarray, same_weights: np.ndarray,
                    inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per input: both frameworks' answers, their raw outputs and the largest absolute difference of these; also
    that of the Keras outputs and torch's with the Keras trained weights (the forward computation's share), which
    must be within the forward check's tolerance (parity.compare.forward_tolerance): `passed`."""
    if not keras.shape == lightning.shape == same_weights.shape:
        raise ParityError(f"the frameworks' outputs differ in shape: keras {keras.shape}, lightning {lightning.shape}")
    rows = []
    for item, k, t, s in zip(given, keras, lightning, same_weights):
        answers = {"keras": answer(k, inputs), "lightning": answer(t, inputs)}
        same = answers["keras"].get("index") == answers["lightning"].get("index")
        rows.append({"input": item, **answers, "same_answer": same,
                     "outputs": {"keras": k.ravel().tolist(), "lightning": t.ravel().tolist()},
                     "max_abs_diff": max_abs_diff(k, t), "same_weights_max_abs_diff": max_abs_diff(k, s),
                     "tolerance": forward_tolerance(k), "passed": max_abs_diff(k, s) <= forward_tolerance(k)})
    return rows


def describe(reply: Mapping[str, Any]) -> str:
    """One framework's answer in words: "Ankle boot (p 0.9712)" or "19.0123"."""
    if "class" in reply:
        return f"{reply['class']} (p {reply['probability']:.4f})"
    value = reply["value"]
    return f"{value:.6g}" if isinstance(value, float) else ", ".join(f"{v:.6g}" for v in value)


def _shortened(item: str, width: int = 40) -> str:
    """An INPUT as a table cell: a long sentence cut to `width` characters."""
    return item if len(item) <= width else item[: width - 3] + "..."


def render(run: SavedRun, rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a table for people."""
    width = max(len("input"), *(len(_shortened(row["input"])) for row in rows))
    lines = [f"{run.model_id} seed {run.seed} ({run.run_dir})",
             f"{'input':{width}}  {'keras':28} {'lightning':28} max abs diff  same weights"]
    for row in rows:
        lines.append(f"{_shortened(row['input']):{width}}  {describe(row['keras']):28} {describe(row['lightning']):28} "
                     f"{row['max_abs_diff']:12.2e}  {row['same_weights_max_abs_diff']:12.2e}"
                     f"{'' if row['passed'] else ' FAIL (tolerance %.1e)' % row['tolerance']}")
    lines.append("max abs diff: of the raw outputs of each framework's trained model (training drift included); "
                 "same weights: of Keras' and torch's outputs with the Keras trained weights in both "
                 "(within the forward check's tolerance unless marked FAIL)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- workers


def predict(run: SavedRun, given: Sequence[str], device: str = "cpu", threads: int = 1) -> list[dict[str, Any]]:
    """Both frameworks' predictions of every INPUT, each in its own worker process; the rows of `compare_outputs`."""
    batch = encode_inputs(run, given)
    with jobs.worker_pool(device=device, threads=threads, quiet=True) as workers, \
            jobs.work_directory(".work-predict-") as workdir:
        inputs_file = workdir / "inputs.npy"
        np.save(inputs_file, batch)
        job = {"kind": "predict", "run_dir": str(run.run_dir.resolve()), "seed": run.seed, "inputs": str(inputs_file),
               "keras_weights": str(workdir / "keras-trained.npz"), "spec_overrides": run.inputs.get("spec_overrides") or {}}
        answers = {framework: workers.run(framework, job, workdir, PREDICT_TIMEOUT_S) for framework in jobs.FRAMEWORKS}
    keras, lightning = (np.asarray(answers[framework]["outputs"], dtype=np.float32) for framework in jobs.FRAMEWORKS)
    same_weights = np.asarray(answers["lightning"]["same_weights_outputs"], dtype=np.float32)
    return compare_outputs(given, keras, lightning, same_weights, run.inputs)
