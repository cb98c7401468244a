"""Run a handler in-process the way a TorchServe worker does, with TorchServe's own Context."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ts.context import Context, RequestProcessor

from handlers.base import MODEL_SUBDIR, RequestHandler


def load_handler(
    handler_class: type[RequestHandler],
    model_dirs: dict[str, Path] | Path,
    archive_dir: Path,
    settings: dict[str, Any],
    name: str = "model",
    version: str = "1.0",
) -> RequestHandler:
    """Lay out ``archive_dir`` like an unpacked .mar (model/ or model/PART/) and initialize."""
    if isinstance(model_dirs, Path):
        shutil.copytree(model_dirs, archive_dir / MODEL_SUBDIR)
    else:
        for part, directory in model_dirs.items():
            shutil.copytree(directory, archive_dir / MODEL_SUBDIR / part)
    manifest = {"model": {"modelName": name, "modelVersion": version}}
    context = Context(
        name,
        str(archive_dir),
        manifest,
        8,
        None,
        "0.12.0",
        model_yaml_config={"minWorkers": 1, "handler": settings},
    )
    handler = handler_class()
    handler.initialize(context)
    handler.context = context
    return handler


def call(
    handler: RequestHandler, rows: list[dict], content_type: str = "application/json"
) -> tuple[list[Any], list[int]]:
    """One batch through ``handle``: the decoded JSON responses and each request's status."""
    context = handler.context
    context.request_processor = [RequestProcessor({"Content-Type": content_type}) for _ in rows]
    responses = handler.handle(rows, context)
    statuses = [context.get_response_status(i)[0] for i in range(len(rows))]
    return [json.loads(response) for response in responses], statuses
