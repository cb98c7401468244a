"""Build and validate the English review sentiment corpus (data/sentiment_en).

Sources (all written by the project team, one file per domain and split):
  src/sentences/{train,dev,test}/DOMAIN.txt   one sentence per line: "LABEL TAGS | text"
  src/reviews/{train,dev,test}/DOMAIN.txt     blocks: "== LABEL TAGS", one sentence per
                                              line, a blank line after each review

LABEL is "+" (positive) or "-" (negative); TAGS are comma-separated (see SENTENCE_TAGS and
REVIEW_TAGS). Writes {split}.jsonl (sentences) and reviews_{split}.jsonl.

Usage:
  python data/sentiment_en/build.py           build the JSONL files, then run the checks
  python data/sentiment_en/build.py --check   validate the committed JSONL files (and that
                                              they equal the sources), print statistics
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from review_analysis.training.corpus import DataError, build_main, near_duplicate_pairs

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
SPLITS = ("train", "dev", "test")
DOMAINS = (
    "restaurants",
    "hotels",
    "electronics",
    "apps",
    "books",
    "films",
    "clothing",
    "cars",
    "games",
    "home_services",
    "travel",
    "health_beauty",
)
LABELS = {"+": "positive", "-": "negative"}
SENTENCE_TAGS = ("plain", "implicit", "negation", "contrast", "sarcasm", "understatement", "idiom")
REVIEW_TAGS = ("plain", "misleading", "mixed")
REVIEW_SENTENCES = (3, 15)

# What the corpus promises (README): sizes, hard share, label balance, misleading openings.
MIN_SENTENCES = 4000
MIN_REVIEWS = 400
MIN_HARD_SHARE = 0.5
POSITIVE_SHARE = (0.45, 0.55)
MIN_MISLEADING_SHARE = 0.3
NEAR_DUP_JACCARD = 0.8  # word-set Jaccard >= this across splits counts as a near duplicate

SENTENCE_LINE = re.compile(r"^([+-]) ([a-z,]+) \| (\S.*)$")
REVIEW_HEADER = re.compile(r"^== ([+-]) ([a-z,]+)$")


def parse_tags(field: str, allowed: tuple[str, ...], where: str) -> list[str]:
    tags = field.split(",")
    unknown = [tag for tag in tags if tag not in allowed]
    if unknown or len(set(tags)) != len(tags):
        raise DataError(f"{where}: bad tags {field!r}")
    return tags


def read_sentences(path: Path, split: str) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path.relative_to(HERE)}:{number}"
        match = SENTENCE_LINE.match(line)
        if not match:
            raise DataError(f"{where}: not 'LABEL TAGS | text': {line!r}")
        label, tags, text = match.groups()
        rows.append(
            {
                "text": text.strip(),
                "label": LABELS[label],
                "tags": parse_tags(tags, SENTENCE_TAGS, where),
                "domain": path.stem,
                "split": split,
            }
        )
    return rows


def read_reviews(path: Path, split: str) -> list[dict]:
    reviews = []
    blocks = re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip())
    for index, block in enumerate(blocks, 1):
        where = f"{path.relative_to(HERE)} review {index}"
        header, *sentences = [line.strip() for line in block.splitlines()]
        match = REVIEW_HEADER.match(header)
        if not match:
            raise DataError(f"{where}: bad header {header!r}")
        low, high = REVIEW_SENTENCES
        if not low <= len(sentences) <= high or not all(sentences):
            raise DataError(f"{where}: {len(sentences)} sentences, not {low}-{high}")
        label, tags = match.groups()
        reviews.append(
            {
                "sentences": sentences,
                "label": LABELS[label],
                "tags": parse_tags(tags, REVIEW_TAGS, where),
                "domain": path.stem,
                "split": split,
            }
        )
    return reviews


def read_split(kind: str, split: str) -> list[dict]:
    reader = read_sentences if kind == "sentences" else read_reviews
    paths = [SRC / kind / split / f"{domain}.txt" for domain in DOMAINS]
    missing = [str(path.relative_to(HERE)) for path in paths if not path.is_file()]
    if missing:
        raise DataError(f"missing sources: {missing}")
    return [row for path in paths for row in reader(path, split)]


def build() -> dict[str, list[dict]]:
    """Every output file's rows, keyed by file name."""
    files = {}
    for split in SPLITS:
        files[f"{split}.jsonl"] = read_split("sentences", split)
        files[f"reviews_{split}.jsonl"] = read_split("reviews", split)
    return files


def near_duplicates(texts: list[tuple[str, str]]) -> list[tuple[str, str, float]]:
    """Exact duplicates anywhere, and near duplicates between splits; ``texts`` holds
    (split, text)."""
    seen: dict[str, str] = {}
    hits = []
    for _, text in texts:
        key = text.lower().strip()
        if key in seen:
            hits.append((seen[key], text, 1.0))
        seen[key] = text
    by_split = {s: [text for split, text in texts if split == s] for s in SPLITS}
    for i, first in enumerate(SPLITS):
        for second in SPLITS[i + 1 :]:
            a, b = by_split[first], by_split[second]
            pairs = near_duplicate_pairs(a, b, NEAR_DUP_JACCARD)
            hits.extend((a[x], b[y], score) for x, y, score in pairs if a[x] != b[y])
    return hits


def statistics(files: dict[str, list[dict]]) -> list[str]:
    lines = ["| file | rows | positive | hard or misleading | domains |", "|---|---|---|---|---|"]
    for name, rows in files.items():
        positive = sum(row["label"] == "positive" for row in rows) / len(rows)
        marked = "misleading" if name.startswith("reviews") else "hard"
        share = sum(
            ("misleading" in row["tags"]) if marked == "misleading" else row["tags"] != ["plain"]
            for row in rows
        ) / len(rows)
        domains = len({row["domain"] for row in rows})
        row = f"| {name} | {len(rows)} | {positive:.1%} | {share:.1%} {marked} | {domains} |"
        lines.append(row)
    return lines


def check(files: dict[str, list[dict]]) -> None:
    """Raise DataError unless the corpus keeps every promise of its README."""
    sentences = [row for split in SPLITS for row in files[f"{split}.jsonl"]]
    reviews = [row for split in SPLITS for row in files[f"reviews_{split}.jsonl"]]
    if len(sentences) < MIN_SENTENCES or len(reviews) < MIN_REVIEWS:
        raise DataError(f"{len(sentences)} sentences and {len(reviews)} reviews: too few")
    domains = {row["domain"] for row in sentences} & {row["domain"] for row in reviews}
    if domains != set(DOMAINS):
        raise DataError(f"domains missing: {sorted(set(DOMAINS) - domains)}")
    hard = sum(row["tags"] != ["plain"] for row in sentences) / len(sentences)
    if hard < MIN_HARD_SHARE:
        raise DataError(f"hard sentences are {hard:.1%}, below {MIN_HARD_SHARE:.0%}")
    low, high = POSITIVE_SHARE
    for name, rows in files.items():
        positive = sum(row["label"] == "positive" for row in rows) / len(rows)
        if not low <= positive <= high:
            raise DataError(f"{name}: {positive:.1%} positive, outside {low:.0%}-{high:.0%}")
    for split in SPLITS:
        rows = files[f"reviews_{split}.jsonl"]
        misleading = sum("misleading" in row["tags"] for row in rows) / len(rows)
        if misleading < MIN_MISLEADING_SHARE:
            raise DataError(f"reviews_{split}: {misleading:.1%} misleading openings")
    texts = [(row["split"], row["text"]) for row in sentences]
    texts += [(row["split"], " ".join(row["sentences"])) for row in reviews]
    duplicates = near_duplicates(texts)
    if duplicates:
        shown = "\n".join(f"  {a!r} ~ {b!r} ({score})" for a, b, score in duplicates[:20])
        raise DataError(f"{len(duplicates)} duplicates or cross-split near duplicates:\n{shown}")


if __name__ == "__main__":
    sys.exit(build_main(__doc__.splitlines()[0], HERE, build, check, statistics))
