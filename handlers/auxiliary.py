"""Auxiliary sentences for aspect-based sentiment (Sun, Huang & Qiu 2019, NAACL).

Each (sentence, aspect) becomes a sentence pair whose second part names the aspect:

* ``nli_m``: the aspect as a pseudo-sentence ("Essen"); one pair per aspect, 5 classes.
* ``qa_m``: a question ("Was denkst du über das Essen?"); one pair per aspect, 5 classes.
* ``nli_b``: aspect and polarity ("Essen - positiv"); one yes/no pair per aspect x polarity.
* ``qa_b``: a statement ("Die Bewertung des Essens ist positiv."); yes/no, as nli_b.

For the -B constructions the polarity whose pair gets the highest "yes" wins. The wording
(German by default) lives in model-config.yaml; training and serving build pairs here alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

POLARITIES = ("positive", "negative", "neutral", "conflict")
NONE = "none"
MULTI_CLASS_LABELS = (*POLARITIES, NONE)
BINARY_LABELS = ("no", "yes")
CONSTRUCTIONS = ("nli_m", "qa_m", "nli_b", "qa_b")


@dataclass(frozen=True)
class Aspect:
    name: str
    term: str  # nominative, no article: "Essen"
    question: str  # "Was denkst du über das Essen?"
    genitive: str  # with article: "des Essens"


@dataclass(frozen=True)
class AuxiliaryPair:
    aspect: str
    polarity: str | None  # the polarity a -B pair asks about; None for -M pairs
    sentence: str


class AuxiliarySentences:
    def __init__(self, settings: dict[str, Any]):
        self.construction = settings.get("construction", "nli_m")
        if self.construction not in CONSTRUCTIONS:
            raise ValueError(f"construction must be one of {CONSTRUCTIONS}")
        self.aspects = [Aspect(name, **fields) for name, fields in settings["aspects"].items()]
        self.polarity_words: dict[str, str] = settings["polarity_words"]
        self.templates: dict[str, str] = settings["templates"]
        self.pairs = self._pairs()

    @property
    def multi_class(self) -> bool:
        return self.construction.endswith("_m")

    @property
    def labels(self) -> tuple[str, ...]:
        return MULTI_CLASS_LABELS if self.multi_class else BINARY_LABELS

    def _pairs(self) -> list[AuxiliaryPair]:
        """The second parts of the pairs built for every sentence, in a fixed order."""
        if self.construction == "nli_m":
            return [AuxiliaryPair(a.name, None, a.term) for a in self.aspects]
        if self.construction == "qa_m":
            return [AuxiliaryPair(a.name, None, a.question) for a in self.aspects]
        template = self.templates[self.construction]
        return [
            AuxiliaryPair(
                a.name,
                polarity,
                template.format(
                    term=a.term, genitive=a.genitive, polarity=self.polarity_words[polarity]
                ),
            )
            for a in self.aspects
            for polarity in MULTI_CLASS_LABELS
        ]

    def targets(self, gold: dict[str, str]) -> list[str]:
        """Training labels of this sentence's pairs; ``gold`` maps mentioned aspects to polarity."""
        if self.multi_class:
            return [gold.get(pair.aspect, NONE) for pair in self.pairs]
        return [
            "yes" if gold.get(pair.aspect, NONE) == pair.polarity else "no" for pair in self.pairs
        ]

    def decode(self, probabilities: np.ndarray) -> dict[str, tuple[str, float]]:
        """One sentence's pair probabilities (pairs x model labels) -> aspect: (polarity, score).

        ``probabilities`` columns follow :attr:`labels`.
        """
        decoded = {}
        if self.multi_class:
            for pair, row in zip(self.pairs, probabilities, strict=True):
                best = int(row.argmax())
                decoded[pair.aspect] = (self.labels[best], float(row[best]))
            return decoded
        yes = probabilities[:, BINARY_LABELS.index("yes")].reshape(len(self.aspects), -1)
        for aspect, row in zip(self.aspects, yes, strict=True):
            best = int(row.argmax())
            decoded[aspect.name] = (MULTI_CLASS_LABELS[best], float(row[best]))
        return decoded


def aggregate(sentences: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Review-level aspects from sentence-level ones.

    Opposite polarities across sentences (or any sentence in conflict) give ``conflict``;
    neutral mentions give way to opinionated ones. The score is the highest score among the
    sentences that carry the chosen polarity (the mean of all for ``conflict``).
    """
    review: dict[str, dict[str, Any]] = {}
    names = dict.fromkeys(name for aspects in sentences for name in aspects)
    for name in names:
        found = [aspects[name] for aspects in sentences if name in aspects]
        polarities = {f["polarity"] for f in found}
        opinions = polarities - {"neutral"}
        if "conflict" in opinions or {"positive", "negative"} <= opinions:
            polarity = "conflict"
            score = float(np.mean([f["score"] for f in found]))
        else:
            polarity = next(iter(opinions)) if opinions else "neutral"
            score = max(f["score"] for f in found if f["polarity"] == polarity)
        review[name] = {"polarity": polarity, "score": round(score, 6), "mentions": len(found)}
    return review
