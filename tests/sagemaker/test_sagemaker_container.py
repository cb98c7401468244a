"""The SageMaker container contract, checked against a real TorchServe started by the image's
own entry point (``sagemaker/serve``) with the image's properties, moved to loopback ports.

SageMaker health-checks ``GET /ping`` and sends every InvokeEndpoint call to
``POST /invocations`` on port 8080, with the caller's body, ``Content-Type`` and ``Accept``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from review_analysis import registry
from review_analysis.archives import build_mar
from review_analysis.paths import MODEL_STORE, REPO
from review_analysis.torchserve import (
    LocalTorchServe,
    StartupError,
    configure_server,
    port_of,
    read_properties,
)
from tests.support.tiny_models import TEST_MODEL_CONFIG

CONTAINER_CONFIG = REPO / "sagemaker" / "config.properties"
SERVE = REPO / "sagemaker" / "serve"
DOCKERFILE = REPO / "Dockerfile"

# Shared with the local config.properties: the container must not drift from them.
SHARED_LIMITS = ("max_request_size", "max_response_size", "job_queue_size", "vmargs")


@dataclass
class Container:
    """``sagemaker/serve`` running in a run directory, as SageMaker would run the image."""

    process: subprocess.Popen
    server: LocalTorchServe

    @property
    def url(self) -> str:
        return self.server.properties["inference_address"]

    def invoke(self, path: str = "/invocations", **kwargs) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", timeout=30, **kwargs)

    def stop(self, timeout: float = 90) -> int:
        """What ``docker stop`` does: SIGTERM to the container's main process."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def run_serve(server: LocalTorchServe, *args: str, as_root: bool = True) -> subprocess.Popen:
    server.tmp_dir.mkdir(parents=True, exist_ok=True)
    env = {**server.environment(), "TS_CONFIG_FILE": str(server.config_file)}
    if as_root:  # the image runs as model-server; these tests may run as root (CI does)
        env["TS_SERVE_AS_ROOT"] = "1"
    with (server.run_dir / "torchserve.out").open("ab") as out:
        return subprocess.Popen(
            [str(SERVE), *args], cwd=server.run_dir, env=env, stdout=out, stderr=out
        )


def wait_for_models(container: Container, models: list[str], timeout: float = 240) -> None:
    """Ready means every model answers through the public port (``/ping`` says Healthy
    before the workers are up, and the container has no management key to ask)."""
    deadline = time.monotonic() + timeout
    pending = list(models)
    while pending:
        if container.process.poll() is not None:
            raise StartupError(
                f"serve exited with {container.process.returncode}.\n{container.server.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise StartupError(f"{pending} not ready.\n{container.server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if container.invoke(f"/models/{pending[0]}/invoke", json={"text": "ready?"}).is_success:
                pending.pop(0)
                continue
        time.sleep(0.5)


@contextlib.contextmanager
def serve_container(run_dir: Path, store: Path, models: list[str]) -> Iterator[Container]:
    load_models = read_properties(CONTAINER_CONFIG)["load_models"]
    # The image has log4j2.xml beside its config.properties, as the repository root has.
    local_vmargs = read_properties(REPO / "config.properties")["vmargs"]
    server = configure_server(
        run_dir, store, load_models, properties_file=CONTAINER_CONFIG, vmargs=local_vmargs
    )
    container = Container(run_serve(server, "serve"), server)
    try:
        wait_for_models(container, models)
        yield container
    finally:
        if container.process.poll() is None:
            container.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                container.process.wait(60)
        server.stop()
        server.kill_workers()


@pytest.fixture(scope="module")
def one_model_store(tmp_path_factory: pytest.TempPathFactory, tiny_store: Path) -> Path:
    store = tmp_path_factory.mktemp("sm-one")
    shutil.copy(tiny_store / "sentiment.mar", store)
    return store


@pytest.fixture(scope="module")
def two_model_store(
    tmp_path_factory: pytest.TempPathFactory, one_model_store: Path, tiny_model_dir: Path
) -> Path:
    store = tmp_path_factory.mktemp("sm-two")
    shutil.copy(one_model_store / "sentiment.mar", store)
    config = store.parent / "sm-model-config.yaml"
    config.write_text(TEST_MODEL_CONFIG)
    build_mar("polarity", "1.0", tiny_model_dir, "sentiment", store, config=str(config))
    return store


@pytest.fixture(scope="module")
def one_model(tmp_path_factory, one_model_store) -> Iterator[Container]:
    with serve_container(tmp_path_factory.mktemp("sm-run1"), one_model_store, ["sentiment"]) as c:
        yield c


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, two_model_store) -> Iterator[Container]:
    run_dir = tmp_path_factory.mktemp("sm-run2")
    with serve_container(run_dir, two_model_store, ["sentiment", "polarity"]) as container:
        yield container


# ----- the container's properties ---------------------------------------------------------


def test_only_inference_is_bound_publicly_and_only_on_sagemakers_port():
    properties = read_properties(CONTAINER_CONFIG)
    assert properties["inference_address"] == "http://0.0.0.0:8080"
    for name in ("management_address", "metrics_address"):
        assert properties[name].startswith("http://127.0.0.1:"), name
    for name in ("grpc_inference_address", "grpc_management_address"):
        assert properties[name] == "127.0.0.1", name
    assert properties["enable_model_api"] == "false"
    assert properties["enable_metrics_api"] == "false"
    assert re.fullmatch(properties["allowed_urls"], "https://example.com/x.mar") is None
    assert properties["disable_token_authorization"] == "true"
    assert properties["model_store"] == "/opt/ml/model"


def test_container_keeps_the_local_limits():
    container, local = (
        read_properties(CONTAINER_CONFIG, resolve_paths=False),
        read_properties(REPO / "config.properties", resolve_paths=False),
    )
    assert {k: container[k] for k in SHARED_LIMITS} == {k: local[k] for k in SHARED_LIMITS}


def test_the_local_token_protected_config_would_fail_sagemakers_health_check(tiny_server):
    """Why the container turns token authorization off: TorchServe wants a key even on /ping."""
    response = httpx.get(f"{tiny_server.properties['inference_address']}/ping")
    assert response.status_code == 400
    assert "Token Authorization failed" in response.text


# ----- one model: /invocations needs no selection ----------------------------------------


def test_ping_answers_without_a_key(one_model):
    response = httpx.get(f"{one_model.url}/ping")
    assert response.status_code == 200
    assert response.json() == {"status": "Healthy"}


@pytest.mark.parametrize(
    ("content_type", "body", "results"),
    [
        ("application/json", json.dumps({"text": "Great food"}), None),
        ("application/json", json.dumps({"texts": ["Great food", "Cold soup"]}), 2),
        ("text/plain", "Great food", None),
        ("text/plain; charset=utf-8", "Kalte Suppe, langsamer Service", None),
    ],
)
def test_invocations_answers_the_only_model(one_model, content_type, body, results):
    # InvokeEndpoint passes ContentType, Accept and CustomAttributes on as headers.
    headers = {
        "Content-Type": content_type,
        "Accept": "application/json",
        "X-Amzn-SageMaker-Custom-Attributes": "trace_id=42",
    }
    response = one_model.invoke(content=body.encode(), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    answers = answer["results"] if results else [answer]
    assert len(answers) == (results or 1)
    for result in answers:
        assert result["model"] == {"name": "sentiment", "version": "1.0"}
        assert set(result["scores"]) == {"negative", "positive"}


def test_invocations_bad_input_is_a_json_4xx(one_model):
    response = one_model.invoke(json={"text": "  "})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "InvalidInput"


def test_models_invoke_path_answers_too(one_model):
    response = one_model.invoke("/models/sentiment/invoke", json={"text": "Great food"})
    assert response.status_code == 200
    assert response.json()["model"]["name"] == "sentiment"


# ----- several models: the caller names one ----------------------------------------------


def test_invocations_without_a_model_name_is_refused(two_models):
    response = two_models.invoke(json={"text": "Great food"})
    assert response.status_code == 400
    assert response.json()["message"] == "Parameter model_name is required."


def test_sagemaker_target_model_header_does_not_select(two_models):
    """TorchServe ignores the multi-model endpoint header: MME is not supported."""
    headers = {"X-Amzn-SageMaker-Target-Model": "polarity"}
    response = two_models.invoke(json={"text": "Great food"}, headers=headers)
    assert response.status_code == 400


@pytest.mark.parametrize("model", ["sentiment", "polarity"])
def test_model_name_query_parameter_selects(two_models, model):
    response = two_models.invoke(params={"model_name": model}, json={"text": "Great food"})
    assert response.status_code == 200
    assert response.json()["model"]["name"] == model


@pytest.mark.parametrize("model", ["sentiment", "polarity"])
def test_model_name_form_field_selects_through_invoke_endpoint(two_models, model):
    """InvokeEndpoint has no query string; a form body carries the name and the request."""
    form = {"model_name": model, "data": json.dumps({"texts": ["Great food", "Cold soup"]})}
    response = two_models.invoke(data=form)
    assert response.status_code == 200, response.text
    assert [r["model"]["name"] for r in response.json()["results"]] == [model, model]


def test_models_invoke_path_selects(two_models):
    response = two_models.invoke("/models/polarity/invoke", json={"text": "Great food"})
    assert response.json()["model"]["name"] == "polarity"


def test_unknown_model_is_404(two_models):
    response = two_models.invoke(params={"model_name": "nope"}, json={"text": "Great food"})
    assert response.status_code == 404


# ----- the entry point -------------------------------------------------------------------


def test_sigterm_stops_torchserve_and_its_workers(tmp_path, one_model_store):
    with serve_container(tmp_path / "run", one_model_store, ["sentiment"]) as container:
        assert container.stop() == 128 + signal.SIGTERM
        assert container.server.pid() is None
        # Java and its Python workers all carry this instance's TMPDIR: none may be left once
        # the last has finished exiting (a loaded machine takes a moment).
        tmp_dir = container.server.tmp_dir
        deadline = time.monotonic() + 15
        while left := [
            proc.name
            for proc in Path("/proc").iterdir()
            if proc.name.isdigit() and process_uses_tmpdir(proc, tmp_dir)
        ]:
            assert time.monotonic() < deadline, f"processes left: {left}"
            time.sleep(0.2)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{container.url}/ping")


def process_uses_tmpdir(proc: Path, tmp_dir: Path) -> bool:
    try:
        return f"TMPDIR={tmp_dir}".encode() in (proc / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


def test_serve_refuses_an_empty_model_directory(tmp_path):
    server = configure_server(
        tmp_path / "run", tmp_path / "empty", "all", properties_file=CONTAINER_CONFIG
    )
    (tmp_path / "empty").mkdir()
    process = run_serve(server)
    assert process.wait(30) == 1
    assert "No .mar archives" in (server.run_dir / "torchserve.out").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_serve_refuses_root(tmp_path, one_model_store):
    server = configure_server(
        tmp_path / "run", one_model_store, "all", properties_file=CONTAINER_CONFIG
    )
    assert run_serve(server, "serve", as_root=False).wait(30) == 1
    assert "Refusing to run TorchServe as root" in (server.run_dir / "torchserve.out").read_text()
    assert server.pid() is None


def test_serve_refuses_to_train(tmp_path):
    server = configure_server(tmp_path / "run", tmp_path, "all", properties_file=CONTAINER_CONFIG)
    assert run_serve(server, "train").wait(30) == 2


# ----- the Dockerfile (Docker is not available here: its parts are checked) --------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def instructions(name: str) -> list[str]:
    return [args for instruction, args in dockerfile_instructions() if instruction == name]


def copies() -> dict[str, str]:
    """COPY source -> destination (relative destinations are under WORKDIR)."""
    workdir = instructions("WORKDIR")[0]
    result = {}
    for args in instructions("COPY"):
        source, destination = shlex.split(args)
        result[source] = destination if destination.startswith("/") else workdir
    return result


def test_dockerfile_copies_files_that_exist_and_are_in_the_build_context():
    ignored = (REPO / "Dockerfile.dockerignore").read_text().splitlines()
    for source in copies():
        assert (REPO / source).exists(), source
        assert f"!{source}" in ignored, f"{source} is excluded from the build context"


def test_dockerfile_agrees_with_the_container_config_and_entry_point():
    properties = read_properties(CONTAINER_CONFIG)
    assert instructions("EXPOSE") == [str(port_of(properties["inference_address"]))]
    destinations = copies()
    assert json.loads(instructions("ENTRYPOINT")[0]) == [destinations["sagemaker/serve"]]
    config_path = destinations["sagemaker/config.properties"]
    env = " ".join(instructions("ENV"))
    assert f"TS_CONFIG_FILE={config_path}" in env
    assert f"TS_CONFIG_FILE:-{config_path}" in SERVE.read_text()


def test_dockerfile_base_image_matches_the_project_python():
    requires = re.search(r'requires-python = ">=(\d+\.\d+)', (REPO / "pyproject.toml").read_text())
    assert instructions("FROM")[0].startswith(f"python:{requires.group(1)}-slim")


def test_dockerfile_torch_pin_command_finds_the_pinned_torch():
    """The CPU torch step reads the pin from pyproject.toml; run that part of it here."""
    pin = subprocess.run(
        ["bash", "-c", "grep -o 'torch==[0-9.]*' pyproject.toml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(pin) == 1
    assert pin[0].startswith("torch==")
    assert pin == ["torch==2.13.0"]
    assert "\"$(grep -o 'torch==[0-9.]*' src-tree/pyproject.toml)\"" in " ".join(
        instructions("RUN")
    )


# ----- the real default models, as the image serves them -----------------------------------


@pytest.mark.real_model
def test_real_models_answer_invocations(tmp_path):
    models = list(registry.load().tasks)
    store = MODEL_STORE
    with serve_container(tmp_path / "run", store, models) as container:
        for model in models:
            response = container.invoke(
                params={"model_name": model}, json={"text": "Das Essen war super lecker."}
            )
            assert response.status_code == 200, response.text
            assert response.json()["model"]["name"] == model
        form = {"model_name": "review", "data": json.dumps({"text": "The waiter is a moron."})}
        review = container.invoke(data=form).json()
        assert review["toxicity"]["toxic"] is True
