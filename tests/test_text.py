"""parity.text reproduces the course's text preprocessing: the Keras 2 Tokenizer (v1), Keras 3
TextVectorization (v2) and pad_sequences. The comparisons with the real Keras packages are in
test_text_keras2_reference.py and test_text_vectorization_keras3.py."""

import re
import string

import numpy as np
import pytest

from parity.datasets.sarcasm import read_headlines
from parity.text import (
    KERAS_STRIP_PUNCTUATION_REGEX,
    TextVectorization,
    Tokenizer,
    pad_sequences,
    split_whitespace,
    standardize,
    text_to_word_sequence,
    vocabulary_order,
)

COURSE_SENTENCES = ["I love my dog", "I love my cat", "You love my dog!", "Do you think my dog is amazing?"]


def test_course_toy_sentences_word_index_with_oov():
    tokenizer = Tokenizer(num_words=100, oov_token="<OOV>")
    tokenizer.fit_on_texts(COURSE_SENTENCES)
    assert tokenizer.word_index == {
        "<OOV>": 1, "my": 2, "love": 3, "dog": 4, "i": 5, "you": 6,
        "cat": 7, "do": 8, "think": 9, "is": 10, "amazing": 11,
    }
    assert list(tokenizer.word_index) == sorted(tokenizer.word_index, key=tokenizer.word_index.get)
    # The course's test sentences (C3W1 lesson 2): unknown words map to the OOV index 1.
    assert tokenizer.texts_to_sequences(["i really love my dog", "my dog loves my manatee"]) == [
        [5, 1, 3, 2, 4],
        [2, 4, 1, 2, 1],
    ]


def test_without_oov_token_unknown_words_are_dropped():
    tokenizer = Tokenizer(num_words=100)
    tokenizer.fit_on_texts(COURSE_SENTENCES)
    assert tokenizer.word_index["my"] == 1 and tokenizer.word_index["amazing"] == 10
    assert tokenizer.texts_to_sequences(["i really love my dog"]) == [[4, 2, 1, 3]]


def test_num_words_keeps_indices_below_it():
    with_oov = Tokenizer(num_words=4, oov_token="<OOV>")
    with_oov.fit_on_texts(COURSE_SENTENCES)
    assert with_oov.texts_to_sequences(["my love dog i"]) == [[2, 3, 1, 1]]
    assert len(with_oov.word_index) == 11  # word_index is never truncated
    without_oov = Tokenizer(num_words=3)
    without_oov.fit_on_texts(COURSE_SENTENCES)
    assert without_oov.texts_to_sequences(["my love dog i"]) == [[1, 2]]


def test_equal_counts_keep_first_appearance_order():
    tokenizer = Tokenizer()
    tokenizer.fit_on_texts(["zebra apple", "mango", "apple zebra mango kiwi"])
    assert tokenizer.word_index == {"zebra": 1, "apple": 2, "mango": 3, "kiwi": 4}


def test_fitting_twice_accumulates_counts():
    tokenizer = Tokenizer()
    tokenizer.fit_on_texts(["a b b"])
    tokenizer.fit_on_texts(["a a c"])
    assert tokenizer.word_counts == {"a": 3, "b": 2, "c": 1}
    assert tokenizer.word_index == {"a": 1, "b": 2, "c": 3}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("it's   don't\tstop\nnow", ["it's", "don't", "stop", "now"]),  # apostrophes are kept
        ("e-mail/web_site (beta)", ["e", "mail", "web", "site", "beta"]),
        ("ÉCOLE Straße naïve", ["école", "straße", "naïve"]),  # unicode lower-casing, no folding
        ("  ", []),
        ("“smart quotes” — dash", ["“smart", "quotes”", "—", "dash"]),  # only ASCII punctuation is filtered
    ],
)
def test_text_to_word_sequence_filters_lowercases_and_splits(text, words):
    assert text_to_word_sequence(text) == words


def test_pad_sequences_padding_and_truncating():
    sequences = [[1, 2, 3, 4, 5], [6, 7], []]
    np.testing.assert_array_equal(pad_sequences(sequences), [[1, 2, 3, 4, 5], [0, 0, 0, 6, 7], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(
        pad_sequences(sequences, maxlen=3), [[3, 4, 5], [0, 6, 7], [0, 0, 0]]
    )
    np.testing.assert_array_equal(
        pad_sequences(sequences, maxlen=3, padding="post", truncating="post"), [[1, 2, 3], [6, 7, 0], [0, 0, 0]]
    )
    np.testing.assert_array_equal(
        pad_sequences(sequences, maxlen=4, padding="pre", truncating="post", value=-1),
        [[1, 2, 3, 4], [-1, -1, 6, 7], [-1, -1, -1, -1]],
    )
    assert pad_sequences(sequences).dtype == np.int32
    assert pad_sequences(sequences, dtype=np.int64).dtype == np.int64


@pytest.mark.parametrize("option", ["padding", "truncating"])
def test_pad_sequences_rejects_unknown_modes(option):
    with pytest.raises(ValueError, match=option):
        pad_sequences([[1]], **{option: "middle"})


def test_sarcasm_headlines_give_the_course_vocabulary(shared_data):
    headlines, _ = read_headlines(shared_data / "sarcasm" / "sarcasm.json")
    tokenizer = Tokenizer(oov_token="<OOV>")
    tokenizer.fit_on_texts(headlines)
    # C3W1 lab 3 (all 26,709 headlines): "number of words in word_index: 29657" and the first
    # headline "former versace store clerk sues over secret 'black code' for minority shoppers":
    assert len(tokenizer.word_index) == 29657
    assert tokenizer.texts_to_sequences(headlines[:1]) == [
        [308, 15115, 679, 3337, 2298, 48, 382, 2576, 15116, 6, 2577, 8434]
    ]


# --- TextVectorization (course v2) ---------------------------------------------------------


def test_text_vectorization_on_the_course_toy_sentences():
    layer = TextVectorization()
    layer.adapt(COURSE_SENTENCES)
    # C3W1 v2 lab 1: '' and '[UNK]', then by count (my 4; love, dog 3; you, i 2), ties high to low.
    assert layer.get_vocabulary() == [
        "", "[UNK]", "my", "love", "dog", "you", "i", "think", "is", "do", "cat", "amazing",
    ]
    assert layer(["i really love my dog", "my dog loves my manatee", ""]) == [[6, 1, 3, 2, 4], [2, 4, 1, 2, 1], []]


def test_standardize_lowercases_ascii_only_and_deletes_ascii_punctuation():
    assert standardize("Hello, World! It's A-OK") == "hello world its aok"
    assert standardize("ÉCOLE Straße ΣΊΣΥΦΟΣ") == "École straße ΣΊΣΥΦΟΣ"  # tf.strings.lower: ASCII letters only
    assert standardize("“curly” — dash… 'x'") == "“curly” — dash… x"  # Unicode punctuation stays
    every_character = "".join(chr(code) for code in range(0x110000) if not 0xD800 <= code < 0xE000)
    assert sorted(re.findall(KERAS_STRIP_PUNCTUATION_REGEX, every_character)) == sorted(string.punctuation)


def test_split_whitespace_splits_on_ascii_whitespace_only():
    assert split_whitespace("  a\tb\nc\rd\ve\ff  ") == ["a", "b", "c", "d", "e", "f"]
    assert split_whitespace("no\u00a0break hair\u200aspace") == ["no\u00a0break", "hair\u200aspace"]
    assert split_whitespace(" \t ") == []


def test_ties_go_by_descending_utf8_bytes():
    counts = {"b": 1, "a": 2, "é": 1, "Z": 1, "c": 2, "🙂": 1, "日": 1}
    assert vocabulary_order(counts) == ["c", "a", "🙂", "日", "é", "b", "Z"]


def test_max_tokens_counts_the_two_reserved_tokens():
    layer = TextVectorization(max_tokens=4)
    layer.adapt(COURSE_SENTENCES)
    assert layer.get_vocabulary() == ["", "[UNK]", "my", "love"]
    assert layer.vocabulary_size() == 4
    assert layer(["my dog loves my love"]) == [[2, 1, 1, 2, 3]]
    with pytest.raises(ValueError, match="greater than 1"):
        TextVectorization(max_tokens=1)


def test_adapt_replaces_the_vocabulary():
    layer = TextVectorization()
    layer.adapt(["a b b"])
    layer.adapt(["c"])
    assert layer.get_vocabulary() == ["", "[UNK]", "c"]
    assert layer(["a c"]) == [[1, 2]]


def test_sarcasm_training_headlines_give_the_v2_vocabulary(shared_data):
    headlines, _ = read_headlines(shared_data / "sarcasm" / "sarcasm.json")
    unbounded = TextVectorization()
    unbounded.adapt(headlines[:20000])
    assert unbounded.vocabulary_size() == 24620  # before max_tokens cuts it to 10,000
    layer = TextVectorization(max_tokens=10_000)
    layer.adapt(headlines[:20000])
    assert layer.get_vocabulary()[:8] == ["", "[UNK]", "to", "of", "the", "in", "for", "a"]
    # "former versace store clerk sues over secret 'black code' for minority shoppers": the
    # apostrophes are deleted, so 'black and code' become the known words black and code.
    assert layer(headlines[:1]) == [[319, 1, 943, 4079, 2366, 47, 366, 94, 2026, 6, 2653, 9470]]
