"""A/B router (handlers/router.py): its overhead, and whether a slow request holds up others.

Starts a TorchServe on free loopback ports with the default sentiment model
(``artifacts/models/sentiment``, as ``scripts/prepare_models.sh`` trains it) packed as 1.0
with its configs/sentiment/ settings; a slow copy of it (2.0: the same model, whose batches
wait ``--slow-s`` for company, so a lone request takes that long); and, for each router
layout to compare, two versions of ``sentiment-ab`` packed from configs/router/: one sending
100% to 1.0, one 50/50 (requests pick their version with an experiment key). A layout
``WxB`` is W workers taking up to B requests per batch; ``1x32`` was the router's layout
before it became ``4x1``.

1. Overhead: ``/predictions/sentiment/1.0`` (direct) against each layout's 100% router, with
   hey (the same review, closed loop), alternating runs so that all see the same machine.
2. Head of line: while one client keeps a request to the slow version in flight through the
   50/50 router, another sends requests to the fast version through it, one after the other.

Router workers' memory comes last (RSS, PSS, and USS: what one more worker costs).

    review-analysis bench router [--seconds 15] [--rounds 2] [--clients 1 8]
                                   [--layouts 1x32 4x1] [--slow-s 2]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from handlers.routing import choose_variant
from review_analysis.archives import build_mar
from review_analysis.bench.loadgen import LoadResult, run_hey
from review_analysis.client import ReviewClient
from review_analysis.ops import ROUTER_CONFIG
from review_analysis.paths import CONFIGS, MODELS
from review_analysis.torchserve import start_server

REVIEW = "The pasta was lovely and the staff friendly, but we waited forty minutes for a table."
SPLIT = {"1.0": 50, "2.0": 50}


def key_for(version: str) -> str:
    return next(
        key
        for key in (f"user-{i}" for i in range(100))
        if choose_variant(SPLIT, key, random.Random()) == version
    )


def pack_router(store: Path, version: int, layout: str, weights: dict[str, float]) -> str:
    workers, batch = (int(n) for n in layout.split("x"))
    config = yaml.safe_load(ROUTER_CONFIG.read_text())
    config.update(minWorkers=workers, maxWorkers=workers, batchSize=batch, maxBatchDelay=1)
    config["handler"].update(target="sentiment", variants=weights)
    return pack(store, "sentiment-ab", str(version), None, "router", config)


def pack(
    store: Path,
    name: str,
    version: str,
    model_dir: Path | None,
    handler: str,
    config: dict[str, Any],
) -> str:
    archive = f"{name}-{version}"
    with tempfile.TemporaryDirectory() as stage:
        config_file = Path(stage) / "model-config.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        build_mar(
            name, version, model_dir, handler, store, config=str(config_file), archive_name=archive
        )
    return f"{archive}.mar"


def fast_beside_slow(client: ReviewClient, url: str, seconds: float) -> LoadResult:
    """Latency of sequential requests to 1.0 while a request to 2.0 is always in flight."""
    body = {"text": REVIEW}
    stop = threading.Event()

    def slow_client() -> None:
        while not stop.is_set():
            client.request("inference", "POST", url, json=body, headers=slow)

    slow, fast = {"X-Experiment-Key": key_for("2.0")}, {"X-Experiment-Key": key_for("1.0")}
    thread = threading.Thread(target=slow_client)
    thread.start()
    time.sleep(0.5)  # the slow request is in the router
    latencies, errors, started = [], 0, time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            sent = time.perf_counter()
            answer = client.request("inference", "POST", url, json=body, headers=fast)
            latencies.append((time.perf_counter() - sent) * 1000)
            errors += answer.status_code != 200 or answer.json()["model"]["version"] != "1.0"
    finally:
        stop.set()
        thread.join()
    return LoadResult.of(latencies, errors, time.monotonic() - started)


def memory_mib(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (private pages) of a process, from /proc/PID/smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return {
        "rss": fields["Rss"],
        "pss": fields["Pss"],
        "uss": fields["Private_Clean"] + fields["Private_Dirty"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--layouts", nargs="+", default=["1x32", "4x1"])
    parser.add_argument("--slow-s", type=float, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "store"
        store.mkdir()
        config = yaml.safe_load((CONFIGS / "sentiment" / "model-config.yaml").read_text())
        slow_config = {**config, "minWorkers": 1, "maxWorkers": 1}
        slow_config["maxBatchDelay"] = int(args.slow_s * 1000)
        model_dir = MODELS / "sentiment"
        archives = [
            pack(store, "sentiment", "1.0", model_dir, "sentiment", config),
            pack(store, "sentiment", "2.0", model_dir, "sentiment", slow_config),
        ]
        routers = {}  # layout -> (100% version, 50/50 version)
        for i, layout in enumerate(args.layouts):
            routers[layout] = (2 * i + 1, 2 * i + 2)
            archives.append(pack_router(store, 2 * i + 1, layout, {"1.0": 100}))
            archives.append(pack_router(store, 2 * i + 2, layout, SPLIT))
        server = start_server(Path(scratch) / "ts", store, ",".join(archives))
        try:
            with server.client() as client:
                body = json.dumps({"text": REVIEW}).encode()
                urls = {"direct": client.predict_url("sentiment", "1.0")}
                for layout, (whole, _) in routers.items():
                    urls[f"router {layout}"] = client.predict_url("sentiment-ab", str(whole))
                print("| clients | path | requests/s | p50 ms | p99 ms | errors |")
                print("|---|---|---|---|---|---|")
                ratios = []
                for clients in args.clients:
                    runs = {path: [] for path in urls}
                    for _ in range(args.rounds):
                        for path, url in urls.items():
                            key = client.key("inference")
                            runs[path].append(run_hey(url, body, key, clients, args.seconds))
                    mean = {
                        path: {
                            "rps": np.mean([r.requests_per_second for r in results]),
                            "p50": np.mean([r.p50_ms for r in results]),
                            "p99": np.mean([r.p99_ms for r in results]),
                        }
                        for path, results in runs.items()
                    }
                    for path, row in mean.items():
                        errors = sum(r.errors for r in runs[path])
                        print(
                            f"| {clients} | {path} | {row['rps']:.1f} | {row['p50']:.1f} "
                            f"| {row['p99']:.1f} | {errors} |"
                        )
                    direct = mean.pop("direct")
                    ratios += [
                        f"{clients} clients, {path}: throughput "
                        f"{row['rps'] / direct['rps']:.2f} of direct, "
                        f"p50 +{row['p50'] - direct['p50']:.1f} ms, "
                        f"p99 {row['p99'] / direct['p99']:.2f}x"
                        for path, row in mean.items()
                    ]
                print("\n" + "\n".join(ratios))

                print(f"\nRequests to 1.0 beside one always in flight to 2.0 ({args.slow_s} s):")
                print("| router layout | requests | p50 ms | p99 ms | max ms | errors |")
                print("|---|---|---|---|---|---|")
                for layout, (_, split) in routers.items():
                    url = client.predict_url("sentiment-ab", str(split))
                    r = fast_beside_slow(client, url, args.seconds)
                    print(
                        f"| {layout} | {r.requests} | {r.p50_ms:.1f} | {r.p99_ms:.1f} "
                        f"| {max(r.latencies_ms):.1f} | {r.errors} |"
                    )

                print("\n| router worker | RSS MiB | PSS MiB | USS MiB |\n|---|---|---|---|")
                (router,) = client.describe("sentiment-ab", str(routers[args.layouts[-1]][0]))
                for worker in router["workers"]:
                    memory = memory_mib(worker["pid"])
                    print(
                        f"| {worker['pid']} | {memory['rss']:.0f} | {memory['pss']:.0f} "
                        f"| {memory['uss']:.0f} |"
                    )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
