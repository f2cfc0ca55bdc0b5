"""IMDB reviews (parity.datasets.imdb): the archive or the aclImdb folder, malformed reviews, the two encodings."""

import io
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from parity.catalog import get_spec
from parity.datasets import imdb, load_dataset
from parity.datasets.decode import DataWarning
from parity.errors import DataError

REVIEWS_SPEC = get_spec("c3w2_imdb_embed_flatten")  # imdb-reviews: TextVectorization(10,000), padded to 120
SUBWORDS_SPEC = get_spec("c3w3_imdb_bilstm1")  # imdb-subwords: WordPiece, each batch padded to its longest
# (split, folder, file name, text) of a small aclImdb tree: ids out of text order (10 after 9), both classes.
REVIEWS = [
    ("train", "pos", "10_9.txt", "A wonderful film, the best acting of the year."),
    ("train", "pos", "9_7.txt", "Brilliant and moving.<br /><br />I loved it."),
    ("train", "neg", "0_1.txt", "Dreadful. A waste of time and an unwatchable script."),
    ("train", "neg", "3_2.txt", "Boring, boring, boring: the worst film I have seen."),
    ("test", "pos", "0_10.txt", "Superb! A moving story, wonderful music."),
    ("test", "neg", "2_3.txt", "Awful acting, and a dreadful ending."),
    ("test", "neg", "1_4.txt", "Not good: the plot is thin and the film is slow."),
]
# What the real archive holds besides the labelled reviews, which the reader leaves alone.
EXTRAS = {"README": "readme", "imdb.vocab": "the\nand\n", "train/unsup/0_0.txt": "unlabelled",
          "train/urls_pos.txt": "http://x", "train/labeledBow.feat": "0 9:1"}


def write_tree(root: Path, reviews=REVIEWS, extras=EXTRAS) -> Path:
    """An aclImdb/ folder under `root` with `reviews` (texts, or raw bytes) and `extras`; returns the folder."""
    folder = root / imdb.ROOT
    for split, label, name, text in reviews:
        path = folder / split / label / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    for name, text in extras.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def write_archive(path: Path, folder: Path, members=()) -> Path:
    """`folder` as a gzip tar under the root aclImdb/ (as upstream packs it), then the TarInfo `members`."""
    with tarfile.open(path, "w:gz") as archive:
        archive.add(folder, arcname=imdb.ROOT)
        for member, data in members:
            archive.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, data: bytes | None = b"x", kind: bytes = tarfile.REGTYPE, target: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, target, len(data or b"")
    return info, data


@pytest.fixture
def tree(tmp_path) -> Path:
    return write_tree(tmp_path / "folder")


@pytest.fixture
def archive(tmp_path, tree) -> Path:
    return write_archive(tmp_path / imdb.ARCHIVE, tree)


def same_split(a, b) -> bool:
    """Both splits hold the same token ids, labels and vocabulary."""
    parts = [(a.train, b.train), (a.val, b.val)]
    return a.vocabulary == b.vocabulary and all(
        np.array_equal(x.x.values, y.x.values) and np.array_equal(x.x.offsets, y.x.offsets)
        and np.array_equal(x.y, y.y) for x, y in parts)


def texts_of(split, source) -> list[str]:
    vocabulary = split.vocabulary
    return [" ".join(vocabulary[i] for i in source.x[row]) for row in range(len(source))]


def test_reviews_are_read_by_split_folder_and_numeric_id_with_pos_1_and_neg_0(archive):
    reviews = imdb.read_imdb(archive)
    assert reviews.train.texts == (REVIEWS[2][3], REVIEWS[3][3], REVIEWS[1][3], REVIEWS[0][3])  # neg 0, 3; pos 9, 10
    assert reviews.train.labels.tolist() == [0, 0, 1, 1] and reviews.train.labels.dtype == np.float32
    assert reviews.test.texts == (REVIEWS[6][3], REVIEWS[5][3], REVIEWS[4][3])
    assert reviews.test.labels.tolist() == [0, 0, 1]
    assert reviews.skipped == () and reviews.files == (str(archive),)  # unsup, urls, .feat, README left alone


@pytest.mark.parametrize("dataset_spec", [REVIEWS_SPEC, SUBWORDS_SPEC], ids=["reviews", "subwords"])
def test_the_archive_and_the_folder_give_identical_splits_and_a_changed_review_does_not(dataset_spec, tmp_path, tree,
                                                                                        archive):
    from_archive = load_dataset(dataset_spec, archive)
    assert same_split(from_archive, load_dataset(dataset_spec, tree))
    assert same_split(from_archive, load_dataset(dataset_spec, tmp_path))  # the folder holding the archive
    assert (len(from_archive.train), len(from_archive.val)) == (4, 3) and from_archive.info["skipped"] == 0
    assert from_archive.train.y.shape == (4, 1) and from_archive.val.y[:, 0].tolist() == [0, 0, 1]
    assert from_archive.info["files"] == [str(archive)] and from_archive.location == str(archive)
    # The planted error: one word of one test review changed; the comparison above sees it.
    (tree / "test" / "neg" / "1_4.txt").write_text(REVIEWS[6][3].replace("thin", "boring"))
    assert not same_split(from_archive, load_dataset(dataset_spec, tree))


def test_the_word_split_is_text_vectorization_of_the_training_reviews_padded_pre_to_120(archive):
    split = load_dataset(REVIEWS_SPEC, archive)
    assert split.vocabulary[:4] == ("", "[UNK]", "the", "boring") and split.info["tokenizer"] == "text_vectorization"
    assert texts_of(split, split.train)[0] == "dreadful a waste of time and an unwatchable script"
    # Test-only words are [UNK]: superb, story, music, and moving, which training has only as "movingbr" (the
    # standardization deletes the punctuation of "moving.<br />", as Keras' does).
    assert texts_of(split, split.val)[2] == "[UNK] a [UNK] [UNK] wonderful [UNK]" and "movingbr" in split.vocabulary
    x, _ = split.probe_inputs(3), None
    assert x.shape == (3, 120) and (x[:, :100] == 0).all() and x[2, -6:].tolist() == list(split.val.x[2])


def test_the_subword_split_states_its_vocabulary_size_for_the_embedding(archive, tmp_path):
    split = load_dataset(SUBWORDS_SPEC, archive)
    assert split.vocabulary[:2] == ("[PAD]", "[UNK]") and split.info["subword_vocabulary"] == "learnt"
    assert split.info["spec_overrides"] == {"layers": {"vocab_size": len(split.vocabulary)}}
    assert split.spec_overrides(SUBWORDS_SPEC.id) == {SUBWORDS_SPEC.id: split.info["spec_overrides"]}
    assert split.info["train_unknown_fraction"] == 0.0
    words = "".join(p[2:] if p.startswith("##") else f" {p}" for p in texts_of(split, split.train)[0].split())
    assert words.split() == "dreadful . a waste of time and an unwatchable script .".split()
    assert split.probe_inputs(3).shape == (3, max(len(split.val.x[row]) for row in range(3)))  # padded to the longest


def test_a_vocabulary_file_replaces_the_learnt_one_and_only_subword_data_takes_one(archive, tmp_path):
    vocab = tmp_path / "imdb_vocab_subwords.txt"
    vocab.write_text("[PAD]\n[UNK]\n.\n,\na\nfilm\nthe\n##s\n", encoding="utf-8")
    split = load_dataset(SUBWORDS_SPEC, archive, vocab=vocab)
    assert split.vocabulary == ("[PAD]", "[UNK]", ".", ",", "a", "film", "the", "##s")
    assert split.info["spec_overrides"] == {"layers": {"vocab_size": 8}} and split.info["files"] == [str(archive),
                                                                                                      str(vocab)]
    assert list(split.train.x[0]) == [1, 2, 4, 1, 1, 1, 1, 1, 1, 1, 2]  # dreadful . a waste ... script .
    stand_in = load_dataset(SUBWORDS_SPEC, synthetic=True, vocab=vocab)
    assert stand_in.vocabulary == split.vocabulary and stand_in.source == "synthetic"
    with pytest.raises(DataError, match="--vocab gives the subword vocabulary of imdb-subwords; imdb-reviews has none"):
        load_dataset(REVIEWS_SPEC, archive, vocab=vocab)
    vocab.write_text("[UNK]\n[PAD]\n")
    with pytest.raises(DataError, match=r"imdb_vocab_subwords.txt:1: expected \[PAD\], found '\[UNK\]'"):
        load_dataset(SUBWORDS_SPEC, archive, vocab=vocab)
    with pytest.raises(DataError, match=r"imdb_vocab_subwords.txt not found .*PARITY_OFFLINE=1"):
        load_dataset(SUBWORDS_SPEC, archive, vocab="course")  # the course's file: downloads are off in tests


@pytest.mark.parametrize("kind", ["archive", "folder"])
def test_malformed_reviews_are_skipped_with_a_warning_naming_each(kind, tmp_path):
    bad = [("train", "pos", "11_8.txt", b"caf\xe9 au lait"), ("train", "neg", "5_1.txt", b"  \n"),
           ("test", "pos", "review.txt", "A good name is <id>_<rating>.txt")]
    folder = write_tree(tmp_path / "tree", REVIEWS + bad)
    path = write_archive(tmp_path / imdb.ARCHIVE, folder) if kind == "archive" else folder
    prefix = f"{path}:{imdb.ROOT}/" if kind == "archive" else f"{folder}/"
    with pytest.warns(DataWarning) as caught:
        split = load_dataset(REVIEWS_SPEC, path)
    assert sorted(str(w.message) for w in caught) == sorted([
        f"{prefix}train/pos/11_8.txt: not UTF-8 text (invalid continuation byte at byte 3); review skipped",
        f"{prefix}train/neg/5_1.txt: empty review; review skipped",
        f"{prefix}test/pos/review.txt: the name is not <id>_<rating>.txt; review skipped"])
    assert (len(split.train), len(split.val), split.info["skipped"]) == (4, 3, 3)
    assert len(split.info["skipped_reviews"]) == 3


def test_a_missing_class_folder_or_one_with_no_review_left_is_an_error_naming_it(tmp_path):
    folder = write_tree(tmp_path / "tree", [r for r in REVIEWS if r[:2] != ("test", "neg")])
    with pytest.raises(DataError, match=r"tree/aclImdb: no folder test/neg; IMDB needs"):
        load_dataset(REVIEWS_SPEC, folder)
    with pytest.raises(DataError, match=r"no test/neg reviews \(the folder is missing or empty\)"):
        load_dataset(REVIEWS_SPEC, write_archive(tmp_path / "a.tar.gz", folder))
    (folder / "test" / "neg").mkdir()
    (folder / "test" / "neg" / "4_2.txt").write_bytes(b"\xff\xfe")
    with pytest.warns(DataWarning), pytest.raises(DataError, match=r"no test/neg reviews \(all 1 of its reviews"):
        load_dataset(REVIEWS_SPEC, folder)


@pytest.mark.parametrize("added, problem", [
    (member("aclImdb/../../evil.txt"), "unsafe archive member 'aclImdb/../../evil.txt' (empty name, absolute"),
    (member("/etc/aclImdb/train/pos/1_9.txt"), "unsafe archive member '/etc/aclImdb/train/pos/1_9.txt'"),
    (member("aclImdb/train/pos/7_8.txt", None, tarfile.SYMTYPE, "/etc/passwd"),
     "archive member 'aclImdb/train/pos/7_8.txt' is a link, not a file or folder; refusing the archive"),
    (member("aclImdb/train/pos/8_8.txt", None, tarfile.LNKTYPE, "aclImdb/README"), "is a link"),
    (member("aclImdb/train/fifo", None, tarfile.FIFOTYPE), "'aclImdb/train/fifo' is a special file"),
], ids=["dotdot", "absolute", "symlink", "hardlink", "fifo"])
def test_unsafe_members_and_links_make_the_archive_refused(tmp_path, tree, added, problem):
    path = write_archive(tmp_path / "unsafe.tar.gz", tree, [added])
    with pytest.raises(DataError) as error:
        load_dataset(REVIEWS_SPEC, path)
    assert str(error.value).startswith(f"{path}: ") and problem in str(error.value)


def test_unreadable_archives_and_wrong_places_are_one_line_errors(tmp_path, archive, monkeypatch):
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:300])
    with pytest.raises(DataError, match=r"truncated.tar.gz: not a readable tar archive \(.*replace it with a complete"):
        load_dataset(REVIEWS_SPEC, truncated)
    with pytest.raises(DataError, match=r"holds neither aclImdb_v1.tar.gz nor an extracted aclImdb/ folder"):
        load_dataset(REVIEWS_SPEC, tmp_path / "folder" / "aclImdb" / "train" / "pos")
    with pytest.raises(DataError, match=r"nowhere does not exist"):
        load_dataset(REVIEWS_SPEC, tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"imdb: data files aclImdb_v1.tar.gz not found .*PARITY_OFFLINE=1"):
        load_dataset(REVIEWS_SPEC)
    monkeypatch.setenv("PARITY_DATA_DIR", str(tmp_path / "root"))
    write_tree(tmp_path / "root" / "imdb-subwords")  # $PARITY_DATA_DIR/<a folder name of the source>/aclImdb
    assert len(load_dataset(SUBWORDS_SPEC).train) == 4


def test_tokenized_reviews_are_cached_and_a_corrupt_entry_is_tokenized_again(archive, monkeypatch, capsys):
    first = load_dataset(SUBWORDS_SPEC, archive)
    entries = list((imdb.cache_root() / imdb.TOKENIZED).iterdir())
    assert len(entries) == 1 and isinstance(first.train.x.values, np.memmap) is False
    encode = imdb.encode_subwords
    monkeypatch.setattr(imdb, "encode_subwords", lambda *args: pytest.fail("tokenized again despite the cache"))
    cached = load_dataset(SUBWORDS_SPEC, archive)
    assert same_split(first, cached) and isinstance(cached.train.x.values, np.memmap)
    assert dict(cached.info) == dict(first.info)
    monkeypatch.setattr(imdb, "encode_subwords", encode)
    values = entries[0] / "train-values.npy"
    data = bytearray(values.read_bytes())
    data[-1] ^= 1  # one token id changed
    values.write_bytes(bytes(data))
    assert same_split(first, load_dataset(SUBWORDS_SPEC, archive))
    assert "is unusable (train-values.npy does not match the sha256 and size its index records); tokenizing again" \
        in capsys.readouterr().err


@pytest.mark.parametrize("dataset_spec", [REVIEWS_SPEC, SUBWORDS_SPEC, get_spec("c3w2_imdb_subwords_gap")],
                         ids=["reviews", "subwords", "subwords-120"])
def test_the_stand_ins_are_small_fast_deterministic_and_shaped_as_the_real_ones(dataset_spec):
    start = time.perf_counter()
    split = load_dataset(dataset_spec, synthetic=True)
    assert time.perf_counter() - start < 5  # well under a second on an idle core; generous for a shared machine
    again = load_dataset(dataset_spec, synthetic=True)
    assert same_split(split, again) and split.source == "synthetic"
    assert (len(split.train), len(split.val)) == (400, 200) and 0.3 < float(split.train.y.mean()) < 0.7
    x = split.probe_inputs(4)
    assert x.dtype == np.int32 and (x.shape[1] == 120 if dataset_spec.data.max_length else x.shape[1] > 20)
    if dataset_spec.data.tokenizer == "wordpiece":
        assert split.vocabulary[:2] == ("[PAD]", "[UNK]") and len(split.vocabulary) <= 120
        assert split.info["spec_overrides"] == {"layers": {"vocab_size": len(split.vocabulary)}}
        assert any(token.startswith("##") and len(token) > 3 for token in split.vocabulary)
    else:
        assert {"wonderful", "awful"} <= set(split.vocabulary) and "spec_overrides" not in split.info


def test_the_real_archive_holds_25000_reviews_per_split_12500_per_class(shared_data):
    reviews = imdb.read_imdb(shared_data / "imdb" / imdb.ARCHIVE)
    assert reviews.skipped == ()
    for split in (reviews.train, reviews.test):
        assert len(split.texts) == imdb.COURSE_REVIEWS and int(split.labels.sum()) == imdb.COURSE_REVIEWS // 2
        assert split.labels[: imdb.COURSE_REVIEWS // 2].max() == 0  # neg first, then pos, each by numeric id
    assert reviews.train.texts[0].startswith("Story of a man who has unnatural feelings for a pig.")  # neg/0_3.txt


@pytest.mark.slow
def test_real_imdb_reviews_encode_as_the_v2_labs(shared_data):
    split = load_dataset(REVIEWS_SPEC, shared_data / "imdb")
    assert (len(split.train), len(split.val)) == (25_000, 25_000) and len(split.vocabulary) == 10_000
    assert split.vocabulary[:6] == ("", "[UNK]", "the", "and", "a", "of")
    lengths = np.diff(split.train.x.offsets)
    assert round(float(lengths.mean()), 1) == 232.9 and int(np.median(lengths)) == 174 and lengths.max() == 2469


@pytest.mark.slow
def test_real_imdb_subwords_learn_8000_pieces_and_load_again_from_the_cache(shared_data):
    split = load_dataset(SUBWORDS_SPEC, shared_data / "imdb" / imdb.ARCHIVE)
    assert len(split.vocabulary) == 8_000 and split.info["spec_overrides"] == {"layers": {"vocab_size": 8_000}}
    lengths = np.diff(split.train.x.offsets)
    assert round(float(lengths.mean()), 1) == 329.7 and int(np.median(lengths)) == 243 and lengths.max() == 3673
    assert float(np.mean(split.val.x.values == 1)) < 1e-4
    assert same_split(split, load_dataset(SUBWORDS_SPEC, shared_data / "imdb" / imdb.ARCHIVE))
