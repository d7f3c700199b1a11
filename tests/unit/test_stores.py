"""One store per repository for a session: what one step verified, the next does not refetch."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

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


def test_threads_opening_at_once_share_one_client_and_one_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from digestgate.oci.registry import client as client_module

    made: list[object] = []
    real = client_module.RegistryClient.__init__

    def slow_init(self: client_module.RegistryClient, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        time.sleep(0.05)  # a wide window for a second thread to make its own
        real(self, *args, **kwargs)

    monkeypatch.setattr(client_module.RegistryClient, "__init__", slow_init)
    barrier = threading.Barrier(8)
    with Stores(StoreOptions(retries=0)) as stores:

        def open_it(n: int) -> object:
            barrier.wait()
            return stores.open(parse_location(f"{REGISTRY}/app{n % 2}"))

        with ThreadPoolExecutor(8) as pool:
            opened = list(pool.map(open_it, range(8)))
    assert len(made) == 1  # one client (one connection pool), none left unclosed
    assert len({id(store) for store in opened}) == 2  # one store per repository
