"""Serving performance (issue 7): ceiling, tutorial baseline and our TorchServe in one run.

1. Ceiling: the model's own handler pipeline called in-process on all cores, texts/s per
   batch size; the best is the physical limit of this machine.
2. Tutorial baseline: Flask + a ``transformers`` pipeline, one text per request
   (``scripts/baseline_flask.py``), same weights.
3. Ours: TorchServe with our handler and ``model-config.yaml``; closed loop at several
   concurrencies, open loop at half of saturation, a lone client, workers x threads layouts,
   the accelerated build, and the default bundle's memory and start-up time.

Load comes from ``wrk`` (Debian) driving real review texts of varied length
(``scripts/wrk_reviews.lua``). Needs no running server: every server is started here, on free
loopback ports, and stopped at the end.

    python -m scripts.bench_serving [--seconds 20] [--json bench.json] [--quick]
    python -m scripts.bench_serving --render bench.json    # the tables of an earlier run
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import httpx
import psutil
import torch
import yaml
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from handlers.sentiment import SentimentHandler
from scripts.accelerate import ENGINES
from scripts.archives import build_mar
from scripts.datasets import fetch_uci, load_uci
from scripts.loadgen import LoadResult
from scripts.torchserve import REPO, LocalTorchServe, free_ports, read_properties, start_server

WRK_SCRIPT = Path(__file__).with_name("wrk_reviews.lua")
# How many UCI sentences make one review: mostly short, some long (up to the 128-token cut).
SENTENCES_PER_REVIEW = (1, 1, 1, 1, 2, 2, 3, 5, 8)
# The bundle's separate models; review packs two of them again.
THREE_MODELS = ("sentiment", "toxicity", "absa")
# workers x intra-op threads per worker; the first is the shipped configuration.
THREAD_LAYOUTS = {"1x2": (1, 2), "2x1": (2, 1), "1x1": (1, 1), "2x2": (2, 2)}


# ----- inputs -------------------------------------------------------------------------------


def review_texts(
    count: int = 400, seed: int = 0, downloads: Path = REPO / "artifacts/downloads"
) -> list[str]:
    """Reviews of 1 to 8 consecutive sentences of one site (amazon, imdb, yelp) of UCI."""
    by_site: dict[str, list[str]] = defaultdict(list)
    for example in load_uci(fetch_uci(downloads)):
        by_site[example.source].append(example.text)
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        sentences = by_site[rng.choice(sorted(by_site))]
        length = rng.choice(SENTENCES_PER_REVIEW)
        start = rng.randrange(len(sentences) - length)
        texts.append(" ".join(sentences[start : start + length]))
    return texts


def write_bodies(texts: list[str], path: Path) -> Path:
    path.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    return path


# ----- in-process ceiling -------------------------------------------------------------------


def sentiment_handler(
    model_dir: Path, batch_size: int, threads: int, **settings: str
) -> SentimentHandler:
    """The served handler's pipeline, in-process: same tokenizer, padding and postprocess."""
    handler = SentimentHandler()
    handler.configure({"inference_batch_size": batch_size, "threads": threads, **settings})
    handler.load(model_dir)
    return handler


def texts_per_second(
    handler: SentimentHandler, texts: list[str], batch_size: int, seconds: float
) -> float:
    """Consecutive chunks of ``batch_size`` texts through ``handler.predict`` for ``seconds``."""
    chunks = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
    handler.predict(chunks[0])
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for chunk in chunks:
            handler.predict(chunk)
            done += len(chunk)
            if time.perf_counter() - started >= seconds:
                break
    return done / (time.perf_counter() - started)


def single_text_ms(handler: SentimentHandler, texts: list[str], seconds: float) -> float:
    """Median time of one text alone, over the mix of lengths."""
    durations = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for text in texts:
            began = time.perf_counter()
            handler.predict([text])
            durations.append(time.perf_counter() - began)
            if time.perf_counter() - started >= seconds:
                break
    return statistics.median(durations) * 1000


def measure_worker(
    model_dir: Path, texts: list[str], batch_size: int, threads: int, seconds: float, barrier
) -> float:
    handler = sentiment_handler(model_dir, batch_size, threads)
    handler.predict(texts[:batch_size])
    barrier.wait()
    return texts_per_second(handler, texts, batch_size, seconds)


def in_process_rate(
    model_dir: Path, texts: list[str], batch_size: int, processes: int, threads: int, seconds: float
) -> float:
    """Texts/s of ``processes`` copies of the model measuring at once (fresh processes:
    forking after OpenMP has run can hang the child)."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(processes, mp_context=context) as pool:
        barrier = manager.Barrier(processes)
        futures = [
            pool.submit(measure_worker, model_dir, texts, batch_size, threads, seconds, barrier)
            for _ in range(processes)
        ]
        return sum(future.result() for future in futures)


def ceiling(model_dir: Path, texts: list[str], batch_sizes: list[int], seconds: float) -> dict:
    """Best texts/s on all cores: one process with all of them, or one process per core."""
    cores = os.cpu_count() or 1
    rates = {}
    for processes, threads in {(1, cores), (cores, 1)}:
        for batch_size in batch_sizes:
            rate = in_process_rate(model_dir, texts, batch_size, processes, threads, seconds)
            rates[f"{processes}x{threads} batch {batch_size}"] = round(rate, 1)
            print(
                f"  {processes} process(es) x {threads} thread(s), batch {batch_size}: "
                f"{rate:.1f} texts/s",
                flush=True,
            )
    best = max(rates, key=rates.__getitem__)
    # A lone request meets the shipped layout: one worker with all cores.
    handler = sentiment_handler(model_dir, batch_size=1, threads=cores)
    return {
        "texts_per_s": rates,
        "best": best,
        "ceiling_texts_per_s": rates[best],
        "single_text_ms": round(single_text_ms(handler, texts, seconds), 2),
    }


# ----- load generation ----------------------------------------------------------------------


def run_wrk(
    url: str, bodies: Path, key: str, connections: int, seconds: float, rate: float | None = None
) -> LoadResult:
    """Closed loop with ``connections`` clients; open loop at ``rate`` requests/s when set."""
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


def open_loop_connections(rate: float) -> int:
    """A connection waits for its answer before its next gap: with about one request per
    connection and second, that wait (tens of ms) barely lowers the offered rate."""
    return min(256, max(4, round(rate)))


def load_row(result: LoadResult, **labels) -> dict:
    # One text per request: texts/s equals requests/s.
    rps = round(result.requests_per_second, 1)
    return {**labels, "requests_per_s": rps, "texts_per_s": rps, **asdict(result)}


def sweep(
    name: str, url: str, bodies: Path, key: str, clients: list[int], seconds: float
) -> list[dict]:
    rows = []
    for connections in clients:
        row = load_row(
            run_wrk(url, bodies, key, connections, seconds), server=name, clients=connections
        )
        print(
            f"  {name} c={connections}: {row['requests_per_s']} req/s, p50 {row['p50_ms']:.1f} "
            f"p99 {row['p99_ms']:.1f} ms, errors {row['errors']}",
            flush=True,
        )
        rows.append(row)
    return rows


# ----- servers ------------------------------------------------------------------------------


@retry(
    stop=stop_after_delay(180),
    wait=wait_fixed(0.5),
    retry=retry_if_exception_type(httpx.HTTPError),
    reraise=True,
)
def wait_for_flask(url: str) -> None:
    httpx.post(url, json={"text": "ready?"}, timeout=30).raise_for_status()


@contextmanager
def flask_baseline(model_dir: Path, max_length: int) -> Iterator[str]:
    (port,) = free_ports(1)
    command = [sys.executable, "-m", "scripts.baseline_flask", "--model-dir", str(model_dir)]
    command += ["--port", str(port), "--max-length", str(max_length)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/predict"
    try:
        wait_for_flask(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def variant_config(base: Path, workers: int, threads: int, output: Path) -> Path:
    config = yaml.safe_load(base.read_text())
    config.update(minWorkers=workers, maxWorkers=workers)
    config["handler"]["threads"] = threads
    output.write_text(yaml.safe_dump(config))
    return output


def build_store(args: argparse.Namespace, store: Path) -> dict[str, str]:
    """Archives to serve side by side: ours as shipped, thread layouts, the accelerated build."""
    shutil.copy(args.archive, store / "sentiment.mar")
    models = {"ours": "sentiment"}
    for layout, (workers, threads) in list(THREAD_LAYOUTS.items())[1:]:
        if layout in args.layouts:
            name = f"sentiment_{layout}"
            config = variant_config(args.config, workers, threads, store / f"{name}.yaml")
            build_mar(name, "1.0", args.model_dir, "sentiment", store, config=str(config))
            models[layout] = name
    if args.accelerate:
        name = f"sentiment_{args.accelerate.replace('-', '_')}"
        build_mar(
            name,
            "1.0",
            args.model_dir,
            "sentiment",
            store,
            config=str(args.config),
            accelerate=args.accelerate,
        )
        models[args.accelerate] = name
    return models


def footprint(run_dir: Path) -> dict:
    """Start-up time and memory of the default bundle (config.properties, model_store/)."""
    load_models = read_properties(REPO / "config.properties")["load_models"]
    started = time.perf_counter()
    server = start_server(run_dir, REPO / "model_store", load_models)
    startup_s = time.perf_counter() - started
    try:
        return {"models": load_models, "startup_s": round(startup_s, 1), **memory(server)}
    finally:
        server.stop()


def memory(server: LocalTorchServe) -> dict:
    """Resident memory (RSS, and PSS: shared pages counted once) of the frontend and of each
    model's workers, and of the three separate models (sentiment, toxicity, absa) alone."""
    with server.client() as client:
        pids = {
            model["modelName"]: [
                worker["pid"]
                for version in client.describe(model["modelName"])
                for worker in version["workers"]
            ]
            for model in client.list_models()["models"]
        }
    pids["frontend"] = [server.pid()]
    usage = {
        name: [psutil.Process(pid).memory_full_info() for pid in group]
        for name, group in pids.items()
    }
    rss = {name: sum(info.rss for info in infos) >> 20 for name, infos in usage.items()}
    pss = {name: sum(info.pss for info in infos) >> 20 for name, infos in usage.items()}
    three = [name for name in ("frontend", *THREE_MODELS) if name in rss]
    return {
        "rss_mib": rss,
        "pss_mib": pss,
        "total_rss_mib": sum(rss.values()),
        "total_pss_mib": sum(pss.values()),
        "three_models_rss_mib": sum(rss[name] for name in three),
        "three_models_pss_mib": sum(pss[name] for name in three),
    }


# ----- the run ------------------------------------------------------------------------------


def run(args: argparse.Namespace, scratch: Path) -> dict:
    texts = review_texts(args.texts)
    bodies = write_bodies(texts, scratch / "bodies.jsonl")
    max_length = yaml.safe_load(args.config.read_text())["handler"]["max_length"]
    report: dict = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}}

    print("Ceiling (in-process):", flush=True)
    report["ceiling"] = ceiling(args.model_dir, texts, args.batch_sizes, args.seconds)

    print("Tutorial baseline (Flask + pipeline):", flush=True)
    with flask_baseline(args.model_dir, max_length) as url:
        report["baseline"] = sweep("flask", url, bodies, "-", args.clients, args.seconds)

    store = scratch / "store"
    store.mkdir()
    models = build_store(args, store)
    server = start_server(scratch / "ts", store, ",".join(f"{m}.mar" for m in models.values()))
    try:
        client = server.client()
        key = client.key("inference")
        print("Ours (TorchServe):", flush=True)
        ours = sweep(
            "ours", client.predict_url("sentiment"), bodies, key, args.clients, args.seconds
        )
        report["ours"] = ours
        saturated = max(ours, key=lambda row: row["requests_per_s"])
        half = saturated["requests_per_s"] / 2
        open_loop = run_wrk(
            client.predict_url("sentiment"),
            bodies,
            key,
            open_loop_connections(half),
            args.seconds,
            half,
        )
        report["open_loop_half"] = load_row(open_loop, server="ours", offered_per_s=round(half, 1))
        print(f"  open loop at {half:.0f}/s: {report['open_loop_half']}", flush=True)
        report["layouts"] = [
            {**row, "layout": layout}
            for layout, model in models.items()
            if layout in THREAD_LAYOUTS or layout == "ours"
            for row in sweep(
                layout, client.predict_url(model), bodies, key, [saturated["clients"]], args.seconds
            )
        ]
        if args.accelerate:
            url = client.predict_url(models[args.accelerate])
            report["accelerated"] = sweep(
                args.accelerate, url, bodies, key, args.clients, args.seconds
            )
    finally:
        server.stop()

    if args.footprint:
        print("Default bundle: start-up and memory:", flush=True)
        report["footprint"] = footprint(scratch / "ts-default")
    report["targets"] = targets(report)
    return report


def best(rows: list[dict]) -> dict:
    return max(rows, key=lambda row: row["requests_per_s"])


def at_clients(rows: list[dict], clients: int) -> dict:
    return next(row for row in rows if row["clients"] == clients)


def targets(report: dict) -> dict:
    """Every ratio of issue 7, with the numbers behind it."""
    ceiling_tps = report["ceiling"]["ceiling_texts_per_s"]
    ours, baseline = best(report["ours"]), best(report["baseline"])
    lone = at_clients(report["ours"], 1)
    open_loop = report["open_loop_half"]
    result = {
        "served_over_ceiling": round(ours["texts_per_s"] / ceiling_tps, 2),
        "ours_over_baseline_throughput": round(
            ours["requests_per_s"] / baseline["requests_per_s"], 2
        ),
        "p99_ours_vs_baseline_at_same_clients": {
            row["clients"]: [
                round(at_clients(report["ours"], row["clients"])["p99_ms"], 1),
                round(row["p99_ms"], 1),
            ]
            for row in report["baseline"]
        },
        "lone_request_p50_ms": round(lone["p50_ms"], 1),
        "lone_request_budget_ms": round(report["ceiling"]["single_text_ms"] + 10, 1),
        "half_load_p99_over_p50": round(open_loop["p99_ms"] / max(open_loop["p50_ms"], 1e-9), 2),
    }
    if "accelerated" in report:
        accelerated = best(report["accelerated"])
        result["accelerated_over_baseline_throughput"] = round(
            accelerated["requests_per_s"] / baseline["requests_per_s"], 2
        )
    if "footprint" in report:
        result["three_models_rss_mib"] = report["footprint"]["three_models_rss_mib"]
        result["default_bundle_rss_mib"] = report["footprint"]["total_rss_mib"]
        result["startup_s"] = report["footprint"]["startup_s"]
    return result


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_start": os.getloadavg(),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=REPO / "artifacts/models/sentiment")
    parser.add_argument("--archive", type=Path, default=REPO / "model_store/sentiment.mar")
    parser.add_argument("--config", type=Path, default=REPO / "configs/sentiment/model-config.yaml")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--layouts", nargs="*", default=list(THREAD_LAYOUTS)[1:])
    parser.add_argument("--accelerate", choices=[*ENGINES, "none"], default="onnx-int8")
    parser.add_argument("--no-footprint", dest="footprint", action="store_false")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 s per measurement")
    parser.add_argument("--json", type=Path, help="write the full report here")
    parser.add_argument("--render", type=Path, help="only print the tables of a --json report")
    args = parser.parse_args()
    args.accelerate = None if args.accelerate == "none" else args.accelerate
    if args.quick:
        args.seconds, args.texts = 3, 60
        args.clients, args.batch_sizes = [1, 8], [1, 8]
    return args


def markdown(report: dict) -> str:
    """The load tables of a report, as in docs/BENCHMARKS.md."""
    lines = [
        "| server | clients | requests/s (= texts/s) | p50 ms | p90 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = [
        *report["baseline"],
        *report["ours"],
        *report.get("accelerated", []),
        {
            **report["open_loop_half"],
            "clients": f"open loop {report['open_loop_half']['offered_per_s']}/s",
        },
        *({**row, "server": f"layout {row['layout']}"} for row in report["layouts"]),
    ]
    for row in rows:
        lines.append(
            f"| {row['server']} | {row['clients']} | {row['requests_per_s']} | {row['p50_ms']:.1f} "
            f"| {row['p90_ms']:.1f} | {row['p99_ms']:.1f} | {row['errors']} |"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    if args.render:
        report = json.loads(args.render.read_text())
    else:
        with tempfile.TemporaryDirectory(prefix="bench-serving-") as scratch:
            report = run(args, Path(scratch))
    print(markdown(report))
    print(json.dumps(report["targets"], indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
