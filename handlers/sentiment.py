"""English sentiment of whole reviews: a verdict per text and per sentence.

Every sentence of every request in a batch is scored in one set of forward passes (the base
plans them), so a 2,000-word review is read in full rather than cut at ``max_length`` tokens.
The sentences fold into the review's verdict by ``handlers.aggregation.Aggregation``, which
training fitted on reviews and stored in the model directory (``aggregation.json``). A model
directory without one, such as a Hub model like distilbert-sst2, gets the plain mean of the
sentences' log-probabilities.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from handlers.aggregation import Aggregation
from handlers.base import TextClassifierHandler
from handlers.sentences import SentenceSplitter


class SentimentHandler(TextClassifierHandler):
    def load(self, model_dir: Path) -> None:
        super().load(model_dir)
        self.aggregation = Aggregation.read(model_dir)

    def setup(self) -> None:
        # split_sentences: false reads each text as one model input, cut at max_length
        # tokens: the handler before whole reviews, kept for the benchmark's comparison.
        self.split_sentences = bool(self.settings.get("split_sentences", True))
        self.splitter = SentenceSplitter.from_settings(self.settings, "english")

    def split(self, text: str) -> list[str]:
        return self.splitter.split(text) if self.split_sentences else [text]

    def fold(self, units: list[str], probabilities: np.ndarray) -> dict[str, Any]:
        review = probabilities[0] if len(units) == 1 else self.aggregation.fold(probabilities)
        return {
            **self.verdict(review),
            "sentences": [
                {"text": sentence, "label": verdict["label"], "score": verdict["score"]}
                for sentence, verdict in zip(units, map(self.verdict, probabilities), strict=True)
            ],
        }

    def verdict(self, probabilities: np.ndarray) -> dict[str, Any]:
        scores = self.label_scores(probabilities)
        label = self.labels[int(probabilities.argmax())]
        return {"label": label, "score": scores[label], "scores": scores}

    def record_results(self, results: list[dict[str, Any]]) -> None:
        predictions = Counter((result["label"],) for result in results)
        self.metrics.count("reviews_sentiment_predictions_total", predictions)
