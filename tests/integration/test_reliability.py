"""Bad input, killed workers, broken archives and overload, against real TorchServe instances.

The numbers these tests measure are printed (``pytest -s``) and recorded in
docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from review_analysis.archives import build_mar
from review_analysis.client import ReviewClient
from review_analysis.torchserve import start_server
from tests.support.tiny_models import TEST_MODEL_CONFIG

MODELS = ["sentiment", "toxicity", "review", "absa"]

BAD_INPUTS = [
    # (name, body, content type, expected status)
    ("empty body", b"", "application/json", 400),
    ("empty string", b'{"text": ""}', "application/json", 400),
    ("whitespace only", b'{"text": " \\n\\t "}', "application/json", 400),
    ("empty list", b'{"texts": []}', "application/json", 400),
    ("number instead of text", b'{"text": 42}', "application/json", 400),
    ("list of objects", b'{"texts": [{"a": 1}]}', "application/json", 400),
    ("JSON array body", b'["a", "b"]', "application/json", 400),
    ("malformed JSON", b'{"text": "unterminated', "application/json", 400),
    ("non-UTF-8 bytes", b"caf\xe9 \xff\xfe", "text/plain", 400),
    ("1 MB text", json.dumps({"text": "a" * 1_000_000}).encode(), "application/json", 413),
    ("10,000 tiny texts", json.dumps({"texts": ["ok"] * 10_000}).encode(), "application/json", 413),
    ("65 texts", json.dumps({"texts": ["ok"] * 65}).encode(), "application/json", 413),
]
VALID_ODD_INPUTS = [
    ("control characters", {"text": "Great\x00 food\x07\x1b[31m here\r\n"}),
    ("emoji and mixed scripts", {"text": "Лучший ресторан 🍕🔥 最高 — great pizza! 😍"}),
    ("German text", {"text": "Das Essen war hervorragend und der Service sehr freundlich."}),
    ("one long word", {"text": "x" * 5000}),
]


def workers(client: ReviewClient) -> dict[str, list[tuple[int, str]]]:
    return {
        model: [
            (w["pid"], w["startTime"]) for v in client.describe(model, "all") for w in v["workers"]
        ]
        for model in MODELS
    }


@pytest.fixture(scope="module")
def client(real_server):
    with real_server.client() as client:
        yield client


def send(client: ReviewClient, model: str, body: bytes, content_type: str) -> httpx.Response:
    return client.request(
        "inference",
        "POST",
        client.predict_url(model),
        content=body,
        headers={"Content-Type": content_type},
    )


@pytest.mark.real_model
def test_bad_input_never_restarts_a_worker(client):
    """Every bad input to every model: a JSON 4xx; valid odd input: an answer; no restarts."""
    before = workers(client)
    for model in MODELS:
        for name, body, content_type, status in BAD_INPUTS:
            response = send(client, model, body, content_type)
            assert response.status_code == status, (model, name, response.text[:200])
            error = response.json()["error"]
            assert error["status"] == status and error["message"], (model, name)
        for name, payload in VALID_ODD_INPUTS:
            response = send(client, model, json.dumps(payload).encode(), "application/json")
            assert response.status_code == 200, (model, name, response.text[:200])
            assert response.json()["model"]["name"] == model
    assert workers(client) == before


@pytest.mark.real_model
def test_body_over_max_request_size_is_refused_by_torchserve(client):
    response = send(
        client, "sentiment", b'{"text": "' + b"a" * 3_000_000 + b'"}', "application/json"
    )
    assert response.status_code == 413


@pytest.mark.real_model
def test_valid_answers_survive_a_storm_of_bad_requests(client):
    """Good and bad requests interleaved under concurrency: every good one is answered."""
    bodies = [(b'{"text": "lovely dinner"}', 200), (b"{broken", 400), (b'{"texts": []}', 400)] * 30
    with ThreadPoolExecutor(12) as pool:
        codes = list(
            pool.map(lambda b: send(client, "review", b[0], "application/json").status_code, bodies)
        )
    assert codes == [status for _, status in bodies]


# The shipped batching (5 ms delay) with a short response timeout, so a test can wait it out.
KILL_TEST_CONFIG = TEST_MODEL_CONFIG.replace("maxBatchDelay: 300", "maxBatchDelay: 5").replace(
    "responseTimeout: 30", "responseTimeout: 8"
)
RESPONSE_TIMEOUT = 8


@pytest.fixture
def kill_server(tmp_path, tiny_model_dir):
    store = tmp_path / "store"
    config = tmp_path / "model-config.yaml"
    config.write_text(KILL_TEST_CONFIG)
    build_mar("sentiment", "1.0", tiny_model_dir, "sentiment", store, config=str(config))
    server = start_server(tmp_path / "ts", store, "sentiment.mar")
    yield server
    server.stop()


def test_killed_worker_is_restarted_and_retrying_clients_lose_nothing(kill_server):
    """SIGKILL the worker under load. Raw requests in flight fail with 5xx, or (TorchServe
    0.12 drops jobs a batch was still collecting when its worker died) get no answer and are
    cut by the client's deadline; the project's retrying client loses nothing."""
    client = kill_server.client(timeout=RESPONSE_TIMEOUT + 2)
    url = client.predict_url("sentiment")
    stop = threading.Event()
    outcomes: list[tuple[int, float]] = []

    def raw_load() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = client.request("inference", "POST", url, json={"text": "nice"}).status_code
            except httpx.TransportError:
                status = 0
            outcomes.append((status, time.monotonic() - started))

    def retrying_load(results: list) -> None:
        with kill_server.client(timeout=RESPONSE_TIMEOUT + 2) as own:
            while not stop.is_set():
                try:
                    results.append(own.predict("sentiment", ["good", "bad"])["results"])
                except Exception as error:  # a lost call: what the retries must prevent
                    results.append(error)

    retried: list = []
    threads = [threading.Thread(target=raw_load) for _ in range(3)]
    threads.append(threading.Thread(target=retrying_load, args=(retried,)))
    for thread in threads:
        thread.start()
    time.sleep(2)
    (worker,) = client.describe("sentiment")[0]["workers"]
    killed_at = time.monotonic()
    os.kill(worker["pid"], signal.SIGKILL)
    while (
        client.ready_workers("sentiment") == 0
        or client.describe("sentiment")[0]["workers"][0]["pid"] == worker["pid"]
    ):
        time.sleep(0.05)
    client.predict("sentiment", "back?")
    recovery = time.monotonic() - killed_at
    time.sleep(1)
    stop.set()
    for thread in threads:
        thread.join()

    failed = [s for s, _ in outcomes if 500 <= s < 600]
    unanswered = [s for s, _ in outcomes if s == 0]
    print(
        f"\nworker kill: {len(outcomes)} raw requests, {len(failed)} failed with 5xx, "
        f"{len(unanswered)} unanswered (cut at {RESPONSE_TIMEOUT + 2} s), recovery "
        f"{recovery:.2f} s; {len(retried)} retrying-client calls, all answered"
    )
    assert all(s in (0, 200) or 500 <= s < 600 for s, _ in outcomes)  # never a 4xx
    assert len(failed) + len(unanswered) <= 8 + 4  # only what was in flight: a batch + clients
    assert max(t for _, t in outcomes) < RESPONSE_TIMEOUT + 3
    assert retried and all(isinstance(r, list) and len(r) == 2 for r in retried), retried
    assert recovery < 30
    client.close()


def test_corrupt_archive_leaves_the_server_and_other_models_up(fresh_server, tiny_store):
    (tiny_store / "broken.mar").write_bytes(b"PK\x03\x04 this is not a model archive")
    try:
        with fresh_server.client() as client:
            response = client.request(
                "management",
                "POST",
                f"{client.management_url}/models",
                params={"url": "broken.mar", "initial_workers": 1, "synchronous": "true"},
            )
            assert 400 <= response.status_code < 600
            assert response.json()["message"]
            assert [m["modelName"] for m in client.list_models()["models"]] == ["sentiment"]
            assert client.predict("sentiment", "still here")["model"]["name"] == "sentiment"
        refusals = [line for line in fresh_server.access_log_lines() if "url=broken.mar" in line]
        assert refusals and f" {response.status_code} " in refusals[-1]
    finally:
        (tiny_store / "broken.mar").unlink()


def test_full_queue_answers_503_at_once(tmp_path, tiny_store):
    server = start_server(tmp_path / "ts", tiny_store, "sentiment.mar", job_queue_size="2")
    try:
        with server.client() as client:

            def timed_send(i: int) -> tuple[int, float]:
                started = time.monotonic()
                response = client.request(
                    "inference", "POST", client.predict_url("sentiment"), json={"text": f"t{i}"}
                )
                return response.status_code, time.monotonic() - started

            with ThreadPoolExecutor(32) as pool:
                outcomes = list(pool.map(timed_send, range(64)))
        refused = [t for s, t in outcomes if s == 503]
        print(
            f"\noverload: {len(refused)} of 64 refused with 503, "
            f"slowest refusal {max(refused):.3f} s"
        )
        assert refused, outcomes
        assert {s for s, _ in outcomes} <= {200, 503}
        assert max(refused) < 1.0
    finally:
        server.stop()


def test_answer_over_the_servers_max_response_size_is_a_413_and_the_worker_lives(
    tmp_path, tiny_store
):
    """Over max_response_size the frontend drops the answer and the worker with it; the
    handler reads the limit from the server's own properties and refuses that slot alone."""
    server = start_server(tmp_path / "ts", tiny_store, "sentiment.mar", max_response_size="900")
    try:
        with server.client() as client:
            (worker,) = client.describe("sentiment")[0]["workers"]
            big = {"texts": ["good food"] * 8}  # 8 results: over 900 bytes
            with ThreadPoolExecutor(2) as pool:
                answers = list(
                    pool.map(
                        lambda body: client.request(
                            "inference", "POST", client.predict_url("sentiment"), json=body
                        ),
                        [big, {"text": "fine"}],
                    )
                )
            assert [a.status_code for a in answers] == [413, 200]
            assert answers[0].json()["error"]["type"] == "ResponseTooLarge"
            assert "at most 900" in answers[0].json()["error"]["message"]
            assert client.describe("sentiment")[0]["workers"][0]["pid"] == worker["pid"]
    finally:
        server.stop()
