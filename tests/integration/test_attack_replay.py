"""A bounded replay of the attacks an outside review ran on the default bundle (issue 14):
poison inputs beside good traffic, answers larger than ``max_response_size``, ABSA requests
heavier than a response timeout, and the A/B router pointed elsewhere by its Host header.

Each must cost the attacker's own request only: no worker restarts, every good request sent
beside the attacks is answered 200. The outcomes are listed in docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from review_analysis import registry
from review_analysis.client import ReviewClient

MODELS = list(registry.load().tasks)
ROUTERS = [f"{model}-ab" for model in MODELS]
GOOD = {"sentiment": "Lovely staff.", "toxicity": "Lovely staff.", "review": "Lovely staff."}
GOOD["absa"] = "Das Essen war gut."

POISON = [
    # (name, body, content type, the statuses it may get)
    ("deeply nested JSON", b"[" * 100_000 + b"]" * 100_000, "application/json", {400}),
    ("5,000-digit integer", b'{"text": ' + b"9" * 5000 + b"}", "application/json", {400}),
    ("lone surrogate", b'{"text": "\\ud800"}', "application/json", {400}),
    ("lone surrogate in a list", b'{"texts": ["ok", "\\udfff"]}', "application/json", {400}),
    # JSON with an odd parameter: an answer, or a 400 where it cannot be passed on.
    ("non-ASCII content type", b'{"text": "ok"}', "application/json; x=\xfc", {200, 400}),
    ("curl's default form body", b"not a form at all", "application/x-www-form-urlencoded", {400}),
]

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def client(real_server):
    with real_server.client(timeout=120) as client:
        yield client


def workers(client: ReviewClient) -> dict[str, list[tuple[int, str]]]:
    return {
        model: sorted(
            (w["pid"], w["startTime"]) for v in client.describe(model, "all") for w in v["workers"]
        )
        for model in MODELS + ROUTERS
    }


def send(client: ReviewClient, model: str, body: bytes, content_type: str, **headers: str):
    headers = {"Content-Type": content_type, **headers}
    # httpx refuses a non-ASCII header value as str; bytes go out as they are.
    encoded = {k: v.encode("latin-1") for k, v in headers.items()}
    return client.request(
        "inference", "POST", client.predict_url(model), content=body, headers=encoded
    )


class GoodTraffic:
    """Good requests, one after another on each model, while the block runs (bounded)."""

    def __init__(self, client: ReviewClient, models: list[str]):
        self.client = client
        self.models = models
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.loop, args=(m,)) for m in models]

    def loop(self, model: str) -> None:
        body = json.dumps({"text": GOOD[model.removesuffix("-ab")]}).encode()
        for _ in range(500):
            if self.stop.is_set():
                return
            self.statuses.append(send(self.client, model, body, "application/json").status_code)

    def __enter__(self) -> GoodTraffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(120)


def test_poison_inputs_fail_alone_beside_good_traffic(client):
    before = workers(client)
    outcomes = {}
    with GoodTraffic(client, MODELS + ROUTERS) as traffic, ThreadPoolExecutor(8) as pool:
        for model in MODELS + ROUTERS:
            for name, body, content_type, statuses in POISON:
                outcomes[model, name, frozenset(statuses)] = pool.submit(
                    send, client, model, body, content_type
                )
        for future in outcomes.values():
            future.result()
    good = traffic.statuses
    for (model, name, statuses), future in outcomes.items():
        response = future.result()
        assert response.status_code in statuses, (model, name, response.text[:300])
        if response.status_code == 400:
            assert response.json()["error"]["message"], (model, name)
    assert good and set(good) == {200}, sorted(set(good))
    assert workers(client) == before
    print(f"\npoison: {len(outcomes)} poison requests, none 5xx; {len(good)} good ones all 200")


@pytest.mark.parametrize("model", ["toxicity", "review"])
def test_an_answer_over_max_response_size_is_a_413_not_a_dead_worker(client, model):
    """12 texts of 4,000 short sentences each: a 6.7 MB answer used to kill the worker."""
    before = workers(client)
    body = json.dumps({"texts": ["Bad! " * 4000] * 12}).encode()
    with GoodTraffic(client, [model]) as traffic, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: send(client, model, body, "application/json"), range(4)))
    for answer in answers:
        assert answer.status_code == 413, answer.text[:300]
        assert answer.json()["error"]["type"] == "TooManySentences"
    assert traffic.statuses and set(traffic.statuses) == {200}
    assert workers(client) == before


def test_absa_requests_heavier_than_the_timeout_are_refused_up_front(client):
    """Two requests of 32 texts x 200 sentences used to keep both ABSA workers past their
    60 s response timeout, and TorchServe killed them."""
    before = workers(client)
    attack = json.dumps({"texts": ["Gut. " * 200] * 32}).encode()  # 6,400 sentences
    under_sentence_limit = json.dumps({"texts": ["Gut. " * 60] * 32}).encode()  # 1,920
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda body: send(client, "absa", body, "application/json"),
                [attack, attack, under_sentence_limit, under_sentence_limit],
            )
        )
    refused_in = time.monotonic() - started
    assert [a.status_code for a in answers] == [413] * 4
    assert [a.json()["error"]["type"] for a in answers] == ["TooManySentences"] * 2 + [
        "TooMuchText"
    ] * 2
    quick = client.predict("absa", GOOD["absa"])
    assert quick["aspects"]
    assert workers(client) == before
    print(f"\nheavy ABSA: refused with 413 in {refused_in:.2f} s")


def test_a_burst_at_the_absa_limits_is_answered_or_told_to_retry(client):
    """Requests each just inside the per-request limit, 8 at once: a batch takes what fits
    its token budget, the rest get 503 with Retry-After, and nothing times out."""
    limit_sentences = 100  # about 20,000 tokens: 9 pairs of about 22 tokens a sentence
    text = "Das Essen war wirklich sehr gut und reichlich. " * limit_sentences
    body = json.dumps({"text": text}).encode()
    before = workers(client)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: send(client, "absa", body, "application/json"), range(8)))
    elapsed = time.monotonic() - started
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 503}, [a.text[:200] for a in answers]
    assert 200 in statuses
    for answer in answers:
        if answer.status_code == 503:
            assert answer.headers["Retry-After"] == "1"
            assert answer.json()["error"]["type"] == "BatchFull"
    assert workers(client) == before
    print(
        f"\nABSA burst: {statuses.count(200)} answered, {statuses.count(503)} told to retry, "
        f"{elapsed:.1f} s"
    )


def test_the_router_ignores_the_host_header(client, real_server):
    """The router used to forward to 127.0.0.1:<port of the Host header>, with the key."""
    received: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                received.append(connection.recv(65536))

    thread = threading.Thread(target=accept)
    thread.start()
    management = real_server.properties["management_address"].rsplit(":", 1)[1]
    hosts = [f"127.0.0.1:{listener.getsockname()[1]}", f"127.0.0.1:{management}", "x:99999"]
    try:
        for host in hosts:
            for router in ROUTERS:
                model = router.removesuffix("-ab")
                answer = send(
                    client,
                    router,
                    json.dumps({"text": GOOD[model]}).encode(),
                    "application/json",
                    Host=host,
                )
                assert answer.status_code == 200, (router, host, answer.text[:300])
                assert answer.json()["model"]["name"] == model
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert received == []
