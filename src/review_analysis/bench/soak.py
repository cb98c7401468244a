"""Soak test: mixed load on every served model for minutes, then account for every request.

Drives the running local server (``scripts/serve.sh``) with one hey process per model (and the
sentiment A/B router) at once and reports, per model, requests sent and answered (hey's own
count, and the 2xx lines of TorchServe's access log for the same window, which must agree),
errors, and the resident memory of the TorchServe frontend and its workers at the start and
the end.

    review-analysis bench soak [--minutes 10] [--clients 2]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from review_analysis.bench.loadgen import LoadResult, run_hey
from review_analysis.client import ReviewClient
from review_analysis.paths import REPO, RUN_DIR
from review_analysis.torchserve import LocalTorchServe

TEXTS = {
    "sentiment": "The soup was cold and the waiter ignored us, but the dessert was lovely.",
    "toxicity": "Great burgers. The guy at the counter was a complete idiot though.",
    "review": "We waited forty minutes for a table. The pasta was worth it, honestly.",
    "absa": "Die Pizza war lecker, aber viel zu teuer. Der Kellner war sehr freundlich.",
    "sentiment-ab": "Friendly staff and a cosy room, though the fries were soggy.",
}


def resident_megabytes(server: LocalTorchServe) -> float:
    """RSS of the frontend and every worker it started."""
    frontend = psutil.Process(server.pid())
    processes = [frontend, *frontend.children(recursive=True)]
    return sum(p.memory_info().rss for p in processes) / 2**20


def wait_until_idle(
    server: LocalTorchServe, quiet_seconds: float = 5, timeout: float = 120
) -> None:
    """Until the access log stops growing: requests a timed hey run abandoned are answered."""
    deadline = time.monotonic() + timeout
    lines, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < quiet_seconds and time.monotonic() < deadline:
        current = len(server.access_log_lines())
        if current != lines:
            lines, quiet_since = current, time.monotonic()
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=2, help="concurrent clients per model")
    parser.add_argument("--warmup-seconds", type=float, default=30)
    parser.add_argument("--chunk-seconds", type=float, default=30)
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR)
    args = parser.parse_args()
    server = LocalTorchServe(REPO / "config.properties", args.run_dir)
    client = ReviewClient(key_file=server.key_file)

    def load(model: str, seconds: float | None = None, requests: int | None = None):
        body = json.dumps({"text": TEXTS[model]}).encode()
        url = client.predict_url(model)
        key = client.key("inference")
        return run_hey(url, body, key, args.clients, seconds=seconds, requests=requests)

    def soak(model: str, rate: float, until: float) -> LoadResult:
        """Counted hey runs of about --chunk-seconds each until the deadline: every request
        sent is waited for, and the run still lasts the whole soak."""
        runs = []
        while time.monotonic() < until:
            runs.append(load(model, requests=max(args.clients, round(rate * args.chunk_seconds))))
            rate = runs[-1].requests_per_second
        return LoadResult.combined(runs)

    # Memory is measured from the end of a warm-up under the same load, not from idle; the
    # warm-up also gives each model's first rate. A timed hey run abandons the requests in
    # flight at its end, so the soak waits until those are answered before counting.
    with ThreadPoolExecutor(len(TEXTS)) as pool:
        runs = pool.map(lambda m: load(m, args.warmup_seconds), TEXTS)
        warmup = dict(zip(TEXTS, runs, strict=True))
    wait_until_idle(server)
    memory_before = resident_megabytes(server)
    log_start = len(server.access_log_lines())
    started = time.monotonic()
    until = started + args.minutes * 60
    with ThreadPoolExecutor(len(TEXTS)) as pool:
        runs = pool.map(lambda m: soak(m, warmup[m].requests_per_second, until), TEXTS)
        results = dict(zip(TEXTS, runs, strict=True))
    minutes = (time.monotonic() - started) / 60
    memory_after = resident_megabytes(server)

    print(f"{minutes:.1f} minutes, {args.clients} clients per model, all models at once")
    print("| model | sent | 2xx (hey) | 2xx (access log) | errors | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for model, result in results.items():
        logged = server.answered_in_log(f"/predictions/{model}", log_start)
        print(
            f"| {model} | {result.requests} | {result.requests - result.errors} | {logged} | "
            f"{result.errors} | {result.p50_ms:.1f} | {result.p99_ms:.1f} |"
        )
    growth = (memory_after - memory_before) / memory_before
    print(
        f"\nresident memory (frontend + workers): {memory_before:.0f} MB -> "
        f"{memory_after:.0f} MB ({growth:+.1%})"
    )


if __name__ == "__main__":
    main()
