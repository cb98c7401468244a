"""Review analysis served by TorchServe: sentiment, toxicity and German ABSA.

The public API is the clients::

    from review_analysis import ReviewClient

    with ReviewClient() as client:
        client.predict("sentiment", ["Great food", "Cold soup"])

``ReviewClient`` and ``AsyncReviewClient`` need only httpx (``pip install review-analysis``);
``GrpcReviewClient`` needs grpcio (``pip install "review-analysis[client]"``) and is imported
on first use. The rest of the package (server control, operator tool, training, benchmarks)
is reached through the ``review-analysis`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from review_analysis.client import AsyncReviewClient, ReviewClient, ServerError

if TYPE_CHECKING:
    from review_analysis.grpc_client import GrpcReviewClient

__all__ = ["AsyncReviewClient", "GrpcReviewClient", "ReviewClient", "ServerError"]


def __getattr__(name: str) -> Any:
    # grpcio is an extra: importing the package must not need it.
    if name == "GrpcReviewClient":
        from review_analysis.grpc_client import GrpcReviewClient

        return GrpcReviewClient
    raise AttributeError(f"module 'review_analysis' has no attribute {name!r}")
