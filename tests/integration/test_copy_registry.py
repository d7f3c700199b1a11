"""The promotion copy against the real registry, with skopeo as the independent oracle.

Every target digest is fetched by ``skopeo inspect --raw`` and hashed here: the copy kept
the exact bytes. Same-registry copies must mount every blob (zero blob bytes uploaded).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digestgate.digest import Digest
from digestgate.oci.layout import LayoutStore
from digestgate.oci.manifest import Descriptor, ImageIndex
from digestgate.oci.open import Stores
from digestgate.oci.options import StoreOptions
from digestgate.oci.store import ImageStore
from digestgate.promotion.copy import copy_image
from digestgate.reference import parse_registry_reference
from tests.fixtures import images
from tests.fixtures.registry import Registry
from tests.fixtures.skopeo import inspect_digest, push_layout
from tests.integration.test_promote_registry import FaultTransport

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


@pytest.fixture
def stores() -> Iterator[Stores]:
    with Stores() as session:
        yield session


def repository(stores: Stores, registry: Registry, repo: str) -> ImageStore:
    return stores.open(parse_registry_reference(registry.ref(repo)))


def manifest_digests(store: ImageStore, root: Descriptor) -> list[str]:
    """The root and every child manifest digest (children of an index)."""
    manifest = store.get_manifest(root.digest)
    children = manifest.manifests if isinstance(manifest, ImageIndex) else ()
    return [str(root.digest), *(str(child.digest) for child in children)]


def assert_served_exactly(registry: Registry, repo: str, digests: list[str]) -> None:
    for digest in digests:
        assert inspect_digest(registry, f"{repo}@{digest}") == digest


def source_layout(tmp_path: Path, seed: int) -> tuple[LayoutStore, Descriptor, images.IndexInfo]:
    written = images.make_index(tmp_path / f"src-{seed}", tag="v1", seed=seed)
    store = LayoutStore.open(str(tmp_path / f"src-{seed}"), create=False)
    return store, store.resolve("v1"), written


def test_layout_to_registry(stores: Stores, registry: Registry, repo: str, tmp_path: Path) -> None:
    layout, index, written = source_layout(tmp_path, 11)
    target = repository(stores, registry, repo)
    report = copy_image(layout, target, index)
    assert report.manifests_put == 3
    assert report.blobs_uploaded == len({b.digest for c in written.children for b in c.blobs})
    assert_served_exactly(registry, repo, manifest_digests(layout, index))
    assert target.list_tags() == []  # copied by digest only
    again = copy_image(layout, target, index)
    assert again.copied == []


def test_registry_to_layout(stores: Stores, registry: Registry, repo: str, tmp_path: Path) -> None:
    written = images.make_index(tmp_path / "pushed", tag="v1", seed=12)
    push_layout(tmp_path / "pushed", "v1", registry, repo, tag="v1")
    source = repository(stores, registry, repo)
    index = source.resolve("v1")
    assert str(index.digest) == written.digest
    target = LayoutStore.open(str(tmp_path / "dst"), create=True)
    copy_image(source, target, index)
    assert target.get_manifest(index.digest).raw == written.manifest
    for child in written.children:
        assert target.get_manifest(Digest.parse(child.digest)).raw == child.manifest
        for blob in child.blobs:
            assert target.has_blob(Digest.parse(blob.digest))


def test_registry_to_registry_same_host_mounts(
    stores: Stores, registry: Registry, repo: str, tmp_path: Path
) -> None:
    layout, index, _ = source_layout(tmp_path, 13)
    staging = repository(stores, registry, f"{repo}/staging")
    copy_image(layout, staging, index)
    transport = FaultTransport()  # counts the blob bytes that really went over the wire
    with Stores(StoreOptions(transport=transport)) as watched:
        production = repository(watched, registry, f"{repo}/production")
        report = copy_image(staging, production, index)
    transport.close()
    assert (transport.uploaded, transport.sent_body_bytes) == ([], 0)
    assert report.blobs_uploaded == 0
    assert report.bytes_uploaded == 0
    assert report.blobs_mounted > 0
    assert_served_exactly(registry, f"{repo}/production", manifest_digests(layout, index))


def test_registry_to_registry_across_hosts(
    stores: Stores, registry: Registry, registry2: Registry, repo: str, tmp_path: Path
) -> None:
    layout, index, written = source_layout(tmp_path, 14)
    first = repository(stores, registry, repo)
    copy_image(layout, first, index)
    second = repository(stores, registry2, repo)
    report = copy_image(first, second, index, concurrency=2)
    assert report.blobs_mounted == 0
    assert report.bytes_uploaded == sum(
        size for size in {b.digest: b.size for c in written.children for b in c.blobs}.values()
    )
    assert_served_exactly(registry2, repo, manifest_digests(layout, index))


def test_same_registry_copy_mounts_without_asking_first(
    stores: Stores, registry: Registry, repo: str, tmp_path: Path
) -> None:
    layout, index, written = source_layout(tmp_path, 15)
    staging = repository(stores, registry, f"{repo}/staging")
    copy_image(layout, staging, index)
    production = repository(stores, registry, f"{repo}/production")
    transport = production.transport  # type: ignore[attr-defined]
    blobs = {b.digest for child in written.children for b in child.blobs}
    before = transport.sent
    report = copy_image(staging, production, index)
    # Per blob exactly one mount request (no HEAD first); per manifest a presence check,
    # the PUT and one read-back; the source manifests were already verified and reused.
    manifests = 1 + len(written.children)
    assert transport.sent - before == len(blobs) + 3 * manifests
    assert report.blobs_mounted == len(blobs) and report.blobs_uploaded == 0
    assert_served_exactly(registry, f"{repo}/production", manifest_digests(layout, index))
