"""README steps followed literally, against the default models: each block is read from
README.md, so the test fails when the README drifts from what works.

Where the README's commands are run: the set-up commands by ``.ci/run`` and ``serve.sh``,
the operator block by ``test_ops.py``, ``build_mar.sh`` by every fixture that packs archives,
and every other block here.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from review_analysis import AsyncReviewClient
from review_analysis.paths import REPO
from review_analysis.torchserve import VENV_BIN, LocalTorchServe

pytestmark = pytest.mark.real_model


def code_blocks(language: str, containing: str) -> list[str]:
    """The README's ``language`` code blocks that contain ``containing``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    matching = [block for block in blocks if containing in block]
    assert matching, f"README.md has no {language} block with {containing!r}"
    return matching


def code_block(language: str, containing: str) -> str:
    return code_blocks(language, containing)[0]


def calls(source: str) -> list[str]:
    """The expressions of a README Python block, without imports, ``with`` lines, comments."""
    return [
        line.strip().split("  #")[0]
        for line in source.splitlines()
        if line.strip() and not line.startswith(("from ", "with "))
    ]


def cli_commands(block: str) -> list[list[str]]:
    """The ``review-analysis`` command lines of a shell block, continuation lines joined."""
    lines = [shlex.split(line) for line in block.replace("\\\n", " ").splitlines()]
    return [words for words in lines if words and words[0].endswith("review-analysis")]


def server_options(server: LocalTorchServe) -> list[str]:
    options = ["--run-dir", str(server.run_dir)]
    options += ["--inference-url", server.properties["inference_address"]]
    options += ["--management-url", server.properties["management_address"]]
    return options


def run_cli(words: list[str], server: LocalTorchServe, cwd: Path) -> str:
    """A README command line, with this test's server in place of the default one."""
    command, *arguments = words[1:]
    finished = subprocess.run(
        [VENV_BIN / "review-analysis", command, *server_options(server), *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout


def test_python_client_example_runs(real_server):
    with real_server.client() as client:
        answers = [
            eval(call, {"client": client}) for call in calls(code_block("python", "ReviewClient()"))
        ]
    assert answers[0]["model"]["name"] == "sentiment" and "label" in answers[0]
    assert len(answers[1]["results"]) == 2
    assert answers[2]["model"]["version"] == "1.0"


def test_async_client_answers_like_the_blocking_one(real_server):
    async def predict() -> dict:
        async with AsyncReviewClient(
            real_server.properties["inference_address"],
            real_server.properties["management_address"],
            real_server.key_file,
        ) as client:
            return await client.predict("sentiment", ["Great food", "Cold soup"])

    with real_server.client() as client:
        assert asyncio.run(predict()) == client.predict("sentiment", ["Great food", "Cold soup"])


def test_grpc_example_runs(real_server):
    with real_server.grpc_client() as client:
        # The block as written, with the client of this test's server instead of the default.
        answers = [
            eval(call, {"client": client})
            for call in calls(code_block("python", "GrpcReviewClient()"))
        ]
    assert answers[0] == {"status": "Healthy"}
    assert len(answers[1]["results"]) == 2
    assert answers[2]["model"]["name"] == "sentiment"


def test_curl_example_runs(real_server, tmp_path: Path):
    """The curl block in a shell, from a directory laid out like the checkout."""
    (tmp_path / ".torchserve").symlink_to(real_server.run_dir)
    script = code_block("bash", "curl").replace(
        "http://127.0.0.1:8080", real_server.properties["inference_address"]
    )
    finished = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace("\\\n", " ").replace("\n", "\necho\n")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    answers = [json.loads(line) for line in finished.stdout.splitlines() if line.strip()]
    assert [answer["label"] for answer in answers] == ["positive", "negative"]


def test_shell_examples_run(real_server, tmp_path: Path):
    """Every ``review-analysis`` line of the "From the shell" block: predict and score."""
    commands = cli_commands(code_block("bash", "review-analysis score"))
    assert [words[1] for words in commands] == ["predict", "predict", "score", "score"]
    (tmp_path / "data").symlink_to(REPO / "data")  # the README's paths, relative to the repo
    english, german = (json.loads(run_cli(words, real_server, tmp_path)) for words in commands[:2])
    assert [r["label"] for r in english["results"]] == ["positive", "negative"]
    assert german["aspects"]["food"]["polarity"] == "positive"
    for words in commands[2:]:
        run_cli([*words, "--no-progress"], real_server, tmp_path)
    with (tmp_path / "scored.csv").open() as scored:
        rows = list(csv.DictReader(scored))
    assert len(rows) == 12 and all(row["label"] and not row["error"] for row in rows)
    toxic = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert len(toxic) == 6 and any(row["toxic"] for row in toxic)


def test_server_commands_of_the_readme_are_the_ones_tested():
    """``server status`` and ``server stop`` (and ``start``, in serve.sh) run in
    test_privileges.py against a real server; here, that the README shows those."""
    commands = cli_commands(code_block("bash", "review-analysis server status"))
    assert [words[1:] for words in commands] == [["server", "status"], ["server", "stop"]]
    serve = (REPO / "scripts" / "serve.sh").read_text()
    assert "review-analysis server start" in serve and "review-analysis predict" in serve


def test_the_sentiment_answer_shown_is_what_the_model_answers(real_server):
    """The README's sentiment example: its sentences sent as one review come back with the
    verdicts shown (scores move a little whenever the model is retrained)."""
    shown = json.loads(code_block("json", "The lobby is stunning."))
    text = " ".join(sentence["text"] for sentence in shown["sentences"])
    with real_server.client() as client:
        answer = client.predict("sentiment", text)
    assert answer["label"] == shown["label"]
    assert [(s["text"], s["label"]) for s in answer["sentences"]] == [
        (s["text"], s["label"]) for s in shown["sentences"]
    ]


def test_the_toxicity_answer_shown_is_what_the_model_answers(real_server):
    """The README's toxicity example: the same sentences come back with the flags shown and
    the offensive one over its threshold on the label shown."""
    shown = json.loads(code_block("json", "I know where you live"))
    text = " ".join(sentence["text"] for sentence in shown["sentences"])
    with real_server.client() as client:
        answer = client.predict("toxicity", text)
    assert answer["toxic"] is shown["toxic"]
    assert [(s["text"], s["toxic"]) for s in answer["sentences"]] == [
        (s["text"], s["toxic"]) for s in shown["sentences"]
    ]
    assert list(answer["labels"]) == list(shown["labels"])
