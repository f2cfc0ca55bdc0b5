"""Small, learnable stand-ins with the real data's shapes and dtypes, for tests and quick runs.

Deterministic (fixed seed) and generated in memory (the Sentiment140 stand-in as files in the cache, read by
the real loader); every DataSplit here has source "synthetic".
A tenth of the classification labels are redrawn at random, so accuracy stays below 1 and
still varies between training seeds (statistics over seeds need a non-zero spread).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os

import numpy as np

from parity import subwords
from parity.cache import cache_root
from parity.catalog import ModelSpec
from parity.datasets import bbc, imdb, sentiment140, sign_language, textgen
from parity.datasets.image_folder import pixel_scale
from parity.datasets.sarcasm import encode_split
from parity.datasets.series import load_series, windows
from parity.datasets.split import DataSplit, make_split
from parity.datasets.vision import COURSE_SCALE
from parity.fileio import write_text_atomic
from parity.spec_types import COURSE_FILE, ImageFolderData

SEED = 20_240_501
TRAIN_SIZE, VAL_SIZE = 1200, 300
LABEL_NOISE = 0.1  # fraction of labels redrawn uniformly at random
SERIES_STEPS, SERIES_SPLIT = 500, 400
SUNSPOT_CYCLE = 132  # months: the mean solar cycle, 11 years
COARSE = 7  # each class's template is a random 7x7 pattern scaled up to the image size
TEMPLATE_WEIGHT = 0.3  # pixel = 0.3 * class template + 0.7 * uniform noise: learnt in 2-3 epochs
LARGE_IMAGE, LARGE_IMAGE_SIZES = 32 * 32 * 3, (240, 60)  # values per image above which fewer images are made
CHUNK = 100

NEUTRAL_WORDS = (
    "area man woman local report city new study finds year old says state family world nation "
    "government school plan time people day week life home company team music"
).split()
HINT_WORDS = {1: "clearly totally heroic somehow".split(), 0: "announces officials reveals quarterly".split()}
HINTS_PER_HEADLINE = 5
NEWS_HINT_WORDS = {
    "sport": "match coach goal season league".split(), "business": "shares profit market bank sales".split(),
    "politics": "minister election party vote labour".split(), "tech": "software users mobile digital net".split(),
    "entertainment": "film music star award band".split(),
}
NEWS_WORDS_PER_ARTICLE = (30, 60)  # neutral words of an article; each gets as many hint words as a headline
REVIEW_WORDS = ("the movie film plot acting actor actress scene story characters director minutes ending script cast "
                "camera music watched watching rewatched seen really just even though this that it was is").split()
REVIEW_HINT_WORDS = {1: "wonderful brilliant masterpiece moving superb".split(),
                     0: "awful boring dreadful unwatchable waste".split()}
REVIEW_SIZES = (400, 200)  # training and test reviews
REVIEW_LENGTH = (20, 60)  # words of a review besides its hint words
REVIEW_SUBWORDS = 120  # the stand-in's learnt subword vocabulary (the real reviews': 8,000)
LYRIC_WORDS = "the girls and boys danced all round at lanigans ball in dublin town".split()
LYRIC_LINES, LYRIC_LENGTH = 120, (1, 9)  # a line of 1 word yields no n-gram (as in the real corpora)
GLOVE_DIM_SCALE = 0.1  # stand-in GloVe vectors: noise of this scale, hint words offset by +-1 in the first value


def images(spec: ModelSpec, label_ids: tuple[int, ...] | None = None) -> DataSplit:
    """Each class a fixed blocky pattern under uniform noise, as uint8 pixels scaled like the real ones.

    Images larger than Fashion-MNIST's get LARGE_IMAGE_SIZES samples, so that quick runs stay quick.
    `label_ids`: the class ids the data holds, when not all of the model's (default: all).
    """
    rng = np.random.default_rng(SEED)
    ids = np.asarray(label_ids if label_ids is not None else range(spec.classes if spec.label_mode != "binary" else 2))
    classes = len(ids)
    rows, cols = spec.input_shape[:2]
    channels = spec.input_shape[2] if len(spec.input_shape) == 3 else 1
    block = -(-max(rows, cols) // COARSE)
    coarse = rng.random((classes, COARSE, COARSE, channels))
    templates = coarse.repeat(block, axis=1).repeat(block, axis=2)[:, :rows, :cols]

    def sample(count: int) -> tuple[np.ndarray, np.ndarray]:
        drawn = rng.permutation(np.arange(count) % classes)
        pixels = np.empty((count, rows, cols, channels), dtype=np.uint8)
        for start in range(0, count, CHUNK):  # float64 noise for a chunk at a time, not for the whole set
            part = drawn[start : start + CHUNK]
            noise = rng.random((len(part), rows, cols, channels))
            pixels[start : start + CHUNK] = np.round((TEMPLATE_WEIGHT * templates[part] + (1 - TEMPLATE_WEIGHT) * noise) * 255)
        return pixels, ids[_noisy(rng, drawn, classes)]

    sizes = (TRAIN_SIZE, VAL_SIZE) if rows * cols * channels <= LARGE_IMAGE else LARGE_IMAGE_SIZES
    train = sample(sizes[0])
    val = train if spec.validation == "train" else sample(sizes[1])
    image_folders = isinstance(spec.data, ImageFolderData)
    scale = pixel_scale(spec.data) if image_folders else COURSE_SCALE
    generator = _generator("images", train_size=sizes[0], val_size=None if val is train else sizes[1],
                           shape=[rows, cols, channels], classes=classes, coarse=COARSE,
                           template_weight=TEMPLATE_WEIGHT, label_noise=LABEL_NOISE,
                           rescale=spec.data.rescale if image_folders else None,
                           **({"preprocess": spec.data.preprocess} if image_folders and spec.data.preprocess else {}),
                           **({"label_ids": [int(i) for i in ids]} if label_ids is not None else {}))
    return make_split(spec, "synthetic", train, val, "generated", {"generator": generator}, scale=scale)


def sign_language_images(spec: ModelSpec) -> DataSplit:
    """Sign-language MNIST's stand-in: 28x28 greyscale letters of the 24 ids the real files hold (0..24 but 9)."""
    return images(spec, sign_language.PRESENT_LABELS)


def headlines(spec: ModelSpec) -> DataSplit:
    """Headlines from a small vocabulary, five words of each hinting at the class, tokenized as the real ones."""
    rng = np.random.default_rng(SEED)

    def sample(count: int) -> tuple[list[str], np.ndarray]:
        texts, labels = headline_texts(rng, count)
        return texts, labels.astype(np.float32)

    generator = _generator("headlines", train_size=TRAIN_SIZE, val_size=VAL_SIZE, neutral_words=NEUTRAL_WORDS,
                           hint_words=HINT_WORDS, hints_per_headline=HINTS_PER_HEADLINE, label_noise=LABEL_NOISE,
                           tokenizer=spec.data.tokenizer, vocab_size=spec.data.vocab_size)
    return encode_split(spec, "synthetic", sample(TRAIN_SIZE), sample(VAL_SIZE), "generated", {"generator": generator})


def news(spec: ModelSpec) -> DataSplit:
    """BBC-style articles: neutral and stop words with five hint words of their category, encoded as the real ones."""
    rng = np.random.default_rng(SEED)
    categories = list(NEWS_HINT_WORDS)
    drawn = _noisy(rng, rng.integers(0, len(categories), TRAIN_SIZE + VAL_SIZE), len(categories))
    texts = []
    for category in drawn:
        words = list(rng.choice(NEUTRAL_WORDS + ["the", "and", "of", "it's"], rng.integers(*NEWS_WORDS_PER_ARTICLE)))
        words += list(rng.choice(NEWS_HINT_WORDS[categories[category]], HINTS_PER_HEADLINE))
        rng.shuffle(words)
        texts.append(" ".join(map(str, words)))
    labels = [categories[category] for category in drawn]
    generator = _generator("news", records=TRAIN_SIZE + VAL_SIZE, hint_words=NEWS_HINT_WORDS,
                           words_per_article=NEWS_WORDS_PER_ARTICLE, label_noise=LABEL_NOISE)
    return bbc.encode_news(spec, "synthetic", texts, labels, "generated", {"generator": generator})


def lyrics(spec: ModelSpec) -> DataSplit:
    """A corpus of short lines over a few words, each line a window of one fixed verse: learnable next words."""
    rng = np.random.default_rng(SEED)
    lines = []
    for _ in range(LYRIC_LINES):
        start, length = rng.integers(0, len(LYRIC_WORDS)), rng.integers(*LYRIC_LENGTH)
        lines.append(" ".join(LYRIC_WORDS[(start + step) % len(LYRIC_WORDS)] for step in range(length)).capitalize())
    generator = _generator("lyrics", words=LYRIC_WORDS, lines=LYRIC_LINES, line_length=LYRIC_LENGTH)
    return textgen.ngram_split(spec, "synthetic", "\n".join(lines), "generated", {"generator": generator})


def tweets(spec: ModelSpec) -> DataSplit:
    """Headline-like tweets in Sentiment140's CSV layout and a GloVe-format file for their words, written to
    $PARITY_CACHE_DIR/synthetic/<dataset>/ and read by the real loader (every file format check included)."""
    rng = np.random.default_rng(SEED)
    folder = cache_root() / "synthetic" / spec.dataset
    texts, polarity = headline_texts(rng, TRAIN_SIZE + VAL_SIZE)
    rows = [[str(4 * label), str(1_467_810_369 + index), "Mon Apr 06 22:19:45 PDT 2009", "NO_QUERY", f"user{index}",
             text] for index, (text, label) in enumerate(zip(texts, polarity))]
    table = io.StringIO()
    csv.writer(table, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    # GloVe lacks the last four neutral words, so that some rows of the matrix stay zero (as for real tweets).
    words = sorted({word for words in HINT_WORDS.values() for word in words} | set(NEUTRAL_WORDS[:-4]))
    vectors = rng.normal(scale=GLOVE_DIM_SCALE, size=(len(words), spec.layers.embedding_dim))
    for index, word in enumerate(words):
        vectors[index, 0] += 1.0 if word in HINT_WORDS[1] else -1.0 if word in HINT_WORDS[0] else 0.0
    glove = "".join(f"{word} {' '.join(f'{value:.5f}' for value in vector)}\n" for word, vector in zip(words, vectors))
    files = {sentiment140.TWEETS_FILE: table.getvalue(), sentiment140.GLOVE_FILE: glove}
    for name, text in files.items():
        path = folder / name
        if not (path.is_file() and path.read_text(encoding="utf-8") == text):
            folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, text)
    generator = _generator("tweets", records=len(rows), hint_words=HINT_WORDS, glove_words=len(words),
                           glove_scale=GLOVE_DIM_SCALE, label_noise=LABEL_NOISE)
    split = sentiment140.load_files(spec, folder / sentiment140.TWEETS_FILE, folder / sentiment140.GLOVE_FILE,
                                    "synthetic", {"generator": generator})
    # The files are made from the generator's parameters: those identify the stand-in, as for every other one.
    return dataclasses.replace(split, info={key: value for key, value in split.info.items() if key != "files"})


def reviews(spec: ModelSpec, vocab: str | os.PathLike | None = None) -> DataSplit:
    """Movie reviews over a small vocabulary, five words of each hinting at its label, with the real reviews' <br />
    breaks; encoded as the real ones (imdb-subwords: a vocabulary of REVIEW_SUBWORDS learnt from them, or `vocab`)."""
    rng = np.random.default_rng(SEED)

    def sample(count: int) -> tuple[list[str], np.ndarray]:
        drawn = rng.integers(0, 2, count)
        texts = []
        for label in drawn:
            words = list(rng.choice(REVIEW_WORDS, rng.integers(*REVIEW_LENGTH)))
            words += list(rng.choice(REVIEW_HINT_WORDS[int(label)], HINTS_PER_HEADLINE))
            rng.shuffle(words)
            cut = int(rng.integers(1, len(words)))
            texts.append(f"{' '.join(words[:cut]).capitalize()}.<br /><br />{' '.join(words[cut:]).capitalize()}!")
        return texts, _noisy(rng, drawn, 2).astype(np.float32)

    train, val = sample(REVIEW_SIZES[0]), sample(REVIEW_SIZES[1])
    settings = {"sizes": REVIEW_SIZES, "words": REVIEW_WORDS, "hint_words": REVIEW_HINT_WORDS,
                "length": REVIEW_LENGTH, "label_noise": LABEL_NOISE, "tokenizer": spec.data.tokenizer}
    if spec.data.tokenizer != "wordpiece":
        generator = _generator("reviews", **settings, vocab_size=spec.data.vocab_size)
        return encode_split(spec, "synthetic", train, val, "generated", {"generator": generator})
    vocabulary, vocab_info, _ = imdb.subword_vocabulary(spec, train[0], vocab, REVIEW_SUBWORDS)
    generator = _generator("reviews", **settings, vocabulary_sha256=subwords.vocabulary_sha256(vocabulary))
    encoded = imdb.encode_subwords(vocabulary, train[0], val[0], vocab_info)
    return imdb.subword_split(spec, "synthetic", encoded, train[1], val[1], "generated", {"generator": generator})


def headline_texts(rng: np.random.Generator, count: int) -> tuple[list[str], np.ndarray]:
    """`count` headlines from a small vocabulary, five words of each hinting at its 0/1 label (a tenth redrawn)."""
    drawn = rng.integers(0, 2, count)
    texts = []
    for label in drawn:
        words = list(rng.choice(NEUTRAL_WORDS, rng.integers(4, 9)))
        words += list(rng.choice(HINT_WORDS[int(label)], HINTS_PER_HEADLINE))
        rng.shuffle(words)
        texts.append(" ".join(map(str, words)).capitalize() + str(rng.choice(["", ".", "!", "?"])))
    return texts, _noisy(rng, drawn, 2)


def series(spec: ModelSpec, variant: str | None = None) -> DataSplit:
    """The course's series formula (`variant`, default the lab's) over fewer steps, so that training stays quick."""
    return load_series(spec, variant, "synthetic", SERIES_STEPS, SERIES_SPLIT)


def file_series(spec: ModelSpec) -> DataSplit:
    """A stand-in for a CSV series, windowed as the spec says: a yearly season in daily steps (temperatures),
    or an 11-year cycle in monthly steps (sunspots): non-negative, as sunspot numbers are."""
    time = np.arange(SERIES_STEPS)
    if spec.dataset == "sunspots":
        settings = {"amplitude": 120.0, "period": SUNSPOT_CYCLE, "noise_level": 15.0, "floor": 0.0}
        season = np.sin(np.pi * time / SUNSPOT_CYCLE) ** 2
    else:
        settings = {"amplitude": 5.0, "period": 365, "noise_level": 2.0, "floor": None}
        season = 2.0 + np.cos(2 * np.pi * time / 365)  # 10 +- 5 degrees
    noise = np.random.default_rng(SEED).normal(size=SERIES_STEPS) * settings["noise_level"]
    values = settings["amplitude"] * season + noise
    if settings["floor"] is not None:
        values = np.maximum(values, settings["floor"])
    values = values.astype(np.float32)
    train, val = windows(values, SERIES_SPLIT, spec.data.window_size)
    generator = _generator("file_series", dataset=spec.dataset, steps=SERIES_STEPS, split_time=SERIES_SPLIT,
                           window_size=spec.data.window_size, **settings)
    return make_split(spec, "synthetic", train, val, "generated",
                      {"series": COURSE_FILE, "steps": SERIES_STEPS, "split_time": SERIES_SPLIT, "generator": generator})


def _generator(function: str, **parameters: object) -> dict[str, object]:
    """The parameters that make a stand-in, for its provenance (parity.provenance hashes them)."""
    return {"function": f"{__name__}.{function}", "seed": SEED, **parameters}


def _noisy(rng: np.random.Generator, labels: np.ndarray, classes: int) -> np.ndarray:
    redraw = rng.random(len(labels)) < LABEL_NOISE
    return np.where(redraw, rng.integers(0, classes, len(labels)), labels)
