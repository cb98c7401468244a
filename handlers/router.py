"""A/B router: one stable URL per task that splits traffic between versions of a model.

The router is a model of its own (e.g. ``sentiment-ab``) whose archive holds no weights, only
the split in its model-config.yaml::

    handler:
      target: sentiment
      variants: {"1.0": 90, "2.0": 10}

Each request is forwarded over loopback to ``/predictions/{target}/{version}`` of the same
TorchServe and the version's answer (status, reason, body, content type) goes back unchanged.
The address is the packed ``inference_url`` or else the server's own ``inference_address``
(handlers/server_config.py), never anything from the request. The body goes on byte for byte;
form fields, which TorchServe parses before a worker sees them, go on as the same fields. The
forwarded request carries the server's inference key: whatever reaches the router has passed
TorchServe's token check already, over HTTP or over gRPC, whose metadata no worker sees.
Changing the split means registering a new version of the router and making it the default:
TorchServe swaps default versions atomically, so the split is versioned, reviewable
configuration and a change drops no request.

A router worker answers a batch as a whole, when its slowest request is back, and takes no
other request meanwhile; so routers run several workers with one request per batch, and a slow
request holds up only its own worker (configs/router/model-config.yaml). TorchServe 0.12's
asynchronous worker mode, which would serve many requests in one worker, keeps every answered
request in the frontend's memory unless the answer is a stream: see docs/BENCHMARKS.md.

Requests carrying an experiment key (``X-Experiment-Key`` header, or ``"key"`` in the JSON
body) are assigned by weighted rendezvous hashing: the same key always reaches the same
version while the split is unchanged, and moving weight from one version to another only
moves keys between those two. Requests without a key are split at random by weight.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from handlers import server_config
from handlers.inputs import (
    RequestError,
    decode_body,
    find_header,
    media_type_of,
    receive_raw_bodies,
    request_body,
)
from handlers.metrics import ModelMetrics, model_identity
from handlers.responses import Response, send
from handlers.routing import choose_variant, validated_variants

logger = logging.getLogger(__name__)
# httpx logs every request at INFO, and the frontend copies each worker log line to its own.
logging.getLogger("httpx").setLevel(logging.WARNING)

KEY_HEADER = "X-Experiment-Key"
# Bodies that TorchServe's frontend parses into fields (the worker never sees their bytes).
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def upstream_request(row: dict[str, Any], content_type: str | None) -> dict[str, Any]:
    """httpx arguments that give the version the request the router got."""
    if not row or ("body" in row and media_type_of(content_type) not in FORM_TYPES):
        # The frontend reads header bytes as Latin-1: encoded so, they are what the client sent
        # (httpx would refuse a str that is not ASCII).
        headers = {"Content-Type": content_type.encode("latin-1")} if content_type else {}
        # bytes: httpx takes no bytearray (TorchServe's) as a body.
        return {"content": bytes(row.get("body", b"")), "headers": headers}
    # Form fields (and a gRPC call's inputs) arrive parsed: send the same fields as multipart
    # parts, which carry any bytes, at their own size (URL-encoding triples non-ASCII text).
    parts = [
        (name, (name, bytes(value), "application/octet-stream")) for name, value in row.items()
    ]
    return {"files": parts, "headers": {}}


def body_key(row: dict[str, Any], content_type: str | None) -> str | None:
    """The "key" of a JSON object body (or form), read as the version reads it. A body that
    is none routes without a key: the version gives its own answer to a bad one."""
    try:
        payload = decode_body(request_body(row, content_type), content_type)
    except RequestError:
        return None
    key = payload.get("key") if isinstance(payload, dict) else None
    return key if isinstance(key, str) else None


def variant_header(variant: str) -> dict[str, str]:
    """Which version answered, beside ``model.version`` in the body."""
    return {"X-AB-Variant": variant}


class ABRouterHandler:
    def __init__(self) -> None:
        self.initialized = False

    def initialize(self, context: Any) -> None:
        # Bodies are forwarded as the client sent them: JSON decoded by TorchServe and encoded
        # again is not byte for byte (escaped non-ASCII grew 3x, past max_request_size).
        receive_raw_bodies()
        model_config = context.model_yaml_config or {}
        settings = model_config.get("handler", {})
        self.target = settings["target"]
        self.variants = validated_variants(settings["variants"])
        inference_url = settings.get("inference_url") or server_config.inference_url()
        self.base_url = f"{inference_url.rstrip('/')}/predictions/{self.target}"
        # Inside responseTimeout: a batch that takes longer gets its worker killed.
        timeout = float(settings.get("timeout_s", model_config.get("responseTimeout", 60)))
        # No proxy from the environment: the requests carry the server's key, to loopback.
        self.http = httpx.Client(timeout=timeout, trust_env=False)
        # The requests of a batch are forwarded at once; the batch is answered when all are back.
        self.pool = ThreadPoolExecutor(int(model_config.get("batchSize", 1)))
        self.model_info = model_identity(context)
        self.metrics = ModelMetrics(context.metrics, **self.model_info)
        total = sum(self.variants.values())
        for variant, weight in self.variants.items():
            self.metrics.set("reviews_ab_weight_ratio", weight / total, (self.target, variant))
        self.rng = random.Random()
        logger.info("Routing %s to %s %s", self.model_info, self.target, self.variants)
        self.initialized = True

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[bytes]:
        answers = self.pool.map(self.answer, data, [context] * len(data), range(len(data)))
        return send(context, list(answers))

    def answer(self, row: dict[str, Any], context: Any, idx: int) -> Response:
        """The version's answer, or an error for this request alone: an exception out of
        ``handle`` would fail the whole batch with TorchServe's 503."""
        try:
            return self.route(row, context, idx)
        except Exception:
            logger.exception("Routing a request failed")
            return Response.of_error(RequestError(500, "RouterError", "The router failed."))

    def route(self, row: dict[str, Any], context: Any, idx: int) -> Response:
        content_type = find_header(context, idx, "Content-Type")
        request = upstream_request(row, content_type)
        key = find_header(context, idx, KEY_HEADER) or body_key(row, content_type)
        variant = choose_variant(self.variants, key, self.rng)
        started = time.perf_counter()
        answer = self.forward(request, variant)
        labels = (self.target, variant)
        self.metrics.observe("reviews_ab_latency_seconds", [time.perf_counter() - started], labels)
        self.metrics.count("reviews_ab_requests_total", Counter({(*labels, str(answer.status)): 1}))
        return answer

    def forward(self, request: dict[str, Any], variant: str) -> Response:
        key = server_config.inference_key()
        if key:
            request["headers"]["Authorization"] = f"Bearer {key}"
        try:
            response = self.http.post(f"{self.base_url}/{variant}", **request)
        except httpx.TimeoutException:
            message = f"{self.target} {variant} did not answer in time."
            error = RequestError(504, "UpstreamTimeout", message)
            return Response.of_error(error, **variant_header(variant))
        except httpx.TransportError as error:
            message = f"{self.target} {variant}: {error}"
            refused = RequestError(502, "UpstreamUnavailable", message)
            return Response.of_error(refused, **variant_header(variant))
        return Response(
            response.status_code,
            response.content,
            response.headers.get("Content-Type", "application/json"),
            response.reason_phrase or None,
            variant_header(variant),
        )
