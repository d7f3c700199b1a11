"""Staged rollouts through the real CLI: ``requires: {stage, minSoak}`` against promotion
records written by ``promote`` (dir: and attached stores) and against forged ones.

Real keys, real DSSE envelopes, real OCI layouts. Every attack asserts exit 1 and the ids.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from digestgate.digest import Digest
from digestgate.evidence.model import VSA, Subject
from digestgate.evidence.statements import statement_bytes, vsa_predicate
from digestgate.rules.stages import record_fields
from tests.conftest import CliResult, run_cli
from tests.fixtures.registry import Registry
from tests.integration.test_gate_adversarial import World
from tests.unit.gatekit import lane

HOUR = timedelta(hours=1)
STAGING = "stage: staging\n"
PRODUCTION = "stage: production\nrequires: {stage: staging, minSoak: 1h}\n"


class Stages(World):
    """The adversarial world with a staging policy and a production policy side by side."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        base = self.policy.read_text()
        self.staging = root / "staging.yaml"
        self.staging.write_text(base + STAGING)
        self.production = root / "production.yaml"
        self.production.write_text(base + PRODUCTION)
        self.policy = self.production  # World.gate() gates under production

    def record(
        self,
        *,
        stage: str | None = "staging",
        release: Mapping[str, Digest] | None = None,
        at: datetime | None = None,
        kind: str = "promotion",
        subjects: Mapping[str, Digest] | None = None,
    ) -> dict[str, object]:
        """A promotion record (as ``promote`` signs it) for the release, one per artifact."""
        release = dict(self.digests if release is None else release)
        name, digest = next(iter((subjects or {"backend": self.digests["backend"]}).items()))
        predicate = vsa_predicate(
            result="PASSED",
            policy_digest=Digest.of(b"the staging policy"),
            policy_uri="staging.yaml",
            resource_uri=f"oci:{self.root}/staging-target/{name}@{digest}",
            input_attestations=[],
            time_verified=at or self.now - 2 * HOUR,
            kind="gate" if kind == "gate" else "promotion",
            source=f"oci:{self.root}/images/{name}@{digest}",
            findings=(),
        )
        if stage is not None:
            predicate.update(record_fields(stage, [Subject(n, d) for n, d in release.items()]))
        doc: dict[str, object] = json.loads(
            statement_bytes([Subject(name, digest)], VSA, predicate)
        )
        return doc

    def put_records(self, signer: str = "gate", **kw: object) -> None:
        for name, digest in self.digests.items():
            doc = self.record(subjects={name: digest}, **kw)  # type: ignore[arg-type]
            self.put(f"record-{name}", doc, signer)

    def promote_staging(self, target: str, *extra: str) -> CliResult:
        return run_cli(
            "promote",
            "--release", str(self.release),
            "--policy", str(self.staging),
            "--evidence", f"dir:{self.evidence}",
            "--to", target,
            "--vsa-key", str(self.keys["gate"]),
            *extra,
        )  # fmt: skip


@pytest.fixture
def stages(tmp_path: Path) -> Stages:
    return Stages(tmp_path)


def gate_ids(stages: Stages, *extra: str) -> tuple[int, dict[str, set[str]], CliResult]:
    result = stages.gate("--offline", *extra)
    return result.code, stages.ids(), result


def both(*ids: str) -> dict[str, set[str]]:
    return {"backend": set(ids), "frontend": set(ids)}


# --- what promote writes, and where the gate finds it --------------------------------------


def test_without_a_staging_promotion_production_is_blocked(stages: Stages) -> None:
    code, ids, result = gate_ids(stages)
    assert code == 1, result.stderr
    assert ids == both("stage.missing")
    assert "stage:staging" in result.stderr  # the requirement row of the table


def test_a_fresh_staging_promotion_has_not_soaked_and_says_for_how_long(stages: Stages) -> None:
    promoted = stages.promote_staging(f"oci:{stages.root}/staging-target")
    assert promoted.code == 0, promoted.stderr
    records = [json.loads(_payload(p))["predicate"] for p in stages.evidence.glob("vsa-*.json")]
    kinds = {(r["digestgate_kind"], r.get("digestgate_stage")) for r in records}
    assert ("promotion", "staging") in kinds  # the stage is in what promote signed
    code, ids, result = gate_ids(stages)
    assert code == 1, result.stderr
    assert ids == both("stage.soak-too-short")
    report = json.loads(stages.report.read_text())
    message = report["artifacts"]["backend"]["findings"][0]["message"]
    assert "ago; 1h of soak is required" in message and "promoted to staging 0s ago" in message


def test_a_staging_promotion_counts_when_no_soak_is_required(stages: Stages) -> None:
    stages.production.write_text(
        stages.staging.read_text().replace(STAGING, "")
        + ("stage: production\nrequires: {stage: staging}\n")
    )
    assert stages.promote_staging(f"oci:{stages.root}/staging-target").code == 0
    code, ids, result = gate_ids(stages)
    assert (code, ids) == (0, {}), result.stderr
    report = json.loads(stages.report.read_text())
    assert len(report["artifacts"]["backend"]["evidence"]) == 4  # provenance, 2 lanes, record


def test_the_gate_finds_the_record_attached_in_the_staging_target(stages: Stages) -> None:
    """Attached evidence: production reads the staging target's referrers (policy-named)."""
    target = stages.root / "staging-target"
    assert stages.promote_staging(f"oci:{target}").code == 0
    only_attached = stages.root / "lanes-only"  # no record in any dir: it must come attached
    only_attached.mkdir()
    for path in stages.evidence.glob("*.json"):
        if not path.name.startswith("vsa-"):
            shutil.copy(path, only_attached / path.name)
    text = stages.production.read_text().replace("minSoak: 1h", "minSoak: 1s")
    for name in ("backend", "frontend"):
        text = text.replace(
            f'repository: "oci:**/images/{name}"',
            f'repository: "oci:**/images/{name}", evidence: ["oci:{target}/{name}"]',
        )
    stages.production.write_text(text)
    import time

    time.sleep(1.1)
    result = run_cli(
        "gate", "--offline", "--release", str(stages.release), "--policy", str(stages.production),
        "--evidence", f"dir:{only_attached}", "--evidence", "attached",
        "--report", str(stages.report),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert stages.ids() == {}


def test_staging_in_a_real_registry_then_production_reads_it_attached(
    stages: Stages, registry: Registry, repo: str
) -> None:
    """The whole chain on the CNCF registry: staging's record travels as a referrer (the
    tag-schema fallback, since this registry has no Referrers API) and production finds it."""
    staging = registry.ref(f"{repo}/staging")
    for path in (stages.staging, stages.production):  # images may live in the registry too
        path.write_text(path.read_text().replace("oci:**/images/", "**/"))
    assert stages.promote_staging(staging, "--tag", "v1").code == 0
    lanes_only = stages.root / "lanes-only"
    lanes_only.mkdir()
    for path in stages.evidence.glob("*.json"):
        if not path.name.startswith("vsa-"):
            shutil.copy(path, lanes_only / path.name)
    text = stages.production.read_text()
    for name in ("backend", "frontend"):
        text = text.replace(
            f'repository: "**/{name}"', f'repository: "**/{name}", evidence: ["{staging}/{name}"]'
        )
    stages.production.write_text(text)

    def production() -> CliResult:
        return run_cli(
            "gate", "--offline", "--release", str(stages.release),
            "--policy", str(stages.production), "--evidence", f"dir:{lanes_only}",
            "--evidence", "attached", "--report", str(stages.report),
        )  # fmt: skip

    result = production()
    assert result.code == 1, result.stderr
    assert stages.ids() == both("stage.soak-too-short")
    stages.production.write_text(stages.production.read_text().replace(", minSoak: 1h", ""))
    result = production()
    assert result.code == 0, result.stderr


def _payload(path: Path) -> str:
    import base64

    return base64.b64decode(json.loads(path.read_text())["payload"]).decode()


# --- attacks ---------------------------------------------------------------------------------


def test_a_gate_signed_record_that_has_soaked_passes(stages: Stages) -> None:
    stages.put_records()
    code, ids, result = gate_ids(stages)
    assert (code, ids) == (0, {}), result.stderr
    assert "promoted to staging; soaked 2h" in result.stderr


def test_a_record_signed_by_the_tests_key_is_not_read(stages: Stages) -> None:
    stages.put_records(signer="tests")
    code, ids, result = gate_ids(stages)
    assert (code, ids) == (1, both("stage.untrusted-signer")), result.stderr


def test_a_record_signed_by_a_key_the_policy_does_not_know_is_unverified(stages: Stages) -> None:
    stages.put_records(signer="stranger")
    code, ids, result = gate_ids(stages)
    assert code == 1, result.stderr
    assert ids == {**both("stage.missing"), "*": {"evidence.unverified"}}


def test_requires_signers_name_the_earlier_stage_s_own_gate_key(stages: Stages) -> None:
    """Staging's promote job signs with its own key; production's gate key is not it."""
    text = stages.production.read_text().replace("keys:\n", "keys:\n  staging-gate: stranger.pub\n")
    stages.production.write_text(
        text.replace("minSoak: 1h", "minSoak: 1h, signers: [staging-gate]")
    )
    stages.put_records(signer="stranger")
    code, ids, result = gate_ids(stages)
    assert (code, ids) == (0, {}), result.stderr
    stages.put_records(signer="gate")  # replaces them: production's own gate key
    code, ids, result = gate_ids(stages)
    assert (code, ids) == (1, both("stage.untrusted-signer")), result.stderr
    assert "not by requires.signers (staging-gate)" in result.stderr


def test_this_stage_s_own_gate_decisions_are_not_untrusted_records(stages: Stages) -> None:
    text = stages.production.read_text().replace("keys:\n", "keys:\n  staging-gate: stranger.pub\n")
    stages.production.write_text(
        text.replace("minSoak: 1h", "minSoak: 1h, signers: [staging-gate]")
    )
    assert stages.gate("--offline", "--vsa-key", str(stages.keys["gate"])).code == 1
    assert len(list(stages.evidence.glob("vsa-*.json"))) == 2  # production's own decisions
    code, ids, result = gate_ids(stages)
    assert (code, ids) == (1, both("stage.missing")), result.stderr


def test_the_earlier_stage_s_key_cannot_sign_decisions_verify_accepts(stages: Stages) -> None:
    text = stages.production.read_text().replace("keys:\n", "keys:\n  staging-gate: stranger.pub\n")
    stages.production.write_text(
        text.replace("minSoak: 1h", "minSoak: 1h, signers: [staging-gate]")
    )
    stages.put_records(signer="stranger")
    assert stages.gate("--offline", "--vsa-key", str(stages.keys["stranger"])).code == 2
    assert stages.gate("--offline", "--vsa-key", str(stages.keys["gate"])).code == 0
    for path in stages.evidence.glob("vsa-*.json"):  # the same PASSED decision, re-signed
        statement = json.loads(_payload(path))
        path.unlink()
        stages.put(f"resigned-{path.stem}", statement, "stranger")
    result = run_cli(
        "verify", stages.image("backend"), "--policy", str(stages.production),
        "--evidence", f"dir:{stages.evidence}",
    )  # fmt: skip
    assert result.code == 1, result.stderr
    assert "vsa.missing" in result.stderr and "not by gate.signers" in result.stderr


def test_a_record_for_other_digests_does_not_count(stages: Stages) -> None:
    other = {"backend": Digest.of(b"another backend"), "frontend": stages.digests["frontend"]}
    stages.put_records(release=other)
    code, ids, result = gate_ids(stages)
    assert (code, ids) == (1, both("stage.missing")), result.stderr
    assert "another release" in result.stderr


def test_a_record_for_a_larger_release_does_not_count(stages: Stages) -> None:
    bigger = {**stages.digests, "worker": Digest.of(b"worker")}
    stages.put_records(release=bigger)
    code, ids, _ = gate_ids(stages)
    assert (code, ids) == (1, both("stage.missing"))


def test_a_record_about_another_digest_does_not_count(stages: Stages) -> None:
    """The record's subject is another backend: it names nothing in this release."""
    other = Digest.of(b"another backend")
    stages.put("record", stages.record(subjects={"backend": other}), "gate")
    code, ids, _ = gate_ids(stages)
    assert (code, ids) == (1, both("stage.missing"))


@pytest.mark.parametrize("stage", ["dev", "production", None])
def test_a_record_for_another_stage_or_none_does_not_count(
    stages: Stages, stage: str | None
) -> None:
    stages.put_records(stage=stage)
    code, ids, result = gate_ids(stages)
    assert (code, ids) == (1, both("stage.missing")), result.stderr


def test_a_gate_decision_is_not_a_promotion_record(stages: Stages) -> None:
    stages.put_records(kind="gate")
    code, ids, _ = gate_ids(stages)
    assert (code, ids) == (1, both("stage.missing"))


def test_backdated_lane_statements_do_not_add_soak(stages: Stages) -> None:
    """The tests key signs lane times; only the gate-signed record's time counts."""
    old = stages.now - timedelta(days=3)
    both_digests = dict(stages.digests)
    stages.put("fast-check", lane("fast-check", both_digests, finished=old), "tests")
    stages.put("e2e", lane("e2e", both_digests, finished=old), "tests")
    stages.put_records(at=stages.now - timedelta(minutes=10))
    code, ids, result = gate_ids(stages)
    assert (code, ids) == (1, both("stage.soak-too-short")), result.stderr
    report = json.loads(stages.report.read_text())
    assert (
        "10m ago; 1h of soak is required"
        in report["artifacts"]["backend"]["findings"][0]["message"]
    )


def test_a_backdated_record_signed_by_the_tests_key_is_refused(stages: Stages) -> None:
    stages.put_records(signer="tests", at=stages.now - timedelta(days=30))
    code, ids, _ = gate_ids(stages)
    assert (code, ids) == (1, both("stage.untrusted-signer"))


def test_a_record_from_the_future_is_refused(stages: Stages) -> None:
    stages.put_records(at=stages.now + HOUR)
    code, ids, _ = gate_ids(stages)
    assert (code, ids) == (1, both("stage.missing", "evidence.future-time"))


def test_a_record_within_clock_skew_counts_for_a_policy_without_soak(stages: Stages) -> None:
    stages.production.write_text(stages.production.read_text().replace(", minSoak: 1h", ""))
    stages.put_records(at=stages.now + timedelta(minutes=2))
    code, ids, _ = gate_ids(stages)
    assert (code, ids) == (0, {})


def test_a_policy_without_requires_ignores_records(stages: Stages) -> None:
    stages.policy = stages.staging
    code, ids, _ = gate_ids(stages)
    assert (code, ids) == (0, {})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("requires: {stage: staging}\n", "requires needs signers"),
        ("stage: Prod\n", "invalid stage 'Prod'"),
        ("stage: staging\nrequires: {stage: staging}\n", "is this policy's own stage"),
        ("requires: {stage: staging, soak: 1h}\n", "unknown field 'soak' in requires"),
        ("requires: {minSoak: 1h}\n", "requires needs 'stage'"),
        ("requires: {stage: staging, minSoak: soon}\n", "requires.minSoak"),
    ],
)
def test_bad_stage_settings_are_exit_2(stages: Stages, extra: str, message: str) -> None:
    base = stages.staging.read_text().replace(STAGING, "")
    if "needs signers" in message:
        base = base.split("gate:\n")[0]
    stages.production.write_text(base + extra)
    result = stages.gate("--offline")
    assert result.code == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
