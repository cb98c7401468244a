"""English sentiment: a single-label classifier whose softmax scores sum to 1."""

from __future__ import annotations

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
