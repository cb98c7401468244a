"""Handler logic called in-process on a small real model, with TorchServe's own Context."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from handlers.base import plan_micro_batches
from handlers.sentiment import SentimentHandler
from tests.in_process import call, load_handler

HANDLER_SETTINGS = {
    "max_texts_per_request": 8,
    "max_text_chars": 400,
    "max_length": 16,
    "inference_batch_size": 3,
}


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> SentimentHandler:
    return load_handler(
        SentimentHandler,
        tiny_model_dir,
        tmp_path_factory.mktemp("unpacked"),
        HANDLER_SETTINGS,
        name="sentiment",
        version="3.1",
    )


def test_result_contract(handler):
    (result,), statuses = call(handler, [{"body": {"text": "the food was great"}}])
    assert statuses == [200]
    assert result["label"] in ("negative", "positive")
    assert result["score"] == max(result["scores"].values())
    assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    assert result["model"] == {"name": "sentiment", "version": "3.1"}
    assert result["truncated"] is False


def test_bad_request_fails_only_its_slot(handler):
    rows = [{"body": {"text": "good"}}, {"body": b"{broken"}, {"body": {"texts": ["a", "b"]}}]
    responses, statuses = call(handler, rows)
    assert statuses == [200, 400, 200]
    assert responses[1]["error"]["type"] == "InvalidInput"
    assert len(responses[2]["results"]) == 2


def test_batching_and_length_sorting_keep_each_text_its_own_answer(handler):
    texts = ["short", "a much longer sentence about the service and the food " * 2, "ok", "hm"]
    (batched,), _ = call(handler, [{"body": {"texts": texts}}])
    alone = [call(handler, [{"body": {"text": t}}])[0][0] for t in texts]
    for together, single in zip(batched["results"], alone, strict=True):
        assert together["scores"] == pytest.approx(single["scores"], abs=1e-4)


def test_long_text_is_truncated_and_reported(handler):
    (result,), statuses = call(handler, [{"body": {"text": "food " * 60}}])
    assert statuses == [200]
    assert result["truncated"] is True


def test_limits_come_from_model_config(handler):
    rows = [{"body": {"texts": ["a"] * 9}}, {"body": {"text": "x" * 401}}]
    responses, statuses = call(handler, rows)
    assert statuses == [413, 413]
    assert [r["error"]["type"] for r in responses] == ["TooManyTexts", "TextTooLong"]


def test_inference_failure_is_isolated_to_the_failing_request(handler, monkeypatch):
    forward = handler._forward
    poison = handler.tokenizer.convert_tokens_to_ids("service")
    assert poison != handler.tokenizer.unk_token_id

    def fail_on_poison(encoded):
        ids = [row["input_ids"] for row in encoded.features]
        if any(poison in row for row in ids):
            raise RuntimeError("poisoned batch")
        return forward(encoded)

    monkeypatch.setattr(handler, "_forward", fail_on_poison)
    rows = [{"body": {"text": "the food"}}, {"body": {"text": "the service"}}]
    responses, statuses = call(handler, rows)
    assert statuses == [200, 500]
    assert responses[1]["error"]["type"] == "InferenceError"


def test_threads_follow_config(handler):
    assert torch.get_num_threads() >= 1


def test_micro_batches_group_similar_lengths_shortest_first():
    lengths = [40, 9, 10, 41, 120, 11, 42]
    passes = plan_micro_batches(lengths, max_size=8, pass_cost_tokens=32)
    assert [[lengths[i] for i in p] for p in passes] == [[9, 10, 11], [40, 41, 42], [120]]


def test_a_text_joins_a_pass_while_its_padding_costs_less_than_a_pass():
    # Joining pads the two 10-token texts by 6 tokens each: 12 tokens of padding.
    assert len(plan_micro_batches([10, 10, 16], max_size=8, pass_cost_tokens=12)) == 1
    assert len(plan_micro_batches([10, 10, 16], max_size=8, pass_cost_tokens=11)) == 2


def test_no_pass_exceeds_its_size_and_zero_cost_pads_nothing():
    passes = plan_micro_batches([5] * 10, max_size=4, pass_cost_tokens=0)
    assert [len(p) for p in passes] == [4, 4, 2]
    assert len(plan_micro_batches([5, 6, 7], max_size=4, pass_cost_tokens=0)) == 3


@given(
    st.lists(st.integers(min_value=1, max_value=128), max_size=60),
    st.integers(min_value=1, max_value=64),
    st.integers(min_value=0, max_value=200),
)
def test_micro_batches_cover_every_text_once(lengths, max_size, cost):
    passes = plan_micro_batches(lengths, max_size, cost)
    assert sorted(i for p in passes for i in p) == list(range(len(lengths)))
    assert all(0 < len(p) <= max_size for p in passes)
    flat = [lengths[i] for p in passes for i in p]
    assert flat == sorted(flat)
