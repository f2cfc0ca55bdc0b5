"""Sentiment140 tweets with frozen GloVe 6B embeddings (C3W3 assignment): training_cleaned.csv, glove.6B.100d.txt.

The tweets file has no header; each record has 6 fields (polarity, id, date, query, user, text):
`spec.data.label_column` (0) holds 0 or 4, mapped by `spec.data.label_map` to 0/1, and
`spec.data.text_column` (5) the text. Encoding: the file is read as UTF-8 when all of it decodes so,
else as latin-1 (the original Sentiment140 file's encoding; every byte is a latin-1 character, so
no record is undecodable), and the split's info says which. A record with another number of
fields, a polarity outside the label map or an empty text is skipped with a one-line warning
naming file:line and counted in the split's info.

As the assignment: `num_samples` (160,000) records drawn at random with Python's
`random.seed(42); random.sample(...)` (the course's own sampling, so the same records as the
course on the course's file); the first `training_split` (0.9: 144,000) train, the rest validate;
a TextVectorization without a token limit adapted on the training texts; each text padded and
truncated to `max_length` (32) after the text. A file with fewer records keeps them all, in the
order the same sampling gives.

GloVe: one word and `embedding_dim` numbers per line, space-separated, UTF-8. The embedding matrix
is (vocabulary size, embedding_dim) float32, row i the GloVe vector of vocabulary token i, zeros
for tokens GloVe lacks (the reserved '' and '[UNK]' among them). A GloVe line with another count
of numbers, a number that does not parse or bytes that are not UTF-8 is a DataError naming
file:line (the file is corrupt). The matrix is written once to the cache,
$PARITY_CACHE_DIR/embeddings/<key>.npy (key: the GloVe file's sha256, the dimension and the
vocabulary), memory-mapped by whoever reads it: the split's `spec_overrides` name the file
(`layers.embedding_weights`, GloveConvLstmClassifier) beside the vocabulary size.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity import cache
from parity.catalog import ModelSpec
from parity.datasets.bbc import skipped_info, warn_skipped
from parity.datasets.locate import locate, read_data_file
from parity.datasets.sources import spec_source
from parity.datasets.split import DataSplit, make_split
from parity.datasets.store import ragged_array
from parity.errors import DataError
from parity.fileio import write_bytes_atomic
from parity.spec_types import TextData
from parity.text import TextVectorization

TWEETS_FILE, GLOVE_FILE = "training_cleaned.csv", "glove.6B.100d.txt"
FIELDS = 6
SAMPLE_SEED = 42  # the assignment's random.seed(42) before random.sample
COURSE_RECORDS, GLOVE_WORDS = 1_600_000, 400_000
EMBEDDINGS = "embeddings"  # the cache folder of the embedding matrices


@dataclass(frozen=True)
class Tweets:
    """The valid records of a Sentiment140 CSV file, in file order, and the ones left out."""

    path: Path
    texts: list[str]
    labels: list[int]
    encoding: str
    skipped: list[tuple[int, str]]


@dataclass(frozen=True)
class EmbeddingMatrix:
    """A GloVe embedding matrix on disk (memory-mapped) and how many vocabulary tokens GloVe held."""

    path: Path
    matrix: np.ndarray  # float32 (vocabulary size, dim)
    found: int  # rows that hold a GloVe vector (the non-zero rows)


def load_sentiment140_glove(spec: ModelSpec, data_dir: str | os.PathLike | None) -> DataSplit:
    """The assignment's sample of the tweets, vectorized, with the GloVe embedding matrix of its vocabulary."""
    source = spec_source(spec, ("data", "glove"))
    files, _ = locate(source, data_dir, validate=lambda path: _check_download(path, spec))
    return load_files(spec, files[TWEETS_FILE], files[GLOVE_FILE], "real")


def load_files(spec: ModelSpec, tweets_path: str | os.PathLike, glove_path: str | os.PathLike, source: str,
               info: Mapping[str, Any] | None = None) -> DataSplit:
    """`load_sentiment140_glove` on these two files; `source` "real" or "synthetic" (a stand-in's files)."""
    tweets = read_tweets(tweets_path, spec.data)
    notes = {"files": [str(tweets.path), str(glove_path)], "records": len(tweets.texts), "encoding": tweets.encoding,
             **skipped_info(tweets.skipped), **(info or {})}
    return encode_tweets(spec, source, tweets.texts, tweets.labels, glove_path, str(tweets.path), notes)


def read_tweets(path: str | os.PathLike, data: TextData) -> Tweets:
    """The labelled texts of a Sentiment140 CSV file (no header, FIELDS fields); malformed records skipped."""
    path = Path(path)
    raw = read_data_file(path, "tweets file")
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = raw.decode("latin-1"), "latin-1"
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    texts, labels, skipped = [], [], []
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row:
                continue  # a blank line holds no record
            problem = _record_problem(row, data)
            if problem is not None:
                skipped.append((line, problem))
                continue
            labels.append(data.label_map[int(row[data.label_column])])
            texts.append(row[data.text_column])
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV ({error}); fix the quoting of that record") from None
    warn_skipped(path, skipped)
    if not texts:
        raise DataError(f"{path}: no valid record ({len(skipped)} skipped); expected Sentiment140's {FIELDS} fields "
                        "per line: polarity (0 or 4), id, date, query, user, text")
    return Tweets(path, texts, labels, encoding, skipped)


def _record_problem(row: Sequence[str], data: TextData) -> str | None:
    """What is wrong with one record (None: nothing)."""
    if len(row) != FIELDS:
        return f"{len(row)} fields, Sentiment140 has {FIELDS}"
    polarity = row[data.label_column].strip()
    if not (polarity.isdigit() and int(polarity) in data.label_map):
        return f"polarity {polarity!r} is not one of {', '.join(map(str, data.label_map))}"
    if not row[data.text_column].strip():
        return "empty text"
    return None


def sample_order(count: int, wanted: int) -> list[int]:
    """The record indices the assignment keeps: random.seed(42); random.sample(records, wanted), all when fewer."""
    return random.Random(SAMPLE_SEED).sample(range(count), min(count, wanted))


def encode_tweets(spec: ModelSpec, source: str, texts: Sequence[str], labels: Sequence[int],
                  glove_path: str | os.PathLike, location: str, info: Mapping[str, Any]) -> DataSplit:
    """Sample, split, vectorize (fitted on the training texts) and look up the GloVe matrix of the vocabulary."""
    data: TextData = spec.data
    order = sample_order(len(texts), data.num_samples or len(texts))
    texts = [texts[index] for index in order]
    y = np.array([labels[index] for index in order], dtype=np.float32)
    size = int(len(texts) * data.training_split)
    vectorizer = TextVectorization(max_tokens=data.vocab_size)
    vectorizer.adapt(texts[:size])
    ids = vectorizer(texts)
    vocabulary = vectorizer.get_vocabulary()
    embeddings = embedding_matrix(glove_path, vocabulary, spec.layers.embedding_dim)
    note = {"tokenizer": data.tokenizer, "sampled": len(texts), "sample_seed": SAMPLE_SEED,
            "vocabulary_size": len(vocabulary), "glove_found": embeddings.found,
            "glove_missing": len(vocabulary) - embeddings.found,
            "spec_overrides": {"layers": {"vocab_size": len(vocabulary), "embedding_weights": str(embeddings.path)}}}
    return make_split(spec, source, (ragged_array(ids[:size]), y[:size]), (ragged_array(ids[size:]), y[size:]),
                      location, {**info, **note}, vocabulary=vocabulary)


def embedding_matrix(glove_path: str | os.PathLike, vocabulary: Sequence[str], dim: int) -> EmbeddingMatrix:
    """The GloVe matrix of `vocabulary` from the cache, built from `glove_path` when missing or failing its check."""
    glove_path = Path(glove_path)
    key = hashlib.sha256("\n".join([cache.sha256_file(glove_path), str(dim), *vocabulary]).encode("utf-8"))
    name = f"{EMBEDDINGS}-{key.hexdigest()[:32]}"
    path = cache.cache_root() / EMBEDDINGS / f"{name}.npy"
    with cache.entry_lock(name):
        intact = path.is_file() and cache.recorded_sha256(path) == cache.sha256_file(path)
        if path.is_file() and not intact:
            cache.note(f"parity: the cached embedding matrix {path} fails its sha256 check; building it again")
        if not intact:
            matrix = glove_vectors(glove_path, vocabulary, dim)
            buffer = io.BytesIO()
            np.save(buffer, matrix)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, buffer.getvalue())
            cache.record_sha256(path)
    matrix = np.load(path, mmap_mode="r")
    return EmbeddingMatrix(path, matrix, int(np.count_nonzero(np.any(matrix != 0, axis=1))))


def glove_vectors(path: Path, vocabulary: Sequence[str], dim: int) -> np.ndarray:
    """(len(vocabulary), dim) float32: row i GloVe's vector of vocabulary[i] (the last one, should a word repeat),
    zeros where GloVe has none. Every line is checked: a malformed one is a DataError naming file:line."""
    ids = {token: index for index, token in enumerate(vocabulary)}
    matrix = np.zeros((len(vocabulary), dim), dtype=np.float32)
    lines = 0
    try:
        with open(path, "rb") as stream:
            for lines, raw in enumerate(stream, start=1):
                word, vector = _glove_line(path, lines, raw, dim, ids)
                if vector is not None:
                    matrix[ids[word]] = vector
    except OSError as error:
        raise DataError(f"{path}: cannot read the GloVe file ({error.strerror or error})") from None
    if not lines:
        raise DataError(f"{path}: the GloVe file is empty; expected lines 'word v1 ... v{dim}'")
    return matrix


def _glove_line(path: Path, number: int, raw: bytes, dim: int, ids: Mapping[str, int]
                ) -> tuple[str, np.ndarray | None]:
    """The word of one GloVe line, and its vector when the word is in `ids` (None otherwise)."""
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}:{number}: byte 0x{raw[error.start]:02x} at column {error.start + 1} is not UTF-8; "
                        "the GloVe file is corrupt: download it again") from None
    word, _, numbers = line.partition(" ")
    values = numbers.split(" ") if numbers else []
    if not word or len(values) != dim:
        raise DataError(f"{path}:{number}: {len(values)} numbers after the word {word!r}, expected {dim} (GloVe "
                        f"{dim}d: 'word v1 ... v{dim}'); the GloVe file is corrupt or of another dimension")
    if word not in ids:
        return word, None
    try:
        return word, np.array(values, dtype=np.float32)
    except ValueError:
        raise DataError(f"{path}:{number}: the vector of {word!r} holds a value that is not a number; the GloVe "
                        "file is corrupt: download it again") from None


def _check_download(path: Path, spec: ModelSpec) -> None:
    """A fresh download has no checksum to match (see sources.py): its records or lines are the check."""
    if path.name == GLOVE_FILE:
        dim = spec.layers.embedding_dim
        with open(path, "rb") as stream:
            lines = sum(1 for number, raw in enumerate(stream, start=1) if _glove_line(path, number, raw, dim, {}))
        if lines != GLOVE_WORDS:
            raise DataError(f"{path}: {lines} lines, GloVe 6B has {GLOVE_WORDS} words")
        return
    records = len(read_tweets(path, spec.data).texts)
    if records != COURSE_RECORDS:
        raise DataError(f"{path}: {records} valid records, the course file has {COURSE_RECORDS}")
