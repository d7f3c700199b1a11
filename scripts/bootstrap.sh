# shellcheck shell=bash
# Sourced by scripts/test and scripts/demo: creates .venv and installs the hash-pinned
# dependencies and digestgate itself. Idempotent and quiet when nothing changed.
# Arguments: the requirements files to install (default requirements.txt).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DIGESTGATE_VENV:-$ROOT/.venv}"
if [ $# -gt 0 ]; then REQS=("$@"); else REQS=("$ROOT/requirements.txt"); fi
req_args=()
for req in "${REQS[@]}"; do req_args+=(-r "$req"); done

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "digestgate needs Python 3.11 or newer; install it and run this again" >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  "$(find_python)" -m venv "$VENV"
fi

# A stamp of the requirements files decides whether anything needs installing.
stamp="$VENV/.digestgate-$(basename "${REQS[0]}").sha256"
want="$(cat "$ROOT/requirements-build.txt" "${REQS[@]}" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "setting up $VENV from ${REQS[*]##*/} ..." >&2
  if ! "$VENV/bin/python" -m uv --version >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv ||
      true # uv only speeds things up; pip below works without it
  fi
  if "$VENV/bin/python" -m uv --version >/dev/null 2>&1; then
    # The build backend first (pinned too): digestgate is installed without build isolation.
    "$VENV/bin/python" -m uv pip install --quiet --python "$VENV/bin/python" --require-hashes \
      -r "$ROOT/requirements-build.txt"
    "$VENV/bin/python" -m uv pip install --quiet --python "$VENV/bin/python" --require-hashes "${req_args[@]}"
    "$VENV/bin/python" -m uv pip install --quiet --python "$VENV/bin/python" --no-deps --no-build-isolation -e "$ROOT"
  else
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
      -r "$ROOT/requirements-build.txt"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes "${req_args[@]}"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT"
  fi
  echo "$want" >"$stamp"
fi
export PATH="$VENV/bin:$PATH"
