"""The sarcasm loader: v1 (Keras 2 Tokenizer) or v2 (TextVectorization) preprocessing by
`spec.data.tokenizer`, fitted on the training headlines only; a user's smaller file keeps the
course's proportion. The comparison with the real Keras layer is in test_text_vectorization_keras3.py."""

import dataclasses
import json

import numpy as np
import pytest

from parity.catalog import get_spec
from parity.datasets import load_dataset
from parity.datasets.sarcasm import tokenize
from parity.errors import DataError
from parity.plan import collate

V1 = get_spec("c3w2_sarcasm_embed_gap")
V2 = get_spec("c3w3_sarcasm_bilstm")


def padded(source) -> np.ndarray:
    """Every sample of a split's source, padded as the batches are."""
    return collate(source, np.arange(len(source)))[0]


def write_headlines(directory, headlines: list[str]) -> None:
    records = [{"headline": text, "is_sarcastic": number % 2} for number, text in enumerate(headlines)]
    (directory / "sarcasm.json").write_text(json.dumps(records))


def test_v2_recipe_on_the_real_file(shared_data):
    split = load_dataset(V2, data_dir=shared_data / "sarcasm")
    x_train, x_val = padded(split.train), padded(split.val)
    assert x_train.shape == (20000, 32) and x_val.shape == (6709, 32)
    assert x_train.dtype == np.int32 and split.val.y.shape == (6709, 1)
    assert dict(split.info) == {"tokenizer": "text_vectorization", "vocabulary_size": 10_000,
                                "files": [str(shared_data / "sarcasm" / "sarcasm.json")]}
    assert "split_note" not in split.info  # the course's own file keeps the course's count
    # pad_sequences(maxlen=32, padding="pre", truncating="post") of the first headline's 12 ids:
    assert x_train[0].tolist() == [0] * 20 + [319, 1, 943, 4079, 2366, 47, 366, 94, 2026, 6, 2653, 9470]
    assert x_train.max() == 9999 and x_val.max() < 10_000
    assert (x_train[:, 0] == 0).mean() > 0.99  # pre-padding: headlines rarely reach 32 tokens


def test_the_spec_picks_the_tokenizer(tmp_path):
    write_headlines(tmp_path, ["It's a dog's life!", "A dog; a cat.", "dogs, cats", "a new dog"])
    v1, v2 = (load_dataset(spec, data_dir=tmp_path) for spec in (V1, V2))
    assert v1.info["tokenizer"] == "keras2_tokenizer" and v2.info["tokenizer"] == "text_vectorization"
    # Trained on the first 3 of the 4 (the course's proportion). v1 keeps apostrophes, ties go by
    # first appearance, '<OOV>' is 1; v2 deletes apostrophes (dog's is dogs), ties go high to low.
    assert v1.info["vocab_words"] == 9  # <OOV> a it's dog's life dog cat dogs cats
    assert v2.info["vocabulary_size"] == 9  # '' [UNK] a dogs life its dog cats cat
    assert padded(v1.train)[0, :5].tolist() == [3, 2, 4, 5, 0]  # post padding
    assert padded(v2.train)[0, -5:].tolist() == [0, 5, 2, 3, 4]  # pre padding
    assert padded(v2.val)[0, -3:].tolist() == [2, 1, 6]  # 'new' was not in the training headlines


def test_vocabulary_is_fitted_on_the_training_part_only():
    data = V2.data
    ids = tokenize(data, ["alpha beta", "beta"], ["gamma beta gamma"])
    assert ids.train == [[3, 2], [2]] and ids.val == [[1, 2, 1]]
    with pytest.raises(DataError, match="must be one of"):
        tokenize(dataclasses.replace(data, tokenizer="wordpiece"), ["a"], ["b"])


def test_users_small_file_trains_on_the_course_proportion_and_says_so(tmp_path, capsys):
    write_headlines(tmp_path, [f"headline number {n}" for n in range(1000)])
    split = load_dataset(V2, data_dir=tmp_path)
    assert (len(split.train), split.val_size) == (749, 251)  # 1000 * 20000 / 26709 = 748.8
    note = split.info["split_note"]
    assert note.startswith(str(tmp_path / "sarcasm.json")) and "fewer than the course's 26709" in note
    assert f"parity: note: {note}" in capsys.readouterr().err


def test_a_file_of_one_headline_is_refused_naming_it(tmp_path):
    write_headlines(tmp_path, ["lonely headline"])
    with pytest.raises(DataError, match=rf"{tmp_path / 'sarcasm.json'}: too few records \(1\)"):
        load_dataset(V2, data_dir=tmp_path)


def test_report_shows_the_split_note():
    from test_report import _results  # the report tests' fabricated run result

    from parity.report import build_report, render_markdown

    results = _results()
    results["dataset"]["split_note"] = "mine.json: 10 records, fewer than the course's 26709, ..."
    text = render_markdown(build_report(results))
    assert "- Split: mine.json: 10 records, fewer than the course's 26709, ..." in text
    assert "- Split:" not in render_markdown(build_report(_results()))
