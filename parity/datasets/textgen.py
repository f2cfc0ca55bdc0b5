"""Next-word corpora (C3W4): irish-lyrics-eof.txt, sonnets.txt and the inline lyrics of Lanigan's Ball.

As the course's labs: the text is lower-cased and split on "\\n"; a vocabulary is fitted on all
lines (v2: TextVectorization, '' and '[UNK]' first; v1: Keras 2 Tokenizer, '' at 0); every prefix
of at least `min_ngram_length` tokens of each line is one sample, pre-padded to the longest
(max_sequence_len); x is all but the last token, the label the last token, one-hot over the
vocabulary (float32 (N, V), as `to_categorical`: make_split expands the ids for the spec resolved to
V). A line with fewer tokens gives no sample. No validation data. The vocabulary size V and
max_sequence_len - 1 are known only now: the split's info carries them as `spec_overrides`
(parity.catalog.resolve_spec), and `vocabulary` and `max_sequence_len` let generation encode a seed
text as training did.

A corpus file must be UTF-8: a line that is not is a DataError naming file:line (a corpus is one
text; leaving a line out would change the vocabulary silently).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from parity.catalog import ModelSpec, resolve_spec
from parity.datasets import inline
from parity.datasets.locate import locate, read_data_file
from parity.datasets.sources import SOURCES
from parity.datasets.split import DataSplit, make_split
from parity.errors import DataError
from parity.spec_types import TextGenData
from parity.text import TextVectorization, Tokenizer, pad_sequences

TOKENIZERS = ("text_vectorization", "keras2_tokenizer")
# Lines (split on "\n") a fresh download must have at least, its structure check: the course repository's
# irish-lyrics-eof.txt has 1693; the v2 assignment says of sonnets.txt "more than 2000 lines".
COURSE_MIN_LINES = {"irish-lyrics": 1693, "sonnets": 2000}


@dataclass(frozen=True)
class NgramCorpus:
    """A corpus as the labs' n-gram samples: x int32 (N, max_sequence_len - 1), labels int64 (N,)."""

    vocabulary: list[str]  # tokens in id order, '' (padding) at 0
    x: np.ndarray
    labels: np.ndarray
    max_sequence_len: int
    lines: int  # lines of the corpus
    lines_without_samples: int  # lines with fewer than min_ngram_length tokens


def load_textgen(spec: ModelSpec, data_dir: str | os.PathLike | None) -> DataSplit:
    """The spec's corpus file (irish-lyrics, sonnets): --data-dir, PARITY_DATA_DIR or the download cache."""
    source = SOURCES[spec.dataset]
    files, _ = locate(source, data_dir, validate=lambda path: _check_download(path, spec.dataset))
    path = files[source.files[0]]
    return ngram_split(spec, "real", read_corpus(path), str(path), {"files": [str(path)]})


def load_lanigan(spec: ModelSpec, _data_dir: str | os.PathLike | None = None) -> DataSplit:
    """The lyrics of Lanigan's Ball as the course's lab writes them inline (no file, no download)."""
    text = inline.LANIGAN_LYRICS
    generator = {"function": "parity.datasets.inline.LANIGAN_LYRICS",
                 "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    return ngram_split(spec, "real", text, "inline", {"generator": generator})


def read_corpus(path: str | os.PathLike) -> str:
    """The text of a UTF-8 corpus file; a line that is not UTF-8 is a DataError naming file:line."""
    path = Path(path)
    raw = read_data_file(path, "corpus")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataError(f"{path}:{line}: byte 0x{raw[error.start]:02x} at column {column} is not UTF-8; the corpus "
                        "must be UTF-8 text: re-save it as UTF-8 or remove that byte") from None


def ngrams(data: TextGenData, text: str) -> NgramCorpus:
    """`text` as the labs' n-gram samples (see the module docstring), tokenized as `data.tokenizer` says."""
    corpus = (text.lower() if data.lowercase else text).split(data.line_split)
    if data.tokenizer == "text_vectorization":
        vectorizer = TextVectorization()
        vectorizer.adapt(corpus)
        sequences, vocabulary = vectorizer(corpus), vectorizer.get_vocabulary()
    elif data.tokenizer == "keras2_tokenizer":
        tokenizer = Tokenizer()
        tokenizer.fit_on_texts(corpus)
        sequences, vocabulary = tokenizer.texts_to_sequences(corpus), tokenizer.get_vocabulary()
    else:
        raise DataError(f"tokenizer {data.tokenizer!r} does not apply to text generation; the spec's "
                        f"data.tokenizer must be one of {TOKENIZERS}")
    shortest = data.min_ngram_length
    grams = [sequence[:end] for sequence in sequences for end in range(shortest, len(sequence) + 1)]
    if not grams:
        raise DataError(f"no line of the corpus has {shortest} or more words ({len(corpus)} lines): there is no "
                        "next word to learn; give a text with longer lines")
    max_sequence_len = max(len(gram) for gram in grams)
    padded = pad_sequences(grams, maxlen=max_sequence_len, padding=data.padding)
    return NgramCorpus(vocabulary, np.ascontiguousarray(padded[:, :-1]), padded[:, -1].astype(np.int64),
                       max_sequence_len, len(corpus), sum(len(sequence) < shortest for sequence in sequences))


def ngram_split(spec: ModelSpec, source: str, text: str, location: str, info: Mapping[str, Any]) -> DataSplit:
    """The training samples of `text` for `spec` (no validation), one-hot labels over the fitted vocabulary."""
    corpus = ngrams(spec.data, text)
    size = len(corpus.vocabulary)
    overrides = {"layers": {"vocab_size": size}, "input_shape": [corpus.max_sequence_len - 1]}
    note = {"tokenizer": spec.data.tokenizer, "lines": corpus.lines, "lines_without_samples":
            corpus.lines_without_samples, "ngrams": len(corpus.labels), "vocabulary_size": size,
            "max_sequence_len": corpus.max_sequence_len, "spec_overrides": overrides}
    return make_split(resolve_spec(spec, overrides), source, (corpus.x, corpus.labels), None, location,
                      {**info, **note}, vocabulary=corpus.vocabulary)


def _check_download(path: Path, dataset_id: str) -> None:
    """A fresh download has no checksum to match (see sources.py): UTF-8 text of about the course file's length."""
    lines = read_corpus(path).count("\n") + 1
    if lines < COURSE_MIN_LINES[dataset_id]:
        raise DataError(f"{path}: {lines} lines, the course's {dataset_id} file has at least "
                        f"{COURSE_MIN_LINES[dataset_id]}")
