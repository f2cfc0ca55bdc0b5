"""News-headline sarcasm (C3): the course's sarcasm.json, tokenized once as the spec's lab does.

`spec.data.tokenizer` picks the recipe: "keras2_tokenizer" (v1 labs, c3w2_sarcasm_embed_gap:
Keras 2 `Tokenizer` with an OOV token) or "text_vectorization" (v2 labs, c3w3_*: Keras 3
`TextVectorization`). Either is fitted on the training headlines only. The token ids stay
ragged; each batch is padded and truncated as `spec.data` says (`make_split`, `plan.collate`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity.catalog import ModelSpec
from parity.datasets.locate import locate
from parity.datasets.sources import SOURCES
from parity.datasets.split import DataSplit, course_count_split, make_split
from parity.datasets.store import ragged_array
from parity.errors import DataError
from parity.spec_types import TextData
from parity.text import TextVectorization, Tokenizer

FILE = "sarcasm.json"
COURSE_RECORDS = 26_709
TOKENIZERS = ("keras2_tokenizer", "text_vectorization")


def load_sarcasm(spec: ModelSpec, data_dir: str | os.PathLike | None) -> DataSplit:
    """The first `training_size` headlines train, the rest validate, in file order (as the course).

    A file smaller than the course's keeps the course's proportion instead of its count
    (`course_count_split`); the split's info and a printed line say so.
    """
    files, _ = locate(SOURCES["sarcasm"], data_dir, validate=_check_download)
    path = files[FILE]
    headlines, labels = read_headlines(path)
    split = course_count_split(len(headlines), spec.data.training_size, COURSE_RECORDS, str(path))
    if split.note:
        print(f"parity: note: {split.note}", file=sys.stderr, flush=True)
    size = split.train
    return encode_split(
        spec,
        "real",
        (headlines[:size], labels[:size]),
        (headlines[size:], labels[size:]),
        str(path),
        {"files": [str(path)], **({"split_note": split.note} if split.note else {})},
    )


def read_headlines(path: Path) -> tuple[list[str], np.ndarray]:
    """Headlines and 0/1 labels of a sarcasm.json file: a JSON list of {headline, is_sarcastic, ...}."""
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:  # too deeply nested
        raise DataError(
            f"{path}: not a readable JSON file ({error}); expected the course's sarcasm.json, a JSON list "
            "of records (Kaggle's JSON-lines file must be wrapped in [ ] with commas between records)"
        ) from None
    if not isinstance(records, list) or not records:
        found = "an empty list (no records)" if records == [] else f"a JSON {type(records).__name__}"
        raise DataError(f"{path}: expected a non-empty JSON list of headline records, got {found}; give the "
                        "course's sarcasm.json or a list of {\"headline\": ..., \"is_sarcastic\": 0 or 1} records")
    headlines, labels = [], []
    for number, record in enumerate(records):
        problem = _record_problem(record)
        if problem is not None:
            raise DataError(f"{path}: record {number} (counting from 0) {problem}: {str(record)[:120]}; fix or "
                            "remove that record")
        headlines.append(record["headline"])
        labels.append(record["is_sarcastic"])
    return headlines, np.array(labels, dtype=np.float32)


def _record_problem(record: object) -> str | None:
    """What is wrong with one headline record (None: nothing): it needs a string 'headline' and an
    'is_sarcastic' of 0 or 1, the labels of the binary model."""
    if not isinstance(record, dict):
        return "is not an object with a string 'headline' and an 'is_sarcastic' of 0 or 1"
    if not isinstance(record.get("headline"), str):
        return "has no string 'headline'" if "headline" in record else "lacks the key 'headline'"
    if "is_sarcastic" not in record:
        return "lacks the key 'is_sarcastic' (its label, 0 or 1)"
    label = record["is_sarcastic"]
    if label not in (0, 1):
        return f"has 'is_sarcastic' {label!r}, outside the classes of the binary model: expected 0 or 1"
    return None


@dataclass(frozen=True)
class TokenIds:
    """Each training and validation text as token ids, unpadded, from one tokenizer fitted on the training texts."""

    train: list[list[int]]
    val: list[list[int]]
    info: Mapping[str, Any]  # the tokenizer and its vocabulary's size, for DataSplit.info
    vocabulary: list[str]  # the fitted tokens in id order, '' (padding) at id 0, for DataSplit.vocabulary


def tokenize(data: TextData, train_texts: Sequence[str], val_texts: Sequence[str]) -> TokenIds:
    """Fit `data.tokenizer` on `train_texts` only, then encode both lists of texts."""
    encode: Callable[[Sequence[str]], list[list[int]]]
    if data.tokenizer == "keras2_tokenizer":
        tokenizer = Tokenizer(num_words=data.vocab_size, oov_token=data.oov_token)
        tokenizer.fit_on_texts(train_texts)
        encode, info = tokenizer.texts_to_sequences, {"vocab_words": len(tokenizer.word_index)}
        vocabulary = tokenizer.get_vocabulary()
    elif data.tokenizer == "text_vectorization":
        vectorizer = TextVectorization(max_tokens=data.vocab_size)
        vectorizer.adapt(train_texts)
        encode, info = vectorizer, {"vocabulary_size": vectorizer.vocabulary_size()}
        vocabulary = vectorizer.get_vocabulary()
    else:
        raise DataError(
            f"tokenizer {data.tokenizer!r} does not apply to word-level headline data; "
            f"the spec's data.tokenizer must be one of {TOKENIZERS}"
        )
    return TokenIds(encode(train_texts), encode(val_texts), {"tokenizer": data.tokenizer, **info}, vocabulary)


def encode_split(
    spec: ModelSpec,
    source: str,
    train: tuple[Sequence[str], np.ndarray],
    val: tuple[Sequence[str], np.ndarray],
    location: str,
    info: Mapping[str, Any] | None = None,
) -> DataSplit:
    """Tokenize as `spec.data` says (fitted on the training texts only), add `info`.

    The token ids stay ragged; each batch is padded and truncated as `spec.data` says (`make_split`).
    """
    ids = tokenize(spec.data, train[0], val[0])
    return make_split(
        spec,
        source,
        (ragged_array(ids.train), train[1]),
        (ragged_array(ids.val), val[1]),
        location,
        {**ids.info, **(info or {})},
        vocabulary=ids.vocabulary,
    )


def _check_download(path: Path) -> None:
    """A fresh download has no checksum to match (see sources.py): its structure and record count are the check."""
    headlines, _ = read_headlines(path)
    if len(headlines) != COURSE_RECORDS:
        raise DataError(f"{path}: {len(headlines)} records, the course file has {COURSE_RECORDS}")
