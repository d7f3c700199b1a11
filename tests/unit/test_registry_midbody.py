"""Answers that break off mid-body: the request and the read are retried together.

Manifests, tag lists and referrer listings are fetched again; blob downloads resume from the
first byte not handed out (``Range`` where the registry honours it, else skipping), and the
digest and size are checked over exactly the bytes handed out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from digestgate.digest import Digest
from digestgate.errors import ExitCode, IntegrityError
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor
from digestgate.oci.registry.errors import BrokenBodyError
from tests.unit.registry_fake import FakeRegistry, image

Fault = Callable[[httpx.Request], httpx.Response | None]


def cut_once(fragment: str, after: int, *, times: int = 1, fake: FakeRegistry) -> Fault:
    """The first ``times`` GETs whose URL contains ``fragment`` break after ``after`` bytes."""
    left = [times]

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method != "GET" or fragment not in str(request.url) or left[0] == 0:
            return None
        left[0] -= 1
        fake.faults.remove(fault)
        real = fake.handle(request)
        fake.requests.pop()  # the inner call is the same request
        fake.faults.insert(0, fault)
        data = real.read()

        def body() -> Iterator[bytes]:
            yield data[:after]
            raise httpx.ReadError("connection reset by peer", request=request)

        return httpx.Response(real.status_code, headers=real.headers, content=body())

    return fault


def _with_image() -> tuple[FakeRegistry, bytes, Descriptor, bytes]:
    fake = FakeRegistry()
    layer = bytes(range(256)) * 64  # 16 KiB
    raw, blobs = image(layer)
    for digest, data in blobs.items():
        fake.blobs.setdefault("app", {})[digest] = data
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    return fake, raw, Descriptor(media.OCI_LAYER_TAR, Digest.of(layer), len(layer)), layer


def _read(fake: FakeRegistry, descriptor: Descriptor) -> bytes:
    client = fake.client()
    with client, client.repository("app").open_blob(descriptor) as chunks:
        return b"".join(chunks)


# -- small documents ---------------------------------------------------------------------------


def test_a_manifest_cut_mid_body_is_fetched_again() -> None:
    fake, raw, _, _ = _with_image()
    fake.faults.append(cut_once("/manifests/v1", 20, fake=fake))
    with fake.client() as client:
        assert client.repository("app").resolve("v1").digest == Digest.of(raw)
    assert fake.count("GET", "/manifests/v1") == 2


def test_a_manifest_cut_every_time_is_an_operational_error() -> None:
    fake, _, _, _ = _with_image()
    fake.faults.append(cut_once("/manifests/v1", 20, times=99, fake=fake))
    with fake.client() as client, pytest.raises(BrokenBodyError) as caught:
        client.repository("app").resolve("v1")
    assert "/v2/app/manifests/v1: the answer broke off: ReadError" in caught.value.message
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert fake.count("GET", "/manifests/v1") == 4  # 1 + 3 retries


def test_wrong_bytes_for_a_digest_are_fetched_once_more_before_the_error() -> None:
    fake, raw, _, _ = _with_image()
    digest = Digest.of(raw)
    other, _ = image(b"other layer")
    served = [other, raw]

    def swap(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and f"/manifests/{digest}" in str(request.url) and served:
            body = served.pop(0)
            return httpx.Response(200, headers={"Content-Type": media.OCI_MANIFEST}, content=body)
        return None

    fake.faults.append(swap)
    with fake.client() as client:
        assert client.repository("app").get_manifest(digest).raw == raw
    served[:] = [other, other, other]
    with fake.client() as client, pytest.raises(IntegrityError) as caught:
        client.repository("app").get_manifest(digest)
    assert str(Digest.of(other)) in caught.value.message
    assert len(served) == 1  # two fetches, then the error: never a wrong manifest


def test_a_tag_list_cut_mid_body_is_fetched_again() -> None:
    fake, _, _, _ = _with_image()
    fake.faults.append(cut_once("/tags/list", 5, fake=fake))
    with fake.client() as client:
        assert client.repository("app").list_tags() == ["v1"]


def test_a_referrers_listing_cut_mid_body_is_fetched_again() -> None:
    fake, raw, _, _ = _with_image()
    fake.referrers_api = True
    digest = Digest.of(raw)
    fake.faults.append(cut_once("/referrers/", 10, fake=fake))
    with fake.client() as client:
        assert client.repository("app").referrers(digest) == []
    assert fake.count("GET", "/referrers/") == 2


# -- blobs -------------------------------------------------------------------------------------


def test_a_broken_download_resumes_with_range() -> None:
    fake, _, descriptor, layer = _with_image()
    fake.faults.append(cut_once("/blobs/", 5000, fake=fake))
    assert _read(fake, descriptor) == layer
    gets = [r for r in fake.requests if r.method == "GET" and "/blobs/" in str(r.url)]
    assert [r.headers.get("range") for r in gets] == [None, "bytes=5000-"]


def test_a_registry_ignoring_range_resends_and_the_prefix_is_skipped() -> None:
    fake, _, descriptor, layer = _with_image()
    fake.ranges = False
    fake.faults.append(cut_once("/blobs/", 5000, fake=fake))
    assert _read(fake, descriptor) == layer


def test_a_206_for_another_range_is_not_used() -> None:
    fake, _, descriptor, layer = _with_image()
    fake.faults.append(cut_once("/blobs/", 5000, fake=fake))
    served: list[str | None] = []

    def wrong_range(request: httpx.Request) -> httpx.Response | None:
        if "/blobs/" not in str(request.url) or "range" not in request.headers:
            served.append(None)
            return None
        served.append(request.headers["range"])
        headers = {"Content-Range": f"bytes 0-{len(layer) - 1}/{len(layer)}"}
        # Streamed without a length: only the range it names shows it is the wrong one.
        return httpx.Response(206, headers=headers, content=iter([layer]))

    fake.faults.insert(0, wrong_range)
    assert _read(fake, descriptor) == layer
    assert served[-2:] == ["bytes=5000-", None]  # the bad 206, then the whole blob


def test_a_download_that_keeps_breaking_without_progress_fails() -> None:
    fake, _, descriptor, _ = _with_image()
    fake.faults.append(cut_once("/blobs/", 0, times=99, fake=fake))
    with pytest.raises(BrokenBodyError) as caught:
        _read(fake, descriptor)
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert fake.count("GET", "/blobs/") == 4  # the request and 3 resumes without progress


def _breaking_every(fake: FakeRegistry, data: bytes, step: int) -> None:
    """Every blob GET delivers ``step`` bytes from where it starts, then breaks."""

    def fault(request: httpx.Request) -> httpx.Response | None:
        if "/blobs/" not in str(request.url):
            return None
        start = int(request.headers.get("range", "bytes=0-")[6:-1])
        end = min(start + step, len(data))
        headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}

        def body() -> Iterator[bytes]:
            yield data[start:end]
            if end < len(data):
                raise httpx.ReadError("reset", request=request)

        return httpx.Response(206 if start else 200, headers=headers, content=body())

    fake.faults.append(fault)


def test_a_download_that_progresses_between_breaks_completes() -> None:
    fake = FakeRegistry()
    data = bytes(range(256)) * (24 * 1024)  # 6 MiB: more breaks than the retry budget
    descriptor = Descriptor(media.OCI_LAYER_TAR, Digest.of(data), len(data))
    fake.blobs["app"] = {str(descriptor.digest): data}
    _breaking_every(fake, data, step=1024 * 1024 + 1)  # just over the 1 MiB of progress
    assert _read(fake, descriptor) == data
    assert fake.count("GET", "/blobs/") == 6  # five breaks, each after progress


def test_a_download_that_breaks_every_few_kib_gives_up() -> None:
    fake, _, descriptor, layer = _with_image()
    _breaking_every(fake, layer, step=2048)
    with pytest.raises(BrokenBodyError):
        _read(fake, descriptor)
    assert fake.count("GET", "/blobs/") == 4  # 2 KiB is no progress on a 16 KiB blob


def test_resumed_bytes_that_differ_fail_the_digest_check() -> None:
    fake, _, descriptor, layer = _with_image()
    fake.faults.append(cut_once("/blobs/", 5000, fake=fake))

    def tampered_rest(request: httpx.Request) -> httpx.Response | None:
        if "range" not in request.headers:
            return None
        rest = b"X" * (len(layer) - 5000)
        headers = {"Content-Range": f"bytes 5000-{len(layer) - 1}/{len(layer)}"}
        return httpx.Response(206, headers=headers, content=rest)

    fake.faults.insert(0, tampered_rest)
    with pytest.raises(IntegrityError):
        _read(fake, descriptor)
