"""Registry quirks seen in the field, each on the in-process fake registry (no registry with
the Referrers API can be installed here; the real docker-registry covers the fallback path):
a listing whose entries lack or misstate ``artifactType`` must not hide evidence, and
another tool's referrers, listed as such, are not fetched."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from digestgate.evidence.model import TEST_RESULT
from digestgate.evidence.store.attached import AttachedStore
from digestgate.evidence.store.base import StoredEnvelope, SubjectLocation
from digestgate.oci import media
from digestgate.oci.open import Stores
from digestgate.oci.options import StoreOptions
from digestgate.reference import parse_location
from tests.unit.registry_fake import REGISTRY, FakeRegistry, image, rewrite_referrer_listing, sha

COSIGN_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"


def _world(fake: FakeRegistry) -> tuple[Stores, SubjectLocation]:
    raw, blobs = image()
    for data in blobs.values():
        fake.add_blob("app", data)
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    stores = Stores(StoreOptions(transport=httpx.MockTransport(fake.handle), retries=0))
    return stores, SubjectLocation("app", parse_location(f"{REGISTRY}/app@{sha(raw)}"))


def _envelope() -> bytes:
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v1"}).encode()
    return json.dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": base64.b64encode(statement).decode(),
            "signatures": [{"keyid": "k", "sig": "c2ln"}],
        }
    ).encode()


def _third_party(fake: FakeRegistry, subject: SubjectLocation, artifact_type: str) -> bytes:
    """Another tool's referrer of the subject (a signature, an SBOM), stored in the fake."""
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": media.OCI_EMPTY, "digest": media.EMPTY_DIGEST, "size": 2},
            "layers": [],
            "subject": {
                "mediaType": media.OCI_MANIFEST,
                "digest": str(subject.digest),
                "size": len(fake.manifests[("app", "v1")][0]),
            },
        }
    ).encode()
    fake.add_manifest("app", raw, media.OCI_MANIFEST)
    return raw


@pytest.mark.parametrize("listed_as", [None, "", media.OCI_EMPTY, media.OCI_CONFIG])
def test_evidence_listed_without_its_artifact_type_is_still_read(listed_as: str | None) -> None:
    fake = FakeRegistry(referrers_api=True)
    stores, subject = _world(fake)
    with stores:
        AttachedStore(stores).write(_envelope(), predicate=TEST_RESULT, subjects=[subject])
    rewrite_referrer_listing(fake, listed_as)
    with Stores(StoreOptions(transport=httpx.MockTransport(fake.handle), retries=0)) as fresh:
        read = list(AttachedStore(fresh).read([subject]))
    assert [r.raw for r in read if isinstance(r, StoredEnvelope)] == [_envelope()]


def test_another_tools_referrer_listed_as_such_is_not_fetched() -> None:
    fake = FakeRegistry(referrers_api=True)
    stores, subject = _world(fake)
    signature = _third_party(fake, subject, COSIGN_SIGNATURE)
    with stores:
        assert list(AttachedStore(stores).read([subject])) == []
    fetched = [r for r in fake.requests if r.method == "GET" and sha(signature) in r.url.path]
    assert fetched == []


def test_an_unlisted_type_that_is_another_tools_manifest_is_fetched_and_ignored() -> None:
    fake = FakeRegistry(referrers_api=True)
    stores, subject = _world(fake)
    sbom = _third_party(fake, subject, "application/spdx+json")
    rewrite_referrer_listing(fake, None)
    with stores:
        assert list(AttachedStore(stores).read([subject])) == []
    assert [r for r in fake.requests if r.method == "GET" and sha(sbom) in r.url.path]
