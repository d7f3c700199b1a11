"""Bodies that break mid-read, against the real registry behind the fault proxy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from digestgate.digest import Digest
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.client import RegistryClient
from tests.fixtures.faultproxy import BY_DIGEST, CutResponse, FaultProxy, WrongBody
from tests.fixtures.registry import Registry
from tests.integration.test_registry_deadlines import stage

pytestmark = pytest.mark.registry


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.host) as p:
        yield p


def _client(proxy: FaultProxy) -> RegistryClient:
    return RegistryClient(proxy.host, StoreOptions(backoff=0.01), environ={})


def test_a_manifest_cut_mid_body_is_fetched_again(
    proxy: FaultProxy, registry: Registry, repo: str
) -> None:
    raw, _ = stage(registry, repo, b"layer")
    proxy.add(CutResponse(50), method="GET", path="/manifests/v1")
    with _client(proxy) as client:
        assert client.repository(repo).resolve("v1").digest == Digest.of(raw)
    assert proxy.count("GET", "/manifests/v1") == 2
    assert proxy.faults() == ["cut-response-50"]


def test_wrong_manifest_bytes_are_fetched_again(
    proxy: FaultProxy, registry: Registry, repo: str
) -> None:
    raw, _ = stage(registry, repo, b"layer")
    digest = Digest.of(raw)
    proxy.add(WrongBody(), method="GET", path=f"/manifests/{digest}")
    with _client(proxy) as client:
        assert client.repository(repo).get_manifest(digest).raw == raw
    assert proxy.count("GET", f"/manifests/{digest}") == 2


def test_a_blob_cut_mid_body_resumes_where_it_broke(
    proxy: FaultProxy, registry: Registry, repo: str
) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    _, layer = stage(registry, repo, data)
    proxy.add(CutResponse(300_000), method="GET", path=BY_DIGEST)
    with _client(proxy) as client, client.repository(repo).open_blob(layer) as chunks:
        assert b"".join(chunks) == data
    gets = [s for s in proxy.seen if s.method == "GET" and s.path.endswith(str(layer.digest))]
    # The registry honours Range: the second answer carries only the missing bytes (206).
    assert [(s.status, s.down_bytes) for s in gets] == [
        (200, 300_000),
        (206, len(data) - 300_000),
    ]
