"""Promotion against real registries, with skopeo as the independent oracle, and faults.

A backend (two-platform index) and a frontend (single manifest) are pushed to staging by
skopeo, then promoted by digest. Faults are injected by an httpx transport wrapped around the
real one, in front of the real registry.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from digestgate.digest import Digest
from digestgate.errors import DigestgateError, ExitCode, IntegrityError, StorageError
from digestgate.evidence.dsse import verify_envelope
from digestgate.evidence.model import VerifiedEvidence, read_vsa
from digestgate.oci.manifest import Descriptor, ImageManifest
from digestgate.oci.open import Stores
from digestgate.oci.options import StoreOptions
from digestgate.promotion.promote import PromotionResult, promote
from digestgate.reference import ImageReference, Location, parse_location
from digestgate.release import Release
from tests.fixtures import images
from tests.fixtures.registry import Registry
from tests.fixtures.skopeo import inspect_digest, list_tags, push_layout
from tests.unit.test_promote import (
    NOW,
    Gated,
    Keys,
    attached_envelopes,
    make_keys,
    outcome_for,
    payload_of,
    release_of,
)

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

Fault = Callable[[httpx.Request], httpx.Response | None]


class FaultTransport(httpx.BaseTransport):
    """The real HTTP transport, with a fault hook that may answer (or fail) a request first."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.fault: Fault | None = None
        self.sent_body_bytes = 0
        self.uploaded: list[str] = []  # the digest each completed blob upload claimed

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.fault is not None:
            answer = self.fault(request)
            if answer is not None:
                return answer
        if request.method in ("PUT", "PATCH") and "/blobs/uploads/" in request.url.path:
            if request.method == "PUT" and "digest" in request.url.params:
                self.uploaded.append(request.url.params["digest"])
            request = _counting(request, self)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _counting(request: httpx.Request, transport: FaultTransport) -> httpx.Request:
    original = request.stream
    assert isinstance(original, httpx.SyncByteStream)
    stream: httpx.SyncByteStream = original

    class Counted(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for chunk in stream:
                transport.sent_body_bytes += len(chunk)
                yield chunk

    return httpx.Request(
        request.method,
        request.url,
        headers=request.headers,
        stream=Counted(),
        extensions=request.extensions,
    )


@pytest.fixture
def transport() -> Iterator[FaultTransport]:
    t = FaultTransport()
    yield t
    t.close()


@pytest.fixture
def stores(transport: FaultTransport) -> Iterator[Stores]:
    with Stores(StoreOptions(transport=transport, retries=1, backoff=0.01)) as session:
        yield session


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return make_keys(tmp_path / "keys")


def staged(registry: Registry, repo: str, tmp_path: Path, seed: int) -> Release:
    """backend (two-platform index) and frontend pushed by skopeo to REPO/staging/NAME."""
    backend = images.make_index(tmp_path / "backend", tag="b", seed=seed)
    frontend = images.make_image(tmp_path / "frontend", tag="f", seed=seed + 1, layers=3)
    locations: dict[str, Location] = {}
    for name, info, layout in (
        ("backend", backend, tmp_path / "backend"),
        ("frontend", frontend, tmp_path / "frontend"),
    ):
        digest = push_layout(layout, info.digest, registry, f"{repo}/staging/{name}")
        locations[name] = parse_location(registry.ref(f"{repo}/staging/{name}", digest))
    return release_of(locations)


def do_promote(
    release: Release, outcome: Gated, stores: Stores, target: str, keys: Keys, **kw: Any
) -> PromotionResult:
    options: dict[str, Any] = {
        "policy": outcome.policy,
        "evidence_stores": [outcome.store],
        "tags": ("v1.0", "latest"),
        "signer": keys.signer,
        "now": NOW,
        "concurrency": 4,
    }
    options.update(kw)
    return promote(release=release, target=target, stores=stores, **options)


def manifest_digests(stores: Stores, location: Location) -> list[str]:
    """The digest and every child digest of the manifest at ``location``."""
    assert location.digest is not None
    manifest = stores.open(location).get_manifest(location.digest)
    children = getattr(manifest, "manifests", ())
    return [str(location.digest), *(str(child.digest) for child in children)]


def test_same_registry_promotion_mounts_and_keeps_digests(
    registry: Registry,
    repo: str,
    tmp_path: Path,
    stores: Stores,
    keys: Keys,
    transport: FaultTransport,
) -> None:
    release = staged(registry, repo, tmp_path, seed=300)
    outcome = outcome_for(keys, release)
    transport.sent_body_bytes = 0
    result = do_promote(release, outcome, stores, registry.ref(f"{repo}/prod"), keys)
    assert transport.sent_body_bytes < 64 * 1024  # only evidence, never image content
    # The images are smaller than that bound: no layer or config went up as an upload.
    image_blobs = {
        str(blob.digest)
        for name in ("backend", "frontend")
        for blob in _blobs(stores, release.artifacts[name].location)  # type: ignore[arg-type]
    }
    assert transport.uploaded and not image_blobs & set(transport.uploaded)
    for name in ("backend", "frontend"):
        report = result.reports[name]
        assert report.bytes_uploaded == 0
        assert report.blobs_mounted > 0
        assert result.promotion is not None
        target = result.promotion.artifacts[name].location
        assert target is not None
        for digest in manifest_digests(stores, release.artifacts[name].location):  # type: ignore[arg-type]
            assert inspect_digest(registry, f"{repo}/prod/{name}@{digest}") == digest
        for tag in ("v1.0", "latest"):
            assert inspect_digest(registry, f"{repo}/prod/{name}:{tag}") == str(target.digest)
        found = {Digest.of(raw): raw for raw in attached_envelopes(stores, name, target)}
        for evidence in outcome.evidence[name]:
            assert evidence.envelope_digest in found
        assert result.gate is not None
        assert Digest.of(result.gate.vsas[name]) in found
        kinds = [payload_of(raw)["predicate"].get("digestgate_kind") for raw in found.values()]
        assert kinds.count("promotion") == 1
        record = next(
            raw
            for raw in found.values()
            if payload_of(raw)["predicate"].get("digestgate_kind") == "promotion"
        )
        verified = verify_envelope(record, {"gate": keys.public}, origin="target")
        assert isinstance(verified, VerifiedEvidence)
        assert read_vsa(verified.statement).resource_uri == str(target)


def test_cross_registry_promotion_copies_everything(
    registry: Registry,
    registry2: Registry,
    repo: str,
    tmp_path: Path,
    stores: Stores,
    keys: Keys,
) -> None:
    release = staged(registry, repo, tmp_path, seed=310)
    result = do_promote(release, outcome_for(keys, release), stores, registry2.ref(repo), keys)
    for name in ("backend", "frontend"):
        report = result.reports[name]
        assert report.blobs_mounted == 0
        assert report.blobs_uploaded > 0
        for digest in manifest_digests(stores, release.artifacts[name].location):  # type: ignore[arg-type]
            assert inspect_digest(registry2, f"{repo}/{name}@{digest}") == digest
        assert list_tags(registry2, f"{repo}/{name}") == sorted(
            ["latest", "v1.0", *_fallback_tags(registry2, f"{repo}/{name}")]
        )


def _blobs(stores: Stores, location: Location) -> list[Descriptor]:
    """Every config and layer of the image (or of each image of the index) at ``location``."""
    assert location.digest is not None
    store = stores.open(location)
    found: list[Descriptor] = []
    for digest in manifest_digests(stores, location):
        manifest = store.get_manifest(Digest.parse(digest))
        if isinstance(manifest, ImageManifest):
            found.extend([manifest.config, *manifest.layers])
    return found


def image_tags(stores: Stores, registry: Registry, repo: str) -> list[str]:
    """Tags of ``repo`` other than the referrers fallback tags (an absent repo has none)."""
    tags = stores.open(parse_location(registry.ref(repo))).list_tags()
    return [t for t in tags if not t.startswith("sha256-")]


def _fallback_tags(registry: Registry, repo: str) -> list[str]:
    return [t for t in list_tags(registry, repo) if t.startswith("sha256-")]


def _storage(registry: Registry) -> set[str]:
    root = registry.root / "docker" / "registry" / "v2" / "blobs"
    return {str(p.relative_to(root)) for p in root.rglob("data")} if root.exists() else set()


def test_blocked_outcome_writes_nothing(
    registry: Registry, repo: str, tmp_path: Path, stores: Stores, keys: Keys
) -> None:
    release = staged(registry, repo, tmp_path, seed=320)
    blobs_before = _storage(registry)
    with pytest.raises(DigestgateError) as caught:
        do_promote(
            release,
            outcome_for(keys, release, passed=False),
            stores,
            registry.ref(f"{repo}/prod"),
            keys,
        )
    assert caught.value.exit_code == ExitCode.BLOCKED
    assert _storage(registry) == blobs_before
    for name in ("backend", "frontend"):
        assert image_tags(stores, registry, f"{repo}/prod/{name}") == []


def _upload_to(host: str, action: Callable[[httpx.Request], httpx.Response | None]) -> Fault:
    """Apply ``action`` to blob upload requests carrying a body, on ``host`` only."""

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.url.netloc.decode() != host:
            return None
        upload = request.method in ("PUT", "PATCH") and "/blobs/uploads/" in request.url.path
        if upload and request.headers.get("content-length", "0") != "0":
            return action(request)
        return None

    return fault


def _half_read(request: httpx.Request) -> None:
    stream = request.stream
    assert isinstance(stream, httpx.SyncByteStream)
    for _ in stream:
        break


def _503(request: httpx.Request) -> httpx.Response:
    _half_read(request)
    return httpx.Response(503, json={"errors": [{"code": "UNAVAILABLE", "message": "busy"}]})


def _reset(request: httpx.Request) -> httpx.Response:
    _half_read(request)
    raise httpx.WriteError("connection reset by peer", request=request)


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.WriteTimeout("timed out", request=request)


def _wrong_manifest_digest(host: str) -> Fault:
    def fault(request: httpx.Request) -> httpx.Response | None:
        if (
            request.url.netloc.decode() == host
            and request.method == "PUT"
            and "/manifests/sha256:" in request.url.path
        ):
            request.read()
            return httpx.Response(
                201, headers={"Docker-Content-Digest": str(Digest.of(b"not the manifest"))}
            )
        return None

    return fault


@pytest.mark.parametrize("kind", ["503", "reset", "timeout", "manifest-digest"])
def test_faults_move_no_tag_and_the_next_run_completes(
    kind: str,
    registry: Registry,
    registry2: Registry,
    repo: str,
    tmp_path: Path,
    stores: Stores,
    keys: Keys,
    transport: FaultTransport,
) -> None:
    release = staged(registry, repo, tmp_path, seed=330 + len(kind))
    outcome = outcome_for(keys, release)
    target = registry2.ref(f"{repo}/{kind}")
    transport.fault = {
        "503": _upload_to(registry2.host, _503),
        "reset": _upload_to(registry2.host, _reset),
        "timeout": _upload_to(registry2.host, _timeout),
        "manifest-digest": _wrong_manifest_digest(registry2.host),
    }[kind]
    with pytest.raises(DigestgateError) as caught:
        do_promote(release, outcome, stores, target, keys)
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    if kind == "manifest-digest":
        assert isinstance(caught.value, IntegrityError)
    assert "no tag was changed" in caught.value.message
    for name in ("backend", "frontend"):
        assert image_tags(stores, registry2, f"{repo}/{kind}/{name}") == []
    transport.fault = None
    result = do_promote(release, outcome, stores, target, keys)
    assert result.promotion is not None
    for name in ("backend", "frontend"):
        digest = str(release.artifacts[name].digest)
        assert inspect_digest(registry2, f"{repo}/{kind}/{name}:v1.0") == digest


def test_full_disk_on_a_layout_target(
    registry: Registry,
    repo: str,
    tmp_path: Path,
    stores: Stores,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = staged(registry, repo, tmp_path, seed=340)
    outcome = outcome_for(keys, release)
    out = tmp_path / "out"
    real_write = os.write

    def full(fd: int, data: bytes | memoryview) -> int:
        if Path(f"/proc/self/fd/{fd}").readlink().is_relative_to(out.resolve()):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StorageError) as caught:
        do_promote(release, outcome, stores, f"oci:{out}", keys)
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    for name in ("backend", "frontend"):
        index = out / name / "index.json"
        assert not index.exists() or "ref.name" not in index.read_text()
    monkeypatch.setattr(os, "write", real_write)
    result = do_promote(release, outcome, stores, f"oci:{out}", keys)
    assert result.promotion is not None
    layout = stores.open(parse_location(f"oci:{out}/backend"))
    tagged = layout.get_tag("v1.0")
    assert tagged is not None
    assert tagged.digest == release.artifacts["backend"].digest


def test_immutable_tag_refused_and_mutable_tag_moved(
    registry: Registry, repo: str, tmp_path: Path, stores: Stores, keys: Keys
) -> None:
    first = staged(registry, repo, tmp_path / "one", seed=350)
    target = registry.ref(f"{repo}/prod")
    do_promote(first, outcome_for(keys, first), stores, target, keys)
    second = staged(registry, repo, tmp_path / "two", seed=360)
    outcome = outcome_for(keys, second)
    blobs_before = _storage(registry)
    with pytest.raises(DigestgateError) as caught:
        do_promote(second, outcome, stores, target, keys)
    assert caught.value.exit_code == ExitCode.BLOCKED
    assert "promotion.tag-immutable" in caught.value.message
    assert _storage(registry) == blobs_before
    result = do_promote(second, outcome, stores, target, keys, tags=("v1.1", "latest"))
    assert result.promotion is not None
    backend = result.promotion.artifacts["backend"]
    previous = {t.tag: t.previous for t in backend.tags}
    assert previous == {"v1.1": None, "latest": first.artifacts["backend"].digest}
    assert inspect_digest(registry, f"{repo}/prod/backend:v1.0") == str(
        first.artifacts["backend"].digest
    )
    assert inspect_digest(registry, f"{repo}/prod/backend:latest") == str(
        second.artifacts["backend"].digest
    )
    assert isinstance(backend.location, ImageReference)
