"""Unit tests of the example backend (the fast-check lane; not part of the image)."""

from __future__ import annotations

import server


def test_health() -> None:
    assert server.respond("/health") == (200, {"status": "ok"})


def test_version() -> None:
    assert server.respond("/api/version") == (200, {"api": server.API_VERSION})


def test_unknown_route() -> None:
    status, body = server.respond("/nope")
    assert status == 404
    assert "/nope" in body["error"]
