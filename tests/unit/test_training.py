"""Pure helpers of the training scripts."""

from __future__ import annotations

import random

import torch

from review_analysis.training.absa import absa_scores
from review_analysis.training.datasets import Example
from review_analysis.training.finetune import length_bucketed_batches
from review_analysis.training.sentiment import fit_temperature, split_dev


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
