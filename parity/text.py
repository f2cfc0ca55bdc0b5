"""The course's Keras 2 text preprocessing, reimplemented in plain Python and numpy.

`Tokenizer` and `pad_sequences` reproduce `tf.keras.preprocessing.text.Tokenizer` and
`tf.keras.utils.pad_sequences` of Keras 2 (the course's API) exactly, so that Keras and
Lightning are fed the very same integers without either framework doing the tokenizing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
PADDING_MODES = ("pre", "post")


def text_to_word_sequence(
    text: str, filters: str = FILTERS, lower: bool = True, split: str = " "
) -> list[str]:
    """Words of `text`: lower-cased, every filter character replaced by `split`, empty words dropped."""
    if lower:
        text = text.lower()
    text = text.translate(str.maketrans({c: split for c in filters}))
    return [word for word in text.split(split) if word]


class Tokenizer:
    """Keras 2 `Tokenizer` semantics: index 0 is padding, the OOV token (if any) is 1,
    then words by descending count, ties in order of first appearance."""

    def __init__(
        self,
        num_words: int | None = None,
        oov_token: str | None = None,
        filters: str = FILTERS,
        lower: bool = True,
        split: str = " ",
    ) -> None:
        self.num_words = num_words
        self.oov_token = oov_token
        self.filters = filters
        self.lower = lower
        self.split = split
        self.word_counts: dict[str, int] = {}
        self.word_index: dict[str, int] = {}

    def _words(self, text: str) -> list[str]:
        return text_to_word_sequence(text, self.filters, self.lower, self.split)

    def fit_on_texts(self, texts: Iterable[str]) -> None:
        """Count the words of `texts` (adding to earlier fits) and rebuild `word_index`."""
        for text in texts:
            for word in self._words(text):
                self.word_counts[word] = self.word_counts.get(word, 0) + 1
        # sorted() is stable, so equal counts keep first-appearance order, as in Keras.
        by_count = sorted(self.word_counts.items(), key=lambda item: item[1], reverse=True)
        vocabulary = [] if self.oov_token is None else [self.oov_token]
        vocabulary.extend(word for word, _ in by_count)
        # dict(zip(...)) as in Keras: should the OOV token also occur as a word, its later index wins.
        self.word_index = dict(zip(vocabulary, range(1, len(vocabulary) + 1)))

    def texts_to_sequences(self, texts: Iterable[str]) -> list[list[int]]:
        """Each text as word indices; words at or beyond `num_words`, and unknown words,
        become the OOV index when there is an OOV token, else they are dropped."""
        oov_index = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        sequences = []
        for text in texts:
            sequence = []
            for word in self._words(text):
                index = self.word_index.get(word)
                if index is None or (self.num_words and index >= self.num_words):
                    if oov_index is not None:
                        sequence.append(oov_index)
                else:
                    sequence.append(index)
            sequences.append(sequence)
        return sequences


def pad_sequences(
    sequences: Sequence[Sequence[int]],
    maxlen: int | None = None,
    padding: str = "pre",
    truncating: str = "pre",
    value: int = 0,
    dtype: np.dtype | type = np.int32,
) -> np.ndarray:
    """Keras `pad_sequences` for 1-D sequences: an (N, maxlen) array, `maxlen` defaulting to the longest."""
    if padding not in PADDING_MODES:
        raise ValueError(f"padding {padding!r} is not one of {PADDING_MODES}")
    if truncating not in PADDING_MODES:
        raise ValueError(f"truncating {truncating!r} is not one of {PADDING_MODES}")
    if maxlen is None:
        maxlen = max((len(s) for s in sequences), default=0)
    out = np.full((len(sequences), maxlen), value, dtype=dtype)
    for row, sequence in enumerate(sequences):
        kept = sequence[-maxlen:] if truncating == "pre" else sequence[:maxlen]
        if not maxlen or not len(kept):
            continue
        if padding == "post":
            out[row, : len(kept)] = kept
        else:
            out[row, -len(kept) :] = kept
    return out
