"""Small, learnable stand-ins with the real data's shapes and dtypes, for tests and quick runs.

Deterministic (fixed seed) and generated in memory; every DataSplit here has source "synthetic".
A tenth of the classification labels are redrawn at random, so accuracy stays below 1 and
still varies between training seeds (statistics over seeds need a non-zero spread).
"""

from __future__ import annotations

import numpy as np

from parity.catalog import ModelSpec
from parity.datasets.sarcasm import encode_split
from parity.datasets.series import load_series, windows
from parity.datasets.split import DataSplit, make_split
from parity.datasets.store import PixelScale
from parity.datasets.vision import COURSE_SCALE
from parity.spec_types import COURSE_FILE

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


def images(spec: ModelSpec) -> DataSplit:
    """Each class a fixed blocky pattern under uniform noise, as uint8 pixels scaled like the real ones.

    Images larger than Fashion-MNIST's get LARGE_IMAGE_SIZES samples, so that quick runs stay quick.
    """
    rng = np.random.default_rng(SEED)
    classes = spec.classes if spec.label_mode != "binary" else 2
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
        return pixels, _noisy(rng, drawn, classes)

    sizes = (TRAIN_SIZE, VAL_SIZE) if rows * cols * channels <= LARGE_IMAGE else LARGE_IMAGE_SIZES
    train = sample(sizes[0])
    val = train if spec.validation == "train" else sample(sizes[1])
    rescale = getattr(spec.data, "rescale", None)
    scale = COURSE_SCALE if rescale is None else PixelScale(rescale)
    generator = _generator("images", train_size=sizes[0], val_size=None if val is train else sizes[1],
                           shape=[rows, cols, channels], classes=classes, coarse=COARSE,
                           template_weight=TEMPLATE_WEIGHT, label_noise=LABEL_NOISE, rescale=rescale)
    return make_split(spec, "synthetic", train, val, "generated", {"generator": generator}, scale=scale)


def headlines(spec: ModelSpec) -> DataSplit:
    """Headlines from a small vocabulary, five words of each hinting at the class, tokenized as the real ones."""
    rng = np.random.default_rng(SEED)

    def sample(count: int) -> tuple[list[str], np.ndarray]:
        drawn = rng.integers(0, 2, count)
        texts = []
        for label in drawn:
            words = list(rng.choice(NEUTRAL_WORDS, rng.integers(4, 9)))
            words += list(rng.choice(HINT_WORDS[int(label)], HINTS_PER_HEADLINE))
            rng.shuffle(words)
            texts.append(" ".join(map(str, words)).capitalize() + str(rng.choice(["", ".", "!", "?"])))
        return texts, _noisy(rng, drawn, 2).astype(np.float32)

    generator = _generator("headlines", train_size=TRAIN_SIZE, val_size=VAL_SIZE, neutral_words=NEUTRAL_WORDS,
                           hint_words=HINT_WORDS, hints_per_headline=HINTS_PER_HEADLINE, label_noise=LABEL_NOISE,
                           tokenizer=spec.data.tokenizer, vocab_size=spec.data.vocab_size)
    return encode_split(spec, "synthetic", sample(TRAIN_SIZE), sample(VAL_SIZE), "generated", {"generator": generator})


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
