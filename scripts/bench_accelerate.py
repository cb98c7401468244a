"""CPU speed-ups beyond eager fp32 for the sentiment model: speed and accuracy of each.

Eager fp32 against torch int8 dynamic quantisation, ``torch.compile``, and ONNX Runtime fp32
and int8 (``scripts/accelerate.py``, what ``build_mar.sh --accelerate`` packs): in-process
texts/s through the served handler's pipeline (same review texts, same batch size, all
cores; rounds interleave the engines so a noisy neighbour hits all alike) and accuracy on
the VADER development set and the UCI test set.

    python -m scripts.bench_accelerate [--seconds 10] [--rounds 3] [--json accelerate.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from handlers.sentiment import SentimentHandler
from scripts.accelerate import export
from scripts.bench_serving import review_texts, sentiment_handler, texts_per_second
from scripts.datasets import fetch_uci, fetch_vader, load_uci, load_vader
from scripts.train_sentiment import split_dev

ACCURACY_BATCH = 64
ENGINES = ("torch int8 dynamic", "torch.compile", "onnxruntime fp32", "onnxruntime int8")


def accuracy(handler: SentimentHandler, texts: list[str], labels: list[int]) -> float:
    predicted = [result["label"] for result in handler.predict(texts)]
    return sum(p == handler.labels[y] for p, y in zip(predicted, labels, strict=True)) / len(labels)


def engine_handlers(
    model_dir: Path, scratch: Path, threads: int
) -> dict[str, Callable[[], SentimentHandler]]:
    """Each engine as a loader of a ready handler. Speed runs pass their own batches; the
    large forward passes only make the accuracy runs over thousands of texts quicker."""

    def eager() -> SentimentHandler:
        return sentiment_handler(model_dir, ACCURACY_BATCH, threads)

    def torch_int8() -> SentimentHandler:
        return sentiment_handler(model_dir, ACCURACY_BATCH, threads, quantize="dynamic-int8")

    def compiled() -> SentimentHandler:
        handler = eager()
        handler.model = torch.compile(handler.model, dynamic=True)
        return handler

    def onnx(engine: str) -> Callable[[], SentimentHandler]:
        return lambda: sentiment_handler(
            export(model_dir, scratch / engine, engine), ACCURACY_BATCH, threads
        )

    return {
        "eager fp32": eager,
        "torch int8 dynamic": torch_int8,
        "torch.compile": compiled,
        "onnxruntime fp32": onnx("onnx"),
        "onnxruntime int8": onnx("onnx-int8"),
    }


def compare(args: argparse.Namespace) -> dict:
    _, dev = split_dev(load_vader(fetch_vader(args.downloads)), fraction=0.1, seed=13)
    uci = load_uci(fetch_uci(args.downloads))
    sets = {"VADER dev": dev, "UCI test": uci}
    texts = review_texts(args.texts)
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        loaders = engine_handlers(args.model_dir, Path(scratch), args.threads)
        handlers = {}
        for name in ["eager fp32", *args.engines]:
            load = loaders[name]
            handlers[name] = load()
            report[name] = {
                set_name: round(
                    accuracy(handlers[name], [e.text for e in data], [e.label for e in data]), 4
                )
                for set_name, data in sets.items()
            }
            print(name, report[name], flush=True)
        # Speed rounds interleave the engines, so a noisy neighbour hits all of them alike.
        for _ in range(args.rounds):
            for name, handler in handlers.items():
                speed = texts_per_second(handler, texts, args.batch_size, args.seconds)
                report[name].setdefault("texts_per_s", []).append(round(speed, 1))
    baseline = report["eager fp32"]
    for row in report.values():
        row["median_texts_per_s"] = statistics.median(row["texts_per_s"])
        row["speedup"] = round(row["median_texts_per_s"] / baseline["median_texts_per_s"], 2)
        row["accuracy_loss_points"] = {
            set_name: round((baseline[set_name] - row[set_name]) * 100, 2) for set_name in sets
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("artifacts/models/sentiment"))
    parser.add_argument("--downloads", type=Path, default=Path("artifacts/downloads"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    report = compare(args)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
