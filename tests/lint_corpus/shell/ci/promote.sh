#!/usr/bin/env bash
# promote.sh REPOSITORY DIGEST TARGET: copy one digest to the production name.
set -euo pipefail
exec 2>&1
crane copy "$1@$2" "$3"
echo "copied $1@$2 to $3" 1>&2
