"""The operator tool (review_analysis.ops) against real TorchServe instances on loopback ports.

Fixtures (tests/conftest.py): ``ab_server`` holds sentiment 1.0 and sentiment-ab 1 (100% to
1.0), with sentiment 2.0 in its model store; ``operator`` is an Operator on it.
"""

from __future__ import annotations

import random
import re
import shlex
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from handlers.routing import choose_variant
from review_analysis.client import ReviewClient
from review_analysis.ops import OperationError, Operator, Split
from review_analysis.paths import REPO
from review_analysis.torchserve import VENV_BIN, LocalTorchServe

CLI = str(VENV_BIN / "review-analysis")
OPERATOR_COMMANDS = {"models", "register", "split", "promote", "rollback", "default", "unregister"}

KEYS = [f"user-{i}" for i in range(200)]


def ops(server: LocalTorchServe, command: str, *args: str) -> subprocess.CompletedProcess:
    """``review-analysis COMMAND ARGS`` against ``server``, as an operator would run it."""
    options = ["--run-dir", str(server.run_dir)]
    options += ["--management-url", server.properties["management_address"]]
    options += ["--model-store", str(server.model_store)]
    return subprocess.run(
        [CLI, command, *options, *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )


def reported_split(server: LocalTorchServe) -> dict[str, float]:
    """The split that ``ops models`` shows for the default version of sentiment-ab."""
    listing = ops(server, "models")
    assert listing.returncode == 0, listing.stderr
    default = re.compile(r"sentiment-ab +\d+ +default .* split (.*)")
    pairs = next(m[1] for m in map(default.match, listing.stdout.splitlines()) if m).split()
    return {version: float(weight) for version, weight in (p.split("=") for p in pairs)}


def served_versions(client: ReviewClient, keys: list[str]) -> list[str]:
    """The version that answers each keyed request to the router's plain URL."""

    def version(key: str) -> str:
        url = client.predict_url("sentiment-ab")
        answer = client.request("inference", "POST", url, json={"text": "ok", "key": key})
        assert answer.status_code == 200, answer.text
        return answer.json()["model"]["version"]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(version, keys))


def assert_serves_what_ops_reports(server: LocalTorchServe, client: ReviewClient) -> None:
    reported = reported_split(server)
    expected = [choose_variant(reported, key, random.Random()) for key in KEYS]
    assert served_versions(client, KEYS) == expected, f"ops models says {reported}"


def router_archives(operator: Operator) -> list[str]:
    return sorted(path.name for path in operator.model_store.glob("sentiment-ab*.mar"))


def test_operator_refuses_unsafe_steps_and_rolls_back(operator: Operator):
    with pytest.raises(OperationError, match=r"no ready version 2\.0"):
        operator.split("sentiment", {"1.0": 50, "2.0": 50})
    with pytest.raises(OperationError, match="not in the model store"):
        operator.register("../sentiment-2.0.mar")
    operator.register("sentiment-2.0.mar")
    operator.split("sentiment", {"1.0": 50, "2.0": 50})
    with pytest.raises(OperationError, match="still sends 50"):
        operator.unregister("sentiment", "1.0")
    operator.split("sentiment", {"2.0": 100})
    assert operator.current_split("sentiment").weights == {"2.0": 100}
    assert operator.rollback("sentiment").weights == {"1.0": 50, "2.0": 50}
    assert operator.current_split("sentiment").version == 2
    # Router 1 was retired when router 3 came; 2 (rolled back to) and 3 remain.
    assert sorted(v["modelVersion"] for v in operator.versions("sentiment-ab")) == ["2", "3"]


def test_retired_router_archives_are_deleted_but_the_base_archive_stays(operator: Operator):
    operator.register("sentiment-2.0.mar")
    for weights in ({"1.0": 90, "2.0": 10}, {"1.0": 50, "2.0": 50}, {"2.0": 100}):
        operator.split("sentiment", weights)
    # Routers 1 and 2 are retired; 3 stays for rollback. sentiment-ab.mar is what the
    # server's load_models names, so it stays for the next start.
    assert sorted(v["modelVersion"] for v in operator.versions("sentiment-ab")) == ["3", "4"]
    expected = ["sentiment-ab-v3.mar", "sentiment-ab-v4.mar", "sentiment-ab.mar"]
    assert router_archives(operator) == expected
    operator.unregister("sentiment-ab", "3")
    assert router_archives(operator) == ["sentiment-ab-v4.mar", "sentiment-ab.mar"]
    assert operator.split("sentiment", {"1.0": 100}).version == 5


def test_concurrent_splits_serve_what_ops_models_reports(
    ab_server: LocalTorchServe, operator: Operator
):
    """Four operators publish different splits at once: each waits for the server's lock, so
    each takes its own router version, and the last one wins everywhere."""
    assert ops(ab_server, "register", "sentiment-2.0.mar").returncode == 0
    splits = [["1.0=90", "2.0=10"], ["1.0=10", "2.0=90"], ["1.0=50", "2.0=50"], ["2.0=100"]]
    with ThreadPoolExecutor(len(splits)) as pool:
        runs = list(
            pool.map(lambda weights: ops(ab_server, "split", "sentiment", *weights), splits)
        )

    assert_serves_what_ops_reports(ab_server, operator.client)
    assert [(run.returncode, run.stderr) for run in runs] == [(0, "")] * len(splits)
    # The last split and the one it replaced stay; the base archive stays for the next start.
    assert sorted(v["modelVersion"] for v in operator.versions("sentiment-ab")) == ["4", "5"]
    expected = ["sentiment-ab-v4.mar", "sentiment-ab-v5.mar", "sentiment-ab.mar"]
    assert router_archives(operator) == expected


def test_concurrent_promote_rollback_and_splits_fail_only_with_clear_refusals(
    ab_server: LocalTorchServe, operator: Operator
):
    operator.register("sentiment-2.0.mar")
    operator.split("sentiment", {"1.0": 90, "2.0": 10})
    actions: list[Callable[[Operator], Split]] = [
        lambda op: op.split("sentiment", {"1.0": 70, "2.0": 30}),
        lambda op: op.promote("sentiment", "2.0"),
        lambda op: op.rollback("sentiment"),
        lambda op: op.split("sentiment", {"1.0": 20, "2.0": 80}),
        lambda op: op.rollback("sentiment"),
    ]

    def run(action: Callable[[Operator], Split]) -> BaseException | None:
        # Each thread has its own client and lock handle, as separate operators would.
        with ab_server.client() as client:
            try:
                action(Operator(client, ab_server.model_store, drain_seconds=1))
            except OperationError:
                return None  # a refusal that says why (e.g. nothing left to roll back to)
            except BaseException as error:
                return error
        return None

    with ThreadPoolExecutor(len(actions)) as pool:
        errors = [error for error in pool.map(run, actions) if error is not None]
    assert errors == []
    assert_serves_what_ops_reports(ab_server, operator.client)


def test_promote_and_rollback_move_the_plain_url_as_a_pair(operator: Operator):
    client = operator.client
    operator.register("sentiment-2.0.mar")
    operator.split("sentiment", {"1.0": 90, "2.0": 10})
    operator.promote("sentiment", "2.0")
    assert operator.default_version("sentiment") == "2.0"
    assert client.predict("sentiment", "good")["model"]["version"] == "2.0"

    assert operator.rollback("sentiment").weights == {"1.0": 90, "2.0": 10}
    assert operator.default_version("sentiment") == "1.0"
    assert client.predict("sentiment", "good")["model"]["version"] == "1.0"

    # `default` moves the plain URL alone, and only to a version that can answer.
    with pytest.raises(OperationError, match=r"9\.9 has no ready worker"):
        operator.make_default("sentiment", "9.9")
    with pytest.raises(OperationError, match="is a router"):
        operator.make_default("sentiment-ab", "1")
    operator.make_default("sentiment", "2.0")
    assert client.predict("sentiment", "good")["model"]["version"] == "2.0"
    assert operator.current_split("sentiment").weights == {"1.0": 90, "2.0": 10}


def test_unregister_keeps_the_last_version_of_a_model_unless_told(operator: Operator):
    with pytest.raises(OperationError, match="only version of sentiment-ab"):
        operator.unregister("sentiment-ab", "1")
    with pytest.raises(OperationError, match="sentiment-ab 7 is not registered"):
        operator.unregister("sentiment-ab", "7")
    assert operator.default_version("sentiment-ab") == "1"
    operator.unregister("sentiment-ab", "1", remove_model=True)
    assert operator.versions("sentiment-ab") == []


def test_ops_command_line(ab_server: LocalTorchServe):
    listing = ops(ab_server, "models")
    assert listing.returncode == 0, listing.stderr
    assert "sentiment-ab" in listing.stdout and "split 1.0=100" in listing.stdout
    refused = ops(ab_server, "split", "sentiment", "9.9=100")
    assert refused.returncode == 2
    assert "error: sentiment has no ready version 9.9" in refused.stderr
    # The archive says minWorkers 1, which TorchServe prefers to initial_workers.
    registered = ops(ab_server, "register", "sentiment-2.0.mar", "--workers", "2")
    assert registered.returncode == 0, registered.stderr
    with ab_server.client() as client:
        workers = client.describe("sentiment", "2.0")[0]["workers"]
    assert [w["status"] for w in workers] == ["READY", "READY"]
    assert "with 2 ready worker(s)" in registered.stdout
    promoted = ops(ab_server, "promote", "sentiment", "2.0")
    assert promoted.returncode == 0, promoted.stderr
    assert "100% to sentiment 2.0" in promoted.stdout
    unknown_run_dir = ab_server.run_dir / "missing"
    wrong = subprocess.run(
        [CLI, "rollback", "--run-dir", str(unknown_run_dir), "x"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 1 and "is TorchServe running from" in wrong.stderr
    assert not unknown_run_dir.exists()


def readme_ops_commands() -> list[list[str]]:
    """The operator commands of README.md's operator code block, in order."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n((?:(?!```).)*review-analysis register.*?)```", readme, re.S)
    assert block, "README.md has no code block with `review-analysis register`"
    commands = []
    for line in block.group(1).replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0].endswith("review-analysis") and words[1] in OPERATOR_COMMANDS:
            commands.append(words[1:])
    return commands


def test_the_readme_operator_commands_run_in_order(ab_server: LocalTorchServe, operator: Operator):
    commands = readme_ops_commands()
    assert [c[0] for c in commands][:2] == ["register", "split"]
    for command in commands:
        run = ops(ab_server, *command)
        assert run.returncode == 0, f"ops {shlex.join(command)}: {run.stderr}"
    assert [v["modelVersion"] for v in operator.versions("sentiment")] == ["2.0"]
    assert operator.current_split("sentiment").weights == {"2.0": 100}
    assert operator.client.predict("sentiment", "fine")["model"]["version"] == "2.0"
