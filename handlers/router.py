"""A/B router: one stable URL per task that splits traffic between versions of a model.

The router is a model of its own (e.g. ``sentiment-ab``) whose archive holds no weights, only
the split in its model-config.yaml::

    handler:
      target: sentiment
      variants: {"1.0": 90, "2.0": 10}

Each request is forwarded over loopback to ``/predictions/{target}/{version}`` of the same
TorchServe, with the client's own ``Authorization`` header, and the version's answer (status,
body, content type) goes back unchanged. Changing the split means registering a new version of
the router and making it the default: TorchServe swaps default versions atomically, so the
split is versioned, reviewable configuration and a change drops no request.

Requests carrying an experiment key (``X-Experiment-Key`` header, or ``"key"`` in the JSON
body) are assigned by weighted rendezvous hashing: the same key always reaches the same
version while the split is unchanged, and moving weight from one version to another only
moves keys between those two. Requests without a key are split at random by weight.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx

from handlers.inputs import RequestError, decode_body, find_header, request_body
from handlers.metrics import ModelMetrics, model_identity
from handlers.routing import Forwarded, choose_variant, validated_variants

logger = logging.getLogger(__name__)

KEY_HEADER = "X-Experiment-Key"


def body_key(payload: Any) -> str | None:
    key = payload.get("key") if isinstance(payload, dict) else None
    return key if isinstance(key, str) else None


class ABRouterHandler:
    def __init__(self) -> None:
        self.initialized = False

    def initialize(self, context: Any) -> None:
        model_config = context.model_yaml_config or {}
        settings = model_config.get("handler", {})
        self.target = settings["target"]
        self.variants = validated_variants(settings["variants"])
        self.inference_url = settings.get("inference_url")
        self.model_info = model_identity(context)
        self.metrics = ModelMetrics(context.metrics, **self.model_info)
        total = sum(self.variants.values())
        for variant, weight in self.variants.items():
            self.metrics.set("reviews_ab_weight_ratio", weight / total, (self.target, variant))
        self.rng = random.Random()
        timeout = float(settings.get("timeout_s", model_config.get("responseTimeout", 60)))
        self.http = httpx.Client(timeout=timeout)
        self.pool = ThreadPoolExecutor(int(model_config.get("batchSize", 1)))
        logger.info("Routing %s to %s %s", self.model_info, self.target, self.variants)
        self.initialized = True

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[Any]:
        answers = list(
            self.pool.map(lambda idx: self.route(data[idx], context, idx), range(len(data)))
        )
        responses = []
        for idx, answer in enumerate(answers):
            if isinstance(answer, RequestError):
                context.set_response_status(answer.status, answer.message, idx)
                context.set_response_content_type(idx, "application/json")
                responses.append(answer.to_json())
                continue
            context.set_response_status(answer.status, "", idx)
            context.set_response_content_type(idx, answer.content_type)
            context.set_response_header(idx, "X-AB-Variant", answer.variant)
            responses.append(answer.body)
        return responses

    def route(self, row: dict[str, Any], context: Any, idx: int) -> Forwarded | RequestError:
        try:
            body, content_type, key = self.forwardable(row, context, idx)
        except RequestError as error:
            return error
        variant = choose_variant(self.variants, key, self.rng)
        started = time.perf_counter()
        answer = self.forward(body, content_type, variant, context, idx)
        labels = (self.target, variant)
        self.metrics.observe("reviews_ab_latency_seconds", [time.perf_counter() - started], labels)
        self.metrics.count("reviews_ab_requests_total", Counter({(*labels, str(answer.status)): 1}))
        return answer

    def forwardable(
        self, row: dict[str, Any], context: Any, idx: int
    ) -> tuple[bytes, str, str | None]:
        """The body to forward as bytes, its content type, and the experiment key if any."""
        body = request_body(row)
        header_key = find_header(context, idx, KEY_HEADER)
        if not isinstance(body, (bytes, bytearray, str)):
            # TorchServe already decoded an application/json body.
            raw = json.dumps(body).encode("utf-8")
            return raw, "application/json", header_key or body_key(body)
        content_type = find_header(context, idx, "Content-Type") or "application/json"
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        return raw, content_type, header_key or body_key(decode_body(raw, content_type))

    def target_url(self, context: Any, idx: int, variant: str) -> str:
        """This same TorchServe, over loopback: the port the request came in on."""
        base = self.inference_url
        if not base:
            host = find_header(context, idx, "Host") or ""
            port = urlsplit(f"//{host}").port
            if port is None:
                raise RequestError(
                    500, "RouterMisconfigured", "No Host port and no inference_url configured."
                )
            base = f"http://127.0.0.1:{port}"
        return f"{base.rstrip('/')}/predictions/{self.target}/{variant}"

    def forward(
        self, body: bytes, content_type: str, variant: str, context: Any, idx: int
    ) -> Forwarded | RequestError:
        headers = {"Content-Type": content_type}
        authorization = find_header(context, idx, "Authorization")
        if authorization:
            headers["Authorization"] = authorization
        try:
            response = self.http.post(
                self.target_url(context, idx, variant), content=body, headers=headers
            )
        except RequestError as error:
            return error
        except httpx.TimeoutException:
            return RequestError(
                504, "UpstreamTimeout", f"{self.target} {variant} did not answer in time."
            )
        except httpx.TransportError as error:
            return RequestError(502, "UpstreamUnavailable", f"{self.target} {variant}: {error}")
        return Forwarded(
            response.status_code,
            response.content,
            response.headers.get("Content-Type", "application/json"),
            variant,
        )
