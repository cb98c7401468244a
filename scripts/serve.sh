#!/usr/bin/env bash
# Install, build the default models, start TorchServe and answer one sample request.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/prepare_models.sh
source .venv/bin/activate
review-analysis server start
echo "==> Sample requests"
review-analysis predict "I loved this place, the food was great" \
                        "Terrible service, cold food, never again"
review-analysis predict --model absa "Das Essen war super, aber der Service war sehr langsam."
cat <<'TXT'

TorchServe runs on 127.0.0.1 (inference :8080, management :8081, metrics :8082).
The review-analysis command is in .venv/bin (source .venv/bin/activate):
  Send texts:  review-analysis predict "Great food"
  Status:      review-analysis server status
  Stop:        review-analysis server stop
  Everything:  review-analysis --help
TXT
