"""A blob this run already put (or found) in one repository is mounted into another of the
same registry: one request instead of an upload, and a declined mount costs no extra one."""

from __future__ import annotations

import httpx
import pytest

from digestgate.digest import Digest
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.client import RegistryClient
from tests.fixtures.faultproxy import FaultProxy, Status
from tests.fixtures.registry import Registry
from tests.unit.registry_fake import image

pytestmark = pytest.mark.registry


def blob(data: bytes) -> Descriptor:
    return Descriptor(media.OCI_LAYER_TAR, Digest.of(data), len(data))


def present(registry: Registry, repo: str, digest: Digest) -> bool:
    return httpx.head(f"http://{registry.host}/v2/{repo}/blobs/{digest}").status_code == 200


def test_a_blob_put_in_one_repository_is_mounted_into_the_next(
    registry: Registry, repo: str
) -> None:
    data = b"shared base layer " + repo.encode()
    with (
        FaultProxy(registry.host) as proxy,
        RegistryClient(proxy.host, StoreOptions(), environ={}) as client,
    ):
        client.repository(f"{repo}/backend").put_blob(blob(data), [data])
        client.repository(f"{repo}/frontend").put_blob(blob(data), [data])
        frontend = f"/v2/{repo}/frontend/blobs/uploads/"
        assert proxy.count("POST", frontend) == 1
        assert proxy.count("PUT", frontend) == 0  # mounted: no body sent
        (post,) = [s for s in proxy.seen if s.method == "POST" and frontend in s.path]
        assert f"from={repo}/backend".replace("/", "%2F") in post.target
    assert present(registry, f"{repo}/frontend", Digest.of(data))


def test_a_blob_found_by_a_head_is_mounted_too(registry: Registry, repo: str) -> None:
    data = b"found, not put " + repo.encode()
    with RegistryClient(registry.host, StoreOptions(), environ={}) as direct:
        direct.repository(f"{repo}/staging").put_blob(blob(data), [data])
    with (
        FaultProxy(registry.host) as proxy,
        RegistryClient(proxy.host, StoreOptions(), environ={}) as client,
    ):
        assert client.repository(f"{repo}/staging").has_blob(Digest.of(data))
        client.repository(f"{repo}/prod").put_blob(blob(data), [data])
        assert proxy.count("PUT", f"/v2/{repo}/prod/blobs/uploads/") == 0
    assert present(registry, f"{repo}/prod", Digest.of(data))


def test_a_declined_mount_forgets_the_home_and_uploads(registry: Registry, repo: str) -> None:
    data = b"deleted from its home " + repo.encode()
    digest = Digest.of(data)
    with (
        FaultProxy(registry.host) as proxy,
        RegistryClient(proxy.host, StoreOptions(), environ={}) as client,
    ):
        client.repository(f"{repo}/a").put_blob(blob(data), [data])
        gone = httpx.delete(f"http://{registry.host}/v2/{repo}/a/blobs/{digest}")
        assert gone.status_code == 202
        client.repository(f"{repo}/b").put_blob(blob(data), [data])
        client.repository(f"{repo}/c").put_blob(blob(data), [data])
        b, c = f"/v2/{repo}/b/blobs/uploads/", f"/v2/{repo}/c/blobs/uploads/"
        # b: the mount (declined, its session cancelled), then the upload; b is the new home.
        counts = (proxy.count("POST", b), proxy.count("PUT", b), proxy.count("DELETE", b))
        assert counts == (2, 1, 1)
        assert (proxy.count("POST", c), proxy.count("PUT", c)) == (1, 0)
    assert present(registry, f"{repo}/b", digest) and present(registry, f"{repo}/c", digest)


def test_a_refused_mount_is_an_upload_not_a_failure(registry: Registry, repo: str) -> None:
    # A registry answers 401/403 when the account may push here but not pull from the home.
    data = b"no pull right at its home " + repo.encode()
    with (
        FaultProxy(registry.host) as proxy,
        RegistryClient(proxy.host, StoreOptions(retries=0), environ={}) as client,
    ):
        client.repository(f"{repo}/a").put_blob(blob(data), [data])
        b = f"/v2/{repo}/b/blobs/uploads/"
        proxy.add(Status(403), method="POST", path=b, times=1)
        client.repository(f"{repo}/b").put_blob(blob(data), [data])
        assert (proxy.count("POST", b), proxy.count("PUT", b)) == (2, 1)
    assert present(registry, f"{repo}/b", Digest.of(data))


def test_images_sharing_a_layer_send_it_once_across_registries(
    registry: Registry, registry2: Registry, repo: str
) -> None:
    from digestgate.oci.open import Stores
    from digestgate.promotion.copy import copy_image
    from digestgate.reference import parse_location

    shared = b"base layer of backend and frontend " + repo.encode()
    with Stores() as stores:
        sources = {}
        for name in ("backend", "frontend"):
            raw, blobs = image(shared, config=f'{{"app": "{name}"}}'.encode())
            store = stores.open(parse_location(f"{registry.host}/{repo}/{name}"), create=True)
            for data in blobs.values():
                store.put_blob(blob(data), [data])
            store.put_manifest(raw, media.OCI_MANIFEST, tag=None)
            sources[name] = (store, store.resolve(Digest.of(raw)))
    with FaultProxy(registry2.host) as proxy, Stores() as stores:
        reports = {}
        for name, (_, descriptor) in sources.items():
            source = stores.open(parse_location(f"{registry.host}/{repo}/{name}"))
            target = stores.open(parse_location(f"{proxy.host}/{repo}/{name}"), create=True)
            reports[name] = copy_image(source, target, descriptor)
        bodies = [s for s in proxy.seen if s.method == "PUT" and "/blobs/uploads/" in s.path]
        layer = str(Digest.of(shared))
        # The frontend mounted the backend's copy: the layer's bytes went up once.
        assert sum(f"digest={layer}" in s.target for s in bodies) == 1
        assert (reports["backend"].blobs_mounted, reports["frontend"].blobs_mounted) == (0, 1)
        assert reports["frontend"].bytes_uploaded == len(b'{"app": "frontend"}')
    for name in ("backend", "frontend"):
        assert present(registry2, f"{repo}/{name}", Digest.of(shared))


def test_on_a_token_registry_a_small_blob_is_not_mounted_at_the_price_of_a_token(
    token_registry: Registry, repo: str
) -> None:
    from tests.integration.test_registry_real import _client

    tokens = token_registry.token_server
    assert tokens is not None
    small, large = b"small " + repo.encode(), bytes(2 * 1024 * 1024)
    with _client(token_registry) as client:
        for data in (small, large):
            client.repository(f"{repo}/a").put_blob(blob(data), [data])
        tokens.clear()
        for data in (small, large):
            client.repository(f"{repo}/b").put_blob(blob(data), [data])
        scopes = [r.scopes for r in tokens.requests]
        for data in (small, large):
            assert client.repository(f"{repo}/b").has_blob(Digest.of(data))
    # The small blob went up with b's own token; the large one was worth a mount token.
    assert scopes == [
        (f"repository:{repo}/b:pull,push",),
        (f"repository:{repo}/b:pull,push", f"repository:{repo}/a:pull"),
    ]
