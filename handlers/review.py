"""Review analysis: sentiment and toxicity of every text in one call.

The archive packs both models (``model/sentiment``, ``model/toxicity``); their handlers run
on the same texts in two threads at once (PyTorch and scikit-learn release the GIL while they
compute), so a call costs about as much as the slower of the two, not their sum.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from handlers.base import TextClassifierHandler
from handlers.sentiment import SentimentHandler
from handlers.toxicity import ToxicityHandler


class ReviewHandler(TextClassifierHandler):
    def load(self, model_dir: Path) -> None:
        self.parts: dict[str, TextClassifierHandler] = {
            "sentiment": SentimentHandler(),
            "toxicity": ToxicityHandler(),
        }
        for name, part in self.parts.items():
            # Each part reads the shared settings plus its own section (e.g. toxicity thresholds).
            part.configure({**self.settings, **self.settings.get(name, {})})
            part.load(model_dir / name)
        self.pool = ThreadPoolExecutor(len(self.parts), thread_name_prefix="review")

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        futures = {name: self.pool.submit(part.predict, texts) for name, part in self.parts.items()}
        answers = {name: future.result() for name, future in futures.items()}
        return [{name: answers[name][i] for name in self.parts} for i in range(len(texts))]
