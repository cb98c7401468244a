"""Tokens per second of one single-threaded worker: the speed the compute limits derive from.

    review-analysis bench tokens artifacts/models/sentiment
    review-analysis bench tokens artifacts/models/e5-small --pair Essen

A batch must end inside the model's ``responseTimeout`` or TorchServe kills the worker, so
``max_tokens_per_batch`` in each configs/*/model-config.yaml is that timeout x the slowest
tokens/s seen here, divided by the share of a core a worker may get (docs/RELIABILITY.md).
Inputs of several lengths go through the model in passes as the handler forms them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from review_analysis.bench.machine import cpu_name

SENTENCE = "the food was really very good and plentiful but the service was slow and rude " * 8


def tokens_per_second(model, tokenizer, words: int, batch: int, pair: str | None) -> tuple:
    text = " ".join(SENTENCE.split()[:words])
    encoded = tokenizer(
        [text] * batch,
        [pair] * batch if pair else None,
        truncation="only_first" if pair else True,
        max_length=128,
        padding=True,
        return_tensors="pt",
    )
    length = encoded["input_ids"].shape[1]
    with torch.inference_mode():
        model(**encoded)  # warm-up
        started = time.perf_counter()
        repeats = 3
        for _ in range(repeats):
            model(**encoded)
        seconds = (time.perf_counter() - started) / repeats
    return length, batch * length / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--pair", help="a second part for every input (ABSA: an aspect term)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model_dir, local_files_only=True
    ).eval()
    print(f"{args.model_dir} on {cpu_name()}, 1 thread:")
    for words, batch in ((3, 64), (12, 64), (40, 32), (120, 16)):
        length, speed = tokens_per_second(model, tokenizer, words, batch, args.pair)
        print(f"  inputs of {length:>3} tokens, {batch} a pass: {speed:>6.0f} tokens/s")


if __name__ == "__main__":
    main()
