"""capture: buildx metadata, source fields, pinning rules, and $GITHUB_OUTPUT lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from digestgate.capturing.capture import (
    CaptureRequest,
    capture,
    in_ci,
    parse_build_metadata,
    pick_image,
    resolve_source,
)
from digestgate.cli.ghoutput import append_outputs, format_outputs
from digestgate.digest import Digest
from digestgate.errors import (
    ConfigError,
    InputError,
    IntegrityError,
    NotFoundError,
    StorageError,
    UsageError,
)
from digestgate.oci import media
from digestgate.release import Release, Source, load_release, save_release
from tests.fixtures.memory_store import MemoryStores

DATA = Path(__file__).parent.parent / "data" / "buildx"
REVISION = "0123456789abcdef0123456789abcdef01234567"
FLAGS = {
    "repository": "https://git.example.org/org/app",
    "revision": REVISION,
    "ref": "refs/heads/main",
    "runId": "4242",
}
CI_ENV = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://git.example.org",
    "GITHUB_REPOSITORY": "org/app",
    "GITHUB_SHA": REVISION,
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_RUN_ID": "4242",
}


def sample(name: str) -> tuple[Path, bytes]:
    """The metadata file of a sample and the manifest bytes it describes."""
    manifest = next(DATA.glob(f"{name}.*.json"), None)
    assert manifest is not None and not manifest.name.endswith("metadata.json")
    return DATA / f"{name}.metadata.json", manifest.read_bytes()


def serve(stores: MemoryStores, repo: str, raw: bytes) -> Digest:
    media_type = json.loads(raw)["mediaType"]
    return stores.repo(repo).put_manifest(raw, media_type).digest


# --- metadata ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "repo", "media_type"),
    [
        ("single-platform", "registry.example.org/org/app/backend", media.OCI_MANIFEST),
        ("multi-platform", "registry.example.org/org/app/frontend", media.OCI_INDEX),
        ("with-attestations", "ghcr.io/org/app-backend", media.OCI_INDEX),
    ],
)
def test_capture_from_each_metadata_variant(
    tmp_path: Path, name: str, repo: str, media_type: str
) -> None:
    metadata_file, raw = sample(name)
    stores = MemoryStores()
    digest = serve(stores, repo, raw)
    assert digest == Digest.of(raw)
    release_path = tmp_path / "release.json"
    result = capture(
        request=CaptureRequest(
            "backend", release_path, metadata_file=metadata_file, source_flags=FLAGS
        ),
        stores=stores,
        environ={},
    )
    assert str(result.location) == f"{repo}@{digest}"
    assert result.changed
    release = load_release(release_path)
    assert isinstance(release, Release)
    artifact = release.artifacts["backend"]
    assert artifact.image_text == f"{repo}@{digest}"
    assert (artifact.media_type, artifact.size) == (media_type, len(raw))
    if media_type == media.OCI_MANIFEST:
        assert stores.repos[repo].calls == [f"resolve {digest}"]
        assert artifact.platforms is None
        return
    # an index: its bytes are fetched by digest and its children recorded by platform
    assert stores.repos[repo].calls == [f"resolve {digest}", f"get_manifest {digest}"]
    children = [m for m in json.loads(raw)["manifests"] if m["platform"]["os"] != "unknown"]
    assert artifact.platforms is not None
    assert [(p.platform, str(p.digest)) for p in artifact.platforms] == [
        ("/".join(filter(None, (m["platform"]["os"], m["platform"]["architecture"],
                                m["platform"].get("variant")))), m["digest"])
        for m in children
    ]  # fmt: skip
    names = [p.platform for p in artifact.platforms]
    assert names == (
        ["linux/amd64", "linux/arm64/v8"]
        if name == "multi-platform"
        else ["linux/amd64", "linux/arm64"]
    )  # buildx's attestation manifests (unknown/unknown) are not platforms


def test_metadata_with_several_names_picks_the_requested_one() -> None:
    metadata = parse_build_metadata(sample("with-attestations")[0].read_bytes())
    assert [r.name for r in metadata.names] == [
        "ghcr.io/org/app-backend",
        "registry.example.org/org/app/backend",
    ]
    picked = pick_image(metadata, "registry.example.org/org/app/backend:whatever")
    assert str(picked) == f"registry.example.org/org/app/backend@{metadata.digest}"
    with pytest.raises(UsageError, match="not among the pushed names"):
        pick_image(metadata, "registry.example.org/org/app/frontend")


def _metadata(**changes: Any) -> bytes:
    doc = json.loads(sample("single-platform")[0].read_bytes())
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[]", "not a JSON object"),
        (b"{", "not valid JSON"),
        (_metadata(containerimage__digest=None), "no 'containerimage.digest'"),
        (_metadata(containerimage__digest="sha256:abc"), "containerimage.digest"),
        (_metadata(image__name=None), "no 'image.name'"),
        (_metadata(image__name=" , "), "no 'image.name'"),
        (_metadata(image__name="Bad Name"), "image.name"),
        (_metadata(image__name=f"r.example/a@sha256:{'f' * 64}"), "another digest"),
        (_metadata(containerimage__descriptor={"mediaType": "x"}), "descriptor"),
        (
            _metadata(
                containerimage__descriptor={
                    "mediaType": media.OCI_MANIFEST,
                    "digest": f"sha256:{'e' * 64}",
                    "size": 3,
                }
            ),
            "containerimage.descriptor names",
        ),
    ],
)
def test_bad_metadata_is_an_input_error(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_build_metadata(data)


def test_registry_disagreeing_with_the_metadata_descriptor_is_refused(tmp_path: Path) -> None:
    metadata_file, raw = sample("single-platform")
    doc = json.loads(metadata_file.read_bytes())
    doc["containerimage.descriptor"]["size"] += 1
    (tmp_path / "m.json").write_text(json.dumps(doc))
    stores = MemoryStores()
    serve(stores, "registry.example.org/org/app/backend", raw)
    request = CaptureRequest(
        "backend", tmp_path / "r.json", metadata_file=tmp_path / "m.json", source_flags=FLAGS
    )
    with pytest.raises(IntegrityError, match="metadata file says"):
        capture(request=request, stores=stores, environ={})
    assert not (tmp_path / "r.json").exists()


def test_offline_capture_trusts_the_descriptor_and_contacts_nothing(tmp_path: Path) -> None:
    metadata_file, raw = sample("multi-platform")
    stores = MemoryStores()
    request = CaptureRequest(
        "frontend",
        tmp_path / "r.json",
        metadata_file=metadata_file,
        offline=True,
        source_flags=FLAGS,
    )
    result = capture(request=request, stores=stores, environ={})
    assert result.digest == Digest.of(raw)
    assert result.artifact.size == len(raw)
    assert stores.opened == []
    # an index captured offline: no platforms recorded, and the user is told
    assert result.artifact.platforms is None
    assert any("platforms are not recorded" in w for w in result.warnings)


def test_missing_digest_in_the_registry_is_not_found(tmp_path: Path) -> None:
    metadata_file, _ = sample("single-platform")
    request = CaptureRequest(
        "backend", tmp_path / "r.json", metadata_file=metadata_file, source_flags=FLAGS
    )
    with pytest.raises(NotFoundError):
        capture(request=request, stores=MemoryStores(), environ={})


# --- SOURCE references -------------------------------------------------------------------


def _image_store() -> tuple[MemoryStores, str, Digest]:
    stores = MemoryStores()
    repo = "registry.example.org/org/app/backend"
    digest = stores.repo(repo).add_image(b"x", tag="main").digest
    return stores, repo, digest


def test_capture_by_digest_confirms_it(tmp_path: Path) -> None:
    stores, repo, digest = _image_store()
    request = CaptureRequest(
        "backend", tmp_path / "r.json", source_ref=f"{repo}:main@{digest}", source_flags=FLAGS
    )
    result = capture(request=request, stores=stores, environ={})
    assert str(result.location) == f"{repo}@{digest}"
    assert stores.repos[repo].calls == [f"resolve {digest}"]
    with pytest.raises(NotFoundError):
        capture(
            request=CaptureRequest(
                "other",
                tmp_path / "r.json",
                source_ref=f"{repo}@sha256:{'0' * 64}",
                source_flags=FLAGS,
            ),
            stores=stores,
            environ={},
        )


def test_tag_needs_allow_tag_and_warns_inside_ci(tmp_path: Path) -> None:
    stores, repo, digest = _image_store()
    path = tmp_path / "r.json"
    for environ in ({}, CI_ENV):
        with pytest.raises(UsageError, match="is a tag") as info:
            capture(
                request=CaptureRequest("backend", path, source_ref=f"{repo}:main"),
                stores=stores,
                environ=environ,
            )
        assert "--allow-tag" in (info.value.hint or "")
    assert stores.repos[repo].calls == []
    outside = capture(
        request=CaptureRequest(
            "backend", path, source_ref=f"{repo}:main", allow_tag=True, source_flags=FLAGS
        ),
        stores=stores,
        environ={},
    )
    assert outside.digest == digest and outside.warnings == ()
    inside = capture(
        request=CaptureRequest("backend", path, source_ref=f"{repo}:main", allow_tag=True),
        stores=stores,
        environ=CI_ENV,
    )
    assert inside.digest == digest and not inside.changed
    assert "may have moved" in inside.warnings[0]


@pytest.mark.parametrize("name", ["back\nend", "org/backend", "..", "../x", "Backend", ""])
def test_invalid_names_are_refused(tmp_path: Path, name: str) -> None:
    stores, repo, digest = _image_store()
    request = CaptureRequest(name, tmp_path / "r.json", source_ref=f"{repo}@{digest}")
    with pytest.raises(UsageError, match="invalid artifact name"):
        capture(request=request, stores=stores, environ=CI_ENV)
    assert not (tmp_path / "r.json").exists()


# --- the release file --------------------------------------------------------------------


def test_recapture_same_is_noop_different_needs_replace(tmp_path: Path) -> None:
    stores, repo, digest = _image_store()
    other = stores.repo(repo).add_image(b"rebuilt").digest
    path = tmp_path / "r.json"
    capture(
        request=CaptureRequest("backend", path, source_ref=f"{repo}@{digest}"),
        stores=stores,
        environ=CI_ENV,
    )
    before = path.stat().st_mtime_ns
    again = capture(
        request=CaptureRequest("backend", path, source_ref=f"{repo}@{digest}"),
        stores=stores,
        environ=CI_ENV,
    )
    assert not again.changed and path.stat().st_mtime_ns == before
    with pytest.raises(UsageError, match="already recorded") as info:
        capture(
            request=CaptureRequest("backend", path, source_ref=f"{repo}@{other}"),
            stores=stores,
            environ=CI_ENV,
        )
    assert "--replace" in (info.value.hint or "")
    replaced = capture(
        request=CaptureRequest("backend", path, source_ref=f"{repo}@{other}", replace=True),
        stores=stores,
        environ=CI_ENV,
    )
    assert replaced.changed
    assert load_release(path).artifacts["backend"].digest == other


def test_source_comes_from_ci_flags_win_and_mixing_is_refused(tmp_path: Path) -> None:
    stores, repo, digest = _image_store()
    path = tmp_path / "r.json"
    capture(
        request=CaptureRequest("backend", path, source_ref=f"{repo}@{digest}"),
        stores=stores,
        environ=CI_ENV,
    )
    release = load_release(path)
    assert isinstance(release, Release)
    assert release.source == Source(
        "https://git.example.org/org/app", REVISION, "refs/heads/main", "4242"
    )
    # A second artifact outside CI inherits the recorded source.
    capture(
        request=CaptureRequest("frontend", path, source_ref=f"{repo}@{digest}"),
        stores=stores,
        environ={},
    )
    with pytest.raises(UsageError, match="records revision") as info:
        capture(
            request=CaptureRequest("db", path, source_ref=f"{repo}@{digest}"),
            stores=stores,
            environ={**CI_ENV, "GITHUB_SHA": "f" * 40},
        )
    assert "new release file" in (info.value.hint or "")
    with pytest.raises(UsageError, match="records runId"):
        capture(
            request=CaptureRequest(
                "db", path, source_ref=f"{repo}@{digest}", source_flags={"runId": "1"}
            ),
            stores=stores,
            environ=CI_ENV,
        )
    assert set(load_release(path).artifacts) == {"backend", "frontend"}


def test_new_release_outside_ci_needs_the_source_flags() -> None:
    with pytest.raises(UsageError, match="--source-repo, --revision, --ref, --run-id"):
        resolve_source({}, {}, None)
    with pytest.raises(UsageError, match="--revision"):
        resolve_source({**FLAGS, "revision": "abc"}, {}, None)
    with pytest.raises(UsageError, match="--ref"):
        resolve_source({**FLAGS, "ref": "main"}, {}, None)
    source = resolve_source({"runId": "7"}, CI_ENV, None)
    assert source.run_id == "7" and source.revision == REVISION


def test_ci_detection() -> None:
    assert not in_ci({})
    assert not in_ci({"CI": "false"})
    for name in ("CI", "GITHUB_ACTIONS", "GITEA_ACTIONS", "FORGEJO_ACTIONS"):
        assert in_ci({name: "true"})


def test_promotion_file_is_not_a_release(tmp_path: Path) -> None:
    stores, repo, digest = _image_store()
    path = tmp_path / "promoted.json"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "digestgate/v1",
                "kind": "Promotion",
                "source": FLAGS,
                "policy": {"digest": str(digest)},
                "time": "2026-11-26T10:00:00Z",
                "artifacts": {},
            }
        )
    )
    with pytest.raises(ConfigError, match="promotion record"):
        capture(
            request=CaptureRequest("backend", path, source_ref=f"{repo}@{digest}"),
            stores=stores,
            environ=CI_ENV,
        )


def test_unwritable_release_is_a_storage_error(tmp_path: Path) -> None:
    release = Release(Source(*FLAGS.values()))
    with pytest.raises(StorageError):
        save_release(tmp_path / "absent-dir" / "r.json", release)


# --- $GITHUB_OUTPUT ----------------------------------------------------------------------


def test_outputs_are_appended_exactly(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("earlier=1\n")
    digest = f"sha256:{'a' * 64}"
    written = append_outputs(
        {"backend-digest": digest, "backend-image": f"r.example/app@{digest}"},
        environ={"GITHUB_OUTPUT": str(target)},
    )
    assert written == target
    assert target.read_text() == (
        f"earlier=1\nbackend-digest={digest}\nbackend-image=r.example/app@{digest}\n"
    )
    assert append_outputs({"x": "y"}, environ={}) is None


@pytest.mark.parametrize("name", ["", "a=b", "a\nb", "x<<EOF", "-x", "a b"])
def test_output_names_are_validated(name: str) -> None:
    with pytest.raises(UsageError, match="invalid output name"):
        format_outputs({name: "v"})


def test_multiline_values_are_refused_unless_asked_for(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(UsageError, match="several lines"):
        append_outputs({"ok": "1", "bad": "x\nevil=1"}, environ={"GITHUB_OUTPUT": str(target)})
    assert not target.exists()  # nothing half-written
    text = format_outputs({"notes": "line 1\r\nline 2"}, multiline=True)
    delimiter = text.split("\n", 1)[0].removeprefix("notes<<")
    assert delimiter.startswith("ghadelimiter_") and len(delimiter) > 40
    assert text == f"notes<<{delimiter}\nline 1\nline 2\n{delimiter}\n"
