"""Build and validate the German restaurant ABSA data set (data/absa_de).

Sources (all written by hand by the project team):
  src/train/*.txt        hand-written training sentences
  src/train_added/*.txt  hand-written training sentences added after the first release
  src/train_clauses.txt  hand-written clauses; part of train is composed from them
  src/dev.txt            hand-written development sentences
  src/test.txt           hand-written test sentences
  src/test2.txt          a second test set, written later by a writer who never saw the
                         other sources; scored only for the final numbers

Source line format:  LABELS | text
  LABELS is "_" (no aspect) or space-separated codes such as "F+ S-":
  aspect letter (see ASPECT_CODES) followed by a polarity sign (see POLARITY_CODES).

Usage:
  python data/absa_de/build.py           build train/dev/test.jsonl, then run the checks
  python data/absa_de/build.py --check   only validate the existing jsonl files (and that
                                         they match the sources) and print the statistics
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from collections import Counter
from pathlib import Path

from review_analysis.training.corpus import near_duplicate_pairs, word_set

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
SPLITS = ("train", "dev", "test", "test2")
TEST_SPLITS = ("test", "test2")
SEED = 20240531

ASPECTS = (
    "food",
    "drinks",
    "service",
    "price",
    "ambience",
    "style",
    "quality",
    "restaurant",
    "location",
)
POLARITIES = ("positive", "negative", "neutral", "conflict")
ASPECT_CODES = {
    "F": "food",
    "D": "drinks",
    "S": "service",
    "P": "price",
    "A": "ambience",
    "Y": "style",
    "Q": "quality",
    "R": "restaurant",
    "L": "location",
}
POLARITY_CODES = {"+": "positive", "-": "negative", "0": "neutral", "~": "conflict"}

# Composition templates for part of train: (name, number of clauses, contrastive, format).
# Contrastive templates ("aber", "doch", "nur") join clauses of different polarity.
TEMPLATES = (
    ("aber", 2, True, "{0}, aber {1}."),
    ("doch", 2, True, "{0}, doch {1}."),
    ("nur", 2, True, "{0}, nur {1}."),
    ("und", 2, False, "{0} und {1}."),
    ("dash", 2, False, "{0} – {1}."),
    ("semicolon", 2, False, "{0}; {1}."),
    ("list3", 3, False, "{0}, {1} und {2}."),
    ("fazit", 3, False, "Fazit: {0}, {1} und {2}."),
)
PER_TEMPLATE = 36

# Reference sentences that must be in dev only, with exactly these labels.
REFERENCE_DEV = {
    "Wir hatten hier ein sehr gutes Essen.": [("food", "positive")],
    "Zusammenfassung: guter Service, leckeres (höheres) Essen und schöne Lage.": [
        ("service", "positive"),
        ("food", "positive"),
        ("location", "positive"),
    ],
    "All dies zu einem sehr vernünftigen Preis!": [("price", "positive")],
    "Das Essen war einfach schlecht.": [("food", "negative")],
    "Wir hatten hier ein paar super Cocktails.": [("drinks", "positive")],
}

NEAR_DUP_JACCARD = 0.8  # token-set Jaccard >= this counts as a near duplicate
MIN_SIZE = {"train": 1200, "dev": 200, "test": 250, "test2": 300}
MIN_TRAIN = {"positive": 40, "negative": 40, "neutral": 15, "conflict": 5}
MIN_TEST_PER_ASPECT = 12
MAX_COMPOSED_SHARE = 0.30
MAX_TEMPLATE_SHARE = 0.05


class DataError(Exception):
    pass


def parse_labels(field: str, where: str) -> list[dict[str, str]]:
    field = field.strip()
    if field == "_":
        return []
    labels = []
    for code in field.split():
        if len(code) != 2 or code[0] not in ASPECT_CODES or code[1] not in POLARITY_CODES:
            raise DataError(f"{where}: bad label code {code!r}")
        labels.append({"aspect": ASPECT_CODES[code[0]], "polarity": POLARITY_CODES[code[1]]})
    return labels


def read_source(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{path.relative_to(HERE)}:{number}"
        if " | " not in line:
            raise DataError(f"{where}: missing ' | ' separator")
        field, text = line.split(" | ", 1)
        text = text.strip()
        if not text:
            raise DataError(f"{where}: empty text")
        rows.append({"text": text, "labels": parse_labels(field, where), "where": where})
    return rows


def read_sources(directory: Path) -> list[dict]:
    return [row for path in sorted(directory.glob("*.txt")) for row in read_source(path)]


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def plausible(name: str, contrastive: bool, aspects: list[str], pols: list[str]) -> bool:
    """Keep only combinations that read like a real review sentence."""
    if contrastive:
        if pols[0] == pols[1] or "neutral" in pols:
            return False
        # "X war gut, nur Y war schlecht": praise first, no overall verdict after "nur".
        return name != "nur" or (pols[0] == "positive" and "restaurant" not in aspects)
    if "restaurant" in aspects:
        # An overall verdict joined by "und" or a list must agree with the rest.
        verdict = pols[aspects.index("restaurant")]
        others = {p for a, p in zip(aspects, pols, strict=True) if a != "restaurant"}
        return verdict != "neutral" and others <= {verdict, "neutral"}
    return True


def compose_train(clauses: list[dict]) -> list[dict]:
    """Combine hand-written single-aspect clauses into mixed multi-aspect sentences."""
    rng = random.Random(SEED)
    by_aspect: dict[str, list[dict]] = {}
    for clause in clauses:
        if len(clause["labels"]) != 1:
            raise DataError(f"{clause['where']}: a clause needs exactly one label")
        by_aspect.setdefault(clause["labels"][0]["aspect"], []).append(clause)
    out, seen = [], set()
    for name, slots, contrastive, fmt in TEMPLATES:
        made = 0
        while made < PER_TEMPLATE:
            aspects = rng.sample(sorted(by_aspect), slots)
            # The overall verdict reads naturally at the end of a sentence.
            aspects.sort(key=lambda a: a == "restaurant")
            picked = [rng.choice(by_aspect[a]) for a in aspects]
            pols = [c["labels"][0]["polarity"] for c in picked]
            if not plausible(name, contrastive, aspects, pols):
                continue
            text = fmt.format(*[c["text"] for c in picked])
            text = capitalize(text)
            if text in seen:
                continue
            seen.add(text)
            labels = [dict(c["labels"][0]) for c in picked]
            out.append({"text": text, "labels": labels, "where": f"composed:{name}"})
            made += 1
    return out


def tokens(text: str) -> frozenset[str]:
    """Word set with umlauts folded, so "Käse" and "Kaese" count as one word."""
    text = text.lower()
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(a, b)
    return word_set(text)


def near_duplicates(rows_a: list[dict], rows_b: list[dict]) -> list[tuple[dict, dict, float]]:
    texts_a, texts_b = [r["text"] for r in rows_a], [r["text"] for r in rows_b]
    pairs = near_duplicate_pairs(texts_a, texts_b, NEAR_DUP_JACCARD, words=tokens)
    return [(rows_a[i], rows_b[j], score) for i, j, score in pairs]


def build() -> tuple[dict[str, list[dict]], dict[str, int]]:
    """Return the rows per split (with provenance in 'where') and composed counts."""
    hand_train = read_sources(SRC / "train")
    added_train = read_sources(SRC / "train_added")
    dev = read_source(SRC / "dev.txt")
    test = read_source(SRC / "test.txt")
    test2 = read_source(SRC / "test2.txt")

    problems = []
    held_out = dev + test + test2
    for row, other, score in near_duplicates(hand_train + added_train, held_out):
        problems.append(f"train/held-out overlap {score:.2f}: {row['where']} ~ {other['where']}")
    for row, other, score in near_duplicates(dev, test + test2) + near_duplicates(test, test2):
        problems.append(f"held-out overlap {score:.2f}: {row['where']} ~ {other['where']}")
    if problems:
        raise DataError("near duplicates across splits:\n  " + "\n  ".join(problems))

    composed = compose_train(read_source(SRC / "train_clauses.txt"))
    hand_texts = {row["text"].lower() for row in hand_train + added_train}
    composed = [row for row in composed if row["text"].lower() not in hand_texts]
    clashing = {id(row) for row, _, _ in near_duplicates(composed, held_out)}
    composed = [row for row in composed if id(row) not in clashing]
    template_counts = Counter(row["where"].split(":", 1)[1] for row in composed)

    rng = random.Random(SEED)
    splits = {"train": hand_train + composed, "dev": dev, "test": test}
    for rows in splits.values():
        rng.shuffle(rows)
    # Later additions get a shuffle of their own: the shared generator's state after the
    # train shuffle fixes the published order of dev and test, which must not change.
    splits["train"] += added_train
    random.Random(SEED).shuffle(splits["train"])
    splits["test2"] = test2
    return splits, dict(template_counts)


def to_json(row: dict) -> str:
    return json.dumps({"text": row["text"], "labels": row["labels"]}, ensure_ascii=False)


def write(splits: dict[str, list[dict]]) -> None:
    for split, rows in splits.items():
        with open(HERE / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as handle:
            for row in rows:
                handle.write(to_json(row) + "\n")


def load_jsonl(split: str) -> list[dict]:
    rows = []
    path = HERE / f"{split}.jsonl"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        row = json.loads(line)
        row["where"] = f"{split}.jsonl:{number}"
        rows.append(row)
    return rows


def validate_schema(split: str, rows: list[dict]) -> None:
    seen = set()
    for row in rows:
        where = row["where"]
        if set(row) != {"text", "labels", "where"}:
            raise DataError(f"{where}: keys must be exactly text and labels")
        if not isinstance(row["text"], str) or not row["text"].strip():
            raise DataError(f"{where}: empty text")
        if row["text"] != row["text"].strip():
            raise DataError(f"{where}: surrounding whitespace")
        if not isinstance(row["labels"], list):
            raise DataError(f"{where}: labels must be a list")
        aspects = []
        for label in row["labels"]:
            if set(label) != {"aspect", "polarity"}:
                raise DataError(f"{where}: label keys must be aspect and polarity")
            if label["aspect"] not in ASPECTS:
                raise DataError(f"{where}: unknown aspect {label['aspect']!r}")
            if label["polarity"] not in POLARITIES:
                raise DataError(f"{where}: unknown polarity {label['polarity']!r}")
            aspects.append(label["aspect"])
        if len(aspects) != len(set(aspects)):
            raise DataError(f"{where}: an aspect occurs twice in one sentence")
        key = row["text"].lower()
        if key in seen:
            raise DataError(f"{where}: duplicate sentence in {split}: {row['text']!r}")
        seen.add(key)


def counts_table(splits: dict[str, list[dict]]) -> str:
    short = {"positive": "pos", "negative": "neg", "neutral": "neu", "conflict": "con"}
    lines = []
    for split, rows in splits.items():
        counts = Counter(
            (label["aspect"], label["polarity"]) for row in rows for label in row["labels"]
        )
        none = sum(1 for row in rows if not row["labels"])
        lines.append(
            f"\n{split}: {len(rows)} sentences, {sum(counts.values())} labels, "
            f"no aspect {none} ({none / len(rows):.1%})"
        )
        header = f"  {'aspect':<11}" + "".join(f"{short[p]:>6}" for p in POLARITIES) + "  total"
        lines.append(header)
        for aspect in ASPECTS:
            cells = [counts[(aspect, p)] for p in POLARITIES]
            lines.append(f"  {aspect:<11}" + "".join(f"{c:>6}" for c in cells) + f"{sum(cells):>7}")
        totals = [sum(counts[(a, p)] for a in ASPECTS) for p in POLARITIES]
        lines.append(f"  {'all':<11}" + "".join(f"{c:>6}" for c in totals) + f"{sum(totals):>7}")
    return "\n".join(lines)


def check() -> None:
    splits = {split: load_jsonl(split) for split in SPLITS}
    for split, rows in splits.items():
        validate_schema(split, rows)
        if len(rows) < MIN_SIZE[split]:
            raise DataError(f"{split}: {len(rows)} sentences, need at least {MIN_SIZE[split]}")
        share = sum(1 for row in rows if not row["labels"]) / len(rows)
        if not 0.10 <= share <= 0.20:
            raise DataError(f"{split}: no-aspect share {share:.1%} outside 10-20%")

    # The jsonl files must be exactly what the sources produce.
    built, template_counts = build()
    for split in SPLITS:
        if [to_json(r) for r in built[split]] != [to_json(r) for r in splits[split]]:
            raise DataError(f"{split}.jsonl is out of date; run python data/absa_de/build.py")

    # No exact or near duplicates across splits.
    for a, b in itertools.combinations(SPLITS, 2):
        exact = {r["text"].lower() for r in splits[a]} & {r["text"].lower() for r in splits[b]}
        if exact:
            raise DataError(f"{a}/{b}: exact duplicates {sorted(exact)[:5]}")
        near = near_duplicates(splits[a], splits[b])
        if near:
            row, other, score = near[0]
            raise DataError(
                f"{a}/{b}: {len(near)} near duplicates, e.g. {score:.2f} "
                f"{row['text']!r} ~ {other['text']!r}"
            )

    # Reference sentences: in dev with the given labels, nowhere else.
    dev_labels = {
        r["text"]: [(x["aspect"], x["polarity"]) for x in r["labels"]] for r in splits["dev"]
    }
    for text, labels in REFERENCE_DEV.items():
        if dev_labels.get(text) != labels:
            raise DataError(f"reference sentence missing or mislabelled in dev: {text!r}")
        for split in ("train", *TEST_SPLITS):
            if any(r["text"] == text for r in splits[split]):
                raise DataError(f"reference sentence found in {split}: {text!r}")

    # Coverage requirements.
    train_counts = Counter(
        (x["aspect"], x["polarity"]) for r in splits["train"] for x in r["labels"]
    )
    for aspect in ASPECTS:
        for polarity, minimum in MIN_TRAIN.items():
            if train_counts[(aspect, polarity)] < minimum:
                raise DataError(f"train: {aspect}/{polarity} below {minimum}")
    for split in TEST_SPLITS:
        counts = Counter((x["aspect"], x["polarity"]) for r in splits[split] for x in r["labels"])
        for aspect in ASPECTS:
            total = sum(counts[(aspect, p)] for p in POLARITIES)
            if total < MIN_TEST_PER_ASPECT:
                raise DataError(
                    f"{split}: {aspect} occurs {total} times, need {MIN_TEST_PER_ASPECT}"
                )
            if not counts[(aspect, "positive")] or not counts[(aspect, "negative")]:
                raise DataError(f"{split}: {aspect} needs positive and negative examples")

    # Hand-written vs composed share of train.
    n_train = len(splits["train"])
    n_composed = sum(template_counts.values())
    if n_composed > MAX_COMPOSED_SHARE * n_train:
        raise DataError(f"train: {n_composed} composed sentences exceed {MAX_COMPOSED_SHARE:.0%}")
    for name, count in template_counts.items():
        if count > MAX_TEMPLATE_SHARE * n_train:
            raise DataError(f"train: template {name} gives {count} sentences (> 5%)")

    print(counts_table(splits))
    print(
        f"\ntrain provenance: {n_train - n_composed} hand-written "
        f"({(n_train - n_composed) / n_train:.1%}), {n_composed} composed "
        f"({n_composed / n_train:.1%}); per template: "
        + ", ".join(f"{k}={v}" for k, v in sorted(template_counts.items()))
    )
    print(
        "checks passed: schema, no duplicate aspect per sentence, no exact or near "
        f"(Jaccard >= {NEAR_DUP_JACCARD}) duplicates across splits, reference sentences "
        "in dev only, coverage minimums"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only validate the jsonl files")
    args = parser.parse_args()
    try:
        if not args.check:
            splits, _ = build()
            write(splits)
        check()
    except DataError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
