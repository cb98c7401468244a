#!/usr/bin/env bash
# Build the offline default models and pack them into model_store/ (configs/models.yaml lists
# them). Reruns reuse what is built. Training takes about 40 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source .venv/bin/activate
review-analysis build "$@"
