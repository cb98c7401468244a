"""Operator tool: model versions, A/B splits, promotion and rollback on a running TorchServe.

    review-analysis models                          # models, versions, splits
    review-analysis register sentiment-2.0.mar      # an archive from the model store
    review-analysis split sentiment 1.0=90 2.0=10   # traffic of sentiment-ab
    review-analysis promote sentiment 2.0           # 100% to 2.0, /predictions/sentiment too
    review-analysis rollback sentiment              # undo the last split or promotion
    review-analysis default sentiment 2.0           # /predictions/sentiment answers with 2.0
    review-analysis unregister sentiment 1.0        # once no traffic goes there
    review-analysis pack-router sentiment 1.0=100   # the first router, offline

A split is a version of the router model ``{target}-ab`` (handlers/router.py): ``split`` packs
the new weights into ``model_store/{target}-ab-v{N}.mar``, registers it, waits for its
workers and makes it the default, which TorchServe does atomically. The version it replaces
stays registered for ``rollback``; older ones are unregistered once they have drained and their
archives deleted. ``promote`` also makes the version the default of the plain URL
``/predictions/{target}`` and records the default it replaced in the new router version, so
that ``rollback`` restores both.

Changing commands hold a file lock in the server's run directory, so operators' commands run
one at a time. A new router archive is never written over an existing one, and a split whose
router default was changed by something else (curl, another tool) while it was being
published is refused. Uses the management API with the keys of the server's ``key_file.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock, Timeout

from handlers.routing import validated_variants
from review_analysis.archives import build_mar
from review_analysis.client import (
    ReviewClient,
    ServerError,
    add_server_arguments,
    client_from_arguments,
    raise_for_status,
)
from review_analysis.paths import CONFIGS, MODEL_STORE

ROUTER_CONFIG = CONFIGS / "router" / "model-config.yaml"
ROUTER_SUFFIX = "-ab"
# Beside key_file.json: one lock per server, whatever URLs or model store a caller names.
LOCK_FILE = "ops.lock"
LOCK_TIMEOUT_S = 300.0


class OperationError(Exception):
    """A refused operation, with the reason an operator should read."""


@dataclass(frozen=True)
class Split:
    router: str
    version: int
    weights: dict[str, float]
    # The target's default version before the promotion that published this split, if any.
    restores_default: str | None = None


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

    def __init__(
        self,
        client: ReviewClient,
        model_store: Path,
        drain_seconds: float = 2.0,
        lock_timeout: float = LOCK_TIMEOUT_S,
    ) -> None:
        self.client = client
        self.model_store = Path(model_store)
        self.drain_seconds = drain_seconds
        self.lock = FileLock(client.key_file.parent / LOCK_FILE, timeout=lock_timeout)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the server's operator lock: changing commands run one at a time."""
        # FileLock would create a mistyped run directory; a missing key file says more.
        if not self.client.key_file.is_file():
            raise FileNotFoundError(self.client.key_file)
        try:
            self.lock.acquire()
        except Timeout:
            raise OperationError(
                f"Another ops command has held {self.lock.lock_file} for "
                f"{self.lock.timeout:g} s; try again once it has finished."
            ) from None
        try:
            yield
        finally:
            self.lock.release()

    # ----- reading the server ---------------------------------------------------------------

    def versions(self, model: str) -> list[dict[str, Any]]:
        try:
            return self.client.describe(model, "all")
        except ServerError as error:
            if error.status == 404:
                return []
            raise

    def entry(self, model: str, version: str) -> dict[str, Any] | None:
        return next((v for v in self.versions(model) if v["modelVersion"] == version), None)

    def default_version(self, model: str) -> str | None:
        try:
            return self.client.describe(model)[0]["modelVersion"]
        except ServerError as error:
            if error.status == 404:
                return None
            raise

    def split_of(self, router: str, version: str) -> Split:
        entry = self.entry(router, version)
        if entry is None:
            raise OperationError(f"{router} {version} is not registered.")
        return self.split_in(router, entry)

    def split_in(self, router: str, entry: dict[str, Any]) -> Split:
        """The split packed into the archive of a registered router version."""
        try:
            with zipfile.ZipFile(self.model_store / entry["modelUrl"]) as archive:
                settings = yaml.safe_load(archive.read("model-config.yaml"))["handler"]
        except FileNotFoundError:
            raise OperationError(
                f"{entry['modelUrl']} ({router} {entry['modelVersion']}) is not in the model "
                f"store {self.model_store}."
            ) from None
        weights = {str(k): float(w) for k, w in settings["variants"].items()}
        return Split(router, int(entry["modelVersion"]), weights, settings.get("restores_default"))

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
                    weights = self.split_in(name, entry).weights
                    line += "  split " + " ".join(f"{v}={w:g}" for v, w in weights.items())
                lines.append(line)
        return lines

    # ----- changing it ----------------------------------------------------------------------

    def register(self, archive: str, workers: int | None = None) -> int:
        """Register an archive of the model store; returns the version's ready workers.

        TorchServe 0.12 lets the archive's minWorkers win over ``initial_workers``, so an
        explicit ``workers`` is applied by scaling the version afterwards.
        """
        path = self.model_store / archive
        if Path(archive).name != archive or not path.is_file():
            raise OperationError(f"{archive} is not in the model store {self.model_store}.")
        try:
            with zipfile.ZipFile(path) as mar:
                manifest = json.loads(mar.read("MAR-INF/MANIFEST.json"))["model"]
        except (zipfile.BadZipFile, KeyError):
            raise OperationError(f"{archive} is not a model archive (no manifest).") from None
        name, version = manifest["modelName"], manifest["modelVersion"]
        with self.exclusive():
            self.client.register(archive, initial_workers=1 if workers is None else workers)
            if workers is not None:
                url = f"{self.client.management_url}/models/{name}/{version}"
                params = {"min_worker": workers, "max_worker": workers, "synchronous": "true"}
                raise_for_status(self.client.request("management", "PUT", url, params=params))
            entry = self.entry(name, version) or {}
            return sum(w.get("status") == "READY" for w in entry.get("workers", []))

    def split(self, target: str, weights: dict[str, float]) -> Split:
        """Publish a new split as the next router version and make it the default."""
        with self.exclusive():
            return self.publish(target, weights)

    def promote(self, target: str, version: str) -> Split:
        """Send 100% to ``version`` and make it the default of ``/predictions/{target}``."""
        with self.exclusive():
            replaced = self.default_version(target)
            split = self.publish(target, {version: 100.0}, restores_default=replaced)
            self.client.set_default(target, version)
            return split

    def rollback(self, target: str) -> Split:
        """Make the previous router version the default again, and if the current one came
        from ``promote``, the target's default from before the promotion."""
        with self.exclusive():
            router = router_name(target)
            current = self.default_version(router)
            if current is None:
                raise OperationError(f"{router} is not registered: there is no split to undo.")
            older = [int(v["modelVersion"]) for v in self.versions(router)]
            previous = sorted((v for v in older if v < int(current)), reverse=True)
            if not previous:
                raise OperationError(f"{router} {current} has no earlier version registered.")
            split = self.split_of(router, str(previous[0]))
            restore = self.split_of(router, current).restores_default
            ready = self.ready_versions(target)
            gone = sorted(v for v, w in split.weights.items() if w > 0 and v not in ready)
            if gone:
                raise OperationError(
                    f"{router} {split.version} sends traffic to {target} {', '.join(gone)}, "
                    "which is not registered any more; publish a new split instead."
                )
            if restore is not None and restore not in ready:
                raise OperationError(
                    f"{target} {restore}, the default before {router} {current} was promoted, "
                    f"is not registered any more; publish a new split instead."
                )
            self.client.set_default(router, str(split.version))
            if restore is not None:
                self.client.set_default(target, restore)
            return split

    def make_default(self, model: str, version: str) -> None:
        """Make ``version`` answer the plain URL ``/predictions/{model}``."""
        if model.endswith(ROUTER_SUFFIX):
            raise OperationError(f"{model} is a router: change it with split, promote, rollback.")
        with self.exclusive():
            if version not in self.ready_versions(model):
                raise OperationError(f"{model} {version} has no ready worker; register it first.")
            self.client.set_default(model, version)

    def unregister(self, model: str, version: str, remove_model: bool = False) -> None:
        """Drain and unregister a version; its model's last one only with ``remove_model``."""
        with self.exclusive():
            versions = [v["modelVersion"] for v in self.versions(model)]
            if version not in versions:
                raise OperationError(f"{model} {version} is not registered.")
            split = self.current_split(model)
            if split and split.weights.get(version, 0) > 0:
                raise OperationError(
                    f"{split.router} {split.version} still sends {split.weights[version]:g} of "
                    f"traffic weight to {model} {version}; move it away first."
                )
            if len(versions) == 1:
                if not remove_model:
                    raise OperationError(
                        f"{version} is the only version of {model}: unregistering it removes "
                        f"/predictions/{model}. Pass --remove-model if that is what you want."
                    )
            elif self.default_version(model) == version:
                raise OperationError(
                    f"{version} is the default version of {model}; make another version the "
                    "default first (default or promote; for a router, split or rollback)."
                )
            self.retire(model, version)
            if model.endswith(ROUTER_SUFFIX):
                self.prune(model)

    # ----- helpers --------------------------------------------------------------------------

    def publish(
        self, target: str, weights: dict[str, float], restores_default: str | None = None
    ) -> Split:
        """Pack, register and make default the next router version; the caller holds the lock."""
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
        archive = self.pack_new(target, weights, version, restores_default)
        self.client.register(archive.name, initial_workers=self.router_workers())
        # Compare-and-set: the lock binds ops commands only, not curl or other tools.
        if self.default_version(router) not in (replaced, str(version)):
            self.client.unregister(router, str(version))
            archive.unlink()
            raise OperationError(
                f"The default version of {router} changed from {replaced} while this split was "
                "being published; nothing was changed. Check `ops models` and try again."
            )
        self.client.set_default(router, str(version))
        # Keep the split just replaced for rollback; older ones get no traffic any more.
        for old in registered:
            if str(old) != replaced:
                self.retire(router, str(old))
        self.prune(router)
        return Split(router, version, weights, restores_default)

    def pack_new(
        self, target: str, weights: dict[str, float], version: int, restores_default: str | None
    ) -> Path:
        """Pack router version ``version`` into the model store, never over an existing file."""
        archive = self.model_store / f"{router_name(target)}-v{version}.mar"
        # Staged beside the store, then hard-linked: atomic, and refused if the name exists.
        with tempfile.TemporaryDirectory(prefix=".ops-", dir=self.model_store) as stage:
            staged = pack_router(
                target, weights, version, Path(stage), restores_default=restores_default
            )
            try:
                os.link(staged, archive)
            except FileExistsError:
                raise OperationError(
                    f"{archive} exists already: another split took version {version}; try again."
                ) from None
        return archive

    def retire(self, model: str, version: str) -> None:
        """Unregister once nothing has been queued for the version for ``drain_seconds``."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < self.drain_seconds:
            entry = self.entry(model, version)
            if entry is None:
                return  # unregistered meanwhile by something else
            if entry.get("jobQueueStatus", {}).get("pendingRequests", 0) > 0:
                quiet_since = time.monotonic()
            time.sleep(0.2)
        self.client.unregister(model, version)

    def prune(self, router: str) -> None:
        """Delete the split archives no registered router version uses. The base archive
        ``{router}.mar``, which config.properties loads at start-up, always stays."""
        used = {entry["modelUrl"] for entry in self.versions(router)}
        for version in self.archived_versions(router):
            archive = self.model_store / f"{router}-v{version}.mar"
            if archive.name not in used:
                archive.unlink(missing_ok=True)

    def ready_versions(self, model: str) -> set[str]:
        """Versions with at least one worker that can answer."""
        return {
            entry["modelVersion"]
            for entry in self.versions(model)
            if any(w.get("status") == "READY" for w in entry.get("workers", []))
        }

    def archived_versions(self, router: str) -> list[int]:
        """Router versions with an archive in the store, so a new version takes a new name."""
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
    **settings: Any,
) -> Path:
    """Pack router version ``version`` of ``{target}-ab`` with these weights; no server needed.
    ``settings`` go into the handler section too (e.g. ``inference_url``)."""
    config = yaml.safe_load(ROUTER_CONFIG.read_text())
    config["handler"].update(target=target, variants=weights, **settings)
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
    # Each command is a top-level review-analysis command: the server's options follow it.
    server = argparse.ArgumentParser(add_help=False)
    add_server_arguments(server)
    server.add_argument("--model-store", type=Path, default=MODEL_STORE)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, parents=[server])

    command("models", help="list models, versions, defaults and splits")
    register = command("register", help="register an archive of the model store")
    register.add_argument("archive")
    register.add_argument(
        "--workers", type=int, help="scale to exactly N workers (default: the archive's)"
    )
    split = command("split", help="set the traffic split of TARGET-ab")
    split.add_argument("target")
    split.add_argument("weights", nargs="+", metavar="VERSION=WEIGHT")
    promote = command(
        "promote", help="send 100%% to a version and make it the default of the plain URL"
    )
    promote.add_argument("target")
    promote.add_argument("version")
    rollback = command("rollback", help="undo the last split or promotion (split and default)")
    rollback.add_argument("target")
    default = command("default", help="make a version answer the plain URL")
    default.add_argument("model")
    default.add_argument("version")
    unregister = command("unregister", help="drain and unregister a version")
    unregister.add_argument("model")
    unregister.add_argument("version")
    unregister.add_argument(
        "--remove-model", action="store_true", help="allow the last version (removes the model)"
    )
    pack = command("pack-router", help="pack TARGET-ab version 1 (no server needed)")
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
                workers = operator.register(args.archive, args.workers)
                print(f"Registered {args.archive} with {workers} ready worker(s).")
            elif args.command == "split":
                done = operator.split(args.target, parse_weights(args.weights))
                print(f"{done.router} {done.version} is the default: {done.weights}")
            elif args.command == "promote":
                done = operator.promote(args.target, args.version)
                print(
                    f"{done.router} {done.version}: 100% to {args.target} {args.version}, "
                    f"which /predictions/{args.target} answers with now"
                )
            elif args.command == "rollback":
                done = operator.rollback(args.target)
                print(
                    f"{done.router} {done.version} is the default again: {done.weights}; "
                    f"/predictions/{args.target} answers with "
                    f"{operator.default_version(args.target)}"
                )
            elif args.command == "default":
                operator.make_default(args.model, args.version)
                print(f"/predictions/{args.model} answers with {args.version} now.")
            else:
                operator.unregister(args.model, args.version, args.remove_model)
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
