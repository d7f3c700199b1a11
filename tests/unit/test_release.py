"""release.json / promoted.json: loading, saving, and per-artifact reference status."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digestgate.digest import Digest
from digestgate.errors import ConfigError
from digestgate.reference import parse_location
from digestgate.release import (
    PromotedTag,
    Promotion,
    PromotionArtifact,
    Release,
    ReleaseArtifact,
    Source,
    dump_release,
    load_release,
    parse_release,
    pinned_image,
    save_release,
)

HEX = "a" * 64
SOURCE = {
    "repository": "https://git.example.org/org/app",
    "revision": "0123456789abcdef0123456789abcdef01234567",
    "ref": "refs/heads/main",
    "runId": "4242",
}


def release_doc(**artifacts: Any) -> dict[str, Any]:
    return {
        "apiVersion": "digestgate/v1",
        "kind": "Release",
        "source": SOURCE,
        "artifacts": artifacts,
    }


def load(doc: Any) -> Release | Promotion:
    return parse_release(json.dumps(doc).encode())


def test_design_example_loads() -> None:
    release = load(
        release_doc(
            backend={
                "image": f"registry.example.org/org/app/backend@sha256:{HEX}",
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "size": 1609,
            },
            frontend={"image": f"registry.example.org/org/app/frontend@sha256:{'b' * 64}"},
        )
    )
    assert isinstance(release, Release)
    assert release.source == Source(
        SOURCE["repository"], SOURCE["revision"], "refs/heads/main", "4242"
    )
    backend = release.artifacts["backend"]
    assert backend.digest == Digest("sha256", HEX)
    assert backend.reference_problem is None
    assert (backend.media_type, backend.size) == ("application/vnd.oci.image.index.v1+json", 1609)
    assert release.artifacts["frontend"].media_type is None


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("registry.example.org/org/app/backend:main", "not-digest"),
        ("registry.example.org/org/app/backend", "not-digest"),
        ("oci:./layout:v1", "not-digest"),
        ("registry.example.org/org/app/backend@sha256:ABC", "invalid"),
        (f"registry.example.org/org/app/backend@md5:{HEX}", "invalid"),
        ("Registry Example/x", "invalid"),
    ],
)
def test_unpinned_or_malformed_images_are_flagged_not_raised(image: str, problem: str) -> None:
    release = load(release_doc(backend={"image": image, "mediaType": "x", "size": 1}))
    artifact = release.artifacts["backend"]
    assert artifact.reference_problem == problem
    assert artifact.location is None and artifact.digest is None
    assert artifact.image_text == image
    assert artifact.reference_message
    # The raw text survives a save, so the gate keeps blocking on it.
    assert json.loads(dump_release(release))["artifacts"]["backend"]["image"] == image


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("source"), "source"),
        (lambda d: d.update(apiVersion="digestgate/v2"), "apiVersion"),
        (lambda d: d.update(kind="Policy"), "kind"),
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d.update(artifacts=[]), "artifacts"),
        (lambda d: d["source"].update(revision="abc123"), "source.revision"),
        (lambda d: d["source"].update(ref="main"), "source.ref"),
        (lambda d: d["source"].update(runId=4242), "source.runId"),
        (lambda d: d["source"].pop("runId"), "runId"),
        (lambda d: d["artifacts"].update({"Back/End": {"image": "x"}}), "artifacts"),
        (lambda d: d["artifacts"].update(backend={"image": 3}), "artifacts.backend.image"),
        (lambda d: d["artifacts"].update(backend={"image": "a@b", "size": -1}), "size"),
        (lambda d: d["artifacts"].update(backend={"image": "a@b", "size": True}), "size"),
        (lambda d: d["artifacts"].update(backend={"img": "a"}), "img"),
    ],
)
def test_structurally_broken_files_are_config_errors_naming_the_field(
    mutate: Any, field: str
) -> None:
    doc = json.loads(json.dumps(release_doc()))
    mutate(doc)
    with pytest.raises(ConfigError) as info:
        load(doc)
    assert field in info.value.message


@pytest.mark.parametrize(
    "data", [b"", b"[]", b'{"kind": "Release", "kind": "Release"}', b"\xff", b"{" * 100]
)
def test_unparsable_files_are_config_errors(data: bytes) -> None:
    with pytest.raises(ConfigError):
        parse_release(data)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read release file"):
        load_release(tmp_path / "absent.json")


def test_promotion_round_trip(tmp_path: Path) -> None:
    target = parse_location(f"registry.example.org/org/prod/backend@sha256:{HEX}")
    promotion = Promotion(
        source=Source(**{k if k != "runId" else "run_id": v for k, v in SOURCE.items()}),
        policy_digest=Digest("sha256", "c" * 64),
        time=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
        artifacts={
            "backend": PromotionArtifact(
                "backend",
                str(target),
                target,
                None,
                None,
                parse_location(f"oci:staging/backend@sha256:{HEX}"),
                (PromotedTag("v1.2.0", None), PromotedTag("latest", Digest("sha256", "d" * 64))),
            )
        },
    )
    path = tmp_path / "promoted.json"
    save_release(path, promotion)
    assert load_release(path) == promotion
    doc = json.loads(path.read_text())
    assert doc["kind"] == "Promotion"
    assert doc["time"] == "2026-11-26T10:00:00Z"
    assert doc["artifacts"]["backend"]["from"] == f"oci:staging/backend@sha256:{HEX}"
    assert doc["artifacts"]["backend"]["tags"][1] == {
        "tag": "latest",
        "previous": f"sha256:{'d' * 64}",
    }


def test_promotion_from_must_be_pinned() -> None:
    doc: dict[str, Any] = {
        "apiVersion": "digestgate/v1",
        "kind": "Promotion",
        "source": SOURCE,
        "policy": {"digest": f"sha256:{HEX}"},
        "time": "2026-11-26T10:00:00Z",
        "artifacts": {
            "backend": {"image": "r.example/a:tag", "from": "r.example/b:tag", "tags": []}
        },
    }
    with pytest.raises(ConfigError, match=r"artifacts\.backend\.from"):
        load(doc)
    doc["artifacts"]["backend"]["from"] = f"r.example/b@sha256:{HEX}"
    promotion = load(doc)
    assert isinstance(promotion, Promotion)
    assert promotion.artifacts["backend"].reference_problem == "not-digest"


def test_saved_file_is_deterministic_and_atomic(tmp_path: Path) -> None:
    release = load(
        release_doc(b={"image": f"r.example/b@sha256:{HEX}"}, a={"image": "r.example/a:1"})
    )
    path = tmp_path / "release.json"
    save_release(path, release)
    text = path.read_text()
    assert text == dump_release(release).decode()
    assert text.index('"a"') < text.index('"b"')
    assert text.startswith('{\n  "apiVersion": "digestgate/v1",\n')
    assert text.endswith("}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["release.json"]


# --- property: whatever we save, we load back identically --------------------------------

_names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
_hex = st.text("0123456789abcdef", min_size=64, max_size=64)
_repos = st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", fullmatch=True)


@st.composite
def _artifacts(draw: st.DrawFn, name: str) -> ReleaseArtifact:
    kind = draw(st.sampled_from(["registry", "layout", "tag", "junk"]))
    if kind == "registry":
        text = f"registry.example.org:5000/{draw(_repos)}@sha256:{draw(_hex)}"
    elif kind == "layout":
        text = f"oci:{draw(_repos)}@sha256:{draw(_hex)}"
    elif kind == "tag":
        text = f"registry.example.org/{draw(_repos)}:v1"
    else:
        text = draw(st.text(min_size=1, max_size=30))
    size = draw(st.none() | st.integers(min_value=0, max_value=2**40))
    media_type = draw(st.none() | st.sampled_from(["application/vnd.oci.image.index.v1+json"]))
    return ReleaseArtifact(name, text, *pinned_image(name, text), media_type, size)


@st.composite
def _releases(draw: st.DrawFn) -> Release:
    names = draw(st.lists(_names, max_size=4, unique=True))
    source = Source(
        draw(st.from_regex(r"https://[a-z]{1,10}\.example/[a-z/]{1,20}", fullmatch=True)),
        draw(st.text("0123456789abcdef", min_size=40, max_size=40)),
        draw(st.from_regex(r"refs/(heads|tags)/[a-z0-9._/-]{1,20}", fullmatch=True)),
        draw(st.from_regex(r"[0-9]{1,12}", fullmatch=True)),
    )
    return Release(source, {n: draw(_artifacts(n)) for n in names})


@settings(max_examples=150, deadline=None)
@given(_releases())
def test_release_round_trip(release: Release) -> None:
    data = dump_release(release)
    loaded = parse_release(data)
    assert loaded == release
    assert dump_release(loaded) == data
