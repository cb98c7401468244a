"""The offline default models, served with the repo's own config and archives."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from review_analysis import registry
from review_analysis.paths import CONFIGS, MODELS
from tests.support.toxicity_labels import DETOXIFY_LABELS

pytestmark = pytest.mark.real_model

TOXICITY_THRESHOLDS = yaml.safe_load((CONFIGS / "toxicity" / "model-config.yaml").read_text())[
    "handler"
]["thresholds"]


@pytest.fixture(scope="module")
def client(real_server):
    with real_server.client() as client:
        yield client


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I loved this place, the food was great", "positive"),
        ("Terrible service, cold food, never again", "negative"),
        ("The staff were friendly and the dessert was delicious.", "positive"),
        ("The battery died after two days and support never answered.", "negative"),
        ("Worst pizza I have ever had.", "negative"),
        ("Highly recommended, we will definitely come back!", "positive"),
    ],
)
def test_obvious_sentiment(client, text, label):
    result = client.predict("sentiment", text)
    assert result["label"] == label
    assert result["score"] > 0.8
    assert result["model"] == {"name": "sentiment", "version": "1.0"}


def test_default_config_batches_concurrent_clients(client):
    """With the shipped model-config.yaml, requests that queue up share a forward pass."""
    texts = [f"Review number {i}: the food was good but the wait was long." for i in range(64)]

    def send(text: str) -> int:
        response = client.request(
            "inference", "POST", client.predict_url("sentiment"), json={"text": text}
        )
        assert response.status_code == 200
        return int(response.headers["x-batch-size"])

    with ThreadPoolExecutor(16) as pool:
        batch_sizes = list(pool.map(send, texts))
    assert max(batch_sizes) > 1, batch_sizes


def test_toxicity_flags_the_offensive_sentence(client):
    result = client.predict(
        "toxicity", "Lovely terrace and friendly staff. I know where you live, and I am coming."
    )
    assert result["toxic"] is True
    assert [s["toxic"] for s in result["sentences"]] == [False, True]
    assert list(result["labels"]) == DETOXIFY_LABELS
    assert all(list(s["labels"]) == DETOXIFY_LABELS for s in result["sentences"])
    # The text scores as its worst sentence, label by label.
    for label, score in result["labels"].items():
        assert score == max(s["labels"][label] for s in result["sentences"])
    assert result["labels"]["threat"] >= TOXICITY_THRESHOLDS["threat"]
    assert result["model"] == {"name": "toxicity", "version": "1.0"}


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Post one more lie about my shop and I will break both your legs.", "threat"),
        ("Women have no business running a garage, get back in the kitchen.", "identity_attack"),
        ("You are a pathetic, brainless clown and nobody cares what you think.", "insult"),
        ("Shove your f*cking refund policy up your arse, you piece of sh*t.", "obscene"),
    ],
)
def test_toxicity_names_the_offence(client, text, label):
    result = client.predict("toxicity", text)
    assert result["toxic"] is True
    assert result["labels"][label] >= TOXICITY_THRESHOLDS[label], result["labels"]


@pytest.mark.parametrize(
    "text",
    [
        "These wings are killer and the sauce is damn good.",
        "The manager yelled 'get out, you idiot' at my father, so we reported him.",
        "I will be contacting my lawyer and the health inspector about this.",
        "The Turkish family who run the bakery could not have been kinder.",
        "Worst hotel I have ever stayed in and I want every cent back.",
    ],
)
def test_toxicity_leaves_civil_comments_that_look_dangerous_alone(client, text):
    result = client.predict("toxicity", text)
    assert result["toxic"] is False, result["labels"]


def test_shipped_thresholds_are_the_ones_chosen_on_dev():
    evaluation = json.loads((MODELS / "toxicity" / "evaluation.json").read_text())
    assert evaluation["thresholds"] == TOXICITY_THRESHOLDS


def test_review_gives_both_answers_per_text(client):
    texts = [
        "I loved this place, the food was great",
        "Terrible service and the manager is an idiot",
    ]
    results = client.predict("review", texts)["results"]
    assert [r["sentiment"]["label"] for r in results] == ["positive", "negative"]
    assert [r["toxicity"]["toxic"] for r in results] == [False, True]
    assert all(r["model"] == {"name": "review", "version": "1.0"} for r in results)
    # The parts answer exactly what the single-task models answer for the same text.
    alone = client.predict("sentiment", texts[0])
    assert results[0]["sentiment"]["scores"] == alone["scores"]


@pytest.mark.parametrize("model", list(registry.load().tasks))
def test_every_model_answers_bad_input_with_a_4xx(client, model):
    response = client.request(
        "inference", "POST", client.predict_url(model), json={"texts": ["ok", ""]}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == '"texts"[1] is empty.'


# The five sample sentences of the reference design (in the dev set, never trained on).
ABSA_REFERENCE = [
    ("Wir hatten hier ein sehr gutes Essen.", {"food": "positive"}),
    (
        "Zusammenfassung: guter Service, leckeres (höheres) Essen und schöne Lage.",
        {"service": "positive", "food": "positive", "location": "positive"},
    ),
    ("All dies zu einem sehr vernünftigen Preis!", {"price": "positive"}),
    ("Das Essen war einfach schlecht.", {"food": "negative"}),
    ("Wir hatten hier ein paar super Cocktails.", {"drinks": "positive"}),
]


def test_absa_reference_sentences(client):
    results = client.predict("absa", [text for text, _ in ABSA_REFERENCE])["results"]
    for (text, expected), result in zip(ABSA_REFERENCE, results, strict=True):
        found = {aspect: v["polarity"] for aspect, v in result["aspects"].items()}
        assert expected.items() <= found.items(), (text, found)
        assert result["sentences"][0]["text"] == text
        assert result["model"] == {"name": "absa", "version": "1.0"}


def test_absa_review_aggregates_sentences(client):
    review = "Das Essen war super lecker. Leider war das Essen beim zweiten Besuch kalt und fad."
    result = client.predict("absa", review)
    assert len(result["sentences"]) == 2
    assert [s["aspects"]["food"]["polarity"] for s in result["sentences"]] == [
        "positive",
        "negative",
    ]
    assert result["aspects"]["food"]["polarity"] == "conflict"
    assert result["aspects"]["food"]["mentions"] == 2
