"""The serving benchmark's load generator and baseline, and the accelerated build option."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import torch

from scripts.archives import build_mar
from scripts.bench_serving import (
    flask_baseline,
    review_texts,
    run_wrk,
    sentiment_handler,
    write_bodies,
)
from scripts.torchserve import LocalTorchServe, start_server
from tests.conftest import TEST_MODEL_CONFIG

TEXTS = [
    "I loved this place, the food was great.",
    "Terrible service, cold food, never again.",
    "The staff were friendly and the prices fair. " * 3,
]


@pytest.fixture
def bodies(tmp_path: Path) -> Path:
    return write_bodies(TEXTS, tmp_path / "bodies.jsonl")


def test_review_texts_vary_in_length() -> None:
    texts = review_texts(200)
    words = sorted(len(text.split()) for text in texts)
    assert len(set(texts)) > 190
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


def test_wrk_open_loop_keeps_the_offered_rate(tiny_server: LocalTorchServe, bodies: Path) -> None:
    client = tiny_server.client()
    url, key = client.predict_url("sentiment"), client.key("inference")
    result = run_wrk(url, bodies, key, 16, 2, rate=10)
    # About 20 arrivals in 2 s (fewer while a connection waits for its answer); a closed loop
    # of 16 clients would send several times more, even with the test's 300 ms batch delay.
    assert 0 < result.requests <= 40
    assert result.errors == 0


def test_flask_baseline_answers_like_a_tutorial_app(tiny_model_dir: Path) -> None:
    with flask_baseline(tiny_model_dir, max_length=32) as url:
        answer = httpx.post(url, json={"text": TEXTS[0]}, timeout=30).json()
    assert answer["label"] in {"negative", "positive"}
    assert 0.5 <= answer["score"] <= 1


@pytest.fixture(scope="module")
def accelerated_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    """The tiny model packed as torch fp32, ONNX fp32 and ONNX int8, served side by side."""
    store = tmp_path_factory.mktemp("accelerated-store")
    config = store / "model-config.yaml"
    config.write_text(TEST_MODEL_CONFIG)
    for name, engine in (("torch", None), ("onnx", "onnx"), ("int8", "onnx-int8")):
        options = {"accelerate": engine} if engine else {}
        build_mar(name, "1.0", tiny_model_dir, "sentiment", store, config=str(config), **options)
    server = start_server(
        tmp_path_factory.mktemp("ts-accelerated"), store, "torch.mar,onnx.mar,int8.mar"
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


def test_int8_build_answers_close_to_torch(accelerated_server: LocalTorchServe) -> None:
    with accelerated_server.client() as client:
        torch_answers = client.predict("torch", TEXTS)["results"]
        int8_answers = client.predict("int8", TEXTS)["results"]
    for expected, answer in zip(torch_answers, int8_answers, strict=True):
        assert sum(answer["scores"].values()) == pytest.approx(1, abs=1e-4)
        for label, score in expected["scores"].items():
            assert answer["scores"][label] == pytest.approx(score, abs=0.05)


def test_dynamic_int8_setting_quantises_and_answers_close(tiny_model_dir: Path) -> None:
    fp32 = sentiment_handler(tiny_model_dir, batch_size=4, threads=1)
    int8 = sentiment_handler(tiny_model_dir, batch_size=4, threads=1, quantize="dynamic-int8")
    assert not any(isinstance(m, torch.nn.Linear) for m in int8.model.modules())
    for expected, answer in zip(fp32.predict(TEXTS), int8.predict(TEXTS), strict=True):
        for label, score in expected["scores"].items():
            assert answer["scores"][label] == pytest.approx(score, abs=0.05)
