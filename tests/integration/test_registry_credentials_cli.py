"""Registry credentials through the CLI: only the bound host ever receives them.

``DIGESTGATE_REGISTRY_USERNAME``/``_PASSWORD`` are configured for one host
(``DIGESTGATE_REGISTRY_HOST``). A host that only unsigned input names (promoted.json, a
release, a command-line reference) must receive no ``Authorization`` header at all, even
when it asks for credentials; the bound host still authenticates with Basic and Bearer.
The "other host" is a recording proxy in front of the real registry (tests.fixtures.recorder):
it behaves exactly like the registry, and counts what it received.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CliResult, run_cli
from tests.fixtures import images
from tests.fixtures.recorder import RecordingServer
from tests.fixtures.registry import Registry
from tests.fixtures.skopeo import push_layout

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

REVISION = "c" * 40
SOURCE = {
    "repository": "https://git.example.org/org/app",
    "revision": REVISION,
    "ref": "refs/heads/main",
    "runId": "77",
}
SOURCE_FLAGS = ["--source-repo", SOURCE["repository"], "--revision", REVISION]
SOURCE_FLAGS += ["--ref", SOURCE["ref"], "--run-id", SOURCE["runId"]]


def credentials_env(registry: Registry, bound_to: str, docker_config: Path) -> dict[str, str]:
    """The registry's account in the environment, bound to ``bound_to``; no Docker config."""
    assert registry.username and registry.password
    docker_config.mkdir(exist_ok=True)
    return {
        "DIGESTGATE_REGISTRY_HOST": bound_to,
        "DIGESTGATE_REGISTRY_USERNAME": registry.username,
        "DIGESTGATE_REGISTRY_PASSWORD": registry.password,
        "DOCKER_CONFIG": str(docker_config),
    }


def basic_header(registry: Registry) -> str:
    raw = f"{registry.username}:{registry.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def assert_no_secret(result: CliResult, registry: Registry) -> None:
    assert registry.password
    text = result.stdout + result.stderr
    assert registry.password not in text
    assert basic_header(registry).split()[1] not in text


def push(registry: Registry, repo: str, tmp_path: Path, seed: int) -> str:
    layout = tmp_path / f"image-{seed}"
    info = images.make_image(layout, tag="v1", seed=seed)
    digest = push_layout(layout, "v1", registry, repo, tag="v1")
    assert digest == info.digest
    return digest


def write_release(path: Path, image: str) -> Path:
    doc = {
        "apiVersion": "digestgate/v1",
        "kind": "Release",
        "source": SOURCE,
        "artifacts": {"app": {"image": image}},
    }
    path.write_text(json.dumps(doc))
    return path


def write_promoted(path: Path, image: str, source: str) -> Path:
    doc = {
        "apiVersion": "digestgate/v1",
        "kind": "Promotion",
        "source": SOURCE,
        "policy": {"digest": "sha256:" + "d" * 64},
        "time": "2026-12-01T10:00:00Z",
        "artifacts": {
            "app": {"image": image, "from": source, "tags": [{"tag": "v1", "previous": None}]}
        },
    }
    path.write_text(json.dumps(doc))
    return path


def capture_args(image: str, release: Path) -> list[str]:
    return ["capture", "app", image, "--release", str(release), *SOURCE_FLAGS]


def attach_args(release: Path, key: Path) -> list[str]:
    """``attest provenance`` into the attached store: it writes to the image's registry."""
    return [
        "attest",
        "provenance",
        "--release",
        str(release),
        "--key",
        str(key),
        "--event",
        "push",
        "--evidence",
        "attached",
    ]


def capture_and_attach(
    image: str, tmp_path: Path, key: Path, environ: dict[str, str]
) -> list[CliResult]:
    """Capture ``image`` into a new release, then attach provenance to it; both must pass."""
    release = tmp_path / "release.json"
    captured = run_cli(*capture_args(image, release), env=environ)
    assert captured.code == 0, captured.stderr
    attested = run_cli(*attach_args(release, key), env=environ)
    assert attested.code == 0, attested.stderr
    assert attested.stdout.startswith("provenance app sha256:")  # attached in the registry
    assert ": tag-schema" in attested.stderr
    return [captured, attested]


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    result = run_cli("keygen", "--out", str(tmp_path / "build"))
    assert result.code == 0, result.stderr
    return tmp_path / "build.key"


@pytest.fixture
def proxy(basic_registry: Registry) -> Iterator[RecordingServer]:
    """Another registry host, in front of the Basic-auth registry."""
    with RecordingServer(basic_registry.host) as server:
        yield server


# --- the required case: a host named only in promoted.json ------------------------------


def test_drift_offers_no_credentials_to_a_host_named_only_in_promoted_json(
    basic_registry: Registry, proxy: RecordingServer, repo: str, tmp_path: Path
) -> None:
    digest = push(basic_registry, repo, tmp_path, seed=901)
    promoted = write_promoted(
        tmp_path / "promoted.json",
        image=f"{proxy.host}/{repo}@{digest}",
        source=f"{basic_registry.host}/{repo}@{digest}",
    )
    # The credentials are configured for the real registry's host, not the proxy's.
    environ = credentials_env(basic_registry, basic_registry.host, tmp_path / "docker")
    result = run_cli("drift", str(promoted), env=environ)
    assert result.code == 3, result.stderr
    assert f"{proxy.host} requires credentials and none were found" in result.stderr
    assert f"DIGESTGATE_REGISTRY_HOST={proxy.host}" in result.stderr  # what to do next
    assert proxy.seen, "the host in promoted.json was asked"
    assert proxy.authorizations() == []  # and received no credentials at all
    assert_no_secret(result, basic_registry)

    # Control: bound to that host, the same run authenticates there and finds no drift.
    bound = credentials_env(basic_registry, proxy.host, tmp_path / "docker")
    again = run_cli("drift", str(promoted), env=bound)
    assert again.code == 0, again.stderr
    assert set(proxy.authorizations()) == {basic_header(basic_registry)}
    assert_no_secret(again, basic_registry)


# --- resolve, capture, attest --evidence attached ---------------------------------------


def _unbound_runs(
    proxy: RecordingServer, repo: str, digest: str, tmp_path: Path, key: Path
) -> dict[str, list[str]]:
    release = write_release(tmp_path / "release-proxy.json", f"{proxy.host}/{repo}@{digest}")
    return {
        "resolve": ["resolve", f"{proxy.host}/{repo}:v1"],
        "capture": capture_args(f"{proxy.host}/{repo}@{digest}", tmp_path / "release-new.json"),
        "attest": attach_args(release, key),
    }


@pytest.mark.parametrize("command", ["resolve", "capture", "attest"])
def test_commands_offer_no_credentials_to_an_unbound_host(
    command: str,
    basic_registry: Registry,
    proxy: RecordingServer,
    repo: str,
    tmp_path: Path,
    keyfile: Path,
) -> None:
    digest = push(basic_registry, repo, tmp_path, seed=902)
    args = _unbound_runs(proxy, repo, digest, tmp_path, keyfile)[command]
    environ = credentials_env(basic_registry, basic_registry.host, tmp_path / "docker")
    result = run_cli(*args, env=environ)
    assert result.code == 3, result.stderr
    assert "requires credentials and none were found" in result.stderr
    assert proxy.seen and proxy.authorizations() == []
    assert_no_secret(result, basic_registry)


def test_basic_auth_still_works_on_the_bound_host(
    basic_registry: Registry, repo: str, tmp_path: Path, keyfile: Path
) -> None:
    digest = push(basic_registry, repo, tmp_path, seed=903)
    environ = credentials_env(basic_registry, basic_registry.host, tmp_path / "docker")
    resolved = run_cli("resolve", f"{basic_registry.host}/{repo}:v1", env=environ)
    assert resolved.code == 0, resolved.stderr
    assert resolved.stdout.strip() == f"{basic_registry.host}/{repo}@{digest}"
    runs = capture_and_attach(f"{basic_registry.host}/{repo}@{digest}", tmp_path, keyfile, environ)
    for result in (resolved, *runs):
        assert_no_secret(result, basic_registry)


# --- Bearer tokens --------------------------------------------------------------------------


def test_bearer_auth_works_on_the_bound_host_and_nowhere_else(
    token_registry: Registry, repo: str, tmp_path: Path, keyfile: Path
) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    digest = push(token_registry, repo, tmp_path, seed=904)
    environ = credentials_env(token_registry, token_registry.host, tmp_path / "docker")

    tokens.clear()
    runs = capture_and_attach(f"{token_registry.host}/{repo}@{digest}", tmp_path, keyfile, environ)
    assert {r.user for r in tokens.requests} == {token_registry.username}
    assert any(s.endswith(f"{repo}:pull,push") for s in tokens.scopes_requested())

    with RecordingServer(token_registry.host) as other:
        tokens.clear()
        result = run_cli("resolve", f"{other.host}/{repo}@{digest}", env=environ)
        assert result.code == 3, result.stderr
        # The token realm was asked anonymously, and the other host saw no Basic header.
        assert tokens.requests and {r.user for r in tokens.requests} == {None}
        assert not [a for a in other.authorizations() if not a.startswith("Bearer ")]
    for run in (*runs, result):
        assert_no_secret(run, token_registry)


# --- no host: exit 2 before any connection, for every command that can reach a registry ---


def test_every_registry_command_refuses_credentials_without_a_host_before_connecting(
    tmp_path: Path, keyfile: Path
) -> None:
    with RecordingServer() as hostile:  # answers 401 Basic: it wants credentials
        h = hostile.host
        image = f"{h}/org/app@sha256:" + "e" * 64
        release = write_release(tmp_path / "release.json", image)
        promoted = write_promoted(tmp_path / "promoted.json", image, image)
        policy = tmp_path / "policy.yaml"
        policy.write_text("apiVersion: digestgate/v1\n")
        key = str(keyfile)
        commands = [
            ["resolve", f"{h}/org/app:v1"],
            capture_args(image, tmp_path / "new.json"),
            attach_args(release, keyfile),
            ["attest", "test-result", "--release", str(release), "--lane", "e2e",
             "--result", "PASSED", "--key", key, "--evidence", "attached"],
            ["gate", "--release", str(release), "--policy", str(policy), "--evidence", "attached"],
            ["promote", "--release", str(release), "--policy", str(policy),
             "--evidence", "attached", "--to", f"{h}/prod", "--vsa-key", key],
            ["verify", image, "--policy", str(policy), "--evidence", "attached"],
            ["drift", str(promoted)],
        ]  # fmt: skip
        environ = {
            "DIGESTGATE_REGISTRY_USERNAME": "alice",
            "DIGESTGATE_REGISTRY_PASSWORD": "s3cret-never-shown",
            "DOCKER_CONFIG": str(tmp_path / "docker"),
        }
        for args in commands:
            result = run_cli(*args, env=environ)
            assert result.code == 2, (args, result.stderr)
            assert (
                "DIGESTGATE_REGISTRY_USERNAME is set but DIGESTGATE_REGISTRY_HOST is not"
                in result.stderr
            ), args
            assert "s3cret-never-shown" not in result.stdout + result.stderr
        assert hostile.seen == []  # no command opened a connection
