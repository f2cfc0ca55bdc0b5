"""Images decoded and resized once, with Pillow, outside both frameworks, into an on-disk cache.

The cache holds one uint8 (N, height, width, channels) .npy file per image set, under
$PARITY_CACHE_DIR/decoded/<key>/ (default ~/.cache/parity/decoded/<key>/). The key is the sha256
of the files' contents (sha256 of each file's bytes, in order), the target size, the colour
mode and the decoder (Pillow's version and the filter), so a renamed or moved copy of the same
images hits the cache and a changed file misses it. An entry is written into a temporary
folder and renamed into place, so a reader never sees half an entry; both workers and later
runs memory-map it. Its index.json, written last, records the sha256 and size of images.npy:
an entry is checked against it before each use, and one that fails (truncated, corrupt, or
written before entries carried the record) is decoded again after a one-line note. The check
and the decoding hold the cache lock of the entry (`parity.cache.entry_lock`), so two runs that
need the same images at once decode them once.

Resampling: Pillow's BILINEAR filter, the `bilinear` interpolation that the course v2's
`image_dataset_from_directory` asks for (Keras' own PIL path, `load_img(interpolation=
"bilinear")`, uses the same filter). An image already at the target size is not resampled (the
course's happy-or-sad faces). When shrinking, Pillow's bilinear averages over the whole
footprint (antialiased) while `tf.image.resize(antialias=False)` interpolates the 2x2 nearest
pixels, and TensorFlow keeps the float result where the cache stores it rounded to uint8: so the
pixels are the course's up to these two effects (measured on 200 cats of cats_and_dogs_filtered,
about 500x375 -> 150x150: 2.9 of 255 apart on average, 0.23 of it the rounding), and identical
for both frameworks here.
Colour: RGBA, LA and palette images lose their alpha channel without compositing (as
TensorFlow's decode_png with channels=3 does); greyscale becomes RGB by copying the grey value;
"grayscale" uses Pillow's ITU-R 601-2 luma.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity.cache import cache_root, entry_lock, note, sha256_file
from parity.errors import DataError

COLOR_MODES = {"rgb": ("RGB", 3), "grayscale": ("L", 1)}
DECODED = "decoded"
IMAGES = "images.npy"
INDEX = "index.json"
INDEX_FORMAT = 2  # 2: the index records images.npy's sha256 and size


class DataWarning(UserWarning):
    """A data file that was skipped (unreadable, not an image); the message names it."""


@dataclass(frozen=True)
class ImageFile:
    """One image to decode: its name (for messages) and how to read its bytes."""

    name: str
    read: Callable[[], bytes]


@dataclass(frozen=True)
class DecodedImages:
    """The decoded pixels (read-only memory map) of the readable files, in order; `kept[i]` is the input
    position of row i; `skipped` names the unreadable files; `cache` is the entry's folder."""

    pixels: np.ndarray
    kept: np.ndarray
    skipped: tuple[str, ...]
    cache: Path


def decoded_root() -> Path:
    """$PARITY_CACHE_DIR/decoded (default ~/.cache/parity/decoded)."""
    return cache_root() / DECODED


def decode_images(files: Sequence[ImageFile], size: tuple[int, int], color_mode: str) -> DecodedImages:
    """All `files` decoded to uint8 (height, width, channels) = (*size, 3 or 1), from the cache or decoded now.

    An unreadable or non-image file is skipped with a DataWarning naming it (every time, also
    from the cache). A file that cannot be read at all is a DataError naming it.
    """
    if color_mode not in COLOR_MODES:
        raise DataError(f"color_mode {color_mode!r} is not one of {tuple(COLOR_MODES)}")
    if not files:
        raise DataError("no image files to decode; give class folders that hold images")
    digests = [hashlib.sha256(_read(image)).hexdigest() for image in files]
    entry = decoded_root() / _key(digests, size, color_mode)
    with entry_lock(f"{DECODED}-{entry.name}"):
        index, problem = checked_index(entry, len(files))
        if index is None:
            if entry.exists():
                note(f"parity: the decoded-image cache entry {entry} is unusable ({problem}); decoding again")
                shutil.rmtree(entry)
            index = _decode_into(entry, files, size, color_mode)
    skipped = tuple(files[position].name for position in index["skipped"])
    for name, reason in zip(skipped, index["reasons"]):
        warnings.warn(f"{name}: not a readable image ({reason}); skipped", DataWarning, stacklevel=2)
    return DecodedImages(np.load(entry / IMAGES, mmap_mode="r"), np.array(index["kept"], dtype=np.int64),
                         skipped, entry)


def checked_index(entry: Path, count: int) -> tuple[dict | None, str]:
    """The index of cache entry `entry` of `count` input files when the entry passes its check, else (None, why)."""
    try:
        index = json.loads((entry / INDEX).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "no index"
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: JSON nested too deeply
        return None, f"unreadable index: {' '.join(str(error).split())[:120]}"
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        return None, f"index not in format {INDEX_FORMAT}"
    kept, skipped, reasons, images = (index.get(name) for name in ("kept", "skipped", "reasons", "images"))
    lists = all(isinstance(value, list) for value in (kept, skipped, reasons))
    if (not lists or not isinstance(images, dict) or len(reasons) != len(skipped)
            or not all(isinstance(position, int) for position in kept + skipped)
            or sorted(kept + skipped) != list(range(count))):
        return None, "index does not describe the input files"
    path = entry / IMAGES
    try:
        size, digest = path.stat().st_size, sha256_file(path)
    except OSError as error:
        return None, f"{IMAGES} unreadable: {error.strerror}"
    if size != images.get("bytes") or digest != images.get("sha256"):
        return None, (f"{IMAGES} has {size:,} bytes and sha256 {digest[:12]}..., its index records "
                      f"{images.get('bytes')} bytes and {str(images.get('sha256'))[:12]}...")
    return index, ""


def decoder_version() -> str:
    """The decoder in the cache key: a new Pillow (its codecs) or filter makes new entries."""
    import PIL

    return f"pillow-{PIL.__version__}-bilinear-1"


def _key(digests: Sequence[str], size: tuple[int, int], color_mode: str) -> str:
    key = hashlib.sha256(f"{decoder_version()}|{size[0]}x{size[1]}|{color_mode}|".encode())
    for digest in digests:
        key.update(bytes.fromhex(digest))
    return key.hexdigest()


def decode_one(data: bytes, size: tuple[int, int], color_mode: str) -> np.ndarray:
    """One image's bytes as uint8 (height, width, channels); raises OSError/ValueError when unreadable."""
    from PIL import Image

    mode, channels = COLOR_MODES[color_mode]
    height, width = size
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        converted = image.convert(mode)
    if converted.size != (width, height):
        converted = converted.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(converted, dtype=np.uint8).reshape(height, width, channels)


def _decode_into(entry: Path, files: Sequence[ImageFile], size: tuple[int, int], color_mode: str) -> dict:
    """Decode into a temporary folder beside `entry`, then rename it into place (atomic; the caller holds the
    entry's lock and has removed any previous entry); returns the entry's index."""
    from PIL import Image

    channels = COLOR_MODES[color_mode][1]
    entry.parent.mkdir(parents=True, exist_ok=True)
    print(f"parity: decoding {len(files):,} images to {size[0]}x{size[1]} {color_mode}, once, into {entry}",
          file=sys.stderr, flush=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{entry.name[:16]}-", dir=entry.parent))
    try:
        pixels = np.lib.format.open_memmap(temporary / IMAGES, mode="w+", dtype=np.uint8,
                                           shape=(len(files), *size, channels))
        kept, skipped, reasons = [], [], []
        for position, image in enumerate(files):
            try:
                pixels[len(kept)] = decode_one(_read(image), size, color_mode)
            except Image.UnidentifiedImageError:  # its message names the in-memory buffer, not the file
                skipped.append(position)
                reasons.append("not an image format Pillow reads")
                continue
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
                skipped.append(position)
                reasons.append(" ".join(str(error).split())[:200] or type(error).__name__)
                continue
            kept.append(position)
        pixels.flush()
        del pixels
        if not kept:
            raise DataError(f"none of the {len(files)} files is a readable image, e.g. {files[0].name}: {reasons[0]}")
        if skipped:
            _truncate(temporary / IMAGES, len(kept))
        images = {"sha256": sha256_file(temporary / IMAGES), "bytes": (temporary / IMAGES).stat().st_size}
        index = {"format": INDEX_FORMAT, "kept": kept, "skipped": skipped, "reasons": reasons, "images": images,
                 "size": list(size), "color_mode": color_mode, "decoder": decoder_version()}
        (temporary / INDEX).write_text(json.dumps(index))
        os.rename(temporary, entry)
        return index
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _read(image: ImageFile) -> bytes:
    """The bytes of `image`; a DataError naming it when it cannot be read at all."""
    try:
        return image.read()
    except OSError as error:
        raise DataError(f"{image.name}: cannot read the file ({error.strerror or error}); "
                        "fix its permissions or remove it") from None


def _truncate(path: Path, rows: int) -> None:
    """Keep the first `rows` rows of the .npy file at `path` (copied in chunks into a new file)."""
    full = np.load(path, mmap_mode="r")
    shorter_path = path.with_name("shorter.npy")
    write_rows(full, np.arange(rows), shorter_path)
    del full
    os.replace(shorter_path, path)


def write_rows(array: np.ndarray, rows: np.ndarray, path: Path, chunk: int = 256) -> None:
    """array[rows] written to the .npy file `path`, `chunk` rows at a time (a memory-mapped array is never
    read whole)."""
    copy = np.lib.format.open_memmap(path, mode="w+", dtype=array.dtype, shape=(len(rows), *array.shape[1:]))
    for start in range(0, len(rows), chunk):
        copy[start : start + chunk] = array[rows[start : start + chunk]]
    copy.flush()
    del copy
