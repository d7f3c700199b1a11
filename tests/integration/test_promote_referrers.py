"""Promotion carries other tools' referrers (signatures, SBOMs) of the index and of each
child, byte-exact, when the policy names their type; junk pushed to staging stays there.

The real docker-registry (no Referrers API: the ``sha256-<hex>`` fallback tag schema) holds
the images (pushed by skopeo) and the referrers (pushed by the fixtures below); skopeo reads
the target back as the independent oracle.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digestgate.digest import Digest
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor, ImageIndex, build_artifact_manifest
from digestgate.oci.open import Stores
from digestgate.oci.options import StoreOptions
from digestgate.policy import load_policy
from digestgate.promotion.promote import promote
from digestgate.reference import Location, parse_location
from digestgate.release import Release, dump_release, parse_release
from tests.conftest import run_cli
from tests.fixtures.registry import Registry
from tests.fixtures.skopeo import inspect_digest, inspect_raw, list_tags
from tests.integration.test_promote_registry import staged
from tests.unit.test_promote import NOW, POLICY_TEXT, make_keys, outcome_for

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

SBOM = "application/spdx+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
JUNK = "application/vnd.example.junk"


def push_referrer(stores: Stores, location: Location, subject: Descriptor, kind: str) -> Digest:
    """A referrer of ``subject`` as another tool writes it: one layer of type ``kind``."""
    store = stores.open(location)
    content = json.dumps({"kind": kind, "subject": str(subject.digest)}).encode()
    layer = Descriptor(kind, Digest.of(content), len(content))
    store.put_blob(layer, [content])
    empty = Descriptor(media.OCI_EMPTY, Digest.parse(media.EMPTY_DIGEST), 2)
    if not store.has_blob(empty.digest):
        store.put_blob(empty, [media.EMPTY_JSON])
    raw = build_artifact_manifest(artifact_type=kind, layers=[layer], subject=subject)
    return store.put_referrer(raw, media.OCI_MANIFEST, subject).digest


def test_allowed_referrers_of_index_and_children_are_carried_and_junk_is_left(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    keys = make_keys(tmp_path / "keys")
    release = staged(registry, repo, tmp_path, seed=700)
    outcome = outcome_for(keys, release)
    allowed = f'referrers: [{SBOM}, "application/vnd.dev.sigstore.*"]'
    policy_text = POLICY_TEXT.format(immutable='"v*"').replace(
        'promotion: {immutableTags: ["v*"]}', f'promotion: {{immutableTags: ["v*"], {allowed}}}'
    )
    (keys.directory / "policy.yaml").write_text(policy_text)
    outcome = dataclasses.replace(outcome, policy=load_policy(keys.directory / "policy.yaml"))
    backend = release.artifacts["backend"].location
    assert backend is not None and backend.digest is not None
    with Stores(StoreOptions()) as stores:
        index = stores.open(backend).get_manifest(backend.digest)
        assert isinstance(index, ImageIndex)
        root = index.descriptor
        child = Descriptor(
            index.manifests[1].media_type, index.manifests[1].digest, index.manifests[1].size
        )
        bundle = push_referrer(stores, backend, root, BUNDLE)
        junk = push_referrer(stores, backend, root, JUNK)
        sbom = push_referrer(stores, backend, child, SBOM)
        target = registry.ref(f"{repo}/prod")
        result = promote(
            release=release,
            policy=outcome.policy,
            evidence_stores=[outcome.store],
            target=target,
            tags=("v1.0",),
            stores=stores,
            signer=keys.signer,
            now=NOW,
        )
    report = result.referrers["backend"]
    assert {(e.subject, e.digest, e.artifact_type) for e in report.carried} == {
        (child.digest, sbom, SBOM)
    }
    left = {e.digest: e.reason for e in report.left}
    assert left[junk] == "artifact type not named by promotion.referrers"
    # A Sigstore bundle is evidence digestgate reads: an unverified one in staging (the
    # policy names its type) never reaches production this way.
    assert (
        left[bundle]
        == "evidence digestgate reads: only what the gate verified and relied on travels"
    )
    assert result.referrers["frontend"].carried == []
    # skopeo, independently: the carried manifests are at the target with the same bytes,
    # and the fallback index of each subject lists them; the junk never arrived.
    prod = f"{repo}/prod/backend"
    assert inspect_digest(registry, f"{prod}@{sbom}") == str(sbom)
    fallback = json.loads(inspect_raw(registry, f"{prod}:{child.digest.tag_form}"))
    assert str(sbom) in {m["digest"] for m in fallback["manifests"]}
    root_listing = json.loads(inspect_raw(registry, f"{prod}:{root.digest.tag_form}"))
    assert not {str(junk), str(bundle)} & {m["digest"] for m in root_listing["manifests"]}
    assert child.digest.tag_form in list_tags(registry, prod)
    with Stores(StoreOptions()) as stores:
        target_repo = stores.open(parse_location(f"{registry.host}/{prod}"))
        assert not target_repo.has_manifest(junk) and not target_repo.has_manifest(bundle)
    # promoted.json records what was carried and what was left, and reads back
    assert result.promotion is not None
    record = json.loads(dump_release(result.promotion))["artifacts"]["backend"]["referrers"]
    assert {e["digest"] for e in record["carried"]} == {str(sbom)}
    assert {str(junk), str(bundle)} <= {e["digest"] for e in record["left"]}
    assert not isinstance(parse_release(dump_release(result.promotion)), Release)


def test_the_cli_reports_what_it_carried_and_left(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    keys = make_keys(tmp_path / "keys")
    release = staged(registry, repo, tmp_path, seed=720)
    # the CLI's clock is the real one: evidence of an hour ago
    outcome = outcome_for(keys, release, finished=datetime.now(UTC) - timedelta(hours=1))
    policy = keys.directory / "policy.yaml"
    policy.write_text(
        POLICY_TEXT.format(immutable='"v*"').replace(
            'promotion: {immutableTags: ["v*"]}', f"promotion: {{referrers: [{SBOM}]}}"
        )
    )
    backend = release.artifacts["backend"].location
    assert backend is not None and backend.digest is not None
    with Stores(StoreOptions()) as stores:
        root = stores.open(backend).resolve(backend.digest)
        sbom = push_referrer(stores, backend, root, SBOM)
        junk = push_referrer(stores, backend, root, JUNK)
    release_file = tmp_path / "release.json"
    release_file.write_bytes(dump_release(release))
    promoted = tmp_path / "promoted.json"
    result = run_cli(
        "promote", "--release", str(release_file), "--policy", str(policy),
        "--evidence", outcome.store.describe(), "--to", registry.ref(f"{repo}/prod"),
        "--vsa-key", keys.keyref, "--out", str(promoted),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert "backend: 1 referrer(s) of other tools carried, 1 left in staging" in result.stderr
    record = json.loads(promoted.read_text())["artifacts"]["backend"]["referrers"]
    assert [e["digest"] for e in record["carried"]] == [str(sbom)]
    left = {e["digest"]: e for e in record["left"]}
    assert left[str(junk)]["artifactType"] == JUNK
    assert inspect_digest(registry, f"{repo}/prod/backend@{sbom}") == str(sbom)
