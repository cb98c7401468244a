"""The package's declarations: one model registry, one set of addresses, one command line."""

from __future__ import annotations

import importlib.util
import re
import subprocess

import pytest

from review_analysis import cli, client, registry
from review_analysis.paths import CONFIGS, HANDLERS, REPO
from review_analysis.torchserve import VENV_BIN, read_properties
from review_analysis.ts_grpc import generate

PROPERTIES = read_properties(REPO / "config.properties", resolve_paths=False)


def test_the_server_loads_exactly_the_registered_archives():
    assert PROPERTIES["load_models"].split(",") == registry.load().archives()


def test_every_registered_task_has_its_handler_config_and_model_dirs():
    bundle = registry.load()
    for task in bundle.tasks.values():
        assert (HANDLERS / f"{task.handler}.py").is_file()
        assert task.model_config.is_file()
        assert set(task.parts.values()) <= set(bundle.model_dirs)
    for model_dir in bundle.model_dirs.values():
        assert cli.resolve(model_dir.build_command(REPO / "x")) is not None, model_dir.name
    assert (CONFIGS / "router" / "model-config.yaml").is_file()


def test_client_defaults_are_the_addresses_of_config_properties():
    assert PROPERTIES["inference_address"] == client.INFERENCE_URL
    assert PROPERTIES["management_address"] == client.MANAGEMENT_URL
    for api in ("inference", "management"):
        address = f"{PROPERTIES[f'grpc_{api}_address']}:{PROPERTIES[f'grpc_{api}_port']}"
        assert getattr(client, f"GRPC_{api.upper()}_TARGET") == address


def test_every_command_names_a_module_of_the_package():
    commands = list(cli.COMMANDS.values())
    commands += [c for _, members in cli.GROUPS.values() for c in members.values()]
    for command in commands:
        assert importlib.util.find_spec(command.module) is not None, command.module


def test_help_lists_every_command():
    shown = subprocess.run(
        [VENV_BIN / "review-analysis", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in [*cli.COMMANDS, *cli.GROUPS]:
        assert re.search(rf"^\s+{re.escape(name)}\b", shown, re.M), name


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["predict", "--help"], "usage: review-analysis predict"),
        (["split", "--help"], "usage: review-analysis split"),
        (["server", "--help"], "usage: review-analysis server"),
        (["train", "grpc-stubs", "--help"], "usage: review-analysis train grpc-stubs"),
    ],
)
def test_a_command_parses_its_own_arguments(argv: list[str], usage: str):
    shown = subprocess.run(
        [VENV_BIN / "review-analysis", *argv], capture_output=True, text=True, check=True
    ).stdout
    assert shown.startswith(usage)


def test_an_unknown_command_is_a_usage_error():
    refused = subprocess.run(
        [VENV_BIN / "review-analysis", "frobnicate"], capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert "invalid choice: 'frobnicate'" in refused.stderr


def test_shipped_grpc_stubs_match_torchserves_protos():
    assert generate.check() == []


def test_no_python_module_imports_scripts():
    importing = re.compile(r"^\s*(from|import) scripts\b", re.M)
    offenders = [
        path
        for path in REPO.rglob("*.py")
        if not path.relative_to(REPO).parts[0].startswith((".", "artifacts", "build"))
        and importing.search(path.read_text())
    ]
    assert offenders == []
