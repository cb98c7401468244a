#!/usr/bin/env bash
# Pack an HF-format sequence-classification directory and one of our handlers into a .mar.
#
#   ./build_mar.sh --name sentiment --version 1.0 --model-dir artifacts/models/sentiment \
#                  --handler sentiment [--config configs/sentiment/model-config.yaml] \
#                  [--archive-name sentiment-1.0] [--export-path model_store] \
#                  [--accelerate bf16|onnx|onnx-int8]
#
# The archive holds handlers/ (the Python package), model/ (the model directory) and the
# model-config.yaml that TorchServe and the handler read. A handler that combines models
# takes one --model-dir PART=DIR per part, packed as model/PART/; one without weights (the
# A/B router) takes none. --accelerate packs the weights as bfloat16, or as ONNX Runtime fp32
# or int8 (src/review_analysis/training/accelerate.py; speed and accuracy in docs/BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

name="" version="1.0" model_dirs=() handler="" config="" archive_name="" export_path="model_store" accelerate=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --model-dir) model_dirs+=("$2"); shift 2 ;;
    --handler) handler="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --archive-name) archive_name="$2"; shift 2 ;;
    --export-path) export_path="$2"; shift 2 ;;
    --accelerate) accelerate="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "build_mar.sh: unknown option $1" >&2; usage ;;
  esac
done
[[ -n "$name" && -n "$handler" ]] || usage
config="${config:-configs/$handler/model-config.yaml}"
archive_name="${archive_name:-$name}"
handler_file="handlers/$handler.py"

if [[ -z "${VIRTUAL_ENV:-}" && -x .venv/bin/torch-model-archiver ]]; then
  PATH="$PWD/.venv/bin:$PATH"
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/files/handlers" "$stage/files/model" "$export_path"
cp handlers/*.py "$stage/files/handlers/"
for spec in "${model_dirs[@]}"; do
  if [[ "$spec" == *=* ]]; then
    source_dir="${spec#*=}" target="$stage/files/model/${spec%%=*}"
  else
    source_dir="$spec" target="$stage/files/model"
  fi
  [[ -f "$source_dir/config.json" ]] || { echo "build_mar.sh: missing $source_dir/config.json" >&2; exit 1; }
  mkdir -p "$target"
  if [[ -n "$accelerate" ]]; then
    review-analysis train accelerate --model-dir "$source_dir" --output "$target" --engine "$accelerate"
  else
    cp -rL "$source_dir"/. "$target/"
  fi
done
for required in "$handler_file" "$config"; do
  [[ -f "$required" ]] || { echo "build_mar.sh: missing $required" >&2; exit 1; }
done

echo "Archiving $name $version ($(du -sh "$stage/files/model" | cut -f1) of model files) ..."
started=$SECONDS
# The manifest carries --model-name; the file may be renamed (e.g. one file per version).
torch-model-archiver \
  --model-name "$name" \
  --version "$version" \
  --handler "$handler_file" \
  --extra-files "$stage/files" \
  --config-file "$config" \
  --export-path "$stage" \
  --force
mv "$stage/$name.mar" "$export_path/$archive_name.mar"
echo "Wrote $export_path/$archive_name.mar ($(du -h "$export_path/$archive_name.mar" | cut -f1), $((SECONDS - started)) s)"
