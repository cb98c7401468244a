"""The settings of the TorchServe that runs this worker, read from its own properties file.

Handlers need a few server-wide settings that TorchServe does not pass to a worker: the
inference address (the A/B router forwards to it; it must never come from a request) and
``max_response_size`` (an answer over it kills the worker). Workers are started by the Java
frontend, whose command line names the properties file (``-f FILE``, relative to the
frontend's working directory); ``TS_CONFIG_FILE`` takes precedence, as it does for TorchServe.
The frontend writes its token keys to ``key_file.json`` in that working directory.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# TorchServe's own defaults for the settings read here.
DEFAULTS = {
    "inference_address": "http://127.0.0.1:8080",
    "max_response_size": "6553500",
}
# A server that listens on every interface is reached over loopback from its own workers.
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def read_properties(path: Path) -> dict[str, str]:
    """``key=value`` lines of a Java properties file (TorchServe writes no continuations)."""
    properties = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, value = line.split("=", 1)
            properties[key.strip()] = value.strip()
    return properties


def frontend_config_file() -> Path | None:
    """The properties file of the frontend that started this worker."""
    if os.environ.get("TS_CONFIG_FILE"):
        return Path(os.environ["TS_CONFIG_FILE"])
    parent = Path(f"/proc/{os.getppid()}")
    try:
        arguments = (parent / "cmdline").read_bytes().decode().split("\0")
        working_dir = (parent / "cwd").resolve()
    except OSError:
        return None
    for flag, value in itertools.pairwise(arguments):
        if flag == "-f" and value:
            return working_dir / value
    return None


@functools.cache
def server_properties() -> dict[str, str]:
    """The frontend's properties over TorchServe's defaults for the keys read here."""
    config_file = frontend_config_file()
    found = read_properties(config_file) if config_file and config_file.is_file() else {}
    return {**DEFAULTS, **found}


def loopback_url(address: str) -> str:
    """An inference address as its own workers reach it: ``0.0.0.0`` becomes loopback."""
    parts = urlsplit(address)
    host = WILDCARD_HOSTS.get(parts.hostname or "0.0.0.0", parts.hostname)
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme or "http", netloc, "", "", "")).rstrip("/")


def inference_url() -> str:
    return loopback_url(server_properties()["inference_address"])


def max_response_bytes() -> int:
    return int(server_properties()["max_response_size"])


# Where TorchServe writes its token keys: in its working directory, renewed in place.
KEY_FILE_NAME = "key_file.json"


def read_key(key_file: Path, kind: str) -> str:
    """A key of TorchServe's key file; ``kind`` is "inference", "management" or "API".
    The clients read their keys with it too (the file's layout is TorchServe's)."""
    return json.loads(Path(key_file).read_text())[kind]["key"]


def inference_key() -> str | None:
    """The server's current inference key; None where there is none (token authorization off).

    Read at every call: renewing a key through the token API rewrites the file.
    """
    try:
        return read_key(Path(f"/proc/{os.getppid()}/cwd") / KEY_FILE_NAME, "inference")
    except (OSError, ValueError, KeyError, TypeError):
        return None
