"""Packing model archives from Python: a thin wrapper of build_mar.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

from scripts.torchserve import REPO


def build_mar(
    name: str, version: str, model_dir: Path | None, handler: str, store: Path, **options: str
) -> Path:
    """Run build_mar.sh; ``options`` are its other flags (``archive_name="x"`` is
    ``--archive-name x``). A handler without weights (the router) takes no ``model_dir``."""
    command = [str(REPO / "build_mar.sh"), "--name", name, "--version", version]
    command += ["--handler", handler, "--export-path", str(store)]
    if model_dir is not None:
        command += ["--model-dir", str(model_dir)]
    for option, value in options.items():
        command += [f"--{option.replace('_', '-')}", value]
    subprocess.run(command, check=True, capture_output=True)
    return store / f"{options.get('archive_name', name)}.mar"
