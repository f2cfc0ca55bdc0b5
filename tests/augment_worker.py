"""One framework's side of tests/test_augment.py, run as a subprocess: `python augment_worker.py keras|torch OUT`.

Augments the same generated batch with the same drawn parameters (the cases of `cases()`), builds
the course's native augmenters, and writes OUT/images.npz (one array per case) and OUT/ranges.json.
TensorFlow and torch never share a process, so each framework runs this script on its own.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from parity.augment import COLUMN, AugmentSettings, draw_parameters  # noqa: E402
from parity.catalog import get_spec  # noqa: E402
from parity.datasets.store import PixelScale, SampleSource  # noqa: E402
from parity.plan import BatchPlan, collate  # noqa: E402
from parity.probes import structured_images  # noqa: E402
from parity.spec_types import Augmentation  # noqa: E402

SIZE = 150
BATCH = 8
SEED, EPOCH = 11, 3
SCALE = PixelScale(1 / 255)
VALUE_RANGE = (0.0, 1.0)  # pixel_value_range(SCALE)


def settings(spec: Augmentation, **alignment: bool) -> AugmentSettings:
    flags = {"shared_stream": True, "keras_fill": True, "channel_mean_contrast": True, **alignment}
    return AugmentSettings(spec=spec, value_range=VALUE_RANGE, seed=SEED, **flags)


def course(model_id: str) -> Augmentation:
    return get_spec(model_id).data.augmentation


def cases() -> dict[str, tuple[AugmentSettings, np.ndarray]]:
    """Each case: the settings and the (BATCH, 7) parameters both frameworks apply."""
    indices = np.arange(BATCH)
    c2w2, c2w4 = course("c2w2_cats_dogs_aug"), course("c2w4_rps_cnn")
    isolated = {
        "flip": Augmentation(flip="horizontal"),
        "rotation": Augmentation(rotation=0.2),
        "translation": Augmentation(translation=(0.2, 0.2)),
        "zoom": Augmentation(zoom=0.2),
        "contrast": Augmentation(contrast=0.4),
        "shear": Augmentation(shear=20.0),
    }
    found = {name: (settings(spec), draw_parameters(spec, SEED, EPOCH, indices, SIZE, SIZE))
             for name, spec in isolated.items()}
    found["c2w2_nearest"] = (settings(c2w2), draw_parameters(c2w2, SEED, EPOCH, indices, SIZE, SIZE))
    found["c2w4_reflect"] = (settings(c2w4), draw_parameters(c2w4, SEED, EPOCH, indices, SIZE, SIZE))
    # The same parameters with one torch-side difference left native (Keras ignores these flags).
    found["c2w2_fill_native"] = (settings(c2w2, keras_fill=False), found["c2w2_nearest"][1])
    found["c2w4_fill_native"] = (settings(c2w4, keras_fill=False), found["c2w4_reflect"][1])
    found["contrast_mean_native"] = (settings(isolated["contrast"], channel_mean_contrast=False),
                                     found["contrast"][1])
    return found


def pipeline_source() -> tuple[SampleSource, BatchPlan]:
    """A small augmented training set (11 pictures of 48x48, batches of 4: a short last batch) and its plan."""
    images = structured_images(11, 48)
    return SampleSource(images, np.arange(11, dtype=np.float32).reshape(-1, 1), SCALE), BatchPlan(11, 4, SEED)


PIPELINE_EPOCHS = 2


def planted(params: np.ndarray, column: str, value: float | None = None) -> np.ndarray:
    """`params` with one column negated (value None) or set to `value`: a wrong convention on one side."""
    wrong = params.copy()
    wrong[:, COLUMN[column]] = -wrong[:, COLUMN[column]] if value is None else value
    return wrong


def run_keras(images: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    import keras

    from tf_models import augment

    outputs = {name: augment.apply_aligned(images, params, case).numpy() for name, (case, params) in cases().items()}
    # The layers' own transform code fed the same parameters: apply_aligned must be the Keras layers.
    spec = course("c2w4_rps_cnn")
    params = draw_parameters(spec, SEED, EPOCH, np.arange(BATCH), SIZE, SIZE)
    x = keras.ops.convert_to_tensor(images)
    rotation = keras.layers.RandomRotation(spec.rotation, fill_mode=spec.fill_mode)
    matrix = rotation._compute_affine_matrix(0.5, 0.5, keras.ops.convert_to_tensor(params[:, COLUMN["angle"]]),
                                             *(keras.ops.zeros(BATCH),) * 2, keras.ops.ones(BATCH),
                                             *(keras.ops.zeros(BATCH),) * 2, SIZE, SIZE)
    translation = keras.layers.RandomTranslation(*spec.translation, fill_mode=spec.fill_mode)
    zoom = keras.layers.RandomZoom(spec.zoom, fill_mode=spec.fill_mode)
    zooms = params[:, COLUMN["zoom"], None]
    contrast = keras.layers.RandomContrast(spec.contrast, value_range=VALUE_RANGE)
    layers = {
        "rotation": rotation.transform_images(x, {"rotation_matrix": matrix}),
        "translation": translation.transform_images(
            x, {"translations": params[:, [COLUMN["dx"], COLUMN["dy"]]], "input_shape": x.shape}),
        "zoom": zoom.transform_images(x, {"height_zoom": zooms, "width_zoom": zooms, "input_shape": x.shape}),
        "contrast": contrast.transform_images(x, {"contrast_factor": params[:, COLUMN["contrast"], None, None, None]}),
        "flip": keras.layers.RandomFlip(spec.flip).transform_images(
            x, {"flips": params[:, COLUMN["flip"], None, None, None] > 0.5, "input_shape": x.shape}),
    }
    for op, out in layers.items():
        mine = augment.apply_aligned(images, params, settings(_only(spec, op)))
        outputs[f"layer_{op}"] = keras.ops.convert_to_numpy(out)
        outputs[f"mine_{op}"] = mine.numpy()
    native = {name: augment.native_ranges(augment.native_augmenter(settings(course(name))))
              for name in ("c2w2_cats_dogs_aug", "c2w4_rps_cnn")}
    outputs["native_c2w4"] = augment.apply_native(images, augment.native_augmenter(settings(spec))).numpy()
    outputs.update(_keras_pipeline(spec))
    return outputs, native


def _keras_pipeline(spec: Augmentation) -> dict[str, np.ndarray]:
    """The training pipeline's batches (tf_models.data), and each batch augmented directly with its epoch's draw."""
    from tf_models import augment
    from tf_models.data import train_dataset

    source, plan = pipeline_source()
    case = settings(spec)
    batches = [x.numpy() for x, _ in train_dataset(plan, source, PIPELINE_EPOCHS, parallel=False, augmentation=case)]
    expected = [augment.apply_aligned(collate(source, batch)[0], draw_parameters(spec, SEED, epoch, batch, 48, 48),
                                      case).numpy()
                for epoch in range(PIPELINE_EPOCHS) for batch in plan.epoch_batches(epoch)]
    return {"pipeline": np.concatenate(batches), "pipeline_expected": np.concatenate(expected)}


def _only(spec: Augmentation, op: str) -> Augmentation:
    """`spec` with every op but `op` switched off (its fill mode kept)."""
    off = Augmentation(fill_mode=spec.fill_mode)
    field = {"rotation": "rotation", "translation": "translation", "zoom": "zoom", "contrast": "contrast",
             "flip": "flip"}[op]
    return replace(off, **{field: getattr(spec, field)})


def run_torch(images: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    import torch
    from torchvision.transforms import v2 as T

    from torch_models import augment
    from torch_models.data import plan_loader

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    x = torch.from_numpy(images)
    every = cases()
    outputs = {name: augment.apply_aligned(x, params, case).numpy() for name, (case, params) in every.items()}
    case, params = every["c2w4_reflect"]
    outputs["planted_angle_sign"] = augment.apply_aligned(x, planted(params, "angle"), case).numpy()
    outputs["planted_no_flip"] = augment.apply_aligned(x, planted(params, "flip", 0.0), case).numpy()
    outputs["planted_zoom_inverse"] = augment.apply_aligned(x, _inverse_zoom(params), case).numpy()
    native = {name: augment.native_ranges(augment.native_augmenter(settings(course(name))))
              for name in ("c2w2_cats_dogs_aug", "c2w4_rps_cnn")}
    outputs["native_c2w4"] = augment.apply_native(x, augment.native_augmenter(settings(course("c2w4_rps_cnn")))).numpy()
    # Planted wrong ranges: what a port that copies the numbers naively writes.
    spec = course("c2w4_rps_cnn")
    naive = T.Compose([T.RandomHorizontalFlip(), T.RandomAffine(degrees=spec.rotation * 180, translate=(0.2, 0.2),
                                                               scale=(1 - spec.zoom, 1 + spec.zoom)),
                       augment.UnitRangeContrast((1 - spec.contrast, 1 + spec.contrast), VALUE_RANGE)])
    native["planted_naive_port"] = augment.native_ranges(naive)
    source, plan = pipeline_source()
    loader = plan_loader(plan, source, augmentation=settings(spec))
    batches = []
    for epoch in range(PIPELINE_EPOCHS):
        loader.sampler.set_epoch(epoch)
        batches += [x.numpy() for x, _ in loader]
    outputs["pipeline"] = np.concatenate(batches)
    return outputs, native


def _inverse_zoom(params: np.ndarray) -> np.ndarray:
    """`params` with each zoom z replaced by 1 / z (magnification read as the sampling factor)."""
    wrong = params.copy()
    wrong[:, COLUMN["zoom"]] = 1.0 / wrong[:, COLUMN["zoom"]]
    return wrong


def main(framework: str, out: Path) -> None:
    images = SCALE.apply(structured_images(BATCH, SIZE))
    outputs, native = (run_keras if framework == "keras" else run_torch)(images)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "images.npz", input=images, **outputs)
    (out / "ranges.json").write_text(json.dumps(native))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
