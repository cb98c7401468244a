"""Where the bundle's files live, declared once.

The root is the checkout that holds ``handlers/`` and ``config.properties``: this package's
own checkout when installed from it (``pip install -e .``, as ``scripts/setup.sh`` does), else
``$REVIEW_ANALYSIS_HOME``, else the working directory (a client-only install needs none of
these paths except the default key file).
"""

from __future__ import annotations

import os
from pathlib import Path


def _root() -> Path:
    configured = os.environ.get("REVIEW_ANALYSIS_HOME")
    if configured:
        return Path(configured).resolve()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "handlers").is_dir() and (checkout / "config.properties").is_file():
        return checkout
    return Path.cwd()


REPO = _root()
HANDLERS = REPO / "handlers"
CONFIGS = REPO / "configs"
# The bundle's models: names, handlers, model directories and how each is built.
REGISTRY = CONFIGS / "models.yaml"
MODEL_STORE = REPO / "model_store"
ARTIFACTS = REPO / "artifacts"
MODELS = ARTIFACTS / "models"
DOWNLOADS = ARTIFACTS / "downloads"
# The team-written English review corpus (data/sentiment_en/README.md).
SENTIMENT_CORPUS = REPO / "data" / "sentiment_en"
# The team-written English toxic-comment corpus (data/toxicity_en/README.md).
TOXICITY_CORPUS = REPO / "data" / "toxicity_en"
# The local TorchServe's working directory: logs, its key_file.json, the operator lock.
RUN_DIR = REPO / ".torchserve"
