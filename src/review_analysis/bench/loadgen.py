"""Drive a running server with ``hey`` or ``wrk`` (Debian packages) and summarise what they
measured."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# wrk's Lua script: POSTs one JSON body per line of a file in turn, closed or open loop.
WRK_SCRIPT = Path(__file__).with_name("wrk_reviews.lua")


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    # Every answer's latency, where the load generator reports them (hey does).
    latencies_ms: tuple[float, ...] = field(default=(), repr=False)

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @classmethod
    def of(cls, latencies_ms: list[float], errors: int, seconds: float) -> LoadResult:
        p50, p90, p99 = np.percentile(latencies_ms, [50, 90, 99])
        return cls(len(latencies_ms), errors, seconds, p50, p90, p99, tuple(latencies_ms))

    @classmethod
    def combined(cls, runs: list[LoadResult]) -> LoadResult:
        """Runs one after the other, as one."""
        latencies = [latency for run in runs for latency in run.latencies_ms]
        return cls.of(latencies, sum(r.errors for r in runs), sum(r.seconds for r in runs))


def run_hey(
    url: str,
    body: bytes,
    key: str,
    concurrency: int,
    seconds: float | None = None,
    rate_per_worker: float | None = None,
    content_type: str = "application/json",
    requests: int | None = None,
) -> LoadResult:
    """Closed loop with ``concurrency`` clients, or open loop when ``rate_per_worker`` is set.

    Runs for ``seconds`` or until ``requests`` are answered. At the end of a timed run hey
    abandons the requests still in flight; a counted run answers every one it sends.
    """
    if shutil.which("hey") is None:
        raise RuntimeError("hey is not installed: apt-get install hey")
    if (seconds is None) == (requests is None):
        raise ValueError("Give either seconds or requests.")
    with tempfile.NamedTemporaryFile(suffix=".body") as body_file:
        body_file.write(body)
        body_file.flush()
        length = ["-z", f"{seconds}s"] if seconds is not None else ["-n", str(requests)]
        command = ["hey", *length, "-c", str(concurrency), "-m", "POST", "-o", "csv"]
        command += ["-T", content_type, "-H", f"Authorization: Bearer {key}", "-D", body_file.name]
        if rate_per_worker:
            command += ["-q", str(rate_per_worker)]
        output = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    rows = list(csv.DictReader(io.StringIO(output)))
    latencies = [float(row["response-time"]) * 1000 for row in rows]
    errors = sum(not row["status-code"].startswith("2") for row in rows)
    elapsed = max(float(row["offset"]) + float(row["response-time"]) for row in rows)
    return LoadResult.of(latencies, errors, elapsed)


def run_wrk(
    url: str, bodies: Path, key: str, connections: int, seconds: float, rate: float | None = None
) -> LoadResult:
    """Closed loop with ``connections`` clients; open loop at ``rate`` requests/s when set
    (each connection waits an exponential gap before its next request)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    mean_gap_ms = connections * 1000 / rate if rate else 0
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"]
    command += ["-s", str(WRK_SCRIPT), url, "--", str(bodies), key, f"{mean_gap_ms:.1f}"]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    summary = json.loads(output.strip().splitlines()[-1])
    return LoadResult(
        requests=summary["requests"],
        errors=summary["errors"],
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1000,
        p90_ms=summary["p90_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
    )


def write_bodies(texts: list[str], path: Path, per_request: int = 1) -> Path:
    """One JSON request body per line: ``{"text": ...}``, or ``{"texts": [...]}`` of
    ``per_request`` texts."""
    if per_request == 1:
        bodies = [{"text": text} for text in texts]
    else:
        bodies = [{"texts": texts[i : i + per_request]} for i in range(0, len(texts), per_request)]
    path.write_text("".join(json.dumps(body) + "\n" for body in bodies))
    return path
