#!/usr/bin/env bash
set -euo pipefail
curl -fsS -X POST "$CHAT_WEBHOOK" -d "text=promoted ${GITHUB_SHA}" >/dev/null 2>&1
