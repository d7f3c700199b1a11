"""``digestgate promote`` end to end in-process, against the real registry.

Every promotion runs the real gate (real keys, signed evidence in a dir: store, a policy);
the flags, output, files and exit codes are the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from digestgate.errors import RegistryError
from digestgate.oci.open import Stores
from digestgate.release import Promotion, load_release, save_release
from digestgate.timeutil import utcnow
from tests.conftest import CliResult, run_cli
from tests.fixtures.registry import Registry
from tests.fixtures.skopeo import inspect_digest
from tests.integration.test_promote_registry import image_tags, staged
from tests.unit.test_promote import Gated, Keys, make_keys, outcome_for

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


@dataclass(frozen=True)
class Setup:
    """A staged release on disk and the keys, policy and evidence the gate passes it with."""

    release: Path
    keys: Keys
    gated: Gated


def setup(registry: Registry, repo: str, tmp_path: Path, **kw: Any) -> Setup:
    keys = make_keys(tmp_path / "keys")
    release = staged(registry, repo, tmp_path, seed=kw.pop("seed", 500))
    path = tmp_path / "release.json"
    save_release(path, release)
    finished = utcnow() - timedelta(hours=1)
    return Setup(path, keys, outcome_for(keys, release, finished=finished, **kw))


def promote_cli(setup: Setup, target: str, *extra: str) -> CliResult:
    return run_cli(
        "promote",
        "--release", str(setup.release),
        "--policy", str(setup.keys.directory / "policy.yaml"),
        "--evidence", f"dir:{setup.gated.store.path}",
        "--to", target,
        "--vsa-key", setup.keys.keyref,
        *extra,
    )  # fmt: skip


def test_promote_writes_promoted_json_and_prints_images(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    world = setup(registry, repo, tmp_path)
    release = world.release
    out = tmp_path / "promoted.json"
    target = registry.ref(f"{repo}/prod")
    result = promote_cli(world, target, "--tag", "v1.0", "--out", str(out))
    assert result.code == 0, result.stderr
    promotion = load_release(out)
    assert isinstance(promotion, Promotion)
    assert result.stdout.splitlines() == [
        f"{name} {artifact.image_text}" for name, artifact in sorted(promotion.artifacts.items())
    ]
    assert "lane:e2e" in result.stderr  # the gate's verdict table
    staged_release = load_release(release)
    for name, artifact in promotion.artifacts.items():
        digest = staged_release.artifacts[name].digest
        assert artifact.image_text == f"{target}/{name}@{digest}"
        assert [(t.tag, t.previous) for t in artifact.tags] == [("v1.0", None)]
        assert inspect_digest(registry, f"{repo}/prod/{name}:v1.0") == str(digest)
    assert run_cli("drift", str(out)).code == 0


def test_dry_run_prints_the_plan_and_writes_nothing(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    world = setup(registry, repo, tmp_path, seed=510)
    target = registry.ref(f"{repo}/prod")
    result = promote_cli(world, target, "--tag", "v1.0", "--dry-run")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"backend: {registry.host}/{repo}/staging/backend@sha256:")
    assert "  manifests: 3 to put, 0 already present" in lines
    assert any(line.startswith("  blobs: 6 to mount (same registry)") for line in lines)
    assert lines.count("  tag v1.0: create") == 2
    # Not a blob, manifest or tag reached the target: the repositories were never created.
    assert not (registry.root / "docker/registry/v2/repositories" / repo / "prod").exists()
    with Stores() as stores:
        for name in ("backend", "frontend"):
            assert image_tags(stores, registry, f"{repo}/prod/{name}") == []


def test_blocked_is_exit_1_with_the_verdict(registry: Registry, repo: str, tmp_path: Path) -> None:
    world = setup(registry, repo, tmp_path, seed=520, passed=False)
    result = promote_cli(world, registry.ref(f"{repo}/prod"), "--tag", "v1.0")
    assert result.code == 1
    assert "lane.missing" in result.stderr
    assert "nothing was promoted" in result.stderr
    assert not (registry.root / "docker/registry/v2/repositories" / repo / "prod").exists()


def test_rerun_after_a_tagging_failure_records_the_original_previous_digests(
    registry: Registry, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digestgate.oci.registry.repository import RegistryRepository

    target = registry.ref(f"{repo}/prod")
    first = setup(registry, repo, tmp_path / "one", seed=530)
    assert promote_cli(first, target, "--tag", "latest").code == 0
    old = load_release(first.release).artifacts
    second = setup(registry, repo, tmp_path / "two", seed=540)
    out = tmp_path / "promoted.json"
    real_set_tag = RegistryRepository.set_tag

    def failing(self: RegistryRepository, tag: str, descriptor: Any) -> None:
        if self.name.endswith("/frontend"):
            raise RegistryError("PUT tag: HTTP 500", status=500)
        real_set_tag(self, tag, descriptor)

    monkeypatch.setattr(RegistryRepository, "set_tag", failing)
    failed = promote_cli(second, target, "--tag", "latest", "--out", str(out))
    assert failed.code == 3, failed.stderr
    assert "tags already moved" in failed.stderr
    assert not out.exists()
    assert (tmp_path / "promoted.json.tagplan").exists()
    monkeypatch.setattr(RegistryRepository, "set_tag", real_set_tag)
    again = promote_cli(second, target, "--tag", "latest", "--out", str(out))
    assert again.code == 0, again.stderr
    promotion = load_release(out)
    assert isinstance(promotion, Promotion)
    previous = {
        name: [(t.tag, t.previous) for t in a.tags] for name, a in promotion.artifacts.items()
    }
    # backend:latest was moved by the failed run; its previous digest is still the first one
    assert previous == {
        "backend": [("latest", old["backend"].digest)],
        "frontend": [("latest", old["frontend"].digest)],
    }
    assert not (tmp_path / "promoted.json.tagplan").exists()
    new = load_release(second.release).artifacts
    for name in ("backend", "frontend"):
        assert inspect_digest(registry, f"{repo}/prod/{name}:latest") == str(new[name].digest)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--to", "oci:out:v1"), "names a tag or digest"),
        (("--tag", "bad tag"), "invalid tag"),
        (("--tag", "sha256-" + "a" * 64), "referrers index tag"),
        (("--tag", "sha256-" + "b" * 64 + ".sig"), "referrers index tag"),
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


# --- with the real gate --------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Any:
    from tests.integration.test_gate_adversarial import World

    w = World(tmp_path)
    w.write_policy()
    # Staging is a layout, production a registry: verify at the target needs the policy to
    # name both (it reads evidence only in repositories the policy names).
    text = w.policy.read_text().replace("oci:**/images/", "**/")
    w.policy.write_text(text + 'promotion:\n  immutableTags: ["v*"]\n')
    return w


def promote_world(world: Any, target: str, *extra: str) -> CliResult:
    return run_cli(
        "promote",
        "--release", str(world.release),
        "--policy", str(world.policy),
        "--evidence", f"dir:{world.evidence}",
        "--to", target,
        "--vsa-key", str(world.keys["gate"]),
        *extra,
    )  # fmt: skip


def test_gated_promotion_end_to_end(world: Any, registry: Registry, repo: str) -> None:
    out = world.root / "promoted.json"
    target = registry.ref(f"{repo}/prod")
    result = promote_world(world, target, "--tag", "v1.0", "--tag", "latest", "--out", str(out))
    assert result.code == 0, result.stderr
    promotion = load_release(out)
    assert isinstance(promotion, Promotion)
    for name in ("backend", "frontend"):
        image = promotion.artifacts[name].image_text
        assert image == f"{target}/{name}@{world.digests[name]}"
        assert f"{name} {image}" in result.stdout.splitlines()
        for tag in ("v1.0", "latest"):
            assert inspect_digest(registry, f"{repo}/prod/{name}:{tag}") == str(world.digests[name])
        # The gate's VSA travelled with the image: the deploy-side check passes at the target.
        check = run_cli("verify", image, "--policy", str(world.policy), "--evidence", "attached")
        assert check.code == 0, check.stderr
    assert len(list(world.evidence.glob("vsa-*.json"))) == 4  # two gate VSAs, two records
    again = promote_world(world, target, "--tag", "v1.0")
    assert again.code == 0, again.stderr


def test_gate_blocks_and_nothing_reaches_the_target(
    world: Any, registry: Registry, repo: str
) -> None:
    world.files["e2e"].unlink()
    result = promote_world(world, registry.ref(f"{repo}/prod"), "--tag", "v1.0")
    assert result.code == 1, result.stderr
    assert "lane.missing" in result.stderr
    assert not (registry.root / "docker/registry/v2/repositories" / repo / "prod").exists()
    with Stores() as stores:
        for name in ("backend", "frontend"):
            assert image_tags(stores, registry, f"{repo}/prod/{name}") == []
