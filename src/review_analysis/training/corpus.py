"""What the team-written corpora's build.py scripts share: the near-duplicate check, the
JSONL output and the build-or-check command line.

Two texts are near duplicates when their lower-cased word sets have a Jaccard similarity at
or above a threshold (each corpus's README states its own). Every corpus checks this across
its splits, so that no dev or test text is a light rewording of a training text.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

WORD = re.compile(r"\w+")


def word_set(text: str) -> frozenset[str]:
    return frozenset(WORD.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicate_pairs(
    first: list[str],
    second: list[str],
    threshold: float,
    words: Callable[[str], frozenset[str]] = word_set,
) -> list[tuple[int, int, float]]:
    """(index in ``first``, index in ``second``, similarity) of every pair at or above
    ``threshold``."""
    second_words = [words(text) for text in second]
    hits = []
    for i, text in enumerate(first):
        a = words(text)
        for j, b in enumerate(second_words):
            # Jaccard can only reach the threshold when the set sizes are close enough.
            if min(len(a), len(b)) < threshold * max(len(a), len(b)):
                continue
            score = jaccard(a, b)
            if score >= threshold:
                hits.append((i, j, round(score, 2)))
    return hits


class DataError(Exception):
    """A corpus breaks a promise of its README."""


def to_jsonl(rows: list[dict]) -> str:
    """One JSON object per line, without the build's own bookkeeping (``split``)."""
    fields = [{k: v for k, v in row.items() if k != "split"} for row in rows]
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in fields)


def build_main(
    description: str,
    directory: Path,
    build: Callable[[], dict[str, list[dict]]],
    check: Callable[[dict[str, list[dict]]], None],
    statistics: Callable[[dict[str, list[dict]]], list[str]],
) -> int:
    """A corpus's build.py: ``build`` gives every JSONL file's rows by file name; without
    ``--check`` they are written to ``directory``, with it the committed files must equal
    them. Either way ``check`` must pass; then the statistics are printed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="validate only, write nothing")
    args = parser.parse_args()
    try:
        files = build()
        check(files)
        for name, rows in files.items():
            path = directory / name
            if not args.check:
                path.write_text(to_jsonl(rows), encoding="utf-8")
            elif not path.is_file() or path.read_text(encoding="utf-8") != to_jsonl(rows):
                raise DataError(f"{name} differs from the sources: run build.py")
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(statistics(files)))
    return 0
