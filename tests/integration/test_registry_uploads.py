"""Uploads to the real registry through the fault proxy: retried, resumed, never doubled.

The source is a real registry reached directly; the target is a second real registry behind
the proxy, so every upload request crosses the faults. The reference registry resumes a
chunked upload only when the failed chunk never reached it: once a chunk was stored (in
full or in part) without its answer, its session is invalid and the upload starts again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest

from digestgate.digest import Digest
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.client import RegistryClient
from digestgate.promotion.copy import copy_image
from tests.fixtures.faultproxy import UPLOAD, CutRequest, Fault, FaultProxy, Reset, Status
from tests.fixtures.registry import Registry
from tests.unit.registry_fake import image

pytestmark = pytest.mark.registry

CHUNK = 256 * 1024
LAYER = random.Random(11).randbytes(8 * CHUNK)  # 2 MiB: eight chunks


def _stage(registry: Registry, repo: str) -> Descriptor:
    raw, blobs = image(LAYER)
    with RegistryClient(registry.host, StoreOptions(), environ={}) as client:
        store = client.repository(repo)
        for digest, data in blobs.items():
            store.put_blob(Descriptor(media.OCI_LAYER_TAR, Digest.parse(digest), len(data)), [data])
        return store.put_manifest(raw, media.OCI_MANIFEST)


@pytest.fixture
def proxy(registry2: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(registry2.host) as p:
        yield p


def _copy(registry: Registry, proxy: FaultProxy, repo: str, *, chunked: bool) -> float:
    """Copy the staged image to the target through the proxy; the seconds it took."""
    options = StoreOptions(backoff=0.01)
    threshold = 0 if chunked else 10**9
    descriptor = _stage(registry, repo)
    with (
        RegistryClient(registry.host, options, environ={}) as source_client,
        RegistryClient(
            proxy.host, options, environ={}, chunk_threshold=threshold, chunk_size=CHUNK
        ) as target_client,
    ):
        began = time.monotonic()
        copy_image(source_client.repository(repo), target_client.repository(repo), descriptor)
        return time.monotonic() - began


def _stored(registry2: Registry, repo: str) -> bytes:
    descriptor = Descriptor(media.OCI_LAYER_TAR, Digest.of(LAYER), len(LAYER))
    with (
        RegistryClient(registry2.host, StoreOptions(), environ={}) as client,
        client.repository(repo).open_blob(descriptor) as chunks,
    ):
        return b"".join(chunks)


@pytest.mark.parametrize(
    "fault",
    [
        Status(503),
        Status(502),
        Reset("before-body"),
        Reset("after-body"),
        CutRequest(100_000),
    ],
    ids=lambda f: f.name,
)
def test_a_failed_upload_is_retried_from_the_source(
    fault: Fault, registry: Registry, registry2: Registry, proxy: FaultProxy, repo: str
) -> None:
    proxy.add(fault, method="PUT", path=UPLOAD)
    _copy(registry, proxy, repo, chunked=False)
    assert _stored(registry2, repo) == LAYER
    assert proxy.faults() == [fault.name]


def test_retry_after_is_waited_for(
    registry: Registry, registry2: Registry, proxy: FaultProxy, repo: str
) -> None:
    proxy.add(Status(429, retry_after="1"), method="PUT", path=UPLOAD)
    elapsed = _copy(registry, proxy, repo, chunked=False)
    assert _stored(registry2, repo) == LAYER
    assert elapsed >= 1.0


def test_an_upload_applied_but_unanswered_is_found_not_repeated(
    registry: Registry, registry2: Registry, proxy: FaultProxy, repo: str
) -> None:
    proxy.add(Reset("after-forward"), method="PUT", path=UPLOAD)
    _copy(registry, proxy, repo, chunked=False)
    assert _stored(registry2, repo) == LAYER
    puts = [s for s in proxy.seen if s.method == "PUT" and "/blobs/uploads/" in s.path]
    assert [s.fault for s in puts].count("reset-after-forward") == 1
    assert len(puts) == 2  # the config blob and the layer, each uploaded once


@pytest.mark.parametrize("fault", [Status(503), Reset("before-body")], ids=lambda f: f.name)
def test_a_chunk_that_never_arrived_is_resumed_not_restarted(
    fault: Fault, registry: Registry, registry2: Registry, proxy: FaultProxy, repo: str
) -> None:
    proxy.add(fault, method="PATCH", path=UPLOAD, skip=4)
    _copy(registry, proxy, repo, chunked=True)
    assert _stored(registry2, repo) == LAYER
    patches = [s for s in proxy.seen if s.method == "PATCH"]
    # Eight chunks of the layer arrived exactly once; the failed chunk was not forwarded.
    assert sum(s.up_bytes for s in patches) >= len(LAYER)
    assert sum(s.up_bytes for s in patches if s.up_bytes == CHUNK) == len(LAYER)
    assert proxy.count("GET", UPLOAD) == 1  # asked where to go on
    layer_sessions = proxy.count("POST", "/blobs/uploads/") - 1  # minus the config blob
    assert layer_sessions == 1


def test_a_chunk_stored_without_an_answer_restarts_on_the_reference_registry(
    registry: Registry, registry2: Registry, proxy: FaultProxy, repo: str
) -> None:
    proxy.add(Reset("after-forward"), method="PATCH", path=UPLOAD, skip=4)
    _copy(registry, proxy, repo, chunked=True)
    assert _stored(registry2, repo) == LAYER
    # The session's state no longer matches what it holds: distribution refuses to resume
    # it, so the upload starts again in a new session (never a corrupt blob).
    assert proxy.count("GET", UPLOAD) == 1
    assert proxy.count("POST", "/blobs/uploads/") - 1 == 2
