"""A small HTTP client for the bundle's TorchServe, and a command line to send texts.

    python -m scripts.client "I loved this place" "Terrible service"
    python -m scripts.client --model sentiment --version 2.0 "Great food"

Reads the keys TorchServe wrote to ``key_file.json`` (token authorization stays on) and
renews an expired inference or management key with the API key.
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

DEFAULT_RUN_DIR = Path(__file__).resolve().parent.parent / ".torchserve"


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

    def __init__(self, key_file: Path, management_url: str, http: httpx.Client):
        self.key_file = Path(key_file)
        self.management_url = management_url.rstrip("/")
        self.http = http

    def key(self, kind: str) -> str:
        """``kind`` is "inference", "management" or "API"."""
        return json.loads(self.key_file.read_text())[kind]["key"]

    def authorization(self, kind: str) -> str:
        return f"Bearer {self.key(kind)}"

    def renew(self, kind: str) -> None:
        # Token renewal exists only in the HTTP management API, also for gRPC clients.
        response = self.http.post(
            f"{self.management_url}/token",
            params={"type": kind},
            headers={"Authorization": self.authorization("API")},
        )
        raise_for_status(response)


class ReviewClient:
    def __init__(
        self,
        inference_url: str = "http://127.0.0.1:8080",
        management_url: str = "http://127.0.0.1:8081",
        key_file: Path = DEFAULT_RUN_DIR / "key_file.json",
        timeout: float = 60.0,
        attempts: int = 5,
    ):
        self.inference_url = inference_url.rstrip("/")
        self.management_url = management_url.rstrip("/")
        self.http = httpx.Client(timeout=timeout)
        self.keys = ServerKeys(key_file, management_url, self.http)
        self.retrying = retry_policy(is_retryable, attempts)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ReviewClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- auth -----------------------------------------------------------------------------

    @property
    def key_file(self) -> Path:
        return self.keys.key_file

    def key(self, kind: str) -> str:
        """``kind`` is "inference", "management" or "API"."""
        return self.keys.key(kind)

    def renew_key(self, kind: str) -> None:
        self.keys.renew(kind)

    def request(self, kind: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with the right bearer key; if TorchServe refuses it, renew it once and retry."""
        headers = kwargs.pop("headers", {})

        def send() -> httpx.Response:
            authorization = {"Authorization": self.keys.authorization(kind)}
            return self.http.request(method, url, headers={**headers, **authorization}, **kwargs)

        response = send()
        if is_token_refusal(response):
            self.keys.renew(kind)
            response = send()
        return response

    # ----- inference ------------------------------------------------------------------------

    def predict_url(self, model: str, version: str | None = None) -> str:
        suffix = f"/{version}" if version else ""
        return f"{self.inference_url}/predictions/{model}{suffix}"

    def predict(
        self, model: str, texts: str | list[str], version: str | None = None
    ) -> dict[str, Any]:
        """One text gives one result; a list gives ``{"results": [...]}`` in input order.

        Inference is idempotent: a dead or restarting worker, a full queue and connection
        errors are retried with exponential back-off.
        """
        payload = prediction_payload(texts)
        url = self.predict_url(model, version)

        def send() -> dict[str, Any]:
            return raise_for_status(self.request("inference", "POST", url, json=payload))

        return self.retrying(send)()

    def ping(self) -> dict[str, Any]:
        return raise_for_status(self.request("inference", "GET", f"{self.inference_url}/ping"))

    # ----- management -----------------------------------------------------------------------

    def list_models(self) -> dict[str, Any]:
        return raise_for_status(self.request("management", "GET", f"{self.management_url}/models"))

    def describe(self, model: str, version: str | None = None) -> list[dict[str, Any]]:
        suffix = f"/{version}" if version else ""
        url = f"{self.management_url}/models/{model}{suffix}"
        return raise_for_status(self.request("management", "GET", url))

    def register(self, archive: str, initial_workers: int = 1) -> dict[str, Any]:
        """Register an archive from the model store and wait until its workers are up."""
        params = {"url": archive, "initial_workers": initial_workers, "synchronous": "true"}
        url = f"{self.management_url}/models"
        return raise_for_status(self.request("management", "POST", url, params=params))

    def unregister(self, model: str, version: str) -> dict[str, Any]:
        url = f"{self.management_url}/models/{model}/{version}"
        return raise_for_status(self.request("management", "DELETE", url))

    def set_default(self, model: str, version: str) -> dict[str, Any]:
        url = f"{self.management_url}/models/{model}/{version}/set-default"
        return raise_for_status(self.request("management", "PUT", url))

    def ready_workers(self, model: str) -> int:
        return sum(
            worker.get("status") == "READY"
            for version in self.describe(model)
            for worker in version.get("workers", [])
        )


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
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    parser.add_argument("--inference-url", default="http://127.0.0.1:8080")
    parser.add_argument("--management-url", default="http://127.0.0.1:8081")


def client_from_arguments(args: argparse.Namespace) -> ReviewClient:
    return ReviewClient(args.inference_url, args.management_url, args.run_dir / "key_file.json")


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
