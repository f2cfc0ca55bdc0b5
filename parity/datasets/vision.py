"""IDX image sets (Fashion-MNIST, MNIST): train-* -> training split, t10k-* -> validation split."""

from __future__ import annotations

import math
import os

import numpy as np

from parity.catalog import ModelSpec
from parity.datasets.idx import read_idx_pair
from parity.datasets.locate import locate
from parity.datasets.sources import SOURCES
from parity.datasets.split import DataSplit, make_split
from parity.errors import DataError


def load_idx_images(spec: ModelSpec, data_dir: str | os.PathLike | None) -> DataSplit:
    """The 60,000 / 10,000 IDX split of `spec.dataset`, pixels scaled to [0, 1] float32."""
    files, location = locate(SOURCES[spec.dataset], data_dir)
    classes = spec.layers.classes
    splits = []
    for prefix in ("train", "t10k"):
        images_path = files[f"{prefix}-images-idx3-ubyte.gz"]
        images, labels = read_idx_pair(images_path, files[f"{prefix}-labels-idx1-ubyte.gz"], classes)
        if math.prod(images.shape[1:]) != math.prod(spec.input_shape):
            raise DataError(
                f"{images_path}: images are {images.shape[1]}x{images.shape[2]} pixels, "
                f"but {spec.id} expects input shape {spec.input_shape}"
            )
        splits.append((scale_pixels(images), labels))
    return make_split(spec, "real", splits[0], splits[1], location)


def scale_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 pixels / 255 as float32 (bit-identical to the course's float64 `/ 255.0` cast to float32)."""
    return images.astype(np.float32) / np.float32(255)
