"""``review-analysis score`` on generated files of thousands of reviews, against real TorchServe."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter

import pytest

from review_analysis.client import ReviewClient
from review_analysis.score_file import main, score_file
from review_analysis.torchserve import free_ports
from tests.support.tiny_models import CORPUS

# The tiny model's own vocabulary, so that texts score differently.
WORDS = " ".join(CORPUS).lower().split()
ROWS = 2000
EMPTY = {17: "", 1234: "   "}  # row id -> a text the scorer must refuse alone


def reviews(count: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    return [
        {
            "id": i,
            "text": EMPTY.get(i, " ".join(rng.choices(WORDS, k=rng.randint(1, 12)))),
            "stars": rng.randint(1, 5),
        }
        for i in range(count)
    ]


def server_options(server) -> dict[str, str]:
    return {
        "--run-dir": str(server.run_dir),
        "--inference-url": server.properties["inference_address"],
        "--management-url": server.properties["management_address"],
    }


def command_line(options: dict[str, str]) -> list[str]:
    return [item for pair in options.items() for item in pair]


def assert_answers_match_the_server(client, rows: list[dict[str, object]]) -> None:
    """Answers sit on the row of their own text: rescore a sample and compare."""
    sample = random.Random(0).sample([r for r in rows if not r["error"]], 24)
    for start in range(0, len(sample), 8):
        part = sample[start : start + 8]
        results = client.predict("sentiment", [r["text"] for r in part])["results"]
        for row, result in zip(part, results, strict=True):
            assert row["label"] == result["label"], row["id"]
            assert float(row["score"]) == pytest.approx(result["score"], abs=1e-6), row["id"]


def test_csv_file_is_scored_in_order_with_failures_alone(tmp_path, tiny_server, capsys):
    source = tmp_path / "reviews.csv"
    with source.open("w", newline="") as out:
        writer = csv.DictWriter(out, ["id", "text", "stars"])
        writer.writeheader()
        writer.writerows(reviews(ROWS, seed=1))
    output = tmp_path / "scored.csv"

    options = ["--concurrency", "8", "--batch-size", "8", "--no-progress"]
    arguments = ["--input", str(source), "--output", str(output), *options]
    status = main([*arguments, *command_line(server_options(tiny_server))])

    assert status == 1  # the empty texts failed
    with output.open(newline="") as scored:
        rows = list(csv.DictReader(scored))
    assert [int(r["id"]) for r in rows] == list(range(ROWS))
    assert list(rows[0]) == ["id", "text", "stars", "label", "score", "error"]
    inputs = reviews(ROWS, seed=1)
    assert [(r["text"], int(r["stars"])) for r in rows] == [(r["text"], r["stars"]) for r in inputs]
    failed = {int(r["id"]): r["error"] for r in rows if r["error"]}
    assert failed == {i: 'no text in field "text"' for i in EMPTY}
    scored_rows = [r for r in rows if not r["error"]]
    assert {r["label"] for r in scored_rows} <= {"negative", "positive"}
    assert all(0.5 <= float(r["score"]) <= 1 for r in scored_rows)

    report = capsys.readouterr().out
    assert f"{ROWS} rows in" in report
    assert f"{ROWS - 2} scored, 2 failed\n" in report
    for label, count in Counter(r["label"] for r in scored_rows).items():
        assert f"  {label}: {count}" in report.splitlines()
    with tiny_server.client() as client:
        assert_answers_match_the_server(client, rows)


def test_jsonl_file_keeps_a_refused_text_to_its_own_row(tmp_path, tiny_server):
    records = reviews(1000, seed=2)
    records[500]["body"] = records[500].pop("text")  # this row has no "text" at all
    records[600]["text"] = "long " * 500  # over the test config's max_text_chars (2000): 413
    source = tmp_path / "reviews.jsonl"
    lines = [json.dumps(record) for record in records]
    lines.insert(700, "{not json")
    source.write_text("\n".join(lines) + "\n")
    output = tmp_path / "scored.jsonl"

    with tiny_server.client() as client:
        summary = score_file(
            client, "sentiment", source, output, concurrency=8, batch_size=8, progress=False
        )
        rows = [json.loads(line) for line in output.read_text().splitlines()]
        assert_answers_match_the_server(client, rows)

    assert len(rows) == len(lines)
    assert [r.get("id") for r in rows] == [r["id"] for r in records[:700]] + [None] + [
        r["id"] for r in records[700:]
    ]
    failed = {i: r["error"] for i, r in enumerate(rows) if r["error"]}
    assert failed.keys() == {17, 500, 600, 700}  # output row 700 is the broken line
    assert failed[500] == 'no text in field "text"'
    assert failed[600].startswith("HTTP 413 TextTooLong:")
    assert (
        failed[700]
        == "line 701: malformed JSON (Expecting property name enclosed in double quotes)"
    )
    assert summary.rows == len(rows)
    assert summary.failed == len(failed)
    assert summary.labels == Counter(r["label"] for r in rows if not r["error"])
    assert sum(summary.errors.values()) == summary.failed


def test_rows_fail_alone_when_the_server_goes_away(tmp_path, tiny_server):
    source = tmp_path / "reviews.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in reviews(10, seed=3)))
    output = tmp_path / "scored.csv"
    (closed_port,) = free_ports(1)
    client = ReviewClient(f"http://127.0.0.1:{closed_port}", key_file=tiny_server.key_file)

    with client:
        summary = score_file(client, "sentiment", source, output, progress=False)

    with output.open(newline="") as scored:
        rows = list(csv.DictReader(scored))
    assert [int(r["id"]) for r in rows] == list(range(10))
    assert all(r["error"].startswith("ConnectError:") for r in rows), rows[0]["error"]
    assert (summary.rows, summary.failed) == (10, 10)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--field": "body"}, 'has no column "body"'),
        ({"--model": "no-such-model"}, "HTTP 404"),
        ({"--batch-size": "9"}, "TooManyTexts"),
        ({"--inference-url": "http://127.0.0.1:{closed_port}"}, "ConnectError"),
        ({"--run-dir": "{tmp_path}"}, "No such file"),
    ],
)
def test_usage_errors_stop_at_once(tmp_path, tiny_server, capsys, change, message):
    source = tmp_path / "reviews.csv"
    source.write_text("id,text\n1,great food\n" + "2,cold soup\n" * 9)
    output = tmp_path / "out.csv"
    options = {"--input": str(source), "--output": str(output), **server_options(tiny_server)}
    (closed_port,) = free_ports(1)
    for option, value in change.items():
        options[option] = value.format(closed_port=closed_port, tmp_path=tmp_path)

    with pytest.raises(SystemExit) as exit_:
        main(["--no-progress", *command_line(options)])

    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.real_model
@pytest.mark.parametrize("model", ["sentiment", "toxicity", "review", "absa"])
def test_every_default_model_fills_its_columns(tmp_path, real_server, model):
    texts = {
        "absa": ["Das Essen war super lecker.", "Der Kellner war unfreundlich und langsam."],
    }.get(model, ["Lovely terrace, great food.", "The waiter is a fucking moron."])
    source = tmp_path / "reviews.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    output = tmp_path / "scored.csv"

    with real_server.client() as client:
        summary = score_file(client, model, source, output, progress=False)
        answers = client.predict(model, texts)["results"]
    with output.open(newline="") as scored:
        rows = list(csv.DictReader(scored))

    assert summary.failed == 0
    assert [int(r["id"]) for r in rows] == [0, 1]
    for row, answer in zip(rows, answers, strict=True):
        if model == "absa":
            assert json.loads(row["aspects"]) == answer["aspects"]
            assert list(row)[-2:] == ["aspects", "error"]
            continue
        sentiment = answer.get("sentiment", answer)
        toxicity = answer.get("toxicity", answer)
        if model != "toxicity":
            assert row["label"] == sentiment["label"]
            assert float(row["score"]) == pytest.approx(sentiment["score"], abs=1e-5)
        if model != "sentiment":
            assert json.loads(row["toxic"]) is toxicity["toxic"]
            assert json.loads(row["toxicity_scores"]).keys() == toxicity["labels"].keys()
    if model in ("toxicity", "review"):
        assert summary.flagged == sum(json.loads(r["toxic"]) for r in rows) == 1
