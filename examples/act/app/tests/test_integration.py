"""Integration lane (stand-in): both runtime images, by digest, tested over HTTP together."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_backend_is_healthy(backend_url: str) -> None:
    status, body = get(f"{backend_url}/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})


def test_backend_refuses_unknown_routes(backend_url: str) -> None:
    status, _ = get(f"{backend_url}/admin")
    assert status == 404


def test_frontend_speaks_the_backend_api_version(backend_url: str, frontend_url: str) -> None:
    _, config = get(f"{frontend_url}/config.json")
    _, version = get(f"{backend_url}/api/version")
    assert json.loads(config)["api"] == json.loads(version)["api"]
