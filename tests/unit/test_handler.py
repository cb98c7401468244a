"""Handler logic called in-process on a small real model, with TorchServe's own Context."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.backends import plan_micro_batches
from handlers.sentiment import SentimentHandler
from tests.support.in_process import call, load_handler

DEFAULT_MIN_INPUT_TOKENS = 16  # handlers/base.py DEFAULT_SETTINGS["min_input_tokens"]
HANDLER_SETTINGS = {
    "max_texts_per_request": 8,
    "max_text_chars": 400,
    "max_length": 16,
    "inference_batch_size": 3,
}


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> SentimentHandler:
    """Shared by the tests that only send requests; a test that patches gets its own."""
    return load_handler(
        SentimentHandler,
        tiny_model_dir,
        tmp_path_factory.mktemp("unpacked"),
        HANDLER_SETTINGS,
        name="sentiment",
        version="3.1",
    )


@pytest.fixture
def own_handler(tmp_path: Path, tiny_model_dir: Path) -> SentimentHandler:
    return load_handler(SentimentHandler, tiny_model_dir, tmp_path, HANDLER_SETTINGS)


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


def test_inference_failure_is_isolated_to_the_failing_request(own_handler, monkeypatch):
    backend = own_handler.backend
    scores = backend.scores
    poison = backend.tokenizer.convert_tokens_to_ids("service")
    assert poison != backend.tokenizer.unk_token_id

    def fail_on_poison(encoded):
        if any(poison in row["input_ids"] for row in encoded.inputs):
            raise RuntimeError("poisoned batch")
        return scores(encoded)

    monkeypatch.setattr(backend, "scores", fail_on_poison)
    rows = [{"body": {"text": "the food"}}, {"body": {"text": "the service"}}]
    responses, statuses = call(own_handler, rows)
    assert statuses == [200, 500]
    assert responses[1]["error"]["type"] == "InferenceError"


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> SentimentHandler:
    """The same model with small compute limits: 50 tokens a request, 64 a batch. With
    max_length 16 and min_input_tokens 16, every text costs 16 tokens."""
    settings = {**HANDLER_SETTINGS, "max_tokens_per_request": 50, "max_tokens_per_batch": 64}
    return load_handler(SentimentHandler, tiny_model_dir, tmp_path_factory.mktemp("t"), settings)


def record_model_inputs(handler: SentimentHandler, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Tokens of every row the model is given from now on, padding left out."""
    fed: list[int] = []
    model = handler.backend.model

    def recording(**batch):
        fed.extend(batch["attention_mask"].sum(dim=1).tolist())
        return model(**batch)

    monkeypatch.setattr(handler.backend, "model", recording)
    return fed


def test_cost_counts_the_tokens_the_model_will_see(own_handler, monkeypatch):
    texts = ["the food was great", "service " * 40, "ok"]
    fed = record_model_inputs(own_handler, monkeypatch)
    (answer,), _ = call(own_handler, [{"body": {"texts": texts}}])
    assert [r["truncated"] for r in answer["results"]] == [False, True, False]
    assert max(fed) == 16 and min(fed) < 16  # one cut to max_length, one under the floor
    cost = own_handler.prepare(texts).cost
    assert cost.tokens == sum(max(n, DEFAULT_MIN_INPUT_TOKENS) for n in fed)
    assert cost.sentences == 3


def test_each_request_is_fanned_out_and_tokenized_once(own_handler, monkeypatch):
    """Admission keeps what it tokenized for costing; inference runs those very inputs."""
    backend = own_handler.backend
    encode, calls = backend.encode, []
    monkeypatch.setattr(backend, "encode", lambda *args: calls.append(args) or encode(*args))
    fed = record_model_inputs(own_handler, monkeypatch)
    rows = [{"body": {"text": "the food"}}, {"body": {"texts": ["good", "bad service"]}}]
    _, statuses = call(own_handler, rows)
    assert statuses == [200, 200]
    assert [texts for (texts,) in calls] == [["the food"], ["good", "bad service"]]
    assert len(fed) == 3  # all three texts in one batch of forward passes


def test_request_over_its_token_limit_is_refused_before_inference(tight):
    (refused, _), statuses = call(
        tight, [{"body": {"texts": ["food"] * 4}}, {"body": {"texts": ["good"] * 3}}]
    )
    assert statuses == [413, 200]  # 4 x 16 tokens; 3 x 16
    assert refused["error"]["type"] == "TooMuchText"
    assert "needs 64 tokens" in refused["error"]["message"]
    assert "limit is 50 per request" in refused["error"]["message"]


def test_batch_over_its_token_budget_answers_the_rest_503_with_retry_after(tight):
    rows = [{"body": {"text": "food"}} for _ in range(4)]  # 16 tokens each ...
    rows.insert(2, {"body": {"texts": ["service"] * 3}})  # ... and 48
    responses, statuses = call(tight, rows)
    assert statuses == [200, 200, 503, 200, 200]  # 4 x 16 <= 64; 32 + 48 does not fit
    assert responses[2]["error"]["type"] == "BatchFull"
    assert tight.context.get_response_headers(2)["Retry-After"] == "1"
    assert "Retry-After" not in tight.context.get_response_headers(0)


def test_answer_over_max_response_size_is_a_413_for_its_slot_only(own_handler):
    own_handler.max_response_bytes = 600
    rows = [{"body": {"texts": ["good"] * 8}}, {"body": {"text": "fine"}}]
    responses, statuses = call(own_handler, rows)
    assert statuses == [413, 200]
    assert responses[0]["error"]["type"] == "ResponseTooLarge"


def test_answers_are_compact_json(handler):
    raw = handler.handle([{"body": {"text": "good"}}], handler.context)[0]
    assert b"\n" not in raw and b": " not in raw
    assert json.loads(raw)["model"]["name"] == "sentiment"


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["\ud800", "a\udfffb", "\x00"]),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(["text", "texts", "key", "x"]), inner, max_size=3)
    ),
    max_leaves=10,
)
POISON_BODIES = st.sampled_from(
    [
        b"[" * 50_000 + b"]" * 50_000,
        b'{"text": ' + b"9" * 5000 + b"}",
        b'{"text": "\\ud800"}',
        b'{"texts": ["\\udc00x"]}',
        b'"just a string"',
        b"\xff\xfe",
    ]
)


@settings(deadline=None, max_examples=60)  # a shared 2-core machine: time is not the point
@given(
    st.lists(
        JSON_VALUES.map(lambda v: json.dumps(v).encode()) | POISON_BODIES, min_size=1, max_size=4
    )
)
def test_any_body_beside_a_good_request_is_answered_or_refused_alone(handler, bodies):
    """Whatever the other requests of a batch send, they get 200 or a 4xx, and the good
    request beside them is answered."""
    rows = [{"body": {"text": "the food was great"}}] + [{"body": body} for body in bodies]
    responses, statuses = call(handler, rows)
    assert statuses[0] == 200 and responses[0]["label"] in ("negative", "positive")
    for response, status in zip(responses[1:], statuses[1:], strict=True):
        assert status == 200 or (400 <= status < 500 and response["error"]["message"])


@pytest.fixture
def restore_threads():
    """Configuring a handler sets torch's process-wide thread count: put it back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("threads", "workers", "expected"),
    [
        (1, 1, 1),
        (2, 1, 2),
        (2, 4, 2),  # a configured count is taken as it is
        (0, 1, os.cpu_count()),  # 0: the cores shared among the workers
        (0, 2, max(1, os.cpu_count() // 2)),
        (0, 64, 1),
    ],
)
@pytest.mark.usefixtures("restore_threads")
def test_threads_follow_config(threads, workers, expected):
    SentimentHandler().configure({"threads": threads}, workers=workers)
    assert torch.get_num_threads() == expected


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
