"""Build and validate the English toxic-comment corpus (data/toxicity_en).

Sources (all written by the project team, one file per context and split):
  src/{train,dev,test}/CONTEXT.txt   one comment per line: "LABELS | KIND | text"

LABELS is "none" or comma-separated Detoxify labels; KIND is what the writer set out to
write (README). Writes {split}.jsonl with all six labels as 0/1 on every row.

Usage:
  python data/toxicity_en/build.py           build the JSONL files, then run the checks
  python data/toxicity_en/build.py --check   validate the committed JSONL files (and that
                                             they equal the sources), print statistics
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

from review_analysis.training.corpus import DataError, build_main, near_duplicate_pairs

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
SPLITS = ("train", "dev", "test")
LABELS = ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack")
TOXIC_KINDS = ("insult", "threat", "identity", "obscene", "severe", "rude")
HARD_KINDS = (
    "complaint",
    "praise_profanity",
    "quoted",
    "sarcasm",
    "company",
    "figurative",
    "identity_mention",
    "legal",
)
KINDS = TOXIC_KINDS + HARD_KINDS + ("civil",)

# What the corpus promises (README): size, hard-negative share, every label well represented
# overall and in each held-out split (so that dev and test can measure each label).
MIN_COMMENTS = 3000
MIN_HARD_SHARE = 0.4
MIN_LABEL_ROWS = {"threat": 300, "identity_attack": 250, "severe_toxicity": 200}
MIN_HELD_OUT_LABEL_ROWS = 40
NEAR_DUP_JACCARD = 0.8  # word-set Jaccard >= this across splits counts as a near duplicate

LINE = re.compile(r"^(none|[a-z_,]+) \| ([a-z_]+) \| (\S.*)$")


def parse_labels(field: str, kind: str, where: str) -> dict[str, int]:
    if kind not in KINDS:
        raise DataError(f"{where}: unknown kind {kind!r}")
    names = [] if field == "none" else field.split(",")
    unknown = [name for name in names if name not in LABELS]
    if unknown or len(set(names)) != len(names):
        raise DataError(f"{where}: bad labels {field!r}")
    if names and "toxicity" not in names:
        raise DataError(f"{where}: every toxic label implies toxicity: {field!r}")
    if bool(names) != (kind in TOXIC_KINDS):
        raise DataError(f"{where}: kind {kind!r} with labels {field!r}")
    return {label: int(label in names) for label in LABELS}


def read_source(path: Path, split: str) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path.relative_to(HERE)}:{number}"
        match = LINE.match(line)
        if not match:
            raise DataError(f"{where}: not 'LABELS | KIND | text': {line!r}")
        labels, kind, text = match.groups()
        rows.append(
            {
                "text": text.strip(),
                "labels": parse_labels(labels, kind, where),
                "kind": kind,
                "context": path.stem,
                "split": split,
            }
        )
    return rows


def build() -> dict[str, list[dict]]:
    """Every output file's rows, keyed by file name ({split}.jsonl)."""
    files = {}
    for split in SPLITS:
        paths = sorted((SRC / split).glob("*.txt"))
        if not paths:
            raise DataError(f"no sources in src/{split}")
        files[f"{split}.jsonl"] = [row for path in paths for row in read_source(path, split)]
    return files


def duplicates(files: dict[str, list[dict]]) -> list[tuple[str, str, float]]:
    """Exact duplicates anywhere, and near duplicates between splits."""
    hits = []
    seen: dict[str, str] = {}
    for rows in files.values():
        for row in rows:
            key = row["text"].lower()
            if key in seen:
                hits.append((seen[key], row["text"], 1.0))
            seen[key] = row["text"]
    for i, first in enumerate(SPLITS):
        for second in SPLITS[i + 1 :]:
            a = [row["text"] for row in files[first]]
            b = [row["text"] for row in files[second]]
            hits.extend((a[x], b[y], s) for x, y, s in near_duplicate_pairs(a, b, NEAR_DUP_JACCARD))
    return hits


def statistics(files: dict[str, list[dict]]) -> list[str]:
    header = "| split | comments | " + " | ".join(LABELS) + " | hard negatives | contexts |"
    lines = [header, "|---" * (len(LABELS) + 4) + "|"]
    for name, rows in files.items():
        split = name.removesuffix(".jsonl")
        counts = [str(sum(row["labels"][label] for row in rows)) for label in LABELS]
        hard = sum(row["kind"] in HARD_KINDS for row in rows) / len(rows)
        contexts = len({row["context"] for row in rows})
        lines.append(f"| {split} | {len(rows)} | {' | '.join(counts)} | {hard:.1%} | {contexts} |")
    return lines


def check(files: dict[str, list[dict]]) -> None:
    """Raise DataError unless the corpus keeps every promise of its README."""
    by_split = {split: files[f"{split}.jsonl"] for split in SPLITS}
    rows = [row for split in SPLITS for row in by_split[split]]
    if len(rows) < MIN_COMMENTS:
        raise DataError(f"{len(rows)} comments, fewer than {MIN_COMMENTS}")
    hard = sum(row["kind"] in HARD_KINDS for row in rows) / len(rows)
    if hard < MIN_HARD_SHARE:
        raise DataError(f"hard negatives are {hard:.1%}, below {MIN_HARD_SHARE:.0%}")
    totals = Counter(label for row in rows for label in LABELS if row["labels"][label])
    for label, minimum in MIN_LABEL_ROWS.items():
        if totals[label] < minimum:
            raise DataError(f"{label}: {totals[label]} comments, fewer than {minimum}")
    for split in ("dev", "test"):
        counts = Counter(
            label for row in by_split[split] for label in LABELS if row["labels"][label]
        )
        thin = {label: counts[label] for label in LABELS if counts[label] < MIN_HELD_OUT_LABEL_ROWS}
        if thin:
            raise DataError(f"{split}: labels with fewer than {MIN_HELD_OUT_LABEL_ROWS}: {thin}")
        kinds = Counter(row["kind"] for row in by_split[split])
        missing = [kind for kind in HARD_KINDS if not kinds[kind]]
        if missing:
            raise DataError(f"{split}: no hard negatives of kinds {missing}")
    found = duplicates(by_split)
    if found:
        shown = "\n".join(f"  {a!r} ~ {b!r} ({score})" for a, b, score in found[:20])
        raise DataError(f"{len(found)} duplicates or cross-split near duplicates:\n{shown}")


if __name__ == "__main__":
    sys.exit(build_main(__doc__.splitlines()[0], HERE, build, check, statistics))
