"""IDX image sets (Fashion-MNIST, MNIST): train-* -> training split, t10k-* -> validation split."""

from __future__ import annotations

import math
import os

from parity.catalog import ModelSpec
from parity.datasets.idx import read_idx_pair
from parity.datasets.locate import locate
from parity.datasets.sources import SOURCES
from parity.datasets.split import DataSplit, make_split
from parity.datasets.store import PixelScale
from parity.errors import DataError

# The notebooks' `images / 255.0`: float32 division by 255 is bit-identical to it (see PixelScale).
COURSE_SCALE = PixelScale(255.0, divide=True)
# Label i names class CLASS_NAMES[dataset][i] (Fashion-MNIST: the data set's README; MNIST: the digits).
CLASS_NAMES = {
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
    "mnist": tuple(str(digit) for digit in range(10)),
}


def load_idx_images(spec: ModelSpec, data_dir: str | os.PathLike | None) -> DataSplit:
    """The 60,000 / 10,000 IDX split of `spec.dataset`: uint8 pixels, divided by 255 per batch (as the course)."""
    files, location = locate(SOURCES[spec.dataset], data_dir)
    classes = spec.layers.classes
    splits = []
    for prefix, role in (("train", "training"), ("t10k", "validation")):
        images_path = files[f"{prefix}-images-idx3-ubyte.gz"]
        images, labels = read_idx_pair(images_path, files[f"{prefix}-labels-idx1-ubyte.gz"], classes)
        if math.prod(images.shape[1:]) != math.prod(spec.input_shape):
            rows, cols = spec.input_shape[:2]
            raise DataError(
                f"{images_path}: images are {images.shape[1]}x{images.shape[2]} pixels, "
                f"but {spec.id} expects {rows}x{cols} (input shape {spec.input_shape}); resize them to {rows}x{cols}"
            )
        if len(images) == 0:
            raise DataError(f"{images_path}: no images (the header gives 0 records); the {role} split needs at "
                            "least one: give a file that holds some")
        splits.append((images, labels))
    read = [str(files[name]) for name in SOURCES[spec.dataset].files]
    return make_split(spec, "real", splits[0], splits[1], location,
                      {"files": read, "classes": list(CLASS_NAMES[spec.dataset])}, scale=COURSE_SCALE)
