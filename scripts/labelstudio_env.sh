#!/usr/bin/env bash
# Create the virtual environment that holds Label Studio for the round-trip test.
#
# Label Studio pins its own Django/DRF/etc., which may clash with the project's
# dependencies, so it lives in a venv of its own (never the project's .venv).
#
#   scripts/labelstudio_env.sh [VENV_DIR]
#
# VENV_DIR defaults to $LABELCYCLE_LS_VENV, else ~/.cache/labelcycle/venv-labelstudio.
# The version is pinned by LABELCYCLE_LS_VERSION (default 1.23.2). Idempotent: when
# the venv already holds that version nothing is installed. Exit 3 when pip cannot
# reach a package index (tests turn that into a skip with the reason).
set -euo pipefail

VERSION="${LABELCYCLE_LS_VERSION:-1.23.2}"
VENV="${1:-${LABELCYCLE_LS_VENV:-$HOME/.cache/labelcycle/venv-labelstudio}}"
PYTHON="${LABELCYCLE_LS_PYTHON:-python3}"

if [ -x "$VENV/bin/label-studio" ] &&
    "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('label-studio') != '$VERSION')" 2>/dev/null; then
    echo "label-studio $VERSION already in $VENV"
    exit 0
fi

if ! pip download --quiet --no-deps --dest "$(mktemp -d)" "label-studio==$VERSION" >/dev/null 2>&1; then
    echo "pip cannot reach a package index to fetch label-studio==$VERSION" >&2
    exit 3
fi

mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "label-studio==$VERSION"
"$VENV/bin/python" -c "import importlib.metadata as m; print('label-studio', m.version('label-studio'), 'in', '$VENV')"
