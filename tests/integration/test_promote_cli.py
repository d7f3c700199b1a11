"""``digestgate promote`` end to end in-process, against the real registry.

The gate's outcome is supplied by replacing ``_run_gate`` where a test is about what
happens after the gate; the flags, output, files and exit codes are the real ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from digestgate.oci.open import Stores
from digestgate.release import Promotion, load_release, save_release
from tests.conftest import CliResult, run_cli
from tests.fixtures.registry import Registry
from tests.integration.test_promote_registry import image_tags, staged
from tests.unit.test_promote import Keys, make_keys, outcome_for

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


def setup(
    registry: Registry, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any
) -> tuple[Path, Keys]:
    keys = make_keys(tmp_path / "keys")
    release = staged(registry, repo, tmp_path, seed=kw.pop("seed", 500))
    path = tmp_path / "release.json"
    save_release(path, release)
    outcome = outcome_for(keys, release, **kw)
    monkeypatch.setattr("digestgate.cli.promote._run_gate", lambda *a, **k: outcome)
    return path, keys


def promote_cli(release: Path, keys: Keys, target: str, *extra: str) -> CliResult:
    return run_cli(
        "promote",
        "--release", str(release),
        "--policy", "policy.yaml",
        "--evidence", "attached",
        "--to", target,
        "--vsa-key", keys.keyref,
        *extra,
    )  # fmt: skip


def test_promote_writes_promoted_json_and_prints_images(
    registry: Registry, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release, keys = setup(registry, repo, tmp_path, monkeypatch)
    out = tmp_path / "promoted.json"
    target = registry.ref(f"{repo}/prod")
    result = promote_cli(release, keys, target, "--tag", "v1.0", "--out", str(out))
    assert result.code == 0, result.stderr
    promotion = load_release(out)
    assert isinstance(promotion, Promotion)
    assert result.stdout.splitlines() == [
        f"{name} {artifact.image_text}" for name, artifact in sorted(promotion.artifacts.items())
    ]
    assert "verdict table" in result.stderr
    assert run_cli("drift", str(out)).code == 0


def test_dry_run_prints_the_plan_and_writes_nothing(
    registry: Registry, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release, keys = setup(registry, repo, tmp_path, monkeypatch, seed=510)
    target = registry.ref(f"{repo}/prod")
    result = promote_cli(release, keys, target, "--tag", "v1.0", "--dry-run")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"backend: {registry.host}/{repo}/staging/backend@sha256:")
    assert "  manifests: 3 to put, 0 already present" in lines
    assert any(line.startswith("  blobs: 6 to mount (same registry)") for line in lines)
    assert lines.count("  tag v1.0: create") == 2
    with Stores() as stores:
        for name in ("backend", "frontend"):
            assert image_tags(stores, registry, f"{repo}/prod/{name}") == []


def test_blocked_is_exit_1_with_the_verdict(
    registry: Registry, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release, keys = setup(registry, repo, tmp_path, monkeypatch, seed=520, passed=False)
    result = promote_cli(release, keys, registry.ref(f"{repo}/prod"), "--tag", "v1.0")
    assert result.code == 1
    assert "verdict table" in result.stderr
    assert "nothing was promoted" in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--to", "oci:out:v1"), "names a tag or digest"),
        (("--tag", "bad tag"), "invalid tag"),
        (("--concurrency", "0"), "--concurrency"),
    ],
)
def test_usage_errors_are_exit_2(tmp_path: Path, extra: tuple[str, ...], message: str) -> None:
    keys = make_keys(tmp_path / "keys")
    args = ["--to", "oci:out", *extra] if extra[0] != "--to" else list(extra)
    result = run_cli(
        "promote", "--release", str(tmp_path / "none.json"), "--policy", "p.yaml",
        "--evidence", "attached", "--vsa-key", keys.keyref, *args,
    )  # fmt: skip
    assert result.code == 2, result.stderr
    assert message in result.stderr


def test_vsa_key_is_required(tmp_path: Path) -> None:
    result = run_cli(
        "promote", "--release", "r.json", "--policy", "p.yaml", "--evidence", "attached",
        "--to", "oci:out",
    )  # fmt: skip
    assert result.code == 2
    assert "--vsa-key" in result.stderr
