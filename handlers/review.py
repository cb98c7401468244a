"""Review analysis: sentiment and toxicity of every text in one call.

The archive packs both models (``model/sentiment``, ``model/toxicity``) and runs both task
handlers on the same texts inside one worker: no second HTTP hop, no workflow. The review
handler holds no model of its own: it fans each request out once per part and answers with
both parts' answers. With ``parallel_parts: true`` the two run in two threads at once, which
pays off when each model alone cannot use all cores; on 2 cores, where PyTorch already uses
both, one after the other is faster (measured by src/review_analysis/bench/review.py,
docs/BENCHMARKS.md), so that is the default.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from handlers.base import PartsWork, RequestHandler, TextClassifierHandler
from handlers.sentiment import SentimentHandler
from handlers.toxicity import ToxicityHandler


class ReviewHandler(RequestHandler):
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

    def prepare(self, texts: list[str]) -> PartsWork:
        return PartsWork({name: part.prepare(texts) for name, part in self.parts.items()})

    def infer(self, works: list[PartsWork]) -> list[dict[str, Any]]:
        inputs = {name: [work.parts[name] for work in works] for name in self.parts}
        if self.pool is None:
            answers = {name: part.infer(inputs[name]) for name, part in self.parts.items()}
        else:
            futures = {
                name: self.pool.submit(part.infer, inputs[name])
                for name, part in self.parts.items()
            }
            answers = {name: future.result() for name, future in futures.items()}
        # One answer per text from each part, in the parts' order.
        return [dict(zip(answers, row, strict=True)) for row in zip(*answers.values(), strict=True)]

    def record_results(self, results: list[dict[str, Any]]) -> None:
        for name, part in self.parts.items():
            part.record_results([result[name] for result in results])
