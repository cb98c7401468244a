"""What a handler sends back for one request, and how a batch of answers goes to TorchServe.

Every handler answers through :func:`send`: the task handlers (handlers/base.py) and the A/B
router (handlers/router.py). Each slot of a batch gets its own status, reason phrase, content
type and headers; every answer says how many requests shared its batch (``X-Batch-Size``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from handlers.inputs import RequestError


def encode_json(answer: dict[str, Any]) -> bytes:
    """Compact JSON: TorchServe's own encoding of a dict is indented, a third larger."""
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def status_phrase(status: int) -> str:
    """The standard reason phrase: a status line must never carry text from a request."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown Status"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    reason: str | None = None  # None: the standard phrase of the status
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_error(cls, error: RequestError, **headers: str) -> Response:
        return cls(error.status, encode_json(error.to_json()), headers=headers)


def send(context: Any, responses: list[Response]) -> list[bytes]:
    """Set each slot's status, content type and headers on TorchServe's context; the bodies."""
    for idx, response in enumerate(responses):
        reason = response.reason or status_phrase(response.status)
        context.set_response_status(response.status, reason, idx)
        context.set_response_content_type(idx, response.content_type)
        context.set_response_header(idx, "X-Batch-Size", str(len(responses)))
        for name, value in response.headers.items():
            context.set_response_header(idx, name, value)
    return [response.body for response in responses]
