"""TorchServe never runs as root: the management key can register a model directory from
anywhere on disk, and TorchServe 0.12 then runs that directory's handler code, so the server's
account is what that key is worth."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from review_analysis.paths import REPO
from review_analysis.torchserve import VENV_BIN, LocalTorchServe, configure_server

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")

SERVER_ACCOUNT = "torchserve"  # created by scripts/setup.sh

# A model directory an attacker with the management key could leave anywhere: its handler
# answers with the account it runs as.
PROBE_HANDLER = """
import json, os

class Probe:
    def initialize(self, context):
        self.initialized = True

    def handle(self, data, context):
        return [json.dumps({"uid": os.getuid()}) for _ in data]
"""
PROBE_MANIFEST = {
    "runtime": "python",
    "model": {"modelName": "probe", "modelVersion": "1.0", "handler": "probe.py"},
    "archiverVersion": "0.12.0",
}


@pytest.fixture
def readable_dir() -> Iterator[Path]:
    """A directory the server account can read (pytest's own are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="privileges-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def server_command(server: LocalTorchServe, command: str) -> subprocess.CompletedProcess:
    arguments = ["--config", str(server.config_file), "--run-dir", str(server.run_dir)]
    arguments += ["--model-store", str(server.model_store)]
    return subprocess.run(
        [VENV_BIN / "review-analysis", "server", command, *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_server_started_by_root_runs_unprivileged_and_so_does_any_registered_code(
    readable_dir: Path, tiny_store: Path
):
    store = readable_dir / "store"
    store.mkdir()
    shutil.copy(tiny_store / "sentiment.mar", store)
    server = configure_server(readable_dir / "run", store, "sentiment.mar")
    started = server_command(server, "start")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"as {SERVER_ACCOUNT}" in started.stdout
        account = pwd.getpwnam(SERVER_ACCOUNT).pw_uid
        frontend = psutil.Process(server.pid())
        processes = [frontend, *frontend.children(recursive=True)]
        assert len(processes) >= 2
        assert {p.uids().real for p in processes} == {account}
        status = server_command(server, "status")
        assert status.returncode == 0, status.stderr
        assert "sentiment" in status.stdout

        # Registering a directory outside the model store cannot be refused by TorchServe
        # 0.12 (allowed_urls governs downloads only); what it runs, it runs unprivileged.
        probe = readable_dir / "probe"
        (probe / "MAR-INF").mkdir(parents=True)
        (probe / "MAR-INF" / "MANIFEST.json").write_text(json.dumps(PROBE_MANIFEST))
        (probe / "probe.py").write_text(PROBE_HANDLER)
        with server.client() as client:
            assert client.predict("sentiment", "still answers")["model"]["name"] == "sentiment"
            registered = client.request(
                "management",
                "POST",
                f"{client.management_url}/models",
                params={"url": str(probe), "initial_workers": 1, "synchronous": "true"},
            )
            assert registered.status_code == 200, registered.text
            answer = client.request("inference", "POST", client.predict_url("probe"), content=b"x")
            assert answer.json() == {"uid": account} and account != 0
    finally:
        stopped = server_command(server, "stop")
        assert stopped.returncode == 0, stopped.stderr
    assert server.pid() is None


def test_server_refuses_to_run_as_root(readable_dir: Path, tiny_store: Path):
    server = configure_server(readable_dir / "run", tiny_store, "sentiment.mar")
    command = [VENV_BIN / "review-analysis", "server", "start", "--user", "root"]
    command += ["--config", str(server.config_file), "--run-dir", str(server.run_dir)]
    refused = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "Refusing to run TorchServe as root" in refused.stderr
    assert server.pid() is None
