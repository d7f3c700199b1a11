"""`digestgate gate` and `policy digest` on a real Sigstore bundle, through the CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from digestgate.evidence.keys import generate_keypair
from tests.conftest import CliResult, run_cli
from tests.unit.gatekit import release_json
from tests.unit.sigstorekit import RUN, SOURCE, WHEEL, WHEEL_DIGEST, policy_text, setup

REVISION = "8304c42402aa3a569882687e0642c359e5a74ac2"


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    s = setup(tmp_path)
    s.add_bundle()
    s.add_lane()
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(), encoding="utf-8")
    release = tmp_path / "release.json"
    release.write_bytes(
        release_json(
            {WHEEL: f"oci:{tmp_path}/wheel@{WHEEL_DIGEST}"},
            repository=SOURCE,
            revision=REVISION,
            runId=RUN,
        )
    )
    return policy, release, s.evidence


def _gate(policy: Path, release: Path, evidence: Path, *extra: str) -> CliResult:
    return run_cli(
        "gate",
        "--release",
        str(release),
        "--policy",
        str(policy),
        "--evidence",
        f"dir:{evidence}",
        "--offline",
        *extra,
    )


def test_the_gate_passes_on_a_real_bundle_and_its_vsa_lists_it(tmp_path: Path) -> None:
    if os.environ.get("CI") != "true":
        pytest.importorskip("sigstore")
    policy, release, evidence = _files(tmp_path)
    gate_key = tmp_path / "gate.key"
    gate_key.write_bytes(generate_keypair().private_pem)
    report = tmp_path / "report.json"
    result = _gate(policy, release, evidence, "--report", str(report), "--vsa-key", str(gate_key))
    assert result.code == 0, result.stderr
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert doc["verdict"] == "PASSED"
    origins = json.dumps(doc["artifacts"][WHEEL]["evidence"])
    assert "reusable-workflow-attestation.sigstore.json" in origins
    assert len(list(evidence.glob("vsa-*.json"))) == 1


def test_without_the_extra_the_gate_is_exit_2_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy, release, evidence = _files(tmp_path)
    monkeypatch.setitem(sys.modules, "sigstore.models", None)
    result = _gate(policy, release, evidence)
    assert result.code == 2
    assert "digestgate[sigstore]" in result.stderr
    assert "Traceback" not in result.stderr


def test_policy_digest_lists_the_identity(tmp_path: Path) -> None:
    policy, _, _ = _files(tmp_path)
    result = run_cli("-v", "policy", "digest", "--policy", str(policy))
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("sha256:")
    assert "key build: sigstore:" in result.stderr
