"""Pure helpers of the training scripts."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    MPNetConfig,
    MPNetForSequenceClassification,
)

from review_analysis.training import toxicity
from review_analysis.training.absa import absa_scores, confusion
from review_analysis.training.datasets import Example, Review
from review_analysis.training.finetune import fine_tune, length_bucketed_batches
from review_analysis.training.sentiment import (
    fit_aggregation,
    fit_temperature,
    fold_temperature,
    split_dev,
)
from tests.support.tiny_models import CORPUS, build_tiny_classifier
from tests.support.toxicity_labels import DETOXIFY_LABELS


def test_dev_split_is_stratified_disjoint_and_seeded():
    examples = [Example(f"t{i}", i % 2, f"src{i % 3}") for i in range(600)]
    train, dev = split_dev(examples, 0.1, seed=1)
    assert len(dev) == 60 and len(train) == 540
    assert not {e.text for e in train} & {e.text for e in dev}
    for source in ("src0", "src1", "src2"):
        for label in (0, 1):
            assert sum(e.source == source and e.label == label for e in dev) == 10
    assert split_dev(examples, 0.1, seed=1)[1] == dev


def test_length_buckets_cover_every_example_once():
    lengths = [random.Random(i).randint(3, 60) for i in range(1000)]
    batches = length_bucketed_batches(lengths, 32, random.Random(0))
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000))
    assert all(len(batch) <= 32 for batch in batches)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread / len(batches) < 10  # similar lengths inside a batch


def test_temperature_recovers_overconfidence():
    torch.manual_seed(0)
    labels = torch.randint(0, 2, (4000,))
    true_logits = torch.randn(4000, 2) + torch.nn.functional.one_hot(labels, 2) * 1.5
    sampled = torch.distributions.Categorical(logits=true_logits).sample()
    temperature = fit_temperature(true_logits * 3.0, sampled)
    assert 2.5 < temperature < 3.5


def test_absa_scores_count_a_wrong_polarity_as_a_detected_but_wrong_pair():
    golds = [{"food": "positive", "service": "negative"}, {}, {"price": "conflict"}]
    predictions = [
        {"food": {"polarity": "positive"}, "service": {"polarity": "positive"}},
        {"location": {"polarity": "neutral"}},
        {},
    ]
    scores = absa_scores(golds, predictions)
    # Detection: 2 hits, 1 false alarm, 1 miss. Pairs: 1 hit, 2 false, 2 missed.
    assert scores["aspect_detection_micro_f1"] == round(4 / 6, 4)
    assert scores["aspect_polarity_micro_f1"] == round(2 / 6, 4)
    assert scores["polarity_accuracy_on_mentioned"] == round(1 / 3, 4)
    assert scores["sentences"] == 3


@pytest.mark.parametrize("architecture", ["bert", "mpnet"])
def test_temperature_folds_into_the_output_layer_of_either_head(tmp_path, architecture):
    if architecture == "bert":
        model_dir = build_tiny_classifier(tmp_path / "bert")
        model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    else:
        config = MPNetConfig(
            vocab_size=100,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=2,
        )
        model = MPNetForSequenceClassification(config)
    model.eval()
    inputs = {"input_ids": torch.tensor([[1, 5, 7, 2]])}
    with torch.no_grad():
        before = model(**inputs).logits
        fold_temperature(model, 2.5)
        after = model(**inputs).logits
    assert after == pytest.approx(before / 2.5, abs=1e-5)


def test_absa_confusion_counts_misses_inventions_and_wrong_polarities_per_aspect():
    golds = [{"food": "positive", "service": "negative"}, {"price": "neutral"}]
    predictions = [
        {"food": {"polarity": "negative"}, "ambience": {"polarity": "positive"}},
        {"price": {"polarity": "neutral"}},
    ]
    assert confusion(golds, predictions) == {
        "food": {"positive": {"negative": 1}},
        "service": {"negative": {"none": 1}},
        "ambience": {"none": {"positive": 1}},
        "price": {"neutral": {"neutral": 1}},
    }


def test_aggregation_fit_prefers_the_flattest_weighting_that_scores_about_best():
    # Reviews whose last sentence decides: only a recency weighting gets the first one right.
    positive, negative = np.array([0.1, 0.9]), np.array([0.95, 0.05])
    landing = [np.stack([negative, negative, positive]), np.stack([positive, positive])]
    reviews = [Review(["a", "b", "c"], 1, []), Review(["d", "e"], 1, [])]
    aggregation, accuracy_by_recency = fit_aggregation(reviews, landing)
    assert accuracy_by_recency["0.0"] == 0.5
    # The first review needs a recency above 5.1: 6 is the flattest of the grid.
    assert {r for r, a in accuracy_by_recency.items() if a == 1.0} == {"6.0", "8.0"}
    assert aggregation.recency == 6.0
    assert aggregation.temperature > 0


def test_temperature_stays_finite_where_the_logits_separate_perfectly():
    logits, labels = torch.tensor([[0.0, 5.0], [5.0, 0.0]]), torch.tensor([1, 0])
    assert 0.04 < fit_temperature(logits, labels) < 0.06  # the search's lower bound, not NaN


def test_toxicity_thresholds_keep_civil_reviews_unflagged():
    """The best-F1 threshold of a label is refused when it flags too many civil reviews."""
    rng = np.random.default_rng(0)
    labels = np.zeros((200, len(toxicity.LABELS)), dtype=int)
    labels[:100] = 1
    scores = np.where(
        labels == 1, rng.uniform(0.2, 1.0, labels.shape), rng.uniform(0, 0.15, labels.shape)
    )
    # Civil reviews score like the weaker toxic comments: 10% of them reach 0.25.
    civil = np.where(rng.random((500, len(toxicity.LABELS))) < 0.1, 0.25, 0.01)
    loose = toxicity.best_thresholds(scores, labels, civil, civil_flag_rate=1.0)
    strict = toxicity.best_thresholds(scores, labels, civil, civil_flag_rate=0.01)
    for label in toxicity.LABELS:
        assert loose[label] <= 0.25 < strict[label]
        k = toxicity.LABELS.index(label)
        assert (civil[:, k] >= strict[label]).mean() <= 0.01


def test_toxicity_labels_are_detoxify_names_in_jigsaw_order():
    assert list(toxicity.LABELS) == DETOXIFY_LABELS


def test_fine_tune_trains_only_on_the_examples_it_keeps(tmp_path):
    """Examples kept with probability 0 are never drawn: a model shown only label 1 answers 1
    even for the texts whose (never seen) label is 0."""
    model_dir = build_tiny_classifier(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    texts = [f"{a} {b}" for a in CORPUS for b in CORPUS]
    features = [{"input_ids": ids} for ids in tokenizer(texts)["input_ids"]]
    labels = torch.tensor([i % 2 for i in range(len(texts))])
    keep = [float(label) for label in labels.tolist()]
    fine_tune(
        model,
        tokenizer,
        features,
        labels,
        epochs=3,
        lr=1e-3,
        batch_size=4,
        rng=random.Random(0),
        keep_probability=keep,
    )
    logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
    assert (logits.argmax(dim=1) == 1).all()
