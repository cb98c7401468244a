"""Latency of ``review`` (sentiment + toxicity in one call) against each model alone.

First in-process: the review handler running its two parts one after the other vs in two
threads (median of repeated calls). Then served: drives the running local server
(``scripts/serve.sh``) with hey, one model after the other, under light load (one client)
and heavy load (several clients), all in one run.

    review-analysis bench review [--seconds 15] [--heavy-clients 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from handlers.review import ReviewHandler
from handlers.server_config import KEY_FILE_NAME
from review_analysis.bench.loadgen import run_hey
from review_analysis.client import ReviewClient
from review_analysis.paths import MODELS, RUN_DIR

REVIEW = (
    "We came for dinner on a Friday and waited twenty minutes for a table. "
    "The steak was cooked perfectly and the fries were crisp. "
    "Our waiter was friendly but clearly overworked, so dessert took forever."
)


def median_ms(function, calls: int = 100) -> float:
    function()
    durations = []
    for _ in range(calls):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations) * 1000


def in_process_comparison() -> None:
    with tempfile.TemporaryDirectory() as archive:
        for part in ("sentiment", "toxicity"):
            (Path(archive) / part).symlink_to(MODELS / part)
        timings = {}
        for parallel in (False, True):
            handler = ReviewHandler()
            handler.configure({"parallel_parts": parallel})
            handler.load(Path(archive))
            timings["parallel" if parallel else "sequential"] = median_ms(
                lambda h=handler: h.predict([REVIEW])
            )
            if not parallel:
                for name, part in handler.parts.items():
                    timings[f"{name} alone"] = median_ms(lambda p=part: p.predict([REVIEW]))
    print("In-process, one review, median of 100 calls:")
    for name, value in timings.items():
        print(f"  {name}: {value:.1f} ms")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--heavy-clients", type=int, default=8)
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR)
    args = parser.parse_args()
    in_process_comparison()
    client = ReviewClient(key_file=args.run_dir / KEY_FILE_NAME)
    body = json.dumps({"text": REVIEW}).encode()
    print("| model | clients | requests/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    p50 = {}
    for clients in (1, args.heavy_clients):
        for model in ("sentiment", "toxicity", "review"):
            client.predict(model, REVIEW)  # warm up, and renew the key if it expired
            result = run_hey(
                client.predict_url(model), body, client.key("inference"), clients, args.seconds
            )
            p50[(model, clients)] = result.p50_ms
            print(
                f"| {model} | {clients} | {result.requests_per_second:.1f} | "
                f"{result.p50_ms:.1f} | {result.p99_ms:.1f} | {result.errors} |"
            )
    for clients in (1, args.heavy_clients):
        sentiment, toxicity = p50[("sentiment", clients)], p50[("toxicity", clients)]
        review = p50[("review", clients)]
        print(
            f"\n{clients} client(s): review p50 / slower part p50 = "
            f"{review / max(sentiment, toxicity):.2f}; review p50 / sum of parts p50 = "
            f"{review / (sentiment + toxicity):.2f}"
        )


if __name__ == "__main__":
    main()
