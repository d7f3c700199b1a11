"""A Sigstore bundle attached as an OCI referrer on the real registry (no Referrers API:
the tag-schema fallback index lists it with the bundle artifact type) reads back intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from digestgate.evidence.store import StoredEnvelope, SubjectLocation
from digestgate.evidence.store.attached import AttachedStore
from digestgate.oci import media
from digestgate.oci.manifest import ImageIndex
from digestgate.oci.open import Stores
from digestgate.reference import parse_location
from tests.fixtures import images
from tests.fixtures.registry import Registry
from tests.unit.sigstorekit import REUSABLE

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


def test_a_bundle_referrer_round_trips_through_the_tag_fallback(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    from tests.fixtures.skopeo import push_layout

    image = images.make_image(tmp_path / "backend", tag="v1", seed=7)
    push_layout(tmp_path / "backend", "v1", registry, f"{repo}/backend")
    subject = SubjectLocation(
        "backend", parse_location(registry.ref(f"{repo}/backend", image.digest))
    )
    bundle = REUSABLE.read_bytes()
    with Stores() as session:
        AttachedStore(session).write(bundle, predicate="provenance", subjects=[subject])
    with Stores() as session:
        store = AttachedStore(session)
        read = list(store.read([subject]))
        assert "tag-schema" in store.describe()
        repository = session.open(subject.location)
        index = repository.get_manifest(repository.resolve(subject.digest.tag_form).digest)
    assert [r.raw for r in read if isinstance(r, StoredEnvelope)] == [bundle]
    assert isinstance(index, ImageIndex)
    assert [m.artifact_type for m in index.manifests] == [media.SIGSTORE_BUNDLE]
