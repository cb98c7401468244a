"""The bundle's Prometheus metrics (metrics.yaml), scraped from real servers as requests go by."""

from __future__ import annotations

import json
import re

import yaml

from review_analysis.client import ServerError
from review_analysis.paths import REPO
from review_analysis.torchserve import LocalTorchServe
from tests.support.prometheus import Scrape, wait_for_metrics

SENTIMENT = {"model_name": "sentiment", "model_version": "1.0"}


def test_latency_batches_texts_labels_and_errors_move_with_requests(tiny_server: LocalTorchServe):
    before = Scrape(tiny_server)
    with tiny_server.client() as client:
        answers = [client.predict("sentiment", ["good food", "cold soup"]) for _ in range(3)]
        try:
            client.predict("sentiment", "   ")
        except ServerError as error:
            assert error.status == 400

    def grew(scrape: Scrape, name: str, **labels: str) -> float:
        return scrape.value(name, **SENTIMENT, **labels) - before.value(name, **SENTIMENT, **labels)

    after = wait_for_metrics(
        tiny_server, lambda s: grew(s, "reviews_request_errors_total", status="400") >= 1
    )
    assert grew(after, "reviews_handler_latency_seconds_count") == 4  # one per request
    assert grew(after, "reviews_handler_latency_seconds_sum") > 0
    assert grew(after, "reviews_batch_size_requests_count") >= 1
    assert grew(after, "reviews_batch_size_requests_sum") == 4
    assert grew(after, "reviews_texts_processed_total") == 6
    labels = [result["label"] for answer in answers for result in answer["results"]]
    for label in set(labels):
        assert grew(after, "reviews_sentiment_predictions_total", label=label) == labels.count(
            label
        )
    assert grew(after, "reviews_request_errors_total", status="400") == 1
    # The histogram has Prometheus' cumulative buckets up to +Inf.
    assert after.value("reviews_handler_latency_seconds_bucket", le="+Inf", **SENTIMENT) == (
        after.value("reviews_handler_latency_seconds_count", **SENTIMENT)
    )


def test_task_metrics_of_the_real_models(real_server: LocalTorchServe):
    before = Scrape(real_server)
    with real_server.client() as client:
        toxic = client.predict("toxicity", "You are a stupid idiot. The food was fine.")
        review = client.predict("review", "What a lovely evening, great food.")
        absa = client.predict("absa", "Die Pizza war lecker, aber der Kellner war unfreundlich.")
    assert toxic["toxic"] and absa["aspects"]

    def grew(scrape: Scrape, name: str, **labels: str) -> float:
        return scrape.value(name, **labels) - before.value(name, **labels)

    after = wait_for_metrics(
        real_server,
        lambda s: (
            grew(s, "reviews_texts_processed_total", model_name="absa") >= 1
            and grew(s, "reviews_texts_processed_total", model_name="review") >= 1
        ),
    )
    # One flagged text, counted under each label it was flagged for.
    for label in ("toxicity", "insult"):
        flagged = grew(
            after, "reviews_toxicity_flagged_texts_total", model_name="toxicity", label=label
        )
        assert flagged == 1, label
    assert (
        grew(
            after,
            "reviews_sentiment_predictions_total",
            model_name="review",
            label=review["sentiment"]["label"],
        )
        == 1
    )
    for aspect, verdict in absa["aspects"].items():
        found = {"aspect": aspect, "polarity": verdict["polarity"]}
        assert grew(after, "reviews_absa_aspects_total", model_name="absa", **found) == 1


def test_the_dashboard_queries_only_declared_metrics():
    declared = {
        metric["name"]
        for section in ("ts_metrics", "model_metrics")
        for metrics in yaml.safe_load((REPO / "metrics.yaml").read_text())[section].values()
        for metric in metrics
    }
    dashboard = json.loads((REPO / "docs/grafana/review-analysis.json").read_text())
    queried = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(reviews_\w+|ts_\w+|Requests\dXX)\b", target["expr"])
    }
    assert len(queried) >= 10
    assert queried <= declared, queried - declared
