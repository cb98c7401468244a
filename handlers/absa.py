"""German aspect-based sentiment for restaurant reviews, BERT with auxiliary sentences.

Each review is split into sentences (German Punkt: "z.B." and "3. Mai" do not split); every
sentence is paired with every auxiliary sentence (9 pairs for nli_m), and the pairs of all
requests in a batch go through the model in length-sorted, dynamically padded micro-batches.
Only mentioned aspects are returned, per sentence and aggregated per review.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from handlers.auxiliary import NONE, AuxiliarySentences, aggregate
from handlers.base import TextClassifierHandler
from handlers.sentences import SentenceSplitter


class AspectSentimentHandler(TextClassifierHandler):
    def setup(self) -> None:
        self.auxiliary = AuxiliarySentences(self.settings)
        trained_with = self.backend.config.get("absa_construction")
        if trained_with not in (None, self.auxiliary.construction):
            raise ValueError(
                f"The model was trained with {trained_with} pairs; the model config asks for "
                f"{self.auxiliary.construction}."
            )
        missing = set(self.auxiliary.labels) - set(self.labels)
        if missing:
            raise ValueError(
                f"The model's labels {self.labels} lack {sorted(missing)}, which the "
                f"{self.auxiliary.construction} construction needs."
            )
        self.columns = [self.labels.index(label) for label in self.auxiliary.labels]
        self.splitter = SentenceSplitter.from_settings(self.settings, "german")
        self.pairs = tuple(pair.sentence for pair in self.auxiliary.pairs)

    def split(self, text: str) -> list[str]:
        return self.splitter.split(text)

    def fold(self, units: list[str], probabilities: np.ndarray) -> dict[str, Any]:
        """``probabilities``: (sentences, pairs, model labels)."""
        sentences = []
        for sentence, pairs in zip(units, probabilities, strict=True):
            decoded = self.auxiliary.decode(pairs[:, self.columns])
            aspects = {
                name: {"polarity": polarity, "score": round(score, 6)}
                for name, (polarity, score) in decoded.items()
                if polarity != NONE
            }
            sentences.append({"text": sentence, "aspects": aspects})
        return {"sentences": sentences, "aspects": aggregate([s["aspects"] for s in sentences])}

    def record_results(self, results: list[dict[str, Any]]) -> None:
        found = Counter(
            (aspect, verdict["polarity"])
            for result in results
            for aspect, verdict in result["aspects"].items()
        )
        self.metrics.count("reviews_absa_aspects_total", found)
