"""Text classifiers over token ids from the shared tokenizer (parity.text)."""

from __future__ import annotations

import torch
from torch import nn

from parity import align
from parity.catalog import ModelSpec
from torch_models.base import REGISTRY, CourseModule, output_units


class EmbeddingGapClassifier(CourseModule):
    """Embedding -> mean over time (GlobalAveragePooling1D, no mask) -> Linear(hidden) -> ReLU -> Linear(1)."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        h = self.spec.layers
        self.embedding = nn.Embedding(h.vocab_size, h.embedding_dim,
                                      sparse=align.sparse_embedding_gradient(alignment))
        self.classifier = nn.Sequential(
            nn.Linear(h.embedding_dim, h.hidden_units),
            nn.ReLU(),
            nn.Linear(h.hidden_units, output_units(self.spec)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embedding(x.long()).mean(dim=1))


@REGISTRY.register
def embedding_gap_classifier(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c3w2_sarcasm_embed_gap."""
    return EmbeddingGapClassifier(spec.id, alignment)
