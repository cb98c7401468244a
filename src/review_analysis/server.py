"""Start, stop and inspect the local TorchServe of this bundle.

    review-analysis server start [--config config.properties] [--run-dir .torchserve]
    review-analysis server status
    review-analysis server stop

TorchServe runs the handler code of every model registered with it, so started by root it
runs as the unprivileged ``torchserve`` account that scripts/setup.sh creates, never as root.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import sys
import time
from pathlib import Path

from review_analysis.client import ServerError
from review_analysis.paths import MODEL_STORE, REPO, RUN_DIR
from review_analysis.torchserve import LocalTorchServe, StartupError


def main() -> int:
    parser = argparse.ArgumentParser(description="Manage the local TorchServe instance.")
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--config", type=Path, default=REPO / "config.properties")
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR)
    parser.add_argument("--model-store", type=Path, default=MODEL_STORE)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for models")
    parser.add_argument(
        "--user",
        default="torchserve",
        help="the account TorchServe runs as when started by root (default: %(default)s)",
    )
    args = parser.parse_args()
    user = None
    if os.geteuid() == 0:
        try:
            if pwd.getpwnam(args.user).pw_uid == 0:
                print(
                    "Refusing to run TorchServe as root: name an unprivileged --user.",
                    file=sys.stderr,
                )
                return 2
        except KeyError:
            print(
                f"No account {args.user!r}: scripts/setup.sh creates it when run as root.",
                file=sys.stderr,
            )
            return 2
        user = args.user
    server = LocalTorchServe(args.config, args.run_dir, args.model_store, user=user)

    if args.command == "stop":
        server.stop()
        print("TorchServe stopped.")
        return 0
    if args.command == "status":
        if server.pid() is None:
            print("TorchServe is not running.")
            return 1
        try:
            with server.client(timeout=10) as client:
                for model in client.list_models()["models"]:
                    for version in client.describe(model["modelName"], "all"):
                        workers = [w["status"] for w in version["workers"]]
                        print(f"{version['modelName']} {version['modelVersion']}: {workers}")
        except ServerError as error:
            print(json.dumps(error.body), file=sys.stderr)
            return 1
        return 0

    if server.pid() is not None:
        print(f"TorchServe already runs (pid {server.pid()}).")
        return 0
    started = time.monotonic()
    as_user = f" as {user}" if user else ""
    print(f"Starting TorchServe{as_user} (logs in {server.log_dir}) ...", flush=True)
    try:
        server.start()
        models = server.wait_until_ready(timeout=args.timeout)
    except StartupError as error:
        print(f"TorchServe did not come up:\n{error}", file=sys.stderr)
        server.stop()
        return 1
    print(f"Ready in {time.monotonic() - started:.1f} s: {', '.join(models)} answer.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
