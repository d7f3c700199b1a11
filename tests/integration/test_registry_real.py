"""The registry client against the real distribution registry, with skopeo as the oracle.

Digests are always checked against ``sha256(skopeo inspect --raw)``: what an independent
client reads back from the registry.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from digestgate.digest import Digest
from digestgate.errors import AuthError, IntegrityError, RegistryError
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor, build_artifact_manifest
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.client import RegistryClient
from digestgate.oci.registry.repository import RegistryRepository
from tests.fixtures import images
from tests.fixtures.registry import READER_USER, Registry
from tests.fixtures.skopeo import inspect_digest, list_tags, push_layout

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


class Recording(httpx.BaseTransport):
    """The real transport, recording each request's method, path and body size."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        with self.lock:
            self.sent.append((request.method, str(request.url), len(body)))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _client(
    registry: Registry,
    *,
    transport: httpx.BaseTransport | None = None,
    credentials: tuple[str, str] | None = None,
    anonymous: bool = False,
    chunk_threshold: int = 1 << 40,
    chunk_size: int = 1 << 20,
) -> RegistryClient:
    options = StoreOptions(
        transport=transport,
        tls_hosts=frozenset({registry.host}) if registry.ca_file else frozenset(),
        ca_bundle=str(registry.ca_file) if registry.ca_file else None,
        retries=1,
        backoff=0.05,
        timeout=10,
    )
    if credentials is None and not anonymous and registry.username and registry.password:
        credentials = (registry.username, registry.password)
    env = {}
    if credentials is not None and not anonymous:
        env = {
            "DIGESTGATE_REGISTRY_HOST": registry.host,
            "DIGESTGATE_REGISTRY_USERNAME": credentials[0],
            "DIGESTGATE_REGISTRY_PASSWORD": credentials[1],
        }
    return RegistryClient(
        registry.host, options, environ=env, chunk_threshold=chunk_threshold, chunk_size=chunk_size
    )


def _layout_blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def _push_image(repo: RegistryRepository, layout: Path, image: images.ImageInfo) -> Descriptor:
    for blob in image.blobs:
        descriptor = Descriptor(blob.media_type, Digest.parse(blob.digest), blob.size)
        data = _layout_blob(layout, blob.digest)
        repo.put_blob(descriptor, [data[i : i + 1000] for i in range(0, len(data), 1000)])
    return repo.put_manifest(image.manifest, image.media_type)


@pytest.fixture
def client(registry: Registry) -> Iterator[RegistryClient]:
    with _client(registry) as session:
        yield session


def test_skopeo_pushed_image_resolves_to_its_digest(
    client: RegistryClient, registry: Registry, repo: str, tmp_path: Path
) -> None:
    written = images.make_index(tmp_path / "l", tag="v1", seed=21, docker=True)
    push_layout(tmp_path / "l", "v1", registry, repo, tag="v1")
    store = client.repository(repo)
    descriptor = store.resolve("v1")
    assert str(descriptor.digest) == inspect_digest(registry, f"{repo}:v1") == written.digest
    assert descriptor.media_type == media.DOCKER_MANIFEST_LIST
    for child in written.children:
        assert store.get_manifest(Digest.parse(child.digest)).raw == child.manifest


def test_client_pushed_index_is_read_back_by_skopeo(
    client: RegistryClient, registry: Registry, repo: str, tmp_path: Path
) -> None:
    written = images.make_index(tmp_path / "l", seed=22)
    store = client.repository(repo)
    for child in written.children:
        assert str(_push_image(store, tmp_path / "l", child).digest) == child.digest
    index = store.put_manifest(written.manifest, written.media_type, tag="multi")
    assert str(index.digest) == written.digest
    assert inspect_digest(registry, f"{repo}:multi") == written.digest
    for child in written.children:
        assert inspect_digest(registry, f"{repo}@{child.digest}") == child.digest
    assert store.list_tags() == ["multi"]


def test_mount_uploads_no_blob_bytes(registry: Registry, repo: str, tmp_path: Path) -> None:
    image = images.make_image(tmp_path / "l", seed=23)
    recording = Recording()
    with _client(registry, transport=recording) as client:
        source = client.repository(f"{repo}/src")
        _push_image(source, tmp_path / "l", image)
        recording.sent.clear()
        target = client.repository(f"{repo}/dst")
        for blob in image.blobs:
            descriptor = Descriptor(blob.media_type, Digest.parse(blob.digest), blob.size)
            assert target.mount_blob(descriptor, source) is True
        target.put_manifest(image.manifest, image.media_type, tag="v1")
    uploads = [(m, u) for m, u, size in recording.sent if m in ("PUT", "PATCH") and "/blobs/" in u]
    assert uploads == []
    assert sum(size for m, u, size in recording.sent if "/blobs/" in u) == 0
    assert inspect_digest(registry, f"{repo}/dst:v1") == image.digest


@pytest.mark.parametrize("threshold", [0, 1 << 40], ids=["chunked", "monolithic"])
def test_uploads_round_trip(registry: Registry, repo: str, threshold: int) -> None:
    data = os.urandom(2_500_000)
    descriptor = Descriptor(media.OCI_LAYER_TAR, Digest.of(data), len(data))
    recording = Recording()
    client = _client(registry, transport=recording, chunk_threshold=threshold, chunk_size=1 << 20)
    with client:
        store = client.repository(repo)
        store.put_blob(descriptor, [data[i : i + 65536] for i in range(0, len(data), 65536)])
        assert store.has_blob(descriptor.digest)
        with store.open_blob(descriptor) as chunks:
            assert hashlib.sha256(b"".join(chunks)).hexdigest() == descriptor.digest.hex
    patches = [size for m, _, size in recording.sent if m == "PATCH"]
    assert patches == ([1 << 20, 1 << 20, len(data) - (2 << 20)] if threshold == 0 else [])


def test_wrong_source_bytes_are_never_committed(client: RegistryClient, repo: str) -> None:
    data = b"a" * 1000
    descriptor = Descriptor(media.OCI_LAYER_TAR, Digest.of(data), len(data))
    store = client.repository(repo)
    with pytest.raises(IntegrityError):
        store.put_blob(descriptor, [b"b" * 1000])
    assert not store.has_blob(descriptor.digest)


def test_tags_and_set_tag(
    client: RegistryClient, registry: Registry, repo: str, tmp_path: Path
) -> None:
    image = images.make_image(tmp_path / "l", seed=24)
    store = client.repository(repo)
    descriptor = _push_image(store, tmp_path / "l", image)
    for tag in ["b", "a", "v1.0"]:
        store.set_tag(tag, descriptor)
    assert store.list_tags() == ["a", "b", "v1.0"] == list_tags(registry, repo)
    assert store.get_tag("a") == descriptor
    assert store.get_tag("missing") is None


def _referrer(subject: Descriptor, n: int) -> bytes:
    envelope = f'{{"n":{n}}}'.encode()
    layer = Descriptor(media.DSSE_ENVELOPE, Digest.of(envelope), len(envelope))
    return build_artifact_manifest(
        artifact_type=media.evidence_artifact_type("test-result"),
        layers=[layer],
        subject=subject,
        annotations={"n": str(n)},
    )


def _push_envelope(store: RegistryRepository, n: int) -> None:
    envelope = f'{{"n":{n}}}'.encode()
    store.put_blob(Descriptor(media.DSSE_ENVELOPE, Digest.of(envelope), len(envelope)), [envelope])
    store.put_blob(
        Descriptor(media.OCI_EMPTY, Digest.parse(media.EMPTY_DIGEST), 2), [media.EMPTY_JSON]
    )


def _in_threads(task: Callable[[int], None], keys: tuple[int, ...]) -> list[BaseException]:
    """Run ``task(key)`` for every key in its own thread; the exceptions raised."""
    errors: list[BaseException] = []

    def run(key: int) -> None:
        try:
            task(key)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_referrers_tag_schema_fallback_with_concurrent_writers(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    image = images.make_image(tmp_path / "l", seed=25)
    with _client(registry) as client:
        store = client.repository(repo)
        subject = _push_image(store, tmp_path / "l", image)
        assert store.referrers(subject.digest) == []
        assert client.referrers_mode == "tag-schema"
        for n in range(1, 5):
            _push_envelope(store, n)
        first = store.put_referrer(_referrer(subject, 1), media.OCI_MANIFEST, subject)

    results: dict[int, Descriptor] = {}
    barrier = threading.Barrier(3)

    def writer(n: int) -> None:
        with _client(registry) as own:
            barrier.wait()
            mine = own.repository(repo)
            results[n] = mine.put_referrer(_referrer(subject, n), media.OCI_MANIFEST, subject)

    assert _in_threads(writer, (2, 3, 4)) == []
    with _client(registry) as client:
        listed = client.repository(repo).referrers(subject.digest)
        typed = client.repository(repo).referrers(
            subject.digest, media.evidence_artifact_type("test-result")
        )
        other = client.repository(repo).referrers(subject.digest, "application/x-none")
    expected = {first.digest, *(d.digest for d in results.values())}
    assert {d.digest for d in listed} == expected and len(listed) == 4
    assert {d.digest for d in typed} == expected and other == []
    assert inspect_digest(registry, f"{repo}:{subject.digest.tag_form}")  # a real index tag


def test_basic_auth(basic_registry: Registry, repo: str, tmp_path: Path) -> None:
    image = images.make_image(tmp_path / "l", seed=26)
    with _client(basic_registry) as client:
        descriptor = _push_image(client.repository(repo), tmp_path / "l", image)
        assert client.repository(repo).resolve(descriptor.digest) == descriptor
    with _client(basic_registry, anonymous=True) as anonymous, pytest.raises(AuthError):
        anonymous.repository(repo).resolve(descriptor.digest)
    wrong = ("alice", "not-the-password")
    with _client(basic_registry, credentials=wrong) as client, pytest.raises(AuthError) as info:
        client.repository(repo).resolve(descriptor.digest)
    assert "not-the-password" not in f"{info.value} {info.value.hint}"


def test_token_auth_scopes_including_mount(
    token_registry: Registry, repo: str, tmp_path: Path
) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    image = images.make_image(tmp_path / "l", seed=27)
    tokens.clear()
    with _client(token_registry) as client:
        source = client.repository(f"{repo}/src")
        _push_image(source, tmp_path / "l", image)
        target = client.repository(f"{repo}/dst")
        for blob in image.blobs:
            descriptor = Descriptor(blob.media_type, Digest.parse(blob.digest), blob.size)
            assert target.mount_blob(descriptor, source) is True
        target.put_manifest(image.manifest, image.media_type, tag="v1")
        assert str(target.resolve("v1").digest) == image.digest
    requests = [r.scopes for r in tokens.requests]
    assert (f"repository:{repo}/src:pull,push",) in requests
    assert (f"repository:{repo}/dst:pull,push", f"repository:{repo}/src:pull") in requests
    # One token per scope set: pushing several blobs did not fetch a token each time.
    assert len(requests) == len(set(requests))
    assert inspect_digest(token_registry, f"{repo}/dst:v1") == image.digest

    with _client(token_registry, credentials=READER_USER) as reader:
        assert str(reader.repository(f"{repo}/dst").resolve("v1").digest) == image.digest
        with pytest.raises(AuthError) as info:
            reader.repository(f"{repo}/dst").put_manifest(image.manifest, image.media_type)
    assert READER_USER[1] not in f"{info.value} {info.value.hint}"


def test_tls_with_and_without_ca_bundle(tls_registry: Registry, repo: str, tmp_path: Path) -> None:
    image = images.make_image(tmp_path / "l", seed=28)
    with _client(tls_registry) as client:
        descriptor = _push_image(client.repository(repo), tmp_path / "l", image)
    assert inspect_digest(tls_registry, f"{repo}@{descriptor.digest}") == image.digest
    options = StoreOptions(tls_hosts=frozenset({tls_registry.host}), retries=0, timeout=5)
    untrusting = RegistryClient(tls_registry.host, options, environ={})
    with untrusting, pytest.raises(RegistryError) as info:
        untrusting.repository(repo).resolve(descriptor.digest)
    assert info.value.exit_code == 3 and "cannot reach" in str(info.value)


def test_batched_referrers_of_concurrent_writers_are_all_listed(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    image = images.make_image(tmp_path / "l", seed=26)
    with _client(registry) as client:
        store = client.repository(repo)
        subject = _push_image(store, tmp_path / "l", image)
        for n in range(10, 16):
            _push_envelope(store, n)
    batches = {0: (10, 11, 12), 1: (13, 14, 15)}
    results: dict[int, list[Descriptor]] = {}
    barrier = threading.Barrier(len(batches))

    def writer(key: int) -> None:
        with _client(registry) as own:
            mine = own.repository(repo)
            manifests = [(_referrer(subject, n), media.OCI_MANIFEST) for n in batches[key]]
            barrier.wait()
            results[key] = mine.put_referrers(subject, manifests)

    assert _in_threads(writer, tuple(batches)) == []
    with _client(registry) as client:
        listed = {d.digest for d in client.repository(repo).referrers(subject.digest)}
    written = {d.digest for batch in results.values() for d in batch}
    assert written == {Digest.of(_referrer(subject, n)) for n in range(10, 16)}
    assert listed == written
