"""Review analysis: sentiment and toxicity of every text in one call.

The archive packs both models (``model/sentiment``, ``model/toxicity``) and runs both
handlers on the same texts inside one worker: no second HTTP hop, no workflow. With
``parallel_parts: true`` the two run in two threads at once, which pays off when each model
alone cannot use all cores; on 2 cores, where PyTorch already uses both, one after the other
is faster (measured by scripts/bench_review.py, docs/BENCHMARKS.md), so that is the default.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from handlers.base import Cost, TextClassifierHandler
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
            part.configure({**self.settings, **self.settings.get(name, {})}, self.workers)
            part.load(model_dir / name)
            # The parts count their labels and flags under the review model's name.
            part.metrics = self.metrics
        self.pool = (
            ThreadPoolExecutor(len(self.parts), thread_name_prefix="review")
            if self.settings.get("parallel_parts", False)
            else None
        )

    def cost(self, texts: list[str]) -> Cost:
        """Both parts' tokens; the sentences echoed are the toxicity part's."""
        costs = {name: part.cost(texts) for name, part in self.parts.items()}
        return Cost(
            sentences=costs["toxicity"].sentences,
            tokens=sum(cost.tokens for cost in costs.values()),
        )

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        if self.pool is None:
            answers = {name: part.predict(texts) for name, part in self.parts.items()}
        else:
            futures = {
                name: self.pool.submit(part.predict, texts) for name, part in self.parts.items()
            }
            answers = {name: future.result() for name, future in futures.items()}
        return [{name: answers[name][i] for name in self.parts} for i in range(len(texts))]

    def record_results(self, results: list[dict[str, Any]]) -> None:
        for name, part in self.parts.items():
            part.record_results([result[name] for result in results])
