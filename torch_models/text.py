"""Text classifiers over token ids from the shared tokenizer (parity.text)."""

from __future__ import annotations

import torch
from torch import nn

from parity import align
from parity.catalog import ModelSpec
from torch_models.base import REGISTRY, CourseModule, numbered, output_units
from torch_models.layers import recurrent_output


def _embedding(vocab_size: int, embedding_dim: int, alignment: align.Alignment) -> nn.Embedding:
    return nn.Embedding(vocab_size, embedding_dim, sparse=align.sparse_embedding_gradient(alignment))


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


class BilstmClassifier(CourseModule):
    """embedding -> bilstm_i LSTM(bidirectional) x N -> hidden Linear + ReLU -> output Linear.

    One nn.LSTM(bidirectional=True) per Keras Bidirectional(LSTM); a layer without return_sequences
    hands on the final hidden states of both directions (torch_models.layers.recurrent_output).
    """

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        h = self.spec.layers
        self.embedding = _embedding(h.vocab_size, h.embedding_dim, alignment)
        self.bilstms = nn.ModuleList()
        features = h.embedding_dim
        for units in h.lstm_units:
            self.bilstms.append(nn.LSTM(features, units, batch_first=True, bidirectional=True))
            features = 2 * units
        self.hidden = nn.Linear(features, h.hidden_units)
        self.output = nn.Linear(h.hidden_units, output_units(self.spec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embedding(x.long())
        for lstm, sequences in zip(self.bilstms, self.spec.layers.return_sequences):
            x = recurrent_output(lstm, x, sequences)
        return self.output(torch.relu(self.hidden(x)))

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"embedding": self.embedding, **numbered("bilstm", self.bilstms), "hidden": self.hidden,
                "output": self.output}


@REGISTRY.register
def embedding_gap_classifier(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c3w2_sarcasm_embed_gap."""
    return EmbeddingGapClassifier(spec.id, alignment)


@REGISTRY.register
def bilstm_classifier(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c3w3_sarcasm_bilstm, c3w3_imdb_bilstm1, c3w3_imdb_bilstm2."""
    return BilstmClassifier(spec.id, alignment)
