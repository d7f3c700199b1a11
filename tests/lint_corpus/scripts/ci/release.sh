#!/usr/bin/env bash
set -euo pipefail
echo "running the release steps"
bash scripts/build.sh
