"""Build the default models and pack them into model_store/, as configs/models.yaml declares.

    review-analysis build        # what scripts/prepare_models.sh runs; reruns reuse what is built

A model directory is built once (into ``NAME.partial``, renamed when its build succeeds); an
archive is repacked when its handlers, its model config or its model directories changed
since it was packed. Every task also gets its A/B router, all traffic to the first version.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from review_analysis import registry
from review_analysis.archives import build_mar
from review_analysis.ops import ROUTER_CONFIG, pack_router
from review_analysis.paths import HANDLERS, MODEL_STORE


def newer_than(archive: Path, sources: list[Path]) -> bool:
    """Whether the archive is missing or any file of ``sources`` changed after it."""
    if not archive.is_file():
        return True
    packed = archive.stat().st_mtime
    for source in sources:
        files = source.rglob("*") if source.is_dir() else [source]
        if any(f.is_file() and f.stat().st_mtime > packed for f in files):
            return True
    return False


def build_model_dir(model_dir: registry.ModelDir) -> None:
    print(f"==> Building {model_dir.name}: {model_dir.about}", flush=True)
    partial = model_dir.path.with_name(model_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, "-m", "review_analysis.cli", *model_dir.build_command(partial)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    subprocess.run(command, check=True, env=env)
    shutil.rmtree(model_dir.path, ignore_errors=True)
    partial.rename(model_dir.path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-store", type=Path, default=MODEL_STORE)
    args = parser.parse_args(argv)
    bundle = registry.load()
    for model_dir in bundle.model_dirs.values():
        if not model_dir.is_built():
            build_model_dir(model_dir)
    store = args.model_store
    for task in bundle.tasks.values():
        sources = [
            HANDLERS,
            task.model_config,
            *(bundle.model_dirs[n].path for n in task.parts.values()),
        ]
        if newer_than(store / task.archive, sources):
            print(f"==> Packing {task.archive}", flush=True)
            specs = task.model_dir_specs()
            build_mar(task.name, registry.FIRST_VERSION, specs, task.handler, store)
        if newer_than(store / f"{task.router}.mar", [HANDLERS, ROUTER_CONFIG]):
            print(f"==> Packing {task.router}.mar", flush=True)
            pack_router(task.name, {registry.FIRST_VERSION: 100}, 1, store, task.router)
    print(f"Model store {store}: {', '.join(bundle.archives())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
