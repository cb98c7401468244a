"""The serving benchmark's load generator and baselines, and the accelerated build options."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch

import handlers.backends
from review_analysis.archives import build_mar
from review_analysis.bench.baseline_flask import flask_baseline
from review_analysis.bench.loadgen import run_wrk, write_bodies
from review_analysis.bench.subjects import SUBJECTS, english_reviews, german_reviews
from review_analysis.torchserve import LocalTorchServe, start_server
from review_analysis.training.accelerate import export
from tests.support.tiny_models import TEST_MODEL_CONFIG

TEXTS = [
    "I loved this place, the food was great.",
    "Terrible service, cold food, never again.",
    "The staff were friendly and the prices fair. " * 3,
]


@pytest.fixture
def bodies(tmp_path: Path) -> Path:
    return write_bodies(TEXTS, tmp_path / "bodies.jsonl")


def test_review_texts_vary_in_length() -> None:
    for texts in (english_reviews(200), german_reviews(200)):
        words = sorted(len(text.split()) for text in texts)
        assert len(set(texts)) > 150
        assert words[len(words) // 2] < 30 < words[-1]


def test_wrk_closed_loop_counts_answers(
    tiny_server: LocalTorchServe, bodies: Path, tmp_path: Path
) -> None:
    client = tiny_server.client()
    result = run_wrk(client.predict_url("sentiment"), bodies, client.key("inference"), 2, 1)
    assert result.requests > 0
    assert result.errors == 0
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms


def test_wrk_counts_refused_requests_as_errors(tiny_server: LocalTorchServe, bodies: Path) -> None:
    url = tiny_server.client().predict_url("sentiment")
    result = run_wrk(url, bodies, "not-the-key", 2, 1)
    assert result.requests > 0
    assert result.errors == result.requests


def test_wrk_sends_client_side_batches(tiny_server: LocalTorchServe, tmp_path: Path) -> None:
    grouped = write_bodies(TEXTS, tmp_path / "grouped.jsonl", per_request=2)
    assert [len(json.loads(line)["texts"]) for line in grouped.read_text().splitlines()] == [2, 1]
    client = tiny_server.client()
    result = run_wrk(client.predict_url("sentiment"), grouped, client.key("inference"), 2, 1)
    assert result.requests > 0
    assert result.errors == 0


def test_wrk_open_loop_keeps_the_offered_rate(tiny_server: LocalTorchServe, bodies: Path) -> None:
    client = tiny_server.client()
    url, key = client.predict_url("sentiment"), client.key("inference")
    result = run_wrk(url, bodies, key, 16, 2, rate=10)
    # About 20 arrivals in 2 s (fewer while a connection waits for its answer); a closed loop
    # of 16 clients would send several times more, even with the test's 300 ms batch delay.
    assert 0 < result.requests <= 40
    assert result.errors == 0


def test_flask_baseline_answers_like_a_tutorial_app(tiny_model_dir: Path) -> None:
    with flask_baseline(SUBJECTS["sentiment"], tiny_model_dir) as url:
        answer = httpx.post(url, json={"text": TEXTS[0]}, timeout=30).json()
    assert answer["label"] in {"negative", "positive"}
    assert 0.5 <= answer["score"] <= 1


def test_flask_baseline_of_a_model_without_pipeline_runs_its_handler() -> None:
    toxicity = SUBJECTS["toxicity"]
    with flask_baseline(toxicity, toxicity.model_dir(Path("unused"))) as url:
        answer = httpx.post(url, json={"text": "Lovely food. You idiot."}, timeout=30).json()
    assert [s["toxic"] for s in answer["sentences"]] == [False, True]


@pytest.fixture(scope="module")
def shipped_settings_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    """The small model with the shipped sentiment model-config.yaml (batching, workers)."""
    store = tmp_path_factory.mktemp("shipped-store")
    build_mar("sentiment", "1.0", tiny_model_dir, "sentiment", store)
    server = start_server(tmp_path_factory.mktemp("ts-shipped"), store, "sentiment.mar")
    yield server
    server.stop()


def test_shipped_batch_delay_still_merges_concurrent_requests(
    shipped_settings_server: LocalTorchServe,
) -> None:
    """A 1 ms maxBatchDelay keeps a lone request fast; under load, requests that queue while
    a worker computes still share its next batch."""
    with shipped_settings_server.client() as client:
        assert len(client.describe("sentiment")[0]["workers"]) == 2
        url, key = client.predict_url("sentiment"), client.key("inference")

        def send(text: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {key}"}
            return client.http.post(url, json={"text": text}, headers=headers)

        with ThreadPoolExecutor(32) as pool:
            responses = list(pool.map(send, [f"{TEXTS[i % 3]} {i}" for i in range(256)]))
    assert [r.status_code for r in responses] == [200] * 256
    assert max(int(r.headers["x-batch-size"]) for r in responses) > 1


@pytest.fixture(scope="module")
def accelerated_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    """The tiny model packed as torch fp32, bfloat16, ONNX fp32 and ONNX int8, side by side."""
    store = tmp_path_factory.mktemp("accelerated-store")
    config = store / "model-config.yaml"
    config.write_text(TEST_MODEL_CONFIG)
    builds = (("torch", None), ("bf16", "bf16"), ("onnx", "onnx"), ("int8", "onnx-int8"))
    for name, engine in builds:
        options = {"accelerate": engine} if engine else {}
        build_mar(name, "1.0", tiny_model_dir, "sentiment", store, config=str(config), **options)
    server = start_server(
        tmp_path_factory.mktemp("ts-accelerated"),
        store,
        ",".join(f"{name}.mar" for name, _ in builds),
    )
    yield server
    server.stop()


def test_onnx_build_answers_like_torch(accelerated_server: LocalTorchServe) -> None:
    with accelerated_server.client() as client:
        torch_answers = client.predict("torch", TEXTS)["results"]
        onnx_answers = client.predict("onnx", TEXTS)["results"]
    for expected, answer in zip(torch_answers, onnx_answers, strict=True):
        assert answer["label"] == expected["label"]
        for label, score in expected["scores"].items():
            assert answer["scores"][label] == pytest.approx(score, abs=1e-4)


@pytest.mark.parametrize("build", ["bf16", "int8"])
def test_reduced_precision_builds_answer_close_to_torch(
    accelerated_server: LocalTorchServe, build: str
) -> None:
    with accelerated_server.client() as client:
        torch_answers = client.predict("torch", TEXTS)["results"]
        answers = client.predict(build, TEXTS)["results"]
    for expected, answer in zip(torch_answers, answers, strict=True):
        assert sum(answer["scores"].values()) == pytest.approx(1, abs=1e-4)
        for label, score in expected["scores"].items():
            assert answer["scores"][label] == pytest.approx(score, abs=0.05)


def test_bf16_build_stores_bfloat16_weights_and_serves_them_where_the_cpu_has_them(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bf16_dir = export(tiny_model_dir, tmp_path / "bf16", "bf16")
    sentiment = SUBJECTS["sentiment"]
    expected = torch.bfloat16 if handlers.backends.native_bfloat16() else torch.float32
    assert sentiment.load(bf16_dir).backend.model.dtype == expected
    monkeypatch.setattr(handlers.backends, "native_bfloat16", lambda: False)
    # A CPU without bfloat16 instructions would emulate it, slower than float32.
    assert sentiment.load(bf16_dir).backend.model.dtype == torch.float32


def test_dynamic_int8_setting_quantises_and_answers_close(tiny_model_dir: Path) -> None:
    sentiment = SUBJECTS["sentiment"]
    fp32 = sentiment.load(tiny_model_dir, inference_batch_size=4, threads=1)
    int8 = sentiment.load(
        tiny_model_dir, inference_batch_size=4, threads=1, quantize="dynamic-int8"
    )
    assert not any(isinstance(m, torch.nn.Linear) for m in int8.backend.model.modules())
    for expected, answer in zip(fp32.predict(TEXTS), int8.predict(TEXTS), strict=True):
        for label, score in expected["scores"].items():
            assert answer["scores"][label] == pytest.approx(score, abs=0.05)
