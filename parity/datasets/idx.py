"""Reader for IDX files (the MNIST / Fashion-MNIST format), gzipped or not, with structural checks.

Every defect of a file (bad gzip, wrong magic, truncated payload, inconsistent labels) is
raised as a DataError naming the file, never as a raw traceback.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from parity.errors import DataError

UBYTE = 0x08
IMAGES_MAGIC = 0x0803  # 2051: unsigned bytes, 3 dimensions (count, rows, cols)
LABELS_MAGIC = 0x0801  # 2049: unsigned bytes, 1 dimension (count)
_KINDS = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}
_SHAPES = {IMAGES_MAGIC: "count, rows, cols", LABELS_MAGIC: "count"}
REPLACE = "replace it with a complete copy in the IDX format (as the course's MNIST / Fashion-MNIST files)"


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array stored in IDX file `path`, which must carry `magic` (IMAGES_MAGIC or LABELS_MAGIC)."""
    data = _read_bytes(path)
    kind = _KINDS[magic]
    if len(data) < 4:
        raise DataError(f"{path}: not an IDX {kind} file: only {len(data)} bytes; {REPLACE}")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        fix = REPLACE
        if data[:2] == b"\0\0" and data[2] != UBYTE:
            detail = f"data type 0x{data[2]:02x}, only unsigned bytes (0x08) are supported"
        elif data[:3] == b"\0\0\x08" and found in _KINDS:
            detail = f"magic number {found} is that of IDX {_KINDS[found]}; check that the file names are not swapped"
        elif data[:3] == b"\0\0\x08":
            wanted = 3 if magic == IMAGES_MAGIC else 1
            detail = f"{data[3]} dimensions, expected {wanted} ({_SHAPES[magic]})"
            if magic == IMAGES_MAGIC and data[3] == 4:
                detail += ", i.e. images with channels: only single-channel (grayscale) images are supported"
                fix = "convert the images to one channel (grayscale), as the course's MNIST / Fashion-MNIST files"
        else:
            detail = f"magic number {found} (0x{found:08x}), expected {magic} for IDX {kind}"
        raise DataError(f"{path}: not an IDX {kind} file: {detail}; {fix}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header: {len(data)} bytes, expected at least {header}; {REPLACE}")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected, actual = math.prod(dims), len(data) - header
    if actual != expected:
        problem = "truncated" if actual < expected else "too long"
        raise DataError(
            f"{path}: {problem} IDX {kind} file: the header gives shape {dims}, i.e. {expected} "
            f"bytes of data, but the file holds {actual}; {REPLACE}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx_pair(images_path: Path, labels_path: Path, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, rows, cols) uint8 and labels (N,) uint8 of one split, checked against each other."""
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}; "
            "the two files must belong to the same split"
        )
    if labels.size and labels.max() >= classes:
        raise DataError(
            f"{labels_path}: label {labels.max()} is out of range: the model has {classes} classes "
            f"(labels 0..{classes - 1}); fix the labels, or use a model with as many classes as the data"
        )
    return images, labels


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DataError(
            f"{path}: corrupt or truncated gzip file ({error}); replace it with a complete copy"
        ) from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror or error})") from None
