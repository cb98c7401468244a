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

# Repack when the model, the handlers or the model config changed since the last archive.
build_if_stale() {  # name handler model_dir
  local mar="model_store/$1.mar"
  if [[ ! -f "$mar" ]] || [[ -n "$(find handlers "configs/$2" "$3" -newer "$mar" -print -quit)" ]]; then
    ./build_mar.sh --name "$1" --version 1.0 --handler "$2" --model-dir "$3"
  fi
}
build_if_stale sentiment sentiment "$sentiment_dir"
