"""Latency of ``review`` (sentiment + toxicity in one call) against each model alone.

Drives the running local server (``scripts/serve.sh``) with hey, one model after the other,
under light load (one client) and heavy load (several clients), all in one run.

    python -m scripts.bench_review [--seconds 15] [--heavy-clients 8]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scripts.client import ReviewClient
from scripts.loadgen import run_hey

REVIEW = (
    "We came for dinner on a Friday and waited twenty minutes for a table. "
    "The steak was cooked perfectly and the fries were crisp. "
    "Our waiter was friendly but clearly overworked, so dessert took forever."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--heavy-clients", type=int, default=8)
    parser.add_argument("--run-dir", type=Path, default=Path(".torchserve"))
    args = parser.parse_args()
    client = ReviewClient(key_file=args.run_dir / "key_file.json")
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
