"""Text classifiers over token ids from the shared tokenizer (parity.text). Mirror: tf_models/text.py.

Each model takes (N, T) token ids and keeps Keras' batch-first (N, T, features) layout between
layers; nn.Conv1d works on NCW, so the sequence is transposed around it (align: tensor_layout).
None of them masks the padding, as their Keras twins do not (Embedding mask_zero=False).
"""

from __future__ import annotations

import torch
from torch import nn

from parity import align
from parity.catalog import ModelSpec
from torch_models.base import REGISTRY, CourseModule, numbered, output_units
from torch_models.layers import keras_conv1d, recurrent_output


def _embedding(vocab_size: int, embedding_dim: int, alignment: align.Alignment) -> nn.Embedding:
    return nn.Embedding(vocab_size, embedding_dim, sparse=align.sparse_embedding_gradient(alignment))


def _relu_conv1d(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """Keras Conv1D(activation='relu') on batch-first (N, T, C): through torch's NCW, back to (N, T', filters)."""
    return torch.relu(conv(x.transpose(1, 2))).transpose(1, 2)


def _bidirectional_stack(cell: type[nn.RNNBase], features: int, units: tuple[int, ...]) -> nn.ModuleList:
    """One bidirectional `cell` (nn.LSTM, nn.GRU) per Keras Bidirectional layer, each fed the last one's output."""
    stack = nn.ModuleList()
    for width in units:
        stack.append(cell(features, width, batch_first=True, bidirectional=True))
        features = 2 * width
    return stack


def _run_stack(stack: nn.ModuleList, x: torch.Tensor, return_sequences: tuple[bool, ...]) -> torch.Tensor:
    """A layer without return_sequences hands on both directions' final hidden states (recurrent_output)."""
    for layer, sequences in zip(stack, return_sequences):
        x = recurrent_output(layer, x, sequences)
    return x


class EmbeddingGapClassifier(CourseModule):
    """embedding -> mean over time (GlobalAveragePooling1D, no mask) -> hidden Linear + ReLU -> output Linear."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        h = self.spec.layers
        self.embedding = _embedding(h.vocab_size, h.embedding_dim, alignment)
        self.hidden = nn.Linear(h.embedding_dim, h.hidden_units)
        self.output = nn.Linear(h.hidden_units, output_units(self.spec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(torch.relu(self.hidden(self.embedding(x.long()).mean(dim=1))))

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"embedding": self.embedding, "hidden": self.hidden, "output": self.output}


class EmbeddingFlattenClassifier(CourseModule):
    """embedding -> flatten (N, T, D) time-major to (N, T * D), as Keras' Flatten of a sequence -> hidden -> output."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        h = self.spec.layers
        (length,) = self.spec.input_shape
        if length is None:
            raise ValueError(f"{model_id}: Flatten needs a fixed input length; the spec's input_shape is "
                             f"{self.spec.input_shape}")
        self.embedding = _embedding(h.vocab_size, h.embedding_dim, alignment)
        self.hidden = nn.Linear(length * h.embedding_dim, h.hidden_units)
        self.output = nn.Linear(h.hidden_units, output_units(self.spec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(torch.relu(self.hidden(torch.flatten(self.embedding(x.long()), start_dim=1))))

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"embedding": self.embedding, "hidden": self.hidden, "output": self.output}


class Conv1dClassifier(CourseModule):
    """embedding -> conv Conv1d('valid') + ReLU -> max or mean over time (GlobalMax/AveragePooling1D, the windows
    over the padding included) -> hidden Linear + ReLU -> output Linear."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        h = self.spec.layers
        self.embedding = _embedding(h.vocab_size, h.embedding_dim, alignment)
        self.conv = keras_conv1d(h.embedding_dim, h.conv_filters, h.kernel_size, 1, "valid")
        self.hidden = nn.Linear(h.conv_filters, h.hidden_units)
        self.output = nn.Linear(h.hidden_units, output_units(self.spec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = _relu_conv1d(self.conv, self.embedding(x.long()))
        pooled = features.amax(dim=1) if self.spec.layers.pooling == "global_max" else features.mean(dim=1)
        return self.output(torch.relu(self.hidden(pooled)))

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"embedding": self.embedding, "conv": self.conv, "hidden": self.hidden, "output": self.output}


class BilstmClassifier(CourseModule):
    """embedding -> bilstm_i LSTM(bidirectional) x N -> hidden Linear + ReLU -> output Linear."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        h = self.spec.layers
        self.embedding = _embedding(h.vocab_size, h.embedding_dim, alignment)
        self.bilstms = _bidirectional_stack(nn.LSTM, h.embedding_dim, h.lstm_units)
        self.hidden = nn.Linear(2 * h.lstm_units[-1], h.hidden_units)
        self.output = nn.Linear(h.hidden_units, output_units(self.spec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = _run_stack(self.bilstms, self.embedding(x.long()), self.spec.layers.return_sequences)
        return self.output(torch.relu(self.hidden(features)))

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"embedding": self.embedding, **numbered("bilstm", self.bilstms), "hidden": self.hidden,
                "output": self.output}


class BigruClassifier(CourseModule):
    """embedding -> bigru_i GRU(bidirectional) x N -> hidden Linear + ReLU -> output Linear.

    nn.GRU applies the reset gate after the recurrent matmul, like Keras' GRU(reset_after=True), and keeps two
    biases as it does: same parameters; only the gate order differs (align: gru_layout).
    """

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        h = self.spec.layers
        self.embedding = _embedding(h.vocab_size, h.embedding_dim, alignment)
        self.bigrus = _bidirectional_stack(nn.GRU, h.embedding_dim, h.gru_units)
        self.hidden = nn.Linear(2 * h.gru_units[-1], h.hidden_units)
        self.output = nn.Linear(h.hidden_units, output_units(self.spec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = _run_stack(self.bigrus, self.embedding(x.long()), self.spec.layers.return_sequences)
        return self.output(torch.relu(self.hidden(features)))

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"embedding": self.embedding, **numbered("bigru", self.bigrus), "hidden": self.hidden,
                "output": self.output}


class GloveConvLstmClassifier(CourseModule):
    """embedding (frozen) -> dropout -> conv Conv1d + ReLU -> pool MaxPool1d -> lstm LSTM (final state) -> output.

    The table is the pretrained matrix of `embedding_weights` (random weights without one); with
    `embedding_trainable` False its requires_grad is False from the start, not only after a weight
    transfer (align.pretrained_embedding: the frozen embedding).
    """

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        h = self.spec.layers
        matrix = align.pretrained_embedding(h)
        if matrix is None:
            self.embedding = _embedding(h.vocab_size, h.embedding_dim, alignment)
            self.embedding.weight.requires_grad_(h.embedding_trainable)
        else:
            self.embedding = nn.Embedding.from_pretrained(torch.from_numpy(matrix), freeze=not h.embedding_trainable,
                                                          sparse=align.sparse_embedding_gradient(alignment))
        self.dropout = nn.Dropout(h.dropout)
        self.conv = keras_conv1d(h.embedding_dim, h.conv_filters, h.kernel_size, 1, "valid")
        self.pool = nn.MaxPool1d(h.pool_size)  # Keras MaxPooling1D: strides = pool_size, 'valid' (floor)
        self.lstm = nn.LSTM(h.conv_filters, h.lstm_units, batch_first=True)
        self.output = nn.Linear(h.lstm_units, output_units(self.spec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embedding(x.long()))
        x = self.pool(torch.relu(self.conv(x.transpose(1, 2)))).transpose(1, 2)
        return self.output(recurrent_output(self.lstm, x, return_sequences=False))

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"embedding": self.embedding, "conv": self.conv, "lstm": self.lstm, "output": self.output}


@REGISTRY.register
def embedding_gap_classifier(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c3w2_sarcasm_embed_gap, c3w2_bbc_embed_gap, c3w2_imdb_subwords_gap."""
    return EmbeddingGapClassifier(spec.id, alignment)


@REGISTRY.register
def embedding_flatten_classifier(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c3w2_imdb_embed_flatten, c3w3_imdb_gru_lstm_conv_flatten."""
    return EmbeddingFlattenClassifier(spec.id, alignment)


@REGISTRY.register
def conv1d_classifier(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c3w3_imdb_conv1d, c3w3_sarcasm_conv1d, c3w3_imdb_gru_lstm_conv_conv."""
    return Conv1dClassifier(spec.id, alignment)


@REGISTRY.register
def bilstm_classifier(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c3w3_sarcasm_bilstm, c3w3_imdb_bilstm1, c3w3_imdb_bilstm2, c3w3_imdb_gru_lstm_conv_lstm."""
    return BilstmClassifier(spec.id, alignment)


@REGISTRY.register
def bigru_classifier(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c3w3_imdb_gru_lstm_conv."""
    return BigruClassifier(spec.id, alignment)


@REGISTRY.register
def glove_conv_lstm_classifier(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c3w3_sentiment140_glove."""
    return GloveConvLstmClassifier(spec.id, alignment)
