"""English sentiment: a single-label classifier whose softmax scores sum to 1."""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from handlers.base import TextClassifierHandler


class SentimentHandler(TextClassifierHandler):
    def postprocess(self, logits: torch.Tensor) -> list[dict[str, Any]]:
        probabilities = torch.softmax(logits, dim=-1).tolist()
        results = []
        for row in probabilities:
            best = max(range(len(row)), key=row.__getitem__)
            results.append(
                {
                    "label": self.labels[best],
                    "score": round(row[best], 6),
                    "scores": {
                        label: round(p, 6) for label, p in zip(self.labels, row, strict=True)
                    },
                }
            )
        return results

    def record_results(self, results: list[dict[str, Any]]) -> None:
        predictions = Counter((result["label"],) for result in results)
        self.metrics.count("reviews_sentiment_predictions_total", predictions)
