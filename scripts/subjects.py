"""The bundle's models as benchmark subjects: weights, handler, model config and input texts.

The serving benchmark (``scripts/bench_serving.py``), its tutorial baseline
(``scripts/baseline_flask.py``) and the speed-up comparison (``scripts/bench_accelerate.py``)
all take a subject by name and load it in-process exactly as a TorchServe worker does: the
handler class, the handler section of ``configs/<name>/model-config.yaml``, the model
directory laid out as inside the archive.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from handlers.absa import AspectSentimentHandler
from handlers.base import TextClassifierHandler
from handlers.review import ReviewHandler
from handlers.sentiment import SentimentHandler
from handlers.toxicity import ToxicityHandler
from scripts.datasets import fetch_uci, load_uci
from scripts.torchserve import REPO

MODELS = REPO / "artifacts" / "models"
# How many sentences make one benchmark review: mostly short, some long.
ENGLISH_SENTENCES_PER_REVIEW = (1, 1, 1, 1, 2, 2, 3, 5, 8)
GERMAN_SENTENCES_PER_REVIEW = (1, 1, 2, 2, 3, 4)


def english_reviews(
    count: int = 400, seed: int = 0, downloads: Path = REPO / "artifacts/downloads"
) -> list[str]:
    """Reviews of 1 to 8 consecutive sentences of one site (amazon, imdb, yelp) of UCI."""
    by_site: dict[str, list[str]] = defaultdict(list)
    for example in load_uci(fetch_uci(downloads)):
        by_site[example.source].append(example.text)
    rng = random.Random(seed)
    return [
        consecutive(by_site[rng.choice(sorted(by_site))], ENGLISH_SENTENCES_PER_REVIEW, rng)
        for _ in range(count)
    ]


def german_reviews(count: int = 400, seed: int = 0) -> list[str]:
    """Restaurant reviews of 1 to 4 consecutive sentences of the German ABSA training set."""
    lines = (REPO / "data/absa_de/train.jsonl").read_text(encoding="utf-8").splitlines()
    sentences = [json.loads(line)["text"] for line in lines]
    rng = random.Random(seed)
    return [consecutive(sentences, GERMAN_SENTENCES_PER_REVIEW, rng) for _ in range(count)]


def consecutive(sentences: list[str], lengths: tuple[int, ...], rng: random.Random) -> str:
    length = rng.choice(lengths)
    start = rng.randrange(len(sentences) - length)
    return " ".join(sentences[start : start + length])


@dataclass(frozen=True)
class Subject:
    """One model of the bundle, named as it is served (``/predictions/<name>``)."""

    name: str
    handler_class: type[TextClassifierHandler]
    # Model directories as build_mar.sh packs them: {"": dir} for one model, {part: dir} for
    # a handler that combines models (review).
    parts: dict[str, Path]
    language: str
    # build_mar.sh --accelerate engines that apply to this model's weights.
    accelerations: tuple[str, ...] = field(default=())

    @property
    def handler(self) -> str:
        """The handler module, build_mar.sh's --handler."""
        return self.name

    @property
    def config(self) -> Path:
        return REPO / "configs" / self.name / "model-config.yaml"

    def model_config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config.read_text())

    def model_dir_specs(self, single: Path | None = None) -> list[str]:
        """build_mar.sh --model-dir values; ``single`` replaces a one-part model's directory."""
        if "" in self.parts:
            return [str(single or self.parts[""])]
        return [f"{part}={directory}" for part, directory in self.parts.items()]

    def model_dir(self, scratch: Path) -> Path:
        """The weights laid out as the archive's model/ directory."""
        if "" in self.parts:
            return self.parts[""]
        layout = scratch / f"{self.name}-model"
        layout.mkdir(parents=True, exist_ok=True)
        for part, directory in self.parts.items():
            link = layout / part
            if not link.exists():
                link.symlink_to(directory.resolve())
        return layout

    def texts(self, count: int = 400, seed: int = 0) -> list[str]:
        return (
            german_reviews(count, seed)
            if self.language == "german"
            else english_reviews(count, seed)
        )

    def load(self, model_dir: Path, **settings: Any) -> TextClassifierHandler:
        """The served handler in-process, its model config's settings overridden by ``settings``."""
        handler = self.handler_class()
        handler.configure({**self.model_config()["handler"], **settings})
        handler.load(model_dir)
        return handler


SUBJECTS = {
    subject.name: subject
    for subject in (
        Subject(
            "sentiment",
            SentimentHandler,
            {"": MODELS / "sentiment"},
            "english",
            ("bf16", "onnx-int8"),
        ),
        Subject("toxicity", ToxicityHandler, {"": MODELS / "toxicity"}, "english"),
        Subject(
            "review",
            ReviewHandler,
            {"sentiment": MODELS / "sentiment", "toxicity": MODELS / "toxicity"},
            "english",
        ),
        Subject("absa", AspectSentimentHandler, {"": MODELS / "absa"}, "german", ("bf16",)),
    )
}
