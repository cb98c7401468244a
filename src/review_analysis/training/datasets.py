"""Labelled English data: sentiment, fetched by package name from PyPI and npm, and the
team's corpora.

* VADER (Hutto & Gilbert 2014): human-rated sentences from the vaderSentiment 3.3.2 source
  archive. Training and development data.
* UCI "Sentiment Labelled Sentences" (Kotzias et al. 2015) from npm ``sentiment@5.0.2``:
  out-of-domain test data, never used for training or tuning.
* The team's review corpus in ``data/sentiment_en`` (single sentences and whole reviews,
  train / dev / test written apart).
* The team's toxic-comment corpus in ``data/toxicity_en`` (six Detoxify labels per comment).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

VADER_PACKAGE = "vaderSentiment==3.3.2"
VADER_ARCHIVE = "additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_SOURCES = {
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
UCI_PACKAGE = "sentiment@5.0.2"
UCI_SOURCES = ("amazon", "imdb", "yelp")


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # 0 negative, 1 positive
    source: str
    tags: tuple[str, ...] = ()  # the corpus's kinds of sentence: plain, implicit, negation...


def _run(command: list[str], cwd: Path) -> None:
    print(f"$ {' '.join(command)}", flush=True)
    subprocess.run(command, cwd=cwd, check=True)


def fetch_vader(download_dir: Path) -> Path:
    """Download and unpack the VADER ground-truth files; return their directory."""
    download_dir = download_dir.resolve()
    target = download_dir / "vader"
    if (target / "hutto_ICWSM_2014").is_dir():
        return target / "hutto_ICWSM_2014"
    download_dir.mkdir(parents=True, exist_ok=True)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            VADER_PACKAGE,
            "-d",
            str(download_dir),
        ],
        cwd=download_dir,
    )
    sdist = next(download_dir.glob("vaderSentiment-3.3.2.tar.gz"))
    with tarfile.open(sdist) as outer:
        member = outer.getmember(f"vaderSentiment-3.3.2/{VADER_ARCHIVE}")
        with tarfile.open(fileobj=outer.extractfile(member)) as inner:
            inner.extractall(target, filter="data")
    return target / "hutto_ICWSM_2014"


def fetch_uci(download_dir: Path) -> Path:
    """Download the npm package holding the UCI sentences; return the fixtures directory."""
    target = download_dir / "uci"
    fixtures = target / "package" / "test" / "fixtures"
    if fixtures.is_dir():
        return fixtures
    target.mkdir(parents=True, exist_ok=True)
    _run(["npm", "pack", UCI_PACKAGE, "--silent"], cwd=target)
    with tarfile.open(next(target.glob("sentiment-5.0.2.tgz"))) as archive:
        archive.extractall(target, filter="data")
    return fixtures


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def load_vader(directory: Path, min_abs_rating: float = 0.5) -> list[Example]:
    """Sentences whose mean human rating is clearly positive or negative."""
    examples = []
    for source, filename in VADER_SOURCES.items():
        for line in _read_text(directory / filename).splitlines():
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            rating, text = float(parts[1]), "\t".join(parts[2:]).strip()
            if abs(rating) >= min_abs_rating and text:
                examples.append(Example(text, int(rating > 0), f"vader-{source}"))
    return examples


def load_uci(fixtures: Path) -> list[Example]:
    examples = []
    for source in UCI_SOURCES:
        for row in json.loads((fixtures / f"{source}.json").read_text("utf-8")):
            if row.get("class") is not None and row["text"].strip():
                examples.append(Example(row["text"].strip(), int(row["class"]), f"uci-{source}"))
    return examples


@dataclass(frozen=True)
class Review:
    sentences: list[str]
    label: int  # 0 negative, 1 positive
    tags: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def load_corpus_sentences(corpus: Path, split: str) -> list[Example]:
    """The team's single review sentences of one split (data/sentiment_en)."""
    rows = _read_jsonl(corpus / f"{split}.jsonl")
    return [
        Example(row["text"], int(row["label"] == "positive"), "corpus", tuple(row["tags"]))
        for row in rows
    ]


def load_corpus_reviews(corpus: Path, split: str) -> list[Review]:
    """The team's multi-sentence reviews of one split, labelled by the overall verdict."""
    rows = _read_jsonl(corpus / f"reviews_{split}.jsonl")
    return [Review(row["sentences"], int(row["label"] == "positive"), row["tags"]) for row in rows]


@dataclass(frozen=True)
class Comment:
    text: str
    labels: dict[str, int]  # every Detoxify label, 0 or 1
    kind: str  # what the writer set out to write: insult, threat, ..., complaint, civil


def load_toxicity_comments(corpus: Path, split: str) -> list[Comment]:
    """The team's hand-labelled comments of one split (data/toxicity_en)."""
    rows = _read_jsonl(corpus / f"{split}.jsonl")
    return [Comment(row["text"], row["labels"], row["kind"]) for row in rows]


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
