"""CI detection for GitHub, Gitea and Forgejo Actions, local runs, and flag overrides."""

from __future__ import annotations

import pytest

from digestgate.ci import LOCAL_BUILDER_ID, CiContext, detect_ci, with_overrides
from digestgate.errors import UsageError

SHA = "0123456789abcdef0123456789abcdef01234567"
SHA256_COMMIT = "ab" * 32

GITHUB_ENV = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "octo-org/app",
    "GITHUB_SHA": SHA,
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_RUN_ID": "9876543210",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_RUN_NUMBER": "77",
    "GITHUB_WORKFLOW_REF": "octo-org/app/.github/workflows/release.yml@refs/heads/main",
}

# Gitea's runner sets GITEA_ACTIONS and the GitHub-compatible names.
GITEA_ENV = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "GITEA_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://git.example.org/",
    "GITHUB_REPOSITORY": "org/app",
    "GITHUB_SHA": SHA,
    "GITHUB_REF": "refs/tags/v1.2.0",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_RUN_ID": "1829",
    "GITHUB_RUN_NUMBER": "191",
    "GITHUB_WORKFLOW_REF": "org/app/.gitea/workflows/release.yml@refs/tags/v1.2.0",
}

# Forgejo sets FORGEJO_ACTIONS, FORGEJO_* and the GITHUB_* mirrors.
FORGEJO_ENV = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "FORGEJO_ACTIONS": "true",
    "FORGEJO_SERVER_URL": "https://codeberg.org",
    "GITHUB_SERVER_URL": "https://codeberg.org",
    "FORGEJO_REPOSITORY": "team/app",
    "GITHUB_REPOSITORY": "team/app",
    "FORGEJO_SHA": SHA,
    "FORGEJO_REF": "refs/heads/main",
    "FORGEJO_EVENT_NAME": "workflow_dispatch",
    "FORGEJO_RUN_ID": "5501",
    "FORGEJO_RUN_NUMBER": "42",
}


def test_github() -> None:
    ctx = detect_ci(GITHUB_ENV)
    assert ctx == CiContext(
        platform="github",
        in_ci=True,
        server_url="https://github.com",
        repository="octo-org/app",
        repository_url="https://github.com/octo-org/app",
        revision=SHA,
        ref="refs/heads/main",
        event_name="push",
        run_id="9876543210",
        run_attempt="2",
        workflow_path=".github/workflows/release.yml",
        workflow_ref="octo-org/app/.github/workflows/release.yml@refs/heads/main",
        run_url="https://github.com/octo-org/app/actions/runs/9876543210",
        builder_id="https://github.com/octo-org/app/.github/workflows/release.yml@refs/heads/main",
    )


def test_workflow_path_survives_refs_containing_at() -> None:
    env = dict(
        GITHUB_ENV, GITHUB_WORKFLOW_REF="octo-org/app/.github/workflows/r.yml@refs/heads/a@b"
    )
    ctx = detect_ci(env)
    assert ctx.workflow_path == ".github/workflows/r.yml"
    assert (
        ctx.builder_id == "https://github.com/octo-org/app/.github/workflows/r.yml@refs/heads/a@b"
    )


def test_gitea() -> None:
    ctx = detect_ci(GITEA_ENV)
    assert ctx.platform == "gitea"
    assert ctx.in_ci
    assert ctx.server_url == "https://git.example.org"
    assert ctx.repository_url == "https://git.example.org/org/app"
    assert ctx.ref == "refs/tags/v1.2.0"
    assert ctx.run_id == "1829"
    assert ctx.run_url == "https://git.example.org/org/app/actions/runs/1829"
    assert ctx.workflow_path == ".gitea/workflows/release.yml"
    assert ctx.builder_id == (
        "https://git.example.org/org/app/.gitea/workflows/release.yml@refs/tags/v1.2.0"
    )


def test_gitea_without_workflow_ref_builds_the_builder_id_from_the_source() -> None:
    env = {k: v for k, v in GITEA_ENV.items() if k != "GITHUB_WORKFLOW_REF"}
    ctx = detect_ci(env)
    assert ctx.workflow_path is None
    assert ctx.builder_id == "https://git.example.org/org/app@refs/tags/v1.2.0"


def test_forgejo() -> None:
    ctx = detect_ci(FORGEJO_ENV)
    assert ctx.platform == "forgejo"
    assert ctx.server_url == "https://codeberg.org"
    assert ctx.repository_url == "https://codeberg.org/team/app"
    assert ctx.event_name == "workflow_dispatch"
    assert ctx.run_id == "5501"
    # Forgejo's web UI addresses runs by their number.
    assert ctx.run_url == "https://codeberg.org/team/app/actions/runs/42"
    assert ctx.builder_id == "https://codeberg.org/team/app@refs/heads/main"


def test_forgejo_reads_its_own_names_when_github_names_are_missing() -> None:
    env = {
        "FORGEJO_ACTIONS": "true",
        "FORGEJO_SERVER_URL": "https://forge.example.com",
        "FORGEJO_REPOSITORY": "a/b",
        "GITHUB_RUN_ID": "3",
        "FORGEJO_RUN_ID": "4",
    }
    ctx = detect_ci(env)
    # GitHub names win where both exist, so every command reads the same run id.
    assert (ctx.platform, ctx.repository_url, ctx.run_id) == (
        "forgejo",
        "https://forge.example.com/a/b",
        "3",
    )


def test_local() -> None:
    ctx = detect_ci({})
    assert ctx.platform == "local"
    assert not ctx.in_ci
    assert ctx.revision is None and ctx.repository_url is None and ctx.run_url is None
    assert ctx.builder_id == LOCAL_BUILDER_ID


def test_other_ci_counts_as_ci() -> None:
    ctx = detect_ci({"CI": "true"})
    assert (ctx.platform, ctx.in_ci) == ("local", True)
    assert not detect_ci({"CI": "false"}).in_ci


def test_sha256_commit_ids_are_accepted() -> None:
    assert detect_ci(dict(GITHUB_ENV, GITHUB_SHA=SHA256_COMMIT)).revision == SHA256_COMMIT


@pytest.mark.parametrize("bad", ["abc", SHA.upper(), SHA + "0", "g" * 40])
def test_invalid_revision_is_refused(bad: str) -> None:
    with pytest.raises(UsageError, match="invalid revision"):
        detect_ci(dict(GITHUB_ENV, GITHUB_SHA=bad))
    with pytest.raises(UsageError, match="invalid revision"):
        with_overrides(detect_ci({}), revision=bad)


def test_overrides_outside_ci() -> None:
    ctx = with_overrides(
        detect_ci({}),
        repository_url="https://git.example.org/org/app.git/",
        revision=SHA,
        ref="refs/heads/main",
        run_id="4242",
        event_name="push",
    )
    assert ctx.repository_url == "https://git.example.org/org/app"
    assert ctx.repository == "org/app"
    assert ctx.server_url == "https://git.example.org"
    assert (ctx.revision, ctx.ref, ctx.run_id, ctx.event_name) == (
        SHA,
        "refs/heads/main",
        "4242",
        "push",
    )
    assert ctx.run_url == "https://git.example.org/org/app/actions/runs/4242"
    assert ctx.builder_id == LOCAL_BUILDER_ID


def test_overriding_the_source_in_ci_drops_the_runner_workflow_ref() -> None:
    ctx = with_overrides(detect_ci(GITHUB_ENV), ref="refs/heads/release")
    assert ctx.workflow_ref is None
    assert ctx.builder_id == (
        "https://github.com/octo-org/app/.github/workflows/release.yml@refs/heads/release"
    )
    assert with_overrides(detect_ci(GITHUB_ENV), builder_id="x").builder_id == "x"


def test_no_overrides_changes_nothing() -> None:
    ctx = detect_ci(GITHUB_ENV)
    assert with_overrides(ctx) == ctx


@pytest.mark.parametrize("url", ["git.example.org/org/app", "ssh://git@h/o/r", "https://h/", ""])
def test_invalid_repository_url(url: str) -> None:
    with pytest.raises(UsageError, match="invalid source repository URL"):
        with_overrides(detect_ci({}), repository_url=url)


def test_short_ref_is_refused() -> None:
    with pytest.raises(UsageError, match="full ref name"):
        with_overrides(detect_ci({}), ref="main")
