"""Generated class-per-folder image sets for the image-folder tests (Pillow, deterministic)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def write_image_folders(root: Path, counts: dict[str, int], size: tuple[int, int] = (24, 32), mode: str = "RGB",
                        seed: int = 0) -> dict[str, list[np.ndarray]]:
    """root/<class>/<class>-NN.png, `counts[class]` random images of `size` (height, width) each, in `mode`.

    Returns each class's images as written (uint8 arrays, in file-name order).
    """
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    written: dict[str, list[np.ndarray]] = {}
    for name, count in counts.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        written[name] = []
        for number in range(count):
            pixels = rng.integers(0, 256, (*size, channels), dtype=np.uint8)
            Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(folder / f"{name}-{number:02d}.png")
            written[name].append(pixels)
    return written


def write_files(root: Path, files: dict[str, bytes]) -> None:
    """root/<relative path> = bytes, for each entry of `files` (parent folders made)."""
    for name, payload in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(payload)


def truncated_jpeg(size: tuple[int, int] = (16, 16)) -> bytes:
    """The first half of a JPEG: Pillow refuses to decode it (as PetImages' broken files)."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((*size, 3), 128, np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]
