"""Layer probes: measure the parity.align differences that no course model exercises yet.

Each probe runs one small layer or model in both frameworks on the same numpy inputs: the
Keras worker builds it from a seed and saves its initial weights and results; the torch
worker loads those weights under each requested `Alignment` and saves its own results; this
module compares them. Two worker launches serve any number of probes and alignments.
A non-switchable difference is measured as a fact: its torch probe returns the correct
path and, under `native_` keys, the idiomatic mistake (e.g. a plain reshape of a conv kernel).
The `augmentation` probe has no weights: Keras applies the course's augmentation with parameters
drawn here, torch applies it under each alignment (or draws its own, augmentation_stream native).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from parity import align, augment, jobs
from parity.catalog import get_spec
from parity.datasets import load_dataset
from parity.datasets.image_folder import pixel_scale
from parity.datasets.store import SampleSource
from parity.plan import collate

_CNN = get_spec("c1w3_fmnist_cnn")
# The course's two augmentations: c2w4_rps_cnn's (the same as c2w3's: contrast, Keras' default fill 'reflect')
# and c2w2_cats_dogs_aug's (no contrast, fill 'nearest'). Both models take 150x150 pictures.
_AUGMENTED = ("c2w4_rps_cnn", "c2w2_cats_dogs_aug")
# Probe -> the differences it measures, and its settings (shared by both workers through the job).
PROBE_DIFFERENCES: dict[str, tuple[str, ...]] = {
    "batchnorm": ("batchnorm_momentum", "batchnorm_epsilon", "batchnorm_variance"),
    "gru": ("gru_layout",),
    "lstm": ("lstm_biases",),
    "same_padding": ("same_padding_stride",),
    "l2": ("l2_vs_weight_decay",),
    "lr_schedule": ("lr_schedule_interval",),
    "tensor_layout": ("tensor_layout",),
    "avgpool_same": ("avgpool_count_include_pad",),
    "frozen_batchnorm": ("frozen_batchnorm_mode",),
    "loss_target_shape": ("loss_target_shape",),
    "early_stopping": ("early_stopping_mode", "early_stopping_non_finite", "early_stopping_restore_min_delta"),
    "augmentation": ("augmentation_stream", "augmentation_fill_mode", "augmentation_contrast_mean"),
}
# Planted histories of the monitored value, one per early-stopping scenario, fed to the real callbacks in a short
# fit of a tiny model (one epoch per value): `mode` rises (an accuracy), `non_finite` has a NaN, `min_delta` ends in
# gains below min_delta, `ties` repeats its best (no difference: both frameworks count a tie as no improvement).
EARLY_STOPPING_HISTORIES = {
    "mode": (0.70, 0.75, 0.80, 0.82, 0.81, 0.83, 0.79, 0.78),
    "non_finite": (1.0, 0.8, float("nan"), 0.7, 0.75, 0.72, 0.9, 0.95),
    "min_delta": (1.0, 0.9, 0.895, 0.893, 0.95, 0.96),
    "ties": (1.0, 0.9, 0.9, 0.9, 0.85, 0.8),
}
SETTINGS: dict[str, dict[str, Any]] = {
    "batchnorm": {"seed": 0, "batches": 20, "batch_shape": (32, 8, 8, 4)},
    "gru": {"seed": 1, "batch": 16, "time": 12, "features": 6, "units": 8},
    "lstm": {"seed": 2, "batch": 16, "time": 12, "features": 6, "units": 8},
    "same_padding": {"seed": 3, "batch": 4, "size": 28, "channels": 3, "filters": 8, "kernel": 3, "stride": 2},
    # The course's c3w2 regularised models use L2; plain SGD isolates the penalty from the optimizer.
    "l2": {"seed": 4, "steps": 20, "batch": 16, "features": 8, "units": 4, "l2": 1e-2, "learning_rate": 0.1},
    "lr_schedule": {"seed": 5, "epochs": 3, "steps": 10, "batch": 16, "features": 4, "hidden": 8,
                    "learning_rate": 0.05, "decay_steps": 10, "decay_rate": 0.5},
    # The first convolution of the course CNN (c1w3_fmnist_cnn) on 28x28x1 images.
    "tensor_layout": {"seed": 6, "batch": 8, "size": _CNN.input_shape[0], "channels": _CNN.input_shape[2],
                      "filters": _CNN.layers.conv_filters[0], "kernel": _CNN.layers.kernel_size},
    # InceptionV3's pool branches: AveragePooling2D(3, strides=1, padding='same') (c2w3_inception_*).
    "avgpool_same": {"seed": 9, "batch": 4, "size": 9, "channels": 3, "pool": 3},
    # A frozen BatchNormalization (InceptionV3's trunk, c2w3_inception_*) called in training mode.
    "frozen_batchnorm": {"seed": 10, "batches": 5, "batch_shape": (16, 6, 6, 4)},
    # The course's house-price data (C1W1), predicted by an untrained single neuron.
    "loss_target_shape": {"seed": 7, "model": "c1w1_house_price"},
    "early_stopping": {"seed": 8, "samples": 32, "features": 2, "batch": 8, "learning_rate": 0.05, "scenarios": {
        "mode": {"monitor": "val_accuracy", "patience": 2, "min_delta": 0.0},
        "non_finite": {"monitor": "val_loss", "patience": 2, "min_delta": 0.0},
        "min_delta": {"monitor": "val_loss", "patience": 2, "min_delta": 0.01},
        "ties": {"monitor": "val_loss", "patience": 2, "min_delta": 0.0},
    }},
    # One batch of generated pictures at the models' input size, augmented as in training epoch `epoch`.
    "augmentation": {"seed": 11, "epoch": 3, "batch": 8, "size": get_spec(_AUGMENTED[0]).input_shape[0],
                     "models": _AUGMENTED},
}
# Effects compared relative to the Keras value (a learning rate, a loss); all others in absolute terms.
RELATIVE = frozenset({"lr", "loss"})
# Effects also reported as a mean abs difference (augmented pictures: the max is one pixel, the mean the picture).
MEAN_TOO = frozenset(_AUGMENTED)
# Difference -> (probe, headline effect, summary sentence); {native} and {aligned} are the measured headline values,
# {native_EFFECT} and {aligned_EFFECT} any other effect of the probe, {SETTING} its settings.
HEADLINES: dict[str, tuple[str, str, str]] = {
    "batchnorm_momentum": ("batchnorm", "moving_mean_max_abs_diff",
                           "moving mean max abs diff {native} native vs {aligned} aligned after {batches} training batches"),
    "batchnorm_epsilon": ("batchnorm", "eval_outputs_max_abs_diff",
                          "eval output max abs diff {native} native vs {aligned} aligned (moving statistics aligned)"),
    "batchnorm_variance": ("batchnorm", "moving_variance_max_abs_diff",
                           ("moving variance max abs diff {native} native vs {aligned} aligned after {batches} "
                            "training batches of {batch_shape}")),
    "gru_layout": ("gru", "outputs_max_abs_diff",
                   ("GRU({units}) output max abs diff {native} with Keras' [z, r, h] gate order kept vs {aligned} "
                    "reordered to [r, z, n]")),
    "lstm_biases": ("lstm", "outputs_max_abs_diff",
                    "LSTM({units}) output max abs diff {native} with torch's own b_hh kept vs {aligned} with b_hh zeroed"),
    "same_padding_stride": ("same_padding", "outputs_max_abs_diff",
                            ("Conv2D({filters}, {kernel}, strides={stride}, 'same') on {size}x{size}: output max abs diff "
                             "{native} with symmetric padding=k//2 vs {aligned} with TensorFlow's bottom/right padding")),
    "l2_vs_weight_decay": ("l2", "kernel_max_abs_diff",
                           ("Dense kernel max abs diff {native} with SGD weight_decay=l vs {aligned} with the L2({l2}) "
                            "loss penalty after {steps} SGD steps")),
    "lr_schedule_interval": ("lr_schedule", "lr_max_rel_diff",
                             ("per-step ExponentialDecay: lr max relative diff {native} with Lightning's default "
                              "interval 'epoch' vs {aligned} with 'step' over {epochs} epochs x {steps} steps")),
    "tensor_layout": ("tensor_layout", "outputs_max_abs_diff",
                      ("Conv2D({filters}, {kernel}) kernel copied by plain reshape: output max abs diff {native} vs "
                       "{aligned} with the (3, 2, 0, 1) transpose")),
    "avgpool_count_include_pad": ("avgpool_same", "outputs_max_abs_diff",
                                  ("AveragePooling2D({pool}, strides=1, 'same') on {size}x{size} pixels in [0, 1]: "
                                   "output max abs diff {native} with count_include_pad=True vs {aligned} with False")),
    "frozen_batchnorm_mode": ("frozen_batchnorm", "train_outputs_max_abs_diff",
                              ("frozen BatchNormalization(scale=False) in training mode: output max abs diff {native} "
                               "with the frozen torch layer in train() vs {aligned} kept in eval(), after {batches} "
                               "batches of {batch_shape}")),
    "loss_target_shape": ("loss_target_shape", "loss_max_rel_diff",
                          ("MSELoss of (N, 1) outputs against (N,) targets: relative loss error {native} vs "
                           "{aligned} against (N, 1) targets")),
    "early_stopping_mode": ("early_stopping", "epochs_run_mode_max_abs_diff",
                            ("planted rising val_accuracy, patience 2: Lightning stops {native} epochs apart from "
                             "Keras with its default mode 'min' vs {aligned} with mode 'max' (Keras stops at 8)")),
    "early_stopping_non_finite": ("early_stopping", "epochs_run_non_finite_max_abs_diff",
                                  ("planted val_loss with a NaN at epoch 3, patience 2: Lightning stops {native} "
                                   "epochs apart from Keras with check_finite vs {aligned} with Keras' rule (Keras "
                                   "stops at 6)")),
    "early_stopping_restore_min_delta": ("early_stopping", "restored_epoch_min_delta_max_abs_diff",
                                         ("planted val_loss, min_delta 0.01, patience 2: the restored epoch is "
                                          "{native} epochs apart from Keras' with ModelCheckpoint's lowest value vs "
                                          "{aligned} with Keras' min_delta rule (Keras restores epoch 2)")),
    "augmentation_stream": ("augmentation", "c2w4_rps_cnn_mean_abs_diff",
                            ("c2w4_rps_cnn's augmentation of {batch} generated {size}x{size} pictures in [0, 1]: mean "
                             "abs pixel diff {native} (max {native_c2w4_rps_cnn_max_abs_diff}) with torchvision's own "
                             "random transforms vs {aligned} (max {aligned_c2w4_rps_cnn_max_abs_diff}) with the "
                             "parameters drawn once per sample, applied op by op")),
    "augmentation_fill_mode": ("augmentation", "c2w2_cats_dogs_aug_mean_abs_diff",
                               ("c2w2_cats_dogs_aug's augmentation (fill 'nearest') of {batch} generated {size}x{size} "
                                "pictures in [0, 1]: mean abs pixel diff {native} with torchvision's constant 0 fill "
                                "vs {aligned} with the picture padded by its edge pixels; c2w4_rps_cnn's 'reflect': "
                                "{native_c2w4_rps_cnn_mean_abs_diff} vs {aligned_c2w4_rps_cnn_mean_abs_diff}")),
    "augmentation_contrast_mean": ("augmentation", "c2w4_rps_cnn_mean_abs_diff",
                                   ("c2w4_rps_cnn's augmentation (RandomContrast) of {batch} generated {size}x{size} "
                                    "pictures in [0, 1]: mean abs pixel diff {native} with torchvision's "
                                    "adjust_contrast (one grayscale mean) vs {aligned} with each channel's own mean")),
}


def probe_path(workdir: Path, name: str, role: str, alignment: align.Alignment | None = None) -> Path:
    """The file of probe `name`: role 'inputs', 'keras-init', 'keras' or 'lightning' (one per alignment)."""
    if role == "lightning":
        mode = "aligned" if alignment is None else alignment.mode  # mode native: a name short enough for any disk
        tag = mode if mode != "aligned-except" else "native-" + "+".join(alignment.to_job())
        return Path(workdir) / f"probe-{name}-lightning-{tag}.npz"
    return Path(workdir) / f"probe-{name}-{role}.npz"


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def make_inputs(name: str) -> dict[str, np.ndarray]:
    """The inputs of probe `name`, drawn by numpy from its seed (both frameworks read these bytes)."""
    s = SETTINGS[name]
    rng = np.random.default_rng(s["seed"])

    def normal(*shape: int) -> np.ndarray:
        return rng.normal(size=shape).astype(np.float32)

    if name == "batchnorm":
        channels = s["batch_shape"][-1]
        # Per-channel offsets and spreads, so the moving statistics have somewhere to go.
        loc, scale = rng.uniform(-2, 2, channels), rng.uniform(0.5, 3, channels)
        train_x = (loc + scale * rng.normal(size=(s["batches"], *s["batch_shape"]))).astype(np.float32)
        eval_x = (loc + scale * rng.normal(size=s["batch_shape"])).astype(np.float32)
        return {"train_x": train_x, "eval_x": eval_x, "gamma": rng.uniform(0.5, 1.5, channels).astype(np.float32),
                "beta": normal(channels)}
    if name in ("gru", "lstm"):
        return {"x": normal(s["batch"], s["time"], s["features"])}
    if name in ("same_padding", "tensor_layout"):
        return {"x": rng.uniform(0, 1, (s["batch"], s["size"], s["size"], s["channels"])).astype(np.float32)}
    if name in ("l2", "lr_schedule"):
        samples = s["steps"] * s["batch"]  # one epoch of `steps` batches
        x = normal(samples, s["features"])
        y = x @ normal(s["features"], s.get("units", 1)) + 0.1 * normal(samples, s.get("units", 1))
        return {"x": x, "y": y.astype(np.float32)}
    if name == "early_stopping":
        x = normal(s["samples"], s["features"])
        histories = {f"history_{key}": np.array(values, np.float32) for key, values in EARLY_STOPPING_HISTORIES.items()}
        return {"x": x, "y": (x @ normal(s["features"], 1)).astype(np.float32), **histories}
    if name == "avgpool_same":
        return {"x": rng.uniform(0, 1, (s["batch"], s["size"], s["size"], s["channels"])).astype(np.float32)}
    if name == "frozen_batchnorm":
        channels = s["batch_shape"][-1]
        loc, scale = rng.uniform(-2, 2, channels), rng.uniform(0.5, 3, channels)
        train_x = (loc + scale * rng.normal(size=(s["batches"], *s["batch_shape"]))).astype(np.float32)
        return {"train_x": train_x, "beta": normal(channels), "moving_mean": normal(channels),
                "moving_variance": rng.uniform(0.5, 1.5, channels).astype(np.float32)}
    if name == "augmentation":
        indices = np.arange(s["batch"])
        params = {f"params_{model}": augment.draw_parameters(get_spec(model).data.augmentation, s["seed"], s["epoch"],
                                                             indices, s["size"], s["size"]) for model in s["models"]}
        return {"images": structured_images(s["batch"], s["size"]), **params}
    if name == "loss_target_shape":
        train = load_dataset(get_spec(s["model"])).train
        x, y = collate(train, np.arange(len(train)))
        return {"x": x, "y": y.reshape(-1)}  # targets (N,), as a user's array often is
    raise ValueError(f"unknown probe {name!r}; known: {', '.join(PROBE_DIFFERENCES)}")


def structured_images(count: int, size: int) -> np.ndarray:
    """(count, size, size, 3) uint8 pictures with edges, gradients and colour (no noise): stripes, a disc, a
    bar, a corner patch, in colours and positions that differ per image, so every augmentation op moves visible
    structure."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    images = np.empty((count, size, size, 3), dtype=np.float64)
    for i in range(count):
        phase = 0.7 * i
        images[i, ..., 0] = 120 + 100 * np.sin(x / (6 + i) + phase)
        images[i, ..., 1] = 255 * x / size * (0.4 + 0.07 * i)
        images[i, ..., 2] = 255 * (1 - y / size) * (0.9 - 0.08 * i)
        disc = (x - 40 - 9 * i) ** 2 + (y - 95 + 4 * i) ** 2 < (18 + 2 * i) ** 2
        images[i][disc] = (250, 40 + 20 * i, 30)
        images[i, 20 + 3 * i:34 + 3 * i, 70:140] = (20, 30, 200 - 10 * i)  # a bar near the top
        images[i, :25, :25] = (255 - 20 * i, 255, 40)  # a corner patch: fill modes show here
    return np.clip(np.round(images), 0, 255).astype(np.uint8)


def augmentation_case(model: str, inputs: dict[str, np.ndarray], settings: dict[str, Any],
                      alignment: align.Alignment) -> tuple[np.ndarray, augment.AugmentSettings]:
    """Probe `augmentation`, course model `model`: the float32 batch (the model's pixel scale) and its augmentation
    under `alignment`, built as the workers' training pipelines build them (parity.augment.training_augmentation)."""
    spec = get_spec(model)
    images = inputs["images"]
    source = SampleSource(images, np.zeros((len(images), 1), np.float32), pixel_scale(spec.data))
    x, _ = collate(source, np.arange(len(source)))
    return x, augment.training_augmentation(spec, source, alignment, settings["seed"])


def effects(keras_arrays: dict[str, np.ndarray], torch_arrays: dict[str, np.ndarray]) -> dict[str, float]:
    """Max abs (or, for RELATIVE keys, relative) difference of each torch array from the Keras one of the same name;
    for MEAN_TOO keys the mean abs difference as well.

    A torch key `native_X` (the idiomatic path of a non-switchable difference) is compared with Keras' `X`.
    """
    out = {}
    for key, value in torch_arrays.items():
        reference = keras_arrays[key.removeprefix("native_")].astype(np.float64)
        diff = np.abs(value.astype(np.float64) - reference)
        if key.removeprefix("native_") in RELATIVE:
            out[f"{key}_max_rel_diff"] = float(np.max(diff / np.abs(reference)))
        else:
            out[f"{key}_max_abs_diff"] = float(np.max(diff))
        if key.removeprefix("native_") in MEAN_TOO:
            out[f"{key}_mean_abs_diff"] = float(np.mean(diff))
    return out


def _measure(plan: dict[str, list[align.Alignment]], workdir: Path | None,
             threads: int) -> dict[str, dict[align.Alignment, dict[str, float]]]:
    """Run every probe of `plan` under its alignments: one Keras and one Lightning worker in all."""
    unknown = sorted(set(plan) - set(PROBE_DIFFERENCES))
    if unknown:
        raise ValueError(f"unknown probe(s) {', '.join(unknown)}; known: {', '.join(PROBE_DIFFERENCES)}")
    if workdir is None:
        with jobs.work_directory("parity-probes-") as scratch:
            return _measure(plan, scratch, threads)
    for name in plan:
        np.savez(probe_path(workdir, name, "inputs"), **make_inputs(name))
    job = {"kind": "probe", "probes": {name: {"settings": SETTINGS[name], "alignments": [a.to_job() for a in alignments]}
                                       for name, alignments in plan.items()}}
    for framework in jobs.FRAMEWORKS:  # Keras first: the torch side loads its initial weights
        jobs.run_worker(framework, job, workdir, threads=threads, quiet=True)
    return {
        name: {a: effects(load_arrays(probe_path(workdir, name, "keras")),
                          load_arrays(probe_path(workdir, name, "lightning", a))) for a in alignments}
        for name, alignments in plan.items()
    }


def run_probes(names: Iterable[str], alignments: Iterable[align.Alignment], workdir: Path | None = None,
               threads: int = 1) -> dict[str, dict[str, dict[str, float]]]:
    """{probe: {alignment.describe(): effects}} for every probe under every alignment."""
    alignments = list(alignments)
    measured = _measure({name: alignments for name in names}, workdir, threads)
    return {name: {a.describe(): values for a, values in by_alignment.items()} for name, by_alignment in measured.items()}


def measure_probe(name: str, alignment: align.Alignment = align.ALIGNED, workdir: Path | None = None,
                  threads: int = 1) -> dict[str, float]:
    """The effects of probe `name` under `alignment` (two worker launches)."""
    return run_probes([name], [alignment], workdir, threads)[name][alignment.describe()]


def measure_all(workdir: Path | None = None, threads: int = 1) -> dict[str, dict[str, Any]]:
    """{difference key: {"kind": "probe", "aligned": effects, "native": effects, "summary": sentence}}.

    A switchable difference compares the aligned run with the run that leaves only that key
    native; a non-switchable one splits its single run into the correct path and the `native_` one.
    """
    plan = {name: [align.ALIGNED] + [align.Alignment(frozenset({key})) for key in keys if key in align.SWITCHABLE]
            for name, keys in PROBE_DIFFERENCES.items()}
    measured = _measure(plan, workdir, threads)
    out = {}
    for name, keys in PROBE_DIFFERENCES.items():
        run = measured[name][align.ALIGNED]
        aligned = {k: v for k, v in run.items() if not k.startswith("native_")}
        for key in keys:
            if key in align.SWITCHABLE:
                native = measured[name][align.Alignment(frozenset({key}))]
            else:
                native = {k.removeprefix("native_"): v for k, v in run.items() if k.startswith("native_")}
            out[key] = {"kind": "probe", "aligned": aligned, "native": native,
                        "summary": _summary(key, aligned, native)}
    return out


def _summary(key: str, aligned: dict[str, float], native: dict[str, float]) -> str:
    name, metric, sentence = HEADLINES[key]
    context = {k: "x".join(map(str, v)) if isinstance(v, tuple) else v for k, v in SETTINGS[name].items()}
    for side, values in (("native", native), ("aligned", aligned)):
        context.update({f"{side}_{effect}": f"{value:.1e}" for effect, value in values.items()})
    return sentence.format(native=f"{native[metric]:.1e}", aligned=f"{aligned[metric]:.1e}", **context)
