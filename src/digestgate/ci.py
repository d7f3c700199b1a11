"""Where we run: the CI context read from GitHub, Gitea or Forgejo Actions variables (pure).

GitHub sets ``GITHUB_*`` (docs "Variables reference"). Gitea Actions sets
``GITEA_ACTIONS=true`` and keeps the ``GITHUB_*`` names for compatibility. Forgejo Actions
sets ``FORGEJO_ACTIONS=true`` and mirrors the ``GITHUB_*`` values as ``FORGEJO_*`` (read when
a ``GITHUB_*`` name is missing). These
values are only as trustworthy as the runner that sets them (no OIDC identity on Gitea and
Forgejo), which is why evidence is signed with keys held per role.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from digestgate.errors import UsageError

Platform = Literal["github", "gitea", "forgejo", "local"]

#: builder.id recorded for provenance made outside any CI system.
LOCAL_BUILDER_ID: Final = "https://digestgate.dev/builders/local"

_REVISION_RE: Final = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_REPOSITORY_RE: Final = re.compile(r"[^/\s]+(/[^/\s]+)+")

# Variable prefixes read per platform, first match wins. The GitHub names come first on every
# platform so that all commands (capture included) agree on the same values.
_PREFIXES: Final[Mapping[str, tuple[str, ...]]] = {
    "github": ("GITHUB_",),
    "gitea": ("GITHUB_", "GITEA_"),
    "forgejo": ("GITHUB_", "FORGEJO_"),
    "local": ("GITHUB_",),
}


@dataclass(frozen=True, slots=True)
class CiContext:
    """The source, run and workflow a command runs for (``None`` where unknown)."""

    platform: Platform
    in_ci: bool
    server_url: str | None
    repository: str | None
    repository_url: str | None
    revision: str | None
    ref: str | None
    event_name: str | None
    run_id: str | None
    run_attempt: str | None
    workflow_path: str | None
    workflow_ref: str | None
    run_url: str | None
    builder_id: str | None


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _platform(env: Mapping[str, str]) -> Platform:
    # Forgejo also sets GITHUB_ACTIONS (and may set GITEA_ACTIONS): check it first.
    if _true(env.get("FORGEJO_ACTIONS")):
        return "forgejo"
    if _true(env.get("GITEA_ACTIONS")):
        return "gitea"
    if _true(env.get("GITHUB_ACTIONS")):
        return "github"
    return "local"


def check_revision(revision: str) -> str:
    """Return ``revision`` when it is a full git commit id (40 or 64 lowercase hex)."""
    if not _REVISION_RE.fullmatch(revision):
        raise UsageError(
            f"invalid revision {revision[:80]!r}: need a full commit id (40 or 64 hex digits)",
            hint="pass the full commit SHA, e.g. from `git rev-parse HEAD`",
        )
    return revision


def _workflow_path(workflow_ref: str | None, repository: str | None) -> str | None:
    """``.github/workflows/x.yml`` from ``owner/repo/.github/workflows/x.yml@refs/...``.

    The path ends at the first ``@`` after the repository prefix (refs may contain ``@``),
    as GitHub's provenance generator splits it.
    """
    if not workflow_ref or not repository or not workflow_ref.startswith(repository + "/"):
        return None
    path, _, _ = workflow_ref[len(repository) + 1 :].partition("@")
    return path or None


def _builder_id(
    platform: Platform,
    server_url: str | None,
    workflow_ref: str | None,
    repository_url: str | None,
    workflow_path: str | None,
    ref: str | None,
) -> str | None:
    if platform == "local":
        return LOCAL_BUILDER_ID
    if server_url and workflow_ref:
        return f"{server_url}/{workflow_ref}"
    if repository_url and ref:
        middle = f"/{workflow_path}" if workflow_path else ""
        return f"{repository_url}{middle}@{ref}"
    return None


def _run_url(
    platform: Platform, repository_url: str | None, run_id: str | None, run_number: str | None
) -> str | None:
    if repository_url is None:
        return None
    # Forgejo addresses runs by their per-repository number; GitHub and current Gitea
    # (since go-gitea/gitea#36842) by the run id.
    run = run_number if platform == "forgejo" and run_number else run_id
    return f"{repository_url}/actions/runs/{run}" if run else None


def detect_ci(env: Mapping[str, str]) -> CiContext:
    """Read the CI context from environment variables (pure: ``env`` is passed in)."""
    platform = _platform(env)
    prefixes = _PREFIXES[platform]

    def get(name: str) -> str | None:
        for prefix in prefixes:
            value = env.get(prefix + name)
            if value:
                return value.strip()
        return None

    in_ci = platform != "local" or _true(env.get("CI"))
    server_url = get("SERVER_URL")
    server_url = server_url.rstrip("/") if server_url else None
    repository = get("REPOSITORY")
    repository_url = f"{server_url}/{repository}" if server_url and repository else None
    revision = get("SHA")
    if revision is not None:
        check_revision(revision)
    ref = get("REF")
    workflow_ref = get("WORKFLOW_REF")
    workflow_path = _workflow_path(workflow_ref, repository)
    run_id = get("RUN_ID")
    return CiContext(
        platform=platform,
        in_ci=in_ci,
        server_url=server_url,
        repository=repository,
        repository_url=repository_url,
        revision=revision,
        ref=ref,
        event_name=get("EVENT_NAME"),
        run_id=run_id,
        run_attempt=get("RUN_ATTEMPT"),
        workflow_path=workflow_path,
        workflow_ref=workflow_ref,
        run_url=_run_url(platform, repository_url, run_id, get("RUN_NUMBER")),
        builder_id=_builder_id(
            platform, server_url, workflow_ref, repository_url, workflow_path, ref
        ),
    )


def _normal_repository_url(url: str) -> tuple[str, str]:
    """``(repository_url, owner/name)`` from a user-given URL (no ``.git``, no ``/``)."""
    text = url.strip().rstrip("/")
    if text.endswith(".git"):
        text = text[: -len(".git")]
    scheme, sep, rest = text.partition("://")
    host, _, path = rest.partition("/")
    if not sep or scheme not in ("https", "http") or not host or not _REPOSITORY_RE.fullmatch(path):
        raise UsageError(
            f"invalid source repository URL {url[:100]!r}",
            hint="use the repository's web URL, e.g. https://git.example.org/org/app",
        )
    return text, path


def with_overrides(
    ctx: CiContext,
    *,
    repository_url: str | None = None,
    revision: str | None = None,
    ref: str | None = None,
    run_id: str | None = None,
    event_name: str | None = None,
    run_attempt: str | None = None,
    workflow_path: str | None = None,
    run_url: str | None = None,
    builder_id: str | None = None,
) -> CiContext:
    """Apply explicit command-line values on top of a detected context (``None`` = keep)."""
    changes: dict[str, str | None] = {}
    if repository_url is not None:
        url, repository = _normal_repository_url(repository_url)
        changes["repository_url"] = url
        changes["repository"] = repository
        changes["server_url"] = url[: -len(repository) - 1]
    if revision is not None:
        changes["revision"] = check_revision(revision.strip())
    if ref is not None:
        if not ref.startswith("refs/"):
            raise UsageError(
                f"invalid ref {ref[:80]!r}: need a full ref name",
                hint="use e.g. refs/heads/main or refs/tags/v1.2.0",
            )
        changes["ref"] = ref
    for name, value in (
        ("run_id", run_id),
        ("event_name", event_name),
        ("run_attempt", run_attempt),
        ("workflow_path", workflow_path),
    ):
        if value is not None:
            changes[name] = value.strip() or None
    if changes.keys() & {"repository_url", "ref", "workflow_path"}:
        # The runner's workflow ref no longer describes the overridden source.
        changes["workflow_ref"] = None
    updated = dataclasses.replace(ctx, **changes)  # type: ignore[arg-type]
    derived: dict[str, str | None] = {}
    if run_url is not None:
        derived["run_url"] = run_url
    elif changes.keys() & {"repository_url", "run_id"}:
        derived["run_url"] = _run_url(
            updated.platform, updated.repository_url, updated.run_id, None
        )
    if builder_id is not None:
        derived["builder_id"] = builder_id
    elif "workflow_ref" in changes:
        derived["builder_id"] = _builder_id(
            updated.platform,
            updated.server_url,
            None,
            updated.repository_url,
            updated.workflow_path,
            updated.ref,
        )
    return dataclasses.replace(updated, **derived)  # type: ignore[arg-type]
