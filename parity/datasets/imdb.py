"""IMDB movie reviews (C3): the labelled reviews of the Large Movie Review Dataset, as the course's tfds imdb_reviews.

Input: `aclImdb_v1.tar.gz` (read as a stream, nothing extracted to disk) or its extracted
`aclImdb/` folder, or a folder holding either (the archive is preferred when both are there).
Only train/{pos,neg} and test/{pos,neg} are read (not train/unsup, the *.feat and urls files):
pos is label 1, neg 0, 25,000 reviews per split in the real data. The test reviews validate
(spec.validation "test"), as in the course. Order: by split, then folder (neg, pos), then the
numeric id of the `<id>_<rating>.txt` name, so every run and both frameworks see the same order.

A malformed review (bytes that are not UTF-8, an empty text, a name not `<id>_<rating>.txt`, a
file over MAX_REVIEW_BYTES) is skipped with a one-line warning naming it (`DataWarning`) and
counted in the split's info ("skipped"). A missing pos/neg folder, or one with no review left,
is a DataError naming it. An archive member with an absolute or `..` name, a link or a special
file makes the whole archive refused before anything of it is used.

Two encodings (the v2 labs): imdb-reviews, TextVectorization(max_tokens=10,000) adapted on the
training reviews (`parity.datasets.sarcasm.tokenize`); imdb-subwords, WordPiece ids
(`parity.subwords`) of a vocabulary learnt from the training reviews, or of `vocab` (a file,
or "course" for the course's file). Ids stay ragged and are padded per batch as spec.data says
(`make_split`). Tokenizing 50,000 reviews takes seconds, so the ids are cached in
$PARITY_CACHE_DIR/tokenized/<key>/, the key a sha256 of the review texts, the recipe (vocabulary
included) and the tokenizing code; each file's sha256 is recorded in the entry's index.json and
checked before use. The reviews are read every time (a second), so skipped reviews are reported
on every load.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity import subwords
from parity.cache import cache_root, entry_lock, note, sha256_file
from parity.catalog import ModelSpec
from parity.datasets import download
from parity.datasets.decode import DataWarning
from parity.datasets.locate import cache_dir, local_directory, locate
from parity.datasets.sarcasm import tokenize
from parity.datasets.sources import SOURCES, spec_source
from parity.datasets.split import DataSplit, make_split
from parity.datasets.store import Ragged, ragged_array
from parity.errors import DataError

ARCHIVE = "aclImdb_v1.tar.gz"
ROOT = "aclImdb"
SPLITS = ("train", "test")
CLASSES = ("neg", "pos")  # labels 0 and 1
COURSE_REVIEWS = 25_000  # per split, 12,500 per class
MAX_REVIEW_BYTES = 2**20  # the longest real review has 13,704 bytes
LISTED_SKIPS = 20  # skipped reviews named in the split's info; the rest are counted
REVIEW_NAME = re.compile(r"(\d+)_(\d+)\.txt")
TOKENIZED = "tokenized"
INDEX = "index.json"
VOCABULARY = "vocabulary.json"
ARRAYS = ("train-values.npy", "train-offsets.npy", "val-values.npy", "val-offsets.npy")
INDEX_FORMAT = 1
# The code whose output the tokenized cache holds: a change in any of these makes new entries.
TOKENIZING_CODE = ("text.py", "subwords.py", "datasets/imdb.py", "datasets/sarcasm.py")


@dataclass(frozen=True)
class Reviews:
    """One split's reviews, in reading order, and their labels (float32 0/1: neg/pos)."""

    texts: tuple[str, ...]
    labels: np.ndarray


@dataclass(frozen=True)
class ImdbReviews:
    """The labelled reviews of an IMDB copy: training and test splits, the reviews left out, the files read."""

    train: Reviews
    test: Reviews
    skipped: tuple[str, ...]  # "<member or file>: <what is wrong>" of each review left out
    files: tuple[str, ...]  # the archive, or every review file of a folder
    location: str


@dataclass(frozen=True)
class EncodedReviews:
    """Training and validation texts as ragged token ids, the vocabulary in id order, and what to report of it."""

    train: Ragged
    val: Ragged
    vocabulary: tuple[str, ...]
    info: Mapping[str, Any]


@dataclass(frozen=True)
class _Review:
    split: str
    label: int
    order: tuple[int, int, str]  # numeric id, rating, name
    text: str


def load_imdb_reviews(spec: ModelSpec, data_dir: str | os.PathLike | None) -> DataSplit:
    """imdb-reviews: the v2 labs' TextVectorization ids (spec.data: max_tokens 10,000), test reviews validating."""
    reviews = read_imdb(find_imdb(data_dir))
    recipe = {"tokenizer": spec.data.tokenizer, "vocab_size": spec.data.vocab_size}

    def encode() -> EncodedReviews:
        ids = tokenize(spec.data, reviews.train.texts, reviews.test.texts)
        return EncodedReviews(ragged_array(ids.train), ragged_array(ids.val), tuple(ids.vocabulary), ids.info)

    return _split(spec, reviews, cached_encoding(recipe, reviews, encode), [])


def load_imdb_subwords(spec: ModelSpec, data_dir: str | os.PathLike | None,
                       vocab: str | os.PathLike | None = None) -> DataSplit:
    """imdb-subwords: WordPiece ids of a vocabulary learnt from the training reviews, or of `vocab` (a file of one
    token per line, or "course": the course's imdb_vocab_subwords.txt), test reviews validating."""
    reviews = read_imdb(find_imdb(data_dir))
    vocabulary, vocab_info, vocab_files = subword_vocabulary(spec, reviews.train.texts, vocab)
    recipe = {"tokenizer": spec.data.tokenizer, "vocabulary_sha256": subwords.vocabulary_sha256(vocabulary)}

    def encode() -> EncodedReviews:
        return encode_subwords(vocabulary, reviews.train.texts, reviews.test.texts, vocab_info)

    return _split(spec, reviews, cached_encoding(recipe, reviews, encode), vocab_files)


def subword_vocabulary(
    spec: ModelSpec, train_texts: Sequence[str], vocab: str | os.PathLike | None,
    vocab_size: int = subwords.LEARNT_VOCAB_SIZE,
) -> tuple[tuple[str, ...], dict[str, Any], list[str]]:
    """The subword vocabulary, what to report of it, and the file it was read from (none when learnt):
    learnt from `train_texts` (`vocab_size` tokens at most) when `vocab` is None, else read from `vocab`."""
    if vocab is None:
        vocabulary = subwords.cached_vocabulary(train_texts, vocab_size)
        return vocabulary, {"subword_vocabulary": "learnt", "requested_vocab_size": vocab_size}, []
    if str(vocab) == subwords.COURSE_VOCAB:
        files, _ = locate(spec_source(spec, ("vocab",)), None, validate=subwords.read_vocabulary)
        (path,) = files.values()
    else:
        path = Path(vocab).expanduser()
    return subwords.read_vocabulary(path), {"subword_vocabulary": str(path)}, [str(path)]


def encode_subwords(vocabulary: Sequence[str], train_texts: Sequence[str], val_texts: Sequence[str],
                    info: Mapping[str, Any]) -> EncodedReviews:
    """Both lists of texts as WordPiece ids of `vocabulary`, with the share of [UNK] among the training ids."""
    train = ragged_array(subwords.encode(vocabulary, train_texts))
    val = ragged_array(subwords.encode(vocabulary, val_texts))
    unknown = float(np.mean(train.values == subwords.UNK_ID)) if len(train.values) else 0.0
    return EncodedReviews(train, val, tuple(vocabulary),
                          {**info, "tokenizer": "wordpiece", "vocabulary_size": len(vocabulary),
                           "train_unknown_fraction": round(unknown, 6)})


def subword_split(spec: ModelSpec, source: str, encoded: EncodedReviews, train_labels: np.ndarray,
                  val_labels: np.ndarray, location: str, info: Mapping[str, Any]) -> DataSplit:
    """A DataSplit of subword ids whose model's Embedding gets one row per vocabulary token (spec_overrides)."""
    overrides = {"layers": {"vocab_size": len(encoded.vocabulary)}}
    return make_split(spec, source, (encoded.train, train_labels), (encoded.val, val_labels), location,
                      {**encoded.info, **info, "spec_overrides": overrides}, vocabulary=encoded.vocabulary)


def find_imdb(data_dir: str | os.PathLike | None) -> Path:
    """The IMDB archive or aclImdb folder: `data_dir` (either, or a folder holding either), else the one under
    $PARITY_DATA_DIR/imdb (or imdb-reviews, imdb-subwords), else the download cache (downloading it)."""
    source = SOURCES["imdb"]
    local, looked = local_directory(source, data_dir)
    if local is not None:
        return imdb_input(local)
    return download.fetch(source, cache_dir(source.dataset_id), looked)[ARCHIVE]


def imdb_input(path: Path) -> Path:
    """The archive or aclImdb folder that `path` is or holds (the archive first)."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(f"imdb: {path} does not exist; pass {ARCHIVE}, the extracted {ROOT}/ folder, or the "
                        "folder holding either")
    if any((path / split).is_dir() for split in SPLITS):
        return path
    for candidate in (path / ARCHIVE, path / ROOT):
        if candidate.exists():
            return candidate
    raise DataError(f"imdb: {path} holds neither {ARCHIVE} nor an extracted {ROOT}/ folder (train/ and test/, each "
                    f"with pos/ and neg/); {download.LOCAL_HINT}")


def read_imdb(path: Path) -> ImdbReviews:
    """The labelled reviews of the archive or aclImdb folder at `path` (see the module docstring)."""
    if path.is_dir():
        found, skipped, files = _read_folder(path)
    else:
        found, skipped, files = _read_archive(path)
    for problem in skipped:
        warnings.warn(f"{problem}; review skipped", DataWarning, stacklevel=2)
    splits = {split: _reviews(path, split, found, skipped) for split in SPLITS}
    return ImdbReviews(splits["train"], splits["test"], tuple(skipped), tuple(files), str(path))


def cached_encoding(recipe: Mapping[str, Any], reviews: ImdbReviews,
                    encode: Callable[[], EncodedReviews]) -> EncodedReviews:
    """`encode()` of the reviews, from the tokenized cache when its entry for these texts and `recipe` passes its
    check; else encoded now and cached."""
    entry = cache_root() / TOKENIZED / _key(recipe, reviews)
    with entry_lock(f"{TOKENIZED}-{entry.name}"):
        cached, problem = _read_entry(entry)
        if cached is not None:
            return cached
        if entry.exists():
            note(f"parity: the tokenized-review cache entry {entry} is unusable ({problem}); tokenizing again")
            shutil.rmtree(entry)
        encoded = encode()
        _write_entry(entry, encoded)
        return encoded


def _split(spec: ModelSpec, reviews: ImdbReviews, encoded: EncodedReviews, vocab_files: list[str]) -> DataSplit:
    if spec.validation != "test":
        raise DataError(f"{spec.id}: IMDB validates on its test reviews (validation 'test'), not {spec.validation!r}")
    info = {"files": [*reviews.files, *vocab_files],
            "reviews": {split: len(getattr(reviews, split).texts) for split in SPLITS},
            "skipped": len(reviews.skipped), "skipped_reviews": list(reviews.skipped[:LISTED_SKIPS])}
    if spec.data.tokenizer == "wordpiece":
        return subword_split(spec, "real", encoded, reviews.train.labels, reviews.test.labels, reviews.location, info)
    return make_split(spec, "real", (encoded.train, reviews.train.labels), (encoded.val, reviews.test.labels),
                      reviews.location, {**encoded.info, **info}, vocabulary=encoded.vocabulary)


def _reviews(path: Path, split: str, found: list[_Review], skipped: list[str]) -> Reviews:
    """One split's reviews, sorted; a class with none is a DataError naming its folder."""
    chosen = sorted((review for review in found if review.split == split), key=lambda r: (r.label, r.order))
    for label, name in enumerate(CLASSES):
        if not any(review.label == label for review in chosen):
            left_out = sum(f"/{split}/{name}/" in problem for problem in skipped)
            why = f"all {left_out} of its reviews were skipped" if left_out else "the folder is missing or empty"
            raise DataError(f"{path}: no {split}/{name} reviews ({why}); IMDB needs {ROOT}/{split}/pos and "
                            f"{ROOT}/{split}/neg folders of <id>_<rating>.txt reviews")
    labels = np.array([review.label for review in chosen], dtype=np.float32)
    return Reviews(tuple(review.text for review in chosen), labels)


def _place(parts: Sequence[str]) -> tuple[str, int] | None:
    """(split, label) of a file at `parts` (…/<split>/<pos|neg>/<name>), else None (a file that is not a review)."""
    if len(parts) >= 3 and parts[-3] in SPLITS and parts[-2] in CLASSES:
        return parts[-3], CLASSES.index(parts[-2])
    return None


def _review(where: str, split: str, label: int, name: str, data: bytes, found: list[_Review],
            skipped: list[str]) -> None:
    """Add the review `data` of file `name` to `found`, or what is wrong with it to `skipped`."""
    match = REVIEW_NAME.fullmatch(name)
    if match is None:
        skipped.append(f"{where}: the name is not <id>_<rating>.txt")
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        skipped.append(f"{where}: not UTF-8 text ({error.reason} at byte {error.start})")
        return
    if not text.strip():
        skipped.append(f"{where}: empty review")
        return
    found.append(_Review(split, label, (int(match[1]), int(match[2]), name), text))


def _read_folder(root: Path) -> tuple[list[_Review], list[str], list[str]]:
    found: list[_Review] = []
    skipped: list[str] = []
    files: list[str] = []
    for split in SPLITS:
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            if not folder.is_dir():
                raise DataError(f"{root}: no folder {split}/{name}; IMDB needs {ROOT}/{split}/pos and "
                                f"{ROOT}/{split}/neg folders of <id>_<rating>.txt reviews")
            for path in sorted(folder.iterdir()):
                if not path.is_file():
                    continue
                if path.stat().st_size > MAX_REVIEW_BYTES:
                    skipped.append(f"{path}: {path.stat().st_size:,} bytes, more than a review ({MAX_REVIEW_BYTES:,})")
                    continue
                try:
                    data = path.read_bytes()
                except OSError as error:
                    raise DataError(f"{path}: cannot read the review ({error.strerror or error}); fix its "
                                    "permissions or remove it") from None
                files.append(str(path))
                _review(str(path), split, label, path.name, data, found, skipped)
    return found, skipped, files


def _read_archive(path: Path) -> tuple[list[_Review], list[str], list[str]]:
    found: list[_Review] = []
    skipped: list[str] = []
    roots: set[tuple[str, ...]] = set()
    try:
        with tarfile.open(path, "r|*") as archive:
            for member in archive:
                parts = _safe_parts(path, member)
                place = _place(parts)
                if place is None or member.isdir():
                    continue
                roots.add(tuple(parts[:-3]))
                where = f"{path}:{member.name}"
                if member.size > MAX_REVIEW_BYTES:
                    skipped.append(f"{where}: {member.size:,} bytes, more than a review ({MAX_REVIEW_BYTES:,})")
                    continue
                stream = archive.extractfile(member)  # a regular file: _safe_parts refused the rest
                _review(where, *place, parts[-1], stream.read(), found, skipped)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        reason = f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"
        raise DataError(f"{path}: not a readable tar archive ({reason}); replace it with a complete copy of "
                        f"{ARCHIVE}") from None
    if len(roots) > 1:
        shown = ", ".join(sorted("/".join(root) + "/" for root in roots))
        raise DataError(f"{path}: reviews under more than one folder ({shown}); keep one {ROOT}/ copy in the archive")
    return found, skipped, [str(path)]


def _safe_parts(path: Path, member: tarfile.TarInfo) -> list[str]:
    """The parts of a member's name; an absolute or `..` name, a link or a special file refuses the archive."""
    name = member.name.replace("\\", "/")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts or name.startswith("/") or ".." in parts or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"{path}: unsafe archive member {member.name!r} (empty name, absolute path or '..'); "
                        "refusing the archive")
    if not (member.isfile() or member.isdir()):
        kind = "link" if member.issym() or member.islnk() else "special file"
        raise DataError(f"{path}: archive member {member.name!r} is a {kind}, not a file or folder; refusing the "
                        "archive (the real aclImdb_v1.tar.gz holds only files and folders)")
    return parts


def _key(recipe: Mapping[str, Any], reviews: ImdbReviews) -> str:
    """sha256 of the recipe, the tokenizing code and every training and test text, in order."""
    parity_dir = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(json.dumps({"format": INDEX_FORMAT, **recipe}, sort_keys=True).encode())
    for name in TOKENIZING_CODE:
        digest.update((parity_dir / name).read_bytes())
    for split in SPLITS:
        texts = getattr(reviews, split).texts
        digest.update(f"|{split}:{len(texts)}|".encode())
        for text in texts:
            data = text.encode("utf-8")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    return digest.hexdigest()


def _write_entry(entry: Path, encoded: EncodedReviews) -> None:
    """Write the entry into a temporary folder beside it, index.json last, then rename it into place."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{entry.name[:16]}-", dir=entry.parent))
    try:
        arrays = (encoded.train.values, encoded.train.offsets, encoded.val.values, encoded.val.offsets)
        for name, array in zip(ARRAYS, arrays):
            np.save(temporary / name, np.ascontiguousarray(array))
        (temporary / VOCABULARY).write_text(json.dumps(list(encoded.vocabulary)), encoding="utf-8")
        files = {path.name: {"sha256": sha256_file(path), "bytes": path.stat().st_size}
                 for path in sorted(temporary.iterdir())}
        (temporary / INDEX).write_text(json.dumps({"format": INDEX_FORMAT, "files": files, "info": dict(encoded.info)}))
        os.rename(temporary, entry)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _read_entry(entry: Path) -> tuple[EncodedReviews | None, str]:
    """The cached encoding in `entry` when every file matches the sha256 and size its index records; else why not."""
    try:
        index = json.loads((entry / INDEX).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "no index"
    except (OSError, ValueError, RecursionError) as error:
        return None, f"unreadable index: {' '.join(str(error).split())[:120]}"
    files = index.get("files") if isinstance(index, dict) else None
    if (index.get("format") if isinstance(index, dict) else None) != INDEX_FORMAT or not isinstance(files, dict) \
            or set(files) != {*ARRAYS, VOCABULARY} or not isinstance(index.get("info"), dict):
        return None, f"index not in format {INDEX_FORMAT}"
    for name, record in files.items():
        path = entry / name
        try:
            size, digest = path.stat().st_size, sha256_file(path)
        except OSError as error:
            return None, f"{name} unreadable: {error.strerror}"
        if not isinstance(record, dict) or size != record.get("bytes") or digest != record.get("sha256"):
            return None, f"{name} does not match the sha256 and size its index records"
    try:
        train_values, train_offsets, val_values, val_offsets = (np.load(entry / name, mmap_mode="r") for name in ARRAYS)
        train, val = Ragged(train_values, train_offsets), Ragged(val_values, val_offsets)
        vocabulary = tuple(json.loads((entry / VOCABULARY).read_text(encoding="utf-8")))
    except ValueError as error:
        return None, f"not token ids: {' '.join(str(error).split())[:120]}"
    return EncodedReviews(train, val, vocabulary, index["info"]), ""
