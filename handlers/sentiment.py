"""English sentiment: a single-label classifier whose softmax scores sum to 1."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from handlers.base import TextClassifierHandler


class SentimentHandler(TextClassifierHandler):
    def fold(self, units: list[str], probabilities: np.ndarray) -> dict[str, Any]:
        (row,) = probabilities  # the whole text is the one unit
        scores = self.label_scores(row)
        label = self.labels[int(row.argmax())]
        return {"label": label, "score": scores[label], "scores": scores}

    def record_results(self, results: list[dict[str, Any]]) -> None:
        predictions = Counter((result["label"],) for result in results)
        self.metrics.count("reviews_sentiment_predictions_total", predictions)
