"""Next-word text generators (c3w4_*_textgen): Embedding -> [bidirectional] LSTM -> Linear(V) logits.

The vocabulary size V and the input length (max_sequence_len - 1) come from the data: a worker
builds inside parity.catalog.shaped_by_data, so the spec read here is the resolved one.
Mirror: tf_models/textgen.py.
"""

from __future__ import annotations

import torch
from torch import nn

from parity import align
from parity.catalog import ModelSpec, require_data_sizes
from torch_models.base import REGISTRY, CourseModule, output_units
from torch_models.layers import recurrent_output


class NextWordGenerator(CourseModule):
    """embedding -> bilstm nn.LSTM(bidirectional) (or lstm) -> output Linear(V).

    The LSTM hands on the final hidden state of each direction (torch_models.layers.recurrent_output),
    Keras' LSTM without return_sequences; the logits become probabilities in predict_outputs (softmax).
    """

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        require_data_sizes(self.spec)
        h = self.spec.layers
        self.embedding = nn.Embedding(h.vocab_size, h.embedding_dim, sparse=align.sparse_embedding_gradient(alignment))
        self.lstm = nn.LSTM(h.embedding_dim, h.lstm_units, batch_first=True, bidirectional=h.bidirectional)
        self.output = nn.Linear((2 if h.bidirectional else 1) * h.lstm_units, output_units(self.spec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(recurrent_output(self.lstm, self.embedding(x.long()), return_sequences=False))

    def keras_layers(self) -> dict[str, nn.Module]:
        recurrent = "bilstm" if self.spec.layers.bidirectional else "lstm"
        return {"embedding": self.embedding, recurrent: self.lstm, "output": self.output}


@REGISTRY.register
def text_generator(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c3w4_lanigan_textgen, c3w4_irish_lyrics_textgen, c3w4_shakespeare_textgen."""
    return NextWordGenerator(spec.id, alignment)
