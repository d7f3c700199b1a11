"""Build policies, releases and verified statements quickly for gate tests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from digestgate.digest import Digest
from digestgate.errors import InvalidReferenceError
from digestgate.evidence.model import (
    BUILD_TYPE,
    PROVENANCE,
    STATEMENT_TYPE,
    TEST_RESULT,
    VERIFIER_ID,
    VSA,
    Statement,
    VerifiedEvidence,
)
from digestgate.policy import Policy, parse_policy
from digestgate.reference import Location, parse_location
from digestgate.rules.decision import Decision
from digestgate.timeutil import format_timestamp

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
REPO = "https://git.example.org/org/app"
REVISION = "a1" * 20
OTHER_REVISION = "b2" * 20
RUN = "4242"
BUILDER = "https://git.example.org/org/app/.gitea/workflows/release.yml@refs/heads/main"
REGISTRY = "registry.example.org/org/staging"
BACKEND = Digest.of(b"backend index")
FRONTEND = Digest.of(b"frontend manifest")
SIBLING = Digest.of(b"backend linux/arm64 manifest")

POLICY = f"""\
apiVersion: digestgate/v1
kind: Policy
keys:
  build: keys/build.pub
  build2: keys/build2.pub
  tests: keys/tests.pub
  gate: keys/gate.pub
artifacts:
  backend: {{repository: "registry.example.org/org/*/backend"}}
  frontend: {{repository: "registry.example.org/org/*/frontend"}}
source:
  repository: {REPO}
  refs: ["refs/heads/main", "refs/tags/v*"]
  events: ["push", "workflow_dispatch"]
provenance:
  signers: [build, build2]
  threshold: 1
  builder: "https://git.example.org/org/app/.gitea/workflows/release.yml@refs/*/*"
lanes:
  fast-check: {{signers: [tests]}}
  e2e: {{signers: [tests], together: true}}
maxAge: 7d
sameRevision: true
sameRun: true
deny: []
gate:
  signers: [gate]
  maxAge: 30d
"""


@dataclass(frozen=True)
class FakeKey:
    """Stands in for a loaded public key in pure tests: its material is the file name."""

    keyid: str
    spki_der: bytes


def fake_key_loader(ref: Path | str) -> FakeKey:
    """Key material derived from the key file's name (or the inline text): no file I/O."""
    material = (ref.name if isinstance(ref, Path) else ref).encode()
    return FakeKey(hashlib.sha256(material).hexdigest(), material)


def policy(text: str = POLICY) -> Policy:
    """A policy parsed from YAML text (key paths resolve under /policy; keys are fakes)."""
    return parse_policy(
        text.encode(), source="policy.yaml", base_dir=Path("/policy"), key_loader=fake_key_loader
    )


@dataclass(frozen=True)
class FakeSource:
    repository: str | None = REPO
    revision: str | None = REVISION
    ref: str | None = "refs/heads/main"
    run_id: str | None = RUN


@dataclass(frozen=True)
class FakeArtifact:
    image_text: str
    location: Location | None
    reference_problem: str | None


@dataclass(frozen=True)
class FakeRelease:
    source: FakeSource = field(default_factory=FakeSource)
    artifacts: Mapping[str, FakeArtifact] = field(default_factory=dict)


def artifact(image: str) -> FakeArtifact:
    """An artifact as the release loader would describe it."""
    try:
        location = parse_location(image)
    except InvalidReferenceError:
        return FakeArtifact(image, None, "invalid")
    return FakeArtifact(image, location, None if location.digest else "not-digest")


def image(name: str, digest: Digest) -> str:
    return f"{REGISTRY}/{name}@{digest}"


def release(
    images: Mapping[str, str] | None = None, source: FakeSource | None = None
) -> FakeRelease:
    """The standard two-artifact release, or one with the given images."""
    if images is None:
        images = {"backend": image("backend", BACKEND), "frontend": image("frontend", FRONTEND)}
    return FakeRelease(source or FakeSource(), {n: artifact(t) for n, t in images.items()})


def subjects(items: Mapping[str, Digest]) -> list[dict[str, Any]]:
    return [{"name": n, "digest": {"sha256": d.hex}} for n, d in items.items()]


def statement(predicate_type: str, subj: Mapping[str, Digest], predicate: Any) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects(subj),
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def provenance(
    subj: Mapping[str, Digest],
    *,
    repo: str = REPO,
    ref: str = "refs/heads/main",
    event: str = "push",
    revision: str = REVISION,
    run: str = RUN,
    builder: str = BUILDER,
    finished: datetime = NOW - HOUR,
) -> dict[str, Any]:
    return statement(
        PROVENANCE,
        subj,
        {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "workflow": {"repository": repo, "ref": ref, "path": ".gitea/release.yml"}
                },
                "internalParameters": {
                    "ci": "gitea",
                    "event_name": event,
                    "run_id": run,
                    "run_attempt": "1",
                },
                "resolvedDependencies": [
                    {"uri": f"git+{repo}@{ref}", "digest": {"gitCommit": revision}}
                ],
            },
            "runDetails": {
                "builder": {"id": builder},
                "metadata": {
                    "invocationId": f"{repo}/actions/runs/{run}/attempts/1",
                    "startedOn": format_timestamp(finished - HOUR),
                    "finishedOn": format_timestamp(finished),
                },
            },
        },
    )


def lane(
    name: str,
    subj: Mapping[str, Digest],
    *,
    result: str = "PASSED",
    revision: str = REVISION,
    run: str = RUN,
    finished: datetime = NOW - HOUR,
) -> dict[str, Any]:
    return statement(
        TEST_RESULT,
        subj,
        {
            "result": result,
            "configuration": [],
            "url": f"{REPO}/actions/runs/{run}",
            "digestgate_lane": name,
            "digestgate_revision": revision,
            "digestgate_runId": run,
            "digestgate_finishedOn": format_timestamp(finished),
            "digestgate_counts": {"tests": 12, "failures": 0, "errors": 0, "skipped": 1},
        },
    )


def vsa(
    digest: Digest,
    *,
    policy_digest: Digest,
    result: str = "PASSED",
    time: datetime = NOW - HOUR,
    name: str = "backend",
    trusted: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A gate VSA; ``trusted`` defaults to the keys of the standard policy, with roles."""
    if trusted is None:
        standard = policy()
        roles = standard.roles()
        trusted = [
            {"name": n, "keyid": k, **({"role": roles[n]} if n in roles else {})}
            for n, k in standard.key_ids().items()
        ]
    return statement(
        VSA,
        {name: digest},
        {
            "digestgate_trustedKeys": trusted,
            "verifier": {"id": VERIFIER_ID},
            "timeVerified": format_timestamp(time),
            "resourceUri": f"{REGISTRY}/{name}@{digest}",
            "policy": {"uri": "policy.yaml", "digest": {"sha256": policy_digest.hex}},
            "inputAttestations": [],
            "verificationResult": result,
            "verifiedLevels": [],
            "digestgate_kind": "gate",
        },
    )


def verified(
    doc: Mapping[str, Any], signers: Iterable[str] = ("build",), origin: str | None = None
) -> VerifiedEvidence:
    """Verified evidence for a statement document, as the DSSE layer would hand it over."""
    payload = json.dumps(doc, sort_keys=True).encode()
    names = frozenset(signers)
    envelope = payload + b"|" + ",".join(sorted(names)).encode()
    digest = Digest.of(envelope)
    return VerifiedEvidence(
        statement=Statement.parse(payload),
        signers=names,
        envelope_digest=digest,
        origin=origin or f"dir:evidence/{digest.hex[:8]}.json",
        envelope=envelope,
    )


BOTH = {"backend": BACKEND, "frontend": FRONTEND}


def good_evidence() -> list[VerifiedEvidence]:
    """Everything the standard policy needs for the standard release."""
    return [
        verified(provenance({"backend": BACKEND})),
        verified(provenance({"frontend": FRONTEND})),
        verified(lane("fast-check", {"backend": BACKEND}), ["tests"]),
        verified(lane("fast-check", {"frontend": FRONTEND}), ["tests"]),
        verified(lane("e2e", BOTH), ["tests"]),
    ]


def ids_by_artifact(decision: Decision) -> dict[str, set[str]]:
    """Finding ids per artifact; release-level findings under ``"*"`` (only non-empty)."""
    result = {name: {f.id for f in a.findings} for name, a in decision.artifacts.items()}
    result["*"] = {f.id for f in decision.findings}
    return {k: v for k, v in result.items() if v}


def release_json(images: Mapping[str, str], **source: str) -> bytes:
    """A release.json document with the standard source (fields may be overridden)."""
    doc = {
        "apiVersion": "digestgate/v1",
        "kind": "Release",
        "source": {
            "repository": REPO,
            "revision": REVISION,
            "ref": "refs/heads/main",
            "runId": RUN,
            **source,
        },
        "artifacts": {name: {"image": text} for name, text in images.items()},
    }
    return json.dumps(doc).encode()
