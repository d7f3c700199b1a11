"""Fault injection: each fault ends in the documented error class, never a wrong digest."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import httpx
import pytest

from digestgate.digest import Digest
from digestgate.errors import DigestgateError, IntegrityError, OperationalError, RegistryError
from digestgate.oci import media
from digestgate.oci.manifest import MAX_MANIFEST_SIZE, Descriptor
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.client import RegistryClient
from tests.unit.registry_fake import FakeRegistry, image, sha


def _with_manifest() -> tuple[FakeRegistry, bytes]:
    fake = FakeRegistry()
    raw, _ = image()
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    return fake, raw


def _first(
    n: int, answer: Callable[[], httpx.Response]
) -> Callable[[httpx.Request], httpx.Response | None]:
    left = [n]

    def fault(_request: httpx.Request) -> httpx.Response | None:
        if left[0] > 0:
            left[0] -= 1
            return answer()
        return None

    return fault


def test_503_then_success_is_retried() -> None:
    fake, raw = _with_manifest()
    fake.faults.append(_first(2, lambda: httpx.Response(503)))
    delays: list[float] = []
    with fake.client(sleep=delays.append) as client:
        assert client.repository("app").resolve("v1").digest == Digest.of(raw)
    assert len(fake.requests) == 3
    assert len(delays) == 2


def test_429_honours_retry_after() -> None:
    fake, raw = _with_manifest()
    fake.faults.append(_first(1, lambda: httpx.Response(429, headers={"Retry-After": "7"})))
    delays: list[float] = []
    with fake.client(sleep=delays.append) as client:
        assert client.repository("app").resolve("v1").digest == Digest.of(raw)
    assert delays == [7.0]


def test_retry_after_is_capped() -> None:
    fake, _ = _with_manifest()
    fake.faults.append(_first(1, lambda: httpx.Response(429, headers={"Retry-After": "86400"})))
    delays: list[float] = []
    with fake.client(sleep=delays.append) as client:
        client.repository("app").resolve("v1")
    assert delays and delays[0] <= 30


def test_persistent_5xx_gives_registry_error_after_retries() -> None:
    fake, _ = _with_manifest()
    fake.faults.append(lambda _r: httpx.Response(502, text="bad gateway"))
    with fake.client() as client, pytest.raises(RegistryError) as info:
        client.repository("app").resolve("v1")
    assert info.value.status == 502 and info.value.exit_code == 3
    assert len(fake.requests) == 4  # 1 + 3 retries


def test_redirect_loop_is_cut_off() -> None:
    fake = FakeRegistry()
    data = b"blob"
    descriptor = Descriptor(media.OCI_LAYER_TAR, Digest.of(data), len(data))
    fake.faults.append(
        lambda r: httpx.Response(307, headers={"Location": f"/hop{len(fake.requests)}"})
    )
    client = fake.client()
    with (
        client,
        pytest.raises(RegistryError) as info,
        client.repository("app").open_blob(descriptor),
    ):
        pass
    assert "more than 5 redirects" in info.value.message
    assert len(fake.requests) == 6  # the request and five hops, never retried


def test_connection_errors_exhaust_retries() -> None:
    calls = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    options = StoreOptions(transport=httpx.MockTransport(refuse), retries=2, backoff=0.0)
    client = RegistryClient("registry.test", options, sleep=lambda _s: None, environ={})
    with client, pytest.raises(RegistryError) as info:
        client.repository("app").resolve("v1")
    assert len(calls) == 3
    assert "cannot reach registry registry.test" in str(info.value)
    assert info.value.exit_code == 3


def test_manifest_not_hashing_to_requested_digest() -> None:
    fake, raw = _with_manifest()
    wanted = Digest.of(raw)
    other, _ = image(b"other layer")
    fake.manifests[("app", str(wanted))] = (other, media.OCI_MANIFEST)
    with fake.client() as client, pytest.raises(IntegrityError) as info:
        client.repository("app").get_manifest(wanted)
    assert str(Digest.of(other)) in str(info.value)


def test_docker_content_digest_disagreeing_with_body() -> None:
    fake, raw = _with_manifest()
    fake.faults.append(
        lambda r: httpx.Response(
            200,
            headers={"Content-Type": media.OCI_MANIFEST, "Docker-Content-Digest": sha(b"x")},
            content=raw,
        )
    )
    with fake.client() as client, pytest.raises(IntegrityError):
        client.repository("app").resolve("v1")


def test_header_alone_is_never_trusted_for_a_tag() -> None:
    fake, raw = _with_manifest()
    # The header names the real digest but the body is different: the body wins, then fails.
    other, _ = image(b"other")
    fake.faults.append(
        lambda r: httpx.Response(
            200,
            headers={"Content-Type": media.OCI_MANIFEST, "Docker-Content-Digest": sha(raw)},
            content=other,
        )
    )
    with fake.client() as client, pytest.raises(IntegrityError):
        client.repository("app").resolve("v1")


def test_oversized_manifest_is_refused_while_reading() -> None:
    fake = FakeRegistry()
    served: list[int] = []

    def huge(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            for _ in range(100):
                served.append(1)
                yield b" " * (256 * 1024)

        return httpx.Response(200, headers={"Content-Type": media.OCI_MANIFEST}, content=body())

    fake.faults.append(huge)
    with fake.client() as client, pytest.raises(OperationalError):
        client.repository("app").resolve("v1")
    assert len(served) * 256 * 1024 <= MAX_MANIFEST_SIZE + 256 * 1024  # stopped at the cap


def test_announced_oversized_manifest_is_refused_before_reading() -> None:
    fake = FakeRegistry()
    read: list[int] = []

    def announced_huge(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            read.append(1)
            yield b"{}"

        headers = {"Content-Length": str(MAX_MANIFEST_SIZE + 1)}
        return httpx.Response(200, headers=headers, content=body())

    fake.faults.append(announced_huge)
    with fake.client() as client, pytest.raises(OperationalError) as info:
        client.repository("app").resolve("v1")
    assert f"over the {MAX_MANIFEST_SIZE}-byte limit" in info.value.message
    assert read == []  # refused on the header, before any byte was read


@pytest.mark.parametrize(
    "served",
    [b"0123456789"[:7], b"0123456789" + b"EXTRA", b"9876543210"],
    ids=["truncated", "longer", "same-size-wrong-bytes"],
)
def test_blob_of_wrong_size_or_content(served: bytes) -> None:
    fake = FakeRegistry()
    data = b"0123456789"
    descriptor = Descriptor(media.OCI_LAYER_TAR, Digest.of(data), len(data))
    fake.blobs["app"] = {sha(data): served}
    client = fake.client()
    repo = client.repository("app")
    received = bytearray()
    with (
        client,
        pytest.raises(IntegrityError),
        repo.open_blob(descriptor) as chunks,
    ):
        for chunk in chunks:
            received.extend(chunk)
    if len(served) != len(data):
        # The announced Content-Length already disagrees: not one byte is handed out.
        assert received == b""
    else:
        assert received == served  # the mismatch shows only once every byte is hashed


def test_blob_longer_than_descriptor_stops_at_the_first_excess_chunk() -> None:
    fake = FakeRegistry()
    data = b"a" * 10
    descriptor = Descriptor(media.OCI_LAYER_TAR, Digest.of(data), len(data))
    chunks_sent: list[int] = []

    def stream(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            for _ in range(1000):
                chunks_sent.append(1)
                yield b"a" * (1024 * 1024)

        return httpx.Response(200, content=body())

    fake.faults.append(stream)
    client = fake.client()
    repo = client.repository("app")
    with (
        client,
        pytest.raises(IntegrityError),
        repo.open_blob(descriptor) as blob,
    ):
        for _ in blob:
            pass
    assert len(chunks_sent) <= 2


def test_blob_stream_broken_midway_is_registry_error() -> None:
    fake = FakeRegistry()
    data = b"b" * 100
    descriptor = Descriptor(media.OCI_LAYER_TAR, Digest.of(data), len(data))

    def broken(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            yield b"b" * 10
            raise httpx.ReadError("connection reset", request=request)

        return httpx.Response(200, content=body())

    fake.faults.append(broken)
    client = fake.client()
    repo = client.repository("app")
    with (
        client,
        pytest.raises(DigestgateError) as info,
        repo.open_blob(descriptor) as blob,
    ):
        b"".join(blob)
    assert info.value.exit_code == 3


def test_hash_check_uses_exact_bytes_not_reserialised_json() -> None:
    fake = FakeRegistry()
    raw = b'{"schemaVersion":2,  "mediaType":"' + media.OCI_INDEX.encode() + b'","manifests":[]}'
    fake.add_manifest("app", raw, media.OCI_INDEX, tag="spaced")
    with fake.client() as client:
        digest = client.repository("app").resolve("spaced").digest
    assert digest.hex == hashlib.sha256(raw).hexdigest()


def _blob_descriptor() -> tuple[Descriptor, bytes]:
    data = b"some blob bytes"
    return Descriptor(media.OCI_LAYER_TAR_GZIP, Digest.of(data), len(data)), data


@pytest.mark.parametrize(
    "fault",
    [
        # an upload session whose Location is not a URL
        lambda r: (
            httpx.Response(202, headers={"Location": "http://[::1"}) if r.method == "POST" else None
        ),
        # a chunk minimum written in non-ASCII digits ("²" passes str.isdigit)
        lambda r: (
            httpx.Response(
                202,
                headers=[
                    (b"Location", b"/v2/app/blobs/uploads/u1"),
                    (b"OCI-Chunk-Min-Length", "\u00b2".encode("latin-1")),
                ],
            )
            if r.method == "POST"
            else None
        ),
    ],
)
def test_malformed_upload_answers_are_registry_errors(
    fault: Callable[[httpx.Request], httpx.Response | None],
) -> None:
    fake = FakeRegistry()
    fake.faults.append(fault)
    descriptor, data = _blob_descriptor()
    with (
        fake.client(chunk_threshold=4, chunk_size=4) as client,
        pytest.raises(DigestgateError) as caught,
    ):
        client.repository("app").put_blob(descriptor, [data])
    assert isinstance(caught.value, RegistryError)
    assert caught.value.exit_code == 3


def test_malformed_link_header_is_a_registry_error() -> None:
    fake, _ = _with_manifest()
    fake.faults.append(
        lambda r: (
            httpx.Response(
                200,
                headers={"Link": '<http://[::1>; rel="next"'},
                json={"name": "app", "tags": ["v1"]},
            )
            if "tags/list" in r.url.path
            else None
        )
    )
    with fake.client() as client, pytest.raises(DigestgateError) as caught:
        client.repository("app").list_tags()
    assert isinstance(caught.value, RegistryError)


def test_non_ascii_content_length_is_not_a_crash() -> None:
    fake, raw = _with_manifest()
    fake.faults.append(
        lambda r: (
            httpx.Response(
                200,
                headers=[
                    (b"Content-Length", "\u00b2".encode("latin-1")),
                    (b"Content-Type", media.OCI_MANIFEST.encode()),
                ],
                content=raw,
            )
            if "/manifests/" in r.url.path
            else None
        )
    )
    with fake.client() as client:
        assert client.repository("app").resolve("v1").digest == Digest.of(raw)
