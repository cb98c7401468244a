"""Toxicity and review handlers in-process, and the Detoxify checkpoint conversion."""

from __future__ import annotations

import shutil
from pathlib import Path

import joblib
import pytest
import torch
from detoxify import Detoxify
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from handlers.base import Cost, auto_threads
from handlers.linear_model import LinearTextModel
from handlers.review import ReviewHandler
from handlers.toxicity import ToxicityHandler
from review_analysis.training.convert_detoxify import convert
from review_analysis.training.toxicity_linear import prepare
from tests.support.in_process import call, load_handler
from tests.support.tiny_models import build_tiny_classifier
from tests.support.toxicity_labels import DETOXIFY_CLASSES, DETOXIFY_LABELS

CLEAN_AND_OFFENSIVE = [
    "The pasta was lovely and the staff friendly.",
    "You are a fucking idiot and this place is shit.",
    "Terrible service, cold food, never again.",
]


@pytest.fixture(scope="module")
def profanity_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare(tmp_path_factory.mktemp("toxicity") / "model")


@pytest.fixture(scope="module")
def toxicity(profanity_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ToxicityHandler:
    return load_handler(
        ToxicityHandler, profanity_dir, tmp_path_factory.mktemp("unpacked"), {}, "toxicity"
    )


@pytest.fixture(scope="module")
def detoxify_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small checkpoint in Detoxify's exact format, and its base directory."""
    base_dir = build_tiny_classifier(
        tmp_path_factory.mktemp("detoxify") / "base", labels=tuple(DETOXIFY_CLASSES), seed=3
    )
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(base_dir)
    checkpoint = base_dir.parent / "toxic_tiny.ckpt"
    torch.save(
        {
            "config": {
                "arch": {
                    "args": {
                        "model_type": str(base_dir),
                        "model_name": "BertForSequenceClassification",
                        "tokenizer_name": "BertTokenizer",
                        "num_classes": len(DETOXIFY_CLASSES),
                    }
                },
                "dataset": {"args": {"classes": DETOXIFY_CLASSES}},
            },
            "state_dict": model.state_dict(),
        },
        checkpoint,
    )
    return checkpoint, base_dir


def test_offline_default_has_only_the_label_it_has(toxicity):
    (result,), statuses = call(toxicity, [{"body": {"text": "Thanks, the food was lovely."}}])
    assert statuses == [200]
    assert list(result["labels"]) == ["toxicity"]
    assert result["toxic"] is False
    assert result["model"] == {"name": "toxicity", "version": "1.0"}


def test_sentences_say_which_one_is_offensive(toxicity):
    text = "The pasta was great. You are a fucking idiot. See you next week."
    (result,), _ = call(toxicity, [{"body": {"text": text}}])
    flags = [s["toxic"] for s in result["sentences"]]
    assert [s["text"] for s in result["sentences"]] == [
        "The pasta was great.",
        "You are a fucking idiot.",
        "See you next week.",
    ]
    assert flags == [False, True, False]
    assert result["toxic"] is True
    assert result["labels"]["toxicity"] == max(s["labels"]["toxicity"] for s in result["sentences"])


def test_tfidf_model_costs_no_tokens_and_never_truncates(toxicity):
    assert toxicity.prepare(["Bad. Bad. Bad.", "word " * 3000]).cost == Cost(4, tokens=0)
    (result,), statuses = call(toxicity, [{"body": {"text": "word " * 3000}}])
    assert statuses == [200]
    assert result["truncated"] is False


def test_linear_model_scores_as_scikit_learn_does_without_its_per_call_cost(profanity_dir):
    model = LinearTextModel(profanity_dir)
    assert model.ensemble is not None  # alt-profanity-check: calibrated linear SVMs
    texts = [*CLEAN_AND_OFFENSIVE, "", "Great food. " * 200, "Ünïcödé ñame, 123 $$$"]
    features = model.vectorizer.transform(texts)
    expected = model.classifier.predict_proba(features)[:, 1]
    assert model.positive_probability(texts) == pytest.approx(expected, abs=1e-12)


def test_linear_model_of_another_kind_uses_its_own_predict_proba(tmp_path):
    texts = ["you are an idiot", "lovely dinner", "idiot staff", "lovely staff"]
    vectorizer = TfidfVectorizer().fit(texts)
    classifier = LogisticRegression().fit(vectorizer.transform(texts), [1, 0, 1, 0])
    joblib.dump(vectorizer, tmp_path / "vectorizer.joblib")
    joblib.dump(classifier, tmp_path / "model.joblib")
    model = LinearTextModel(tmp_path)
    assert model.ensemble is None
    expected = classifier.predict_proba(vectorizer.transform(texts))[:, 1]
    assert model.positive_probability(texts) == pytest.approx(expected)


def test_thresholds_come_from_config(profanity_dir, tmp_path):
    strict = load_handler(
        ToxicityHandler,
        profanity_dir,
        tmp_path,
        {"threshold": 0.2, "thresholds": {"toxicity": 0.99}},
    )
    (result,), _ = call(strict, [{"body": {"text": "kill yourself"}}])
    assert 0.5 < result["labels"]["toxicity"] < 0.99
    assert result["toxic"] is False


def test_bad_request_fails_only_its_slot(toxicity):
    rows = [{"body": {"texts": ["nice", "you idiot"]}}, {"body": {"texts": [""]}}]
    responses, statuses = call(toxicity, rows)
    assert statuses == [200, 400]
    assert [r["toxic"] for r in responses[0]["results"]] == [False, True]


def test_detoxify_conversion_matches_the_checkpoint(detoxify_checkpoint, tmp_path):
    checkpoint, base_dir = detoxify_checkpoint
    output = tmp_path / "converted"
    assert convert(checkpoint, base_dir, output) == DETOXIFY_LABELS
    texts = ["the food was cold", "great service and friendly staff", "never again"]
    reference = Detoxify(checkpoint=str(checkpoint), huggingface_config_path=str(base_dir))
    expected = reference.predict(texts)

    handler = load_handler(ToxicityHandler, output, tmp_path / "unpacked", {}, "toxicity")
    (answer,), statuses = call(handler, [{"body": {"texts": texts}}])
    assert statuses == [200]
    for i, result in enumerate(answer["results"]):
        assert list(result["labels"]) == DETOXIFY_LABELS
        for label in DETOXIFY_LABELS:
            assert result["labels"][label] == pytest.approx(expected[label][i], abs=1e-5)


@pytest.mark.parametrize("parallel", [False, True])
def test_review_answers_both_for_every_text(tiny_model_dir, profanity_dir, tmp_path, parallel):
    review = load_handler(
        ReviewHandler,
        {"sentiment": tiny_model_dir, "toxicity": profanity_dir},
        tmp_path,
        {"toxicity": {"threshold": 0.5}, "parallel_parts": parallel},
        "review",
    )
    rows = [{"body": {"texts": ["lovely staff", "you idiot"]}}, {"body": b"{"}]
    responses, statuses = call(review, rows)
    assert statuses == [200, 400]
    first, second = responses[0]["results"]
    assert set(first) == {"sentiment", "toxicity", "model"}
    assert first["model"] == {"name": "review", "version": "1.0"}
    assert first["sentiment"]["label"] in ("negative", "positive")
    assert (first["toxicity"]["toxic"], second["toxicity"]["toxic"]) == (False, True)


def test_review_parts_keep_one_thread_per_worker(tiny_model_dir, profanity_dir, tmp_path):
    """Two single-threaded workers must not become two 2-thread workers when the parts load
    (oversubscribed, the served review model ran at a third of its speed)."""
    for part, directory in (("sentiment", tiny_model_dir), ("toxicity", profanity_dir)):
        shutil.copytree(directory, tmp_path / part)
    threads_before = torch.get_num_threads()
    try:
        review = ReviewHandler()
        review.configure({"threads": 0}, workers=2)
        review.load(tmp_path)
        assert torch.get_num_threads() == auto_threads(2)
    finally:
        torch.set_num_threads(threads_before)


def test_sentences_per_request_bound_the_answer(profanity_dir, tmp_path):
    """Each sentence is echoed with its scores, so sentences, not texts, size the answer."""
    handler = load_handler(
        ToxicityHandler, profanity_dir, tmp_path, {"max_sentences_per_request": 5}, "toxicity"
    )
    rows = [{"body": {"text": "Bad. " * 6}}, {"body": {"texts": ["Fine. Good.", "Ok. Nice. Meh."]}}]
    responses, statuses = call(handler, rows)
    assert statuses == [413, 200]
    assert responses[0]["error"]["type"] == "TooManySentences"
    assert "6 sentences; the limit is 5" in responses[0]["error"]["message"]
