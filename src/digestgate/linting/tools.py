"""Command classifiers of the image tools, one function per tool family.

docker/podman/nerdctl (build, buildx, compose, run), kaniko, JVM image plugins, crane,
skopeo, regctl, helm and digestgate itself: each sees the words after the tool's name and
says what the command does (build, push, tag, promotion, capture). :func:`_builtin` in
:mod:`digestgate.linting.classify` dispatches to them; docs/lint.md lists every pattern.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from digestgate.linting.argv import after_globals, asks_help, positionals
from digestgate.linting.deploy import workloads
from digestgate.linting.match import ComposeUse, Kind, Match, Ref
from digestgate.linting.options import (
    COMPOSE,
    COMPOSE_UP,
    CRANE_COPY,
    DOCKER_RUN,
    IMAGETOOLS_CREATE,
    REGCTL_COPY,
    SKOPEO_COPY,
)
from digestgate.linting.testrunners import validation_inside, validation_matches

KANIKO_IMAGE: Final = "gcr.io/kaniko-project/executor"

_CAPTURE_FLAGS: Final = (
    "--metadata-file",
    "--iidfile",
    "--digest-file",
    "--digestfile",
    "--image-refs",
    "--image-name-with-digest-file",
    "--image-name-tag-with-digest-file",
)


def _has_capture_flag(args: list[str]) -> bool:
    return any(a.split("=", 1)[0] in _CAPTURE_FLAGS for a in args)


def build_match(what: str, args: list[str], *, pushes: bool) -> Match:
    tags: list[str] = []
    for i, word in enumerate(args):
        if word in ("-t", "--tag") and i + 1 < len(args):
            tags.append(args[i + 1])
        elif word.startswith("--tag="):
            tags.append(word.split("=", 1)[1])
    return Match(
        Kind.BUILD, what, pushes=pushes, captured=_has_capture_flag(args), tags=tuple(tags)
    )


def _option_values(args: list[str], names: tuple[str, ...]) -> tuple[str, ...]:
    """The values of an option that may repeat (``-f a.yml -f b.yml``, ``--file=a.yml``)."""
    values: list[str] = []
    for i, word in enumerate(args):
        if word in names and i + 1 < len(args):
            values.append(args[i + 1])
        elif word.startswith(tuple(f"{n}=" for n in names if n.startswith("--"))):
            values.append(word.split("=", 1)[1])
    return tuple(values)


def refs_of(texts: list[str]) -> tuple[Ref, ...]:
    return tuple(Ref(t) for t in texts)


def docker_matches(head: str, args: list[str]) -> list[Match]:
    if not args or asks_help(args):
        return []
    sub, rest = args[0], args[1:]
    if sub == "image" and rest:
        sub, rest = rest[0], rest[1:]
    if sub == "build":
        return [build_match(f"{head} build", rest, pushes="--push" in rest)]
    if sub == "buildx" and rest:
        return _buildx(head, rest)
    if sub == "compose":
        return compose_matches(f"{head} compose", rest)
    if sub == "push":
        return [Match(Kind.PUSH, f"{head} push", refs=refs_of(positionals(rest)[:1]))]
    if sub == "tag":
        pos = positionals(rest)
        if len(pos) >= 2:
            return [Match(Kind.TAG, f"{head} tag", refs=refs_of(pos[:1]), target=pos[1])]
        return []
    if sub == "service":
        return workloads("docker", args)
    if sub in ("load", "import"):
        return [Match(Kind.LOAD, f"{head} {sub}")]
    if sub == "stack" and rest[:1] == ["deploy"]:
        files = _option_values(rest[1:], ("-c", "--compose-file"))
        use = ComposeUse(files, (), builds=False)
        return [Match(Kind.PROMOTION, f"{head} stack deploy", compose=use)]
    if sub in ("stop", "rm", "kill") or (sub == "container" and rest[:1] in (["stop"], ["rm"])):
        names = positionals(rest[1:] if sub == "container" else rest, frozenset({"-t"}))
        return [Match(Kind.STOP, f"{head} {sub}", refs=refs_of(names))]
    if sub == "inspect" and "RepoDigests" in " ".join(rest):
        return [Match(Kind.CAPTURE, f"{head} inspect")]
    if sub in ("run", "exec", "container"):
        return _docker_run(head, sub, rest)
    return []


def _buildx(head: str, rest: list[str]) -> list[Match]:
    sub = rest[0]
    opts = rest[1:]
    if sub in ("build", "b"):
        pushes = "--push" in opts or any("push=true" in o or "type=registry" in o for o in opts)
        return [build_match(f"{head} buildx build", opts, pushes=pushes)]
    if sub == "bake":
        return [build_match(f"{head} buildx bake", opts, pushes="--push" in opts)]
    if sub == "imagetools" and opts[:1] == ["create"]:
        refs = refs_of(positionals(opts[1:], IMAGETOOLS_CREATE))
        return [Match(Kind.PROMOTION, f"{head} buildx imagetools create", refs=refs)]
    if sub == "imagetools" and opts[:1] == ["inspect"]:
        return [Match(Kind.CAPTURE, f"{head} buildx imagetools inspect")]
    return []


def compose_matches(what: str, args: list[str]) -> list[Match]:
    rest = after_globals(args, COMPOSE)
    if not rest or asks_help(rest):
        return []
    sub = rest[0]
    if sub == "build":
        return [build_match(f"{what} build", rest, pushes=False)]
    if sub == "up":
        builds = "--build" in rest
        files = _option_values(args, ("-f", "--file"))
        use = ComposeUse(files, tuple(positionals(rest[1:], COMPOSE_UP)), builds)
        matches = [Match(Kind.PROMOTION, f"{what} up", starts_services=True, compose=use)]
        if builds:
            built = build_match(f"{what} up --build", rest, pushes=False)
            matches.insert(0, replace(built, started=True))
        return matches
    if sub in ("down", "stop", "rm", "kill"):
        return [Match(Kind.STOP, f"{what} {sub}")]
    if sub == "push":
        return [Match(Kind.PUSH, f"{what} push")]
    if sub in ("run", "exec"):
        return validation_inside(rest[1:])
    return []


def _docker_run(head: str, sub: str, rest: list[str]) -> list[Match]:
    joined = " ".join(rest)
    for word in rest:
        if word.startswith(KANIKO_IMAGE):
            return [kaniko_match(rest)]
    matches = validation_inside(rest)
    if "docker.sock" in joined:
        matches.append(Match(Kind.OPAQUE, f"{head} {sub} with the Docker socket mounted"))
    if sub == "container" and rest[:1] == ["run"]:
        sub, rest = "run", rest[1:]
    if sub == "run":
        operands = positionals(rest, DOCKER_RUN)
        if operands:
            flags = {w for w in rest if w.startswith("-")}
            detached = bool(flags & {"-d", "--detach", "-itd", "-dit", "-id", "-di", "-td", "-dt"})
            long_lived = any(f.split("=", 1)[0] in ("--restart", "--name") for f in flags)
            run = Match(
                Kind.RUN,
                f"{head} run",
                refs=refs_of(operands[:1]),
                detached=detached,
                long_lived=long_lived,
            )
            matches.append(run)
    return matches


def kaniko_match(args: list[str]) -> Match:
    return build_match("kaniko executor", args, pushes="--no-push" not in args)


def jvm_matches(head: str, args: list[str]) -> list[Match]:
    goals = [a for a in args if not a.startswith("-")]
    for goal in goals:
        if goal.startswith("jib:build") or goal in (
            "jib",
            "spring-boot:build-image",
            "bootBuildImage",
        ):
            return [build_match(f"{head} {goal}", args, pushes=goal in ("jib", "jib:build"))]
    return validation_matches([head, *args])


def crane_matches(args: list[str]) -> list[Match]:
    sub = args[0] if args else ""
    pos = positionals(args[1:], CRANE_COPY)
    if sub in ("copy", "cp", "tag"):
        return [Match(Kind.PROMOTION, f"crane {sub}", refs=refs_of(pos[:1]))]
    if sub == "digest":
        return [Match(Kind.CAPTURE, "crane digest")]
    if sub in ("mutate", "append", "rebase", "flatten"):
        return [build_match(f"crane {sub}", args, pushes=True)]
    return []


def skopeo_matches(args: list[str]) -> list[Match]:
    sub = args[0] if args else ""
    if sub == "copy":
        pos = positionals(args[1:], SKOPEO_COPY)
        return [Match(Kind.PROMOTION, "skopeo copy", refs=refs_of(pos[:1]))]
    if sub == "inspect":
        return [Match(Kind.CAPTURE, "skopeo inspect")]
    return []


def regctl_matches(args: list[str]) -> list[Match]:
    if args[:1] != ["image"] or len(args) < 2:
        return []
    sub = args[1]
    if sub in ("copy", "cp"):
        refs = refs_of(positionals(args[2:], REGCTL_COPY)[:1])
        return [Match(Kind.PROMOTION, "regctl image copy", refs=refs)]
    if sub == "digest":
        return [Match(Kind.CAPTURE, "regctl image digest")]
    if sub == "mod":
        return [build_match("regctl image mod", args, pushes=True)]
    return []


def digestgate_matches(args: list[str]) -> list[Match]:
    sub = args[0] if args else ""
    if sub == "promote":
        return [Match(Kind.PROMOTION, "digestgate promote"), Match(Kind.CONSUME, "promote")]
    if sub in ("verify", "gate"):
        return [Match(Kind.CONSUME, f"digestgate {sub}")]
    if sub == "capture":
        return [Match(Kind.CAPTURE, "digestgate capture")]
    if args[:2] == ["attest", "test-result"]:
        return [Match(Kind.VALIDATION, "digestgate attest test-result")]
    return []
