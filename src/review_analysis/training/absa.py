"""Fine-tune a sentence-pair classifier for German aspect-based sentiment (Sun et al. 2019).

Input: JSONL files of sentences with aspect/polarity labels (``data/absa_de/README.md``):

    {"text": "Das Essen war super, der Kellner nicht.",
     "labels": [{"aspect": "food", "polarity": "positive"},
                {"aspect": "service", "polarity": "negative"}]}

The auxiliary-sentence pairs are built by the serving code itself (``handlers/auxiliary.py``,
wording from ``configs/absa/model-config.yaml``) for the chosen construction. After training,
the model is evaluated through the real handler on the dev set (and on the two test sets,
never used for choices; ``test2`` was written separately from everything else):
aspect-detection micro-F1, aspect+polarity micro-F1, polarity accuracy on the gold-mentioned
aspects (an aspect the model missed counts as wrong) and a per-aspect confusion table of
gold against predicted polarity.

    review-analysis train absa --encoder artifacts/models/e5-small --output artifacts/models/absa

GermEval-2017-style data only needs an adapter that writes this JSONL (one line per sentence,
``Aspect#Category:polarity`` mapped to these aspect ids).
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from handlers.absa import AspectSentimentHandler
from handlers.auxiliary import CONSTRUCTIONS, NONE, AuxiliarySentences
from review_analysis.paths import CONFIGS, MODELS, REPO
from review_analysis.training.finetune import add_bf16_argument, fine_tune


def load_jsonl(path: Path) -> list[tuple[str, dict[str, str]]]:
    rows = []
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows.append((row["text"], {x["aspect"]: x["polarity"] for x in row["labels"]}))
    return rows


def pair_features(
    tokenizer,
    auxiliary: AuxiliarySentences,
    rows: list[tuple[str, dict[str, str]]],
    max_length: int,
) -> tuple[list[dict[str, list[int]]], torch.Tensor]:
    firsts, seconds, targets = [], [], []
    for text, gold in rows:
        for pair, target in zip(auxiliary.pairs, auxiliary.targets(gold), strict=True):
            firsts.append(text)
            seconds.append(pair.sentence)
            targets.append(auxiliary.labels.index(target))
    encoded = tokenizer(firsts, seconds, truncation="only_first", max_length=max_length)
    names = list(encoded.keys())
    features = [{name: encoded[name][i] for name in names} for i in range(len(firsts))]
    return features, torch.tensor(targets)


def absa_scores(
    golds: list[dict[str, str]], predictions: list[dict[str, dict[str, Any]]]
) -> dict[str, float]:
    detection = [0, 0, 0]  # true positives, false positives, false negatives
    polarity = [0, 0, 0]
    correct_on_mentioned = mentioned = 0
    for gold, predicted in zip(golds, predictions, strict=True):
        gold_pairs = set(gold.items())
        predicted_pairs = {(aspect, p["polarity"]) for aspect, p in predicted.items()}
        for counts, g, p in (
            (detection, set(gold), set(predicted)),
            (polarity, gold_pairs, predicted_pairs),
        ):
            counts[0] += len(g & p)
            counts[1] += len(p - g)
            counts[2] += len(g - p)
        mentioned += len(gold)
        correct_on_mentioned += len(gold_pairs & predicted_pairs)

    def f1(tp: int, fp: int, fn: int) -> float:
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0

    return {
        "aspect_detection_micro_f1": round(f1(*detection), 4),
        "aspect_polarity_micro_f1": round(f1(*polarity), 4),
        "polarity_accuracy_on_mentioned": round(correct_on_mentioned / max(1, mentioned), 4),
        "sentences": len(golds),
    }


def confusion(
    golds: list[dict[str, str]], predictions: list[dict[str, dict[str, Any]]]
) -> dict[str, dict[str, dict[str, int]]]:
    """Per aspect, gold polarity -> predicted polarity -> count; ``none`` on the gold side is
    an aspect the model invented, on the predicted side one it missed."""
    table: dict[str, dict[str, dict[str, int]]] = {}
    for gold, predicted in zip(golds, predictions, strict=True):
        for aspect in sorted(set(gold) | set(predicted)):
            truth = gold.get(aspect, "none")
            guess = predicted[aspect]["polarity"] if aspect in predicted else "none"
            row = table.setdefault(aspect, {}).setdefault(truth, {})
            row[guess] = row.get(guess, 0) + 1
    return table


def evaluate(handler: AspectSentimentHandler, rows: list[tuple[str, dict[str, str]]]) -> dict:
    predictions = []
    batch = 32
    for start in range(0, len(rows), batch):
        results = handler.predict([text for text, _ in rows[start : start + batch]])
        predictions.extend(result["aspects"] for result in results)
    golds = [gold for _, gold in rows]
    return {**absa_scores(golds, predictions), "confusion": confusion(golds, predictions)}


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    torch.set_num_threads(args.threads)
    settings = yaml.safe_load(args.config.read_text())["handler"]
    settings["construction"] = args.construction or settings.get("construction", "nli_m")
    auxiliary = AuxiliarySentences(settings)
    # Only the multi-class constructions have a `none` label to draw less of.
    none_fraction = args.none_fraction if auxiliary.multi_class else 1.0

    train_rows = load_jsonl(args.data / "train.jsonl")
    if args.limit:
        train_rows = rng.sample(train_rows, min(args.limit, len(train_rows)))
    tokenizer = AutoTokenizer.from_pretrained(args.encoder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.encoder,
        local_files_only=True,
        num_labels=len(auxiliary.labels),
        id2label=dict(enumerate(auxiliary.labels)),
        label2id={label: i for i, label in enumerate(auxiliary.labels)},
    )
    model.config.absa_construction = auxiliary.construction
    # The word embeddings are most of the parameters; freezing them keeps each step cheap and
    # leaves the vocabulary the training sentences never touch as the encoder learned it.
    model.get_input_embeddings().weight.requires_grad = False
    features, labels = pair_features(tokenizer, auxiliary, train_rows, args.max_length)
    print(
        f"{auxiliary.construction}: {len(train_rows)} sentences -> {len(features)} pairs",
        flush=True,
    )
    seconds = fine_tune(
        model,
        tokenizer,
        features,
        labels,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        rng=rng,
        head_lr=args.head_lr,
        bf16=args.bf16,
        keep_probability=[
            none_fraction if auxiliary.labels[label] == NONE else 1.0 for label in labels.tolist()
        ],
    )
    if none_fraction < 1:
        # Training saw the pairs of unmentioned aspects at this rate: shift the `none` logit
        # by -log(rate), so the model answers with the true prior.
        none = auxiliary.labels.index(NONE)
        with torch.no_grad():
            model.classifier.bias[none] -= math.log(none_fraction)
    args.output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.output)
    tokenizer.save_pretrained(args.output)

    handler = AspectSentimentHandler()
    handler.configure({**settings, "max_length": args.max_length, "threads": args.threads})
    handler.load(args.output)
    report = {
        "encoder": str(args.encoder),
        "construction": auxiliary.construction,
        "settings": {
            k: getattr(args, k)
            for k in (
                "epochs",
                "lr",
                "head_lr",
                "batch_size",
                "bf16",
                "none_fraction",
                "seed",
            )
        },
        "train_sentences": len(train_rows),
        "train_seconds": round(seconds),
        "dev": evaluate(handler, load_jsonl(args.data / "dev.jsonl")),
    }
    if args.report_test:
        for split in ("test", "test2"):
            report[split] = evaluate(handler, load_jsonl(args.data / f"{split}.jsonl"))
    (args.output / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", type=Path, default=MODELS / "e5-small")
    parser.add_argument("--output", type=Path, default=MODELS / "absa")
    parser.add_argument("--data", type=Path, default=REPO / "data/absa_de")
    parser.add_argument("--config", type=Path, default=CONFIGS / "absa" / "model-config.yaml")
    parser.add_argument("--construction", choices=CONSTRUCTIONS)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--head-lr", type=float, default=2e-3, help="classifier and pooler")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument(
        "--none-fraction",
        type=float,
        default=0.5,
        help="NLI-M/QA-M: share of the pairs of unmentioned aspects each epoch trains on",
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--limit", type=int, default=0, help="train on at most N sentences")
    parser.add_argument(
        "--report-test", action="store_true", help="also score the two held-out test sets"
    )
    add_bf16_argument(parser)
    return parser.parse_args()


if __name__ == "__main__":
    print(json.dumps(train(parse_args()), indent=2))
