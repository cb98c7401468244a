#!/usr/bin/env bash
# Install, build the default models, lint, and run the whole test suite (integration
# tests start their own TorchServe instances on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/prepare_models.sh
source .venv/bin/activate
ruff check .
ruff format --check .
python -m pytest "$@"
