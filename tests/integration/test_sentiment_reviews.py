"""Whole reviews through the served default sentiment model: every sentence read, the
verdict where the review lands, batches mixing short and long reviews.

The sentences say their verdict outright: these tests are about reading and folding whole
reviews. How the model does on implicit verdicts is measured on the corpus (docs/MODELS.md).
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.real_model

GLOWING = [
    "The room was spotless and the bed was wonderfully comfortable.",
    "Our waiter was attentive and genuinely friendly.",
    "The battery easily lasts two full days.",
    "Setup was quick and painless, and it all worked perfectly.",
    "The pasta was fresh and perfectly seasoned.",
    "Customer support was superb and fixed my problem right away.",
    "The fit is great and the fabric feels soft.",
    "The staff went out of their way to help us.",
    "Delivery was fast and the packaging was neat.",
    "The screen is bright and sharp even outdoors.",
    "Every dish we tried was delicious.",
    "The price was fair for the quality we got.",
    "The view from the balcony was breathtaking.",
    "The instructions were clear and easy to follow.",
    "Check-in was quick and the receptionist was lovely.",
    "The sound quality is excellent for the size.",
]
DAMNING = [
    "The room smelled of smoke and the sheets were stained.",
    "Our waiter ignored us for half an hour.",
    "The battery barely lasts until lunch.",
    "The app crashes every time I open the camera.",
    "The pasta was overcooked and swimming in oil.",
    "Support never answered my three emails.",
    "The seams came apart after the first wash.",
    "The staff were rude when we asked for help.",
    "The package arrived late and the box was crushed.",
    "The screen has a dead pixel right in the middle.",
    "Every dish we tried was bland or cold.",
    "It is far too expensive for what you get.",
    "The street noise was unbearable and we barely slept.",
    "The instructions were missing half the steps.",
    "Check-in took an hour and nobody apologised.",
    "The speaker crackles at any volume above half.",
]


def review_of(pool: list[str], words: int) -> list[str]:
    """Sentences of ``pool`` in turn until the review has at least ``words`` words."""
    sentences: list[str] = []
    for sentence in itertools.cycle(pool):
        if sum(len(s.split()) for s in sentences) >= words:
            return sentences
        sentences.append(sentence)
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def client(real_server):
    with real_server.client() as client:
        yield client


def test_a_2000_word_review_is_read_to_its_last_sentence(client):
    # A damning first 900 words would decide the verdict of a model that reads only the start.
    sentences = review_of(DAMNING, 900) + review_of(GLOWING, 1100)
    text = " ".join(sentences)
    assert len(text.split()) >= 2000
    answer = client.predict("sentiment", text)
    assert [s["text"] for s in answer["sentences"]] == sentences
    assert answer["truncated"] is False
    assert answer["label"] == "positive"
    labels = [s["label"] for s in answer["sentences"]]
    assert labels.count("negative") >= 0.9 * len(review_of(DAMNING, 900))


@pytest.mark.parametrize(
    ("opening", "rest", "verdict"),
    [(GLOWING, DAMNING, "negative"), (DAMNING, GLOWING, "positive")],
    ids=["glowing-then-damning", "damning-then-glowing"],
)
def test_the_longer_second_half_decides_the_verdict(client, opening, rest, verdict):
    text = " ".join(opening[:4] + rest[4:10])
    answer = client.predict("sentiment", text)
    assert answer["label"] == verdict
    assert [s["label"] for s in answer["sentences"][:4]] != [verdict] * 4


def test_a_batch_of_short_and_40_sentence_reviews_answers_each(client):
    reviews = []
    for i in range(24):
        pool, label = (GLOWING, "positive") if i % 2 else (DAMNING, "negative")
        count = 40 if i % 3 == 0 else 1
        sentences = [pool[(i + k) % len(pool)] for k in range(count)]
        reviews.append((" ".join(sentences), len(sentences), label))

    def send(review: tuple[str, int, str]) -> tuple[dict, int]:
        response = client.request(
            "inference", "POST", client.predict_url("sentiment"), json={"text": review[0]}
        )
        assert response.status_code == 200, response.text
        return response.json(), int(response.headers["x-batch-size"])

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(send, reviews))
    for (answer, _), (_, sentences, label) in zip(answers, reviews, strict=True):
        assert len(answer["sentences"]) == sentences
        assert answer["label"] == label
    assert {sentences for _, sentences, _ in reviews} == {1, 40}
    assert max(batch for _, batch in answers) > 1


def test_review_gives_the_same_sentiment_answer(client):
    text = " ".join(GLOWING[:3] + DAMNING[:2])
    alone = client.predict("sentiment", text)
    combined = client.predict("review", text)
    assert combined["sentiment"] == {key: alone[key] for key in alone if key != "model"}
