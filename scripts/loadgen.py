"""Drive a running TorchServe with ``hey`` (Debian package) and summarise what it measured."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds


def run_hey(
    url: str,
    body: bytes,
    key: str,
    concurrency: int,
    seconds: float,
    rate_per_worker: float | None = None,
    content_type: str = "application/json",
) -> LoadResult:
    """Closed loop with ``concurrency`` clients, or open loop when ``rate_per_worker`` is set."""
    if shutil.which("hey") is None:
        raise RuntimeError("hey is not installed: apt-get install hey")
    with tempfile.NamedTemporaryFile(suffix=".body") as body_file:
        body_file.write(body)
        body_file.flush()
        command = ["hey", "-z", f"{seconds}s", "-c", str(concurrency), "-m", "POST", "-o", "csv"]
        command += ["-T", content_type, "-H", f"Authorization: Bearer {key}", "-D", body_file.name]
        if rate_per_worker:
            command += ["-q", str(rate_per_worker)]
        output = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    rows = list(csv.DictReader(io.StringIO(output)))
    latencies = np.array([float(row["response-time"]) for row in rows]) * 1000
    errors = sum(not row["status-code"].startswith("2") for row in rows)
    elapsed = max(float(row["offset"]) + float(row["response-time"]) for row in rows)
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99])
    return LoadResult(len(rows), errors, elapsed, p50, p90, p99)
