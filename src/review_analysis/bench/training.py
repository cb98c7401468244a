"""Training speed in float32 against bfloat16 autocast, per recipe, on this machine's CPU.

Each subject is a recipe's encoder on a random sample of its own training inputs, cut at the
recipe's length: ABSA (e5-small on NLI-M sentence pairs of ``data/absa_de``), toxicity
(MiniLM-L6 on the team's comments, 96 tokens) and sentiment (MiniLM-L6 on the review corpus's
sentences, 64 tokens). ``fine_tune`` itself runs the batches, so what is timed is the shipped
training step; float32 and bfloat16 alternate for ``--rounds`` rounds after a warm-up.

    review-analysis bench training [--batches 25] [--rounds 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch
import yaml

from handlers.auxiliary import AuxiliarySentences
from review_analysis.bench.machine import machine, publish
from review_analysis.paths import CONFIGS, MODELS, REPO, SENTIMENT_CORPUS, TOXICITY_CORPUS
from review_analysis.training import absa
from review_analysis.training.datasets import load_corpus_sentences, load_toxicity_comments
from review_analysis.training.finetune import default_encoder_dir, fine_tune, load_classifier

BATCH_SIZE = 32
SUBJECTS = ("absa", "toxicity", "sentiment")


def subject(name: str) -> tuple[torch.nn.Module, object, list[dict[str, list[int]]], int]:
    """A fresh classifier of the recipe, its tokenizer, tokenized inputs and label count."""
    if name == "absa":
        settings = yaml.safe_load((CONFIGS / "absa" / "model-config.yaml").read_text())
        auxiliary = AuxiliarySentences(settings["handler"])
        model, tokenizer = load_classifier(MODELS / "e5-small", auxiliary.labels, True)
        rows = absa.load_jsonl(REPO / "data/absa_de/train.jsonl")
        features, _ = absa.pair_features(tokenizer, auxiliary, rows, 128)
        return model, tokenizer, features, len(auxiliary.labels)
    texts, max_length = {
        "toxicity": ([c.text for c in load_toxicity_comments(TOXICITY_CORPUS, "train")], 96),
        "sentiment": ([e.text for e in load_corpus_sentences(SENTIMENT_CORPUS, "train")], 64),
    }[name]
    model, tokenizer = load_classifier(default_encoder_dir(), ("a", "b"), True)
    encoded = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    return model, tokenizer, [{"input_ids": ids} for ids in encoded], 2


def seconds_per_batch(name: str, batches: int, rounds: int) -> dict[str, list[float]]:
    model, tokenizer, features, labels = subject(name)
    rng = random.Random(0)
    times: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    for round_ in range(rounds + 1):  # round 0 warms up both
        for bf16 in (False, True):
            sample = rng.sample(features, BATCH_SIZE * (batches if round_ else 3))
            targets = torch.randint(0, labels, (len(sample),))
            seconds = fine_tune(
                model,
                tokenizer,
                sample,
                targets,
                epochs=1,
                lr=1e-5,
                batch_size=BATCH_SIZE,
                rng=rng,
                bf16=bf16,
            )
            if round_:
                times["bfloat16" if bf16 else "float32"].append(round(seconds / batches, 3))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--subjects", nargs="+", choices=SUBJECTS, default=list(SUBJECTS), help="recipes to time"
    )
    parser.add_argument("--batches", type=int, default=25, help="timed batches per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report: dict = {"machine": machine(), "threads": args.threads}
    for name in args.subjects:
        times = seconds_per_batch(name, args.batches, args.rounds)
        speedup = sum(times["float32"]) / sum(times["bfloat16"])
        report[name] = {**times, "bfloat16_speedup": round(speedup, 2)}
        print(name, report[name], flush=True)
    publish(report, args.json)


if __name__ == "__main__":
    main()
