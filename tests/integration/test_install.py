"""The package as a user installs it: a new virtual environment, ``pip install``, no checkout.

Plain ``pip install .`` gives the HTTP clients and the command line; the ``client`` extra adds
gRPC. Neither installs torch, and both talk to a real TorchServe (the small model's).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from review_analysis.paths import REPO
from review_analysis.torchserve import LocalTorchServe

# What a source distribution of the package holds (pyproject.toml's package-dir).
SOURCES = ("pyproject.toml", "README.md", "src", "handlers")


def run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what the package is built from, so a build leaves nothing in the checkout."""
    root = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, root / name)
    return root


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment, run from outside the checkout."""
    path = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", path)
    return path


def installed(venv: Path) -> set[str]:
    listing = json.loads(run(venv / "bin" / "python", "-m", "pip", "list", "--format", "json"))
    return {package["name"].lower() for package in listing}


def test_plain_install_gives_the_command_line_without_torch(venv: Path, source: Path):
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", source, cwd=venv)
    assert "torch" not in installed(venv)
    shown = run(venv / "bin" / "review-analysis", "--help", cwd=venv)
    for command in ("predict", "score", "server", "split", "promote", "sagemaker", "train"):
        assert f"    {command}" in shown


def test_client_extra_talks_to_a_server_over_http_asyncio_and_grpc(
    venv: Path, source: Path, tiny_server: LocalTorchServe
):
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", f"{source}[client]", cwd=venv)
    assert "torch" not in installed(venv) and "grpcio" in installed(venv)
    script = textwrap.dedent(
        """
        import asyncio, json, sys
        from review_analysis import AsyncReviewClient, GrpcReviewClient, ReviewClient

        inference, management, grpc_inference, grpc_management, key_file = sys.argv[1:]
        with ReviewClient(inference, management, key_file) as client:
            http = client.predict("sentiment", ["Great food", "Cold soup"])

        async def main():
            async with AsyncReviewClient(inference, management, key_file) as client:
                return await client.predict("sentiment", ["Great food", "Cold soup"])

        asynchronous = asyncio.run(main())
        with GrpcReviewClient(grpc_inference, grpc_management, management, key_file) as client:
            grpc = client.predict("sentiment", ["Great food", "Cold soup"])
        print(json.dumps([http, asynchronous, grpc]))
        """
    )
    properties = tiny_server.properties
    answers = json.loads(
        run(
            venv / "bin" / "python",
            "-c",
            script,
            properties["inference_address"],
            properties["management_address"],
            tiny_server.grpc_target("inference"),
            tiny_server.grpc_target("management"),
            tiny_server.key_file,
            cwd=venv,
        )
    )
    with tiny_server.client() as client:
        expected = client.predict("sentiment", ["Great food", "Cold soup"])
    assert answers == [expected] * 3
    predicted = run(
        venv / "bin" / "review-analysis",
        "predict",
        "--run-dir",
        tiny_server.run_dir,
        "--inference-url",
        properties["inference_address"],
        "--management-url",
        properties["management_address"],
        "Great food",
        cwd=venv,
    )
    assert json.loads(predicted) == expected["results"][0]
