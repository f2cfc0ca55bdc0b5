"""The course's text preprocessing, reimplemented in plain Python and numpy.

`Tokenizer` (v1 labs) reproduces Keras 2's `tf.keras.preprocessing.text.Tokenizer`;
`TextVectorization` (v2 labs) reproduces the adapt and call of Keras 3's
`keras.layers.TextVectorization` with its defaults (integer ids, ragged); `pad_sequences` is
`keras.utils.pad_sequences`. So Keras and Lightning are fed the very same integers without
either framework doing the tokenizing.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
PADDING_MODES = ("pre", "post")

# TextVectorization's standardize="lower_and_strip_punctuation", from
# keras/src/layers/preprocessing/text_vectorization.py (Keras 3.15): tf.strings.lower without an
# encoding lower-cases ASCII letters only (É, Σ stay upper case), then this regex (the 32 ASCII
# punctuation characters, apostrophe included) is deleted.
KERAS_STRIP_PUNCTUATION_REGEX = r'''[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'''
_PUNCTUATION = re.compile(KERAS_STRIP_PUNCTUATION_REGEX)
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# split="whitespace" is tf.strings.split: runs of ASCII whitespace only; no-break and other
# Unicode spaces stay inside a token (unlike str.split()).
_TOKEN = re.compile(r"[^ \t\n\v\f\r]+")
PAD_TOKEN, OOV_TOKEN = "", "[UNK]"  # ids 0 and 1 of every TextVectorization vocabulary
OOV_ID = 1

# The course's stopword list of the BBC assignments (C3W1, and C3W2 v1: `remove_stopwords`), 153 words,
# compared with each whitespace-separated lower-cased word.
STOPWORDS = (
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "below", "between", "both", "but", "by", "could", "did", "do", "does",
    "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "he'd",
    "he'll", "he's", "her", "here", "here's", "hers", "herself", "him", "himself", "his", "how", "how's", "i", "i'd",
    "i'll", "i'm", "i've", "if", "in", "into", "is", "it", "it's", "its", "itself", "let's", "me", "more", "most", "my",
    "myself", "nor", "of", "on", "once", "only", "or", "other", "ought", "our", "ours", "ourselves", "out", "over",
    "own", "same", "she", "she'd", "she'll", "she's", "should", "so", "some", "such", "than", "that", "that's", "the",
    "their", "theirs", "them", "themselves", "then", "there", "there's", "these", "they", "they'd", "they'll",
    "they're", "they've", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "we'd",
    "we'll", "we're", "we've", "were", "what", "what's", "when", "when's", "where", "where's", "which", "while", "who",
    "who's", "whom", "why", "why's", "with", "would", "you", "you'd", "you'll", "you're", "you've", "your", "yours",
    "yourself", "yourselves",
)
# The C3W2 v2 assignment's `standardize_func` list, in its order (repeats kept): the contractions of STOPWORDS
# are gone and their endings ('m, 'd, ...) are removed where they end a word instead.
STOPWORD_PATTERNS_C3W2 = (
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "below", "between", "both", "but", "by", "could", "did", "do", "does",
    "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her",
    "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself",
    "let's", "me", "more", "most", "my", "myself", "nor", "of", "on", "once", "only", "or", "other", "ought", "our",
    "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the",
    "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
    "why", "why", "with", "would", "you", "your", "yours", "yourself", "yourselves", "'m", "'d", "'ll", "'re", "'ve",
    "'s", "'d",
)

# The assignment deletes each word with its own tf.strings.regex_replace, in list order: rf"\b{word}\b", or
# rf"{word}\b" for an ending that starts with an apostrophe (RE2's \b is an ASCII word boundary: re.ASCII).
# One pass of their alternation deletes the same text: a deleted word has non-word characters (or the ends) on
# both sides and a deleted ending is followed by one, so no deletion makes or unmakes another match; the one
# overlap, "let's" and its ending "'s", is decided for "let's" both ways (test_text_preproc checks it).
def stopword_pattern(words: Sequence[str]) -> re.Pattern[str]:
    """One regex deleting what the assignment's per-word regex_replace calls delete, for `words` in that form."""
    whole = [re.escape(word) for word in dict.fromkeys(words) if word[0] != "'"]
    endings = [re.escape(word) for word in dict.fromkeys(words) if word[0] == "'"]
    return re.compile(r"\b(?:" + "|".join(whole) + r")\b|(?:" + "|".join(endings) + r")\b", re.ASCII)


_C3W2_STOPWORDS = stopword_pattern(STOPWORD_PATTERNS_C3W2)


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

    def get_vocabulary(self) -> list[str]:
        """Every word of `word_index` in index order, '' (padding) at index 0: the inverse of `word_index`."""
        words = [PAD_TOKEN] * (max(self.word_index.values(), default=0) + 1)
        for word, index in self.word_index.items():
            words[index] = word
        return words

    def set_vocabulary(self, vocabulary: Sequence[str]) -> None:
        """Use `vocabulary`, a `get_vocabulary()` list, as `word_index` instead of fitting."""
        self.word_index = {word: index for index, word in enumerate(vocabulary) if index}

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


def standardize(text: str) -> str:
    """TextVectorization's default standardization: ASCII lower-casing, then ASCII punctuation deleted."""
    return _PUNCTUATION.sub("", text.translate(_ASCII_LOWER))


def remove_stopwords(text: str, stopwords: Iterable[str] = STOPWORDS) -> str:
    """The BBC assignments' `remove_stopwords`: lower-cased (Python's str.lower), split on whitespace, the words
    in `stopwords` dropped, the rest joined with single spaces."""
    dropped = frozenset(stopwords)
    return " ".join(word for word in text.lower().split() if word not in dropped)


def standardize_c3w2(text: str) -> str:
    """The C3W2 v2 assignment's `standardize_func`: ASCII lower-casing, then each STOPWORD_PATTERNS_C3W2 pattern
    deleted in the list's order, then the ASCII punctuation of TextVectorization's default standardization."""
    return _PUNCTUATION.sub("", _C3W2_STOPWORDS.sub("", text.translate(_ASCII_LOWER)))


def split_whitespace(text: str) -> list[str]:
    """TextVectorization's default split: the non-empty runs between ASCII whitespace characters."""
    return _TOKEN.findall(text)


def vocabulary_order(counts: Mapping[str, int]) -> list[str]:
    """Tokens by descending count, ties by descending UTF-8 bytes: Keras' adapt sorts the token
    table with `np.lexsort((tokens, counts))[::-1]` on TensorFlow's byte strings."""
    return sorted(counts, key=lambda token: (counts[token], token.encode("utf-8")), reverse=True)


class TextVectorization:
    """Keras 3 `TextVectorization(max_tokens=..., standardize=...)` with default settings otherwise, adapt and call.

    The vocabulary is '' (0), '[UNK]' (1), then the adapted tokens in `vocabulary_order`, cut so
    that it holds at most `max_tokens` entries, the two reserved ones included. Calling it gives
    each text's token ids, unpadded (one list per text); unknown tokens are 1. `standardize`
    replaces the default standardization, as a callable `standardize=` does in Keras.
    """

    def __init__(self, max_tokens: int | None = None, standardize: Callable[[str], str] | None = None) -> None:
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(f"max_tokens must be greater than 1 (it counts '' and '[UNK]'), not {max_tokens}")
        self.max_tokens = max_tokens
        self._standardize = standardize
        self._ids: dict[str, int] = {}

    def adapt(self, texts: Iterable[str]) -> None:
        """Build the vocabulary from `texts`, replacing any earlier one (as Keras' adapt does)."""
        counts = Counter(token for text in texts for token in split_whitespace(self.standardized(text)))
        tokens = vocabulary_order(counts)
        if self.max_tokens:
            tokens = tokens[: self.max_tokens - 2]
        self._ids = {token: index for index, token in enumerate(tokens, start=2)}

    def set_vocabulary(self, vocabulary: Sequence[str]) -> None:
        """Use `vocabulary`, a `get_vocabulary()` list ('' and '[UNK]' first), instead of adapting."""
        if list(vocabulary[:2]) != [PAD_TOKEN, OOV_TOKEN]:
            raise ValueError(f"a TextVectorization vocabulary starts with {PAD_TOKEN!r} and {OOV_TOKEN!r} "
                             f"(as get_vocabulary() gives it), not {list(vocabulary[:2])}")
        if self.max_tokens and len(vocabulary) > self.max_tokens:
            raise ValueError(f"{len(vocabulary)} tokens exceed max_tokens={self.max_tokens}")
        self._ids = {token: index for index, token in enumerate(vocabulary[2:], start=2)}

    def standardized(self, text: str) -> str:
        """`text` standardized: by the `standardize` given, else Keras' default (`standardize`, looked up per call)."""
        return (self._standardize or standardize)(text)

    def get_vocabulary(self) -> list[str]:
        """The vocabulary in id order, reserved tokens first, as Keras' `get_vocabulary()`."""
        return [PAD_TOKEN, OOV_TOKEN, *self._ids]

    def vocabulary_size(self) -> int:
        """Number of ids, the two reserved ones included."""
        return len(self._ids) + 2

    def __call__(self, texts: Iterable[str]) -> list[list[int]]:
        """Each text's token ids, one list per text, not padded; tokens outside the vocabulary are 1."""
        ids = self._ids
        standardized = map(self.standardized, texts)
        return [[ids.get(token, OOV_ID) for token in split_whitespace(text)] for text in standardized]


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
