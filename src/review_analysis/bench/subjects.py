"""The bundle's models as benchmark subjects: weights, handler, model config and input texts,
and their in-process measurements (in spawned processes, so these live in an importable
module: a function of a benchmark run as ``__main__`` cannot be pickled).

The serving benchmark (``review_analysis.bench.serving``), its tutorial baseline
(``review_analysis.bench.baseline_flask``) and the speed-up comparison
(``review_analysis.bench.accelerate``)
all take a subject by name and load it in-process exactly as a TorchServe worker does: the
handler class, the handler section of ``configs/<name>/model-config.yaml``, the model
directory laid out as inside the archive.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import random
import statistics
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from handlers.base import DEFAULT_SETTINGS, RequestHandler
from review_analysis import registry
from review_analysis.paths import DOWNLOADS, MODELS, REPO
from review_analysis.training.datasets import fetch_uci, load_uci

# How many sentences make one benchmark review: mostly short, some long.
ENGLISH_SENTENCES_PER_REVIEW = (1, 1, 1, 1, 2, 2, 3, 5, 8)
GERMAN_SENTENCES_PER_REVIEW = (1, 1, 2, 2, 3, 4)


def english_reviews(
    count: int = 400,
    seed: int = 0,
    downloads: Path = DOWNLOADS,
    sentences_per_review: tuple[int, ...] = ENGLISH_SENTENCES_PER_REVIEW,
) -> list[str]:
    """Reviews of 1 to 8 (or ``sentences_per_review``) consecutive sentences of one site
    (amazon, imdb, yelp) of UCI."""
    by_site: dict[str, list[str]] = defaultdict(list)
    for example in load_uci(fetch_uci(downloads)):
        by_site[example.source].append(example.text)
    rng = random.Random(seed)
    return [
        consecutive(by_site[rng.choice(sorted(by_site))], sentences_per_review, rng)
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


def handler_class(module: str) -> type[RequestHandler]:
    """The class of ``handlers/<module>.py``: TorchServe's rule is one class per module."""
    loaded = importlib.import_module(f"handlers.{module}")
    (found,) = [
        value
        for value in vars(loaded).values()
        if isinstance(value, type) and value.__module__ == loaded.__name__
    ]
    return found


@dataclass(frozen=True)
class Subject:
    """One task of the bundle (configs/models.yaml), named as it is served."""

    task: registry.Task
    # build_mar.sh --accelerate engines that apply to this model's weights.
    accelerations: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def handler(self) -> str:
        """The handler module, build_mar.sh's --handler."""
        return self.task.handler

    @property
    def config(self) -> Path:
        return self.task.model_config

    @property
    def parts(self) -> dict[str, Path]:
        """Model directories as build_mar.sh packs them: {"": dir} for one model, {part: dir}
        for a handler that combines models (review)."""
        return {part: MODELS / name for part, name in self.task.parts.items()}

    def model_config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config.read_text())

    def settings(self) -> dict[str, Any]:
        """The handler's settings as served: the defaults under the model config's overrides."""
        return {**DEFAULT_SETTINGS, **self.model_config()["handler"]}

    def model_dir_specs(self, single: Path | None = None) -> list[str]:
        """build_mar.sh --model-dir values; ``single`` replaces a one-part model's directory."""
        return [str(single)] if single else self.task.model_dir_specs()

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
            if self.task.language == "german"
            else english_reviews(count, seed)
        )

    def reviews_of(self, sentences: int, count: int = 400, seed: int = 0) -> list[str]:
        """English reviews of exactly ``sentences`` sentences each."""
        return english_reviews(count, seed, sentences_per_review=(sentences,))

    def load(self, model_dir: Path, **settings: Any) -> RequestHandler:
        """The served handler in-process, its model config's settings overridden by ``settings``."""
        handler = handler_class(self.handler)()
        handler.configure({**self.model_config()["handler"], **settings})
        handler.load(model_dir)
        return handler


def texts_per_second(
    handler: RequestHandler, texts: list[str], batch_size: int, seconds: float
) -> float:
    """Consecutive chunks of ``batch_size`` texts through ``handler.predict`` for ``seconds``."""
    chunks = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
    handler.predict(chunks[0])
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for chunk in chunks:
            handler.predict(chunk)
            done += len(chunk)
            if time.perf_counter() - started >= seconds:
                break
    return done / (time.perf_counter() - started)


def parse_layout(layout: str) -> tuple[int, int]:
    workers, threads = layout.split("x")
    return int(workers), int(threads)


def measure_worker(
    subject: str, model_dir: Path, texts: list[str], batch_size: int, threads: int, seconds, barrier
) -> float:
    handler = SUBJECTS[subject].load(model_dir, inference_batch_size=batch_size, threads=threads)
    handler.predict(texts[:batch_size])
    barrier.wait()
    return texts_per_second(handler, texts, batch_size, seconds)


def in_process_rate(
    subject: Subject,
    model_dir: Path,
    texts: list[str],
    batch_size: int,
    layout: str,
    seconds: float,
) -> float:
    """Texts/s of a layout's processes measuring at once (fresh processes: forking after
    OpenMP has run can hang the child)."""
    processes, threads = parse_layout(layout)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(processes, mp_context=context) as pool:
        barrier = manager.Barrier(processes)
        futures = [
            pool.submit(
                measure_worker,
                subject.name,
                model_dir,
                texts,
                batch_size,
                threads,
                seconds,
                barrier,
            )
            for _ in range(processes)
        ]
        return sum(future.result() for future in futures)


def single_text_ms(handler: RequestHandler, texts: list[str], seconds: float) -> dict[str, float]:
    """Median and 99th percentile of one text alone, over the mix of lengths: the model's own
    spread, with no queue and no server."""
    durations = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for text in texts:
            began = time.perf_counter()
            handler.predict([text])
            durations.append((time.perf_counter() - began) * 1000)
            if time.perf_counter() - started >= seconds:
                break
    percentiles = statistics.quantiles(durations, n=100)
    p50, p99 = percentiles[49], percentiles[98]
    return {"p50": round(p50, 2), "p99": round(p99, 2)}


def single_text_worker(subject: str, model_dir: Path, texts: list[str], threads: int, seconds):
    handler = SUBJECTS[subject].load(model_dir, threads=threads)
    handler.predict(texts[:1])
    return single_text_ms(handler, texts, seconds)


def single_text_time(
    subject: Subject, model_dir: Path, texts: list[str], threads: int, seconds: float
) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(
            single_text_worker, subject.name, model_dir, texts, threads, seconds
        ).result()


# The --accelerate engines worth measuring per task (docs/BENCHMARKS.md: int8 costs ABSA 10
# points of F1; the TF-IDF toxicity model has no weights to convert).
ACCELERATIONS = {"sentiment": ("bf16", "onnx-int8"), "absa": ("bf16",)}
SUBJECTS = {
    name: Subject(task, ACCELERATIONS.get(name, ())) for name, task in registry.load().tasks.items()
}
