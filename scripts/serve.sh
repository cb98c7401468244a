#!/usr/bin/env bash
# Install, build the default models, start TorchServe and answer one sample request.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/prepare_models.sh
source .venv/bin/activate
python -m scripts.server start
echo "==> Sample requests"
python -m scripts.client "I loved this place, the food was great" \
                         "Terrible service, cold food, never again"
python -m scripts.client --model absa "Das Essen war super, aber der Service war sehr langsam."
cat <<'TXT'

TorchServe runs on 127.0.0.1 (inference :8080, management :8081, metrics :8082).
  Send texts:  .venv/bin/python -m scripts.client "Great food"
  Status:      .venv/bin/python -m scripts.server status
  Stop:        .venv/bin/python -m scripts.server stop
TXT
