"""``digestgate capture`` end to end through the CLI's error boundary.

Images live in real OCI layouts (written by the independent image factory) and, when the
registry client is present, in the real distribution registry.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digestgate.digest import Digest
from tests.conftest import run_cli
from tests.fixtures import images
from tests.fixtures.registry import Registry
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


def layout(tmp_path: Path, name: str = "backend", seed: int = 0) -> tuple[str, str]:
    """An image in a layout tagged ``main``: (``oci:DIR``, its digest)."""
    image = images.make_image(tmp_path / name, tag="main", seed=seed, layers=1, layer_size=64)
    return f"oci:{tmp_path / name}", image.digest


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


def test_layout_by_digest_is_confirmed_and_absent_digest_exits_3(tmp_path: Path) -> None:
    oci, digest = layout(tmp_path)
    release = str(tmp_path / "r.json")
    out = tmp_path / "out"
    ok = run_cli(
        "capture",
        "backend",
        f"{oci}@{digest}",
        "--release",
        release,
        *SOURCE_FLAGS,
        env={"GITHUB_OUTPUT": str(out)},
    )
    assert ok.code == 0, ok.stderr
    assert ok.stdout == f"backend {oci}@{digest}\n"
    assert out.read_text() == f"backend-digest={digest}\nbackend-image={oci}@{digest}\n"
    missing = run_cli("capture", "other", f"{oci}@sha256:{'0' * 64}", "--release", release)
    assert missing.code == 3
    assert "other" not in json.loads(Path(release).read_text())["artifacts"]


def test_tag_inside_ci_is_refused_then_allowed_with_a_warning(tmp_path: Path) -> None:
    oci, digest = layout(tmp_path)
    release = str(tmp_path / "r.json")
    refused = run_cli("capture", "backend", f"{oci}:main", "--release", release, env=CI_ENV)
    assert refused.code == 2
    assert "is a tag, not a digest; refused inside CI" in refused.stderr
    assert "--allow-tag" in refused.stderr
    allowed = run_cli(
        "capture", "backend", f"{oci}:main", "--allow-tag", "--release", release, env=CI_ENV
    )
    assert allowed.code == 0, allowed.stderr
    assert allowed.stdout == f"backend {oci}@{digest}\n"
    assert "warning: resolving tag" in allowed.stderr


def test_replace_and_revision_rules(tmp_path: Path) -> None:
    oci, first = layout(tmp_path, seed=1)
    other, second = layout(tmp_path, "rebuilt", seed=2)
    release = str(tmp_path / "r.json")
    first_run = run_cli("capture", "backend", f"{oci}@{first}", "--release", release, env=CI_ENV)
    assert first_run.code == 0
    same = run_cli("capture", "backend", f"{oci}@{first}", "--release", release, env=CI_ENV)
    assert same.code == 0 and "unchanged" in same.stderr
    clash = run_cli("capture", "backend", f"{other}@{second}", "--release", release, env=CI_ENV)
    assert clash.code == 2 and "--replace" in clash.stderr
    other_rev = run_cli(
        "capture",
        "frontend",
        f"{other}@{second}",
        "--release",
        release,
        env={**CI_ENV, "GITHUB_SHA": "b" * 40},
    )
    assert other_rev.code == 2 and "records revision" in other_rev.stderr
    replaced = run_cli(
        "capture", "backend", f"{other}@{second}", "--replace", "--release", release, env=CI_ENV
    )
    assert replaced.code == 0
    recorded = json.loads(Path(release).read_text())["artifacts"]
    assert recorded == {
        "backend": {
            "image": f"{other}@{second}",
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": recorded["backend"]["size"],
        }
    }


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


@pytest.mark.registry
@pytest.mark.skopeo
def test_capture_from_the_registry_by_digest_tag_and_metadata(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    from tests.fixtures.skopeo import push_layout

    index = images.make_index(tmp_path / "img", tag="main", seed=7, layers=1, layer_size=64)
    push_layout(tmp_path / "img", "main", registry, repo, tag="main")
    name = registry.ref(repo)
    release = str(tmp_path / "r.json")
    by_digest = run_cli(
        "capture", "backend", f"{name}@{index.digest}", "--release", release, *SOURCE_FLAGS
    )
    assert by_digest.code == 0, by_digest.stderr
    assert by_digest.stdout == f"backend {name}@{index.digest}\n"
    by_tag = run_cli("capture", "frontend", f"{name}:main", "--allow-tag", "--release", release)
    assert by_tag.code == 0 and by_tag.stdout == f"frontend {name}@{index.digest}\n"
    metadata = tmp_path / "metadata.json"
    metadata.write_text(
        json.dumps(
            {
                "containerimage.digest": index.digest,
                "containerimage.descriptor": index.descriptor(),
                "image.name": f"{name}:main,{name}:sha-1",
            }
        )
    )
    from_meta = run_cli("capture", "db", "--metadata-file", str(metadata), "--release", release)
    assert from_meta.code == 0, from_meta.stderr
    assert from_meta.stdout == f"db {name}@{index.digest}\n"
    wrong = json.loads(metadata.read_text())
    wrong["containerimage.descriptor"]["size"] += 1
    metadata.write_text(json.dumps(wrong))
    mismatch = run_cli("capture", "db2", "--metadata-file", str(metadata), "--release", release)
    assert mismatch.code == 3 and "metadata file says" in mismatch.stderr
    absent = run_cli("capture", "x", f"{name}@sha256:{'0' * 64}", "--release", release)
    assert absent.code == 3


def test_concurrent_captures_into_one_release_lose_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    names = [f"svc{i}" for i in range(8)]
    refs = {}
    for i, name in enumerate(names):
        image = images.make_image(tmp_path / name, tag="main", seed=100 + i, layers=1)
        refs[name] = f"oci:{tmp_path / name}@{image.digest}"
    release = tmp_path / "out" / "release.json"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "digestgate", "capture", name, refs[name],
             "--release", str(release), *SOURCE_FLAGS],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for name in names
    ]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    recorded = json.loads(release.read_text())["artifacts"]
    assert {n: a["image"] for n, a in recorded.items()} == refs
