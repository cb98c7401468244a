"""Routing overhead: the A/B router URL against calling the model version directly.

Starts a TorchServe on free loopback ports with the default ``sentiment.mar`` and
``sentiment-ab.mar`` (100% to 1.0) from ``model_store/``, then drives both URLs with hey,
alternating runs so that both see the same machine, and prints a Markdown table.

    python -m scripts.bench_router [--seconds 15] [--rounds 2] [--clients 1 8]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from scripts.loadgen import run_hey
from scripts.torchserve import REPO, start_server

REVIEW = "The pasta was lovely and the staff friendly, but we waited forty minutes for a table."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        server = start_server(
            Path(scratch) / "ts", REPO / "model_store", "sentiment.mar,sentiment-ab.mar"
        )
        try:
            with server.client() as client:
                body = json.dumps({"text": REVIEW}).encode()
                urls = {
                    "direct": client.predict_url("sentiment", "1.0"),
                    "router": client.predict_url("sentiment-ab"),
                }
                print("| clients | path | requests/s | p50 ms | p99 ms | errors |")
                print("|---|---|---|---|---|---|")
                ratios = []
                for clients in args.clients:
                    runs = {path: [] for path in urls}
                    for _ in range(args.rounds):
                        for path, url in urls.items():
                            key = client.key("inference")
                            runs[path].append(run_hey(url, body, key, clients, args.seconds))
                    summary = {}
                    for path, results in runs.items():
                        summary[path] = {
                            "rps": np.mean([r.requests_per_second for r in results]),
                            "p50": np.mean([r.p50_ms for r in results]),
                            "p99": np.mean([r.p99_ms for r in results]),
                            "errors": sum(r.errors for r in results),
                        }
                        row = summary[path]
                        print(
                            f"| {clients} | {path} | {row['rps']:.1f} | {row['p50']:.1f} | "
                            f"{row['p99']:.1f} | {row['errors']} |"
                        )
                    direct, router = summary["direct"], summary["router"]
                    ratios.append(
                        f"{clients} clients: router/direct throughput "
                        f"{router['rps'] / direct['rps']:.2f}, "
                        f"p50 {router['p50'] / direct['p50']:.2f}x "
                        f"(+{router['p50'] - direct['p50']:.1f} ms), "
                        f"p99 {router['p99'] / direct['p99']:.2f}x"
                    )
                print("\n" + "\n".join(ratios))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
