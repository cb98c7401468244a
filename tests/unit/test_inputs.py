"""The request parser shared by every handler."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.inputs import Limits, ParsedRequest, RequestError, parse_request

LIMITS = Limits(max_texts=4, max_text_chars=50)
FORM = "application/x-www-form-urlencoded"


def parse(body, content_type: str | None = "application/json") -> ParsedRequest:
    return parse_request({"body": body}, content_type, LIMITS)


def error_of(body, content_type: str | None = "application/json") -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse(body, content_type)
    return caught.value


def test_single_text_from_json_object():
    assert parse({"text": "Great food"}) == ParsedRequest(["Great food"], is_list=False)


def test_text_list_keeps_order_and_key():
    parsed = parse(b'{"texts": ["b", "a"], "key": "user-7"}')
    assert parsed == ParsedRequest(["b", "a"], is_list=True, key="user-7")


def test_plain_text_body_is_one_text():
    assert parse(b"Cold food, never again", "text/plain").texts == ["Cold food, never again"]


def test_plain_text_starting_with_brace_is_not_json():
    assert parse(b"{not json} but text", "text/plain").texts == ["{not json} but text"]


def test_form_field_is_accepted():
    parsed = parse_request({"data": "nice"}, None, LIMITS)
    assert parsed.texts == ["nice"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (b"", "text/plain", 400, "empty"),
        (b"   \n\t", "text/plain", 400, "empty"),
        ({"text": ""}, "application/json", 400, "empty"),
        ({"texts": []}, "application/json", 400, "empty"),
        ({"texts": "one"}, "application/json", 400, "list of strings"),
        ({"texts": ["ok", 3]}, "application/json", 400, '"texts"[1] must be a string'),
        ({"text": None}, "application/json", 400, "must be a string"),
        ({"text": "a", "texts": ["b"]}, "application/json", 400, "exactly one"),
        ({"txt": "a"}, "application/json", 400, "Unknown field"),
        ({"text": "a", "key": 5}, "application/json", 400, '"key" must be a string'),
        ([1, 2], "application/json", 400, "JSON object"),
        (b"{bad json", "application/json", 400, "Malformed JSON"),
        (b'{"text": "a"', None, 400, "Malformed JSON"),
        (b"\xff\xfe\x00", "text/plain", 400, "UTF-8"),
        ({"texts": ["a"] * 5}, "application/json", 413, "limit is 4"),
        ({"text": "x" * 51}, "application/json", 413, "limit is 50"),
    ],
)
def test_bad_input_is_a_client_error(body, content_type, status, fragment):
    error = error_of(body, content_type)
    assert error.status == status
    assert fragment in error.message
    assert error.to_json()["error"]["status"] == status


def test_missing_body():
    with pytest.raises(RequestError, match="no body"):
        parse_request({}, None, LIMITS)


@given(st.binary(max_size=200), st.sampled_from([None, "application/json", "text/plain"]))
def test_any_bytes_parse_or_fail_cleanly(body, content_type):
    """Whatever arrives, the parser returns valid texts or raises a 4xx RequestError."""
    try:
        parsed = parse(body, content_type)
    except RequestError as error:
        assert 400 <= error.status < 500
        assert error.message
    else:
        assert 1 <= len(parsed.texts) <= LIMITS.max_texts
        assert all(t.strip() and len(t) <= LIMITS.max_text_chars for t in parsed.texts)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=60),
        lambda inner: (
            st.lists(inner, max_size=6)
            | st.dictionaries(st.sampled_from(["text", "texts", "key", "x"]), inner, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_any_json_parses_or_fails_cleanly(payload):
    try:
        parsed = parse(json.dumps(payload).encode(), "application/json")
    except RequestError as error:
        assert 400 <= error.status < 500
    else:
        assert parsed.texts and all(isinstance(t, str) and t.strip() for t in parsed.texts)


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "nested too deeply"),
        (b'{"text": ' + b"9" * 5000 + b"}", "application/json", "Malformed JSON"),
        (b'{"text": "\\ud800 fine"}', "application/json", "not valid Unicode"),
        (b'{"texts": ["ok", "a\\udfff"]}', "application/json", '"texts"[1] is not valid'),
    ],
)
def test_poison_json_is_a_client_error(body, content_type, fragment):
    error = error_of(body, content_type)
    assert error.status == 400
    assert fragment in error.message


def test_json_string_body_is_one_text():
    assert parse(b'"good food"', "application/json").texts == ["good food"]


def test_form_fields_are_the_payload():
    parsed = parse_request({"text": b"nice", "key": b"user-1"}, FORM, LIMITS)
    assert parsed == ParsedRequest(["nice"], is_list=False, key="user-1")
    with pytest.raises(RequestError, match="Unknown field"):
        parse_request({"a": b"1", "b": b"2"}, FORM, LIMITS)


def test_form_without_fields_explains_what_to_send():
    """curl -d 'text without =' sends a form that TorchServe parses into no field at all."""
    with pytest.raises(RequestError, match="text=") as caught:
        parse_request({}, FORM, LIMITS)
    assert caught.value.status == 400
