"""``digestgate capture`` end to end through the CLI's error boundary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digestgate.digest import Digest
from digestgate.oci.open import Stores
from digestgate.oci.store import ImageStore
from digestgate.reference import Location
from tests.conftest import run_cli
from tests.fixtures.memory_store import MemoryStores
from tests.unit.test_capture import CI_ENV, FLAGS, REVISION

DATA = Path(__file__).parent.parent / "data" / "buildx"
REPO = "registry.example.org/org/app/backend"
SOURCE_FLAGS = (
    "--source-repo",
    FLAGS["repository"],
    "--revision",
    REVISION,
    "--ref",
    FLAGS["ref"],
    "--run-id",
    FLAGS["runId"],
)


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> MemoryStores:
    """Registries served from memory for the command's own Stores session."""
    fake = MemoryStores()

    def open_store(self: Stores, location: Location, *, create: bool = False) -> ImageStore:
        return fake.open(location, create=create)

    monkeypatch.setattr(Stores, "open", open_store)
    return fake


def test_offline_metadata_capture_prints_and_writes_outputs(tmp_path: Path) -> None:
    out = tmp_path / "github_output"
    release = tmp_path / "release.json"
    manifest = (DATA / "single-platform.manifest.json").read_bytes()
    digest = Digest.of(manifest)
    result = run_cli(
        "capture",
        "backend",
        "--release",
        str(release),
        "--metadata-file",
        str(DATA / "single-platform.metadata.json"),
        "--offline",
        env={**CI_ENV, "GITHUB_OUTPUT": str(out)},
    )
    assert result.code == 0, result.stderr
    assert result.stdout == f"backend {REPO}@{digest}\n"
    assert out.read_text() == f"backend-digest={digest}\nbackend-image={REPO}@{digest}\n"
    assert json.loads(release.read_text()) == {
        "apiVersion": "digestgate/v1",
        "kind": "Release",
        "source": {
            "repository": "https://git.example.org/org/app",
            "revision": REVISION,
            "ref": "refs/heads/main",
            "runId": "4242",
        },
        "artifacts": {
            "backend": {
                "image": f"{REPO}@{digest}",
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "size": len(manifest),
            }
        },
    }


@pytest.mark.parametrize("name", ["back\nend", "org/backend", "..", "Backend"])
def test_bad_names_exit_2(tmp_path: Path, name: str) -> None:
    result = run_cli(
        "capture", name, f"{REPO}@sha256:{'a' * 64}", "--release", str(tmp_path / "r.json")
    )
    assert result.code == 2
    assert "invalid artifact name" in result.stderr
    assert not (tmp_path / "r.json").exists()


def test_tag_inside_ci_is_refused_then_allowed_with_a_warning(
    tmp_path: Path, memory: MemoryStores
) -> None:
    digest = memory.repo(REPO).add_image(b"x", tag="main").digest
    release = str(tmp_path / "r.json")
    refused = run_cli("capture", "backend", f"{REPO}:main", "--release", release, env=CI_ENV)
    assert refused.code == 2
    assert "is a tag, not a digest; refused inside CI" in refused.stderr
    assert "--allow-tag" in refused.stderr
    assert memory.opened == []
    allowed = run_cli(
        "capture", "backend", f"{REPO}:main", "--allow-tag", "--release", release, env=CI_ENV
    )
    assert allowed.code == 0, allowed.stderr
    assert allowed.stdout == f"backend {REPO}@{digest}\n"
    assert "warning: resolving tag" in allowed.stderr


def test_digest_is_confirmed_and_absent_digest_exits_3(
    tmp_path: Path, memory: MemoryStores
) -> None:
    digest = memory.repo(REPO).add_image(b"x").digest
    release = str(tmp_path / "r.json")
    ok = run_cli("capture", "backend", f"{REPO}@{digest}", "--release", release, *SOURCE_FLAGS)
    assert ok.code == 0, ok.stderr
    missing = run_cli(
        "capture", "other", f"{REPO}@sha256:{'0' * 64}", "--release", release, *SOURCE_FLAGS
    )
    assert missing.code == 3


def test_replace_and_revision_rules(tmp_path: Path, memory: MemoryStores) -> None:
    first = memory.repo(REPO).add_image(b"one").digest
    second = memory.repo(REPO).add_image(b"two").digest
    release = str(tmp_path / "r.json")
    assert (
        run_cli("capture", "backend", f"{REPO}@{first}", "--release", release, env=CI_ENV).code == 0
    )
    same = run_cli("capture", "backend", f"{REPO}@{first}", "--release", release, env=CI_ENV)
    assert same.code == 0 and "unchanged" in same.stderr
    clash = run_cli("capture", "backend", f"{REPO}@{second}", "--release", release, env=CI_ENV)
    assert clash.code == 2 and "--replace" in clash.stderr
    other_rev = run_cli(
        "capture",
        "frontend",
        f"{REPO}@{second}",
        "--release",
        release,
        env={**CI_ENV, "GITHUB_SHA": "b" * 40},
    )
    assert other_rev.code == 2 and "records revision" in other_rev.stderr
    replaced = run_cli(
        "capture", "backend", f"{REPO}@{second}", "--replace", "--release", release, env=CI_ENV
    )
    assert replaced.code == 0
    assert json.loads(Path(release).read_text())["artifacts"]["backend"]["image"].endswith(
        str(second)
    )


def test_usage_and_config_errors_exit_2(tmp_path: Path) -> None:
    assert run_cli("capture", "backend", f"{REPO}@sha256:{'a' * 64}").code == 2  # no --release
    broken = tmp_path / "r.json"
    broken.write_text('{"apiVersion": "digestgate/v1", "kind": "Release"}')
    result = run_cli(
        "capture", "backend", f"{REPO}@sha256:{'a' * 64}", "--release", str(broken), env=CI_ENV
    )
    assert result.code == 2 and "missing field 'artifacts'" in result.stderr
    nothing = run_cli("capture", "backend", "--release", str(tmp_path / "x.json"), env=CI_ENV)
    assert nothing.code == 2 and "nothing to capture" in nothing.stderr
    bad_meta = tmp_path / "meta.json"
    bad_meta.write_text("{}")
    meta = run_cli(
        "capture",
        "backend",
        "--metadata-file",
        str(bad_meta),
        "--release",
        str(tmp_path / "x.json"),
        env=CI_ENV,
    )
    assert meta.code == 2 and "containerimage.digest" in meta.stderr
