"""What TorchServe's frontend costs per request: its built-in logging against ``log4j2.xml``.

Starts two TorchServe instances on free loopback ports serving the same cheap model (the
default toxicity model: the worker does little, so the frontend's share shows), one with
TorchServe's built-in log4j2 configuration and one with the bundle's. Both are warmed up
(the JIT compiler needs about a minute of CPU on 2 cores), then driven by wrk in alternating
rounds; each row gives the frontend's (Java's) CPU time per request and the throughput.

    review-analysis bench frontend [--seconds 10] [--rounds 3] [--clients 16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import psutil

from review_analysis.bench.loadgen import run_wrk, write_bodies
from review_analysis.bench.subjects import english_reviews
from review_analysis.paths import MODEL_STORE, REPO
from review_analysis.torchserve import LocalTorchServe, read_properties, start_server

BUILT_IN = "TorchServe's built-in logging"
OURS = "log4j2.xml"


def frontend_cpu_seconds(server: LocalTorchServe) -> float:
    times = psutil.Process(server.pid()).cpu_times()
    return times.user + times.system


def measure(server: LocalTorchServe, bodies: Path, clients: int, seconds: float) -> dict:
    client = server.client()
    before = frontend_cpu_seconds(server)
    result = run_wrk(
        client.predict_url("toxicity"), bodies, client.key("inference"), clients, seconds
    )
    used = frontend_cpu_seconds(server) - before
    return {
        "requests_per_s": result.requests_per_second,
        "frontend_cpu_ms_per_request": used * 1000 / max(result.requests, 1),
        "errors": result.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=60)
    args = parser.parse_args()

    vmargs = read_properties(REPO / "config.properties")["vmargs"].split()
    built_in = " ".join(arg for arg in vmargs if not arg.startswith("-Dlog4j.configurationFile="))
    with tempfile.TemporaryDirectory(prefix="bench-frontend-") as scratch:
        bodies = write_bodies(english_reviews(400), Path(scratch) / "bodies.jsonl")
        servers: dict[str, LocalTorchServe] = {}
        try:
            for index, (label, overrides) in enumerate(
                ((BUILT_IN, {"vmargs": built_in}), (OURS, {}))
            ):
                run_dir = Path(scratch) / f"ts-{index}"
                servers[label] = start_server(run_dir, MODEL_STORE, "toxicity.mar", **overrides)
            for server in servers.values():
                measure(server, bodies, args.clients, args.warmup)
            rows: dict[str, list[dict]] = {label: [] for label in servers}
            for _ in range(args.rounds):
                for label, server in servers.items():
                    rows[label].append(measure(server, bodies, args.clients, args.seconds))
        finally:
            for server in servers.values():
                server.stop()

    print(f"wrk -c{args.clients}, {args.rounds} rounds of {args.seconds:.0f} s, median (rounds)")
    print("| logging | frontend CPU ms per request | requests/s | errors |")
    print("|---|---|---|---|")
    for label, measured in rows.items():
        cpu = [row["frontend_cpu_ms_per_request"] for row in measured]
        rps = [row["requests_per_s"] for row in measured]
        print(
            f"| {label} | {statistics.median(cpu):.3f} ({', '.join(f'{c:.3f}' for c in cpu)}) "
            f"| {statistics.median(rps):.0f} ({', '.join(f'{r:.0f}' for r in rps)}) "
            f"| {sum(row['errors'] for row in measured)} |"
        )


if __name__ == "__main__":
    main()
