"""The trust model under attack, through the real CLI: gate -> promote -> verify.

Each test gives an attacker one capability from docs/threat-model.md and tries to get a
never-validated (or since failed) image promoted and accepted at deploy time. Real keys,
real DSSE envelopes, OCI layouts and the real distribution registry.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digestgate.digest import Digest
from digestgate.evidence.dsse import sign_envelope
from digestgate.evidence.keys import generate_keypair, load_signer
from digestgate.evidence.model import PAYLOAD_TYPE
from digestgate.evidence.store.attached import AttachedStore
from digestgate.evidence.store.base import SubjectLocation
from digestgate.oci import media
from digestgate.oci.layout import LayoutStore
from digestgate.oci.manifest import ImageIndex, build_index
from digestgate.oci.open import Stores
from digestgate.policy import load_policy
from digestgate.reference import parse_location
from digestgate.samples import sample_image
from digestgate.timeutil import utcnow
from tests.conftest import CliResult, run_cli
from tests.fixtures import images
from tests.fixtures.registry import Registry
from tests.fixtures.skopeo import copy_image, push_layout
from tests.integration.test_gate_adversarial import World
from tests.unit.gatekit import lane, provenance, release_json

ROLES = ("build", "tests", "gate")


# --- a release in a real registry, its evidence attached in staging --------------------------


POLICY = """\
apiVersion: digestgate/v1
kind: Policy
keys: {{build: build.pub, tests: tests.pub, gate: gate.pub}}
artifacts:
  backend: {{repository: "{ns}/*/backend", evidence: ["{ns}/staging/backend"]}}
  frontend: {{repository: "{ns}/*/frontend", evidence: ["{ns}/staging/frontend"]}}
source: {{repository: "https://git.example.org/org/app", refs: ["refs/heads/main"]}}
provenance: {{signers: [build]}}
lanes:
  e2e: {{signers: [tests], together: true}}
gate: {{signers: [gate], maxAge: 30d}}
"""


class Pipeline:
    """Staging images in a registry, keys, a policy, and evidence attached in staging."""

    def __init__(self, root: Path, registry: Registry, repo: str) -> None:
        self.root = root
        self.registry = registry
        self.ns = registry.ref(repo)
        self.repo = repo
        self.now = utcnow()
        for role in ROLES:
            pair = generate_keypair()
            (root / f"{role}.key").write_bytes(pair.private_pem)
            (root / f"{role}.pub").write_bytes(pair.public_pem)
        self.policy = root / "policy.yaml"
        self.policy.write_text(POLICY.format(ns=self.ns))
        self.digests: dict[str, Digest] = {}
        for seed, name in enumerate(("backend", "frontend"), start=700):
            info = images.make_image(root / name, tag="v", seed=seed)
            pushed = push_layout(root / name, info.digest, registry, f"{repo}/staging/{name}")
            self.digests[name] = Digest.parse(pushed)
        self.release = root / "release.json"
        self.write_release("staging")

    def image(self, name: str, where: str = "staging") -> str:
        return f"{self.ns}/{where}/{name}@{self.digests[name]}"

    def write_release(self, where: str) -> None:
        self.release.write_bytes(release_json({n: self.image(n, where) for n in self.digests}))

    def subjects(self, where: str = "staging") -> list[SubjectLocation]:
        return [SubjectLocation(n, parse_location(self.image(n, where))) for n in self.digests]

    def envelope(self, statement: Mapping[str, Any], role: str) -> bytes:
        signer = load_signer(str(self.root / f"{role}.key"), {})
        return sign_envelope(json.dumps(statement).encode(), PAYLOAD_TYPE, [signer])

    def honest_evidence(self, finished: datetime) -> list[tuple[bytes, list[str]]]:
        """Provenance per image and one joint e2e result: (envelope, artifact names)."""
        result = [
            (self.envelope(provenance({n: d}, finished=finished), "build"), [n])
            for n, d in self.digests.items()
        ]
        joint = self.envelope(lane("e2e", self.digests, finished=finished), "tests")
        return [*result, (joint, list(self.digests))]

    def attach(self, evidence: Sequence[tuple[bytes, list[str]]], where: str = "staging") -> None:
        subjects = {s.name: s for s in self.subjects(where)}
        with Stores() as stores:
            store = AttachedStore(stores)
            for raw, names in evidence:
                statement = json.loads(base64.b64decode(json.loads(raw)["payload"]))
                kind = statement["predicateType"]
                store.write(raw, predicate=kind, subjects=[subjects[n] for n in names])

    def failed_e2e(self, finished: datetime) -> tuple[bytes, list[str]]:
        statement = lane("e2e", self.digests, result="FAILED", finished=finished)
        return self.envelope(statement, "tests"), list(self.digests)

    # -- the commands ---------------------------------------------------------------------

    def gate(self, *extra: str) -> CliResult:
        return run_cli(
            "gate", "--release", str(self.release), "--policy", str(self.policy),
            "--evidence", "attached", "--vsa-key", str(self.root / "gate.key"), *extra,
        )  # fmt: skip

    def promote(self, where: str = "production") -> CliResult:
        return run_cli(
            "promote", "--release", str(self.release), "--policy", str(self.policy),
            "--evidence", "attached", "--to", f"{self.ns}/{where}",
            "--vsa-key", str(self.root / "gate.key"), "--tag", "v1",
        )  # fmt: skip

    def verify(self, name: str, where: str) -> CliResult:
        return run_cli(
            "verify", self.image(name, where), "--policy", str(self.policy),
            "--evidence", "attached",
        )  # fmt: skip

    def target_is_empty(self, where: str) -> bool:
        repos = self.registry.root / "docker/registry/v2/repositories" / self.repo / where
        return not repos.exists()


@pytest.fixture
def pipeline(tmp_path: Path, registry: Registry, repo: str) -> Pipeline:
    return Pipeline(tmp_path, registry, repo)


def assert_nothing_deployable(pipeline: Pipeline, where: str, code: int = 1) -> None:
    """``verify`` refuses every image at ``where``: 1 (no passing VSA), 3 (cannot decide)."""
    for name in ("backend", "frontend"):
        check = pipeline.verify(name, where)
        assert check.code == code, check.stderr


# --- the attacks --------------------------------------------------------------------------


@pytest.mark.registry
@pytest.mark.skopeo
def test_a_release_pointed_at_production_still_sees_staging_evidence(
    pipeline: Pipeline, registry: Registry
) -> None:
    """Who: can edit release.json. Production holds the same digests with only the older
    PASSED evidence; staging holds a newer FAILED e2e result."""
    hours_ago = pipeline.now - timedelta(hours=2)
    honest = pipeline.honest_evidence(hours_ago)
    pipeline.attach([*honest, pipeline.failed_e2e(pipeline.now - timedelta(hours=1))])
    for name in pipeline.digests:
        copy_image(
            registry,
            f"{pipeline.repo}/staging/{name}@{pipeline.digests[name]}",
            registry,
            f"{pipeline.repo}/production/{name}@{pipeline.digests[name]}",
        )
    pipeline.attach(honest, where="production")
    pipeline.write_release("production")

    result = pipeline.gate()
    assert result.code == 1, result.stderr
    assert "lane.failed" in result.stderr
    promoted = pipeline.promote("prod2")
    assert promoted.code == 1, promoted.stderr
    assert pipeline.target_is_empty("prod2")
    assert_nothing_deployable(pipeline, "production")


@pytest.mark.registry
@pytest.mark.skopeo
def test_256_referrers_dated_9999_cannot_hide_a_failed_result(pipeline: Pipeline) -> None:
    """Who: can push to the staging repository (no key)."""
    pipeline.attach(pipeline.honest_evidence(pipeline.now - timedelta(hours=2)))
    pipeline.attach([pipeline.failed_e2e(pipeline.now - timedelta(hours=1))])
    forged = datetime(9999, 12, 31, tzinfo=UTC)
    with Stores() as stores:
        for subject in pipeline.subjects():
            batch = AttachedStore(stores, clock=lambda: forged).batch(subject)
            for i in range(256):
                junk = json.dumps(
                    {"payload": f"junk{i}", "payloadType": PAYLOAD_TYPE, "signatures": []}
                ).encode()
                batch.add(junk, predicate="test-result")
            batch.commit()

    result = pipeline.gate()
    assert result.code == 3, result.stderr
    assert "more than the 256 read at most" in result.stderr
    assert pipeline.promote().code == 3
    assert pipeline.target_is_empty("production")
    assert_nothing_deployable(pipeline, "staging", code=3)


@pytest.mark.registry
@pytest.mark.skopeo
def test_a_fallback_index_of_1000_entries_cannot_hide_the_failed_result_last(
    pipeline: Pipeline,
) -> None:
    """Who: can push to the staging repository (writes the sha256-<hex> index tag)."""
    pipeline.attach(pipeline.honest_evidence(pipeline.now - timedelta(hours=2)))
    pipeline.attach([pipeline.failed_e2e(pipeline.now - timedelta(hours=1))])
    with Stores() as stores:
        for subject in pipeline.subjects():
            store = stores.open(subject.location)
            index = store.get_manifest(store.resolve(subject.digest.tag_form).digest)
            assert isinstance(index, ImageIndex)
            entries = list(index.manifests)
            # The registry wants every entry to exist: the junk repeats an honest referrer.
            junk = [entries[0]] * 1000
            # The honest entries first, 1000 junk entries, the FAILED result's entry last.
            reordered = [*entries[:-1], *junk, entries[-1]]
            raw = build_index(reordered)
            store.put_manifest(raw, media.OCI_INDEX, tag=subject.digest.tag_form)

    result = pipeline.gate()
    assert result.code == 3, result.stderr
    assert "number more than 1000" in result.stderr
    assert pipeline.promote().code == 3
    assert pipeline.target_is_empty("production")


def test_ten_thousand_junk_files_cannot_hide_a_failed_result(world: World) -> None:
    """Who: can write the evidence directory before the gate reads it (no key)."""
    world.put(
        "zz-e2e-failed", lane("e2e", world.digests, result="FAILED", finished=world.now), "tests"
    )
    junk = b'{"payload": "", "payloadType": "x", "signatures": []}'
    for i in range(10_000):
        (world.evidence / f"{i:05d}.json").write_bytes(junk)
    result = world.gate("--offline", "--vsa-key", str(world.keys["gate"]))
    assert result.code == 3, result.stderr
    assert "holds more than 10000 evidence files" in result.stderr
    assert not list(world.evidence.glob("vsa-*.json"))
    promoted = promote_world(world)
    assert promoted.code == 3, promoted.stderr
    assert not (world.root / "production").exists()


@pytest.mark.parametrize("attack", ["replaced", "swapped"])
def test_swapped_public_keys_are_a_new_policy_that_deployments_refuse(
    world: World, tmp_path: Path, attack: str
) -> None:
    """Who: can edit the repository holding the policy and keys (and holds one role's key)."""
    world.write_policy(world.policy.read_text().replace("oci:**/images/", "oci:**/"))
    deploy = tmp_path / "deploy"  # the deployment's reviewed copy of the policy and keys
    deploy.mkdir()
    for file in ("policy.yaml", "build.pub", "build2.pub", "tests.pub", "gate.pub"):
        shutil.copy(world.root / file, deploy / file)
    pinned = run_cli("policy", "digest", "--policy", str(deploy / "policy.yaml")).stdout.strip()
    assert pinned.startswith("sha256:")

    if attack == "replaced":  # the attacker's own keys in place of the build and tests keys
        for role in ("build", "tests"):
            pair = generate_keypair()
            (world.root / f"{role}.pub").write_bytes(pair.public_pem)
            world.keys[role].write_bytes(pair.private_pem)
    else:  # the tests key (held by every test job) now verifies as the build key, and back
        build, tests = (world.root / f"{r}.pub" for r in ("build", "tests"))
        build_pem, tests_pem = build.read_bytes(), tests.read_bytes()
        build.write_bytes(tests_pem)
        tests.write_bytes(build_pem)
        world.keys["build"], world.keys["tests"] = world.keys["tests"], world.keys["build"]
    assert run_cli("policy", "digest", "--policy", str(world.policy)).stdout.strip() != pinned

    # An image nobody validated, with evidence the attacker signs for it.
    backend = LayoutStore.open(str(world.root / "images" / "backend"), create=False)
    digest = sample_image(backend, {"app": b"never validated"}).digest
    world.digests["backend"] = digest
    world.write_release()
    for path in world.evidence.iterdir():
        path.unlink()
    both = dict(world.digests)
    world.put("p1", provenance({"backend": digest}, finished=world.when), "build")
    world.put("p2", provenance({"frontend": both["frontend"]}, finished=world.when), "build")
    world.put("l1", lane("fast-check", both, finished=world.when), "tests")
    world.put("l2", lane("e2e", both, finished=world.when), "tests")

    # Inside the pipeline the edited policy is the policy: gate and promote go through ...
    assert world.gate("--offline").code == 0
    promoted = promote_world(world)
    assert promoted.code == 0, promoted.stderr
    target = f"oci:{world.root / 'production' / 'backend'}@{digest}"
    # ... and the deployment, which verifies under its reviewed policy, refuses the result.
    check = run_cli(
        "verify", target, "--policy", str(deploy / "policy.yaml"), "--evidence", "attached",
        "--policy-digest", pinned,
    )  # fmt: skip
    assert check.code == 1, check.stderr
    assert "vsa.policy-mismatch" in check.stderr
    # The edited policy under the reviewed pin is a configuration error, not a pass.
    edited = run_cli(
        "verify", target, "--policy", str(world.policy), "--evidence", "attached",
        "--policy-digest", pinned,
    )  # fmt: skip
    assert edited.code == 2, edited.stderr
    assert "is not one of the pinned" in edited.stderr


def test_a_layout_outside_the_pattern_is_refused(world: World) -> None:
    """Who: can edit release.json and write a layout beside the allowed ones."""
    world.write_policy(world.policy.read_text().replace("oci:**/images/backend", "oci:*/backend"))
    shutil.copytree(world.root / "images" / "backend", world.root.parent / "backend")
    cwd = Path.cwd()
    os.chdir(world.root)
    try:
        sneaky = f"oci:../backend@{world.digests['backend']}"
        world.write_release({"backend": sneaky, "frontend": world.image("frontend")})
        result = world.gate("--offline")
        promoted = promote_world(world)
    finally:
        os.chdir(cwd)
    assert result.code == 1, result.stderr
    assert world.ids()["backend"] == {"artifact.wrong-repository"}
    assert promoted.code == 1, promoted.stderr
    assert not (world.root / "production").exists()


def test_junk_signatures_cannot_spend_unbounded_cpu(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Who: can write the evidence directory. Each junk envelope carries 64 signatures,
    each tried against every trusted key; the run stops at its budget (exit 3)."""
    monkeypatch.setattr("digestgate.evidence.dsse.MAX_SIGNATURE_CHECKS", 2000)
    sigs = [{"keyid": "", "sig": "AAAA"} for _ in range(64)]
    for i in range(10):
        payload = base64.b64encode(f"junk {i}".encode()).decode()
        junk = {"payload": payload, "payloadType": PAYLOAD_TYPE, "signatures": sigs}
        world.put_raw(f"junk{i}", json.dumps(junk).encode())
    result = world.gate("--offline", "--vsa-key", str(world.keys["gate"]))
    assert result.code == 3, result.stderr
    assert "more than 2000 signature checks" in result.stderr
    assert not list(world.evidence.glob("vsa-*.json"))


def test_vsas_list_every_envelope_the_gate_saw(world: World) -> None:
    """The audit trail for deletions: what the decision rested on, and what it did not use."""
    older = lane("e2e", world.digests, finished=world.when - timedelta(hours=1))
    world.put("e2e-older", older, "tests")
    world.put_raw("junk", b'{"payload": "", "payloadType": "x", "signatures": []}')
    result = world.gate("--offline", "--vsa-key", str(world.keys["gate"]))
    assert result.code == 0, result.stderr
    vsa_files = sorted(world.evidence.glob("vsa-*.json"))
    assert len(vsa_files) == 2
    for path in vsa_files:
        predicate = json.loads(base64.b64decode(json.loads(path.read_bytes())["payload"]))[
            "predicate"
        ]
        seen = {Path(e["uri"]).name: e["counted"] for e in predicate["digestgate_seen"]}
        assert seen["e2e-older.json"] is False
        assert seen["e2e.json"] is True
        assert predicate["digestgate_unusable"]["count"] == 1
        assert Path(predicate["digestgate_unusable"]["listed"][0]["uri"]).name == "junk.json"
        keys = {k["name"]: (k["keyid"], k.get("role")) for k in predicate["digestgate_trustedKeys"]}
        loaded = load_policy(world.policy)
        assert keys["gate"] == (loaded.keys["gate"].keyid, "gate")
        assert keys["tests"][1] == "lanes"


def promote_world(world: World) -> CliResult:
    return run_cli(
        "promote", "--release", str(world.release), "--policy", str(world.policy),
        "--evidence", f"dir:{world.evidence}", "--to", f"oci:{world.root / 'production'}",
        "--vsa-key", str(world.keys["gate"]), "--tag", "v1",
    )  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> World:
    root = tmp_path / "w"
    root.mkdir()
    return World(root)


def test_verify_reads_no_evidence_for_an_image_outside_the_policy(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Who: names the image to verify (a deploy manifest edited to point elsewhere)."""
    import dataclasses

    import httpx

    from digestgate.cli import options as cli_options

    contacted: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        contacted.append(str(request.url))
        return httpx.Response(404)

    original = cli_options.store_options_from

    def patched(*args: Any, **kwargs: Any) -> Any:
        return dataclasses.replace(original(*args, **kwargs), transport=httpx.MockTransport(record))

    monkeypatch.setattr(cli_options, "store_options_from", patched)
    image = f"elsewhere.example/org/backend@{world.digests['backend']}"
    result = run_cli("verify", image, "--policy", str(world.policy), "--evidence", "attached")
    assert result.code == 1, result.stderr
    assert "artifact.wrong-repository" in result.stderr
    assert contacted == []
