"""parity.text.TextVectorization against the real Keras 3 `keras.layers.TextVectorization`.

Keras imports TensorFlow, so it runs in a child process: TensorFlow never loads into the test
process, where torch may be imported too (the two crash together, see DESIGN.md). The child does
what the course's v2 labs do (C3_W3_Lab_5): adapt on the training sentences, map the layer over a
tf.data.Dataset of sentences, one ragged batch, then `keras.utils.pad_sequences`.
"""

import importlib.util
import re

import numpy as np
import pytest

from cli_helpers import run_script_on_cases
from conftest import SHARED_DATA

import parity.text
from parity.catalog import get_spec
from parity.datasets import load_dataset
from parity.datasets.sarcasm import read_headlines
from parity.plan import collate
from parity.text import KERAS_STRIP_PUNCTUATION_REGEX, TextVectorization, pad_sequences

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("keras") is None or importlib.util.find_spec("tensorflow") is None,
    reason="Keras 3 with TensorFlow (the reference) is not installed",
)

KERAS3_SCRIPT = """
import json, sys
import keras
import tensorflow as tf
results = []
for case in json.load(open(sys.argv[1])):
    layer = keras.layers.TextVectorization(max_tokens=case["max_tokens"])
    layer.adapt(case["fit"])
    sentences = tf.data.Dataset.from_tensor_slices(case["encode"]).map(layer)
    ragged = sentences.ragged_batch(len(case["encode"])).get_single_element()
    padded = keras.utils.pad_sequences(ragged.numpy(), maxlen=case["maxlen"], padding="pre", truncating="post")
    results.append({
        "vocabulary": [str(token) for token in layer.get_vocabulary()],
        "ids": ragged.to_list(),
        "padded": padded.tolist(),
    })
json.dump(results, open(sys.argv[2], "w"))
"""

# Hand-picked cases: ASCII and non-ASCII capitals, every ASCII punctuation character, Unicode
# punctuation and spaces (no-break, hair, ideographic), control characters, empty texts.
TRICKY = [
    "Hello, World!  Hello again...",
    "it's  a  dog's life -- isn't it?",
    "ÉCOLE école Straße STRASSE naïve café ΣΊΣΥΦΟΣ İstanbul",
    "“curly quotes” and — em dashes… ‘single’",
    "tabs\tand\nnewlines\r\nand\vvertical\fform feeds",
    "no\u00a0break hair\u200aspace ideographic\u3000space file\x1cseparator next\x85line",
    "emoji 🙂 and CJK 日本語 and Ⅻ",
    "under_score back\\slash [brackets] {braces} <angle> ~tilde~ `tick` ^caret^ |pipe| @at #hash $ % & * + = [UNK]",
    "",
    "     ",
]
# Short words from a small alphabet with capitals, non-ASCII letters and punctuation attached:
# most words occur once or twice, so the vocabulary order is decided almost entirely by ties.
LETTERS = list("abcdeABCDEéÉßσΣ") + ["日", "🙂"]
AFFIXES = ["", "", "", ",", ".", "!", "'s", "-", "\u00a0x", "“", "…"]
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", "\u00a0"]


def tie_heavy_texts(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(count):
        words = []
        for _ in range(rng.integers(0, 9)):
            word = "".join(rng.choice(LETTERS, rng.integers(1, 4)))
            words.append(str(rng.choice(AFFIXES)) + word + str(rng.choice(AFFIXES)))
            words.append(str(rng.choice(SEPARATORS)))
        texts.append("".join(words))
    return texts


def generated_cases() -> list[dict]:
    fit, encode = TRICKY + tie_heavy_texts(400, seed=0), TRICKY + tie_heavy_texts(100, seed=1)
    return [
        {"max_tokens": max_tokens, "fit": fit, "encode": fit + encode, "maxlen": 6}
        for max_tokens in (None, 3, 7, 300)  # Keras 3.15 fails to adapt with max_tokens=2
    ]


def sarcasm_case() -> dict | None:
    path = SHARED_DATA / "sarcasm" / "sarcasm.json"
    if not path.is_file():
        return None
    headlines, _ = read_headlines(path)
    return {"max_tokens": 10_000, "fit": headlines[:20_000], "encode": headlines, "maxlen": 32}


def keras3(directory, cases: list[dict]) -> list[dict]:
    return run_script_on_cases(KERAS3_SCRIPT, directory, cases)


def ours(case: dict) -> dict:
    layer = TextVectorization(max_tokens=case["max_tokens"])
    layer.adapt(case["fit"])
    ids = layer(case["encode"])
    padded = pad_sequences(ids, maxlen=case["maxlen"], padding="pre", truncating="post")
    return {"vocabulary": layer.get_vocabulary(), "ids": ids, "padded": padded.tolist()}


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> dict[str, list[tuple[dict, dict]]]:
    """(case, Keras' result) pairs, "generated" and "sarcasm" (empty without the shared data): one Keras process."""
    generated, real = generated_cases(), sarcasm_case()
    cases = generated + ([real] if real else [])
    results = keras3(tmp_path_factory.mktemp("keras3"), cases)
    pairs = list(zip(cases, results))
    return {"generated": pairs[: len(generated)], "sarcasm": pairs[len(generated) :]}


def test_generated_text_with_ties_punctuation_and_unicode_matches_keras3(compared):
    for case, expected in compared["generated"]:
        assert ours(case) == expected, case["max_tokens"]
    unbounded = compared["generated"][0][1]["vocabulary"]
    assert len(unbounded) > 1000  # the cases do exercise the order of many tied tokens
    assert len(compared["generated"][1][1]["vocabulary"]) == 3  # max_tokens counts the two reserved ids


def test_sarcasm_headlines_match_keras3(compared):
    if not compared["sarcasm"]:
        pytest.skip(f"shared course data not found at {SHARED_DATA}")
    [(case, expected)] = compared["sarcasm"]
    assert ours(case) == expected
    assert len(expected["vocabulary"]) == 10_000 and len(expected["ids"]) == 26_709
    # End to end: the loader's batches for c3w3_sarcasm_bilstm are the course's padded sequences.
    split = load_dataset(get_spec("c3w3_sarcasm_bilstm"), data_dir=SHARED_DATA / "sarcasm")
    batches = [collate(source, np.arange(len(source)))[0] for source in (split.train, split.val)]
    assert np.concatenate(batches).tolist() == expected["padded"]


def _ties_ascending(counts):
    return sorted(counts, key=lambda token: (-counts[token], token))


def _ties_first_seen(counts):
    return sorted(counts, key=lambda token: -counts[token])  # the Keras 2 Tokenizer's rule


PLANTED_ERRORS = {
    "ties_ascending": ("vocabulary_order", _ties_ascending),
    "ties_first_seen": ("vocabulary_order", _ties_first_seen),
    "unicode_lowercase": ("standardize", lambda text: re.sub(KERAS_STRIP_PUNCTUATION_REGEX, "", text.lower())),
    "unicode_whitespace": ("split_whitespace", str.split),
}
# The sarcasm headlines hold no non-ASCII capital letter, so only the generated text tells
# ASCII from Unicode lower-casing; their no-break and hair spaces do tell the two splits apart.
SHOWS_ON_SARCASM = {"ties_ascending", "ties_first_seen", "unicode_whitespace"}


@pytest.mark.parametrize("planted", sorted(PLANTED_ERRORS))
def test_the_comparison_fails_on_a_planted_error(compared, monkeypatch, planted):
    name, wrong = PLANTED_ERRORS[planted]
    monkeypatch.setattr(parity.text, name, wrong)
    assert any(ours(case) != expected for case, expected in compared["generated"])
    if compared["sarcasm"] and planted in SHOWS_ON_SARCASM:
        [(case, expected)] = compared["sarcasm"]
        assert ours(case) != expected
