"""Toxicity: multi-label scores per sentence and per text, so a moderator sees which sentence
is offensive.

Labels are independent (sigmoid, not softmax). Every sentence of every request in a batch is
scored in one pass; a text scores as high as its most toxic sentence on each label. The label
set comes from the model directory, thresholds from model-config.yaml. The model is either an
HF multi-label sequence classifier (e.g. converted Detoxify weights) or, offline, the
TF-IDF + linear model of alt-profanity-check (one label, ``toxicity``).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from handlers.base import Cost, TextClassifierHandler
from handlers.linear_model import BACKEND, LinearTextModel
from handlers.sentences import SentenceSplitter


class ToxicityHandler(TextClassifierHandler):
    def load(self, model_dir: Path) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        if config.get("backend") == BACKEND:
            self.linear_model: LinearTextModel | None = LinearTextModel(model_dir)
            self.labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
        else:
            self.linear_model = None
            super().load(model_dir)
        default = float(self.settings.get("threshold", 0.5))
        thresholds = self.settings.get("thresholds") or {}
        self.thresholds = {label: float(thresholds.get(label, default)) for label in self.labels}
        self.splitter = SentenceSplitter.from_settings(self.settings, "english")

    def cost(self, texts: list[str]) -> Cost:
        sentences = [s for text in texts for s in self.splitter.split(text)]
        if self.linear_model is not None:
            return Cost(sentences=len(sentences), tokens=0)  # microseconds per sentence
        return Cost(len(sentences), self.input_tokens(self.text_tokens(sentences)))

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        sentences = [self.splitter.split(text) for text in texts]
        probabilities, truncated = self.score([s for group in sentences for s in group])
        results, start = [], 0
        for group in sentences:
            rows = probabilities[start : start + len(group)]
            per_sentence = [
                {"text": s, **self.verdict(p)} for s, p in zip(group, rows, strict=True)
            ]
            results.append(
                {
                    **self.verdict(rows.max(axis=0)),
                    "sentences": per_sentence,
                    "truncated": any(truncated[start : start + len(group)]),
                }
            )
            start += len(group)
        return results

    def score(self, sentences: list[str]) -> tuple[np.ndarray, list[bool]]:
        """Probabilities of shape (sentences, labels), and which sentences were truncated."""
        if self.linear_model is not None:
            return self.linear_model.positive_probability(sentences)[:, None], [False] * len(
                sentences
            )
        encoded = self.preprocess(sentences)
        return torch.sigmoid(self._forward(encoded)).numpy(), encoded.truncated

    def verdict(self, probabilities: np.ndarray) -> dict[str, Any]:
        labels = {
            label: round(float(p), 6) for label, p in zip(self.labels, probabilities, strict=True)
        }
        toxic = any(labels[label] >= self.thresholds[label] for label in self.labels)
        return {"labels": labels, "toxic": toxic}

    def record_results(self, results: list[dict[str, Any]]) -> None:
        flagged = Counter(
            (label,)
            for result in results
            for label, score in result["labels"].items()
            if score >= self.thresholds[label]
        )
        self.metrics.count("reviews_toxicity_flagged_texts_total", flagged)
