"""Classify commands and actions: image build, validation, promotion, push, capture, opaque.

Every pattern here is listed in docs/lint.md. Classification is pure: it sees words of a
command (from :mod:`digestgate.linting.shell`) or an action name with its ``with:`` inputs,
and the repository's :class:`~digestgate.linting.config.LintConfig` extensions.

This module dispatches a command to its tool's classifier (after wrappers and the tool's
global options, :mod:`~digestgate.linting.options`) and re-exports action classification;
:mod:`~digestgate.linting.match` holds the result types, :mod:`~digestgate.linting.tools` the
image tools' classifiers, :mod:`~digestgate.linting.deploy` the deployment classifiers,
:mod:`~digestgate.linting.actions` the actions, :mod:`~digestgate.linting.testrunners` the test
runners and :mod:`~digestgate.linting.argv` the shared handling of command words.
"""

from __future__ import annotations

import re

from digestgate.linting import deploy
from digestgate.linting.actions import (
    BUILD_ACTIONS,
    DIGESTGATE_ACTIONS,
    HARMLESS_ACTIONS,
    MIRROR_HOSTS,
    PUSH_ACTIONS,
    VALIDATION_ACTIONS,
    ActionRef,
    action_ref,
    classify_action,
)
from digestgate.linting.argv import (
    after_globals,
    asks_help,
    basename,
    normalize,
    positionals,
    script_ref,
)
from digestgate.linting.config import LintConfig
from digestgate.linting.match import Kind, Match, Ref
from digestgate.linting.options import BUILDAH_PUSH, COSIGN_COPY, GLOBAL_VALUES, ORAS_COPY
from digestgate.linting.testrunners import validation_matches
from digestgate.linting.tools import (
    KANIKO_IMAGE,
    build_match,
    compose_matches,
    crane_matches,
    digestgate_matches,
    docker_matches,
    jvm_matches,
    kaniko_match,
    refs_of,
    regctl_matches,
    skopeo_matches,
)

__all__ = [
    "BUILD_ACTIONS",
    "DIGESTGATE_ACTIONS",
    "HARMLESS_ACTIONS",
    "KANIKO_IMAGE",
    "MIRROR_HOSTS",
    "PUSH_ACTIONS",
    "VALIDATION_ACTIONS",
    "ActionRef",
    "Kind",
    "Match",
    "Ref",
    "action_ref",
    "classify_action",
    "classify_command",
    "is_lane",
    "normalize",
    "script_ref",
]


def is_lane(name: str | None, config: LintConfig) -> bool:
    """Whether a job or step name is one of the configured validation lanes."""
    return bool(name) and name in config.lanes


def classify_command(argv: tuple[str, ...], config: LintConfig) -> list[Match]:
    """Classify one simple command (after wrappers are dropped)."""
    words = normalize(argv)
    if not words:
        return []
    matches = _builtin(list(words))
    text = " ".join(words)
    for kind, patterns in (
        (Kind.BUILD, config.build_commands),
        (Kind.VALIDATION, config.validation_commands),
        (Kind.PROMOTION, config.promotion_commands),
    ):
        if any(p.search(text) for p in patterns) and not any(m.kind is kind for m in matches):
            matches.append(Match(kind, f"configured {kind.value} pattern"))
    return matches


def _builtin(words: list[str]) -> list[Match]:
    head = basename(words[0])
    # global options (and their values) come before the subcommand: skip them
    args = after_globals(words[1:], GLOBAL_VALUES[head]) if head in GLOBAL_VALUES else words[1:]
    if head in ("docker", "podman", "nerdctl"):
        return docker_matches(head, args)
    if head in ("docker-compose", "podman-compose"):
        return compose_matches(head, args)
    if head == "buildah":
        sub = args[0] if args else ""
        if asks_help(args):
            return []
        if sub in ("bud", "build", "build-using-dockerfile", "commit"):
            return [build_match(f"buildah {sub}", args, pushes=False)]
        if sub == "push":
            pushed = Match(
                Kind.PUSH, "buildah push", refs=refs_of(positionals(args[1:], BUILDAH_PUSH)[:1])
            )
            if any(a.split("=", 1)[0] == "--digestfile" for a in args):
                return [pushed, Match(Kind.CAPTURE, "buildah push --digestfile")]
            return [pushed]
        return []
    if words[0].endswith("/kaniko/executor") or (head == "executor" and "/" in words[0]):
        return [] if asks_help(args) else [kaniko_match(args)]
    if head == "ko" and args and args[0] in ("build", "publish", "resolve", "apply", "create"):
        local = any(a in ("-L", "--local", "--push=false") for a in args)
        return [] if asks_help(args) else [build_match(f"ko {args[0]}", args, pushes=not local)]
    if head == "pack" and args[:1] == ["build"] and not asks_help(args):
        return [build_match("pack build", args, pushes="--publish" in args)]
    if (
        head in ("buildctl", "buildctl-daemonless.sh")
        and args[:1] == ["build"]
        and not asks_help(args)
    ):
        return [build_match("buildctl build", args, pushes="push=true" in " ".join(args))]
    if head == "depot" and args[:1] in (["build"], ["bake"]) and not asks_help(args):
        return [build_match(f"depot {args[0]}", args, pushes="--push" in args)]
    if head == "skaffold" and args[:1] in (["build"], ["run"], ["dev"]) and not asks_help(args):
        return [build_match(f"skaffold {args[0]}", args, pushes=True)]
    if head in ("bazel", "bazelisk") and args[:1] == ["run"]:
        targets = positionals(args[1:])
        if targets and re.search(r"push", targets[0].rsplit(":", 1)[-1]):
            return [build_match(f"bazel run {targets[0]}", args, pushes=True)]
        return []
    if head in ("mvn", "mvnw", "gradle", "gradlew"):
        return jvm_matches(head, args)
    if head in ("crane", "gcrane"):
        return crane_matches(args)
    if head == "skopeo":
        return skopeo_matches(args)
    if head == "regctl":
        return regctl_matches(args)
    if head == "oras" and args[:1] in (["cp"], ["copy"]):
        refs = refs_of(positionals(args[1:], ORAS_COPY)[:1])
        return [Match(Kind.PROMOTION, "oras copy", refs=refs)]
    if head == "cosign" and args[:1] == ["copy"]:
        refs = refs_of(positionals(args[1:], COSIGN_COPY)[:1])
        return [Match(Kind.PROMOTION, "cosign copy", refs=refs)]
    if head in ("kubectl", "oc") and args[:2] == ["set", "image"]:
        images = [a.split("=", 1)[1] for a in args[2:] if "=" in a and not a.startswith("-")]
        return [Match(Kind.PROMOTION, f"{head} set image", refs=refs_of(images))]
    if head == "helm" and args[:1] in (["upgrade"], ["install"]):
        return deploy.helm(args)
    if head == "kustomize":
        return deploy.kustomize(args)
    if head in ("gcloud", "az", "aws", "fly", "flyctl"):
        return deploy.cloud(head, args)
    if head in ("kubectl", "oc", "argocd"):
        return deploy.workloads(head, args)
    if head in ("yq", "sed"):
        return deploy.manifest_edit(head, args)
    if head == "digestgate":
        return digestgate_matches(args)
    if head == "gh" and args[:2] == ["release", "download"]:
        return [Match(Kind.CONSUME, "gh release download")]
    if head in ("curl", "wget", "http", "https", "xh", "gh"):
        return deploy.http_payload(head, args)
    return validation_matches(words)
