"""Training-time augmentation of NHWC float32 batches with Keras' image ops. Mirror: torch_models/augment.py.

`apply_aligned` applies parameters drawn by parity.augment.draw_parameters op by op, as the course's
Keras layers do (RandomFlip, RandomRotation, RandomTranslation, RandomContrast, RandomZoom): the
same per-sample transforms fed to keras.ops.image.affine_transform, the layers' fill_mode and
bilinear interpolation, and RandomContrast's formula. It runs eagerly or inside a tf.data map.
`native_augmenter` is the course's own stack of Keras random layers, seeded from the run seed: Keras
API only, so the keras-torch worker builds it too (TensorFlow is imported by `apply_aligned` alone).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import keras
import numpy as np

from parity.augment import COLUMN, GEOMETRIC, AugmentSettings, keras_transforms

if TYPE_CHECKING:
    import tensorflow as tf


def _stacked_transforms(params: np.ndarray, height: np.ndarray, width: np.ndarray) -> np.ndarray:
    transforms = keras_transforms(params, int(height), int(width))
    return np.stack([transforms[op] for op in GEOMETRIC])


def apply_aligned(images: tf.Tensor, params: tf.Tensor, settings: AugmentSettings) -> tf.Tensor:
    """NHWC float32 `images` augmented with `params` (parity.augment.draw_parameters rows), op by op."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images, dtype=tf.float32)
    params = tf.convert_to_tensor(params, dtype=tf.float32)
    shape = tf.shape(images)
    transforms = tf.numpy_function(_stacked_transforms, [params, shape[1], shape[2]], tf.float32, stateful=False)
    x = images
    for op in settings.ops:
        if op == "flip":
            flips = params[:, COLUMN["flip"]] > 0.5
            x = tf.where(flips[:, None, None, None], keras.ops.flip(x, axis=2), x)
        elif op == "contrast":  # RandomContrast._adjust_contrast, then its clip to value_range
            mean = keras.ops.mean(x, axis=(1, 2), keepdims=True)
            x = (x - mean) * params[:, COLUMN["contrast"], None, None, None] + mean
            x = keras.ops.clip(x, *settings.value_range)
        else:
            transform = tf.ensure_shape(transforms[GEOMETRIC.index(op)], [None, 8])
            x = keras.ops.image.affine_transform(x, transform, interpolation="bilinear",
                                                 fill_mode=settings.spec.fill_mode, fill_value=0.0,
                                                 data_format="channels_last")
    return tf.ensure_shape(x, images.shape)


# ---------------------------------------------------------------- native mode


def native_augmenter(settings: AugmentSettings) -> keras.Sequential:
    """The course's Keras random layers with its factors and fill_mode, each seeded from the run seed.

    Shear (v1 only) has no ImageDataGenerator-like layer: RandomShear(x_factor=tan(s)) shears about the
    top-left corner by a factor of random sign, the nearest Keras 3 layer.
    """
    spec, seed = settings.spec, settings.seed
    layers: list[keras.layers.Layer] = []
    for offset, op in enumerate(settings.ops):
        layer_seed = seed * len(settings.ops) + offset
        if op == "flip":
            layers.append(keras.layers.RandomFlip(spec.flip, seed=layer_seed))
        elif op == "rotation":
            layers.append(keras.layers.RandomRotation(spec.rotation, fill_mode=spec.fill_mode, seed=layer_seed))
        elif op == "shear":
            layers.append(keras.layers.RandomShear(x_factor=math.tan(math.radians(spec.shear)),
                                                   fill_mode=spec.fill_mode, seed=layer_seed))
        elif op == "translation":
            layers.append(keras.layers.RandomTranslation(*spec.translation, fill_mode=spec.fill_mode,
                                                         seed=layer_seed))
        elif op == "contrast":
            layers.append(keras.layers.RandomContrast(spec.contrast, value_range=settings.value_range,
                                                      seed=layer_seed))
        else:
            layers.append(keras.layers.RandomZoom(spec.zoom, fill_mode=spec.fill_mode, seed=layer_seed))
    return keras.Sequential(layers, name="augmentation")


def apply_native(images: tf.Tensor, augmenter: keras.Sequential) -> tf.Tensor:
    """NHWC `images`, each augmented by `augmenter`'s layers with their own draws (a tensor of Keras' backend)."""
    return augmenter(images, training=True)


def native_ranges(augmenter: keras.Sequential) -> dict[str, tuple[float, float]]:
    """The intervals the layers of `augmenter` sample from, read from the layer objects (parity.augment.ranges'
    units)."""
    found: dict[str, tuple[float, float]] = {}
    for layer in augmenter.layers:
        if isinstance(layer, keras.layers.RandomRotation):
            found["rotation_degrees"] = (360.0 * layer.factor[0], 360.0 * layer.factor[1])
        elif isinstance(layer, keras.layers.RandomTranslation):
            found["translate_height"] = (float(layer.height_lower), float(layer.height_upper))
            found["translate_width"] = (float(layer.width_lower), float(layer.width_upper))
        elif isinstance(layer, keras.layers.RandomZoom):
            if layer.width_factor is not None:
                raise ValueError("RandomZoom with its own width_factor zooms the axes apart; the course's has none")
            found["image_scale"] = (1.0 / (1.0 + layer.height_upper), 1.0 / (1.0 + layer.height_lower))
        elif isinstance(layer, keras.layers.RandomContrast):
            found["contrast"] = (1.0 - layer.factor[0], 1.0 + layer.factor[1])
        elif isinstance(layer, keras.layers.RandomShear):
            found["shear_degrees"] = tuple(math.degrees(math.atan(f)) for f in layer.x_factor)
    return found
