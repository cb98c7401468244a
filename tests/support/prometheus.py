"""Scrape a TorchServe metrics port and read series with prometheus_client's own parser."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from review_analysis.torchserve import LocalTorchServe


class Scrape:
    def __init__(self, server: LocalTorchServe):
        text = httpx.get(f"{server.metrics_url}/metrics", timeout=10).raise_for_status().text
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )


def wait_for_metrics(
    server: LocalTorchServe, condition: Callable[[Scrape], bool], timeout: float = 15
) -> Scrape:
    """Workers report metrics through their logs, a moment after answering: poll."""
    deadline = time.monotonic() + timeout
    while True:
        scrape = Scrape(server)
        if condition(scrape) or time.monotonic() > deadline:
            return scrape
        time.sleep(0.3)
