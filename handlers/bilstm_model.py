"""A word-level BiLSTM multi-label classifier, converted from Keras to PyTorch.

The Jigsaw model of ``toxic-comment-classifier`` (PyPI) is Embedding -> Bidirectional LSTM
(return sequences) -> global max-pool -> Dense ReLU -> Dense sigmoid over a fixed window of
word ids. ``review-analysis train convert-bilstm`` writes it as ``model.safetensors`` plus
``vocab.json`` (word -> id) and ``config.json``; this module reads those with no TensorFlow
and no pickle. The tokenizer is Keras' ``Tokenizer.texts_to_sequences`` made explicit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

BACKEND = "keras-bilstm"
VOCAB_FILE = "vocab.json"
WEIGHTS_FILE = "model.safetensors"


class KerasWordTokenizer:
    """Keras' legacy ``Tokenizer``: lower-case, filter characters become the split character,
    split, keep words whose id is below ``num_words``; unknown words are dropped."""

    def __init__(self, vocab: dict[str, int], lower: bool, filters: str, split: str):
        self.vocab, self.lower, self.split = vocab, lower, split
        self.translation = str.maketrans(dict.fromkeys(filters, split))

    def ids(self, text: str) -> list[int]:
        if self.lower:
            text = text.lower()
        words = text.translate(self.translation).split(self.split)
        return [self.vocab[word] for word in words if word in self.vocab]


class BiLstmClassifier(torch.nn.Module):
    """Probabilities of every label for windows of word ids, shape (batch, window).

    Keras runs the LSTM over the zero padding too (no mask), so the window is always full.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, units: int, hidden: int, labels: int):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab_size, embedding_dim)
        self.lstm = torch.nn.LSTM(embedding_dim, units, batch_first=True, bidirectional=True)
        self.dense = torch.nn.Linear(2 * units, hidden)
        self.output = torch.nn.Linear(hidden, labels)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self.embedding(ids))
        pooled = states.max(dim=1).values
        return torch.sigmoid(self.output(torch.relu(self.dense(pooled))))


class BiLstmTextModel:
    """A converted model directory: texts in, probabilities of every label out."""

    def __init__(self, model_dir: Path):
        config: dict[str, Any] = json.loads((model_dir / "config.json").read_text())
        self.window = int(config["window"])
        words = config["tokenizer"]
        vocab = json.loads((model_dir / VOCAB_FILE).read_text(encoding="utf-8"))
        self.tokenizer = KerasWordTokenizer(vocab, words["lower"], words["filters"], words["split"])
        self.model = BiLstmClassifier(
            vocab_size=int(config["vocab_size"]),
            embedding_dim=int(config["embedding_dim"]),
            units=int(config["lstm_units"]),
            hidden=int(config["hidden"]),
            labels=len(config["id2label"]),
        )
        self.model.load_state_dict(load_file(model_dir / WEIGHTS_FILE))
        self.model.eval()

    def windows(self, texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        """Each text's last ``window`` word ids, zero-padded in front (Keras'
        ``pad_sequences`` defaults), and whether words were dropped to fit."""
        rows = np.zeros((len(texts), self.window), dtype=np.int64)
        cut = []
        for row, text in zip(rows, texts, strict=True):
            ids = self.tokenizer.ids(text)
            cut.append(len(ids) > self.window)
            ids = ids[-self.window :]
            if ids:
                row[-len(ids) :] = ids
        return rows, cut

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(windows)).numpy()
