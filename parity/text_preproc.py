"""c3w1_text_preproc: the course's tokenization and padding walkthrough (C3W1), computed without either framework.

Toy sentences (the spec's `extras`): the v1 labs' Keras 2 Tokenizer(num_words=100, oov_token="<OOV>"),
its word index and sequences, unseen words as <OOV>, pad_sequences with its padding and truncation
variants; the v2 labs' TextVectorization vocabulary, its sequences and their padding. Then the C3W1
assignment on the real bbc-text.csv: the first article's words before and after `remove_stopwords`,
the vocabulary of TextVectorization() adapted on all standardized articles (v2, expected 33,088) and
of Tokenizer(oov_token="<OOV>") (v1, expected 29,714), and the labels' StringLookup(num_oov_indices=0).
`walkthrough` returns it all as one JSON-able dict, `render_markdown` as the report, `write_walkthrough`
writes both to OUT/c3w1_text_preproc/ (preproc.json, preproc.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from parity.catalog import get_spec
from parity.datasets.bbc import FILE, label_vocabulary, read_news_csv
from parity.datasets.locate import locate
from parity.datasets.sources import SOURCES
from parity.fileio import write_json_atomic, write_text_atomic
from parity.text import TextVectorization, Tokenizer, pad_sequences, remove_stopwords

MODEL_ID = "c3w1_text_preproc"
JSON_FILE, MARKDOWN_FILE = "preproc.json", "preproc.md"
TOY_NUM_WORDS, TOY_OOV = 100, "<OOV>"  # the v1 labs' Tokenizer(num_words=100, oov_token="<OOV>")
# The v1 lesson 2's sentences with words the tokenizer has not seen ("really", "loves", "manatee").
UNSEEN_SENTENCES = ("i really love my dog", "my dog loves my manatee")
# The C3W1 v1 assignment's expected Tokenizer(oov_token="<OOV>") vocabulary on the standardized articles.
EXPECTED_V1_BBC_WORDS = 29_714
SHOWN_LABELS = 10


def walkthrough(data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The toy-sentence and BBC steps with the course's expected values beside ours."""
    extras = get_spec(MODEL_ID).data.extras
    return {"model": MODEL_ID, "toy": toy_steps(list(extras["toy_sentences"]), extras["toy_pad_maxlen"],
                                                extras["toy_padding"]),
            "bbc": bbc_steps(data_dir, extras)}


def toy_steps(sentences: list[str], maxlen: int, padding: str) -> dict[str, Any]:
    """Tokenizer and TextVectorization on the toy sentences, and the padding variants of their sequences."""
    tokenizer = Tokenizer(num_words=TOY_NUM_WORDS, oov_token=TOY_OOV)
    tokenizer.fit_on_texts(sentences)
    sequences = tokenizer.texts_to_sequences(sentences)
    variants = {
        "default (pre, to the longest)": pad_sequences(sequences),
        "padding='post'": pad_sequences(sequences, padding="post"),
        f"maxlen={maxlen}": pad_sequences(sequences, maxlen=maxlen),
        f"maxlen={maxlen}, truncating='post'": pad_sequences(sequences, maxlen=maxlen, truncating="post"),
        f"maxlen={maxlen}, padding='post', truncating='post'":
            pad_sequences(sequences, maxlen=maxlen, padding="post", truncating="post"),
    }
    vectorizer = TextVectorization()
    vectorizer.adapt(sentences)
    ids = vectorizer(sentences)
    return {
        "sentences": sentences,
        "tokenizer": {"num_words": TOY_NUM_WORDS, "oov_token": TOY_OOV, "word_index": tokenizer.word_index,
                      "sequences": sequences,
                      "unseen": {"sentences": list(UNSEEN_SENTENCES),
                                 "sequences": tokenizer.texts_to_sequences(UNSEEN_SENTENCES)},
                      "padded": {name: array.tolist() for name, array in variants.items()}},
        "text_vectorization": {
            "vocabulary": vectorizer.get_vocabulary(), "sequences": ids,
            "padded_to_longest_post": pad_sequences(ids, padding="post").tolist(),
            f"pad_sequences(padding={padding!r}, maxlen={maxlen})":
                pad_sequences(ids, maxlen=maxlen, padding=padding).tolist()},
    }


def bbc_steps(data_dir: str | os.PathLike | None, extras: Any) -> dict[str, Any]:
    """The C3W1 assignment's numbers on bbc-text.csv (from `data_dir`, PARITY_DATA_DIR or the download cache)."""
    files, _ = locate(SOURCES["bbc-text"], data_dir)
    records = read_news_csv(files[FILE])
    standardized = [remove_stopwords(text) for text in records.texts]
    vectorizer = TextVectorization()
    vectorizer.adapt(standardized)
    tokenizer = Tokenizer(oov_token=TOY_OOV)
    tokenizer.fit_on_texts(standardized)
    classes = label_vocabulary(records.labels)
    ids = {label: index for index, label in enumerate(classes)}
    expected_words = list(extras["expected_first_article_words"])
    return {
        "file": str(records.path), "records": len(records.texts), "skipped_records": len(records.skipped),
        "first_labels": records.labels[:5],
        "first_article_words": {"original": len(records.texts[0].split()), "after_stopwords":
                                len(standardized[0].split()), "expected": expected_words},
        "vocabulary_size": {"text_vectorization": vectorizer.vocabulary_size(),
                            "expected": extras["expected_bbc_vocab_size"],
                            "oov_in_vocabulary": "[UNK]" in vectorizer.get_vocabulary(),
                            "keras2_tokenizer": len(tokenizer.word_index), "expected_keras2": EXPECTED_V1_BBC_WORDS},
        "padded_shape": [len(standardized), max(len(sequence) for sequence in vectorizer(standardized))],
        "label_lookup": {"vocabulary": classes, "expected": list(extras["expected_label_vocab"]),
                         "first_labels": records.labels[:SHOWN_LABELS],
                         "first_ids": [ids[label] for label in records.labels[:SHOWN_LABELS]]},
    }


def render_markdown(result: dict[str, Any]) -> str:
    """The walkthrough as a Markdown report, ours beside the course's expected values, differences explained."""
    toy, bbc = result["toy"], result["bbc"]
    tokenizer, vectorization = toy["tokenizer"], toy["text_vectorization"]
    lines = [f"# {result['model']}: tokenization and padding", "", "## Toy sentences", "",
             *[f"- {sentence}" for sentence in toy["sentences"]], "",
             f"Keras 2 `Tokenizer(num_words={tokenizer['num_words']}, oov_token={tokenizer['oov_token']!r})`:", "",
             f"- word_index: `{tokenizer['word_index']}`", f"- texts_to_sequences: `{tokenizer['sequences']}`",
             *[f"- unseen `{sentence}`: `{sequence}`"
               for sentence, sequence in zip(tokenizer["unseen"]["sentences"], tokenizer["unseen"]["sequences"])],
             "", "pad_sequences:", ""]
    for name, rows in tokenizer["padded"].items():
        lines.append(f"- {name}: `{rows}`")
    lines += ["", f"Keras 3 `TextVectorization()`: vocabulary `{vectorization['vocabulary']}`, sequences "
              f"`{vectorization['sequences']}`", ""]
    lines += [f"- {name}: `{rows}`" for name, rows in vectorization.items() if name.startswith(("padded", "pad_"))]
    words, vocabulary, labels = bbc["first_article_words"], bbc["vocabulary_size"], bbc["label_lookup"]
    difference = vocabulary["text_vectorization"] - vocabulary["expected"]
    lines += [
        "", "## BBC news (C3W1 assignment)", "", f"File `{bbc['file']}`: {bbc['records']:,} records "
        f"({bbc['skipped_records']} skipped); first labels {bbc['first_labels']}.", "",
        "| quantity | ours | course |", "|---|---:|---:|",
        f"| first article, words | {words['original']} | {words['expected'][0]} |",
        f"| first article, words after stopword removal | {words['after_stopwords']} | {words['expected'][1]} |",
        f"| TextVectorization vocabulary after stopword removal (v2) | {vocabulary['text_vectorization']:,} | "
        f"{vocabulary['expected']:,} |",
        f"| Tokenizer(oov_token='<OOV>') word_index (v1) | {vocabulary['keras2_tokenizer']:,} | "
        f"{vocabulary['expected_keras2']:,} |", "",
        f"Padded sequences (TextVectorization pads to the longest article): shape {tuple(bbc['padded_shape'])}.", "",
        f"StringLookup(num_oov_indices=0) on all labels: `{labels['vocabulary']}` (course: `{labels['expected']}`); "
        f"first labels {labels['first_labels']} -> {labels['first_ids']}.", "",
        "How ours is computed: the assignment's `remove_stopwords` (Python lower-casing, split on whitespace, its "
        "153-word list dropped, words joined by one space), then `TextVectorization()` adapted on all 2,225 "
        "standardized articles, whose default standardization lower-cases ASCII letters and deletes ASCII "
        "punctuation (so `said,` and `said` become one token) and counts '' and '[UNK]' in the vocabulary.",
        "",
        "The same as the course's." if not difference else
        f"The vocabulary differs from the course's by {difference:+,}: this file is not the course's bbc-text.csv "
        "(on the course's 2,225-record file, sha256 fdaee0f7..., the sizes above are the course's).",
        "",
        "The C3W2 classifier (c3w2_bbc_embed_gap) standardizes differently: the v2 assignment's `standardize_func` "
        "deletes its own stopword list with one regex per word (the contractions replaced by their endings 's, "
        "'d, ...) before the punctuation, and keeps the 1,000 most frequent tokens of the 1,780 training articles.",
    ]
    return "\n".join(lines) + "\n"


def write_walkthrough(result: dict[str, Any], out_dir: str | os.PathLike) -> Path:
    """Write preproc.json and preproc.md into OUT/c3w1_text_preproc/; returns that directory."""
    directory = Path(out_dir) / MODEL_ID
    directory.mkdir(parents=True, exist_ok=True)
    write_json_atomic(directory / JSON_FILE, result)
    write_text_atomic(directory / MARKDOWN_FILE, render_markdown(result))
    return directory
