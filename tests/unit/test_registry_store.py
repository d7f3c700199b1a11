"""The registry store against an in-memory registry: manifests, blobs, uploads, mounts, tags."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from digestgate.digest import Digest
from digestgate.errors import IntegrityError, NotFoundError, RegistryError
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor, ImageManifest, build_index
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.transport import base_url
from tests.unit.registry_fake import FakeRegistry, image, sha

LAYER = b"x" * 3000


def _blob(data: bytes) -> Descriptor:
    return Descriptor(media.OCI_LAYER_TAR_GZIP, Digest.parse(sha(data)), len(data))


def _pushed(fake: FakeRegistry, name: str = "app") -> tuple[bytes, str]:
    raw, blobs = image(LAYER)
    for data in blobs.values():
        fake.add_blob(name, data)
    return raw, fake.add_manifest(name, raw, media.OCI_MANIFEST, tag="v1")


def test_resolve_tag_hashes_the_exact_bytes() -> None:
    fake = FakeRegistry()
    raw, digest = _pushed(fake)
    with fake.client() as client:
        repo = client.repository("app")
        descriptor = repo.resolve("v1")
        assert str(descriptor.digest) == digest == "sha256:" + hashlib.sha256(raw).hexdigest()
        assert descriptor.size == len(raw)
        assert descriptor.media_type == media.OCI_MANIFEST
        assert repo.resolve(descriptor.digest).digest == descriptor.digest
        manifest = repo.get_manifest(descriptor.digest)
        assert isinstance(manifest, ImageManifest) and manifest.raw == raw
        assert repo.has_manifest(descriptor.digest)
        assert repo.get_tag("v1") == descriptor
        assert repo.get_tag("nope") is None
    accept = fake.requests[0].headers["accept"]
    assert media.OCI_INDEX in accept and media.DOCKER_MANIFEST in accept
    assert fake.requests[0].headers["user-agent"].startswith("digestgate/")


def test_missing_manifest_is_not_found() -> None:
    fake = FakeRegistry()
    with fake.client() as client, pytest.raises(NotFoundError) as info:
        client.repository("app").resolve("v9")
    assert info.value.exit_code == 3
    assert "MANIFEST_UNKNOWN" in str(info.value)


def test_put_manifest_by_digest_and_tag_then_tags() -> None:
    fake = FakeRegistry()
    raw, blobs = image(LAYER)
    with fake.client() as client:
        repo = client.repository("org/app")
        for digest, data in blobs.items():
            repo.put_blob(_blob(data), [data])
            assert repo.has_blob(Digest.parse(digest))
        descriptor = repo.put_manifest(raw, media.OCI_MANIFEST, tag="main")
        assert descriptor.digest == Digest.of(raw)
        repo.set_tag("release", descriptor)
        assert repo.list_tags() == ["main", "release"]
    assert fake.manifests[("org/app", str(descriptor.digest))][0] == raw
    puts = [r for r in fake.requests if r.method == "PUT" and "/manifests/" in r.url.path]
    assert {r.headers["content-type"] for r in puts} == {media.OCI_MANIFEST}


def test_put_manifest_with_disagreeing_digest_header_is_integrity_error() -> None:
    fake = FakeRegistry()
    lying = httpx.Response(201, headers={"Docker-Content-Digest": sha(b"other")})
    fake.faults.append(lambda r: lying if r.method == "PUT" else None)
    raw, _ = image()
    with fake.client() as client, pytest.raises(IntegrityError):
        client.repository("app").put_manifest(raw, media.OCI_MANIFEST)


def test_set_tag_that_reads_back_another_manifest_is_integrity_error() -> None:
    fake = FakeRegistry()
    raw, _ = _pushed(fake)
    other, _ = image(b"someone else's layer")
    fake.add_manifest("app", other, media.OCI_MANIFEST)
    moved = [False]

    def rival(request: httpx.Request) -> httpx.Response | None:
        # Another writer moves the tag between our PUT and our read-back.
        if request.method == "PUT" and request.url.path.endswith("/manifests/release"):
            moved[0] = True
            request.read()
            fake.add_manifest("app", other, media.OCI_MANIFEST, tag="release")
            return httpx.Response(201, headers={"Docker-Content-Digest": sha(raw)})
        return None

    fake.faults.append(rival)
    with fake.client() as client, pytest.raises(IntegrityError) as info:
        repo = client.repository("app")
        repo.set_tag("release", repo.resolve("v1"))
    assert moved[0]
    assert str(Digest.of(other)) in info.value.message
    assert info.value.exit_code == 3


def test_tag_list_pagination_follows_link() -> None:
    fake = FakeRegistry(tags_page=2)
    raw, _ = image()
    for tag in ["a", "b", "c", "d", "e"]:
        fake.add_manifest("app", raw, media.OCI_MANIFEST, tag=tag)
    with fake.client() as client:
        assert client.repository("app").list_tags() == ["a", "b", "c", "d", "e"]
        assert client.repository("empty").list_tags() == []
    assert fake.count("GET", "/tags/list") == 4


def test_open_blob_streams_verified_chunks() -> None:
    fake = FakeRegistry()
    data = bytes(range(256)) * 10000
    fake.add_blob("app", data)
    with fake.client() as client, client.repository("app").open_blob(_blob(data)) as chunks:
        assert b"".join(chunks) == data


@pytest.mark.parametrize("threshold", [0, 10**9])
def test_upload_monolithic_and_chunked(threshold: int) -> None:
    fake = FakeRegistry()
    data = bytes(range(256)) * 40
    with fake.client(chunk_threshold=threshold, chunk_size=1000) as client:
        client.repository("app").put_blob(_blob(data), [data[:7], data[7:5000], data[5000:]])
    assert fake.blobs["app"][sha(data)] == data
    patches = [r for r in fake.requests if r.method == "PATCH"]
    if threshold == 0:
        assert [r.headers["content-range"] for r in patches][:2] == ["0-999", "1000-1999"]
        assert len(patches) == 11
        # Each PATCH went to the newest Location, and the final PUT carried &digest=.
        assert [r.url.params["_state"] for r in patches[1:3]] != [
            r.url.params["_state"] for r in patches[:2]
        ]
    else:
        assert patches == []
        [put] = [r for r in fake.requests if r.method == "PUT"]
        assert put.headers["content-length"] == str(len(data))
    final = [r for r in fake.requests if r.method == "PUT"][-1]
    assert final.url.params["digest"] == sha(data) and "_state" in final.url.params


@pytest.mark.parametrize("threshold", [0, 10**9])
@pytest.mark.parametrize("source", [b"x" * 99, b"x" * 101, b"y" * 100])
def test_upload_refuses_source_not_matching_descriptor(threshold: int, source: bytes) -> None:
    fake = FakeRegistry()
    descriptor = _blob(b"x" * 100)
    client = fake.client(chunk_threshold=threshold, chunk_size=10)
    with client, pytest.raises(IntegrityError):
        client.repository("app").put_blob(descriptor, [source])
    assert fake.blobs.get("app", {}) == {}
    assert fake.count("DELETE") == 1  # the session was abandoned


@pytest.mark.parametrize("threshold", [0, 10**9])
def test_upload_stops_reading_a_source_at_its_first_excess_chunk(threshold: int) -> None:
    fake = FakeRegistry()
    descriptor = _blob(b"x" * 100)
    pulled: list[int] = []

    def endless() -> Iterator[bytes]:
        while len(pulled) < 1000:
            pulled.append(1)
            yield b"x" * 60

    client = fake.client(chunk_threshold=threshold, chunk_size=1000)
    with client, pytest.raises(IntegrityError):
        client.repository("app").put_blob(descriptor, endless())
    assert len(pulled) == 2  # 60 bytes, then 60 more than the 100 announced: stop
    assert fake.blobs.get("app", {}) == {}


@pytest.mark.parametrize("threshold", [10**9, 0], ids=["monolithic", "chunked"])
def test_upload_after_server_error_never_resends_blindly(threshold: int) -> None:
    # The registry may have committed a failed PUT before the answer was lost: the blob is
    # looked for first. A monolithic upload then starts a new session; a chunked one asks
    # its session what it holds and closes it again only on that answer.
    fake = FakeRegistry()
    data = b"z" * 50
    failures = iter([True])

    def fail_once(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PUT" and next(failures, False):
            request.read()
            return httpx.Response(500)
        return None

    fake.faults.append(fail_once)
    with fake.client(chunk_threshold=threshold, chunk_size=10) as client:
        client.repository("app").put_blob(_blob(data), [data])
    assert fake.blobs["app"][sha(data)] == data
    assert fake.count("HEAD", f"/blobs/{sha(data)}") == 1
    flow = [r.method for r in fake.requests if r.method != "HEAD"]
    if threshold:
        assert flow == ["POST", "PUT", "DELETE", "POST", "PUT"]
    else:
        assert flow == ["POST", *["PATCH"] * 5, "PUT", "GET", "PUT"]
    puts = [str(r.url) for r in fake.requests if r.method == "PUT"]
    assert len(puts) == 2 and len(set(puts)) == 2  # the second goes where the answer said


def test_upload_whose_answer_was_lost_after_commit_is_not_repeated() -> None:
    fake = FakeRegistry()
    data = b"w" * 40
    lost = [False]

    def commit_then_drop(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PUT" and not lost[0]:
            lost[0] = True
            fake.handle(request)  # the registry stores the blob ...
            raise httpx.ReadError("connection reset", request=request)  # ... the answer is lost
        return None

    fake.faults.append(commit_then_drop)
    with fake.client() as client:
        client.repository("app").put_blob(_blob(data), [data])
    assert fake.blobs["app"][sha(data)] == data
    assert fake.count("POST", "/blobs/uploads/") == 1  # found by HEAD, not uploaded twice
    assert fake.count("HEAD", f"/blobs/{sha(data)}") == 1


def test_upload_refused_with_a_client_error_is_not_restarted() -> None:
    fake = FakeRegistry()
    data = b"v" * 20
    fake.faults.append(
        lambda r: (
            (r.read(), httpx.Response(400, json={"errors": [{"code": "DIGEST_INVALID"}]}))[1]
            if r.method == "PUT"
            else None
        )
    )
    with fake.client() as client, pytest.raises(RegistryError) as info:
        client.repository("app").put_blob(_blob(data), [data])
    assert (info.value.status, info.value.code, info.value.exit_code) == (400, "DIGEST_INVALID", 3)
    assert fake.count("POST", "/blobs/uploads/") == 1
    assert fake.count("PUT") == 1


def test_one_shot_iterator_is_not_replayed() -> None:
    fake = FakeRegistry()
    data = b"q" * 20
    fake.faults.append(lambda r: (r.read(), httpx.Response(500))[1] if r.method == "PUT" else None)
    with fake.client() as client, pytest.raises(RegistryError) as info:
        client.repository("app").put_blob(_blob(data), iter([data]))
    assert info.value.status == 500
    assert fake.count("POST", "/blobs/uploads/") == 1


def test_mount_same_registry_then_stream_fallback() -> None:
    fake = FakeRegistry()
    data = b"shared layer"
    fake.add_blob("src", data)
    with fake.client() as client:
        dst, src = client.repository("dst"), client.repository("src")
        assert dst.mount_blob(_blob(data), src) is True
        assert fake.blobs["dst"][sha(data)] == data
        missing = _blob(b"not there")
        assert dst.mount_blob(missing, src) is False
    assert fake.count("DELETE") == 1  # the 202 session was abandoned
    assert fake.count("PUT") == 0 and fake.count("PATCH") == 0


def test_mount_refuses_other_registries() -> None:
    fake, other = FakeRegistry(), FakeRegistry()
    data = b"layer"
    with fake.client() as a, other.client() as b:
        b.registry = "elsewhere.test"
        assert a.repository("dst").mount_blob(_blob(data), b.repository("src")) is False
    assert fake.requests == []


def test_index_round_trip() -> None:
    fake = FakeRegistry()
    raw, _ = image()
    child = Descriptor(media.OCI_MANIFEST, Digest.of(raw), len(raw))
    index = build_index([child])
    with fake.client() as client:
        repo = client.repository("app")
        repo.put_manifest(raw, media.OCI_MANIFEST)
        descriptor = repo.put_manifest(index, media.OCI_INDEX, tag="multi")
        assert repo.resolve("multi") == descriptor
        assert descriptor.is_index


@pytest.mark.parametrize(
    ("registry", "options", "scheme"),
    [
        ("127.0.0.1:5000", StoreOptions(), "http"),
        ("localhost:5000", StoreOptions(), "http"),
        ("[::1]:5000", StoreOptions(), "http"),
        ("127.0.0.1:5000", StoreOptions(tls_hosts=frozenset({"127.0.0.1:5000"})), "https"),
        ("reg.internal:80", StoreOptions(insecure_hosts=frozenset({"reg.internal:80"})), "http"),
        ("reg.example", StoreOptions(), "https"),
    ],
)
def test_scheme_choice(registry: str, options: StoreOptions, scheme: str) -> None:
    assert base_url(registry, options).startswith(scheme + "://")


def test_docker_hub_uses_its_api_host() -> None:
    assert base_url("docker.io", StoreOptions()) == "https://registry-1.docker.io"


def test_plain_http_registry_sends_https_only_through_a_verifying_client() -> None:
    import ssl

    from digestgate.oci.registry.transport import Transport

    transport = Transport("127.0.0.1:5000", StoreOptions(), lambda: None)
    try:
        plain = transport.client_for(transport.url("/v2/"))
        secure = transport.client_for("https://storage.example/blob")
        assert plain is transport.client and secure is not plain
        pool = secure._transport._pool  # type: ignore[attr-defined]
        assert pool._ssl_context.verify_mode == ssl.CERT_REQUIRED
        assert pool._ssl_context.check_hostname
    finally:
        transport.close()


def test_verified_manifest_is_reused_but_a_put_forces_a_fresh_read() -> None:
    fake = FakeRegistry()
    raw, _ = image()
    digest = Digest.parse(fake.add_manifest("app", raw, media.OCI_MANIFEST))
    with fake.client() as client:
        repo = client.repository("app")
        sent = repo.transport.sent
        repo.get_manifest(digest)
        repo.resolve(digest)
        assert repo.transport.sent - sent == 1
        repo.put_manifest(raw, media.OCI_MANIFEST)
        sent = repo.transport.sent
        repo.resolve(digest)
        assert repo.transport.sent - sent == 1
