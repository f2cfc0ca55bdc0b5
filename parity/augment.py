"""Training-time image augmentation with the course's ranges: what both frameworks share (numpy only).

The course's v2 augmentation is a stack of Keras random layers in front of the model: RandomFlip,
RandomRotation, RandomTranslation, (RandomContrast,) RandomZoom, each resampling the image on its
own. In `aligned` mode (align: augmentation_stream) every sample's parameters are drawn here, once,
from `parity.plan.sample_rng(seed, epoch, index)`, with the distributions of the Keras 3 layers;
tf_models.augment applies them with Keras' image ops, torch_models.augment with
torchvision.transforms.v2.functional, op by op in the same order. In `native` mode each framework
draws with its own random layers/transforms; `ranges` is what both must sample from.

Augmentation runs on collated training batches only (float32 pixels after the source's PixelScale):
the geometric ops commute with that linear scaling, and contrast clips to the scaled image of
[0, 255] (`pixel_value_range`), as Keras' RandomContrast(value_range=(0, 255)) does on raw pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parity.align import Alignment
from parity.datasets.store import PixelScale, SampleSource
from parity.plan import sample_uniforms
from parity.spec_types import Augmentation, ImageFolderData, ModelSpec

# One column per parameter of a sample, in this order; one uniform is drawn for each, used or not,
# so a sample's draws never depend on which ranges a spec sets.
COLUMNS = ("flip", "angle", "shear", "dx", "dy", "zoom", "contrast")
COLUMN = {name: i for i, name in enumerate(COLUMNS)}
# The ops in the course's layer order (Sequential of RandomFlip, RandomRotation, RandomTranslation,
# RandomContrast, RandomZoom); shear (v1 ImageDataGenerator only) follows the rotation.
OPS = ("flip", "rotation", "shear", "translation", "contrast", "zoom")
GEOMETRIC = ("rotation", "shear", "translation", "zoom")
# Keras' fill modes and the torch padding that reproduces each around an image (TensorFlow's
# ImageProjectiveTransformV3 maps an outside coordinate into the image, then interpolates: the same
# as interpolating in an image padded so): nearest = (a a | a b c d | d d), reflect = (b a | a b c d | d c).
TORCH_PADDING = {"nearest": "edge", "reflect": "symmetric"}
FLIP_MODES = ("horizontal",)


@dataclass(frozen=True)
class AugmentSettings:
    """How a worker augments its training batches: the course's ranges, the pixels' value range, the alignment."""

    spec: Augmentation
    value_range: tuple[float, float]
    seed: int
    shared_stream: bool  # augmentation_stream aligned: parameters from draw_parameters
    keras_fill: bool  # augmentation_fill_mode aligned: torch emulates Keras' fill_mode by padding
    channel_mean_contrast: bool  # augmentation_contrast_mean aligned: torch uses Keras' per-channel mean

    @property
    def ops(self) -> tuple[str, ...]:
        return active_ops(self.spec)


def check_augmentation(spec: Augmentation) -> Augmentation:
    """`spec` if both frameworks can apply it; otherwise a ValueError saying what is supported."""
    if spec.flip not in (None, *FLIP_MODES):
        raise ValueError(f"augmentation flip {spec.flip!r} is not supported; use one of {FLIP_MODES} or None")
    if spec.fill_mode not in TORCH_PADDING:
        raise ValueError(f"augmentation fill_mode {spec.fill_mode!r} is not supported; use one of "
                         f"{', '.join(TORCH_PADDING)} (Keras' fill modes torch can emulate by padding)")
    for name in ("rotation", "zoom", "contrast", "shear"):
        if getattr(spec, name) < 0:
            raise ValueError(f"augmentation {name} must be >= 0 (a symmetric range), got {getattr(spec, name)}")
    if not 0 <= spec.zoom < 1 or not 0 <= spec.contrast <= 1:
        raise ValueError(f"augmentation zoom must lie in [0, 1) and contrast in [0, 1], "
                         f"got {spec.zoom} and {spec.contrast}")
    return spec


def active_ops(spec: Augmentation) -> tuple[str, ...]:
    """The ops `spec` applies (a zero range is no op), in the course's order."""
    used = {"flip": spec.flip is not None, "rotation": spec.rotation > 0, "shear": spec.shear > 0,
            "translation": any(spec.translation), "contrast": spec.contrast > 0, "zoom": spec.zoom > 0}
    return tuple(op for op in OPS if used[op])


def pixel_value_range(scale: PixelScale | None) -> tuple[float, float]:
    """The float32 values that pixels 0 and 255 become under `scale` (raw 0..255 without one)."""
    if scale is None:
        return 0.0, 255.0
    low, high = scale.apply(np.array([0, 255], dtype=np.uint8)).tolist()
    return float(low), float(high)


def training_augmentation(spec: ModelSpec, source: SampleSource, alignment: Alignment,
                          seed: int) -> AugmentSettings | None:
    """The augmentation of `spec`'s training batches under `alignment`, or None when its data has none."""
    data = spec.data
    augmentation = data.augmentation if isinstance(data, ImageFolderData) else None
    if augmentation is None:
        return None
    return AugmentSettings(
        spec=check_augmentation(augmentation),
        value_range=pixel_value_range(source.scale),
        seed=seed,
        shared_stream=alignment.is_aligned("augmentation_stream"),
        keras_fill=alignment.is_aligned("augmentation_fill_mode"),
        channel_mean_contrast=alignment.is_aligned("augmentation_contrast_mean"),
    )


# ---------------------------------------------------------------- the ranges each framework samples from


def ranges(spec: Augmentation) -> dict[str, tuple[float, float]]:
    """The sampling intervals of `spec` in common units, as both frameworks' native transforms must draw them.

    rotation_degrees: RandomRotation(f) draws the angle from f * 360 degrees, i.e. U(-360 f, 360 f).
    translate_height/width: RandomTranslation(h, w) shifts by U(-h, h) of the height and U(-w, w) of the width.
    image_scale: RandomZoom(z) samples the input grid at z' * output with z' ~ U(1 - z, 1 + z), so the image
    is magnified by 1 / z' in [1 / (1 + z), 1 / (1 - z)] (z' > 1 zooms out).
    contrast: Keras 3's RandomContrast(c) multiplies the deviation from the mean by U(1, 1 + c): its
    _set_factor clips the lower factor to _FACTOR_BOUNDS (0, 1), so a single float never lowers the contrast
    (Keras 2's layer, which the course ran, drew U(1 - c, 1 + c)).
    shear_degrees: ImageDataGenerator(shear_range=s) shears by U(-s, s) degrees.
    """
    h, w = spec.translation
    return {
        "rotation_degrees": (-360.0 * spec.rotation, 360.0 * spec.rotation),
        "translate_height": (-h, h),
        "translate_width": (-w, w),
        "image_scale": (1.0 / (1.0 + spec.zoom), 1.0 / (1.0 - spec.zoom)),
        "contrast": (1.0, 1.0 + spec.contrast),
        "shear_degrees": (-spec.shear, spec.shear),
    }


def range_mismatches(keras: dict[str, tuple[float, float]], torch: dict[str, tuple[float, float]],
                     rtol: float = 1e-6) -> list[str]:
    """Which intervals two frameworks' native transforms sample from differently ("name: keras (a, b), torch
    (c, d)"); empty when they agree to `rtol` (the frameworks store factors as float32 or float64)."""
    problems = [f"{name}: only in {'keras' if name in keras else 'torch'}" for name in sorted(set(keras) ^ set(torch))]
    for name in sorted(set(keras) & set(torch)):
        if not np.allclose(keras[name], torch[name], rtol=rtol, atol=1e-9):
            problems.append(f"{name}: keras {tuple(keras[name])}, torch {tuple(torch[name])}")
    return problems


# ---------------------------------------------------------------- aligned mode: one draw per sample


def draw_parameters(spec: Augmentation, seed: int, epoch: int, indices: np.ndarray, height: int,
                    width: int) -> np.ndarray:
    """(len(indices), len(COLUMNS)) float32 parameters of each sample, from sample_rng(seed, epoch, index).

    The Keras 3 layers' distributions: flip when u <= 0.5 (RandomFlip); angle U(-360 r, 360 r) degrees
    (RandomRotation); dx, dy = U(-w, w) * width, U(-h, h) * height pixels (RandomTranslation); zoom
    U(1 - z, 1 + z), the same for both axes as RandomZoom(z) with no width_factor; contrast factor
    U(1, 1 + c) (Keras 3's RandomContrast, see `ranges`); shear U(-s, s) degrees (ImageDataGenerator).
    """
    u = sample_uniforms(seed, epoch, indices, len(COLUMNS))
    h, w = spec.translation

    def spread(column: str, half_width: float, centre: float = 0.0) -> np.ndarray:
        return centre - half_width + 2.0 * half_width * u[:, COLUMN[column]]

    params = np.empty_like(u)
    params[:, COLUMN["flip"]] = (u[:, COLUMN["flip"]] <= 0.5) if spec.flip else 0.0
    params[:, COLUMN["angle"]] = spread("angle", 360.0 * spec.rotation)
    params[:, COLUMN["shear"]] = spread("shear", spec.shear)
    params[:, COLUMN["dx"]] = spread("dx", w) * width
    params[:, COLUMN["dy"]] = spread("dy", h) * height
    params[:, COLUMN["zoom"]] = spread("zoom", spec.zoom, 1.0)
    params[:, COLUMN["contrast"]] = 1.0 + spec.contrast * u[:, COLUMN["contrast"]]
    return params.astype(np.float32)


def keras_transforms(params: np.ndarray, height: int, width: int) -> dict[str, np.ndarray]:
    """Each geometric op's (n, 8) float32 projective transforms in Keras' form (output pixel -> input pixel).

    The formulas of the Keras layers: rotation about ((width - 1) / 2, (height - 1) / 2) as
    BaseImagePreprocessingLayer._compute_affine_matrix builds it; translation [[1, 0, -dx], [0, 1, -dy]]
    (RandomTranslation); zoom [[z, 0, cx (1 - z)], [0, z, cy (1 - z)]] (RandomZoom); shear as
    _compute_affine_matrix's shear_x (x_in = x + tan(shear) y about the centre).
    """
    params = np.asarray(params, dtype=np.float64)
    n = len(params)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    zeros, ones = np.zeros(n), np.ones(n)
    theta = np.deg2rad(params[:, COLUMN["angle"]])
    cos, sin = np.cos(theta), np.sin(theta)
    tan = np.tan(np.deg2rad(params[:, COLUMN["shear"]]))
    z = params[:, COLUMN["zoom"]]

    def rows(a0, a1, a2, b0, b1, b2) -> np.ndarray:
        return np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1).astype(np.float32)

    return {
        "rotation": rows(cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos),
        "shear": rows(ones, tan, -cy * tan, zeros, ones, zeros),
        "translation": rows(ones, zeros, -params[:, COLUMN["dx"]], zeros, ones, -params[:, COLUMN["dy"]]),
        "zoom": rows(z, zeros, cx * (1 - z), zeros, z, cy * (1 - z)),
    }


def padding_for(transform: np.ndarray, height: int, width: int) -> int:
    """Pixels of padding around an image that hold every input coordinate `transform` (one (8,) Keras transform)
    reads, plus one for the bilinear neighbour: how far torch must extend the image to emulate a fill mode."""
    a0, a1, a2, b0, b1, b2 = np.asarray(transform, dtype=np.float64)[:6]
    corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], dtype=np.float64)
    x = a0 * corners[:, 0] + a1 * corners[:, 1] + a2
    y = b0 * corners[:, 0] + b1 * corners[:, 1] + b2
    beyond = max(0.0, -x.min(), x.max() - (width - 1), -y.min(), y.max() - (height - 1))
    return int(np.ceil(beyond)) + 1
