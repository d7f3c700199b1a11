"""``digestgate resolve``: the digest printed is sha256 of the manifest bytes; exit codes."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from digestgate.cli import options as cli_options
from digestgate.oci import media
from digestgate.oci.options import StoreOptions
from tests.conftest import run_cli
from tests.fixtures import images
from tests.fixtures.registry import Registry
from tests.fixtures.skopeo import inspect_digest, push_layout


def _patch_options(monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    """Make the command's StoreOptions fast (no backoff) or fake (a MockTransport)."""
    original: Callable[..., StoreOptions] = cli_options.store_options_from

    def patched(*args: Any, **kwargs: Any) -> StoreOptions:
        return dataclasses.replace(original(*args, **kwargs), **changes)

    monkeypatch.setattr(cli_options, "store_options_from", patched)


@pytest.mark.registry
@pytest.mark.skopeo
def test_resolve_tag_and_digest(registry: Registry, repo: str, tmp_path: Path) -> None:
    written = images.make_image(tmp_path / "l", tag="v1", seed=31)
    push_layout(tmp_path / "l", "v1", registry, repo, tag="v1")
    expected = inspect_digest(registry, f"{repo}:v1")
    assert expected == written.digest
    by_tag = run_cli("resolve", registry.ref(repo, "v1"))
    assert (by_tag.code, by_tag.stdout) == (0, f"{registry.host}/{repo}@{expected}\n")
    by_digest = run_cli("resolve", registry.ref(repo, expected))
    assert (by_digest.code, by_digest.stdout) == (0, by_tag.stdout)


@pytest.mark.registry
def test_resolve_missing_tag_is_operational(registry: Registry, repo: str) -> None:
    result = run_cli("resolve", registry.ref(repo, "nope"))
    assert result.code == 3
    assert "MANIFEST_UNKNOWN" in result.stderr or "NAME_UNKNOWN" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.registry
@pytest.mark.skopeo
def test_resolve_over_tls_needs_the_ca(
    tls_registry: Registry, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = images.make_image(tmp_path / "l", tag="v1", seed=32)
    push_layout(tmp_path / "l", "v1", tls_registry, repo, tag="v1")
    ref = tls_registry.ref(repo, "v1")
    flags = ["--tls-registry", tls_registry.host, "--registry-timeout", "5"]
    ok = run_cli("resolve", ref, *flags, "--ca-bundle", str(tls_registry.ca_file))
    assert (ok.code, ok.stdout.strip()) == (0, f"{tls_registry.host}/{repo}@{written.digest}")
    _patch_options(monkeypatch, retries=0)
    refused = run_cli("resolve", ref, *flags)
    assert refused.code == 3 and refused.stdout == ""


@pytest.mark.parametrize(
    "ref",
    ["127.0.0.1:5000/App:v1", "127.0.0.1:5000/app@sha256:abc", "https://reg.example/app", ""],
)
def test_malformed_reference_is_usage_error(ref: str) -> None:
    result = run_cli("resolve", ref)
    assert result.code == 2
    assert result.stdout == ""


def test_unreachable_registry_is_operational(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _patch_options(monkeypatch, retries=1, backoff=0.0)
    result = run_cli("resolve", f"127.0.0.1:{port}/app:v1", "--registry-timeout", "2")
    assert result.code == 3
    assert f"cannot reach registry 127.0.0.1:{port}" in result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.stderr


def test_integrity_error_is_operational_and_prints_no_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = b'{"schemaVersion":2,"mediaType":"' + media.OCI_INDEX.encode() + b'","manifests":[]}'
    lie = "sha256:" + "0" * 64

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Type": media.OCI_INDEX, "Docker-Content-Digest": lie}
        return httpx.Response(200, headers=headers, content=raw)

    _patch_options(monkeypatch, transport=httpx.MockTransport(handler), retries=0)
    result = run_cli("resolve", "registry.example/app:v1")
    assert result.code == 3
    assert result.stdout == ""
    assert "Docker-Content-Digest" in result.stderr


def test_resolve_layout(tmp_path: Path) -> None:
    written = images.make_image(tmp_path / "layout", tag="v1", seed=33)
    result = run_cli("resolve", f"oci:{tmp_path / 'layout'}:v1")
    assert (result.code, result.stdout) == (0, f"oci:{tmp_path / 'layout'}@{written.digest}\n")
