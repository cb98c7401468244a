"""README steps followed literally, against the default models: each block is read from
README.md, so the test fails when the README drifts from what works."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.torchserve import REPO

pytestmark = pytest.mark.real_model


def code_block(language: str, containing: str) -> str:
    """The README's first ``language`` code block that contains ``containing``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    matching = [block for block in blocks if containing in block]
    assert matching, f"README.md has no {language} block with {containing!r}"
    return matching[0]


def test_grpc_example_runs(real_server):
    source = code_block("python", "GrpcReviewClient()")
    with real_server.grpc_client() as client:
        # The block as written, with the client of this test's server instead of the default.
        calls = [
            line.strip().split("  #")[0]
            for line in source.splitlines()
            if line.strip() and not line.startswith(("from ", "with "))
        ]
        answers = [eval(call, {"client": client}) for call in calls]
    assert answers[0] == {"status": "Healthy"}
    assert len(answers[1]["results"]) == 2
    assert answers[2]["model"]["name"] == "sentiment"


def test_file_scoring_example_runs(real_server, tmp_path: Path):
    commands = [
        shlex.split(command)
        for command in code_block("bash", "scripts.score_file").replace("\\\n", " ").splitlines()
    ]
    assert len(commands) == 2
    server = ["--run-dir", str(real_server.run_dir)]
    server += ["--inference-url", real_server.properties["inference_address"]]
    server += ["--management-url", real_server.properties["management_address"]]
    (tmp_path / "data").symlink_to(REPO / "data")  # the README's paths, relative to the repo
    for command in commands:
        assert command[0] == ".venv/bin/python"
        finished = subprocess.run(
            [sys.executable, *command[1:], *server, "--no-progress"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert finished.returncode == 0, finished.stdout + finished.stderr
    with (tmp_path / "scored.csv").open() as scored:
        rows = list(csv.DictReader(scored))
    assert len(rows) == 12 and all(row["label"] and not row["error"] for row in rows)
    toxic = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert len(toxic) == 6 and any(row["toxic"] for row in toxic)
