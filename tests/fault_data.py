"""Broken and odd data sets for the fault matrix (tests/test_fault_matrix.py), one folder or file per defect.

`write_fault_data(root)` writes every one of them under `root` once; each name below is the
path (relative to `root`) that a case passes to `--data-dir`.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from image_helpers import write_image_folders

IMAGES_MAGIC, LABELS_MAGIC = 0x0803, 0x0801
TRAIN, VAL = 20, 10  # records per IDX split: small, and enough for the course's split checks
SUNSPOTS_HEADER = ",Date,Monthly Mean Total Sunspot Number"


def idx_bytes(array: np.ndarray, magic: int | None = None, dims: tuple[int, ...] | None = None) -> bytes:
    """`array` (uint8) as an IDX file; `magic` and `dims` replace the header's own (to make it lie)."""
    dims = array.shape if dims is None else dims
    magic = (0x08 << 8 | len(dims)) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in dims)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _idx_set(directory: Path, images: dict[str, np.ndarray], labels: dict[str, np.ndarray],
             replace: dict[str, bytes] | None = None) -> None:
    """The four Fashion-MNIST file names, gzipped; `replace` gives some file's raw bytes instead."""
    directory.mkdir(parents=True)
    files = {}
    for prefix in ("train", "t10k"):
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(images[prefix]), mtime=0)
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(labels[prefix]), mtime=0)
    files.update(replace or {})
    for name, data in files.items():
        (directory / name).write_bytes(data)


def write_idx_sets(root: Path) -> None:
    """idx-*: a good Fashion-MNIST-shaped set and one set per defect."""
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (TRAIN, 28, 28), np.uint8),
              "t10k": rng.integers(0, 256, (VAL, 28, 28), np.uint8)}
    labels = {"train": np.arange(TRAIN, dtype=np.uint8) % 10, "t10k": np.arange(VAL, dtype=np.uint8) % 10}
    good_train_images = gzip.compress(idx_bytes(images["train"]), mtime=0)
    _idx_set(root / "idx-good", images, labels)
    (root / "idx-missing-file").mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (root / "idx-missing-file" / name).write_bytes((root / "idx-good" / name).read_bytes())
    _idx_set(root / "idx-empty-file", images, labels, {"train-images-idx3-ubyte.gz": b""})
    _idx_set(root / "idx-empty-gzip", images, labels, {"train-images-idx3-ubyte.gz": gzip.compress(b"", mtime=0)})
    _idx_set(root / "idx-truncated-gz", images, labels,
             {"train-images-idx3-ubyte.gz": good_train_images[: len(good_train_images) // 2]})
    _idx_set(root / "idx-not-gzip", images, labels, {"train-images-idx3-ubyte.gz": b"<html>404 Not Found</html>\n"})
    _idx_set(root / "idx-wrong-magic", images, labels,
             {"train-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(labels["train"], magic=IMAGES_MAGIC,
                                                                    dims=(TRAIN,)), mtime=0)})
    _idx_set(root / "idx-wrong-count", images, labels,  # the header promises 30 images, the file holds 20
             {"train-images-idx3-ubyte.gz": gzip.compress(idx_bytes(images["train"], dims=(30, 28, 28)), mtime=0)})
    _idx_set(root / "idx-label-count", images, {**labels, "train": labels["train"][:-1]})
    _idx_set(root / "idx-32x32", {prefix: np.zeros((len(x), 32, 32), np.uint8) for prefix, x in images.items()},
             labels)
    _idx_set(root / "idx-rgb", {prefix: np.zeros((len(x), 28, 28, 3), np.uint8) for prefix, x in images.items()},
             labels)
    _idx_set(root / "idx-label-10", images, {**labels, "t10k": np.full(VAL, 10, np.uint8)})
    _idx_set(root / "idx-zero-records", {**images, "train": images["train"][:0]},
             {**labels, "train": labels["train"][:0]})
    _idx_set(root / "idx-zero-val", {**images, "t10k": images["t10k"][:0]}, {**labels, "t10k": labels["t10k"][:0]})
    (root / "idx-a-file").write_bytes(good_train_images)


def _headlines(count: int, label: object = None) -> list[dict]:
    return [{"headline": f"headline number {i} about things", "is_sarcastic": i % 2 if label is None else label,
             "article_link": f"https://example.com/{i}"} for i in range(count)]


def write_sarcasm_files(root: Path) -> None:
    """sarcasm-*/sarcasm.json: JSON that is broken, empty or of the wrong shape."""
    files = {
        "sarcasm-invalid-json": '[{"headline": "a", "is_sarcastic": 0},\n {"headline": "b", "is_sarc',
        "sarcasm-empty-file": "",
        "sarcasm-not-utf8": b"\xff\xfe[\x00{\x00".decode("latin-1"),
        "sarcasm-not-a-list": json.dumps({"headline": "a", "is_sarcastic": 0}),
        "sarcasm-empty-list": "[]",
        "sarcasm-missing-key": json.dumps([*_headlines(5), {"is_sarcastic": 1}]),
        "sarcasm-wrong-type": json.dumps([*_headlines(5), {"headline": 42, "is_sarcastic": 1}]),
        "sarcasm-label-2": json.dumps([*_headlines(5), {"headline": "too sarcastic", "is_sarcastic": 2}]),
        "sarcasm-label-text": json.dumps([*_headlines(5), {"headline": "a", "is_sarcastic": "1"}]),
        "sarcasm-one-record": json.dumps(_headlines(1)),
    }
    for name, text in files.items():
        (root / name).mkdir()
        (root / name / "sarcasm.json").write_bytes(text.encode("latin-1" if name == "sarcasm-not-utf8" else "utf-8"))


def _sunspots_rows(count: int) -> list[str]:
    return [f"{i},{1749 + i // 12:04d}-{i % 12 + 1:02d}-28,{50 + (i * 7) % 90}.0" for i in range(count)]


def write_csv_files(root: Path) -> None:
    """csv-*.csv: Sunspots-shaped series files with one defect each, and user series for a generated-series model."""
    good = [SUNSPOTS_HEADER, *_sunspots_rows(200)]
    files = {
        "csv-empty.csv": "",
        "csv-header-only.csv": SUNSPOTS_HEADER + "\n",
        "csv-not-a-number.csv": "\n".join([*good[:50], "49,1753-01-28,n/a", *good[51:]]) + "\n",
        "csv-short-row.csv": "\n".join([*good[:30], "29,1751-06-28", *good[31:]]) + "\n",
        "csv-shorter-than-window.csv": "\n".join([SUNSPOTS_HEADER, *_sunspots_rows(20)]) + "\n",
        "csv-date-gap.csv": "\n".join([*good[:40], *good[42:]]) + "\n",
        "csv-good.csv": "\n".join(good) + "\n",
        "user-series-three-columns.csv": "t,a,b\n" + "".join(f"{i},{i}.5,{i * 2}\n" for i in range(100)),
        "user-series-short.csv": "t,value\n" + "".join(f"{i},{i}.5\n" for i in range(10)),
        "user-series-text.csv": "t,value\n" + "".join(f"{i},{'high' if i == 7 else i}\n" for i in range(100)),
    }
    for name, text in files.items():
        (root / name).write_text(text)
    (root / "csv-binary.csv").write_bytes(gzip.compress(b"\x00\x01\xff" * 100, mtime=0))
    (root / "csv-two-files").mkdir()
    for name in ("a.csv", "b.csv"):
        (root / "csv-two-files" / name).write_text("\n".join(good) + "\n")


def _zip_of_folder(folder: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(folder).as_posix())


def write_image_sets(root: Path) -> None:
    """images-*: class folders (happy/, sad/) and zips of them, with one defect each."""
    write_image_folders(root / "images-good", {"happy": 2, "sad": 2}, size=(8, 8))
    write_image_folders(root / "images-empty-class", {"happy": 2}, size=(8, 8))
    (root / "images-empty-class" / "sad").mkdir()
    write_image_folders(root / "images-one-class", {"happy": 3}, size=(8, 8))
    write_image_folders(root / "images-unreadable-class", {"happy": 2}, size=(8, 8))
    unreadable = root / "images-unreadable-class" / "sad"
    unreadable.mkdir()
    (unreadable / "notes.txt").write_text("not an image\n")
    png = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(png, format="PNG")
    (unreadable / "broken.png").write_bytes(png.getvalue()[:40])  # a PNG cut inside its first chunk
    (root / "images-no-classes").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "images-no-classes" / "loose.png")
    (root / "images-not-a-zip.zip").write_text("this is not a zip archive\n")
    _zip_of_folder(root / "images-good", root / "images-good.zip")
    whole = (root / "images-good.zip").read_bytes()
    (root / "images-truncated.zip").write_bytes(whole[: len(whole) // 2])


def write_fault_data(root: Path) -> Path:
    """Every fault data set under `root` (created); returns `root`."""
    root.mkdir(parents=True, exist_ok=True)
    write_idx_sets(root)
    write_sarcasm_files(root)
    write_csv_files(root)
    write_image_sets(root)
    return root
