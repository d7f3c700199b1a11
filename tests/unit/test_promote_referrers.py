"""Carrying other tools' referrers: the type comes from the manifest, not the listing; only
allowed types travel; a carried referrer the target does not list is exit 3."""

from __future__ import annotations

import json

import pytest

from digestgate.digest import Digest
from digestgate.errors import ConfigError, ExitCode, IntegrityError
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor, build_artifact_manifest
from digestgate.policy.model import Glob
from digestgate.promotion.referrers import carry_referrers
from digestgate.reference import parse_location
from digestgate.release import parse_release
from tests.fixtures.memory_store import MemoryStore

SBOM = "application/spdx+json"
ALLOWED = (Glob.compile(SBOM), Glob.compile("application/vnd.dev.sigstore.*"))


def image(store: MemoryStore, arch: str = "amd64") -> Descriptor:
    config = b'{"architecture":"%s","os":"linux"}' % arch.encode()
    store.blobs[Digest.of(config)] = config
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "config": {"mediaType": media.OCI_CONFIG, "digest": str(Digest.of(config)),
                       "size": len(config)},
            "layers": [],
        }
    ).encode()  # fmt: skip
    return store.put_manifest(raw, media.OCI_MANIFEST)


def referrer(store: MemoryStore, subject: Descriptor, kind: str, *, listed_as: str = "") -> Digest:
    content = kind.encode()
    layer = Descriptor(kind, Digest.of(content), len(content))
    store.blobs[layer.digest] = content
    store.blobs[Digest.parse(media.EMPTY_DIGEST)] = media.EMPTY_JSON
    raw = build_artifact_manifest(artifact_type=kind, layers=[layer], subject=subject)
    stored = store.put_manifest(raw, media.OCI_MANIFEST)
    entry = Descriptor(media.OCI_MANIFEST, stored.digest, stored.size,
                       artifact_type=listed_as or kind)  # fmt: skip
    store.referrer_list.setdefault(subject.digest, []).append(entry)
    return stored.digest


def stores() -> tuple[MemoryStore, MemoryStore]:
    return (
        MemoryStore(parse_location("registry.example.org/staging/backend")),
        MemoryStore(parse_location("registry.example.org/prod/backend")),
    )


def test_types_are_read_from_the_manifest_and_only_allowed_ones_travel() -> None:
    source, target = stores()
    root = image(source)
    sbom = referrer(source, root, SBOM)
    disguised = referrer(source, root, "application/vnd.example.junk", listed_as=SBOM)
    own = referrer(source, root, media.evidence_artifact_type("test-result"))
    bundle = referrer(source, root, media.SIGSTORE_BUNDLE)  # allowed by type, but evidence
    other = image(source, "arm64")
    stray = referrer(source, other, SBOM)
    source.referrer_list[root.digest].append(source.referrer_list[other.digest][0])
    report = carry_referrers(source, target, root, ALLOWED)
    assert [e.digest for e in report.carried] == [sbom]
    assert target.manifests[sbom] == source.manifests[sbom]  # the exact bytes
    left = {e.digest: e.reason for e in report.left}
    assert left[disguised] == "artifact type not named by promotion.referrers"
    assert (
        left[own]
        == left[bundle]
        == ("evidence digestgate reads: only what the gate verified and relied on travels")
    )
    assert left[stray].startswith("listed as a referrer but its manifest does not name")
    assert not {disguised, own, bundle, stray} & set(target.manifests)


class Forgetful(MemoryStore):
    """A target that stores referrers but does not list them."""

    def referrers(self, subject: Digest, artifact_type: str | None = None) -> list[Descriptor]:
        return []


def test_a_carried_referrer_the_target_does_not_list_is_exit_3() -> None:
    source, _ = stores()
    target = Forgetful(parse_location("registry.example.org/prod/backend"))
    root = image(source)
    referrer(source, root, SBOM)
    with pytest.raises(IntegrityError, match="not listed there") as info:
        carry_referrers(source, target, root, ALLOWED)
    assert info.value.exit_code == ExitCode.OPERATIONAL


def test_a_carried_referrer_whose_source_serves_other_bytes_leaves_nothing() -> None:
    # Carried blobs go through the image copy's engine: the target hashes every byte.
    source, target = stores()
    root = image(source)
    referrer(source, root, SBOM)
    layer = Digest.of(SBOM.encode())
    source.served_blobs[layer] = SBOM.encode()[:-1] + b"!"  # same size, other bytes
    with pytest.raises(IntegrityError, match="does not match its digest"):
        carry_referrers(source, target, root, ALLOWED)
    assert layer not in target.blobs
    assert not target.referrer_list


@pytest.mark.parametrize("value", [5, [], {"carried": {}}, {"carried": [], "extra": []}])
def test_a_hostile_referrers_record_in_promoted_json_is_a_config_error(value: object) -> None:
    doc = {
        "apiVersion": "digestgate/v1",
        "kind": "Promotion",
        "source": {"repository": "https://git.example.org/org/app", "revision": "a" * 40,
                   "ref": "refs/heads/main", "runId": "1"},
        "policy": {"digest": str(Digest.of(b"policy"))},
        "time": "2026-11-26T12:00:00Z",
        "artifacts": {"backend": {
            "image": f"registry.example.org/prod/backend@{Digest.of(b'x')}",
            "from": f"registry.example.org/staging/backend@{Digest.of(b'x')}",
            "tags": [], "referrers": value}},
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"artifacts\.backend\.referrers") as info:
        parse_release(json.dumps(doc).encode())
    assert info.value.exit_code == ExitCode.USAGE
