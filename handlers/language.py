"""Language identification, per sentence and per text: a worked example of the handler contract.

A text fans out into its sentences (``split``), each one model input; the sentences'
probabilities fold back (``fold``) into a language per sentence and one per text, the
language with the highest mean probability over the text's sentences, so a review that
quotes a sentence in another language still gets the language it is mostly written in. The
base class parses, limits, batches, costs and adds ``truncated``; the backend (torch, ONNX)
comes from the model directory, and the label set (e.g. ``de``, ``en``, ``fr``) from its
``config.json``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from handlers.base import TextClassifierHandler
from handlers.sentences import SentenceSplitter


class LanguageHandler(TextClassifierHandler):
    def setup(self) -> None:
        # Punkt's English model: its sentence boundaries hold for most Latin-script languages.
        self.splitter = SentenceSplitter.from_settings(self.settings, "english")

    def split(self, text: str) -> list[str]:
        return self.splitter.split(text)

    def fold(self, units: list[str], probabilities: np.ndarray) -> dict[str, Any]:
        """``probabilities``: (sentences, languages), softmax over each row."""
        mean = probabilities.mean(axis=0)
        scores = self.label_scores(mean)
        language = self.labels[int(mean.argmax())]
        return {
            "language": language,
            "score": scores[language],
            "scores": scores,
            "sentences": [
                {
                    "text": sentence,
                    "language": self.labels[int(row.argmax())],
                    "score": round(float(row.max()), 6),
                }
                for sentence, row in zip(units, probabilities, strict=True)
            ],
        }
