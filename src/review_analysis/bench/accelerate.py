"""CPU speed-ups beyond eager fp32: speed and accuracy of each, for sentiment or ABSA.

Eager fp32 against bfloat16 weights, torch int8 dynamic quantisation, ``torch.compile``, and
ONNX Runtime fp32 and int8 (``review_analysis.training.accelerate``, what ``build_mar.sh
--accelerate`` packs): in-process texts/s through the served handler's pipeline (same review
texts, same batch sizes; rounds interleave the engines so a noisy neighbour hits all alike) and
the model's quality on its evaluation sets: sentiment accuracy on the VADER development set and
the UCI test set; ABSA aspect + polarity micro-F1 on the German dev and test sets.

    review-analysis bench accelerate [--model sentiment] [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from handlers.base import RequestHandler
from review_analysis.bench.machine import publish
from review_analysis.bench.subjects import SUBJECTS, texts_per_second
from review_analysis.paths import DOWNLOADS, REPO
from review_analysis.training.absa import evaluate, load_jsonl
from review_analysis.training.accelerate import export
from review_analysis.training.datasets import fetch_uci, fetch_vader, load_uci, load_vader
from review_analysis.training.sentiment import split_dev

ACCURACY_BATCH = 64
ENGINES = {
    "sentiment": (
        "torch bf16",
        "torch int8 dynamic",
        "torch.compile",
        "onnxruntime fp32",
        "onnxruntime int8",
    ),
    # The ONNX export is checked on single texts only, not on ABSA's sentence pairs.
    "absa": ("torch bf16", "torch int8 dynamic"),
}


def sentiment_quality(downloads: Path) -> Callable[[RequestHandler], dict[str, float]]:
    _, dev = split_dev(load_vader(fetch_vader(downloads)), fraction=0.1, seed=13)
    sets = {"VADER dev accuracy": dev, "UCI test accuracy": load_uci(fetch_uci(downloads))}

    def quality(handler: RequestHandler) -> dict[str, float]:
        scores = {}
        for name, examples in sets.items():
            texts = [example.text for example in examples]
            # Calls of a batch's size: a call may hold at most max_sentences_per_request.
            predicted = [
                result
                for start in range(0, len(texts), ACCURACY_BATCH)
                for result in handler.predict(texts[start : start + ACCURACY_BATCH])
            ]
            correct = sum(
                result["label"] == handler.labels[example.label]
                for result, example in zip(predicted, examples, strict=True)
            )
            scores[name] = round(100 * correct / len(examples), 2)
        return scores

    return quality


def absa_quality(data: Path) -> Callable[[RequestHandler], dict[str, float]]:
    sets = {name: load_jsonl(data / f"{name}.jsonl") for name in ("dev", "test")}

    def quality(handler: RequestHandler) -> dict[str, float]:
        return {
            f"{name} aspect+polarity F1": round(
                100 * evaluate(handler, rows)["aspect_polarity_micro_f1"], 2
            )
            for name, rows in sets.items()
        }

    return quality


def engine_handlers(
    model: str, model_dir: Path, scratch: Path, threads: int
) -> dict[str, Callable[[], RequestHandler]]:
    """Each engine as a loader of a ready handler. Speed runs pass their own batches; the
    large forward passes only make the accuracy runs over thousands of texts quicker."""

    def load(directory: Path, **settings: str) -> RequestHandler:
        return SUBJECTS[model].load(
            directory, inference_batch_size=ACCURACY_BATCH, threads=threads, **settings
        )

    def compiled() -> RequestHandler:
        handler = load(model_dir)
        handler.backend.model = torch.compile(handler.backend.model, dynamic=True)
        return handler

    def exported(engine: str) -> Callable[[], RequestHandler]:
        return lambda: load(export(model_dir, scratch / engine, engine))

    return {
        "eager fp32": lambda: load(model_dir),
        "torch bf16": exported("bf16"),
        "torch int8 dynamic": lambda: load(model_dir, quantize="dynamic-int8"),
        "torch.compile": compiled,
        "onnxruntime fp32": exported("onnx"),
        "onnxruntime int8": exported("onnx-int8"),
    }


def compare(args: argparse.Namespace) -> dict:
    subject = SUBJECTS[args.model]
    quality = (
        sentiment_quality(args.downloads)
        if args.model == "sentiment"
        else absa_quality(REPO / "data/absa_de")
    )
    texts = subject.texts(args.texts)
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        loaders = engine_handlers(args.model, subject.parts[""], Path(scratch), args.threads)
        handlers = {}
        for name in ["eager fp32", *args.engines]:
            handlers[name] = loaders[name]()
            report[name] = {"quality": quality(handlers[name]), "texts_per_s": {}}
            print(name, report[name]["quality"], flush=True)
        # Speed rounds interleave the engines, so a noisy neighbour hits all of them alike.
        for _ in range(args.rounds):
            for batch_size in args.batch_sizes:
                for name, handler in handlers.items():
                    speed = texts_per_second(handler, texts, batch_size, args.seconds)
                    speeds = report[name]["texts_per_s"].setdefault(f"batch {batch_size}", [])
                    speeds.append(round(speed, 1))
    baseline = report["eager fp32"]
    for row in report.values():
        row["median_texts_per_s"] = {
            batch: statistics.median(speeds) for batch, speeds in row["texts_per_s"].items()
        }
        row["speedup"] = {
            batch: round(speed / baseline["median_texts_per_s"][batch], 2)
            for batch, speed in row["median_texts_per_s"].items()
        }
        row["quality_loss_points"] = {
            name: round(baseline["quality"][name] - value, 2)
            for name, value in row["quality"].items()
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(ENGINES), default="sentiment")
    parser.add_argument("--downloads", type=Path, default=DOWNLOADS)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    # One thread: a worker of the shipped layout (one single-threaded worker per core).
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", nargs="+", help="default: every engine of the model")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    args.engines = args.engines or list(ENGINES[args.model])
    unknown = set(args.engines) - set(ENGINES[args.model])
    if unknown:
        parser.error(f"engines {sorted(unknown)} are not measured for {args.model}")
    report = compare(args)
    publish(report, args.json)


if __name__ == "__main__":
    main()
