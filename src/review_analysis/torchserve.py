"""Start, watch and stop one local TorchServe instance.

One instance per run directory: TorchServe is started *in* that directory (so its
``key_file.json`` and ``logs/`` land there) with ``TMPDIR`` pointing inside it (TorchServe keeps
its PID file in ``TMPDIR``, which allows one instance per ``TMPDIR``). ``torchserve --start``
exits 0 even when Java dies at once, and ``/ping`` says Healthy before any worker can answer,
so readiness means: every expected model has a READY worker and answers a real prediction.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from handlers.server_config import KEY_FILE_NAME
from handlers.server_config import read_properties as parse_properties
from review_analysis.client import ReviewClient, ServerError
from review_analysis.paths import MODEL_STORE, REPO

if TYPE_CHECKING:
    from review_analysis.grpc_client import GrpcReviewClient

# TorchServe's launcher and the Python its workers run: those of this interpreter's venv.
VENV_BIN = Path(sys.executable).parent


# Properties naming files, and JVM options in vmargs naming files: a relative path is
# relative to the properties file.
FILE_PROPERTIES = ("metrics_config",)
FILE_JVM_OPTIONS = ("-Dlog4j.configurationFile=",)


def read_properties(path: Path, resolve_paths: bool = True) -> dict[str, str]:
    properties = parse_properties(path)
    if not resolve_paths:
        return properties
    for key in FILE_PROPERTIES:
        if key in properties:
            properties[key] = str((path.parent / properties[key]).resolve())
    if "vmargs" in properties:
        properties["vmargs"] = " ".join(
            resolve_jvm_option(option, path.parent) for option in properties["vmargs"].split()
        )
    return properties


def resolve_jvm_option(option: str, base: Path) -> str:
    for prefix in FILE_JVM_OPTIONS:
        if option.startswith(prefix):
            return prefix + str((base / option.removeprefix(prefix)).resolve())
    return option


def write_properties(path: Path, properties: dict[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


class StartupError(RuntimeError):
    pass


@dataclass
class LocalTorchServe:
    """A TorchServe instance living in ``run_dir`` and configured by ``config_file``."""

    config_file: Path
    run_dir: Path
    model_store: Path = field(default_factory=lambda: MODEL_STORE)
    # The account TorchServe and its workers run as (started by root); None: the caller's.
    user: str | None = None

    def __post_init__(self) -> None:
        self.config_file = self.config_file.resolve()
        self.run_dir = self.run_dir.resolve()
        self.model_store = self.model_store.resolve()
        self.properties = read_properties(self.config_file)

    # ----- paths ----------------------------------------------------------------------------

    @property
    def tmp_dir(self) -> Path:
        return self.run_dir / "tmp"

    @property
    def pid_file(self) -> Path:
        return self.tmp_dir / ".model_server.pid"

    @property
    def key_file(self) -> Path:
        return self.run_dir / KEY_FILE_NAME

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    def client(self, timeout: float = 60.0) -> ReviewClient:
        return ReviewClient(
            inference_url=self.properties["inference_address"],
            management_url=self.properties["management_address"],
            key_file=self.key_file,
            timeout=timeout,
        )

    def grpc_target(self, api: str) -> str:
        """``api`` is "inference" or "management"."""
        return f"{self.properties[f'grpc_{api}_address']}:{self.properties[f'grpc_{api}_port']}"

    def grpc_client(self, timeout: float = 60.0) -> GrpcReviewClient:
        # Imported here: grpcio is the client extra, which HTTP users need not install.
        from review_analysis.grpc_client import GrpcReviewClient

        return GrpcReviewClient(
            inference_target=self.grpc_target("inference"),
            management_target=self.grpc_target("management"),
            management_url=self.properties["management_address"],
            key_file=self.key_file,
            timeout=timeout,
        )

    @property
    def metrics_url(self) -> str:
        return self.properties["metrics_address"]

    # ----- lifecycle --------------------------------------------------------------------

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["TMPDIR"] = str(self.tmp_dir)
        # TorchServe unpacks archives under java.io.tmpdir; keep them per instance too.
        env["JAVA_TOOL_OPTIONS"] = f"-Djava.io.tmpdir={self.tmp_dir}"
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TRANSFORMERS_OFFLINE", "1")
        # TorchServe starts workers with the Python it finds first on PATH.
        env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
        if self.user:
            env.update(HOME=str(self.run_dir), USER=self.user, LOGNAME=self.user)
        return env

    def start(self) -> None:
        if self.pid():
            raise StartupError(f"TorchServe already runs from {self.run_dir} (pid {self.pid()})")
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.key_file.unlink(missing_ok=True)
        # TorchServe resolves relative paths against its working directory, the run directory.
        effective_config = self.run_dir / "effective.properties"
        write_properties(effective_config, self.properties)
        command = [
            str(VENV_BIN / "torchserve"),
            "--start",
            "--ts-config",
            str(effective_config),
            "--model-store",
            str(self.model_store),
            # config.properties is the source of truth: no snapshot is written or restored.
            "--ncs",
        ]
        account = pwd.getpwnam(self.user) if self.user else None
        if account:
            # TorchServe writes its key file, logs and unpacked archives in the run directory.
            for path in [self.run_dir, *self.run_dir.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
        # Java inherits the launcher's output streams: send them to a file, not to our caller.
        with (self.run_dir / "torchserve.out").open("ab") as out:
            subprocess.run(
                command,
                cwd=self.run_dir,
                env=self.environment(),
                check=True,
                stdout=out,
                stderr=out,
                user=account.pw_uid if account else None,
                group=account.pw_gid if account else None,
                extra_groups=[] if account else None,
            )

    def stop(self, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid():
            time.sleep(0.2)
        if self.pid():
            os.kill(pid, signal.SIGKILL)
        self.kill_workers()
        self.pid_file.unlink(missing_ok=True)

    def kill_workers(self) -> None:
        """Python workers outlive a killed frontend; end the ones this instance started."""
        marker = str(self.tmp_dir)
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                environ = (proc / "environ").read_bytes()
            except OSError:
                continue
            if f"TMPDIR={marker}".encode() in environ.split(b"\0"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signal.SIGKILL)

    def access_log_lines(self) -> list[str]:
        path = self.log_dir / "access_log.log"
        return path.read_text().splitlines() if path.exists() else []

    def answered_in_log(self, path: str, since_line: int = 0) -> int:
        """Requests to ``path`` (e.g. /predictions/sentiment) answered 200 after a log line."""
        pattern = re.compile(rf'"POST {re.escape(path)} HTTP/1.1" 200 ')
        return sum(bool(pattern.search(line)) for line in self.access_log_lines()[since_line:])

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        # Java's own crash output goes to torchserve.out, not to TorchServe's log files.
        for path in (
            self.run_dir / "torchserve.out",
            self.log_dir / "ts_log.log",
            self.log_dir / "model_log.log",
        ):
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(parts) or f"(no logs in {self.log_dir})"

    def wait_until_ready(
        self, models: list[str] | None = None, timeout: float = 180.0, sample_text: str = "ready?"
    ) -> list[str]:
        """Block until every model (default: all registered) answers a real prediction."""
        deadline = time.monotonic() + timeout
        pending = list(models) if models is not None else None
        while pending is None or pending:
            if self.pid() is None:
                raise StartupError(f"TorchServe is not running.\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise StartupError(
                    f"Models {pending} not ready after {timeout:.0f} s.\n{self.log_tail()}"
                )
            try:
                client = self.client(timeout=10)
                if pending is None:
                    pending = [m["modelName"] for m in client.list_models()["models"]]
                    models = list(pending)
                    continue
                if client.ready_workers(pending[0]) > 0:
                    client.predict(pending[0], sample_text)
                    pending.pop(0)
                    continue
            except (httpx.HTTPError, ServerError, FileNotFoundError, json.JSONDecodeError):
                pass
            time.sleep(0.3)
        return models


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def configure_server(
    run_dir: Path,
    model_store: Path,
    load_models: str,
    properties_file: Path = REPO / "config.properties",
    **overrides: str,
) -> LocalTorchServe:
    """A TorchServe (not started) with ``properties_file``, moved to free loopback ports."""
    inference, management, metrics, grpc_inference, grpc_management = free_ports(5)
    properties = read_properties(properties_file)
    properties.update(
        inference_address=f"http://127.0.0.1:{inference}",
        management_address=f"http://127.0.0.1:{management}",
        metrics_address=f"http://127.0.0.1:{metrics}",
        grpc_inference_port=str(grpc_inference),
        grpc_management_port=str(grpc_management),
        model_store=str(model_store),
        load_models=load_models,
    )
    properties.update(overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_properties(run_dir / "config.properties", properties)
    return LocalTorchServe(run_dir / "config.properties", run_dir, model_store)


def start_server(
    run_dir: Path, model_store: Path, load_models: str, **overrides: str
) -> LocalTorchServe:
    """A TorchServe with the repo's config.properties, on free loopback ports, ready: for
    tests and benchmarks that need an instance of their own."""
    server = configure_server(run_dir, model_store, load_models, **overrides)
    server.start()
    try:
        server.wait_until_ready(timeout=180)
    except Exception:
        server.stop()
        raise
    return server
