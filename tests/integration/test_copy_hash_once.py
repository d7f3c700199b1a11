"""A copy hashes each byte once, at the target, before the blob is stored.

The source is read with sizes checked only (``open_blob(hashed=False)``): the target's
``put_blob`` hashes every byte and refuses a wrong digest before anything is committed (an
upload holds its last chunk back until the digest matched). So a source serving wrong bytes
still leaves nothing at the target.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from digestgate.digest import DigestHasher
from digestgate.errors import IntegrityError
from digestgate.oci.layout import LayoutStore
from digestgate.oci.open import Stores
from digestgate.promotion.copy import copy_image
from digestgate.reference import parse_location
from tests.fixtures import images
from tests.fixtures.faultproxy import FaultProxy, WrongBody
from tests.fixtures.registry import Registry

pytestmark = pytest.mark.registry


def staged(stores: Stores, registry: Registry, repo: str, tmp_path: Path) -> images.ImageInfo:
    info = images.make_image(tmp_path / "src", layers=2, layer_size=1024 * 1024, seed=71)
    layout = LayoutStore.open(str(tmp_path / "src"), create=False)
    target = stores.open(parse_location(f"{registry.host}/{repo}/staging"), create=True)
    copy_image(layout, target, layout.resolve(info.digest))
    return info


def test_a_copy_across_registries_hashes_each_byte_once(
    registry: Registry, registry2: Registry, repo: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    with Stores() as stores:
        info = staged(stores, registry, repo, tmp_path)
        source = stores.open(parse_location(f"{registry.host}/{repo}/staging"))
        descriptor = source.resolve(info.digest)
        hashed = [0]
        update = DigestHasher.update

        def counting(self: DigestHasher, chunk: bytes) -> None:
            hashed[0] += len(chunk)
            update(self, chunk)

        monkeypatch.setattr(DigestHasher, "update", counting)
        target = stores.open(parse_location(f"{registry2.host}/{repo}/prod"), create=True)
        copy_image(source, target, descriptor)
    blob_bytes = info.config.size + sum(layer.size for layer in info.layers)
    # Each blob byte once (a second hash would double it); manifests are a few hundred bytes.
    assert blob_bytes <= hashed[0] < blob_bytes + 64 * 1024


def test_a_source_serving_other_bytes_leaves_nothing_at_the_target(
    registry: Registry, registry2: Registry, repo: str, tmp_path: Path
) -> None:
    with Stores() as stores:
        info = staged(stores, registry, repo, tmp_path)
    layer = info.layers[0].digest
    with FaultProxy(registry.host) as proxy, Stores() as stores:
        proxy.add(WrongBody(), method="GET", path=f"/blobs/{layer}", times=None)
        source = stores.open(parse_location(f"{proxy.host}/{repo}/staging"))
        target = stores.open(parse_location(f"{registry2.host}/{repo}/prod"), create=True)
        with pytest.raises(IntegrityError, match="does not match its digest"):
            copy_image(source, target, source.resolve(info.digest))
    answer = httpx.head(f"http://{registry2.host}/v2/{repo}/prod/blobs/{layer}")
    assert answer.status_code == 404
    assert (
        httpx.head(f"http://{registry2.host}/v2/{repo}/prod/manifests/{info.digest}").status_code
        == 404
    )
