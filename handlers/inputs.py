"""Request parsing shared by every handler: one TorchServe request row in, a list of texts out.

Accepted bodies: JSON ``{"text": "..."}`` (one result), JSON ``{"texts": [...]}`` (a list of
results in input order), a plain-text body (one result), or a form with a ``text`` field.
Anything else raises :class:`RequestError`, which the handler turns into a 4xx answer for
that request alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

# Fields a client may send beside the texts; "key" is the A/B experiment key.
OPTIONAL_FIELDS = frozenset({"key"})


class RequestError(Exception):
    """A client error that fails one request of a batch, never the batch."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def to_json(self) -> dict[str, Any]:
        return {"error": {"status": self.status, "type": self.error_type, "message": self.message}}


def invalid(message: str) -> RequestError:
    return RequestError(400, "InvalidInput", message)


@dataclass(frozen=True)
class Limits:
    max_texts: int
    max_text_chars: int


@dataclass(frozen=True)
class ParsedRequest:
    texts: list[str]
    is_list: bool  # {"texts": [...]} answers {"results": [...]}; anything else one result
    key: str | None = None


def receive_raw_bodies() -> None:
    """Have TorchServe hand this worker every body as the bytes the client sent.

    By default the worker decodes ``application/json`` bodies itself (``ts.protocol.
    otf_message_handler`` reads this variable on every request) and, when that fails, passes
    the bytes on: a handler could not tell a JSON string body from a plain-text one, and the
    router could not forward bodies byte for byte. Worker processes are per model, so this
    changes only the models whose handlers call it.
    """
    os.environ["TS_DECODE_INPUT_REQUEST"] = "false"


def find_header(context: Any, idx: int, name: str) -> str | None:
    """A request header, matched case-insensitively. TorchServe keeps each body field's content
    type in the same map, as a dict under the field's name: those are no headers."""
    headers = context.get_all_request_header(idx) or {}
    for key, value in headers.items():
        if key.lower() == name.lower() and isinstance(value, str):
            return value
    return None


FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


def media_type_of(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def as_text(value: Any, what: str) -> Any:
    """Bytes as UTF-8 text; anything else (a value decoded in-process) unchanged."""
    if not isinstance(value, (bytes, bytearray)):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as error:
        raise invalid(f"{what} is not valid UTF-8 (byte {error.start}).") from None


def request_body(row: dict[str, Any], content_type: str | None = None) -> Any:
    """The payload of a TorchServe request row: the raw body, or the form's fields."""
    for name in ("body", "data"):
        if row.get(name) is not None:
            return row[name]
    if row:
        # TorchServe parsed a form into its fields: they are the payload, as a JSON object.
        return {name: as_text(value, f"Form field {name!r}") for name, value in row.items()}
    if media_type_of(content_type) == FORM_MEDIA_TYPE:
        raise invalid(
            "The form body has no field: a form (curl -d's default Content-Type) must send "
            "text=...; or send JSON with -H 'Content-Type: application/json', or plain text "
            "with -H 'Content-Type: text/plain'."
        )
    raise invalid("The request has no body.")


def decode_body(body: Any, content_type: str | None) -> Any:
    """Turn the raw payload into a JSON value or a plain string."""
    body = as_text(body, "The body")
    if not isinstance(body, str):
        return body  # decoded already: a form's fields, or a value passed in-process
    media_type = media_type_of(content_type)
    looks_like_json = body.lstrip()[:1] in ("{", "[")
    if media_type == "application/json" or (not media_type.startswith("text/") and looks_like_json):
        try:
            return json.loads(body)
        except json.JSONDecodeError as error:
            raise invalid(f"Malformed JSON: {error.msg} at position {error.pos}.") from None
        except RecursionError:
            raise invalid("Malformed JSON: nested too deeply.") from None
        except ValueError as error:  # e.g. an integer of more than 4,300 digits
            raise invalid(f"Malformed JSON: {error}.") from None
    return body


def _checked_text(text: Any, where: str, limits: Limits) -> str:
    if not isinstance(text, str):
        raise invalid(f"{where} must be a string, got {type(text).__name__}.")
    if not text.strip():
        raise invalid(f"{where} is empty.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        # JSON can spell a lone surrogate (\ud800), which is no character at all.
        raise invalid(
            f"{where} is not valid Unicode: {text[error.start]!r} at position {error.start}."
        ) from None
    if len(text) > limits.max_text_chars:
        raise RequestError(
            413,
            "TextTooLong",
            f"{where} has {len(text)} characters; the limit is {limits.max_text_chars}.",
        )
    return text


def parse_payload(payload: Any, limits: Limits) -> ParsedRequest:
    """Validate a decoded body against the request contract."""
    if isinstance(payload, str):
        return ParsedRequest([_checked_text(payload, "The text", limits)], is_list=False)
    if not isinstance(payload, dict):
        raise invalid(
            f'Expected a JSON object with "text" or "texts", got {type(payload).__name__}.'
        )
    unknown = set(payload) - {"text", "texts"} - OPTIONAL_FIELDS
    if unknown:
        raise invalid(f'Unknown field(s) {sorted(unknown)}; send "text" or "texts".')
    key = payload.get("key")
    if key is not None and not isinstance(key, str):
        raise invalid(f'"key" must be a string, got {type(key).__name__}.')
    if ("text" in payload) == ("texts" in payload):
        raise invalid('Send exactly one of "text" or "texts".')
    if "text" in payload:
        return ParsedRequest([_checked_text(payload["text"], '"text"', limits)], False, key)
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise invalid(f'"texts" must be a list of strings, got {type(texts).__name__}.')
    if not texts:
        raise invalid('"texts" is empty.')
    if len(texts) > limits.max_texts:
        raise RequestError(
            413,
            "TooManyTexts",
            f'"texts" has {len(texts)} items; the limit is {limits.max_texts} per request.',
        )
    checked = [_checked_text(text, f'"texts"[{i}]', limits) for i, text in enumerate(texts)]
    return ParsedRequest(checked, True, key)


def parse_request(row: dict[str, Any], content_type: str | None, limits: Limits) -> ParsedRequest:
    return parse_payload(decode_body(request_body(row, content_type), content_type), limits)
