"""One store per repository for a session: what one step verified, the next does not refetch."""

from __future__ import annotations

from pathlib import Path

import httpx

from digestgate.digest import Digest
from digestgate.oci import media
from digestgate.oci.open import Stores
from digestgate.oci.options import StoreOptions
from digestgate.reference import parse_location
from tests.unit.registry_fake import REGISTRY, FakeRegistry, image


def test_a_session_opens_each_repository_once_and_reuses_verified_manifests() -> None:
    fake = FakeRegistry()
    raw, blobs = image()
    for data in blobs.values():
        fake.add_blob("app", data)
    digest = Digest.parse(fake.add_manifest("app", raw, media.OCI_MANIFEST))
    options = StoreOptions(transport=httpx.MockTransport(fake.handle), retries=0)
    location = parse_location(f"{REGISTRY}/app@{digest}")
    with Stores(options) as stores:
        first = stores.open(location)
        first.get_manifest(digest)  # e.g. the gate confirming the image
        second = stores.open(parse_location(f"{REGISTRY}/app"))
        assert second is first
        assert second.resolve(digest).digest == digest  # e.g. the promotion planning the copy
        assert stores.open(parse_location(f"{REGISTRY}/other")) is not first
    assert fake.count("GET", f"/manifests/{digest}") == 1


def test_layouts_are_shared_per_directory(tmp_path: Path) -> None:
    with Stores() as stores:
        a = stores.open(parse_location(f"oci:{tmp_path / 'a'}"), create=True)
        assert stores.open(parse_location(f"oci:{tmp_path / 'a'}:v1")) is a
        assert stores.open(parse_location(f"oci:{tmp_path / 'b'}"), create=True) is not a
