"""Whole-review sentiment: every sentence scored, folded into the review's verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from handlers.aggregation import AGGREGATION_FILE, Aggregation
from handlers.sentiment import SentimentHandler
from tests.support.in_process import call, load_handler

SETTINGS = {"max_length": 16, "max_sentences_per_request": 12}
REVIEW = "The soup was cold. The waiter was rude to us. Still, the dessert saved the night!"


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> SentimentHandler:
    return load_handler(
        SentimentHandler, tiny_model_dir, tmp_path_factory.mktemp("unpacked"), SETTINGS
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def test_every_sentence_is_answered_and_folds_into_the_verdict(handler):
    (answer,), statuses = call(handler, [{"body": {"text": REVIEW}}])
    assert statuses == [200]
    assert [s["text"] for s in answer["sentences"]] == [
        "The soup was cold.",
        "The waiter was rude to us.",
        "Still, the dessert saved the night!",
    ]
    for sentence in answer["sentences"]:
        (alone,), _ = call(handler, [{"body": {"text": sentence["text"]}}])
        assert alone["label"] == sentence["label"] and alone["score"] == sentence["score"]
    # The tiny model has no aggregation.json: the plain mean of the sentences' log-probabilities.
    probabilities = np.array(
        [
            [
                call(handler, [{"body": {"text": s["text"]}}])[0][0]["scores"][label]
                for label in handler.labels
            ]
            for s in answer["sentences"]
        ]
    )
    expected = softmax(np.log(probabilities).mean(axis=0))
    assert [answer["scores"][label] for label in handler.labels] == pytest.approx(
        expected, abs=1e-5
    )
    assert answer["label"] == handler.labels[int(expected.argmax())]
    assert answer["score"] == answer["scores"][answer["label"]]


def test_a_one_sentence_text_answers_as_its_sentence(handler):
    (answer,), _ = call(handler, [{"body": {"text": "great food"}}])
    (sentence,) = answer["sentences"]
    assert sentence == {"text": "great food", "label": answer["label"], "score": answer["score"]}


def test_truncated_means_a_sentence_was_cut(handler):
    long_sentence = "the food " * 30 + "was fine."
    texts = [f"Good. {long_sentence} Bad.", "Good. Bad. " * 4]
    (answer,), _ = call(handler, [{"body": {"texts": texts}}])
    assert [r["truncated"] for r in answer["results"]] == [True, False]
    assert len(answer["results"][1]["sentences"]) == 8  # nothing cut off the long review


def test_more_sentences_than_the_cap_is_a_413_alone_in_its_batch(handler):
    rows = [{"body": {"text": "Good. " * 13}}, {"body": {"text": "Good. " * 12}}]
    responses, statuses = call(handler, rows)
    assert statuses == [413, 200]
    assert responses[0]["error"]["type"] == "TooManySentences"
    assert len(responses[1]["sentences"]) == 12


def test_sentences_are_counted_before_anything_is_tokenized(handler, monkeypatch):
    encoded = []
    encode = handler.backend.encode
    monkeypatch.setattr(handler.backend, "encode", lambda *a: encoded.append(a) or encode(*a))
    (refused,), statuses = call(handler, [{"body": {"text": "A. " * 3000}}])
    assert statuses == [413]
    assert refused["error"]["message"] == (
        "The texts have 3000 sentences; the limit is 12 per request."
    )
    assert encoded == []


def test_recency_weighs_later_sentences_more():
    assert Aggregation(recency=0).weights(4) == pytest.approx([1, 1, 1, 1])
    assert Aggregation(recency=3).weights(4) == pytest.approx([1, 2, 3, 4])
    assert Aggregation(recency=3).weights(1) == pytest.approx([1])
    glowing_then_damning = softmax(np.array([[0.0, 2.0], [0.0, 2.0], [3.0, 0.0]]))
    assert Aggregation(recency=0).fold(glowing_then_damning).argmax() == 1
    assert Aggregation(recency=4).fold(glowing_then_damning).argmax() == 0


def test_the_fold_is_the_softmax_of_the_mean_logit_over_temperature():
    logits = np.array([[1.0, -0.5, 0.2], [-2.0, 0.3, 0.0], [0.5, 0.5, 4.0]])
    aggregation = Aggregation(recency=2.0, temperature=1.5)
    weights = np.array([1.0, 2.0, 3.0])
    expected = softmax((logits * weights[:, None]).sum(axis=0) / weights.sum() / 1.5)
    assert aggregation.fold(softmax(logits)) == pytest.approx(expected, abs=1e-9)


def test_the_aggregation_travels_in_the_model_directory(tmp_path, tiny_model_dir):
    assert Aggregation.read(tmp_path) == Aggregation()
    Aggregation(recency=2.0, temperature=0.8).write(tmp_path, fitted_on="reviews")
    assert json.loads((tmp_path / AGGREGATION_FILE).read_text())["fitted_on"] == "reviews"
    assert Aggregation.read(tmp_path) == Aggregation(2.0, 0.8)

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for path in tiny_model_dir.iterdir():
        (model_dir / path.name).write_bytes(path.read_bytes())
    Aggregation(recency=5.0).write(model_dir)
    handler = load_handler(SentimentHandler, model_dir, tmp_path / "unpacked", SETTINGS)
    assert handler.aggregation == Aggregation(recency=5.0)
