"""The promotion verb against in-memory stores: gate first, copy, carry evidence, then tag.

Helpers here (keys, signed evidence, gate outcomes) are shared with the real-registry tests.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digestgate.digest import Digest
from digestgate.errors import (
    BlockedError,
    ConcurrentChangeError,
    ConfigError,
    ExitCode,
    IntegrityError,
    RegistryError,
    UsageError,
)
from digestgate.evidence.dsse import sign_envelope, verify_envelope
from digestgate.evidence.keys import PublicKey, generate_keypair, load_public_key, load_signer
from digestgate.evidence.model import (
    PAYLOAD_TYPE,
    PROVENANCE,
    TEST_RESULT,
    Subject,
    VerifiedEvidence,
    read_vsa,
)
from digestgate.evidence.statements import statement_bytes
from digestgate.evidence.store.attached import AttachedStore
from digestgate.evidence.store.base import StoredEnvelope, SubjectLocation
from digestgate.evidence.store.dirstore import DirStore
from digestgate.oci.manifest import Descriptor
from digestgate.oci.open import Stores
from digestgate.policy import Policy, load_policy
from digestgate.promotion.promote import is_immutable, promote, target_location
from digestgate.promotion.tagplan import TagPlan
from digestgate.reference import ImageReference, LayoutReference, Location, parse_location
from digestgate.release import Release, ReleaseArtifact, Source
from tests.fixtures.memory_store import MemoryStore, MemoryStores
from tests.unit import gatekit

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SOURCE = Source(gatekit.REPO, gatekit.REVISION, "refs/heads/main", gatekit.RUN)


# --- shared helpers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    """One key per role. ``signer``/``public``/``keyref`` are the gate's key (it signs the
    gate's VSAs and the promotion records); ``build`` and ``tests`` sign the evidence."""

    signer: Any
    public: PublicKey
    keyref: str
    build: Any
    tests: Any
    directory: Path


def make_keys(directory: Path) -> Keys:
    """Fresh Ed25519 key pairs for build, tests and gate, written to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    signers = {}
    for role in ("build", "tests", "gate"):
        pair = generate_keypair()
        (directory / f"{role}.key").write_bytes(pair.private_pem)
        (directory / f"{role}.pub").write_bytes(pair.public_pem)
        signers[role] = load_signer(str(directory / f"{role}.key"), {})
    keyref = str(directory / "gate.key")
    public = load_public_key(directory / "gate.pub")
    return Keys(signers["gate"], public, keyref, signers["build"], signers["tests"], directory)


def signed(
    keys: Keys, subjects: Sequence[Subject], predicate_type: str, predicate: Mapping[str, Any]
) -> VerifiedEvidence:
    """A statement about ``subjects`` signed by the role's key, verified as the gate would."""
    signer = keys.build if predicate_type == PROVENANCE else keys.tests
    payload = statement_bytes(subjects, predicate_type, predicate)
    raw = sign_envelope(payload, PAYLOAD_TYPE, [signer])
    public = load_public_key(
        keys.directory / ("build.pub" if signer is keys.build else "tests.pub")
    )
    result = verify_envelope(raw, {"signer": public}, origin="test")
    assert isinstance(result, VerifiedEvidence)
    return result


def release_of(images: Mapping[str, Location]) -> Release:
    """A release of these artifacts (each location pinned by digest)."""
    release = Release(SOURCE)
    for name, location in images.items():
        release = release.with_artifact(ReleaseArtifact.pinned(name, location, None, None))
    return release


@dataclass
class Gated:
    """A policy and a dir: evidence store under which the release passes (or not) the gate."""

    policy: Policy
    store: DirStore
    evidence: dict[str, list[VerifiedEvidence]]
    """Per artifact: the signed statements the gate relies on (provenance, joint lane)."""

    @property
    def policy_digest(self) -> Digest:
        return self.policy.digest


def outcome_for(
    keys: Keys,
    release: Release,
    *,
    passed: bool = True,
    immutable: tuple[str, ...] = ("v*",),
    extra: Mapping[str, Sequence[VerifiedEvidence]] | None = None,
    finished: datetime = NOW - timedelta(hours=1),
) -> Gated:
    """Evidence and a policy for a real gate: provenance per artifact and one e2e result
    covering the whole release (left out when ``passed`` is False, so the gate blocks)."""
    tags = ", ".join(f'"{t}"' for t in immutable)
    text = POLICY_TEXT.format(immutable=tags)
    (keys.directory / "policy.yaml").write_text(text)
    policy = load_policy(keys.directory / "policy.yaml")
    store = DirStore(keys.directory / f"evidence-{len(list(keys.directory.glob('evidence-*')))}")
    subjects = {name: Subject(name, a.digest) for name, a in release.artifacts.items() if a.digest}
    joint = signed(keys, list(subjects.values()), TEST_RESULT, lane_predicate("e2e", finished))
    evidence: dict[str, list[VerifiedEvidence]] = {
        name: [signed(keys, [subject], PROVENANCE, provenance_predicate(finished))]
        + ([joint] if passed else [])
        for name, subject in subjects.items()
    }
    stored = [e for items in evidence.values() for e in items]
    stored += [e for items in (extra or {}).values() for e in items]
    for item in stored:
        store.write(item.envelope, predicate=item.statement.predicate_type, subjects=[])
    return Gated(policy, store, evidence)


POLICY_TEXT = """\
apiVersion: digestgate/v1
kind: Policy
keys: {{build: build.pub, tests: tests.pub, gate: gate.pub}}
artifacts:
  backend: {{repository: "**/backend"}}
  frontend: {{repository: "**/frontend"}}
source: {{repository: "https://git.example.org/org/app", refs: ["refs/heads/main"]}}
provenance: {{signers: [build]}}
lanes:
  e2e: {{signers: [tests], together: true}}
platforms: any  # one e2e run covers the whole index here (tests/unit/test_platforms.py)
gate: {{signers: [gate]}}
promotion: {{immutableTags: [{immutable}]}}
"""


def provenance_predicate(finished: datetime) -> dict[str, Any]:
    """The provenance predicate of the release's build (``SOURCE``)."""
    statement = gatekit.provenance({"x": Digest.of(b"x")}, finished=finished)
    predicate: dict[str, Any] = statement["predicate"]
    return predicate


def lane_predicate(lane: str, finished: datetime) -> dict[str, Any]:
    """A PASSED result of ``lane`` for the release's run."""
    statement = gatekit.lane(lane, {"x": Digest.of(b"x")}, finished=finished)
    predicate: dict[str, Any] = statement["predicate"]
    return predicate


def payload_of(raw: bytes) -> dict[str, Any]:
    """The decoded statement of an envelope."""
    doc = json.loads(raw)
    result: dict[str, Any] = json.loads(base64.b64decode(doc["payload"]))
    return result


def attached_envelopes(stores: Stores, name: str, location: Location) -> list[bytes]:
    """Every envelope attached to ``location`` (verified reads through AttachedStore)."""
    found = AttachedStore(stores).read([SubjectLocation(name, location)])
    return [item.raw for item in found if isinstance(item, StoredEnvelope)]


# --- in-memory setup ---------------------------------------------------------------------


class Faulty(MemoryStore):
    """A memory store that fails on demand."""

    fail_put_blob: int = 0
    fail_set_tag: set[str]
    manifest_digest_override: Digest | None = None

    def __init__(self, location: Location) -> None:
        super().__init__(location)
        self.fail_set_tag = set()

    def put_blob(self, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
        if self.fail_put_blob:
            self.fail_put_blob -= 1
            for _ in chunks:
                break  # half-read, then the connection drops
            raise RegistryError("PUT blob: 503 Service Unavailable", status=503)
        super().put_blob(descriptor, chunks)

    def put_manifest(self, raw: bytes, media_type: str, *, tag: str | None = None) -> Descriptor:
        stored = super().put_manifest(raw, media_type, tag=tag)
        if self.manifest_digest_override is not None:
            return Descriptor(media_type, self.manifest_digest_override, stored.size)
        return stored

    def set_tag(self, tag: str, descriptor: Descriptor) -> None:
        if tag in self.fail_set_tag:
            raise RegistryError(f"PUT tag {tag}: 500 Internal Server Error", status=500)
        super().set_tag(tag, descriptor)


class Session(MemoryStores):
    """Memory stores where the production namespace is faulty on demand."""

    def repo(self, name: str) -> MemoryStore:
        if name not in self.repos and name.startswith("prod.example/"):
            self.repos[name] = Faulty(parse_location(name))
        return super().repo(name)


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return make_keys(tmp_path / "keys")


@pytest.fixture
def session() -> Session:
    return Session()


def staged(session: Session) -> Release:
    """A backend and a frontend in staging, tagged ``main`` there."""
    images: dict[str, Location] = {}
    for name in ("backend", "frontend"):
        repo = session.repo(f"staging.example/app/{name}")
        descriptor = repo.add_image(f"{name} layer".encode() * 100, tag="main")
        images[name] = ImageReference("staging.example", f"app/{name}", None, descriptor.digest)
    return release_of(images)


def prod(session: Session, name: str) -> Faulty:
    repo = session.repo(f"prod.example/app/{name}")
    assert isinstance(repo, Faulty)
    return repo


def run(session: Session, keys: Keys, release: Release, outcome: Gated, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "policy": outcome.policy,
        "evidence_stores": [outcome.store],
        "target": "prod.example/app",
        "tags": ("v1.0", "latest"),
        "stores": session,
        "signer": keys.signer,
        "now": NOW,
        "concurrency": 2,
    }
    options.update(kwargs)
    return promote(release=release, **options)


def snapshot(session: Session) -> dict[str, tuple[set[Digest], set[Digest], dict[str, Digest]]]:
    return {
        name: (set(r.manifests), set(r.blobs), dict(r.tags))
        for name, r in session.repos.items()
        if name.startswith("prod.example/") and (r.manifests or r.blobs or r.tags)
    }


# --- tests -------------------------------------------------------------------------------


def test_promotes_copies_carries_evidence_and_tags(session: Session, keys: Keys) -> None:
    release = staged(session)
    outcome = outcome_for(keys, release)
    result = run(session, keys, release, outcome)
    promotion = result.promotion
    assert promotion.policy_digest == outcome.policy_digest
    assert promotion.source == SOURCE
    for name in ("backend", "frontend"):
        digest = release.artifacts[name].digest
        target = prod(session, name)
        assert digest in target.manifests
        assert target.tags == {"v1.0": digest, "latest": digest}
        artifact = promotion.artifacts[name]
        assert artifact.image_text == f"prod.example/app/{name}@{digest}"
        assert artifact.source_location == release.artifacts[name].location
        assert [(t.tag, t.previous) for t in artifact.tags] == [("v1.0", None), ("latest", None)]
        location = artifact.location
        envelopes = attached_envelopes(session, name, location)
        carried = {Digest.of(e.envelope) for e in outcome.evidence[name]}
        carried.add(Digest.of(result.gate.vsas[name]))
        assert carried <= {Digest.of(raw) for raw in envelopes}
        records = [
            raw
            for raw in envelopes
            if payload_of(raw)["predicate"].get("digestgate_kind") == "promotion"
        ]
        assert len(records) == 1
        verified = verify_envelope(records[0], {"gate": keys.public}, origin="target")
        assert isinstance(verified, VerifiedEvidence)
        info = read_vsa(verified.statement)
        assert info.result == "PASSED"
        assert info.kind == "promotion"
        assert info.resource_uri == str(location)
        assert info.source == str(release.artifacts[name].location)
        assert info.policy_digest == outcome.policy_digest
        inputs = {e["digest"]["sha256"] for e in verified.statement.predicate["inputAttestations"]}
        assert inputs == {d.hex for d in carried}
        assert verified.statement.subjects == (Subject(name, digest),)


def test_joint_lane_result_reaches_both_targets_and_foreign_evidence_does_not(
    session: Session, keys: Keys
) -> None:
    release = staged(session)
    other = signed(keys, [Subject("backend", Digest.of(b"rebuilt"))], PROVENANCE, {})
    outcome = outcome_for(keys, release, extra={"backend": [other]})
    run(session, keys, release, outcome, tags=())
    joint = outcome.evidence["backend"][1]
    assert joint is outcome.evidence["frontend"][1]
    for name in ("backend", "frontend"):
        digest = release.artifacts[name].digest
        assert digest is not None
        location = ImageReference("prod.example", f"app/{name}", None, digest)
        found = {Digest.of(raw) for raw in attached_envelopes(session, name, location)}
        assert joint.envelope_digest in found
        assert other.envelope_digest not in found


def test_blocked_outcome_writes_nothing(session: Session, keys: Keys) -> None:
    release = staged(session)
    outcome = outcome_for(keys, release, passed=False)
    with pytest.raises(BlockedError) as caught:
        run(session, keys, release, outcome)
    assert caught.value.exit_code == ExitCode.BLOCKED
    assert snapshot(session) == {}
    assert not any(name.startswith("prod.example/") for name in session.opened)


def test_a_referrers_index_tag_is_refused_before_anything_is_written(
    session: Session, keys: Keys
) -> None:
    release = staged(session)
    outcome = outcome_for(keys, release)
    with pytest.raises(UsageError, match="referrers index tag") as caught:
        run(session, keys, release, outcome, tags=("sha256-" + "ab" * 32,))
    assert caught.value.exit_code == ExitCode.USAGE
    assert snapshot(session) == {}


def test_immutable_tag_at_another_digest_refuses_before_copying(
    session: Session, keys: Keys
) -> None:
    release = staged(session)
    old = prod(session, "frontend").add_image(b"older release", tag="v1.0")
    before = snapshot(session)
    with pytest.raises(BlockedError) as caught:
        run(session, keys, release, outcome_for(keys, release))
    assert "promotion.tag-immutable" in caught.value.message
    assert "v1.0" in caught.value.message
    assert snapshot(session) == before
    assert prod(session, "frontend").tags["v1.0"] == old.digest


def test_mutable_tag_moves_and_records_previous(session: Session, keys: Keys) -> None:
    release = staged(session)
    old = prod(session, "backend").add_image(b"older release", tag="latest")
    result = run(session, keys, release, outcome_for(keys, release))
    backend = result.promotion.artifacts["backend"]
    assert [(t.tag, t.previous) for t in backend.tags] == [("v1.0", None), ("latest", old.digest)]
    assert prod(session, "backend").tags["latest"] == release.artifacts["backend"].digest


def test_rerun_is_a_no_op_and_keeps_immutable_tags(session: Session, keys: Keys) -> None:
    release = staged(session)
    outcome = outcome_for(keys, release)
    run(session, keys, release, outcome)
    again = run(session, keys, release, outcome)
    for name, report in again.reports.items():
        assert report.copied == []
        digest = release.artifacts[name].digest
        assert [(t.tag, t.previous) for t in again.promotion.artifacts[name].tags] == [
            ("v1.0", digest),
            ("latest", digest),
        ]


def test_copy_failure_keeps_class_moves_no_tag_and_rerun_completes(
    session: Session, keys: Keys
) -> None:
    release = staged(session)
    outcome = outcome_for(keys, release)
    prod(session, "frontend").fail_put_blob = 1
    with pytest.raises(RegistryError) as caught:
        run(session, keys, release, outcome)
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert "copied so far" in caught.value.message
    assert "no tag was changed" in caught.value.message
    assert prod(session, "backend").tags == {}
    assert prod(session, "frontend").tags == {}
    result = run(session, keys, release, outcome)
    assert prod(session, "frontend").tags["v1.0"] == release.artifacts["frontend"].digest
    assert result.reports["backend"].copied == []  # already there from the failed run


def test_manifest_stored_under_another_digest_fails(session: Session, keys: Keys) -> None:
    release = staged(session)
    prod(session, "backend").manifest_digest_override = Digest.of(b"something else")
    with pytest.raises(IntegrityError) as caught:
        run(session, keys, release, outcome_for(keys, release))
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert prod(session, "backend").tags == {}
    assert prod(session, "frontend").tags == {}


def test_partial_tagging_failure_lists_moved_tags_and_rerun_finishes(
    session: Session, keys: Keys
) -> None:
    release = staged(session)
    outcome = outcome_for(keys, release)
    prod(session, "frontend").fail_set_tag = {"latest"}
    with pytest.raises(RegistryError) as caught:
        run(session, keys, release, outcome)
    message = caught.value.message
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert "tagging stopped at prod.example/app/frontend:latest" in message
    assert "prod.example/app/backend:v1.0 (was absent)" in message
    assert "prod.example/app/frontend:v1.0" in message
    prod(session, "frontend").fail_set_tag = set()
    run(session, keys, release, outcome)
    assert prod(session, "frontend").tags["latest"] == release.artifacts["frontend"].digest


def test_rerun_after_partial_tagging_records_the_previous_digests_of_the_first_run(
    session: Session, keys: Keys, tmp_path: Path
) -> None:
    release = staged(session)
    outcome = outcome_for(keys, release)
    old = prod(session, "backend").add_image(b"older release", tag="latest")
    plan_file = tmp_path / "promoted.json.tagplan"
    prod(session, "frontend").fail_set_tag = {"latest"}
    with pytest.raises(RegistryError):
        run(session, keys, release, outcome, tag_plan=TagPlan.load(plan_file))
    # backend:latest already moved from the older release to the new digest ...
    assert prod(session, "backend").tags["latest"] == release.artifacts["backend"].digest
    assert plan_file.exists()
    prod(session, "frontend").fail_set_tag = set()
    result = run(session, keys, release, outcome, tag_plan=TagPlan.load(plan_file))
    # ... and the re-run still records what it pointed to before the promotion.
    previous = {
        (name, t.tag): t.previous for name, a in result.promotion.artifacts.items() for t in a.tags
    }
    assert previous == {
        ("backend", "v1.0"): None,
        ("backend", "latest"): old.digest,
        ("frontend", "v1.0"): None,
        ("frontend", "latest"): None,
    }


def test_tag_plan_is_written_before_a_tag_moves(
    session: Session, keys: Keys, tmp_path: Path
) -> None:
    release = staged(session)
    plan_file = tmp_path / "promoted.json.tagplan"
    seen: list[bool] = []
    target = prod(session, "backend")
    original = target.set_tag

    def set_tag(tag: str, descriptor: Descriptor) -> None:
        seen.append(
            (str(target.location), tag, descriptor.digest)
            in {(r, t, d) for r, t, d in TagPlan.load(plan_file).entries}
        )
        original(tag, descriptor)

    target.set_tag = set_tag  # type: ignore[method-assign]
    run(session, keys, release, outcome_for(keys, release), tag_plan=TagPlan.load(plan_file))
    assert seen == [True, True]


def test_the_tag_plan_is_saved_once_with_every_tag_before_the_first_moves(
    session: Session, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digestgate.atomicfile import write_atomic

    release = staged(session)
    plan_file = tmp_path / "promoted.json.tagplan"
    saves: list[tuple[int, int]] = []  # (entries saved, tags set at the time)

    def counting(path: Path, data: bytes) -> None:
        moved = sum(len(r.tags) for n, r in session.repos.items() if n.startswith("prod.example/"))
        saves.append((len(json.loads(data)["tags"]), moved))
        write_atomic(path, data)

    monkeypatch.setattr("digestgate.promotion.tagplan.write_atomic", counting)
    run(session, keys, release, outcome_for(keys, release), tag_plan=TagPlan.load(plan_file))
    assert saves == [(4, 0)]  # backend and frontend, v1.0 and latest: one fsync, not four


def test_a_malformed_tag_plan_is_a_configuration_error(tmp_path: Path) -> None:
    plan_file = tmp_path / "promoted.json.tagplan"
    plan_file.write_text('{"kind": "TagPlan", "kind": "TagPlan"}')
    with pytest.raises(ConfigError) as caught:
        TagPlan.load(plan_file)
    assert caught.value.exit_code == ExitCode.USAGE


def test_dry_run_plans_and_changes_nothing(session: Session, keys: Keys) -> None:
    release = staged(session)
    prod(session, "backend").add_image(b"older release", tag="latest")
    before = snapshot(session)
    result = run(session, keys, release, outcome_for(keys, release), dry_run=True)
    assert snapshot(session) == before
    assert result.promotion is None
    plans = {p.name: p for p in result.plans}
    assert len(plans["backend"].copy.manifests_to_put) == 1
    assert len(plans["backend"].copy.blobs_to_copy) == 1  # the layer
    assert len(plans["backend"].copy.blobs_present) == 1  # the config, shared with "latest"
    assert len(plans["frontend"].copy.blobs_to_copy) == 2
    actions = {(c.artifact, c.tag): c.action for c in result.tags}
    assert actions[("backend", "latest")] == "move"
    assert actions[("frontend", "v1.0")] == "create"


def test_layout_target_is_created_and_record_written_to_dir_store(
    session: Session, keys: Keys, tmp_path: Path
) -> None:
    release = staged(session)
    real = Stores()
    # Sources stay in memory; the target is a real layout on disk.
    session.open = _layout_or_memory(session, real)  # type: ignore[method-assign]
    outcome = outcome_for(keys, release)
    result = run(session, keys, release, outcome, target=f"oci:{tmp_path / 'out'}")
    backend = result.promotion.artifacts["backend"].location
    assert isinstance(backend, LayoutReference)
    assert backend.path == str(tmp_path / "out" / "backend")
    layout = real.open(backend)
    tagged = layout.get_tag("v1.0")
    assert tagged is not None
    assert tagged.digest == release.artifacts["backend"].digest
    kinds = [
        payload_of(path.read_bytes())["predicate"]["digestgate_kind"]
        for path in outcome.store.path.glob("vsa-*.json")
    ]
    assert sorted(kinds) == ["gate", "gate", "promotion", "promotion"]
    real.close()


def _layout_or_memory(session: Session, real: Stores) -> Any:
    memory_open = MemoryStores.open.__get__(session)

    def open_store(location: Location, *, create: bool = False) -> Any:
        if isinstance(location, LayoutReference):
            return real.open(location, create=create)
        return memory_open(location, create=create)

    return open_store


def test_bad_inputs_are_usage_errors(session: Session, keys: Keys) -> None:
    release = staged(session)
    outcome = outcome_for(keys, release)
    with pytest.raises(UsageError):
        run(session, keys, release, outcome, tags=("bad tag",))
    with pytest.raises(UsageError):
        run(session, keys, release, outcome, concurrency=0)
    with pytest.raises(UsageError):
        run(session, keys, release, outcome, target="prod.example/app@sha256:" + "0" * 64)
    assert snapshot(session) == {}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("registry.example.org/prod", "registry.example.org/prod/backend"),
        ("127.0.0.1:5000", "127.0.0.1:5000/backend"),
        ("oci:out", "oci:out/backend"),
    ],
)
def test_target_location(target: str, expected: str) -> None:
    assert target_location(target, "backend").name == expected


@pytest.mark.parametrize(
    "target", ["registry.example.org/prod:v1", "oci:out:v1", "registry.example.org/prod/"]
)
def test_target_with_tag_is_refused(target: str) -> None:
    with pytest.raises(UsageError):
        target_location(target, "backend")


@pytest.mark.parametrize(
    ("tag", "globs", "expected"),
    [
        ("v1.0", ("v*",), True),
        ("latest", ("v*",), False),
        ("release-1", ("release-?",), True),
        ("release-10", ("release-?",), False),
        ("v1.0", ("v1.0",), True),
        ("v1x0", ("v1.0",), False),
        ("main", (), False),
    ],
)
def test_immutable_globs(tag: str, globs: tuple[str, ...], expected: bool) -> None:
    assert is_immutable(tag, globs) is expected


# --- the gate cannot be skipped, and the safety rules each have a test ----------------------


def test_a_hand_built_gate_outcome_cannot_exist_and_promote_takes_none() -> None:
    import inspect

    from digestgate.errors import InternalError
    from digestgate.promotion.model import GateOutcome

    with pytest.raises(InternalError, match="can only come from the gate itself"):
        GateOutcome(True, Digest.of(b"p"), (), {}, {})
    parameters = inspect.signature(promote).parameters
    assert "outcome" not in parameters
    assert parameters["policy"].kind is inspect.Parameter.KEYWORD_ONLY
    assert parameters["evidence_stores"].kind is inspect.Parameter.KEYWORD_ONLY


def test_the_gate_inside_promote_confirms_the_images_online(session: Session, keys: Keys) -> None:
    """The evidence is complete, but staging no longer serves the backend: blocked."""
    release = staged(session)
    outcome = outcome_for(keys, release)
    digest = release.artifacts["backend"].digest
    assert digest is not None
    del session.repo("staging.example/app/backend").manifests[digest]
    seen: list[Any] = []
    with pytest.raises(BlockedError, match="the gate blocked this release"):
        run(session, keys, release, outcome, on_gate=seen.append)
    assert seen[0].decision.artifacts["backend"].findings[0].id == "artifact.not-found"
    assert snapshot(session) == {}


def test_an_immutable_tag_written_during_the_copy_is_not_moved(
    session: Session, keys: Keys
) -> None:
    """Checked when planned and again right before the write: a tag that appears while the
    images are being copied is refused, not overwritten."""
    release = staged(session)
    target = prod(session, "frontend")
    original = target.put_manifest
    sneaked: list[Descriptor] = []

    def put_manifest(raw: bytes, media_type: str, *, tag: str | None = None) -> Descriptor:
        stored = original(raw, media_type, tag=tag)
        if tag is None and not sneaked:  # another promotion tags v1.0 while this one copies
            target.put_manifest = original  # type: ignore[method-assign]
            sneaked.append(target.add_image(b"someone else's release", tag="v1.0"))
        return stored

    target.put_manifest = put_manifest  # type: ignore[method-assign]
    with pytest.raises(BlockedError, match=r"promotion\.tag-immutable") as caught:
        run(session, keys, release, outcome_for(keys, release))
    assert "appeared at" in caught.value.message
    assert target.tags["v1.0"] == sneaked[0].digest


def test_a_target_that_serves_other_bytes_for_the_digest_fails_the_copy(
    session: Session, keys: Keys
) -> None:
    """The copy skips a manifest the target says it holds; the read-back catches a lie."""
    release = staged(session)
    digest = release.artifacts["backend"].digest
    assert digest is not None
    raw, media_type = session.repo("staging.example/app/backend").manifests[digest]
    prod(session, "backend").manifests[digest] = (raw + b" ", media_type)
    with pytest.raises(IntegrityError) as caught:
        run(session, keys, release, outcome_for(keys, release))
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert prod(session, "backend").tags == {} and prod(session, "frontend").tags == {}


def test_an_artifact_vsa_says_passed_only_when_the_whole_release_passed(
    session: Session, keys: Keys
) -> None:
    """The frontend has no provenance: the backend passes on its own, yet its VSA is FAILED."""
    release = staged(session)
    outcome = outcome_for(keys, release)
    frontend_provenance = outcome.evidence["frontend"][0].envelope_digest
    for path in outcome.store.path.glob("provenance-*.json"):
        if Digest.of(path.read_bytes()) == frontend_provenance:
            path.unlink()
    seen: list[Any] = []
    with pytest.raises(BlockedError):
        run(session, keys, release, outcome, on_gate=seen.append)
    gate = seen[0]
    assert gate.decision.artifacts["backend"].passed
    assert not gate.decision.passed
    results = {
        name: payload_of(raw)["predicate"]["verificationResult"] for name, raw in gate.vsas.items()
    }
    assert results == {"backend": "FAILED", "frontend": "FAILED"}
    assert (
        "release.missing-artifact"
        not in payload_of(gate.vsas["backend"])["predicate"]["digestgate_findings"]
    )


# --- tags under concurrent writers and lost answers ------------------------------------------


class LostAnswer(Faulty):
    """A target whose tag write lands but whose answer is lost (or never lands)."""

    lands: bool = True
    readable: bool = True

    def set_tag(self, tag: str, descriptor: Descriptor) -> None:
        if tag == "latest":
            if self.lands:
                self.tags[tag] = descriptor.digest
            raise RegistryError(f"PUT tag {tag}: connection reset", status=None)
        super().set_tag(tag, descriptor)

    def get_tag(self, tag: str) -> Descriptor | None:
        if tag == "latest" and not self.readable and tag in self.tags:
            raise RegistryError("GET tag latest: 503", status=503)
        return super().get_tag(tag)


@pytest.mark.parametrize(
    ("lands", "readable", "words"),
    [
        (True, True, "prod.example/app/frontend:latest did move (the write landed"),
        (False, True, "tags already moved: prod.example/app/backend:latest (was absent)"),
        (True, False, "prod.example/app/frontend:latest may have moved"),
    ],
)
def test_a_failed_tag_write_reports_where_the_tag_ended_up(
    session: Session, keys: Keys, lands: bool, readable: bool, words: str
) -> None:
    release = staged(session)
    target = LostAnswer(parse_location("prod.example/app/frontend"))
    target.lands, target.readable = lands, readable
    session.repos["prod.example/app/frontend"] = target
    with pytest.raises(RegistryError) as caught:
        run(session, keys, release, outcome_for(keys, release), tags=("latest",))
    assert words in caught.value.message
    if not lands:
        assert "frontend:latest did move" not in caught.value.message
        assert "frontend:latest may have moved" not in caught.value.message


def test_a_tag_moved_by_another_writer_after_ours_fails_the_run(
    session: Session, keys: Keys
) -> None:
    """A registry cannot write tags conditionally: after the last write every tag is read
    again, and a run whose tags were moved meanwhile does not claim success."""
    release = staged(session)
    backend, frontend = prod(session, "backend"), prod(session, "frontend")
    rival = backend.add_image(b"another release")
    original = frontend.set_tag

    def rival_writes(tag: str, descriptor: Descriptor) -> None:
        original(tag, descriptor)
        backend.tags["latest"] = rival.digest  # a concurrent promotion, one step behind

    frontend.set_tag = rival_writes  # type: ignore[method-assign]
    with pytest.raises(ConcurrentChangeError) as caught:
        run(session, keys, release, outcome_for(keys, release), tags=("latest",))
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert f"prod.example/app/backend:latest now {rival.digest}" in caught.value.message
    assert "the promotion record was not written" in caught.value.message


def test_a_tag_changed_between_the_read_and_the_write_is_not_overwritten(
    session: Session, keys: Keys
) -> None:
    release = staged(session)
    backend = prod(session, "backend")
    rival = backend.add_image(b"another release")
    original = backend.get_tag
    reads: list[str] = []

    def get_tag(tag: str) -> Descriptor | None:
        reads.append(tag)
        if len(reads) == 2:  # the read right before the write sees a rival's tag
            backend.tags["latest"] = rival.digest
        return original(tag)

    backend.get_tag = get_tag  # type: ignore[method-assign]
    with pytest.raises(ConcurrentChangeError, match="changed during this promotion"):
        run(session, keys, release, outcome_for(keys, release), tags=("latest",))
    assert backend.tags["latest"] == rival.digest  # the rival's write stands


def test_layout_compare_and_set_refuses_a_moved_tag(tmp_path: Path) -> None:
    from digestgate.oci.layout import LayoutStore
    from digestgate.samples import sample_image

    layout = LayoutStore.open(str(tmp_path / "l"), create=True)
    first = sample_image(layout, {"a": b"1"})
    second = sample_image(layout, {"a": b"2"})
    layout.set_tag_if("v1", first, None)
    assert layout.get_tag("v1") == first
    with pytest.raises(ConcurrentChangeError) as caught:
        layout.set_tag_if("v1", second, None)  # someone created it first
    assert caught.value.current == first.digest
    assert layout.get_tag("v1") == first
    layout.set_tag_if("v1", second, first.digest)
    assert layout.get_tag("v1") == second
