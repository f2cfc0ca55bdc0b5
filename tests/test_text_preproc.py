"""c3w1_text_preproc: the walkthrough's numbers against the course notebooks' printed outputs; `parity preproc`."""

import json

from parity.cli import main
from parity.text_preproc import JSON_FILE, MARKDOWN_FILE, MODEL_ID, toy_steps, walkthrough

TOY = ["I love my dog", "I love my cat", "You love my dog!", "Do you think my dog is amazing?"]


def test_toy_sentences_as_the_labs_print_them():
    toy = toy_steps(TOY, 5, "pre")
    tokenizer = toy["tokenizer"]
    # C3W1 lab 2 (v1) output.
    assert tokenizer["word_index"] == {"<OOV>": 1, "my": 2, "love": 3, "dog": 4, "i": 5, "you": 6, "cat": 7, "do": 8,
                                       "think": 9, "is": 10, "amazing": 11}
    assert tokenizer["sequences"] == [[5, 3, 2, 4], [5, 3, 2, 7], [6, 3, 2, 4], [8, 6, 9, 2, 4, 10, 11]]
    assert tokenizer["unseen"]["sequences"] == [[5, 1, 3, 2, 4], [2, 4, 1, 2, 1]]
    padded = tokenizer["padded"]
    assert padded["maxlen=5"][3] == [9, 2, 4, 10, 11]  # truncated at the front by default
    assert padded["maxlen=5, truncating='post'"][3] == [8, 6, 9, 2, 4]
    assert padded["maxlen=5, padding='post', truncating='post'"][0] == [5, 3, 2, 4, 0]
    assert padded["default (pre, to the longest)"][0] == [0, 0, 0, 5, 3, 2, 4]
    # C3W1 lab 1 (v2) output.
    vectorization = toy["text_vectorization"]
    assert vectorization["vocabulary"] == ["", "[UNK]", "my", "love", "dog", "you", "i", "think", "is", "do", "cat",
                                           "amazing"]
    assert vectorization["padded_to_longest_post"][0] == [6, 3, 2, 4, 0, 0, 0]
    assert vectorization["pad_sequences(padding='pre', maxlen=5)"][3] == [7, 2, 4, 8, 11]


def test_bbc_numbers_equal_the_assignments(shared_data):
    bbc = walkthrough(shared_data / "bbc-text")["bbc"]
    assert bbc["records"] == 2225 and bbc["first_labels"] == ["tech", "business", "sport", "sport", "entertainment"]
    assert bbc["first_article_words"] == {"original": 737, "after_stopwords": 436, "expected": [737, 436]}
    vocabulary = bbc["vocabulary_size"]
    assert (vocabulary["text_vectorization"], vocabulary["expected"]) == (33_088, 33_088)
    assert (vocabulary["keras2_tokenizer"], vocabulary["expected_keras2"]) == (29_714, 29_714)
    assert vocabulary["oov_in_vocabulary"]
    lookup = bbc["label_lookup"]
    assert lookup["vocabulary"] == lookup["expected"] == ["sport", "business", "politics", "tech", "entertainment"]
    assert lookup["first_ids"] == [3, 1, 0, 0, 4, 2, 2, 0, 0, 4]


def test_parity_preproc_writes_json_and_markdown(tmp_path, capsys):
    data = tmp_path / "bbc"
    data.mkdir()
    rows = ["category,text"] + [f"{label},the {label} news of the day it's {label} again"
                                for label in ["sport", "tech", "sport", "business"]]
    (data / "bbc-text.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["preproc", "--data-dir", str(data), "--out", str(tmp_path / "out")]) == 0
    directory = tmp_path / "out" / MODEL_ID
    record = json.loads((directory / JSON_FILE).read_text())
    assert record["bbc"]["vocabulary_size"]["text_vectorization"] == 2 + 5  # news day sport tech business
    assert record["bbc"]["label_lookup"]["vocabulary"] == ["sport", "tech", "business"]
    report = (directory / MARKDOWN_FILE).read_text()
    assert "| TextVectorization vocabulary after stopword removal (v2) | 7 | 33,088 |" in report
    assert "differs from the course's by -33,081" in report
    assert f"written: {directory}" in capsys.readouterr().out
    assert main(["preproc", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "bbc-text" in capsys.readouterr().err
