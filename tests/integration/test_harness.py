"""The real-registry harness itself: every variant stores what skopeo pushes, byte for byte."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    make_artifact,
    make_image,
    make_index,
    make_large_image,
)
from tests.fixtures.registry import FULL_USER, Registry, require_command
from tests.fixtures.skopeo import SkopeoError, copy_image, inspect_raw, list_tags, push_layout

pytestmark = pytest.mark.registry

VARIANTS = ["registry", "basic_registry", "token_registry", "tls_registry"]


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(params=VARIANTS)
def any_registry(request: pytest.FixtureRequest) -> Registry:
    reg: Registry = request.getfixturevalue(request.param)
    return reg


def test_push_image_and_index_round_trip(any_registry: Registry, repo: str, tmp_path: Path) -> None:
    image = make_image(tmp_path, tag="img", seed=1)
    index = make_index(tmp_path, tag="idx", seed=2)

    assert push_layout(tmp_path, "img", any_registry, repo, tag="v1") == image.digest
    assert push_layout(tmp_path, "idx", any_registry, repo, tag="multi") == index.digest

    assert _sha(inspect_raw(any_registry, f"{repo}:v1")) == image.digest
    assert inspect_raw(any_registry, f"{repo}@{image.digest}") == image.manifest
    assert inspect_raw(any_registry, f"{repo}:multi") == index.manifest
    for child in index.children:
        assert _sha(inspect_raw(any_registry, f"{repo}@{child.digest}")) == child.digest
    assert list_tags(any_registry, repo) == ["multi", "v1"]


def test_token_registry_logs_scopes(token_registry: Registry, repo: str, tmp_path: Path) -> None:
    assert token_registry.token_server is not None
    make_image(tmp_path, tag="img", seed=3)
    token_registry.token_server.clear()

    push_layout(tmp_path, "img", token_registry, repo, tag="v1")

    requests = token_registry.token_server.requests
    assert requests, "skopeo never asked the token server"
    assert all(r.user == "alice" and r.status == 200 for r in requests)
    assert f"repository:{repo}:pull,push" in token_registry.token_server.scopes_requested()
    assert ("repository", repo, ("pull", "push")) in [g for r in requests for g in r.granted]


def test_token_reader_can_pull_but_not_push(
    token_registry: Registry, repo: str, tmp_path: Path
) -> None:
    image = make_image(tmp_path, tag="img", seed=4)
    push_layout(tmp_path, "img", token_registry, repo, tag="v1")
    reader = token_registry.as_reader()

    assert _sha(inspect_raw(reader, f"{repo}:v1")) == image.digest
    make_image(tmp_path, tag="other", seed=5)
    with pytest.raises(SkopeoError):
        push_layout(tmp_path, "other", reader, repo, tag="v2")
    assert list_tags(token_registry, repo) == ["v1"]


def test_auth_registries_refuse_anonymous_and_wrong_password(
    basic_registry: Registry, token_registry: Registry
) -> None:
    for reg in (basic_registry, token_registry):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{reg.url}/v2/", timeout=5)
        assert err.value.code == 401
    wrong = basic_registry.with_credentials("alice", "wrong")
    with pytest.raises(SkopeoError):
        list_tags(wrong, "t/nothing")


def test_docker_media_types_and_push_by_digest(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    index = make_index(tmp_path, docker=True, seed=6)
    assert json.loads(index.manifest)["mediaType"] == DOCKER_LIST
    assert all(c.media_type == DOCKER_MANIFEST for c in index.children)

    assert push_layout(tmp_path, index.digest, registry, repo) == index.digest
    assert inspect_raw(registry, f"{repo}@{index.digest}") == index.manifest
    child = index.children[1]
    assert push_layout(tmp_path, child.digest, registry, repo, tag="arm") == child.digest
    assert inspect_raw(registry, f"{repo}:arm") == child.manifest


def test_cross_registry_copy_keeps_digest(
    registry: Registry, registry2: Registry, repo: str, tmp_path: Path
) -> None:
    index = make_index(tmp_path, tag="idx", seed=7)
    push_layout(tmp_path, "idx", registry, repo, tag="v1")
    assert registry.host != registry2.host

    copy_image(registry, f"{repo}:v1", registry2, f"{repo}:v1")

    assert inspect_raw(registry2, f"{repo}:v1") == index.manifest


def test_factory_is_deterministic(tmp_path: Path) -> None:
    first = make_index(tmp_path / "a", tag="x", seed=9)
    again = make_index(tmp_path / "b", tag="x", seed=9)
    other = make_index(tmp_path / "c", tag="x", seed=10)
    assert first == again
    assert first.digest != other.digest
    assert first.media_type == OCI_INDEX
    assert all(c.media_type == OCI_MANIFEST for c in first.children)
    assert len({c.digest for c in first.children}) == 2
    for blob in first.children[0].blobs:
        path = tmp_path / "a" / "blobs" / "sha256" / blob.digest.removeprefix("sha256:")
        assert _sha(path.read_bytes()) == blob.digest
        assert path.stat().st_size == blob.size


def test_large_image_streams_to_disk(registry: Registry, repo: str, tmp_path: Path) -> None:
    image = make_large_image(tmp_path, 3 * 1024 * 1024, layers=3, tag="big")
    assert image.total_size > 3 * 1024 * 1024
    for blob in image.layers:
        path = tmp_path / "blobs" / "sha256" / blob.digest.removeprefix("sha256:")
        assert _sha(path.read_bytes()) == blob.digest
    assert push_layout(tmp_path, "big", registry, repo, tag="big") == image.digest


def test_token_flow_for_a_plain_http_client(
    token_registry: Registry, repo: str, tmp_path: Path
) -> None:
    """The challenge/token/retry dance a registry client performs (auth/token.md)."""
    make_image(tmp_path, tag="img", seed=11)
    push_layout(tmp_path, "img", token_registry, repo, tag="v1")
    url = f"{token_registry.url}/v2/{repo}/tags/list"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=5)
    challenge = err.value.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    assert params["scope"] == f"repository:{repo}:pull"

    query = urllib.parse.urlencode({"service": params["service"], "scope": params["scope"]})
    basic = base64.b64encode(f"{FULL_USER[0]}:{FULL_USER[1]}".encode()).decode()
    token_request = urllib.request.Request(
        f"{params['realm']}?{query}", headers={"Authorization": f"Basic {basic}"}
    )
    with urllib.request.urlopen(token_request, timeout=5) as response:
        token = json.load(response)["token"]
    authed = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(authed, timeout=5) as response:
        assert json.load(response)["tags"] == ["v1"]


def test_token_server_refuses_bad_password_and_gives_anonymous_nothing(
    token_registry: Registry, repo: str, tmp_path: Path
) -> None:
    assert token_registry.token_server is not None
    make_image(tmp_path, tag="img", seed=12)
    push_layout(tmp_path, "img", token_registry, repo, tag="v1")
    token_registry.token_server.clear()

    with pytest.raises(SkopeoError):
        inspect_raw(token_registry.with_credentials(FULL_USER[0], "wrong"), f"{repo}:v1")
    with pytest.raises(SkopeoError):
        inspect_raw(token_registry.with_credentials(None, None), f"{repo}:v1")

    statuses = [(r.user, r.status, r.granted) for r in token_registry.token_server.requests]
    assert (None, 401, ()) in statuses
    assert (None, 200, ()) in statuses


def test_missing_tool_skips_locally_and_fails_when_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = "docker-registry-that-does-not-exist"
    monkeypatch.delenv("DIGESTGATE_REQUIRE_REGISTRY", raising=False)
    with pytest.raises(pytest.skip.Exception, match="is not installed"):
        require_command(missing)
    monkeypatch.setenv("DIGESTGATE_REQUIRE_REGISTRY", "1")
    with pytest.raises(pytest.fail.Exception, match="DIGESTGATE_REQUIRE_REGISTRY=1"):
        require_command(missing)


def test_artifact_with_subject_pushes_unchanged(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    image = make_image(tmp_path, tag="img", seed=13)
    push_layout(tmp_path, "img", registry, repo, tag="v1")
    artifact = make_artifact(
        tmp_path,
        image,
        artifact_type="application/vnd.dev.digestgate.test+json",
        payload=b'{"hello": "world"}',
        payload_media_type="application/vnd.in-toto+json",
    )
    fallback_tag = "sha256-" + image.digest.removeprefix("sha256:")

    assert (
        push_layout(tmp_path, artifact.digest, registry, repo, tag=fallback_tag) == artifact.digest
    )
    assert inspect_raw(registry, f"{repo}:{fallback_tag}") == artifact.manifest
    assert json.loads(artifact.manifest)["subject"]["digest"] == image.digest
