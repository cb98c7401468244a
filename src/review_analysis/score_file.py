"""Score a file of reviews (CSV or JSONL) against a running server.

    review-analysis score --input reviews.csv --output scored.csv
    review-analysis score --model review --input reviews.jsonl --field body \\
        --output scored.jsonl --concurrency 4 --batch-size 32

Every input row gives one output row, in input order: the row's own columns plus the answer
(``label``/``score`` for sentiment, ``toxic``/``toxicity_scores`` for toxicity, both for
review, ``aspects`` for absa) or an ``error``. Texts go in batches (``{"texts": [...]}``)
from concurrent threads; the client retries 5xx and connection errors with back-off. A row
without text, or one the server refuses, fails alone. A summary ends the run; the exit
status is 1 when any row failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

import httpx
from tqdm import tqdm

from review_analysis.client import (
    ReviewClient,
    ServerError,
    add_server_arguments,
    client_from_arguments,
)

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
ANSWER_COLUMNS = {
    "sentiment": ["label", "score"],
    "toxicity": ["toxic", "toxicity_scores"],
    "review": ["label", "score", "toxic", "toxicity_scores"],
    "absa": ["aspects"],
}
ALL_ANSWER_COLUMNS = list(dict.fromkeys(c for cs in ANSWER_COLUMNS.values() for c in cs))


@dataclass
class Row:
    fields: dict[str, Any]
    text: str | None
    error: str | None = None


@dataclass
class Summary:
    rows: int = 0
    failed: int = 0
    checked_toxicity: int = 0
    flagged: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, output: dict[str, Any]) -> None:
        self.rows += 1
        if output.get("error"):
            self.failed += 1
            self.errors[output["error"]] += 1
            return
        if "label" in output:
            self.labels[output["label"]] += 1
        if "toxic" in output:
            self.checked_toxicity += 1
            self.flagged += bool(output["toxic"])
        for aspect, answer in (output.get("aspects") or {}).items():
            self.labels[f"{aspect}:{answer['polarity']}"] += 1

    def report(self, seconds: float) -> str:
        rate = self.rows / max(seconds, 1e-9)
        headline = f"{self.rows} rows in {seconds:.1f} s ({rate:.1f} rows/s): "
        headline += f"{self.rows - self.failed} scored, {self.failed} failed"
        if self.checked_toxicity:
            headline += f", {self.flagged} flagged toxic"
        lines = [headline]
        lines += [f"  {label}: {count}" for label, count in sorted(self.labels.items())]
        lines += [f"  failed ({count}x): {error}" for error, count in self.errors.most_common(5)]
        return "\n".join(lines)


# ----- reading ------------------------------------------------------------------------------


def file_format(path: Path, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"Cannot tell the format of {path}: use .csv or .jsonl") from None


def read_rows(path: Path, fmt: str, text_field: str) -> Iterator[Row]:
    """The input's rows, streamed; a row without usable text carries the reason."""
    # utf-8-sig: spreadsheet exports start with a byte-order mark that would rename column one.
    with path.open(newline="", encoding="utf-8-sig") as lines:
        if fmt == "csv":
            for record in csv.DictReader(lines):
                yield to_row(record, text_field)
            return
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                yield Row({"line": number}, None, f"line {number}: malformed JSON ({error.msg})")
                continue
            if isinstance(record, dict):
                yield to_row(record, text_field)
            else:
                yield Row({"line": number}, None, f"line {number}: not a JSON object")


def to_row(record: dict[str, Any], text_field: str) -> Row:
    text = record.get(text_field)
    if not isinstance(text, str) or not text.strip():
        return Row(record, None, f'no text in field "{text_field}"')
    return Row(record, text)


def batched(items: Iterable[Row], size: int) -> Iterator[list[Row]]:
    iterator = iter(items)
    return iter(lambda: list(islice(iterator, size)), [])


# ----- scoring ------------------------------------------------------------------------------


def answer_columns(result: dict[str, Any]) -> dict[str, Any]:
    """The columns of one answer, by its shape (so any model of the bundle fits)."""
    if "sentiment" in result and "toxicity" in result:
        return answer_columns(result["sentiment"]) | answer_columns(result["toxicity"])
    columns = {}
    if "label" in result:
        columns |= {"label": result["label"], "score": result["score"]}
    if "toxic" in result:
        columns |= {"toxic": result["toxic"], "toxicity_scores": result["labels"]}
    if "aspects" in result:
        columns["aspects"] = result["aspects"]
    return columns


def answer_columns_of(model: str) -> list[str]:
    """By task name, so that "sentiment-ab" or "sentiment-large" get sentiment's columns."""
    for task, columns in ANSWER_COLUMNS.items():
        if model.startswith(task):
            return columns
    return ALL_ANSWER_COLUMNS


def error_type(error: ServerError) -> str | None:
    """The handler's error type ("InvalidInput", "TooManyTexts", ...), if it answered one."""
    body = error.body.get("error") if isinstance(error.body, dict) else None
    return body.get("type") if isinstance(body, dict) else None


def failure(error: Exception) -> str:
    if isinstance(error, ServerError) and error_type(error):
        return f"HTTP {error.status} {error_type(error)}: {error.body['error'].get('message')}"
    return f"{type(error).__name__}: {error}"


class Scorer:
    """Scores batches of rows with one shared (thread-safe) client."""

    def __init__(self, client: ReviewClient, model: str, version: str | None):
        self.client = client
        self.model = model
        self.version = version

    def score(self, rows: list[Row]) -> list[dict[str, Any]]:
        texts = [row.text for row in rows if row.error is None]
        try:
            answers = self.client.predict(self.model, texts, self.version) if texts else {}
        except (ServerError, httpx.HTTPError) as error:
            if not isinstance(error, ServerError) or error.status >= 500:
                return [self.output(row, error=failure(error)) for row in rows]
            if error.status == 404 or error_type(error) == "TooManyTexts":
                raise  # an unknown model or too large a batch: every batch would fail
            # One refused text fails the whole request: find it by sending each alone.
            return [self.score_alone(row) for row in rows]
        results = iter(answers.get("results", []))
        return [self.output(row, next(results) if row.error is None else None) for row in rows]

    def score_alone(self, row: Row) -> dict[str, Any]:
        if row.error is not None:
            return self.output(row)
        try:
            return self.output(row, self.client.predict(self.model, row.text, self.version))
        except (ServerError, httpx.HTTPError) as error:
            return self.output(row, error=failure(error))

    @staticmethod
    def output(
        row: Row, result: dict[str, Any] | None = None, error: str | None = None
    ) -> dict[str, Any]:
        answer = answer_columns(result) if result is not None else {}
        return {**row.fields, **answer, "error": error or row.error}


def scored_in_order(
    scorer: Scorer, batches: Iterable[list[Row]], concurrency: int
) -> Iterator[list[dict[str, Any]]]:
    """Batches scored by ``concurrency`` threads, yielded in input order.

    Only a window of batches is in flight, so memory stays flat for any file size.
    """
    with ThreadPoolExecutor(concurrency) as pool:
        pending: deque[Future[list[dict[str, Any]]]] = deque()
        for batch in batches:
            pending.append(pool.submit(scorer.score, batch))
            if len(pending) >= 2 * concurrency:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# ----- writing ------------------------------------------------------------------------------


class Writer:
    def __init__(self, out: TextIO, fmt: str, columns: list[str]):
        self.out = out
        self.csv = (
            csv.DictWriter(out, columns, restval="", extrasaction="ignore")
            if fmt == "csv"
            else None
        )
        if self.csv:
            self.csv.writeheader()

    def write(self, output: dict[str, Any]) -> None:
        if self.csv is None:
            self.out.write(json.dumps(output, ensure_ascii=False) + "\n")
            return
        self.csv.writerow({key: csv_value(value) for key, value in output.items()})


def csv_value(value: Any) -> Any:
    """Strings as they are; numbers, flags and nested answers as JSON; no value as empty."""
    if value is None or isinstance(value, str):
        return value or ""
    return json.dumps(value, ensure_ascii=False)


# ----- command line -------------------------------------------------------------------------


def score_file(
    client: ReviewClient,
    model: str,
    input_path: Path,
    output_path: Path,
    text_field: str = "text",
    version: str | None = None,
    output_format: str | None = None,
    concurrency: int = 4,
    batch_size: int = 32,
    progress: bool = True,
) -> Summary:
    in_format = file_format(input_path)
    out_format = file_format(output_path, output_format)
    first = next(read_rows(input_path, in_format, text_field), None)
    columns = list(first.fields) if first else []
    if in_format == "csv" and text_field not in columns:
        raise ValueError(f'{input_path} has no column "{text_field}" (columns: {columns})')
    columns += [c for c in answer_columns_of(model) if c not in columns]
    total = sum(1 for _ in read_rows(input_path, in_format, text_field))

    rows = read_rows(input_path, in_format, text_field)
    summary = Summary()
    scorer = Scorer(client, model, version)
    with (
        output_path.open("w", newline="", encoding="utf-8") as out,
        tqdm(total=total, unit="row", disable=not progress) as bar,
    ):
        writer = Writer(out, out_format, [*columns, "error"])
        for outputs in scored_in_order(scorer, batched(rows, batch_size), concurrency):
            for output in outputs:
                writer.write(output)
                summary.add(output)
            bar.update(len(outputs))
    return summary


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score a CSV or JSONL file of reviews.")
    parser.add_argument("--input", type=Path, required=True, help=".csv or .jsonl")
    parser.add_argument("--output", type=Path, required=True, help=".csv or .jsonl")
    parser.add_argument("--model", default="sentiment")
    parser.add_argument("--version", help="a model version; default: the server's default")
    parser.add_argument(
        "--field", "--column", dest="field", default="text", help="the text's column or key"
    )
    parser.add_argument("--format", choices=sorted(set(FORMATS.values())), help="output format")
    parser.add_argument("--concurrency", type=positive, default=4, help="requests in flight")
    parser.add_argument(
        "--batch-size",
        type=positive,
        default=32,
        help="texts per request, at most the model's max_texts_per_request (64; absa 32)",
    )
    parser.add_argument("--no-progress", action="store_true")
    add_server_arguments(parser)
    args = parser.parse_args(argv)

    started = time.monotonic()
    with client_from_arguments(args) as client:
        try:
            client.ping()  # a wrong address or key file stops here, not on every row
            summary = score_file(
                client,
                args.model,
                args.input,
                args.output,
                text_field=args.field,
                version=args.version,
                output_format=args.format,
                concurrency=args.concurrency,
                batch_size=args.batch_size,
                progress=not args.no_progress,
            )
        except (OSError, ValueError, ServerError, httpx.HTTPError) as error:
            parser.exit(2, f"score_file: {failure(error)}\n")
    print(summary.report(time.monotonic() - started))
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
