"""How the sentences of a review add up to its verdict (the sentiment handler's fold)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

AGGREGATION_FILE = "aggregation.json"


@dataclass(frozen=True)
class Aggregation:
    """Sentence probabilities to a review's: a weighted mean of log-probabilities, softmaxed.

    For a classifier these are its logits up to a constant per sentence, so the verdict is
    that of the weighted mean logit whatever the number of labels. Sentence i of n weighs
    ``1 + recency * i / (n - 1)``: with recency 0 every sentence counts the same; above 0 the
    later sentences, where reviewers tend to sum up, count more. ``temperature`` calibrates
    the review's scores, which are sharper than a sentence's when many sentences agree.
    """

    recency: float = 0.0
    temperature: float = 1.0

    def weights(self, sentences: int) -> np.ndarray:
        position = np.arange(sentences) / max(sentences - 1, 1)
        return 1.0 + self.recency * position

    def logits(self, probabilities: np.ndarray) -> np.ndarray:
        """The review's logits from its sentences' probabilities, ``(sentences, labels)``."""
        log_probabilities = np.log(np.clip(probabilities, 1e-12, 1.0))
        mean = np.average(log_probabilities, axis=0, weights=self.weights(len(probabilities)))
        return mean / self.temperature

    def fold(self, probabilities: np.ndarray) -> np.ndarray:
        logits = self.logits(probabilities)
        exp = np.exp(logits - logits.max())
        return exp / exp.sum()

    @classmethod
    def read(cls, model_dir: Path) -> Aggregation:
        path = model_dir / AGGREGATION_FILE
        if not path.is_file():
            return cls()
        settings = json.loads(path.read_text("utf-8"))
        return cls(float(settings["recency"]), float(settings["temperature"]))

    def write(self, model_dir: Path, **report: Any) -> None:
        """Store the aggregation with how it was chosen (``report``, e.g. dev accuracy)."""
        text = json.dumps({**asdict(self), **report}, indent=2)
        (model_dir / AGGREGATION_FILE).write_text(text + "\n", "utf-8")
