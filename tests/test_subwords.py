"""WordPiece subwords (parity.subwords): BERT-style splitting, a deterministic learnt vocabulary, vocabulary files."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from parity import cache, subwords
from parity.errors import DataError

REPO = Path(__file__).resolve().parents[1]
# huggingface/tokenizers#1794's text: trained as it is, its vocabulary changes from one training to the next.
TIE_TEXT = ["Wel come to the 🤗 Tok en izers libr ary."]
REVIEWS = [
    "This movie was unwatchable, a dreadful waste of time.<br /><br />The acting? Awful!",
    "A brilliant, moving film: the best acting I've seen this year. Café scenes are superb.",
    "Rewatching it, I still think the ending is wonderful; the score is unforgettable.",
    "Boring and overlong. The director wasted a great cast on an unwatchable script.",
] * 5


def test_encoding_splits_as_bert_then_takes_the_longest_pieces():
    vocabulary = ["[PAD]", "[UNK]", "the", "un", "aff", "##aff", "##able", "cafe", ".", ",", "!", "?", "a"]
    # Lower-cased, accents stripped (Café -> cafe), punctuation split off, then greedy longest-match pieces;
    # "Unaffable" -> un ##aff ##able; "xyz" has no split at all, so it is one [UNK]; ids are positions.
    assert subwords.encode(vocabulary, ["The Unaffable, CAFÉ. xyz!"]) == [[2, 3, 5, 6, 9, 7, 8, 1, 10]]
    assert subwords.encode(vocabulary, ["", "a " + "a" * (subwords.MAX_WORD_CHARS + 1)]) == [[], [12, 1]]


def test_the_learnt_vocabulary_reserves_pad_and_unk_and_encodes_its_own_text_without_unknowns():
    vocabulary = subwords.learn_vocabulary(REVIEWS, 120)
    assert vocabulary[:2] == ("[PAD]", "[UNK]") and len(vocabulary) <= 120 and len(set(vocabulary)) == len(vocabulary)
    assert any(token.startswith("##") and len(token) > 3 for token in vocabulary)  # merged continuation pieces
    ids = subwords.encode(vocabulary, REVIEWS[:4])
    assert all(0 < i < len(vocabulary) and i != subwords.UNK_ID for row in ids for i in row)
    pieces = [vocabulary[i] for i in ids[0]]
    words = "".join(piece[2:] if piece.startswith("##") else f" {piece}" for piece in pieces).split()
    assert words == ("this movie was unwatchable , a dreadful waste of time . < br / > < br / > the acting ? "
                     "awful !").split()
    # A character never seen in training makes its word unknown.
    assert subwords.encode(vocabulary, ["zebra movie"])[0][0] == subwords.UNK_ID


def test_learning_is_deterministic_where_the_plain_trainer_is_not():
    learnt = {subwords.learn_vocabulary(TIE_TEXT, 100) for _ in range(20)}
    assert len(learnt) == 1
    # The planted error: tokenizers' trainer as it is numbers the "##" characters in hash order, so 20 trainings
    # give different vocabularies (ids, and sometimes pieces); the test above would see that.
    plain = {subwords._train(TIE_TEXT, subwords.RESERVED_TOKENS, 100) for _ in range(20)}
    assert len(plain) > 1


def test_the_learnt_vocabulary_does_not_depend_on_the_thread_count():
    script = ("import sys; from parity import subwords; texts = sys.stdin.read().split('\\n'); "
              "print('\\n'.join(subwords.learn_vocabulary(texts, 150)))")
    texts = "\n".join(REVIEWS + TIE_TEXT)
    outputs = []
    for threads in ("1", "3"):
        environment = {**os.environ, "RAYON_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "true"}
        outputs.append(subprocess.run([sys.executable, "-c", script], input=texts, capture_output=True, text=True,
                                      check=True, cwd=REPO, env=environment).stdout)
    assert outputs[0] == outputs[1] == "\n".join(subwords.learn_vocabulary(REVIEWS + TIE_TEXT, 150)) + "\n"


def test_a_learnt_vocabulary_is_cached_checked_and_learnt_again_when_corrupt(monkeypatch, capsys):
    first = subwords.cached_vocabulary(REVIEWS, 120)
    entries = sorted((cache.cache_root() / subwords.SUBWORDS_DIR).glob("*.txt"))
    assert len(entries) == 1 and subwords.read_vocabulary(entries[0]) == first
    learn = subwords.learn_vocabulary
    monkeypatch.setattr(subwords, "learn_vocabulary", lambda *args: pytest.fail("learnt again despite the cache"))
    assert subwords.cached_vocabulary(REVIEWS, 120) == first
    lines = entries[0].read_text(encoding="utf-8").splitlines()
    lines[5], lines[6] = lines[6], lines[5]  # still a vocabulary, but other ids
    entries[0].write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(subwords, "learn_vocabulary", learn)
    assert subwords.cached_vocabulary(REVIEWS, 120) == first
    assert "does not match its recorded sha256" in capsys.readouterr().err
    assert subwords.cached_vocabulary(REVIEWS[:-1], 120) is not None  # other texts: another entry
    assert len(list((cache.cache_root() / subwords.SUBWORDS_DIR).glob("*.txt"))) == 2


def test_a_course_format_vocabulary_file_reads_back_in_line_order(tmp_path):
    path = tmp_path / "imdb_vocab_subwords.txt"
    path.write_text("[PAD]\n[UNK]\n!\n##s\nmovie\n", encoding="utf-8")
    vocabulary = subwords.read_vocabulary(path)
    assert vocabulary == ("[PAD]", "[UNK]", "!", "##s", "movie")
    assert subwords.encode(vocabulary, ["Movies!"]) == [[4, 3, 2]]


@pytest.mark.parametrize("content, problem", [
    ("", ": empty vocabulary"),
    ("[PAD]\n", ":2: expected [UNK], found nothing"),
    ("[UNK]\n[PAD]\nmovie\n", ":1: expected [PAD], found '[UNK]'"),
    ("[PAD]\nmovie\n[UNK]\n", ":2: expected [UNK], found 'movie'"),
    ("[PAD]\n[UNK]\nmovie\nfilm\nmovie\n", ":5: token 'movie' repeats line 3"),
    ("[PAD]\n[UNK]\nmovie\n\nfilm\n", ":4: token '' is empty or holds whitespace"),
    ("[PAD]\n[UNK]\ngood movie\n", ":3: token 'good movie' is empty or holds whitespace"),
])
def test_a_bad_vocabulary_file_is_refused_naming_the_line(tmp_path, content, problem):
    path = tmp_path / "vocab.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as error:
        subwords.read_vocabulary(path)
    message = str(error.value)
    assert message.startswith(f"{path}{problem}; ") and "[PAD] on line 1 and [UNK] on line 2" in message


def test_undecodable_and_missing_vocabulary_files_are_refused(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"[PAD]\n[UNK]\ncaf\xe9\n")
    with pytest.raises(DataError, match=r"latin1.txt:3: not UTF-8 text"):
        subwords.read_vocabulary(path)
    with pytest.raises(DataError, match=r"missing.txt: cannot read the vocabulary file"):
        subwords.read_vocabulary(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="leaves no room"):
        subwords.learn_vocabulary(REVIEWS, 2)
