"""ABSA speed: the published handler's scheme against ours, same model weights, same machine.

The handler this design replaces built 45 pairs per sentence (9 aspects x 5 polarity
statements, QA-B style), padded every pair to 493 tokens and ran one sentence per forward
pass. Ours builds 9 NLI-M pairs per sentence, pads each micro-batch only to its longest
pair, and sends the pairs of all sentences of all reviews through the model together.

    review-analysis bench absa [--model-dir artifacts/models/absa] [--reviews 4]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from handlers.absa import AspectSentimentHandler
from handlers.auxiliary import AuxiliarySentences
from review_analysis.bench.subjects import SUBJECTS
from review_analysis.paths import MODELS

REVIEWS = [
    "Wir hatten hier ein sehr gutes Essen. Der Service war freundlich, aber etwas langsam. "
    "Die Preise sind für die Lage in Ordnung.",
    "Zusammenfassung: guter Service, leckeres (höheres) Essen und schöne Lage. "
    "All dies zu einem sehr vernünftigen Preis! Wir kommen wieder.",
    "Das Essen war einfach schlecht. Die Getränke kamen z.B. erst nach 30 Minuten. Nie wieder.",
    "Wir hatten hier ein paar super Cocktails. Die Einrichtung ist modern und gemütlich, "
    "die Musik leider viel zu laut.",
]


def reference_scheme(handler: AspectSentimentHandler, settings: dict, reviews: list[str]) -> None:
    """45 QA-B pairs per sentence, each padded to 493 tokens, one sentence per pass."""
    auxiliary = AuxiliarySentences({**settings, "construction": "qa_b"})
    statements = [pair.sentence for pair in auxiliary.pairs]
    with torch.inference_mode():
        for review in reviews:
            for sentence in handler.split(review):
                batch = handler.backend.tokenizer(
                    [sentence] * len(statements),
                    statements,
                    padding="max_length",
                    truncation=True,
                    max_length=493,
                    return_tensors="pt",
                )
                handler.backend.model(**batch)


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=MODELS / "absa")
    parser.add_argument("--reviews", type=int, default=4)
    args = parser.parse_args()
    absa = SUBJECTS["absa"]
    settings = absa.settings()
    handler = absa.load(args.model_dir)
    reviews = REVIEWS[: args.reviews]
    sentences = sum(len(handler.split(review)) for review in reviews)
    handler.predict(reviews[:1])  # warm-up

    ours = min(timed(handler.predict, reviews) for _ in range(3))
    reference = timed(reference_scheme, handler, settings, reviews)
    print(f"{len(reviews)} reviews, {sentences} sentences, {torch.get_num_threads()} threads")
    print("| scheme | seconds per review | seconds per sentence |")
    print("|---|---|---|")
    print(
        "| reference: 45 QA-B pairs per sentence, padded to 493, one sentence per pass | "
        f"{reference / len(reviews):.2f} | {reference / sentences:.2f} |"
    )
    print(
        "| ours: 9 NLI-M pairs per sentence, dynamic padding, one batched pass | "
        f"{ours / len(reviews):.3f} | {ours / sentences:.3f} |"
    )
    print(f"\nspeed-up: {reference / ours:.0f}x")


if __name__ == "__main__":
    main()
