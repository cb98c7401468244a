"""German aspect-based sentiment for restaurant reviews, BERT with auxiliary sentences.

Each review is split into sentences (German Punkt: "z.B." and "3. Mai" do not split); every
(sentence, auxiliary sentence) pair of every request in the batch goes through the model in
length-sorted, dynamically padded micro-batches. Only mentioned aspects are returned, per
sentence and aggregated per review.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch

from handlers.auxiliary import NONE, AuxiliarySentences, aggregate
from handlers.base import Cost, TextClassifierHandler
from handlers.sentences import SentenceSplitter


class AspectSentimentHandler(TextClassifierHandler):
    def load(self, model_dir: Path) -> None:
        super().load(model_dir)
        self.auxiliary = AuxiliarySentences(self.settings)
        trained_with = getattr(self.model.config, "absa_construction", None)
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
        self.pair_tokens = tuple(self.text_tokens([p.sentence for p in self.auxiliary.pairs]))

    def cost(self, texts: list[str]) -> Cost:
        """Every sentence is paired with every auxiliary sentence: 9 pairs each for nli_m."""
        sentences = [s for text in texts for s in self.splitter.split(text)]
        tokens = self.input_tokens(self.text_tokens(sentences), self.pair_tokens)
        return Cost(sentences=len(sentences), tokens=tokens)

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        sentences = [self.splitter.split(text) for text in texts]
        flat = [s for group in sentences for s in group]
        pairs = self.auxiliary.pairs
        encoded = self.preprocess(
            [s for s in flat for _ in pairs], [p.sentence for _ in flat for p in pairs]
        )
        probabilities = torch.softmax(self._forward(encoded), dim=-1).numpy()[:, self.columns]
        probabilities = probabilities.reshape(len(flat), len(pairs), -1)
        truncated = [
            any(encoded.truncated[i * len(pairs) : (i + 1) * len(pairs)]) for i in range(len(flat))
        ]

        results, start = [], 0
        for group in sentences:
            per_sentence = []
            for offset, sentence in enumerate(group):
                decoded = self.auxiliary.decode(probabilities[start + offset])
                aspects = {
                    name: {"polarity": polarity, "score": round(score, 6)}
                    for name, (polarity, score) in decoded.items()
                    if polarity != NONE
                }
                per_sentence.append({"text": sentence, "aspects": aspects})
            results.append(
                {
                    "sentences": per_sentence,
                    "aspects": aggregate([s["aspects"] for s in per_sentence]),
                    "truncated": any(truncated[start : start + len(group)]),
                }
            )
            start += len(group)
        return results

    def record_results(self, results: list[dict[str, Any]]) -> None:
        found = Counter(
            (aspect, verdict["polarity"])
            for result in results
            for aspect, verdict in result["aspects"].items()
        )
        self.metrics.count("reviews_absa_aspects_total", found)
