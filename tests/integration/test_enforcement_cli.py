"""``enforcement: warn`` through the real CLI: the gate reports loudly and exits 0, its VSAs
say FAILED with the warn marker, ``verify`` refuses them and ``promote`` still blocks.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.conftest import CliResult, run_cli
from tests.integration.test_gate_adversarial import World

WARN = "enforcement: warn\n"


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.policy.write_text(w.policy.read_text() + WARN)
    return w


def vsa_payloads(world: World) -> list[dict[str, object]]:
    result = []
    for path in sorted(world.evidence.glob("vsa-*.json")):
        envelope = json.loads(path.read_text())
        result.append(json.loads(base64.b64decode(envelope["payload"]))["predicate"])
    return result


def verify(world: World, name: str = "backend") -> CliResult:
    return run_cli(
        "verify", world.image(name), "--policy", str(world.policy),
        "--evidence", f"dir:{world.evidence}",
    )  # fmt: skip


def test_a_blocked_release_exits_0_and_says_so_everywhere(world: World, tmp_path: Path) -> None:
    world.files["e2e"].unlink()
    summary = tmp_path / "summary.md"
    result = world.gate(
        "--offline", env={"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"}
    )
    assert result.code == 0, result.stderr
    assert "WARNING: enforcement: warn: the gate would BLOCK this release" in result.stderr
    verdict = [line for line in result.stdout.splitlines() if line.startswith("gate:")]
    assert verdict[0].startswith("gate: FAILED") and "[enforcement: warn" in verdict[0]
    assert "::error" not in result.stdout  # annotations are warnings, and say why
    assert "::warning title=digestgate gate%3A enforcement warn::" in result.stdout
    assert "lane.missing" in result.stdout
    report = json.loads(world.report.read_text())
    assert (report["enforcement"], report["verdict"]) == ("warn", "FAILED")
    assert summary.read_text().startswith("> [!WARNING]\n> **enforcement: warn**")


def test_the_banner_survives_quiet(world: World) -> None:
    world.files["e2e"].unlink()
    result = run_cli(
        "-q", "gate", "--offline", "--release", str(world.release), "--policy", str(world.policy),
        "--evidence", f"dir:{world.evidence}",
    )  # fmt: skip
    assert result.code == 0
    assert "WARNING: enforcement: warn" in result.stderr


def test_the_default_is_enforce_and_the_report_says_so(world: World) -> None:
    world.policy.write_text(world.policy.read_text().replace(WARN, ""))
    world.files["e2e"].unlink()
    result = world.gate("--offline")
    assert result.code == 1
    assert "enforcement" not in result.stderr
    assert json.loads(world.report.read_text())["enforcement"] == "enforce"


def test_explicit_enforce_blocks(world: World) -> None:
    world.policy.write_text(world.policy.read_text().replace(WARN, "enforcement: enforce\n"))
    world.files["e2e"].unlink()
    assert world.gate("--offline").code == 1


def test_warn_vsas_say_failed_and_verify_refuses_them(world: World) -> None:
    result = world.gate("--offline", "--vsa-key", str(world.keys["gate"]))
    assert result.code == 0, result.stderr
    assert "WARNING: enforcement: warn: the gate passed but does not enforce" in result.stderr
    payloads = vsa_payloads(world)
    assert len(payloads) == 2
    for predicate in payloads:
        assert predicate["verificationResult"] == "FAILED"
        assert predicate["verifiedLevels"] == ["FAILED"]
        assert predicate["digestgate_enforcement"] == "warn"
        assert predicate["digestgate_evaluated"] == "PASSED"
    refused = verify(world)
    assert refused.code == 1, refused.stderr
    assert "vsa.warn-only" in refused.stderr


def test_verify_refuses_a_warn_marked_vsa_even_if_it_claims_passed(world: World) -> None:
    assert world.gate("--offline", "--vsa-key", str(world.keys["gate"])).code == 0
    for path in world.evidence.glob("vsa-*.json"):
        statement = json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))
        statement["predicate"]["verificationResult"] = "PASSED"
        statement["predicate"]["verifiedLevels"] = ["SLSA_BUILD_LEVEL_UNEVALUATED"]
        path.unlink()
        world.put(path.stem + "-claims-passed", statement, "gate")
    refused = verify(world)
    assert refused.code == 1, refused.stderr
    assert "vsa.warn-only" in refused.stderr and "enforcement: warn" in refused.stderr


def promote(world: World, target: Path) -> CliResult:
    return run_cli(
        "promote",
        "--release", str(world.release),
        "--policy", str(world.policy),
        "--evidence", f"dir:{world.evidence}",
        "--to", f"oci:{target}",
        "--vsa-key", str(world.keys["gate"]),
    )  # fmt: skip


def test_promote_under_warn_still_blocks(world: World, tmp_path: Path) -> None:
    world.files["e2e"].unlink()
    target = tmp_path / "prod"
    result = promote(world, target)
    assert result.code == 1, result.stderr
    assert "lane.missing" in result.stderr
    assert not target.exists() or not any(target.iterdir())


def test_promote_under_warn_enforces_and_signs_real_decisions(world: World, tmp_path: Path) -> None:
    result = promote(world, tmp_path / "prod")
    assert result.code == 0, result.stderr
    gate_vsas = [p for p in vsa_payloads(world) if p["digestgate_kind"] == "gate"]
    assert gate_vsas and all(p["verificationResult"] == "PASSED" for p in gate_vsas)
    assert not any("digestgate_enforcement" in p for p in gate_vsas)
    assert verify(world).code == 0


@pytest.mark.parametrize("value", ["off", "Warn", "true"])
def test_an_unknown_enforcement_is_exit_2(world: World, value: str) -> None:
    world.policy.write_text(world.policy.read_text().replace(WARN, f"enforcement: {value}\n"))
    result = world.gate("--offline")
    assert result.code == 2, result.stderr
    assert "enforcement" in result.stderr and "Traceback" not in result.stderr
