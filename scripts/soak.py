"""Soak test: mixed load on every served model for minutes, then account for every request.

Drives the running local server (``scripts/serve.sh``) with one hey process per model at once
and reports, per model, requests sent and answered (hey's own count, and the 2xx lines of
TorchServe's access log for the same window, which must agree), errors, and the resident
memory of the TorchServe frontend and its workers at the start and the end.

    python -m scripts.soak [--minutes 10] [--clients 2]
"""

from __future__ import annotations

import argparse
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from scripts.client import ReviewClient
from scripts.loadgen import run_hey
from scripts.torchserve import REPO, LocalTorchServe

TEXTS = {
    "sentiment": "The soup was cold and the waiter ignored us, but the dessert was lovely.",
    "toxicity": "Great burgers. The guy at the counter was a complete idiot though.",
    "review": "We waited forty minutes for a table. The pasta was worth it, honestly.",
    "absa": "Die Pizza war lecker, aber viel zu teuer. Der Kellner war sehr freundlich.",
}


def resident_megabytes(server: LocalTorchServe) -> float:
    """RSS of the frontend and every worker it started."""
    frontend = psutil.Process(server.pid())
    processes = [frontend, *frontend.children(recursive=True)]
    return sum(p.memory_info().rss for p in processes) / 2**20


def answered_in_log(server: LocalTorchServe, model: str, skip_lines: int) -> int:
    pattern = re.compile(rf'"POST /predictions/{model} HTTP/1.1" 200 ')
    lines = (server.log_dir / "access_log.log").read_text().splitlines()[skip_lines:]
    return sum(bool(pattern.search(line)) for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=2, help="concurrent clients per model")
    parser.add_argument("--warmup-seconds", type=float, default=30)
    parser.add_argument("--run-dir", type=Path, default=REPO / ".torchserve")
    args = parser.parse_args()
    server = LocalTorchServe(REPO / "config.properties", args.run_dir)
    client = ReviewClient(key_file=server.key_file)

    def load(model: str, seconds: float):
        body = json.dumps({"text": TEXTS[model]}).encode()
        url = client.predict_url(model)
        return run_hey(url, body, client.key("inference"), args.clients, seconds)

    def load_all(seconds: float) -> dict:
        with ThreadPoolExecutor(len(TEXTS)) as pool:
            runs = pool.map(lambda model: load(model, seconds), TEXTS)
            return dict(zip(TEXTS, runs, strict=True))

    # Memory is measured from the end of a warm-up under the same load, not from idle.
    load_all(args.warmup_seconds)
    memory_before = resident_megabytes(server)
    log_start = len((server.log_dir / "access_log.log").read_text().splitlines())
    results = load_all(args.minutes * 60)
    memory_after = resident_megabytes(server)

    print(f"{args.minutes:g} minutes, {args.clients} clients per model, all models at once")
    print("| model | sent | 2xx (hey) | 2xx (access log) | errors | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for model, result in results.items():
        logged = answered_in_log(server, model, log_start)
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
