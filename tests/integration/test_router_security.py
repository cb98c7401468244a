"""The A/B router (handlers/router.py) against hostile and unusual requests, on a real TorchServe.

The server holds sentiment 1.0 (5 ms batch delay), sentiment 2.0 (the same weights, but its
batches wait SLOW_S for company, so a lone request to it is slow) and sentiment-ab, 50/50.
Requests carry an experiment key that picks their version: FAST_KEY reaches 1.0.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
import yaml

from handlers.routing import choose_variant
from review_analysis.archives import build_mar
from review_analysis.client import ReviewClient
from review_analysis.ops import ROUTER_CONFIG, pack_router
from review_analysis.torchserve import LocalTorchServe, port_of, start_server
from tests.support.tiny_models import pack_sentiment_versions

SPLIT = {"1.0": 50, "2.0": 50}
SLOW_S = 3


def key_for(version: str) -> str:
    return next(
        key
        for key in (f"user-{i}" for i in range(100))
        if choose_variant(SPLIT, key, random.Random()) == version
    )


FAST_KEY, SLOW_KEY = key_for("1.0"), key_for("2.0")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTorchServe]:
    root = tmp_path_factory.mktemp("router-security")
    # The same weights; 2.0 waits SLOW_S for company before it answers.
    store = pack_sentiment_versions(root, {"1.0": (0, 5), "2.0": (0, int(SLOW_S * 1000))})
    pack_router("sentiment", SPLIT, 1, store, "sentiment-ab")
    server = start_server(
        root / "ts", store, "sentiment-1.0.mar,sentiment-2.0.mar,sentiment-ab.mar"
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server: LocalTorchServe) -> Iterator[ReviewClient]:
    with server.client(timeout=90) as client:
        yield client


def post(
    client: ReviewClient, model: str, key: str | None = FAST_KEY, **kwargs: Any
) -> httpx.Response:
    """POST to ``model`` (e.g. "sentiment-ab", or "sentiment/1.0" for the version directly)."""
    headers = kwargs.pop("headers", {})
    if key:
        headers = {"X-Experiment-Key": key, **headers}
    url = f"{client.inference_url}/predictions/{model}"
    return client.request("inference", "POST", url, headers=headers, **kwargs)


def assert_same_answer(routed: httpx.Response, direct: httpx.Response) -> None:
    """The status and JSON of the version's own answer; scores within 1e-5 (other batches)."""

    def close(a: Any, b: Any) -> bool:
        if isinstance(a, float) and isinstance(b, float):
            return math.isclose(a, b, abs_tol=1e-5)
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
        return a == b

    assert routed.status_code == direct.status_code, (routed.text, direct.text)
    assert close(routed.json(), direct.json()), (routed.text, direct.text)


class SilentListener:
    """A loopback port that accepts connections, keeps what they send and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.connections: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except TimeoutError:
                continue
            connection.settimeout(1)
            self.connections.append(connection)
            try:
                self.received.append(connection.recv(65536))
            except TimeoutError:
                self.received.append(b"")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for connection in self.connections:
            connection.close()
        self.sock.close()


def test_the_upstream_never_comes_from_the_host_header(server, client):
    """Host used to pick the port the router forwarded to, with the caller's key: a listener
    got the key, the management port answered, a silent port froze the router, a bad port
    failed the batch. Now every request reaches the version on the server's own address."""
    listener = SilentListener()
    management = port_of(server.properties["management_address"])
    hosts = [
        f"127.0.0.1:{listener.port}",
        f"localhost:{listener.port}",
        f"127.0.0.1:{management}",
        "127.0.0.1:99999",
        "127.0.0.1:abc",
        "[::1",
        "example.com",
        None,  # the client's own Host
    ]
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(len(hosts)) as pool:
            answers = list(
                pool.map(
                    lambda host: post(
                        client,
                        "sentiment-ab",
                        json={"text": "Great food"},
                        headers={"Host": host} if host else {},
                    ),
                    hosts,
                )
            )
    finally:
        listener.close()
    assert listener.received == []
    assert [a.status_code for a in answers] == [200] * len(hosts), [a.text for a in answers]
    assert {a.json()["model"]["version"] for a in answers} == {"1.0"}
    assert time.monotonic() - started < 20


def test_a_slow_request_does_not_hold_up_fast_ones(client):
    """One router worker serves requests concurrently: a request to the slow version does not
    delay those that reach the fast one (before, they waited for the slow one's batch)."""
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        slow = pool.submit(post, client, "sentiment-ab", SLOW_KEY, json={"text": "slow"})
        time.sleep(0.5)  # the slow request is in the router
        fast = []
        for _ in range(5):
            sent = time.monotonic()
            answer = post(client, "sentiment-ab", json={"text": "fast"})
            fast.append(time.monotonic() - sent)
            assert answer.json()["model"]["version"] == "1.0"
        assert not slow.done()
        assert slow.result().json()["model"]["version"] == "2.0"
    assert time.monotonic() - started >= SLOW_S
    assert max(fast) < 1.0, fast


def test_json_bodies_are_forwarded_byte_for_byte(client):
    """A valid 1.2 MB body of non-ASCII JSON: re-encoding it with escapes made it 3.5 MB, over
    max_request_size, and the version refused it."""
    payload = {"text": "Schönes Essen, freundlicher Service.", "key": "ü" * 600_000}
    body = json.dumps(payload, ensure_ascii=False).encode()
    assert 1_000_000 < len(body) < 2_097_152  # max_request_size of config.properties
    headers = {"Content-Type": "application/json"}
    routed = post(client, "sentiment-ab", content=body, headers=headers)
    assert routed.status_code == 200, routed.text
    assert_same_answer(routed, post(client, "sentiment/1.0", content=body, headers=headers))


@pytest.mark.parametrize(
    "form",
    [
        {"content": b"text=Great food"},  # curl -d 'text=Great food'
        {"data": {"text": "Schönes Essen"}},
        {"files": {"data": ("review.json", b'{"texts": ["Great", "Awful"]}', "application/json")}},
        {"files": {"data": ("review.txt", "Schön".encode(), "text/plain")}},
        {"files": {"text": ("review.bin", b"\xff\xfe", "application/octet-stream")}},
        {"data": {"text": "Great", "key": "k"}},
        {"content": b""},  # a form without fields
    ],
)
def test_form_bodies_are_answered_as_by_the_version(client, form):
    """TorchServe parses form bodies into fields before the router sees them; the router
    sends the fields on, so the version gets what it would have got directly."""
    if "content" in form:
        form = {**form, "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
    assert_same_answer(post(client, "sentiment-ab", **form), post(client, "sentiment/1.0", **form))


def test_bad_input_fails_only_its_own_request(client):
    """Odd headers and poison bodies, sent together with good requests: each gets what the
    version answers it directly (a 400 for a poison body), and the good ones their 200."""
    requests = [
        {"json": {"text": "good"}},
        {"content": b'{"text": "ok"}', "headers": {"Content-Type": "application/json; x=ü"}},
        {"content": b"fine", "headers": {"Content-Type": "text/plain; x=ü"}},
        {"content": b"[" * 100_000, "headers": {"Content-Type": "application/json"}},
        {"content": b'{"text": "bad \xff\xfe"}', "headers": {"Content-Type": "application/json"}},
        {"content": b'{"text": ', "headers": {"Content-Type": "application/json"}},
        {"content": b'{"text": "no type"}'},
        {"content": "Schön, aber laut.".encode(), "headers": {"Content-Type": "text/plain"}},
        {"json": {"text": "good"}},
    ]
    for request in requests:
        headers = request.get("headers", {})
        request["headers"] = {name: value.encode() for name, value in headers.items()}
    with ThreadPoolExecutor(len(requests)) as pool:
        routed = list(pool.map(lambda r: post(client, "sentiment-ab", **r), requests))
    assert [r.status_code for r in routed] == [200, 200, 200, 400, 400, 400, 200, 200, 200]
    for answer, request in zip(routed, requests, strict=True):
        assert_same_answer(answer, post(client, "sentiment/1.0", **request))
        assert answer.headers["X-AB-Variant"] == "1.0"


def test_answers_carry_the_batch_size_and_a_reason_phrase(client):
    good = post(client, "sentiment-ab", json={"text": "Great food"})
    bad = post(client, "sentiment-ab", json={"texts": "not a list"})
    for answer in (good, bad):
        assert answer.headers["X-Batch-Size"] == "1"  # one request per batch
        assert answer.reason_phrase
    assert (good.status_code, bad.status_code) == (200, 400)


@contextlib.contextmanager
def extra_router(server: LocalTorchServe, client: ReviewClient, version: str, **settings: Any):
    """Router version ``version`` of sentiment-ab with these handler settings, registered
    beside the default one for the duration of the block."""
    config = yaml.safe_load(ROUTER_CONFIG.read_text())
    config.update(minWorkers=1, maxWorkers=1)  # registers faster
    config["handler"].update(target="sentiment", **settings)
    config_file = server.run_dir / f"router-{version}.yaml"
    config_file.write_text(yaml.safe_dump(config))
    archive = f"sentiment-ab-{version}"
    build_mar(
        "sentiment-ab",
        version,
        None,
        "router",
        server.model_store,
        config=str(config_file),
        archive_name=archive,
    )
    client.register(f"{archive}.mar")
    try:
        yield
    finally:
        client.unregister("sentiment-ab", version)


def test_a_version_that_does_not_answer_in_time_is_a_504_for_that_request_only(server, client):
    """An answer the router makes itself is the bundle's JSON error, for that request alone."""
    with (
        extra_router(server, client, "2", variants={"2.0": 100}, timeout_s=1),
        ThreadPoolExecutor(1) as pool,
    ):
        late = pool.submit(post, client, "sentiment-ab/2", json={"text": "slow"})
        on_time = post(client, "sentiment-ab", json={"text": "fast"})
        late = late.result()
    assert on_time.status_code == 200
    assert late.status_code == 504
    assert late.reason_phrase == "Gateway Timeout"
    assert late.headers["X-Batch-Size"] == "1"
    assert late.json()["error"] == {
        "status": 504,
        "type": "UpstreamTimeout",
        "message": "sentiment 2.0 did not answer in time.",
    }


class Recorder(BaseHTTPRequestHandler):
    """Keeps each request (path, raw headers, body) and answers 200 "Fine"."""

    requests: ClassVar[list[tuple[str, list[tuple[bytes, bytes]], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        # http.server decodes header lines as Latin-1: encoding them again gives their bytes.
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        self.requests.append((self.path, headers, body))
        answer = b'{"ok": true}'
        self.send_response(200, "Fine")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


def test_the_version_gets_the_clients_bytes_and_the_servers_key_only(server, client):
    """Through a packed inference_url, a recording server shows what the router sends: the
    body and Content-Type as the client sent them, the server's inference key, nothing else
    of the client's; and the recorder's answer comes back as it was."""
    recorder = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    body = json.dumps({"text": "Käsespätzle, sehr gut", "key": "ü" * 10}, ensure_ascii=False)
    content_type = "application/json; charset=utf-8; x=ü".encode()
    headers = {"Content-Type": content_type, "Cookie": "secret=1", "X-Forwarded-For": "1.2.3.4"}
    try:
        url = f"http://127.0.0.1:{recorder.server_address[1]}"
        with extra_router(server, client, "3", variants={"1.0": 100}, inference_url=url):
            answer = post(client, "sentiment-ab/3", content=body.encode(), headers=headers)
    finally:
        recorder.shutdown()
        thread.join(timeout=5)
    assert (answer.status_code, answer.reason_phrase, answer.json()) == (200, "Fine", {"ok": True})
    assert answer.headers["X-AB-Variant"] == "1.0"
    [(path, sent_headers, sent_body)] = Recorder.requests
    assert path == "/predictions/sentiment/1.0"
    assert sent_body == body.encode()
    sent = {name.lower(): value for name, value in sent_headers}
    assert sent[b"content-type"] == content_type
    assert sent[b"authorization"] == f"Bearer {client.key('inference')}".encode()
    assert not {b"cookie", b"x-forwarded-for", b"x-experiment-key"} & set(sent)
