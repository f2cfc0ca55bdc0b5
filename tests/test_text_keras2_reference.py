"""parity.text against the real Keras 2 (tf_keras) Tokenizer and pad_sequences.

tf_keras imports TensorFlow, so it runs in a child process: TensorFlow never loads into the
test process, where torch may be imported too (the two crash together, see DESIGN.md).
"""

import importlib.util

import pytest

from cli_helpers import run_script_on_cases

from parity.datasets.sarcasm import read_headlines
from parity.text import Tokenizer, pad_sequences

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("tf_keras") is None,
        reason="tf_keras (the Keras 2 reference) is not installed: pip install tf-keras==2.21.0",
    ),
]

KERAS2_SCRIPT = """
import json, sys
from tf_keras.preprocessing.text import Tokenizer
from tf_keras.utils import pad_sequences
results = []
for case in json.load(open(sys.argv[1])):
    tokenizer = Tokenizer(num_words=case["num_words"], oov_token=case["oov_token"])
    tokenizer.fit_on_texts(case["fit"])
    sequences = tokenizer.texts_to_sequences(case["encode"])
    padded = {
        f"{maxlen}-{padding}-{truncating}": pad_sequences(
            sequences, maxlen=maxlen, padding=padding, truncating=truncating
        ).tolist()
        for maxlen, padding, truncating in case["pads"]
    }
    results.append({"word_index": list(tokenizer.word_index.items()), "sequences": sequences, "padded": padded})
json.dump(results, open(sys.argv[2], "w"))
"""

PADS = [(None, "pre", "pre"), (3, "pre", "post"), (3, "post", "pre"), (5, "post", "post")]

TRICKY = [
    "Hello, World!  Hello again...",
    "it's  a  dog's life -- isn't it?",
    "ÉCOLE école Straße STRASSE naïve café",
    "“curly quotes” and — em dashes…",
    "tabs\tand\nnewlines\r\nand carriage returns",
    "ties tie tie ties b a a b",
    "emoji 🙂 and CJK 日本語 and Ⅻ",
    "under_score back\\slash [brackets] {braces} <angle> oov OOV <OOV>",
    "",
    "     ",
]


def keras2(tmp_path, cases: list[dict]) -> list[dict]:
    return run_script_on_cases(KERAS2_SCRIPT, tmp_path, cases)


def ours(case: dict) -> dict:
    tokenizer = Tokenizer(num_words=case["num_words"], oov_token=case["oov_token"])
    tokenizer.fit_on_texts(case["fit"])
    sequences = tokenizer.texts_to_sequences(case["encode"])
    padded = {
        f"{maxlen}-{padding}-{truncating}": pad_sequences(sequences, maxlen, padding, truncating).tolist()
        for maxlen, padding, truncating in case["pads"]
    }
    return {"word_index": [list(item) for item in tokenizer.word_index.items()], "sequences": sequences, "padded": padded}


def test_tokenizer_matches_keras2_on_tricky_strings(tmp_path):
    cases = [
        {"num_words": num_words, "oov_token": oov, "fit": TRICKY[:6] + TRICKY[7:], "encode": TRICKY, "pads": PADS}
        for num_words, oov in [(None, None), (None, "<OOV>"), (6, "<OOV>"), (6, None), (None, "oov"), (0, "<OOV>")]
    ]
    for case, expected in zip(cases, keras2(tmp_path, cases)):
        assert ours(case) == expected, (case["num_words"], case["oov_token"])


def test_tokenizer_matches_keras2_on_sarcasm_headlines(tmp_path, shared_data):
    headlines, _ = read_headlines(shared_data / "sarcasm" / "sarcasm.json")
    case = {"num_words": 10000, "oov_token": "<OOV>", "fit": headlines[:20000], "encode": headlines, "pads": [(100, "post", "post")]}
    [expected] = keras2(tmp_path, [case])
    assert ours(case) == expected
