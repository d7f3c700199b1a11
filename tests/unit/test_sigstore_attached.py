"""The attached store finds Sigstore bundles stored as OCI referrers beside digestgate's own
envelopes (artifactType application/vnd.dev.sigstore.bundle.v0.3+json), including when a
registry lists them without their artifact type, and the gate verifies them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from digestgate.digest import Digest
from digestgate.evidence.store.attached import AttachedStore
from digestgate.evidence.store.base import StoredEnvelope, StoreProblem, SubjectLocation
from digestgate.evidence.store.dirstore import DirStore
from digestgate.gating.gate import run_gate
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor, build_artifact_manifest
from digestgate.oci.open import Stores
from digestgate.oci.options import StoreOptions
from digestgate.reference import parse_location
from tests.unit.registry_fake import REGISTRY, FakeRegistry, image, rewrite_referrer_listing, sha
from tests.unit.sigstorekit import NOW, REUSABLE, WHEEL, WHEEL_DIGEST, policy_text, setup

BUNDLE = REUSABLE.read_bytes()
SUBJECT = SubjectLocation(WHEEL, parse_location(f"{REGISTRY}/app@{WHEEL_DIGEST}"))


def _attach(fake: FakeRegistry, layer_type: str = media.SIGSTORE_BUNDLE) -> None:
    """A bundle referrer as `gh attestation` / cosign v3 push it: empty config, one layer."""
    fake.add_blob("app", BUNDLE)
    fake.add_blob("app", b"{}")
    raw = build_artifact_manifest(
        artifact_type=media.SIGSTORE_BUNDLE,
        layers=[Descriptor(layer_type, Digest.of(BUNDLE), len(BUNDLE))],
        subject=Descriptor(media.OCI_MANIFEST, Digest.parse(WHEEL_DIGEST), 1234),
    )
    fake.add_manifest("app", raw, media.OCI_MANIFEST)


def _stores(fake: FakeRegistry) -> Stores:
    return Stores(StoreOptions(transport=httpx.MockTransport(fake.handle), retries=0))


@pytest.mark.parametrize("listed", [True, False])
def test_a_bundle_referrer_is_read(listed: bool) -> None:
    fake = FakeRegistry(referrers_api=True)
    _attach(fake)
    if not listed:
        rewrite_referrer_listing(fake, None)
    with _stores(fake) as stores:
        read = list(AttachedStore(stores).read([SUBJECT]))
    assert [r.raw for r in read if isinstance(r, StoredEnvelope)] == [BUNDLE]


def test_a_bundle_referrer_with_another_layer_type_is_malformed() -> None:
    fake = FakeRegistry(referrers_api=True)
    _attach(fake, layer_type=media.DSSE_ENVELOPE)
    with _stores(fake) as stores:
        read = list(AttachedStore(stores).read([SUBJECT]))
    assert len(read) == 1
    assert isinstance(read[0], StoreProblem)
    assert "is not application/vnd.dev.sigstore.bundle.v0.3+json" in read[0].message


def test_the_gate_verifies_an_attached_bundle(tmp_path: Path) -> None:
    if os.environ.get("CI") != "true":
        pytest.importorskip("sigstore")
    s = setup(tmp_path)
    s.add_lane()
    fake = FakeRegistry(referrers_api=True)
    _attach(fake)
    policy = s.policy(policy_text(artifact_repository=f"{REGISTRY}/app"))
    release = s.release(image=f"{REGISTRY}/app@{WHEEL_DIGEST}")
    with _stores(fake) as stores:
        run = run_gate(
            policy, release, [AttachedStore(stores), DirStore(s.evidence)], now=NOW, images=None
        )
    assert run.decision.verdict == "PASSED"
    bundle = [ev for ev in run.evidence if ev.certificate is not None]
    assert [ev.origin.split("@")[0] for ev in bundle] == [f"{REGISTRY}/app"]


def test_a_carried_bundle_is_attached_as_a_bundle() -> None:
    """A promotion carries verified evidence along; a bundle stays a bundle referrer."""
    fake = FakeRegistry(referrers_api=True)
    raw, blobs = image()
    for data in blobs.values():
        fake.add_blob("app", data)
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    subject = SubjectLocation("app", parse_location(f"{REGISTRY}/app@{sha(raw)}"))
    with _stores(fake) as stores:
        AttachedStore(stores).write(BUNDLE, predicate="provenance", subjects=[subject])
        read = list(AttachedStore(stores).read([subject]))
    assert [r.raw for r in read if isinstance(r, StoredEnvelope)] == [BUNDLE]
    types = {json.loads(m).get("artifactType") for m, _ in fake.manifests.values()}
    assert media.SIGSTORE_BUNDLE in types
    assert "application/vnd.in-toto.provenance+dsse" not in types
