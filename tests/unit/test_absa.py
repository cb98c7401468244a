"""German ABSA: sentence splitting, the four auxiliary constructions, aggregation, batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from handlers.absa import AspectSentimentHandler
from handlers.auxiliary import (
    BINARY_LABELS,
    MULTI_CLASS_LABELS,
    AuxiliarySentences,
    aggregate,
)
from handlers.sentences import SentenceSplitter
from review_analysis.paths import CONFIGS
from tests.support.in_process import call, load_handler
from tests.support.tiny_models import build_tiny_classifier

SETTINGS = yaml.safe_load((CONFIGS / "absa" / "model-config.yaml").read_text())["handler"]


def auxiliary(construction: str) -> AuxiliarySentences:
    return AuxiliarySentences({**SETTINGS, "construction": construction})


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        (
            "Wir waren z.B. am 3. Mai dort. Das Essen war gut!",
            ["Wir waren z.B. am 3. Mai dort.", "Das Essen war gut!"],
        ),
        (
            "Essen inkl. Getränke ca. 30 Euro. Am 24.12. war Dr. Roth da.",
            ["Essen inkl. Getränke ca. 30 Euro.", "Am 24.12. war Dr. Roth da."],
        ),
        ("Super Service", ["Super Service"]),
    ],
)
def test_german_sentence_splitting(text, sentences):
    assert SentenceSplitter("german", abbreviation_lists=True).split(text) == sentences


def test_nli_m_pairs_name_the_aspect():
    aux = auxiliary("nli_m")
    assert [p.sentence for p in aux.pairs][:3] == ["Service", "Stil", "Essen"]
    assert aux.labels == MULTI_CLASS_LABELS
    targets = aux.targets({"food": "positive"})
    assert targets[2] == "positive" and targets.count("none") == 8


def test_qa_m_pairs_are_german_questions():
    aux = auxiliary("qa_m")
    questions = {p.aspect: p.sentence for p in aux.pairs}
    assert questions["food"] == "Was denkst du über das Essen?"
    assert questions["service"] == "Was denkst du über den Service?"
    assert questions["drinks"] == "Was denkst du über die Getränke?"


@pytest.mark.parametrize(
    ("construction", "food_positive"),
    [("nli_b", "Essen - positiv"), ("qa_b", "Die Bewertung des Essens ist positiv.")],
)
def test_binary_constructions_ask_one_question_per_polarity(construction, food_positive):
    aux = auxiliary(construction)
    assert len(aux.pairs) == 9 * 5
    assert aux.labels == BINARY_LABELS
    food = [p for p in aux.pairs if p.aspect == "food"]
    assert food[0].sentence == food_positive
    assert [p.polarity for p in food] == list(MULTI_CLASS_LABELS)
    targets = aux.targets({"food": "negative"})
    assert targets.count("yes") == 9  # one polarity per aspect, "none" for the other 8
    assert targets[aux.pairs.index(food[1])] == "yes"


def test_binary_decode_picks_the_most_likely_polarity():
    aux = auxiliary("qa_b")
    probabilities = np.tile([0.9, 0.1], (45, 1))  # every pair says "no" ...
    for i, pair in enumerate(aux.pairs):
        if (pair.aspect, pair.polarity) in {("food", "negative"), ("price", "none")}:
            probabilities[i] = [0.2, 0.8]  # ... but these
    decoded = aux.decode(probabilities)
    assert decoded["food"] == ("negative", 0.8)
    assert decoded["price"][0] == "none"


def test_aggregation_across_sentences():
    sentences = [
        {
            "food": {"polarity": "positive", "score": 0.9},
            "price": {"polarity": "neutral", "score": 0.6},
        },
        {
            "food": {"polarity": "negative", "score": 0.7},
            "price": {"polarity": "positive", "score": 0.8},
        },
        {"service": {"polarity": "neutral", "score": 0.5}},
    ]
    review = aggregate(sentences)
    assert review["food"] == {"polarity": "conflict", "score": 0.8, "mentions": 2}
    assert review["price"] == {"polarity": "positive", "score": 0.8, "mentions": 2}
    assert review["service"] == {"polarity": "neutral", "score": 0.5, "mentions": 1}


@pytest.fixture(scope="module", params=["nli_m", "qa_b"])
def construction_model(request, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A construction and a tiny model with the labels it needs."""
    labels = MULTI_CLASS_LABELS if request.param.endswith("_m") else BINARY_LABELS
    model_dir = build_tiny_classifier(tmp_path_factory.mktemp("absa") / "model", labels=labels)
    return request.param, model_dir


def load_absa(construction_model: tuple[str, Path], archive_dir: Path) -> AspectSentimentHandler:
    construction, model_dir = construction_model
    return load_handler(
        AspectSentimentHandler,
        model_dir,
        archive_dir,
        {**SETTINGS, "construction": construction, "max_texts_per_request": 4},
        name="absa",
    )


@pytest.fixture(scope="module")
def handler(construction_model, tmp_path_factory: pytest.TempPathFactory) -> AspectSentimentHandler:
    """Shared by the tests that only send requests; a test that patches gets its own."""
    return load_absa(construction_model, tmp_path_factory.mktemp("unpacked"))


@pytest.fixture
def own_handler(construction_model, tmp_path: Path) -> AspectSentimentHandler:
    return load_absa(construction_model, tmp_path)


def test_all_pairs_of_all_requests_share_forward_passes(own_handler, monkeypatch):
    backend = own_handler.backend
    scores, sizes = backend.scores, []
    monkeypatch.setattr(backend, "scores", lambda e: sizes.append(len(e.inputs)) or scores(e))
    rows = [
        {"body": {"text": "Das Essen war gut. Der Service langsam."}},
        {"body": {"texts": ["Teuer!", "Schöne Lage."]}},
        {"body": b"{kaputt"},
    ]
    responses, statuses = call(own_handler, rows)
    assert statuses == [200, 200, 400]
    assert sizes == [4 * len(own_handler.pairs)]  # 4 sentences, one call
    first = responses[0]
    assert [s["text"] for s in first["sentences"]] == ["Das Essen war gut.", "Der Service langsam."]
    assert first["model"] == {"name": "absa", "version": "1.0"}
    for sentence in first["sentences"]:
        for verdict in sentence["aspects"].values():
            assert verdict["polarity"] in ("positive", "negative", "neutral", "conflict")


def test_model_must_fit_the_construction(tmp_path):
    model_dir = build_tiny_classifier(tmp_path / "model", labels=BINARY_LABELS)
    with pytest.raises(ValueError, match="nli_m construction needs"):
        load_handler(AspectSentimentHandler, model_dir, tmp_path / "unpacked", SETTINGS)


def test_model_must_have_been_trained_with_the_construction(tmp_path):
    model_dir = build_tiny_classifier(
        tmp_path / "model", labels=MULTI_CLASS_LABELS, absa_construction="qa_m"
    )
    with pytest.raises(ValueError, match="trained with qa_m pairs"):
        load_handler(AspectSentimentHandler, model_dir, tmp_path / "unpacked", SETTINGS)


def test_defaults_cover_the_nine_aspects():
    assert [a.name for a in auxiliary("nli_m").aspects] == [
        "service",
        "style",
        "food",
        "quality",
        "price",
        "restaurant",
        "ambience",
        "drinks",
        "location",
    ]


def test_cost_counts_every_sentence_aspect_pair_the_model_will_see(own_handler, monkeypatch):
    texts = ["Das Essen war gut. Der Service war sehr langsam.", "Teuer!"]
    fed: list[int] = []
    model = own_handler.backend.model

    def recording(**batch):
        fed.extend(batch["attention_mask"].sum(dim=1).tolist())
        return model(**batch)

    monkeypatch.setattr(own_handler.backend, "model", recording)
    _, statuses = call(own_handler, [{"body": {"texts": texts}}])
    assert statuses == [200]
    assert len(fed) == 3 * len(own_handler.auxiliary.pairs)
    cost = own_handler.prepare(texts).cost
    assert cost.sentences == 3
    assert cost.tokens == sum(max(n, own_handler.settings["min_input_tokens"]) for n in fed)


def test_long_sentences_are_cut_and_reported(handler):
    texts = ["Das Essen war gut. " + "Der Service war sehr langsam " * 30 + ".", "Teuer!"]
    (answer,), statuses = call(handler, [{"body": {"texts": texts}}])
    assert statuses == [200]
    assert [result["truncated"] for result in answer["results"]] == [True, False]


def test_max_length_without_room_beside_the_auxiliary_sentences_fails_at_load(tmp_path):
    """Every pair would fail to tokenize: the worker must not start and answer each with an
    error."""
    model_dir = build_tiny_classifier(tmp_path / "model", labels=BINARY_LABELS)
    settings = {**SETTINGS, "construction": "qa_b", "max_length": 8}
    with pytest.raises(ValueError, match="cannot take this task's pairs"):
        load_handler(AspectSentimentHandler, model_dir, tmp_path / "unpacked", settings)
