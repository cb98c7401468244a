"""The gRPC client against real TorchServe instances: the same answers as over HTTP."""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2

from review_analysis.client import ServerError
from review_analysis.grpc_client import inference_pb2, is_retryable_rpc, management_pb2
from review_analysis.torchserve import start_server

ENGLISH = [
    "I loved this place, the food was great",
    "Terrible service, cold food, never again",
    "Lovely terrace. The waiter is a fucking moron.",
]
GERMAN = [
    "Das Essen war super lecker, aber der Service war sehr langsam.",
    "Die Preise sind fair und das Ambiente gemütlich.",
]
TEXTS = {"sentiment": ENGLISH, "toxicity": ENGLISH, "review": ENGLISH, "absa": GERMAN}


def assert_same_answer(grpc_answer: Any, http_answer: Any, where: str = "answer") -> None:
    """Equal structure, labels and flags; scores within 1e-5 (separate forward passes)."""
    if isinstance(http_answer, float):
        assert math.isclose(grpc_answer, http_answer, abs_tol=1e-5), where
    elif isinstance(http_answer, dict):
        assert grpc_answer.keys() == http_answer.keys(), where
        for key, value in http_answer.items():
            assert_same_answer(grpc_answer[key], value, f"{where}.{key}")
    elif isinstance(http_answer, list):
        assert len(grpc_answer) == len(http_answer), where
        for i, (got, expected) in enumerate(zip(grpc_answer, http_answer, strict=True)):
            assert_same_answer(got, expected, f"{where}[{i}]")
    else:
        assert grpc_answer == http_answer, where


@pytest.fixture(scope="module")
def tiny_clients(tiny_server):
    with tiny_server.grpc_client() as grpc_client, tiny_server.client() as http_client:
        yield grpc_client, http_client


@pytest.mark.real_model
@pytest.mark.parametrize("model", TEXTS)
def test_every_default_model_answers_grpc_as_http(real_server, model):
    texts = TEXTS[model]
    with real_server.grpc_client() as grpc_client, real_server.client() as http_client:
        many = grpc_client.predict(model, texts)
        assert_same_answer(many, http_client.predict(model, texts))
        one = grpc_client.predict(model, texts[0], version="1.0")
        assert_same_answer(one, http_client.predict(model, texts[0], version="1.0"))
    assert len(many["results"]) == len(texts)
    assert one["model"] == {"name": model, "version": "1.0"}


def test_ping_and_list_models_answer_as_http(tiny_clients):
    grpc_client, http_client = tiny_clients
    assert grpc_client.ping() == http_client.ping() == {"status": "Healthy"}
    models = grpc_client.list_models()
    assert models == http_client.list_models()
    assert [m["modelName"] for m in models["models"]] == ["sentiment"]
    assert grpc_client.describe("sentiment", "1.0") == http_client.describe("sentiment", "1.0")


def test_register_set_default_and_unregister_over_grpc(fresh_server):
    """On a server of its own: the shared one must not change under other tests."""
    with fresh_server.grpc_client() as grpc_client, fresh_server.client() as http_client:
        answer = grpc_client.register("sentiment-2.0.mar")
        assert answer == {
            "status": 'Model "sentiment" Version: 2.0 registered with 1 initial workers'
        }
        assert grpc_client.predict("sentiment", "fine")["model"]["version"] == "1.0"
        assert "2.0" in grpc_client.set_default("sentiment", "2.0")["status"]
        assert http_client.predict("sentiment", "fine")["model"]["version"] == "2.0"
        assert grpc_client.predict("sentiment", "fine")["model"]["version"] == "2.0"
        assert_same_answer(
            grpc_client.predict("sentiment", "fine", version="1.0"),
            http_client.predict("sentiment", "fine", version="1.0"),
        )
        grpc_client.set_default("sentiment", "1.0")
        grpc_client.unregister("sentiment", "2.0")
        versions = {v["modelVersion"] for v in http_client.describe("sentiment", "all")}
        assert versions == {"1.0"}


@pytest.mark.parametrize(
    ("texts", "status", "error_type"),
    [("", 400, "InvalidInput"), (["ok"] * 9, 413, "TooManyTexts")],
)
def test_bad_request_raises_the_handlers_json_error(tiny_clients, texts, status, error_type):
    grpc_client, http_client = tiny_clients
    with pytest.raises(ServerError) as over_grpc:
        grpc_client.predict("sentiment", texts)
    with pytest.raises(ServerError) as over_http:
        http_client.predict("sentiment", texts)
    assert over_grpc.value.status == over_http.value.status == status
    assert over_grpc.value.body == over_http.value.body
    assert over_grpc.value.body["error"]["type"] == error_type


def test_an_ab_router_answers_grpc_as_its_version_does(ab_server):
    """A gRPC call reaches the router without headers (no Host, no token): the router
    forwards to the server's own address with the server's key, and answers as its version."""
    with ab_server.grpc_client() as grpc_client, ab_server.client() as http_client:
        routed = grpc_client.predict("sentiment-ab", ENGLISH)
        assert_same_answer(routed, http_client.predict("sentiment", ENGLISH, version="1.0"))
        assert grpc_client.predict("sentiment-ab", "Schön")["model"]["version"] == "1.0"
        with pytest.raises(ServerError) as over_router:
            grpc_client.predict("sentiment-ab", "")
        with pytest.raises(ServerError) as direct:
            grpc_client.predict("sentiment", "", version="1.0")
    assert over_router.value.status == direct.value.status == 400
    assert over_router.value.body == direct.value.body


def test_unknown_model_or_version_is_a_grpc_error_not_retried(tiny_clients):
    grpc_client, _ = tiny_clients
    for model, version in [("no-such-model", None), ("sentiment", "9.0")]:
        with pytest.raises(grpc.RpcError) as error:
            grpc_client.predict(model, "hello", version=version)
        assert error.value.code() == grpc.StatusCode.INTERNAL
        assert "NotFoundException" in error.value.details()
        assert not is_retryable_rpc(error.value)


def test_predictions_survive_a_killed_worker(fresh_server):
    """Calls in flight when the worker dies fail (or, lost by TorchServe, hit the deadline) and
    are retried like HTTP ones: none is lost."""
    outcomes: list[Any] = []
    stop = threading.Event()
    with fresh_server.grpc_client(timeout=5) as client, fresh_server.client() as http_client:

        def load() -> None:
            while not stop.is_set():
                try:
                    outcomes.append(client.predict("sentiment", ["good", "bad"]))
                except Exception as error:  # a lost call: what the retries must prevent
                    outcomes.append(error)

        threads = [threading.Thread(target=load) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1)
            (worker,) = http_client.describe("sentiment")[0]["workers"]
            os.kill(worker["pid"], signal.SIGKILL)
            deadline = time.monotonic() + 60
            while http_client.describe("sentiment")[0]["workers"][0]["pid"] == worker["pid"]:
                assert time.monotonic() < deadline, "the worker was not restarted"
                time.sleep(0.1)
            calls_before_restart = len(outcomes)
            while len(outcomes) < calls_before_restart + 6:
                assert time.monotonic() < deadline, "no answers after the restart"
                time.sleep(0.1)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert [o for o in outcomes if isinstance(o, Exception)] == []
    assert all(len(o["results"]) == 2 for o in outcomes)


def test_token_is_required_and_an_expired_key_is_renewed(tmp_path, tiny_store):
    server = start_server(tmp_path / "ts", tiny_store, "sentiment.mar", token_expiration_min="0.05")
    try:
        with server.grpc_client() as client:
            request = inference_pb2.PredictionsRequest(
                model_name="sentiment", input={"data": json.dumps({"text": "hello"}).encode()}
            )
            for metadata in [None, [("authorization", "Bearer wrong")]]:
                with pytest.raises(grpc.RpcError) as refused:
                    client.inference.Predictions(request, metadata=metadata)
                assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
                assert "Token Authorization failed" in refused.value.details()
            inference_key = [("authorization", client.keys.authorization("inference"))]
            with pytest.raises(grpc.RpcError):
                client.management.ListModels(
                    management_pb2.ListModelsRequest(), metadata=inference_key
                )
            assert client.inference.Ping(empty_pb2.Empty(), metadata=inference_key).health

            time.sleep(4)  # keys live 3 s here
            with pytest.raises(grpc.RpcError):
                client.inference.Predictions(request, metadata=inference_key)
            assert client.predict("sentiment", "hello")["model"]["name"] == "sentiment"
            assert client.keys.authorization("inference") != inference_key[0][1]
    finally:
        server.stop()
