#!/usr/bin/env bash
# Run the release pipeline locally under nektos/act: examples/act/release.yml, end to end.
# Usage: bash examples/act/run.sh [--rebuild-after-lanes] [--work DIR] [--registry HOST:PORT]
# Needs docker-registry and skopeo (Debian packages); sets up .venv with the development
# requirements and act (requirements-act.txt), then runs examples/act/run.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
for tool in docker-registry skopeo; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "examples/act/run.sh: $tool is not installed (Debian: apt-get install $tool)" >&2
    exit 2
  fi
done
# shellcheck source=../../scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh" "$ROOT/requirements-dev.txt" "$ROOT/requirements-act.txt"
exec python "$ROOT/examples/act/run.py" "$@"
