#!/usr/bin/env bash
# Installs Label Studio into a virtualenv of its own (its pins differ from ours), for tests/test_labelstudio.py.
# The tests look for $VOICECAP_TEST_LABEL_STUDIO, then /opt/ls-venv/bin/label-studio, then PATH.
# Usage: bash .ci/install-label-studio.sh            (LABEL_STUDIO_VENV overrides /opt/ls-venv)
set -euo pipefail

VENV=${LABEL_STUDIO_VENV:-/opt/ls-venv}
PY=${PYTHON:-python3}
SUDO=""
if [ "$(id -u)" != "0" ] && [ ! -w "$(dirname "$VENV")" ]; then SUDO="sudo"; fi

if [ -x "$VENV/bin/label-studio" ] && "$VENV/bin/python" -c "import label_studio" 2>/dev/null; then
  echo "== Label Studio already in $VENV"
  exit 0
fi

echo "== installing Label Studio into $VENV (takes a few minutes)"
$SUDO "$PY" -m venv "$VENV"
$SUDO "$VENV/bin/python" -m pip install -q --upgrade pip
$SUDO "$VENV/bin/python" -m pip install -q label-studio
"$VENV/bin/python" -c "import label_studio; print('== Label Studio', label_studio.__version__)"
