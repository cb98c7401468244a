"""Toxicity: multi-label scores per sentence and per text, so a moderator sees which sentence
is offensive.

Labels are independent (sigmoid, not softmax). Every sentence of every request in a batch is
scored in one pass; a text scores as high as its most toxic sentence on each label. The label
set comes from the model directory, thresholds from model-config.yaml. The model is either an
HF multi-label sequence classifier (e.g. converted Detoxify weights) or, offline, the
TF-IDF + linear model of alt-profanity-check (one label, ``toxicity``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from handlers.base import TextClassifierHandler
from handlers.sentences import SentenceSplitter


class ToxicityHandler(TextClassifierHandler):
    activation = "sigmoid"

    def setup(self) -> None:
        default = float(self.settings.get("threshold", 0.5))
        thresholds = self.settings.get("thresholds") or {}
        self.thresholds = {label: float(thresholds.get(label, default)) for label in self.labels}
        self.splitter = SentenceSplitter.from_settings(self.settings, "english")

    def split(self, text: str) -> list[str]:
        return self.splitter.split(text)

    def fold(self, units: list[str], probabilities: np.ndarray) -> dict[str, Any]:
        return {
            **self.verdict(probabilities.max(axis=0)),
            "sentences": [
                {"text": sentence, **self.verdict(row)}
                for sentence, row in zip(units, probabilities, strict=True)
            ],
        }

    def verdict(self, probabilities: np.ndarray) -> dict[str, Any]:
        labels = self.label_scores(probabilities)
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
