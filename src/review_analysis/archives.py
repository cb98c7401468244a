"""Packing model archives from Python: a thin wrapper of build_mar.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

from review_analysis.paths import REPO


def build_mar(
    name: str,
    version: str,
    model_dir: Path | list[str] | None,
    handler: str,
    store: Path,
    **options: str,
) -> Path:
    """Run build_mar.sh; ``options`` are its other flags (``archive_name="x"`` is
    ``--archive-name x``). ``model_dir`` is one directory, or build_mar.sh's ``--model-dir``
    values (``PART=DIR`` for a handler that combines models); a handler without weights (the
    router) takes none."""
    command = [str(REPO / "build_mar.sh"), "--name", name, "--version", version]
    command += ["--handler", handler, "--export-path", str(store)]
    specs = model_dir if isinstance(model_dir, list) else [] if model_dir is None else [model_dir]
    for spec in specs:
        command += ["--model-dir", str(spec)]
    for option, value in options.items():
        command += [f"--{option.replace('_', '-')}", value]
    subprocess.run(command, check=True, capture_output=True)
    return store / f"{options.get('archive_name', name)}.mar"
