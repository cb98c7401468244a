"""Operator tool: model versions, A/B splits, promotion and rollback on a running TorchServe.

    python -m scripts.ops models                              # models, versions, splits
    python -m scripts.ops register sentiment-2.0.mar          # an archive from the model store
    python -m scripts.ops split sentiment 1.0=90 2.0=10       # traffic of sentiment-ab
    python -m scripts.ops promote sentiment 2.0               # 100% to 2.0, default 2.0
    python -m scripts.ops rollback sentiment                  # the split before the last one
    python -m scripts.ops unregister sentiment 1.0            # once no traffic goes there
    python -m scripts.ops pack-router sentiment 1.0=100       # the first router, offline

A split is a version of the router model ``{target}-ab`` (handlers/router.py): ``split`` packs
the new weights into ``model_store/{target}-ab-v{N}.mar``, registers it, waits for its
workers and makes it the default, which TorchServe does atomically. The version it replaces
stays registered for ``rollback``; older ones are unregistered once they have drained. Uses
the management API with the keys of the server's ``key_file.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from handlers.routing import validated_variants
from scripts.archives import build_mar
from scripts.client import (
    ReviewClient,
    ServerError,
    add_server_arguments,
    client_from_arguments,
)
from scripts.torchserve import REPO

ROUTER_CONFIG = REPO / "configs" / "router" / "model-config.yaml"
ROUTER_SUFFIX = "-ab"


class OperationError(Exception):
    """A refused operation, with the reason an operator should read."""


@dataclass(frozen=True)
class Split:
    router: str
    version: int
    weights: dict[str, float]


def router_name(target: str) -> str:
    return f"{target}{ROUTER_SUFFIX}"


def parse_weights(pairs: list[str]) -> dict[str, float]:
    """``["1.0=90", "2.0=10"]`` to weights, checked as the router will check them."""
    malformed = [pair for pair in pairs if "=" not in pair]
    if malformed:
        raise OperationError(f"Expected VERSION=WEIGHT, got {', '.join(malformed)}.")
    try:
        return validated_variants(dict(pair.split("=", 1) for pair in pairs))
    except ValueError as error:
        raise OperationError(f"Expected VERSION=WEIGHT with weights >= 0: {error}") from None


class Operator:
    """Management operations on one TorchServe whose archives live in ``model_store``."""

    def __init__(self, client: ReviewClient, model_store: Path, drain_seconds: float = 2.0):
        self.client = client
        self.model_store = Path(model_store)
        self.drain_seconds = drain_seconds

    # ----- reading the server ---------------------------------------------------------------

    def versions(self, model: str) -> list[dict[str, Any]]:
        try:
            return self.client.describe(model, "all")
        except ServerError as error:
            if error.status == 404:
                return []
            raise

    def default_version(self, model: str) -> str | None:
        try:
            return self.client.describe(model)[0]["modelVersion"]
        except ServerError as error:
            if error.status == 404:
                return None
            raise

    def split_of(self, router: str, version: str) -> Split:
        """The weights packed into a registered router version's archive."""
        entry = next(v for v in self.versions(router) if v["modelVersion"] == version)
        with zipfile.ZipFile(self.model_store / entry["modelUrl"]) as archive:
            config = yaml.safe_load(archive.read("model-config.yaml"))
        weights = {str(k): float(w) for k, w in config["handler"]["variants"].items()}
        return Split(router, int(version), weights)

    def current_split(self, target: str) -> Split | None:
        router = router_name(target)
        version = self.default_version(router)
        return self.split_of(router, version) if version else None

    def models(self) -> list[str]:
        lines = []
        for model in self.client.list_models()["models"]:
            name = model["modelName"]
            default = self.default_version(name)
            for entry in self.versions(name):
                version = entry["modelVersion"]
                workers = ",".join(w["status"] for w in entry.get("workers", [])) or "-"
                line = f"{name:<16} {version:<6} {'default' if version == default else '':<8}"
                line += f" workers={workers}"
                if name.endswith(ROUTER_SUFFIX):
                    weights = self.split_of(name, version).weights
                    line += "  split " + " ".join(f"{v}={w:g}" for v, w in weights.items())
                lines.append(line)
        return lines

    # ----- changing it ----------------------------------------------------------------------

    def register(self, archive: str, workers: int = 1) -> None:
        if Path(archive).name != archive or not (self.model_store / archive).is_file():
            raise OperationError(f"{archive} is not in the model store {self.model_store}.")
        self.client.register(archive, initial_workers=workers)

    def split(self, target: str, weights: dict[str, float]) -> Split:
        """Publish a new split as the next router version and make it the default."""
        ready = self.ready_versions(target)
        missing = sorted(v for v, w in weights.items() if w > 0 and v not in ready)
        if missing:
            raise OperationError(
                f"{target} has no ready version {', '.join(missing)}; register it first."
            )
        router = router_name(target)
        replaced = self.default_version(router)
        registered = [int(v["modelVersion"]) for v in self.versions(router)]
        version = max([*registered, *self.archived_versions(router)], default=0) + 1
        archive = pack_router(target, weights, version, self.model_store)
        self.client.register(archive.name, initial_workers=self.router_workers())
        self.client.set_default(router, str(version))
        # Keep the split just replaced for rollback; older ones get no traffic any more.
        for old in registered:
            if str(old) != replaced:
                self.retire(router, str(old))
        return Split(router, version, weights)

    def rollback(self, target: str) -> Split:
        router = router_name(target)
        current = self.default_version(router)
        if current is None:
            raise OperationError(f"{router} is not registered: there is no split to roll back.")
        older = sorted((int(v["modelVersion"]) for v in self.versions(router)), reverse=True)
        previous = [v for v in older if v < int(current)]
        if not previous:
            raise OperationError(f"{router} {current} has no earlier version registered.")
        split = self.split_of(router, str(previous[0]))
        ready = self.ready_versions(target)
        gone = sorted(v for v, w in split.weights.items() if w > 0 and v not in ready)
        if gone:
            raise OperationError(
                f"{router} {split.version} sends traffic to {target} {', '.join(gone)}, "
                "which is not registered any more; publish a new split instead."
            )
        self.client.set_default(router, str(split.version))
        return split

    def promote(self, target: str, version: str) -> Split:
        split = self.split(target, {version: 100})
        self.client.set_default(target, version)
        return split

    def unregister(self, model: str, version: str) -> None:
        split = self.current_split(model)
        if split and split.weights.get(version, 0) > 0:
            raise OperationError(
                f"{split.router} {split.version} still sends {split.weights[version]:g} of "
                f"traffic weight to {model} {version}; move it away first."
            )
        if self.default_version(model) == version and len(self.versions(model)) > 1:
            raise OperationError(
                f"{version} is the default version of {model}; promote another version first."
            )
        self.retire(model, version)

    def retire(self, model: str, version: str) -> None:
        """Unregister once nothing has been queued for the version for ``drain_seconds``."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < self.drain_seconds:
            entry = next(v for v in self.versions(model) if v["modelVersion"] == version)
            if entry.get("jobQueueStatus", {}).get("pendingRequests", 0) > 0:
                quiet_since = time.monotonic()
            time.sleep(0.2)
        self.client.unregister(model, version)

    # ----- helpers --------------------------------------------------------------------------

    def ready_versions(self, model: str) -> set[str]:
        """Versions with at least one worker that can answer."""
        return {
            entry["modelVersion"]
            for entry in self.versions(model)
            if any(w.get("status") == "READY" for w in entry.get("workers", []))
        }

    def archived_versions(self, router: str) -> list[int]:
        """Router versions already packed, so a new archive never overwrites one in use."""
        versions = []
        for path in self.model_store.glob(f"{router}-v*.mar"):
            suffix = path.stem.removeprefix(f"{router}-v")
            if suffix.isdigit():
                versions.append(int(suffix))
        return versions

    @staticmethod
    def router_workers() -> int:
        return int(yaml.safe_load(ROUTER_CONFIG.read_text())["minWorkers"])


def pack_router(
    target: str,
    weights: dict[str, float],
    version: int,
    model_store: Path,
    archive_name: str | None = None,
) -> Path:
    """Pack router version ``version`` of ``{target}-ab`` with these weights; no server needed."""
    config = yaml.safe_load(ROUTER_CONFIG.read_text())
    config["handler"].update(target=target, variants=weights)
    router = router_name(target)
    archive_name = archive_name or f"{router}-v{version}"
    with tempfile.TemporaryDirectory() as stage:
        config_file = Path(stage) / "model-config.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        return build_mar(
            router,
            str(version),
            None,
            "router",
            Path(model_store),
            config=str(config_file),
            archive_name=archive_name,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_arguments(parser)
    parser.add_argument("--model-store", type=Path, default=REPO / "model_store")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("models", help="list models, versions, defaults and splits")
    register = commands.add_parser("register", help="register an archive of the model store")
    register.add_argument("archive")
    register.add_argument("--workers", type=int, default=1)
    split = commands.add_parser("split", help="set the traffic split of TARGET-ab")
    split.add_argument("target")
    split.add_argument("weights", nargs="+", metavar="VERSION=WEIGHT")
    promote = commands.add_parser("promote", help="send 100%% to a version, make it default")
    promote.add_argument("target")
    promote.add_argument("version")
    rollback = commands.add_parser("rollback", help="go back to the previous split")
    rollback.add_argument("target")
    unregister = commands.add_parser("unregister", help="drain and unregister a version")
    unregister.add_argument("model")
    unregister.add_argument("version")
    pack = commands.add_parser("pack-router", help="pack TARGET-ab version 1 (no server needed)")
    pack.add_argument("target")
    pack.add_argument("weights", nargs="+", metavar="VERSION=WEIGHT")
    args = parser.parse_args()

    if args.command == "pack-router":
        archive = pack_router(
            args.target, parse_weights(args.weights), 1, args.model_store, router_name(args.target)
        )
        print(f"Wrote {archive}")
        return 0

    client = client_from_arguments(args)
    operator = Operator(client, args.model_store)
    try:
        with client:
            if args.command == "models":
                print("\n".join(operator.models()))
            elif args.command == "register":
                operator.register(args.archive, args.workers)
                print(f"Registered {args.archive}.")
            elif args.command == "split":
                done = operator.split(args.target, parse_weights(args.weights))
                print(f"{done.router} {done.version} is the default: {done.weights}")
            elif args.command == "promote":
                done = operator.promote(args.target, args.version)
                print(f"{done.router} {done.version}: 100% to {args.target} {args.version}")
            elif args.command == "rollback":
                done = operator.rollback(args.target)
                print(f"{done.router} {done.version} is the default again: {done.weights}")
            else:
                operator.unregister(args.model, args.version)
                print(f"Unregistered {args.model} {args.version}.")
    except OperationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ServerError as error:
        print(f"error: TorchServe answered {json.dumps(error.body)}", file=sys.stderr)
        return 1
    except FileNotFoundError as error:
        print(f"error: {error} (is TorchServe running from {args.run_dir}?)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
