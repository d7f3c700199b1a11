#!/usr/bin/env bash
set -euo pipefail
# build the release image
docker build \
  -t registry.example.org/app:local .
