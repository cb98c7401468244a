"""The team-written corpora stay valid: each build.py --check validates its files, their
conventions and the absence of near duplicates across splits."""

from __future__ import annotations

import subprocess
import sys

import pytest

from review_analysis.paths import REPO


@pytest.mark.parametrize("corpus", ["absa_de", "sentiment_en", "toxicity_en"])
def test_the_corpus_passes_its_own_checks(corpus):
    checked = subprocess.run(
        [sys.executable, str(REPO / "data" / corpus / "build.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
