"""The gRPC twin of ``review_analysis.client.ReviewClient``: same methods, same answers.

    from review_analysis.grpc_client import GrpcReviewClient

    with GrpcReviewClient() as client:  # 127.0.0.1:7070 (inference) and :7071 (management)
        client.predict("sentiment", ["Great food", "Cold soup"])

Keys come from the same ``key_file.json`` and go as ``authorization: Bearer <key>`` metadata
(TorchServe 0.12 refuses a missing or wrong one with PERMISSION_DENIED). The stubs ship
in ``review_analysis.ts_grpc``, generated from TorchServe 0.12's own protos.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.protobuf import empty_pb2

from review_analysis.client import (
    DEFAULT_KEY_FILE,
    GRPC_INFERENCE_TARGET,
    GRPC_MANAGEMENT_TARGET,
    MANAGEMENT_URL,
    ServerError,
    ServerKeys,
    is_retryable,
    prediction_payload,
    raise_for_status,
    retry_policy,
)
from review_analysis.ts_grpc import (
    inference_pb2,
    inference_pb2_grpc,
    management_pb2,
    management_pb2_grpc,
)

# The gRPC codes TorchServe 0.12 gives where its HTTP API answers 500, 502, 503, 504 or 507
# (a worker that died mid-call is RESOURCE_EXHAUSTED "Worker died."), and what the client
# library reports for a refused or dropped connection or a call TorchServe lost.
RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)
# TorchServe also answers INTERNAL for an unknown model or version, which no retry fixes.
NOT_FOUND_MARKER = "NotFoundException"
# The HTTP API's default page size for listing models; gRPC's unset field would mean 0.
LIST_LIMIT = 100


def is_retryable_rpc(error: BaseException) -> bool:
    if isinstance(error, grpc.RpcError):
        return error.code() in RETRYABLE_CODES and NOT_FOUND_MARKER not in (error.details() or "")
    return is_retryable(error)


def is_token_refusal(error: grpc.RpcError) -> bool:
    return "Token Authorization failed" in (error.details() or "")


def prediction_answer(prediction: bytes) -> dict[str, Any]:
    """TorchServe sends the handler's JSON error as an OK reply: raise it like HTTP does."""
    answer = json.loads(prediction)
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict) and "status" in error:
        raise ServerError(error["status"], answer)
    return answer


class GrpcReviewClient:
    def __init__(
        self,
        inference_target: str = GRPC_INFERENCE_TARGET,
        management_target: str = GRPC_MANAGEMENT_TARGET,
        management_url: str = MANAGEMENT_URL,
        key_file: Path = DEFAULT_KEY_FILE,
        timeout: float = 60.0,
        attempts: int = 5,
    ):
        """``management_url`` is the HTTP management API: keys are renewed only there."""
        self.timeout = timeout
        self.http = httpx.Client(timeout=timeout)
        self.keys = ServerKeys(key_file, management_url)
        # gRPC's 4 MiB default is below TorchServe's own max_response_size, which bounds answers.
        options = [("grpc.max_receive_message_length", -1)]
        self.inference_channel = grpc.insecure_channel(inference_target, options)
        self.management_channel = grpc.insecure_channel(management_target, options)
        self.inference = inference_pb2_grpc.InferenceAPIsServiceStub(self.inference_channel)
        self.management = management_pb2_grpc.ManagementAPIsServiceStub(self.management_channel)
        self.retrying = retry_policy(is_retryable_rpc, attempts)

    def close(self) -> None:
        self.inference_channel.close()
        self.management_channel.close()
        self.http.close()

    def __enter__(self) -> GrpcReviewClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, kind: str, method: grpc.UnaryUnaryMultiCallable, request: Any) -> Any:
        """Call with the right bearer key; if TorchServe refuses it, renew it once and retry."""

        def send() -> Any:
            metadata = [("authorization", self.keys.authorization(kind))]
            return method(request, metadata=metadata, timeout=self.timeout)

        try:
            return send()
        except grpc.RpcError as error:
            if not is_token_refusal(error):
                raise
        raise_for_status(self.http.send(self.keys.renewal(kind)))
        return send()

    # ----- inference ------------------------------------------------------------------------

    def predict(
        self, model: str, texts: str | list[str], version: str | None = None
    ) -> dict[str, Any]:
        """One text gives one result; a list gives ``{"results": [...]}`` in input order.

        The body is the HTTP client's JSON; retries follow the HTTP client's rules.
        """
        request = inference_pb2.PredictionsRequest(
            model_name=model,
            model_version=version or "",
            input={"data": json.dumps(prediction_payload(texts)).encode()},
        )

        def send() -> dict[str, Any]:
            reply = self.call("inference", self.inference.Predictions, request)
            return prediction_answer(reply.prediction)

        return self.retrying(send)()

    def ping(self) -> dict[str, Any]:
        return json.loads(self.call("inference", self.inference.Ping, empty_pb2.Empty()).health)

    # ----- management -----------------------------------------------------------------------

    def manage(self, method: grpc.UnaryUnaryMultiCallable, request: Any) -> str:
        return self.call("management", method, request).msg

    def list_models(self) -> dict[str, Any]:
        request = management_pb2.ListModelsRequest(limit=LIST_LIMIT)
        return json.loads(self.manage(self.management.ListModels, request))

    def describe(self, model: str, version: str | None = None) -> list[dict[str, Any]]:
        request = management_pb2.DescribeModelRequest(model_name=model, model_version=version)
        return json.loads(self.manage(self.management.DescribeModel, request))

    def register(self, archive: str, initial_workers: int = 1) -> dict[str, Any]:
        """Register an archive from the model store and wait until its workers are up."""
        request = management_pb2.RegisterModelRequest(
            url=archive, initial_workers=initial_workers, synchronous=True
        )
        return {"status": self.manage(self.management.RegisterModel, request)}

    def unregister(self, model: str, version: str) -> dict[str, Any]:
        request = management_pb2.UnregisterModelRequest(model_name=model, model_version=version)
        return {"status": self.manage(self.management.UnregisterModel, request)}

    def set_default(self, model: str, version: str) -> dict[str, Any]:
        request = management_pb2.SetDefaultRequest(model_name=model, model_version=version)
        return {"status": self.manage(self.management.SetDefault, request)}
