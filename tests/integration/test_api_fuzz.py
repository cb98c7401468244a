"""schemathesis against TorchServe's own OpenAPI description, on a server with our handler.

TorchServe serves its API description at ``OPTIONS /`` on the inference and the management
port. schemathesis generates requests from it (valid and invalid) and fails on any 5xx.
Afterwards the worker must be the same process: no crash, no restart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES_PER_OPERATION = 15


def run_schemathesis(schema: dict, base_url: str, key: str, tmp_path: Path, name: str) -> str:
    schema_file = tmp_path / f"{name}.json"
    schema_file.write_text(json.dumps(schema))
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        str(schema_file),
        "--url",
        base_url,
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--generation-deterministic",
        # Unregistering or rescaling the model under test is legitimate but ends the test.
        "--exclude-method",
        "DELETE",
        "--exclude-path-regex",
        r"^/models/\{model_name\}(/\{model_version\})?$",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout


def test_no_server_error_and_no_worker_crash(fresh_server, tmp_path):
    with fresh_server.client() as client:
        before = [(w["pid"], w["startTime"]) for w in client.describe("sentiment")[0]["workers"]]
        for name, base_url, kind in (
            ("inference", client.inference_url, "inference"),
            ("management", client.management_url, "management"),
        ):
            schema = client.request(kind, "OPTIONS", base_url + "/").json()
            output = run_schemathesis(schema, base_url, client.key(kind), tmp_path, name)
            print(f"\n--- schemathesis on the {name} API\n{output[-1500:]}")
        after = [(w["pid"], w["startTime"]) for w in client.describe("sentiment")[0]["workers"]]
        assert after == before
        assert client.predict("sentiment", "still fine")["model"]["name"] == "sentiment"
