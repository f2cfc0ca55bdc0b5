"""bbc-text: the course's file read and encoded as the C3W2 v2 assignment does; malformed records; label order."""

import re
from collections import Counter

import numpy as np
import pytest

from parity.catalog import get_spec
from parity.datasets import load_dataset
from parity.datasets.bbc import label_vocabulary, read_news_csv
from parity.datasets.decode import DataWarning
from parity.errors import DataError
from parity.plan import collate
from parity.text import _ASCII_LOWER, _PUNCTUATION, STOPWORD_PATTERNS_C3W2, remove_stopwords, standardize_c3w2

BBC = get_spec("c3w2_bbc_embed_gap")
COURSE_LABELS = ["sport", "business", "politics", "tech", "entertainment"]


def test_course_file_splits_1780_445_with_the_course_label_ids(shared_data):
    split = load_dataset(BBC, data_dir=shared_data / "bbc-text")
    assert (len(split.train), split.val_size) == (1780, 445)
    assert list(split.info["classes"]) == COURSE_LABELS
    assert split.info["vocabulary_size"] == 1000 and len(split.vocabulary) == 1000
    assert split.vocabulary[:4] == ("", "[UNK]", "s", "said")  # the file writes "government s plans"
    # The course's first ten labels: tech business sport sport entertainment politics politics sport sport ent.
    assert split.train.y[:10].tolist() == [3, 1, 0, 0, 4, 2, 2, 0, 0, 4]
    assert Counter(split.train.y.tolist()) == {0: 410, 1: 404, 2: 331, 4: 320, 3: 315}
    x, y = collate(split.val, np.arange(3))
    assert x.shape == (3, 120) and x.dtype == np.int32 and y.dtype == np.int64


def test_labels_are_looked_up_in_all_labels_as_the_assignment_adapts_them(shared_data):
    labels = read_news_csv(shared_data / "bbc-text" / "bbc-text.csv").labels
    assert label_vocabulary(labels) == COURSE_LABELS
    # Adapted on the 1,780 training labels alone, entertainment (320) would come before tech (315).
    assert label_vocabulary(labels[:1780]) == ["sport", "business", "politics", "entertainment", "tech"]


def test_label_ties_are_broken_as_keras_stringlookup_does():
    labels = ["b", "a", "a", "b", "c", "d", "d"]
    # Keras sorts with np.lexsort((tokens, counts))[::-1]: equal counts go by descending token bytes.
    assert label_vocabulary(labels) == ["d", "b", "a", "c"]
    first_seen = sorted(Counter(labels), key=lambda label: -Counter(labels)[label])  # the planted other rule
    assert first_seen == ["b", "a", "d", "c"] != label_vocabulary(labels)


def test_course_stopword_functions_give_the_notebooks_expected_outputs():
    assert remove_stopwords("I am about to go to the store and get any snack") == "go store get snack"
    sentence = "Hello! We're just about to see this function in action =)"
    assert standardize_c3w2(sentence).split() == ["hello", "just", "see", "function", "action"]


def _one_regex_per_word(text: str) -> str:
    """The assignment's standardize_func as written: one regex_replace per list entry, in order."""
    text = text.translate(_ASCII_LOWER)
    for word in STOPWORD_PATTERNS_C3W2:
        text = re.sub(("" if word[0] == "'" else r"\b") + re.escape(word) + r"\b", "", text, flags=re.ASCII)
    return _PUNCTUATION.sub("", text)


def test_one_pass_stopword_regex_deletes_what_the_per_word_regexes_delete(shared_data):
    # Contractions and their endings, a word of the list inside another, non-ASCII letters beside a stopword
    # (RE2's \b is ASCII: "caféa" loses its "a").
    tricky = ["let's go, he's it's 'me 'so john's i'm we'd a'm A.B. about-about Émile's THE",
              "whY's whom'd caféa théthe"]
    texts = tricky + read_news_csv(shared_data / "bbc-text" / "bbc-text.csv").texts[:40]
    assert [standardize_c3w2(text) for text in texts] == [_one_regex_per_word(text) for text in texts]


def _write(path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_malformed_records_are_skipped_with_file_and_line(tmp_path):
    path = tmp_path / "bbc-text.csv"
    _write(path, [
        b"category,text",
        b"sport,a match report",                    # line 2: kept
        b"tech,one,two",                            # line 3: 3 fields
        b"business,",                               # line 4: empty text
        b",no category here",                       # line 5: empty category
        b"politics,caf\xe9 vote",                   # line 6: not UTF-8
        b'tech,"a quoted text',                     # lines 7-8: one record over two lines, kept
        b'over two lines"',
        b"",                                        # line 9: blank, no record
        b"sport,the last one",                      # line 10: kept
    ])
    with pytest.warns(DataWarning) as warned:
        records = read_news_csv(path)
    messages = [str(warning.message) for warning in warned]
    assert messages == [f"{path}:3: 3 fields, the header has 2; record skipped",
                        f"{path}:4: empty text; record skipped",
                        f"{path}:5: empty category; record skipped",
                        f"{path}:6: undecodable bytes: byte 0xe9 at column 13 is not UTF-8; record skipped"]
    assert records.labels == ["sport", "tech", "sport"] and records.lines == [2, 7, 10]
    assert records.texts[1] == "a quoted text\nover two lines"


def test_skipped_records_are_counted_in_the_split_info(tmp_path):
    rows = [b"category,text"] + [f"{label},news about {label} number {i}".encode()
                                 for i, label in enumerate(COURSE_LABELS * 4)] + [b"sport"]
    _write(tmp_path / "bbc-text.csv", rows)
    with pytest.warns(DataWarning, match=r"bbc-text\.csv:22: 1 fields"):
        split = load_dataset(BBC, data_dir=tmp_path)
    assert split.info["skipped_records"] == 1 and split.info["skipped"] == ["line 22: 1 fields, the header has 2"]
    assert (len(split.train), split.val_size) == (16, 4)  # int(20 * 0.8), the course's rule at any size


def test_missing_header_column_and_broken_quoting_are_refused(tmp_path):
    path = tmp_path / "bbc-text.csv"
    _write(path, [b"category,body", b"sport,a match"])
    with pytest.raises(DataError, match=r"bbc-text\.csv:1: the header 'category,body' lacks the column 'text'"):
        read_news_csv(path)
    _write(path, [b"category,text", b'sport,"unclosed', b"tech,more"])
    with pytest.raises(DataError, match=r"bbc-text\.csv:\d+: not valid CSV"):
        read_news_csv(path)
    _write(path, [b"category,text", b"sport,"])
    with pytest.raises(DataError, match="no valid record"), pytest.warns(DataWarning):
        read_news_csv(path)


def test_more_categories_than_the_model_has_is_a_data_error(tmp_path):
    rows = [b"category,text"] + [f"class{i % 6},text {i}".encode() for i in range(30)]
    _write(tmp_path / "bbc-text.csv", rows)
    with pytest.raises(DataError, match="6 categories .* classifies into 5"):
        load_dataset(BBC, data_dir=tmp_path)


def test_preprocessing_spec_is_not_loaded_as_a_classifier(shared_data):
    with pytest.raises(DataError, match="parity preproc"):
        load_dataset(get_spec("c3w1_text_preproc"), data_dir=shared_data / "bbc-text")


def test_synthetic_stand_in_is_encoded_like_the_real_file():
    split = load_dataset(BBC, synthetic=True)
    assert (split.source, len(split.train), split.val_size) == ("synthetic", 1200, 300)
    assert sorted(split.info["classes"]) == sorted(COURSE_LABELS)
    assert "the" not in split.vocabulary and "and" not in split.vocabulary  # stopwords removed
    x, _ = collate(split.train, np.arange(4))
    assert x.shape == (4, 120)
