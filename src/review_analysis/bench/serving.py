"""Serving performance (issue 7): in-process ceiling, tutorial baseline and our TorchServe,
measured in interleaved rounds on one machine.

For one model of the bundle (``--model``):

1. Ceiling: the served handler's own pipeline called in-process on all cores (one process
   with every core, or one single-threaded process per core), texts/s per batch size: what
   nothing served can beat on this machine.
2. Tutorial baseline: a Flask app, one text per request, one process
   (``src/review_analysis/bench/baseline_flask.py``), same weights.
3. Ours: TorchServe with the shipped ``model-config.yaml``: closed loop at several
   concurrencies, open loop at half of saturation, a lone client, and with
   ``--texts-per-request N`` clients that send N texts per request. Beside it in the same
   TorchServe: the workers x threads alternatives and the accelerated builds.
4. With ``--review-sentences 1 5 20`` (sentiment): reviews of exactly that many sentences,
   served sentences/s at saturation and a lone review's latency, for the shipped handler
   (every sentence scored) and for it reading each text as one input cut at ``max_length``
   (``split_sentences: false``, the handler before issue 16), beside the in-process ceiling
   on the same reviews.
5. With ``--weights LABEL=DIR``: other weights for the same task (one model directory),
   served by the same handler and config and measured like the accelerated builds, e.g.
   the previous default model against the new one in the same run.

The machine is shared and its speed drifts by tens of percent within minutes, so every
server stays up for the whole run, each round measures every row once, and every ratio is
taken within one round; the report gives each round's ratios and their median. Load comes
from ``wrk`` (Debian) driving varied review texts (``scripts/wrk_reviews.lua``); one text
per request, so requests/s = texts/s.

    review-analysis bench serving --model sentiment [--rounds 3] [--seconds 10] [--json out.json]
    review-analysis bench serving --review-sentences 1 5 20 --layouts --accelerations
    review-analysis bench serving --model toxicity --weights linear=artifacts/models/toxicity-linear
    review-analysis bench serving --footprint        # start-up and memory of the default bundle
    review-analysis bench serving --render out.json  # the tables of an earlier run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import psutil
import yaml

from handlers.base import auto_threads
from review_analysis.archives import build_mar
from review_analysis.bench.baseline_flask import flask_baseline
from review_analysis.bench.loadgen import LoadResult, run_wrk, write_bodies
from review_analysis.bench.machine import machine
from review_analysis.bench.subjects import (
    SUBJECTS,
    Subject,
    in_process_rate,
    parse_layout,
    single_text_time,
)
from review_analysis.paths import MODEL_STORE, REPO
from review_analysis.torchserve import LocalTorchServe, read_properties, start_server

# The three separate models of the bundle (review packs two of them again).
THREE_MODELS = ("sentiment", "toxicity", "absa")
CORES = os.cpu_count() or 1
# Workers x intra-op threads per worker ("2x1"): all cores in one process or one per core
# for the ceiling; those, one core alone, and oversubscribed, for the served alternatives.
CEILING_LAYOUTS = (f"1x{CORES}", f"{CORES}x1")
SERVED_LAYOUTS = (f"1x{CORES}", f"{CORES}x1", "1x1", f"{CORES}x{CORES}")
# The row label of the sentiment handler reading each text as one input (--review-sentences).
WHOLE_TEXT = "whole text"


# ----- in-process ceiling -------------------------------------------------------------------


# ----- servers ------------------------------------------------------------------------------


def shipped_layout(subject: Subject) -> str:
    workers = int(subject.model_config().get("minWorkers", 1))
    threads = int(subject.settings()["threads"]) or auto_threads(workers)
    return f"{workers}x{threads}"


def variant_config(subject: Subject, output: Path, layout: str | None = None) -> Path:
    """The shipped model config, with another workers x threads layout where given."""
    config = subject.model_config()
    if layout is not None:
        workers, threads = parse_layout(layout)
        config.update(minWorkers=workers, maxWorkers=workers)
        config["handler"]["threads"] = threads
    output.write_text(yaml.safe_dump(config))
    return output


def build_variants(subject: Subject, args: argparse.Namespace, store: Path) -> dict[str, str]:
    """Archives served side by side, {row label: model name}: the shipped configuration
    ("ours"), every other workers x threads layout, every accelerated build."""

    def build(name: str, config: Path, **options: str) -> None:
        specs = subject.model_dir_specs()
        build_mar(name, "1.0", specs, subject.handler, store, config=str(config), **options)

    build(subject.name, subject.config)
    variants = {"ours": subject.name}
    for layout in args.layouts:
        if layout != shipped_layout(subject):
            name = f"{subject.name}_{layout}"
            build(name, variant_config(subject, store / f"{name}.yaml", layout))
            variants[f"layout {layout}"] = name
    for engine in args.accelerations:
        name = f"{subject.name}_{engine.replace('-', '_')}"
        build(name, subject.config, accelerate=engine)
        variants[engine] = name
    for label, directory in args.weights:
        name = f"{subject.name}_{label.replace('-', '_')}"
        build_mar(name, "1.0", directory, subject.handler, store, config=str(subject.config))
        variants[label] = name
    if args.review_sentences:
        name = f"{subject.name}_whole_text"
        config = subject.model_config()
        config["handler"]["split_sentences"] = False
        (store / f"{name}.yaml").write_text(yaml.safe_dump(config))
        build(name, store / f"{name}.yaml")
        variants[WHOLE_TEXT] = name
    return variants


# ----- load ---------------------------------------------------------------------------------


def load_row(result: LoadResult, **labels) -> dict:
    return {**labels, "requests_per_s": round(result.requests_per_second, 1), **asdict(result)}


def wait_until_idle(busy_fraction: float = 0.1, timeout: float = 180) -> None:
    """A closed loop leaves its last requests in the server when it stops (64 of them at 64
    clients: seconds of work for ABSA), and the next row must not pay for them: wait until
    the machine's CPUs are idle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and psutil.cpu_percent(interval=0.5) > busy_fraction * 100:
        pass


def sweep(name: str, url: str, bodies: Path, key: str, clients: list[int], seconds: float):
    rows = []
    for connections in clients:
        wait_until_idle()
        row = load_row(run_wrk(url, bodies, key, connections, seconds), clients=connections)
        print(
            f"  {name} c={connections}: {row['requests_per_s']} req/s, p50 {row['p50_ms']:.1f} "
            f"p99 {row['p99_ms']:.1f} ms, errors {row['errors']}",
            flush=True,
        )
        rows.append(row)
    return rows


def open_loop_connections(rate: float, latency_s: float) -> int:
    """A connection waits for its answer (``latency_s``) before its next gap, which lowers
    the rate it offers by latency / (gap + latency): enough connections make each gap 20
    latencies long, so the offered rate stays within 5% of ``rate``."""
    return min(512, max(4, round(rate * max(1.0, 20 * latency_s))))


def best(rows: list[dict]) -> dict:
    return max(rows, key=lambda row: row["requests_per_s"])


def at_clients(rows: list[dict], clients: int) -> dict:
    return next(row for row in rows if row["clients"] == clients)


# ----- the run ------------------------------------------------------------------------------


def measure_round(
    subject: Subject,
    model_dir: Path,
    texts: list[str],
    bodies: Path,
    urls: dict[str, str],
    key: str,
    args: argparse.Namespace,
) -> dict:
    """Every row once: the ceiling, the single-text times, the baseline, ours, the
    alternatives. One text alone in-process and a lone client of the server see the same
    first ``--lone-texts`` texts, so that their medians compare the same work."""
    measured: dict = {"ceiling": {}, "single_text_ms": {}}
    wait_until_idle()
    for layout in CEILING_LAYOUTS:
        for batch_size in args.batch_sizes:
            rate = in_process_rate(subject, model_dir, texts, batch_size, layout, args.seconds)
            measured["ceiling"][f"{layout} batch {batch_size}"] = round(rate, 1)
            print(f"  ceiling {layout} batch {batch_size}: {rate:.1f} texts/s", flush=True)
    lone_texts = texts[: args.lone_texts]
    for threads in sorted({parse_layout(shipped_layout(subject))[1], CORES}):
        alone = single_text_time(subject, model_dir, lone_texts, threads, args.seconds)
        measured["single_text_ms"][str(threads)] = alone
        print(f"  one text alone, {threads} thread(s): {alone} ms", flush=True)
    lone_bodies = write_bodies(lone_texts, bodies.with_name("lone.jsonl"))
    measured["lone"] = {
        label: sweep(f"{label}, lone", urls[label], lone_bodies, key, [1], args.seconds)[0]
        for label in ("ours", *compared(args))
    }

    measured["baseline"] = sweep("flask", urls["baseline"], bodies, "-", args.clients, args.seconds)
    measured["ours"] = sweep("ours", urls["ours"], bodies, key, args.clients, args.seconds)
    saturated = best(measured["ours"])
    if args.texts_per_request > 1:
        grouped = write_bodies(texts, bodies.with_name("grouped.jsonl"), args.texts_per_request)
        label = f"ours, {args.texts_per_request} texts per request"
        row = sweep(label, urls["ours"], grouped, key, [saturated["clients"]], args.seconds)[0]
        measured["grouped"] = {
            **row,
            "texts_per_request": args.texts_per_request,
            "texts_per_s": round(row["requests_per_s"] * args.texts_per_request, 1),
        }
    half = saturated["requests_per_s"] / 2
    wait_until_idle()
    connections = open_loop_connections(half, measured["lone"]["ours"]["p50_ms"] / 1000)
    result = run_wrk(urls["ours"], bodies, key, connections, args.seconds, half)
    measured["open_loop_half"] = load_row(result, offered_per_s=round(half, 1))
    print(f"  ours, open loop at {half:.1f}/s: {measured['open_loop_half']}", flush=True)
    measured["layouts"] = {
        label.removeprefix("layout "): sweep(
            label, url, bodies, key, [saturated["clients"]], args.seconds
        )[0]
        for label, url in urls.items()
        if label.startswith("layout ")
    }
    # Accelerated builds and other weights (the key predates --weights; reports keep it).
    measured["accelerated"] = {
        label: sweep(label, urls[label], bodies, key, args.clients, args.seconds)
        for label in compared(args)
    }
    measured["reviews"] = {
        str(sentences): measure_reviews(
            subject, model_dir, sentences, bodies.parent, urls, key, args
        )
        for sentences in args.review_sentences
    }
    return measured


def measure_reviews(
    subject: Subject,
    model_dir: Path,
    sentences: int,
    scratch: Path,
    urls: dict[str, str],
    key: str,
    args: argparse.Namespace,
) -> dict:
    """Reviews of ``sentences`` sentences: the in-process ceiling in the shipped layout, and
    the shipped handler and the whole-text one served, in sentences/s."""
    reviews = subject.reviews_of(sentences, args.texts)
    bodies = write_bodies(reviews, scratch / f"reviews-{sentences}.jsonl")
    # A full batch of 20-sentence reviews takes seconds: each row lasts long enough for
    # several, or the requests in flight when it stops are a large share of its count.
    seconds = args.seconds * max(1.0, sentences / 5)
    wait_until_idle()
    ceiling = max(
        in_process_rate(subject, model_dir, reviews, batch_size, shipped_layout(subject), seconds)
        for batch_size in args.batch_sizes
    )
    measured = {"ceiling_sentences_per_s": round(ceiling * sentences, 1)}
    print(f"  {sentences}-sentence reviews, ceiling: {ceiling * sentences:.1f} sentences/s")
    for label in ("ours", WHOLE_TEXT):
        rows = sweep(
            f"{label}, {sentences}-sentence reviews",
            urls[label],
            bodies,
            key,
            args.clients,
            seconds,
        )
        measured[label] = {
            "sentences_per_s": round(best(rows)["requests_per_s"] * sentences, 1),
            "lone_p50_ms": round(at_clients(rows, 1)["p50_ms"], 1),
            "errors": sum(row["errors"] for row in rows),
            "rows": rows,
        }
    return measured


def compared(args: argparse.Namespace) -> list[str]:
    """The rows served beside ours at every client count: accelerated builds, other weights."""
    return [*args.accelerations, *(label for label, _ in args.weights)]


def warm_up(urls: dict[str, str], bodies: Path, key: str, args: argparse.Namespace) -> None:
    """The frontend's JIT compiler takes a minute of CPU on 2 cores; the workers' first
    batches allocate. Neither belongs in a measurement."""
    for label, url in urls.items():
        run_wrk(url, bodies, "-" if label == "baseline" else key, max(args.clients), args.warmup)


def run(args: argparse.Namespace, subject: Subject, scratch: Path) -> dict:
    texts = subject.texts(args.texts)
    bodies = write_bodies(texts, scratch / "bodies.jsonl")
    model_dir = subject.model_dir(scratch)
    store = scratch / "store"
    store.mkdir()
    variants = build_variants(subject, args, store)
    report: dict = {
        "machine": machine(),
        "model": subject.name,
        "shipped_layout": shipped_layout(subject),
        "args": {name: str(value) for name, value in vars(args).items()},
        "rounds": [],
    }
    with flask_baseline(subject, model_dir) as baseline_url:
        server = start_server(
            scratch / "ts", store, ",".join(f"{m}.mar" for m in variants.values())
        )
        try:
            client = server.client()
            urls = {label: client.predict_url(model) for label, model in variants.items()}
            urls["baseline"] = baseline_url
            warm_up(urls, bodies, client.key("inference"), args)
            for number in range(1, args.rounds + 1):
                print(f"Round {number} of {args.rounds}:", flush=True)
                # Keys expire (token_expiration_min); a fresh one lasts the round.
                client.renew_key("inference")
                report["rounds"].append(
                    measure_round(
                        subject, model_dir, texts, bodies, urls, client.key("inference"), args
                    )
                )
        finally:
            server.stop()
    report["targets"] = targets(report)
    return report


# ----- targets ------------------------------------------------------------------------------


def round_targets(measured: dict, shipped: str) -> dict:
    """Every ratio of issue 7 within one round, with the numbers behind it."""
    ceiling = max(measured["ceiling"].values())
    ours, baseline = best(measured["ours"]), best(measured["baseline"])
    same_clients = at_clients(measured["baseline"], ours["clients"])
    lone = measured["lone"]["ours"]
    alone = measured["single_text_ms"][str(parse_layout(shipped)[1])]
    open_loop = measured["open_loop_half"]
    alternatives = measured["layouts"]
    result = {
        "ceiling_texts_per_s": ceiling,
        "ours_saturation_per_s": ours["requests_per_s"],
        "baseline_best_per_s": baseline["requests_per_s"],
        "served_over_ceiling": round(ours["requests_per_s"] / ceiling, 2),
        "ours_over_baseline": round(ours["requests_per_s"] / baseline["requests_per_s"], 2),
        "p99_ms_at_saturation_clients": {
            "clients": ours["clients"],
            "ours": round(ours["p99_ms"], 1),
            "baseline": round(same_clients["p99_ms"], 1),
        },
        "lone_request_p50_ms": round(lone["p50_ms"], 1),
        "lone_request_budget_ms": round(alone["p50"] + 10, 1),
        "lone_request_budget_ms_all_cores": round(
            measured["single_text_ms"][str(CORES)]["p50"] + 10, 1
        ),
        "half_load_p99_over_p50": round(open_loop["p99_ms"] / max(open_loop["p50_ms"], 1e-9), 2),
        "one_text_alone_p99_over_p50": round(alone["p99"] / alone["p50"], 2),
        "half_load_served_of_offered": round(
            open_loop["requests_per_s"] / open_loop["offered_per_s"], 2
        ),
    }
    if "grouped" in measured:
        result["grouped_texts_per_s"] = measured["grouped"]["texts_per_s"]
        result["grouped_over_ceiling"] = round(measured["grouped"]["texts_per_s"] / ceiling, 2)
    if alternatives:
        runner_up = max(alternatives, key=lambda layout: alternatives[layout]["requests_per_s"])
        result["shipped_layout_over_best_alternative"] = {
            "alternative": runner_up,
            "ratio": round(ours["requests_per_s"] / alternatives[runner_up]["requests_per_s"], 2),
        }
    for sentences, row in measured.get("reviews", {}).items():
        ours, whole = row["ours"], row[WHOLE_TEXT]
        result[f"reviews_of_{sentences}"] = {
            "served_sentences_per_s": ours["sentences_per_s"],
            "served_over_ceiling": round(
                ours["sentences_per_s"] / row["ceiling_sentences_per_s"], 2
            ),
            "lone_review_p50_ms": ours["lone_p50_ms"],
            "whole_text_sentences_per_s": whole["sentences_per_s"],
            "whole_text_lone_review_p50_ms": whole["lone_p50_ms"],
        }
    for engine, rows in measured["accelerated"].items():
        accelerated = best(rows)
        result[f"{engine}_over_baseline"] = round(
            accelerated["requests_per_s"] / baseline["requests_per_s"], 2
        )
        result[f"{engine}_lone_request_p50_ms"] = round(measured["lone"][engine]["p50_ms"], 1)
    return result


def targets(report: dict) -> dict:
    """Each round's ratios, and the median of every number over the rounds."""
    per_round = [round_targets(measured, report["shipped_layout"]) for measured in report["rounds"]]
    return {"rounds": per_round, "median": median_of(per_round)}


def median_of(rounds: list) -> object:
    first = rounds[0]
    if isinstance(first, dict):
        return {key: median_of([r[key] for r in rounds]) for key in first}
    if isinstance(first, (int, float)):
        return round(statistics.median(rounds), 2)
    return statistics.mode(rounds)


# ----- start-up and memory of the default bundle ----------------------------------------------


def footprint(run_dir: Path) -> dict:
    """Start-up time and memory of the default bundle (config.properties, model_store/)."""
    load_models = read_properties(REPO / "config.properties")["load_models"]
    started = time.perf_counter()
    server = start_server(run_dir, MODEL_STORE, load_models)
    startup_s = time.perf_counter() - started
    try:
        return {"models": load_models, "startup_s": round(startup_s, 1), **memory(server)}
    finally:
        server.stop()


def memory(server: LocalTorchServe) -> dict:
    """Resident memory (RSS, and PSS: shared pages counted once) of the frontend and of each
    worker, and of the three separate models (sentiment, toxicity, absa) with one worker each."""
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
    rss = {name: [info.rss >> 20 for info in infos] for name, infos in usage.items()}
    pss = {name: [info.pss >> 20 for info in infos] for name, infos in usage.items()}
    one_each = [name for name in ("frontend", *THREE_MODELS) if name in rss]
    return {
        "workers_rss_mib": rss,
        "workers_pss_mib": pss,
        "total_rss_mib": sum(map(sum, rss.values())),
        "total_pss_mib": sum(map(sum, pss.values())),
        "three_models_one_worker_each_rss_mib": sum(rss[name][0] for name in one_each),
        "three_models_one_worker_each_pss_mib": sum(pss[name][0] for name in one_each),
    }


# ----- report -------------------------------------------------------------------------------


def served_rows(report: dict) -> list[tuple[str, object, list[dict]]]:
    """(server, clients, that row in every round) for every load row of a report."""
    rounds = report["rounds"]
    rows = []
    for server, key in (("Flask tutorial", "baseline"), ("ours", "ours")):
        for index, row in enumerate(rounds[0][key]):
            rows.append((server, row["clients"], [r[key][index] for r in rounds]))
    for engine, first in rounds[0]["accelerated"].items():
        for index, row in enumerate(first):
            rows.append(
                (
                    f"ours, {engine}",
                    row["clients"],
                    [r["accelerated"][engine][index] for r in rounds],
                )
            )
    if "grouped" in rounds[0]:
        per_request = rounds[0]["grouped"]["texts_per_request"]
        rows.append(
            (
                f"ours, {per_request} texts per request (texts/s = {per_request} x requests/s)",
                rounds[0]["grouped"]["clients"],
                [r["grouped"] for r in rounds],
            )
        )
    for label in rounds[0]["lone"]:
        server = "ours" if label == "ours" else f"ours, {label}"
        rows.append(
            (
                f"{server}, lone client",
                "1 (same texts as alone)",
                [r["lone"][label] for r in rounds],
            )
        )
    offered = statistics.median(r["open_loop_half"]["offered_per_s"] for r in rounds)
    rows.append(
        (
            "ours, open loop at half of saturation",
            f"{offered:.0f}/s offered",
            [r["open_loop_half"] for r in rounds],
        )
    )
    shipped = report["shipped_layout"]
    rows.append((f"layout {shipped} (shipped)", "saturation", [best(r["ours"]) for r in rounds]))
    for layout in rounds[0]["layouts"]:
        rows.append((f"layout {layout}", "saturation", [r["layouts"][layout] for r in rounds]))
    return rows


def markdown(report: dict) -> str:
    """The tables of a report: ceiling, served rows (medians over rounds), targets."""
    rounds = report["rounds"]
    lines = ["| in-process ceiling | texts/s (median) | rounds |", "|---|---|---|"]
    for label in rounds[0]["ceiling"]:
        values = [r["ceiling"][label] for r in rounds]
        lines.append(
            f"| {label} | {statistics.median(values):.1f} | {', '.join(map(str, values))} |"
        )
    lines += [
        "",
        "| server | clients | requests/s (median) | rounds | p50 ms | p90 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for server, clients, values in served_rows(report):
        rps = [v["requests_per_s"] for v in values]
        lines.append(
            f"| {server} | {clients} | {statistics.median(rps):.1f} | "
            f"{', '.join(f'{v:.0f}' for v in rps)} | "
            + " | ".join(
                f"{statistics.median(v[k] for v in values):.1f}"
                for k in ("p50_ms", "p90_ms", "p99_ms")
            )
            + f" | {sum(v['errors'] for v in values)} |"
        )
    lines += ["", "| number | median | rounds |", "|---|---|---|"]
    per_round = [flatten(r) for r in report["targets"]["rounds"]]
    for name, value in flatten(report["targets"]["median"]).items():
        lines.append(f"| {name} | {value} | {', '.join(str(r[name]) for r in per_round)} |")
    return "\n".join(lines)


def flatten(numbers: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}"""
    flat = {}
    for key, value in numbers.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# ----- command line -------------------------------------------------------------------------


def weights_option(value: str) -> tuple[str, Path]:
    label, separator, directory = value.partition("=")
    if not separator or not label or not Path(directory).is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is not LABEL=DIRECTORY")
    return label, Path(directory)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SUBJECTS), default="sentiment")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10, help="per measured row")
    parser.add_argument("--warmup", type=float, default=10, help="per server, before round 1")
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--lone-texts", type=int, default=40, help="for the lone-request target")
    parser.add_argument(
        "--texts-per-request",
        type=int,
        default=1,
        help="above 1: also a row of {'texts': [...]} requests (client-side batches)",
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--layouts", nargs="*", default=list(SERVED_LAYOUTS))
    parser.add_argument(
        "--accelerations",
        nargs="*",
        help="build_mar.sh --accelerate engines (default: the model's)",
    )
    parser.add_argument(
        "--review-sentences",
        type=int,
        nargs="*",
        default=[],
        help="sentiment: also reviews of exactly these many sentences, served whole or not",
    )
    parser.add_argument(
        "--weights",
        type=weights_option,
        nargs="*",
        default=[],
        metavar="LABEL=DIR",
        help="other weights of a one-model task, served beside ours",
    )
    parser.add_argument("--footprint", action="store_true", help="start-up and memory only")
    parser.add_argument("--json", type=Path, help="write the full report here")
    parser.add_argument("--render", type=Path, help="only print the tables of a --json report")
    args = parser.parse_args()
    if args.accelerations is None:
        args.accelerations = list(SUBJECTS[args.model].accelerations)
    return args


def main() -> None:
    args = parse_args()
    if args.render:
        report = json.loads(args.render.read_text())
    else:
        with tempfile.TemporaryDirectory(prefix="bench-serving-") as scratch:
            if args.footprint:
                report = {"machine": machine(), "footprint": footprint(Path(scratch) / "ts")}
                print(json.dumps(report, indent=2))
                if args.json:
                    args.json.write_text(json.dumps(report, indent=2) + "\n")
                return
            report = run(args, SUBJECTS[args.model], Path(scratch))
    print(markdown(report))
    print(json.dumps(report["targets"]["median"], indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
