"""Part 3 (C3): Natural Language Processing in TensorFlow. Source: shared/course_models.md section 5."""

from collections.abc import Callable
from dataclasses import replace

from parity.spec_types import (
    BigruClassifier,
    BilstmClassifier,
    Conv1dClassifier,
    EmbeddingFlattenClassifier,
    EmbeddingGapClassifier,
    Generation,
    GloveConvLstmClassifier,
    Layers,
    ModelSpec,
    Optimizer,
    Reference,
    TextData,
    TextGenData,
    TextGenerator,
)

_ADAM = Optimizer("adam", learning_rate=1e-3)

IMDB_SUBWORDS_VOCAB_URL = "https://storage.googleapis.com/tensorflow-1-public/course3/imdb_vocab_subwords.txt"
BBC_TEXT_URL = "https://storage.googleapis.com/learning-datasets/bbc-text.csv"
SARCASM_URL_V2 = "https://storage.googleapis.com/tensorflow-1-public/course3/sarcasm.json"

# v2 IMDB subwords (course_models.md 5.5-5.8): the course's WordPiece vocabulary file, 7,635 entries incl. [PAD], [UNK].
_IMDB_SUBWORDS = {
    "tokenizer": "wordpiece",
    "vocab_size": 7_635,
    "reserved_tokens": ("[PAD]", "[UNK]"),
    "urls": {"vocab": IMDB_SUBWORDS_VOCAB_URL},
    "shuffle_buffer": 10_000,
}
# v2 sarcasm for the C3W3 labs (5.10, 5.11): TextVectorization, then pad_sequences pre-padding, post-truncation.
_SARCASM_C3W3 = {
    "tokenizer": "text_vectorization",
    "vocab_size": 10_000,
    "max_length": 32,
    "padding": "pre",
    "truncating": "post",
    "training_size": 20_000,
    "urls": {"data": SARCASM_URL_V2},
}
# v2 IMDB reviews (c3w2_imdb_embed_flatten, c3w3_imdb_gru_lstm_conv): 10k-word TextVectorization, pre-padded to 120.
_IMDB_REVIEWS_V2 = TextData(
    tokenizer="text_vectorization",
    vocab_size=10_000,
    max_length=120,
    padding="pre",
    truncating="post",
    shuffle_buffer=1000,
)
# Next-word text generation (5.13-5.15): every prefix (length >= 2) of each lower-cased line,
# pre-padded to the longest; one-hot labels (label_mode "categorical"), no validation data, 100 words generated.
_TEXTGEN = {
    "lowercase": True,
    "line_split": "\n",
    "min_ngram_length": 2,
    "padding": "pre",
}
_NEXT_WORDS = 100

# The parameter count of each classifier whose vocabulary the data fixes (course_params None), as a formula of its
# resolved layers: the embedding table plus the parameters beside it, which the course's counts give (v1 counts
# are for the subwords8k vocabulary, 8,185 tokens, with the same 64-wide embedding).
_V1_SUBWORDS8K_TABLE = 8_185 * 64
DATA_SIZED_PARAMS: dict[str, Callable[[Layers], int]] = {
    "c3w2_imdb_subwords_gap": lambda h: h.vocab_size * h.embedding_dim + 524_237 - _V1_SUBWORDS8K_TABLE,  # shown
    "c3w3_imdb_bilstm1": lambda h: h.vocab_size * h.embedding_dim + 598_209 - _V1_SUBWORDS8K_TABLE,  # computed
    "c3w3_imdb_bilstm2": lambda h: h.vocab_size * h.embedding_dim + 37_377,  # v2: "embedding + 37,377"
    "c3w3_imdb_conv1d": lambda h: h.vocab_size * h.embedding_dim + 573_249 - _V1_SUBWORDS8K_TABLE,  # shown
    "c3w3_sentiment140_glove": lambda h: h.vocab_size * h.embedding_dim + 65_153,  # frozen table + trainable
    # Next-word generators, embedding + BiLSTM(u) + Dense(V): (d + 2u + 1) V + 8u (d + u + 1).
    "c3w4_lanigan_textgen": lambda h: 105 * h.vocab_size + 13_600,  # 5.13: 105 V + 13,600
    "c3w4_irish_lyrics_textgen": lambda h: 401 * h.vocab_size + 301_200,  # 1,379,890 at v1's V = 2690
    "c3w4_shakespeare_textgen": lambda h: 357 * h.vocab_size + 234_496,  # computed: v2's typical BiLSTM(128)
}

IMDB_GRU_LSTM_CONV = ModelSpec(
    id="c3w3_imdb_gru_lstm_conv",
    part=3,
    week=3,
    title="IMDB full words: Embedding16 -> Bidirectional(GRU32) -> Dense6 -> Dense1 (BiGRU of 4 variants)",
    dataset="imdb-reviews",
    task="binary",
    layers=BigruClassifier(
        variant="bigru",
        vocab_size=10_000,
        embedding_dim=16,
        gru_units=(32,),
        return_sequences=(False,),
        hidden_units=6,
    ),
    input_shape=(120,),
    optimizer=_ADAM,
    loss="binary_crossentropy",
    epochs=10,  # v1 50
    batch_size=32,
    course_params=169_997,
    reference=Reference(
        "BiGRU variant, the one whose log was saved (v1 blob 8e58fd10, 50 epochs): epoch 2 val 0.8461 (best), "
        "epoch 50 acc 1.0000, val_loss 2.6888, val_acc 0.8102. The other three variants (no saved logs): "
        "c3w3_imdb_gru_lstm_conv_flatten, c3w3_imdb_gru_lstm_conv_lstm, c3w3_imdb_gru_lstm_conv_conv",
        0.8102,
    ),
    data=_IMDB_REVIEWS_V2,
    validation="test",
    label_mode="binary",
)


def _imdb_gru_lstm_conv_variant(name: str, title: str, layers: Layers, course_params: int) -> ModelSpec:
    """One of the other bodies of the C3W3 lab 4 comparison: the BiGRU lab's data and recipe, another body."""
    return replace(
        IMDB_GRU_LSTM_CONV,
        id=f"{IMDB_GRU_LSTM_CONV.id}_{name}",
        title=f"IMDB full words: Embedding{layers.embedding_dim} -> {title} -> Dense{layers.hidden_units} -> Dense1 "
              f"({name} of 4 variants)",
        layers=layers,
        course_params=course_params,
        reference=Reference(f"no saved log; {name} variant of {IMDB_GRU_LSTM_CONV.id} (course_models.md 5.9)"),
        variant_of=IMDB_GRU_LSTM_CONV.id,
    )


# Every variant shares the BiGRU's embedding and dense head; the LSTM is as wide as the GRU.
_BIGRU = IMDB_GRU_LSTM_CONV.layers
_SHARED_BODY = {"vocab_size": _BIGRU.vocab_size, "embedding_dim": _BIGRU.embedding_dim,
                "hidden_units": _BIGRU.hidden_units}
IMDB_GRU_LSTM_CONV_VARIANTS = (
    _imdb_gru_lstm_conv_variant("flatten", "Flatten", EmbeddingFlattenClassifier(**_SHARED_BODY), 171_533),  # computed
    _imdb_gru_lstm_conv_variant(
        "lstm",
        "Bidirectional(LSTM32)",
        BilstmClassifier(**_SHARED_BODY, lstm_units=_BIGRU.gru_units, return_sequences=_BIGRU.return_sequences),
        172_941,  # shown
    ),
    _imdb_gru_lstm_conv_variant(
        "conv",
        "Conv1D(128, 5) -> GlobalAveragePooling1D",
        Conv1dClassifier(**_SHARED_BODY, conv_filters=128, kernel_size=5, pooling="global_average"),
        171_149,  # shown
    ),
)

SPECS = (
    ModelSpec(
        id="c3w1_text_preproc",
        part=3,
        week=1,
        title="Tokenization and padding (toy sentences, sarcasm, BBC): no model",
        dataset="bbc-text",
        task="none",
        layers=None,
        input_shape=(),
        optimizer=None,
        loss="none",
        epochs=0,
        batch_size=0,
        course_params=None,
        reference=Reference(
            "BBC assignment (v2 expected): vocabulary 33,088 words after lower-casing and stopword removal; first "
            "article 737 words, 436 after stopword removal; StringLookup labels "
            "['sport','business','politics','tech','entertainment']. v1 labs: Tokenizer(num_words=100, oov '<OOV>') "
            "on the toy sentences"
        ),
        data=TextData(
            tokenizer="text_vectorization",
            remove_stopwords=True,
            urls={"bbc": BBC_TEXT_URL, "sarcasm": SARCASM_URL_V2},
            extras={
                "computes": ("vocabulary", "sequences", "padding", "bbc_vocabulary", "label_lookup"),
                "toy_sentences": ("I love my dog", "I love my cat", "You love my dog!", "Do you think my dog is amazing?"),
                "toy_pad_maxlen": 5,
                "toy_padding": "pre",
                "expected_bbc_vocab_size": 33_088,
                "expected_first_article_words": (737, 436),
                "expected_label_vocab": ("sport", "business", "politics", "tech", "entertainment"),
            },
        ),
        validation="none",
        label_mode="none",
    ),
    ModelSpec(
        id="c3w2_imdb_embed_flatten",
        part=3,
        week=2,
        title="IMDB reviews: Embedding16 (10k) -> Flatten -> Dense6 -> Dense1",
        dataset="imdb-reviews",
        task="binary",
        layers=EmbeddingFlattenClassifier(vocab_size=10_000, embedding_dim=16, hidden_units=6),
        input_shape=(120,),
        optimizer=_ADAM,
        loss="binary_crossentropy",
        epochs=5,  # v1 10
        batch_size=32,
        course_params=171_533,
        reference=Reference(
            "no saved log (the equivalent flatten variant of c3w3_imdb_gru_lstm_conv has the same params)"
        ),
        data=_IMDB_REVIEWS_V2,
        validation="test",
        label_mode="binary",
    ),
    ModelSpec(
        id="c3w2_sarcasm_embed_gap",
        part=3,
        week=2,
        title="Sarcasm headlines: Embedding16 -> GlobalAveragePooling1D -> Dense24 -> Dense1",
        dataset="sarcasm",
        task="binary",
        layers=EmbeddingGapClassifier(vocab_size=10_000, embedding_dim=16, hidden_units=24),
        input_shape=(100,),
        optimizer=_ADAM,
        loss="binary_crossentropy",
        epochs=10,
        batch_size=32,
        course_params=160_433,
        reference=Reference(
            "v1 30 epochs: train 0.9913, val 0.8143, val_loss 1.0198; v1 epoch 2 val 0.8316 (blob 11a58081)",
            0.8143,
        ),
        data=TextData(
            tokenizer="keras2_tokenizer",  # v1 Tokenizer(num_words, oov_token)
            vocab_size=10_000,
            oov_token="<OOV>",
            max_length=100,
            padding="post",
            truncating="post",
            training_size=20_000,
        ),
        validation="split",
        label_mode="binary",
    ),
    ModelSpec(
        id="c3w2_bbc_embed_gap",
        part=3,
        week=2,
        title="BBC news, 5 classes: Embedding16 (1000) -> GlobalAveragePooling1D -> Dense24 -> Dense5 (assignment)",
        dataset="bbc-text",
        task="multiclass",
        layers=EmbeddingGapClassifier(vocab_size=1000, embedding_dim=16, hidden_units=24, classes=5),
        input_shape=(120,),
        optimizer=_ADAM,
        loss="sparse_categorical_crossentropy",
        epochs=30,
        batch_size=32,
        course_params=16_533,
        reference=Reference(
            "no saved log; v2 pass: train acc >= 0.95 and val acc >= 0.90 in < 30 epochs. v2 body is the student's "
            "choice (suggested Embedding + GAP + Dense24, 16,533 params); v1 answer had Dense(6) on labels 1..5 "
            "(16,558 params)"
        ),
        data=TextData(
            tokenizer="text_vectorization",
            vocab_size=1000,
            max_length=120,
            padding="post",
            truncating="post",
            remove_stopwords=True,
            training_split=0.8,  # first 80% in file order: 1780 train / 445 val
            label_lookup="string_lookup",
            urls={"data": BBC_TEXT_URL},
        ),
        validation="split",
        label_mode="int",
    ),
    ModelSpec(
        id="c3w2_imdb_subwords_gap",
        part=3,
        week=2,
        title="IMDB subwords: Embedding64 -> GlobalAveragePooling1D -> Dense6 -> Dense1",
        dataset="imdb-subwords",
        task="binary",
        layers=EmbeddingGapClassifier(vocab_size=7_635, embedding_dim=64, hidden_units=6),
        input_shape=(120,),
        optimizer=_ADAM,
        loss="binary_crossentropy",
        epochs=10,
        batch_size=32,
        course_params=None,
        reference=Reference(
            "params depend on the subword vocabulary: v1 subwords8k (8185) 524,237 shown; v2 about 488,640 + 397 "
            "(WordPiece file, 7,635). v1 blob d63abd3c epoch 10 val_acc 0.5349 came from a run fit on unpadded data: "
            "not a target"
        ),
        data=TextData(**_IMDB_SUBWORDS, max_length=120, padding="pre", truncating="post"),
        validation="test",
        label_mode="binary",
    ),
    ModelSpec(
        id="c3w3_imdb_bilstm1",
        part=3,
        week=3,
        title="IMDB subwords: Embedding64 -> Bidirectional(LSTM64) -> Dense64 -> Dense1",
        dataset="imdb-subwords",
        task="binary",
        layers=BilstmClassifier(
            vocab_size=7_635,
            embedding_dim=64,
            lstm_units=(64,),
            return_sequences=(False,),
            hidden_units=64,
        ),
        input_shape=(None,),  # padded to the longest review of the set
        optimizer=_ADAM,
        loss="binary_crossentropy",
        epochs=10,
        batch_size=256,  # v1 padded_batch 64
        course_params=None,
        reference=Reference(
            "no saved log; params depend on the subword vocabulary: 598,209 computed for v1 vocab 8185"
        ),
        data=TextData(**_IMDB_SUBWORDS, max_length=None, padding="pre", truncating="post"),
        validation="test",
        label_mode="binary",
    ),
    ModelSpec(
        id="c3w3_imdb_bilstm2",
        part=3,
        week=3,
        title="IMDB subwords: Embedding64 -> BiLSTM32 (seq) -> BiLSTM16 -> Dense64 -> Dense1",
        dataset="imdb-subwords",
        task="binary",
        layers=BilstmClassifier(
            vocab_size=7_635,
            embedding_dim=64,
            lstm_units=(32, 16),  # v1 (64, 32)
            return_sequences=(True, False),
            hidden_units=64,
        ),
        input_shape=(None,),
        optimizer=_ADAM,
        loss="binary_crossentropy",
        epochs=5,  # v1 10
        batch_size=256,  # v1 64
        course_params=None,
        reference=Reference(
            "no saved log; params depend on the subword vocabulary: v2 embedding + 37,377; v1 (BiLSTM 64/32, vocab "
            "8185) 635,329"
        ),
        data=TextData(**_IMDB_SUBWORDS, max_length=None, padding="pre", truncating="post"),
        validation="test",
        label_mode="binary",
    ),
    ModelSpec(
        id="c3w3_imdb_conv1d",
        part=3,
        week=3,
        title="IMDB subwords: Embedding64 -> Conv1D(128, 5) -> GlobalMaxPooling1D -> Dense64 -> Dense1",
        dataset="imdb-subwords",
        task="binary",
        layers=Conv1dClassifier(
            vocab_size=7_635,
            embedding_dim=64,
            conv_filters=128,
            kernel_size=5,
            pooling="global_max",  # v1 global_average
            hidden_units=64,
        ),
        input_shape=(None,),
        optimizer=_ADAM,
        loss="binary_crossentropy",
        epochs=10,
        batch_size=256,  # v1 64
        course_params=None,
        reference=Reference(
            "params depend on the subword vocabulary: 573,249 shown for v1 vocab 8185. v1 blob 65e9c6b2 "
            "(GlobalAveragePooling, batch 64) epoch 10: acc 0.9879, val_loss 0.8178, val_acc 0.8103; pooling differs "
            "from v2, so no val_metric"
        ),
        data=TextData(**_IMDB_SUBWORDS, max_length=None, padding="pre", truncating="post"),
        validation="test",
        label_mode="binary",
    ),
    IMDB_GRU_LSTM_CONV,
    *IMDB_GRU_LSTM_CONV_VARIANTS,
    ModelSpec(
        id="c3w3_sarcasm_bilstm",
        part=3,
        week=3,
        title="Sarcasm headlines: Embedding16 -> Bidirectional(LSTM32) -> Dense24 -> Dense1",
        dataset="sarcasm",
        task="binary",
        layers=BilstmClassifier(
            vocab_size=10_000,  # v1 1000
            embedding_dim=16,
            lstm_units=(32,),
            return_sequences=(False,),
            hidden_units=24,
        ),
        input_shape=(32,),  # v1 120
        optimizer=_ADAM,
        loss="binary_crossentropy",
        epochs=10,  # v1 50
        batch_size=32,
        course_params=174_129,
        reference=Reference(
            "no log of the v2 configuration (174,129 params computed). v1 (vocab 1000, max_length 120, post padding, "
            "30,129 params, blob f1b731b1) epoch 50: acc 0.9696, val_loss 1.4035, val_acc 0.7930"
        ),
        data=TextData(**_SARCASM_C3W3),
        validation="split",
        label_mode="binary",
    ),
    ModelSpec(
        id="c3w3_sarcasm_conv1d",
        part=3,
        week=3,
        title="Sarcasm headlines: Embedding16 -> Conv1D(128, 5) -> GlobalMaxPooling1D -> Dense6 -> Dense1",
        dataset="sarcasm",
        task="binary",
        layers=Conv1dClassifier(
            vocab_size=10_000,  # v1 1000
            embedding_dim=16,
            conv_filters=128,
            kernel_size=5,
            pooling="global_max",
            hidden_units=6,  # v1 24
        ),
        input_shape=(32,),  # v1 120
        optimizer=_ADAM,
        loss="binary_crossentropy",
        epochs=10,  # v1 50
        batch_size=32,
        course_params=171_149,
        reference=Reference(
            "no log of the v2 configuration (171,149 params computed). v1 (vocab 1000, max_length 120, Dense24, "
            "29,489 params, blob 22aac1cf) epoch 50: acc 0.9891, val_loss 1.9213, val_acc 0.7828"
        ),
        data=TextData(**_SARCASM_C3W3),
        validation="split",
        label_mode="binary",
    ),
    ModelSpec(
        id="c3w3_sentiment140_glove",
        part=3,
        week=3,
        title="Sentiment140: frozen GloVe100 -> Dropout0.2 -> Conv1D(64, 5) -> MaxPool4 -> LSTM64 -> Dense1 (asg)",
        dataset="sentiment140-glove",
        task="binary",
        layers=GloveConvLstmClassifier(
            vocab_size=145_856,  # v2 TextVectorization vocabulary; v1 Tokenizer 138,858 words + 1
            embedding_dim=100,
            embedding_init="glove",
            embedding_trainable=False,
            dropout=0.2,
            conv_filters=64,
            kernel_size=5,
            pool_size=4,
            lstm_units=64,
        ),
        input_shape=(32,),  # v1 16
        optimizer=_ADAM,
        loss="binary_crossentropy",
        epochs=20,  # v1 50
        batch_size=128,
        course_params=None,
        reference=Reference(
            "no saved log; v2 grader criterion hidden. v2 body after the frozen embedding is the student's choice: "
            "the v1 answer body is used. Trainable params 65,153 (computed v1, vocabulary-independent); the frozen "
            "embedding adds vocab x 100 (v1: 13,885,900)"
        ),
        data=TextData(
            urls={
                "data": "https://storage.googleapis.com/learning-datasets/training_cleaned.csv",
                "glove": "https://storage.googleapis.com/learning-datasets/glove.6B.100d.txt",
            },
            label_column=0,
            text_column=5,
            label_map={0: 0, 4: 1},
            num_samples=160_000,
            training_split=0.9,  # 144,000 train / 16,000 val
            tokenizer="text_vectorization",
            max_length=32,
            padding="post",
            truncating="post",
        ),
        validation="split",
        label_mode="binary",
    ),
    ModelSpec(
        id="c3w4_lanigan_textgen",
        part=3,
        week=4,
        title="Lanigan's Ball next-word generator: Embedding64 -> Bidirectional(LSTM20) -> Dense(V) softmax",
        dataset="lanigan-lyrics",
        task="multiclass",
        layers=TextGenerator(
            vocab_size=None,  # V from the fitted vocabulary (about 272 in v2)
            embedding_dim=64,
            lstm_units=20,
            bidirectional=True,
        ),
        input_shape=(None,),  # max_sequence_len - 1, from the longest line
        optimizer=_ADAM,
        loss="categorical_crossentropy",
        epochs=500,
        batch_size=32,
        course_params=None,
        reference=Reference(
            "no saved log; params 105 x V + 13,600 depend on the vocabulary V (about 42k for V about 272)"
        ),
        data=TextGenData(
            **_TEXTGEN,
            corpus="inline lyrics of Lanigan's Ball (68 lines)",
            tokenizer="text_vectorization",
        ),
        validation="none",
        label_mode="categorical",
        generation=Generation(seed_text="Laurence went to Dublin", next_words=_NEXT_WORDS),
    ),
    ModelSpec(
        id="c3w4_irish_lyrics_textgen",
        part=3,
        week=4,
        title="Irish lyrics next-word generator: Embedding100 -> Bidirectional(LSTM150) -> Dense(V) softmax",
        dataset="irish-lyrics",
        task="multiclass",
        layers=TextGenerator(
            vocab_size=None,  # V from the fitted vocabulary (v1: 2690)
            embedding_dim=100,
            lstm_units=150,
            bidirectional=True,
        ),
        input_shape=(None,),
        optimizer=Optimizer("adam", learning_rate=0.01),
        loss="categorical_crossentropy",
        epochs=100,
        batch_size=32,
        course_params=None,
        reference=Reference(
            "params depend on the vocabulary: 1,379,890 for v1 V = 2690 (12,038 n-grams). v1 blob 4e08edd0 epoch 100: "
            "train loss 1.1489, acc 0.7221 (no validation)"
        ),
        data=TextGenData(
            **_TEXTGEN,
            urls={"data": "https://storage.googleapis.com/tensorflow-1-public/course3/irish-lyrics-eof.txt"},
            tokenizer="text_vectorization",
            shuffle=False,
        ),
        validation="none",
        label_mode="categorical",
        generation=Generation(seed_text="help me obi-wan kenobi youre my only hope", next_words=_NEXT_WORDS),
    ),
    ModelSpec(
        id="c3w4_shakespeare_textgen",
        part=3,
        week=4,
        title="Sonnets next-word generator: Embedding100 -> Bidirectional(LSTM128) -> Dense(V) softmax (assignment)",
        dataset="sonnets",
        task="multiclass",
        layers=TextGenerator(
            vocab_size=3_189,
            embedding_dim=100,
            lstm_units=128,
            bidirectional=True,
        ),
        input_shape=(10,),  # max_sequence_len 11 minus the label
        optimizer=_ADAM,
        loss="categorical_crossentropy",
        epochs=30,  # v1 100
        batch_size=16,
        course_params=None,
        reference=Reference(
            "no saved log; v2 grader threshold hidden. v2 architecture is the student's choice: the typical Embedding "
            "-> BiLSTM(128) -> Dense(V) is used. v1 answer: Emb100 -> BiLSTM150 (seq) -> Dropout0.2 -> LSTM100 -> "
            "Dense(V/2, relu, L2 0.01) -> Dense(V). v2 expected: V 3189, 15,355 n-grams, max_sequence_len 11"
        ),
        data=TextGenData(
            **_TEXTGEN,
            urls={"data": "https://storage.googleapis.com/learning-datasets/sonnets.txt"},
            tokenizer="text_vectorization",
            random_seed=65,
            expected_ngrams=15_355,
            max_sequence_len=11,
        ),
        validation="none",
        label_mode="categorical",
        generation=Generation(seed_text="Help me Obi Wan Kenobi, you're my only hope", next_words=_NEXT_WORDS),
    ),
)
