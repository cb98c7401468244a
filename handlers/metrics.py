"""The bundle's own Prometheus metrics, recorded by handlers through TorchServe's metric cache.

Every metric is declared in the repo's ``metrics.yaml`` (TorchServe's ``metrics_config``); in
``metrics_mode=prometheus`` the frontend exports only declared metrics. Each carries the
model name and version first, so Prometheus can compare versions of one model side by side.
TorchServe adds a ``Hostname`` label itself. Histograms use Prometheus' default buckets
(0.005 .. 10), so latencies are recorded in seconds.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ts.metrics.metric_type_enum import MetricTypes

logger = logging.getLogger(__name__)

LATENCY = "reviews_handler_latency_seconds"
BATCH_SIZE = "reviews_batch_size_requests"
TEXTS = "reviews_texts_processed_total"
ERRORS = "reviews_request_errors_total"


def model_identity(context: Any) -> dict[str, str]:
    """Name and version of the archive a worker serves, as its manifest says."""
    manifest_model = context.manifest["model"]
    return {
        "name": manifest_model["modelName"],
        "version": manifest_model.get("modelVersion", "1.0"),
    }


class ModelMetrics:
    """Records metrics for one model version; a no-op where TorchServe provides no cache."""

    def __init__(self, cache: Any = None, name: str = "", version: str = ""):
        self.cache = cache
        self.model_labels = [name, version]
        self.undeclared: set[str] = set()

    def observe(self, name: str, values: Iterable[float], labels: tuple[str, ...] = ()) -> None:
        """One histogram observation per value."""
        for value in values:
            self._emit(name, MetricTypes.HISTOGRAM, value, list(labels))

    def count(self, name: str, counts: Counter[tuple[str, ...]]) -> None:
        """Add each count to the counter series of its extra label values."""
        for labels, value in counts.items():
            if value:
                self._emit(name, MetricTypes.COUNTER, value, list(labels))

    def set(self, name: str, value: float, labels: tuple[str, ...] = ()) -> None:
        self._emit(name, MetricTypes.GAUGE, value, list(labels))

    def record_batch(self, requests: int, texts: int, seconds: float, errors: Counter) -> None:
        """Every request of a batch waited for the whole batch: one latency per request."""
        self.observe(LATENCY, [seconds] * requests)
        self.observe(BATCH_SIZE, [requests])
        self.count(TEXTS, Counter({(): texts}))
        self.count(ERRORS, Counter({(str(status),): n for status, n in errors.items()}))

    def _emit(self, name: str, kind: MetricTypes, value: float, labels: list[str]) -> None:
        if self.cache is None or name in self.undeclared:
            return
        try:
            metric = self.cache.get_metric(name, kind)
        except Exception:
            # A metrics.yaml without our metrics must not break inference.
            logger.warning("Metric %s is not declared in metrics.yaml; not recording it", name)
            self.undeclared.add(name)
            return
        metric.add_or_update(value, self.model_labels + labels)
