"""HTTP clients for the bundle's TorchServe, and the ``review-analysis predict`` command.

    review-analysis predict "I loved this place" "Terrible service"
    review-analysis predict --model sentiment --version 2.0 "Great food"

``ReviewClient`` (blocking) and ``AsyncReviewClient`` (asyncio) send the same requests and
return the same answers. Both read the keys TorchServe wrote to ``key_file.json`` (token
authorization stays on) and renew an expired inference or management key with the API key.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from handlers.server_config import KEY_FILE_NAME, read_key
from review_analysis.paths import RUN_DIR

# The local bundle's addresses, as config.properties binds them (a unit test keeps them equal).
INFERENCE_URL = "http://127.0.0.1:8080"
MANAGEMENT_URL = "http://127.0.0.1:8081"
GRPC_INFERENCE_TARGET = "127.0.0.1:7070"
GRPC_MANAGEMENT_TARGET = "127.0.0.1:7071"
DEFAULT_KEY_FILE = RUN_DIR / KEY_FILE_NAME


class ServerError(Exception):
    """A non-2xx answer, with TorchServe's or the handler's JSON error body."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


# Answers that mean "try again": a worker died or restarted, the queue was full, a timeout.
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504, 507})


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, ServerError):
        return error.status in RETRYABLE_STATUSES
    return isinstance(error, httpx.TransportError)


def retry_policy(retryable: Callable[[BaseException], bool], attempts: int) -> Callable:
    """Exponential back-off with jitter, the same for every client of the bundle."""
    return retry(
        retry=retry_if_exception(retryable),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(multiplier=0.2, max=5),
        reraise=True,
    )


def prediction_payload(texts: str | list[str]) -> dict[str, Any]:
    """The request contract: one text gives one result, a list gives ``{"results": [...]}``."""
    return {"text": texts} if isinstance(texts, str) else {"texts": texts}


class ServerKeys:
    """The keys TorchServe wrote to ``key_file.json``, renewed with the API key when refused."""

    def __init__(self, key_file: Path, management_url: str):
        self.key_file = Path(key_file)
        self.management_url = management_url.rstrip("/")

    def key(self, kind: str) -> str:
        """``kind`` is "inference", "management" or "API"."""
        return read_key(self.key_file, kind)

    def authorization(self, kind: str) -> str:
        return f"Bearer {self.key(kind)}"

    def renewal(self, kind: str) -> httpx.Request:
        """The request that renews a key: only the HTTP management API has it, also for gRPC."""
        return httpx.Request(
            "POST",
            f"{self.management_url}/token",
            params={"type": kind},
            headers={"Authorization": self.authorization("API")},
        )


class ClientBase:
    """What the blocking and the asyncio client share: addresses, keys, URLs, retry policy."""

    # The httpx client class: httpx.Client, or httpx.AsyncClient for asyncio.
    http_class: type[httpx.Client] | type[httpx.AsyncClient]

    def __init__(
        self,
        inference_url: str = INFERENCE_URL,
        management_url: str = MANAGEMENT_URL,
        key_file: Path = DEFAULT_KEY_FILE,
        timeout: float = 60.0,
        attempts: int = 5,
    ):
        self.http = self.http_class(timeout=timeout)
        self.inference_url = inference_url.rstrip("/")
        self.management_url = management_url.rstrip("/")
        self.keys = ServerKeys(key_file, management_url)
        # Inference is idempotent: a dead or restarting worker, a full queue and connection
        # errors are retried with exponential back-off.
        self.retrying = retry_policy(is_retryable, attempts)

    @property
    def key_file(self) -> Path:
        return self.keys.key_file

    def key(self, kind: str) -> str:
        """``kind`` is "inference", "management" or "API"."""
        return self.keys.key(kind)

    def predict_url(self, model: str, version: str | None = None) -> str:
        suffix = f"/{version}" if version else ""
        return f"{self.inference_url}/predictions/{model}{suffix}"

    def model_url(self, model: str | None = None, version: str | None = None) -> str:
        path = "/".join(part for part in ("models", model, version) if part)
        return f"{self.management_url}/{path}"

    def authorized(self, kind: str, request: httpx.Request) -> httpx.Request:
        request.headers["Authorization"] = self.keys.authorization(kind)
        return request


class ReviewClient(ClientBase):
    """A blocking client: inference and the management calls the operator tool needs."""

    http_class = httpx.Client
    http: httpx.Client

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ReviewClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def renew_key(self, kind: str) -> None:
        raise_for_status(self.http.send(self.keys.renewal(kind)))

    def request(self, kind: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with the right bearer key; if TorchServe refuses it, renew it once and retry."""

        def send() -> httpx.Response:
            request = self.http.build_request(method, url, **kwargs)
            return self.http.send(self.authorized(kind, request))

        response = send()
        if is_token_refusal(response):
            self.renew_key(kind)
            response = send()
        return response

    # ----- inference ------------------------------------------------------------------------

    def predict(
        self, model: str, texts: str | list[str], version: str | None = None
    ) -> dict[str, Any]:
        """One text gives one result; a list gives ``{"results": [...]}`` in input order."""
        payload = prediction_payload(texts)
        url = self.predict_url(model, version)

        def send() -> dict[str, Any]:
            return raise_for_status(self.request("inference", "POST", url, json=payload))

        return self.retrying(send)()

    def ping(self) -> dict[str, Any]:
        return raise_for_status(self.request("inference", "GET", f"{self.inference_url}/ping"))

    # ----- management -----------------------------------------------------------------------

    def list_models(self) -> dict[str, Any]:
        return raise_for_status(self.request("management", "GET", self.model_url()))

    def describe(self, model: str, version: str | None = None) -> list[dict[str, Any]]:
        return raise_for_status(self.request("management", "GET", self.model_url(model, version)))

    def register(self, archive: str, initial_workers: int = 1) -> dict[str, Any]:
        """Register an archive from the model store and wait until its workers are up."""
        params = {"url": archive, "initial_workers": initial_workers, "synchronous": "true"}
        return raise_for_status(self.request("management", "POST", self.model_url(), params=params))

    def unregister(self, model: str, version: str) -> dict[str, Any]:
        url = self.model_url(model, version)
        return raise_for_status(self.request("management", "DELETE", url))

    def set_default(self, model: str, version: str) -> dict[str, Any]:
        url = f"{self.model_url(model, version)}/set-default"
        return raise_for_status(self.request("management", "PUT", url))

    def ready_workers(self, model: str) -> int:
        return sum(
            worker.get("status") == "READY"
            for version in self.describe(model)
            for worker in version.get("workers", [])
        )


class AsyncReviewClient(ClientBase):
    """The asyncio twin of ``ReviewClient`` for applications on asyncio (httpx.AsyncClient):
    the same inference calls, keys, retries and answers.

        async with AsyncReviewClient() as client:
            answer = await client.predict("sentiment", ["Great food", "Cold soup"])
    """

    http_class = httpx.AsyncClient
    http: httpx.AsyncClient

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncReviewClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def renew_key(self, kind: str) -> None:
        raise_for_status(await self.http.send(self.keys.renewal(kind)))

    async def request(self, kind: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with the right bearer key; if TorchServe refuses it, renew it once and retry."""

        async def send() -> httpx.Response:
            request = self.http.build_request(method, url, **kwargs)
            return await self.http.send(self.authorized(kind, request))

        response = await send()
        if is_token_refusal(response):
            await self.renew_key(kind)
            response = await send()
        return response

    async def predict(
        self, model: str, texts: str | list[str], version: str | None = None
    ) -> dict[str, Any]:
        """One text gives one result; a list gives ``{"results": [...]}`` in input order."""
        payload = prediction_payload(texts)
        url = self.predict_url(model, version)

        async def send() -> dict[str, Any]:
            return raise_for_status(await self.request("inference", "POST", url, json=payload))

        return await self.retrying(send)()

    async def ping(self) -> dict[str, Any]:
        return raise_for_status(
            await self.request("inference", "GET", f"{self.inference_url}/ping")
        )

    async def describe(self, model: str, version: str | None = None) -> list[dict[str, Any]]:
        url = self.model_url(model, version)
        return raise_for_status(await self.request("management", "GET", url))


def is_token_refusal(response: httpx.Response) -> bool:
    """TorchServe 0.12 refuses a missing, wrong or expired key with 400 and this message."""
    return response.status_code in (400, 401) and "Token Authorization failed" in response.text


# TorchServe refuses a body over its max_request_size with 413 and nothing else.
EMPTY_413 = {
    "error": {
        "status": 413,
        "type": "RequestTooLarge",
        "message": "TorchServe refused the body as larger than its max_request_size; send "
        "fewer or shorter texts per request.",
    }
}


def raise_for_status(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.status_code == 413 and not response.content:
        body = EMPTY_413
    if response.status_code >= 400:
        raise ServerError(response.status_code, body)
    return body


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the server is: its run directory (for the keys) and its HTTP addresses."""
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR)
    parser.add_argument("--inference-url", default=INFERENCE_URL)
    parser.add_argument("--management-url", default=MANAGEMENT_URL)


def client_from_arguments(args: argparse.Namespace) -> ReviewClient:
    return ReviewClient(args.inference_url, args.management_url, args.run_dir / KEY_FILE_NAME)


def main() -> int:
    parser = argparse.ArgumentParser(description="Send texts to a model of the local server.")
    parser.add_argument("texts", nargs="+")
    parser.add_argument("--model", default="sentiment")
    parser.add_argument("--version")
    add_server_arguments(parser)
    args = parser.parse_args()
    with client_from_arguments(args) as client:
        try:
            texts = args.texts[0] if len(args.texts) == 1 else args.texts
            print(json.dumps(client.predict(args.model, texts, args.version), indent=2))
        except ServerError as error:
            print(json.dumps(error.body, indent=2), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
