"""The worked example of a new task (handlers/language.py) on a tiny random-weight model.

The weights are random: these tests check the handler contract (answer shape, errors of one
request, ``truncated``), not whether a language is recognised.
"""

from __future__ import annotations

import pytest
import yaml

from handlers.language import LanguageHandler
from review_analysis.paths import CONFIGS
from tests.support.in_process import call, load_handler
from tests.support.tiny_models import build_tiny_classifier

LANGUAGES = ("de", "en", "fr")


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory) -> LanguageHandler:
    model_dir = build_tiny_classifier(tmp_path_factory.mktemp("language"), labels=LANGUAGES)
    config = yaml.safe_load((CONFIGS / "language" / "model-config.yaml").read_text())
    settings = {**config["handler"], "max_texts_per_request": 4, "max_text_chars": 2000}
    return load_handler(
        LanguageHandler, model_dir, tmp_path_factory.mktemp("unpacked"), settings, "language"
    )


def test_answer_has_a_language_per_text_and_per_sentence(handler):
    text = "Das Essen war gut. The staff were friendly."
    (result,), statuses = call(handler, [{"body": {"text": text}}])
    assert statuses == [200]
    assert list(result) == ["language", "score", "scores", "sentences", "truncated", "model"]
    assert list(result["scores"]) == list(LANGUAGES)
    assert sum(result["scores"].values()) == pytest.approx(1, abs=1e-5)
    assert result["score"] == result["scores"][result["language"]] == max(result["scores"].values())
    assert [s["text"] for s in result["sentences"]] == [
        "Das Essen war gut.",
        "The staff were friendly.",
    ]
    assert all(s["language"] in LANGUAGES and 0 < s["score"] <= 1 for s in result["sentences"])
    assert result["truncated"] is False
    assert result["model"] == {"name": "language", "version": "1.0"}


def test_bad_requests_fail_only_their_own_slot(handler):
    rows = [
        {"body": {"texts": ["Bonjour.", "Hello there."]}},
        {"body": b"{broken"},
        {"body": {"texts": [""]}},
        {"body": {"texts": ["hi"] * 5}},
    ]
    responses, statuses = call(handler, rows)
    assert statuses == [200, 400, 400, 413]
    assert len(responses[0]["results"]) == 2
    assert [r["error"]["type"] for r in responses[1:]] == [
        "InvalidInput",
        "InvalidInput",
        "TooManyTexts",
    ]


def test_a_sentence_over_max_length_is_cut_and_reported(handler):
    long_sentence = "the food was great and " * 40 + "cheap."
    (answer,), _ = call(handler, [{"body": {"texts": [long_sentence, "Gut."]}}])
    assert [r["truncated"] for r in answer["results"]] == [True, False]
