"""Connections to the real registry are kept open between requests, whatever the answer.

h11 returns a connection to the pool only once the end of an answer was seen: an answer closed
unread (a HEAD, a 201 or 202 with an empty body, a 404 whose error body nobody needs) would
otherwise cost a new TCP connection per request, on the client and on the registry.
"""

from __future__ import annotations

from typing import Any

import pytest

from digestgate.digest import Digest
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry import wallclock
from digestgate.oci.registry.client import RegistryClient
from tests.fixtures.registry import Registry
from tests.unit.registry_fake import image

pytestmark = pytest.mark.registry


def test_one_connection_carries_every_kind_of_answer(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    connect = wallclock._Backend.connect_tcp

    def counting(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        opened.append(f"{host}:{port}")
        return connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(wallclock._Backend, "connect_tcp", counting)
    raw, blobs = image(b"keep-alive layer")
    with RegistryClient(registry.host, StoreOptions(), environ={}) as client:
        repo = client.repository("keepalive/app")
        for digest, data in blobs.items():
            assert not repo.has_blob(Digest.parse(digest))  # HEAD, 404
            repo.put_blob(Descriptor(media.OCI_LAYER_TAR, Digest.parse(digest), len(data)), [data])
            assert repo.has_blob(Digest.parse(digest))  # HEAD, 200
        assert repo.get_tag("v1") is None  # GET, 404 with an error body
        repo.put_manifest(raw, media.OCI_MANIFEST, tag="v1")  # PUT, 201 with an empty body
        assert repo.get_tag("v1") is not None  # GET, 200
        assert repo.referrers(Digest.of(raw)) == []  # the Referrers API's 404, then the tag's
    assert len(opened) == 1, f"{len(opened)} connections for one client: {opened}"
