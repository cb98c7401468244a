"""A/B routing: weighted sticky splits, and a hot swap under real load (ops: test_ops.py)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from handlers.routing import choose_variant
from review_analysis.bench.loadgen import LoadResult, run_hey
from review_analysis.client import ReviewClient
from review_analysis.ops import Operator
from review_analysis.torchserve import LocalTorchServe
from tests.support.prometheus import Scrape, wait_for_metrics

KEYS = [f"user-{i}" for i in range(2000)]


def share(assignments: list[str], version: str) -> float:
    return assignments.count(version) / len(assignments)


# ----- the split itself (no server) -----------------------------------------------------------


def test_keyed_split_follows_the_weights_and_moves_only_what_must_move():
    before = [choose_variant({"1.0": 90, "2.0": 10}, key, random.Random()) for key in KEYS]
    assert abs(share(before, "2.0") - 0.10) <= 0.02
    assert before == [choose_variant({"1.0": 90, "2.0": 10}, k, random.Random()) for k in KEYS]

    after = [choose_variant({"1.0": 80, "2.0": 20}, key, random.Random()) for key in KEYS]
    moved = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert set(moved) == {("1.0", "2.0")}  # nobody on 2.0 is sent back to 1.0
    assert abs(len(moved) / len(KEYS) - 0.10) <= 0.02

    third = [choose_variant({"1.0": 80, "2.0": 20, "3.0": 10}, k, random.Random()) for k in KEYS]
    assert {b for a, b in zip(after, third, strict=True) if a != b} == {"3.0"}


def test_unkeyed_split_is_random_by_weight_and_skips_zero_weights():
    rng = random.Random(7)
    picks = [choose_variant({"1.0": 90, "2.0": 10, "3.0": 0}, None, rng) for _ in range(4000)]
    assert abs(share(picks, "2.0") - 0.10) <= 0.02
    assert "3.0" not in picks
    assert choose_variant({"1.0": 0, "2.0": 5}, "any key", rng) == "2.0"


# ----- served -------------------------------------------------------------------------------


def routed(client: ReviewClient, text: str, key: str | None = None, header: bool = False):
    """POST to sentiment-ab; the key goes in the body, or in the X-Experiment-Key header."""
    body = {"text": text} if key is None or header else {"text": text, "key": key}
    headers = {"X-Experiment-Key": key} if header else {}
    url = client.predict_url("sentiment-ab")
    return client.request("inference", "POST", url, json=body, headers=headers)


def test_router_splits_by_weight_sticks_to_keys_and_counts_per_variant(
    ab_server: LocalTorchServe, operator: Operator
):
    operator.register("sentiment-2.0.mar")
    split = operator.split("sentiment", {"1.0": 90, "2.0": 10})
    assert split.version == 2
    client = operator.client
    scrape_before = Scrape(ab_server)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda key: routed(client, "good food", key), KEYS))
    assert all(a.status_code == 200 for a in answers)
    versions = [a.json()["model"]["version"] for a in answers]
    assert versions == [a.headers["X-AB-Variant"] for a in answers]
    assert abs(share(versions, "2.0") - 0.10) <= 0.02
    print(f"\n2,000 keyed requests at 90/10: {share(versions, '2.0'):.2%} answered by 2.0")

    # Sticky: the same key, in the body or in the header, always reaches the same version.
    for key in KEYS[:20]:
        expected = versions[KEYS.index(key)]
        assert {routed(client, "x", key).json()["model"]["version"] for _ in range(3)} == {expected}
        assert routed(client, "x", key, header=True).json()["model"]["version"] == expected

    counts = Counter(versions)
    scrape = wait_for_metrics(
        ab_server,
        lambda s: (
            s.value("reviews_ab_requests_total", model_version="2", variant="1.0") >= counts["1.0"]
        ),
    )
    assert scrape.value("reviews_ab_weight_ratio", model_version="2", variant="2.0") == 0.1
    for version, count in counts.items():
        labels = {"model_name": "sentiment-ab", "model_version": "2", "variant": version}
        assert scrape.value("reviews_ab_requests_total", status="200", **labels) >= count
        assert scrape.value("reviews_ab_latency_seconds_count", **labels) >= count
        served = {"model_name": "sentiment", "model_version": version}
        assert scrape.value("reviews_handler_latency_seconds_count", **served) > (
            scrape_before.value("reviews_handler_latency_seconds_count", **served)
        )

    # Bad input passes through the router as the model's own 4xx answer.
    bad = client.request("inference", "POST", client.predict_url("sentiment-ab"), json={"t": 1})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "InvalidInput"


def test_unkeyed_traffic_through_hey_matches_the_split(
    ab_server: LocalTorchServe, operator: Operator
):
    operator.register("sentiment-2.0.mar")
    operator.split("sentiment", {"1.0": 90, "2.0": 10})
    client = operator.client
    body = json.dumps({"text": "The soup was cold."}).encode()
    url = client.predict_url("sentiment-ab")
    result = run_hey(url, body, client.key("inference"), concurrency=8, requests=2000)
    assert (result.requests, result.errors) == (2000, 0)
    scrape = wait_for_metrics(
        ab_server, lambda s: s.value("reviews_ab_requests_total", model_version="2") >= 2000
    )
    to_two = scrape.value("reviews_ab_requests_total", model_version="2", variant="2.0")
    total = scrape.value("reviews_ab_requests_total", model_version="2")
    assert total == 2000
    # Random by weight: 3 points is 4.5 standard deviations at n = 2,000.
    assert abs(to_two / total - 0.10) <= 0.03
    print(f"\n2,000 unkeyed requests (hey) at 90/10: {to_two / total:.2%} to 2.0")


def test_hot_swap_under_load_fails_and_loses_no_request(
    ab_server: LocalTorchServe, operator: Operator
):
    """Register 2.0, move 0 -> 10 -> 100%, unregister 1.0 while hey keeps sending."""
    client = operator.client
    body = json.dumps({"text": "Lovely staff, but the fries were soggy."}).encode()
    url = client.predict_url("sentiment-ab")
    log_start = len(ab_server.access_log_lines())
    # A counted, rate-limited run (4 clients x 25/s, about 40 s) answers every request it sends.
    sent = 4000
    load: dict[str, LoadResult] = {}
    hey = threading.Thread(
        target=lambda: load.update(
            result=run_hey(url, body, client.key("inference"), 4, rate_per_worker=25, requests=sent)
        )
    )
    hey.start()
    time.sleep(3)
    steps = []
    operator.register("sentiment-2.0.mar")
    steps.append("registered 2.0")
    operator.split("sentiment", {"1.0": 90, "2.0": 10})
    steps.append("90/10")
    time.sleep(3)
    operator.promote("sentiment", "2.0")
    steps.append("100% 2.0")
    operator.unregister("sentiment", "1.0")
    steps.append("unregistered 1.0")
    swap_done = hey.is_alive()
    hey.join()

    result = load["result"]
    assert swap_done, "the load ended before the swap did: raise `sent`"
    assert steps[-1] == "unregistered 1.0"
    assert (result.requests, result.errors) == (sent, 0)
    assert ab_server.answered_in_log("/predictions/sentiment-ab", log_start) == sent
    scrape = wait_for_metrics(
        ab_server, lambda s: s.value("reviews_ab_requests_total", status="200") >= sent
    )
    for version in ("1.0", "2.0"):
        assert scrape.value("reviews_ab_requests_total", variant=version, status="200") > 0
    assert routed(client, "after the swap").json()["model"]["version"] == "2.0"
    assert [v["modelVersion"] for v in operator.versions("sentiment")] == ["2.0"]
    print(
        f"\nhot swap under load: {result.requests} sent, {result.requests - result.errors} "
        f"answered 2xx, p99 {result.p99_ms:.0f} ms; steps: {', '.join(steps)}"
    )
