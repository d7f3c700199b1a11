"""Classify commands and actions: image build, validation, promotion, push, capture, opaque.

Every pattern here is listed in docs/lint.md. Classification is pure: it sees words of a
command (from :mod:`digestgate.lint.shell`) or an action name with its ``with:`` inputs,
and the repository's :class:`~digestgate.lint.config.LintConfig` extensions.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from digestgate.lint.config import LintConfig


class Kind(StrEnum):
    """What a command or action does, as far as the release path is concerned."""

    BUILD = "build"
    VALIDATION = "validation"
    PROMOTION = "promotion"
    PUSH = "push"  # docker push and friends: publication in a build job, promotion elsewhere
    TAG = "tag"  # docker tag SRC DST: promotion when the job builds nothing
    CAPTURE = "capture"  # passes a digest on
    CONSUME = "consume"  # consumes a validated release (digestgate promote/verify/gate)
    OPAQUE = "opaque"  # cannot be inspected


@dataclass(frozen=True, slots=True)
class Ref:
    """An image reference a promotion uses; ``role`` is image, tag or digest (helm values)."""

    text: str
    role: str = "image"


@dataclass(frozen=True, slots=True)
class Match:
    """One classification of a command or action."""

    kind: Kind
    what: str
    refs: tuple[Ref, ...] = ()
    pushes: bool = False
    captured: bool = False
    target: str | None = None
    #: starts services (compose up): a test environment inside a validation job
    starts_services: bool = False
    #: names a build gives its image (-t/--tag), to tell which later push publishes it
    tags: tuple[str, ...] = ()


#: Actions known not to build, push or deploy images (docs/lint.md lists them).
HARMLESS_ACTIONS: Final = (
    "actions/checkout",
    "actions/upload-artifact",
    "actions/download-artifact",
    "actions/cache",
    "actions/cache/restore",
    "actions/cache/save",
    "actions/setup-*",
    "actions/attest-build-provenance",
    "actions/attest",
    "docker/login-action",
    "docker/setup-buildx-action",
    "docker/setup-qemu-action",
    "docker/metadata-action",
    "sigstore/cosign-installer",
    "imjasonh/setup-crane",
    "azure/setup-helm",
    "azure/setup-kubectl",
)
BUILD_ACTIONS: Final = (
    "docker/build-push-action",
    "docker/bake-action",
    "redhat-actions/buildah-build",
)
PUSH_ACTIONS: Final = ("redhat-actions/push-to-registry",)
VALIDATION_ACTIONS: Final = ("cypress-io/github-action",)
#: Hosts whose ``https://HOST/owner/repo@ref`` references mirror the same actions.
MIRROR_HOSTS: Final = ("github.com", "gitea.com", "code.forgejo.org", "data.forgejo.org")
KANIKO_IMAGE: Final = "gcr.io/kaniko-project/executor"

_WRAPPERS: Final = frozenset({"sudo", "env", "time", "nice", "nohup", "command", "exec", "stdbuf"})
_RUNNERS: Final = frozenset(
    {"poetry", "uv", "pipenv", "pdm", "hatch", "rye", "bundle", "npx", "pnpx", "bunx", "xvfb-run"}
)
_DOCKER_GLOBAL_VALUE: Final = frozenset(
    {
        "-H",
        "--host",
        "-c",
        "--context",
        "--config",
        "-l",
        "--log-level",
        "--tlscacert",
        "--tlscert",
        "--tlskey",
    }
)
_COMPOSE_VALUE: Final = frozenset(
    {
        "-f",
        "--file",
        "-p",
        "--project-name",
        "--profile",
        "--env-file",
        "--project-directory",
        "--ansi",
        "--progress",
        "--parallel",
    }
)
_SCRIPT_SUFFIXES: Final = (".sh", ".bash", ".ksh", ".zsh")
_CAPTURE_FLAGS: Final = (
    "--metadata-file",
    "--iidfile",
    "--digest-file",
    "--digestfile",
    "--image-refs",
    "--image-name-with-digest-file",
    "--image-name-tag-with-digest-file",
)


@dataclass(frozen=True, slots=True)
class ActionRef:
    """A parsed ``uses:`` value: local (``./path``), docker (``docker://image``) or remote."""

    kind: str
    name: str
    raw: str


def action_ref(uses: str) -> ActionRef:
    """Parse a ``uses:`` value; remote names are lower-cased without ``@ref``.

    ``https://HOST/owner/repo@ref`` (Gitea, Forgejo) keeps its host in the name unless the
    host is a known mirror of the public actions, so an action from an unknown host never
    matches the known lists.
    """
    raw = uses.strip()
    if raw.startswith("./") or raw == ".":
        return ActionRef("local", raw, raw)
    if raw.startswith("docker://"):
        return ActionRef("docker", raw[len("docker://") :], raw)
    name = raw.split("@", 1)[0].lower().rstrip("/")
    match = re.match(r"https?://([^/]+)/(.*)", name)
    if match:
        host, rest = match.groups()
        name = rest if host in MIRROR_HOSTS else f"{host}/{rest}"
    return ActionRef("remote", name, raw)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _truthy(value: str | None) -> bool:
    if value is None:
        return False
    text = value.strip().lower()
    return text not in ("", "false", "0", "no") and not text.startswith("false")


def classify_action(ref: ActionRef, with_: dict[str, str], config: LintConfig) -> list[Match]:
    """Classify a remote or docker action; local ones are expanded by the caller."""
    if ref.kind == "docker":
        if ref.name.startswith(KANIKO_IMAGE):
            return [
                Match(
                    Kind.BUILD,
                    "kaniko executor image",
                    pushes="--no-push" not in with_.get("args", ""),
                )
            ]
        return [Match(Kind.OPAQUE, f"container action {ref.raw}")]
    name = ref.name
    if name in DIGESTGATE_ACTIONS:
        return _digestgate_action(with_)
    if name in BUILD_ACTIONS:
        pushes = (
            _truthy(with_.get("push"))
            or "push=true" in with_.get("outputs", "").replace(" ", "")
            or "type=registry" in with_.get("outputs", "")
        )
        return [Match(Kind.BUILD, name, pushes=pushes)]
    if name in PUSH_ACTIONS:
        return [Match(Kind.PUSH, name)]
    if name in VALIDATION_ACTIONS:
        return [Match(Kind.VALIDATION, name)]
    if name == "actions/download-artifact":
        wanted = (with_.get("name", "") + " " + with_.get("path", "")).lower()
        return [Match(Kind.CONSUME, name)] if "release" in wanted else []
    if _matches(name, HARMLESS_ACTIONS) or _matches(name, config.harmless_actions):
        return []
    return [Match(Kind.OPAQUE, f"action {ref.raw}")]


#: digestgate's own composite action (action.yml at the repository root): its ``command``
#: input names the subcommand it runs, so it is classified like the command line would be.
DIGESTGATE_ACTIONS: Final = ("digestgate/digestgate",)


def _digestgate_action(with_: dict[str, str]) -> list[Match]:
    command = with_.get("command", "").strip()
    if command.startswith("attest-"):
        return _digestgate(["attest", command.removeprefix("attest-")])
    return _digestgate([command])


def is_lane(name: str | None, config: LintConfig) -> bool:
    """Whether a job or step name is one of the configured validation lanes."""
    return bool(name) and name in config.lanes


def _base(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def normalize(argv: tuple[str, ...]) -> tuple[str, ...]:
    """Drop wrappers that only change how a command runs (sudo, env, timeout, uv run...)."""
    words = list(argv)
    changed = True
    while words and changed:
        changed = False
        head = _base(words[0])
        if head in _WRAPPERS:
            words.pop(0)
            while words and (words[0].startswith("-") or re.fullmatch(r"\w+=.*", words[0])):
                option = words.pop(0)
                if head == "sudo" and option in ("-u", "-g", "-C") and words:
                    words.pop(0)
            changed = True
        elif head == "timeout":
            words.pop(0)
            while words and words[0].startswith("-"):
                words.pop(0)
            if words:
                words.pop(0)  # the duration
            changed = True
        elif head in _RUNNERS:
            words.pop(0)
            if words and words[0] in ("run", "exec"):
                words.pop(0)
            while words and words[0].startswith("-"):
                words.pop(0)
            changed = True
        elif head in ("yarn", "pnpm") and len(words) > 1 and words[1] in ("exec", "dlx"):
            del words[:2]
            changed = True
    return tuple(words)


def _positionals(args: list[str], value_options: frozenset[str] = frozenset()) -> list[str]:
    out: list[str] = []
    skip = False
    for word in args:
        if skip:
            skip = False
            continue
        if word.startswith("-") and word != "-":
            if word in value_options:
                skip = True
            continue
        out.append(word)
    return out


def _after_globals(args: list[str], value_options: frozenset[str]) -> list[str]:
    """``args`` with leading global options (and their values) removed."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in value_options else 1
    return args[i:]


def _help(args: list[str]) -> bool:
    return any(a in ("--help", "-h", "help") for a in args)


def _has_capture_flag(args: list[str]) -> bool:
    return any(a.split("=", 1)[0] in _CAPTURE_FLAGS for a in args)


def _build(what: str, args: list[str], *, pushes: bool) -> Match:
    tags: list[str] = []
    for i, word in enumerate(args):
        if word in ("-t", "--tag") and i + 1 < len(args):
            tags.append(args[i + 1])
        elif word.startswith("--tag="):
            tags.append(word.split("=", 1)[1])
    return Match(
        Kind.BUILD, what, pushes=pushes, captured=_has_capture_flag(args), tags=tuple(tags)
    )


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
    head = _base(words[0])
    args = words[1:]
    if head in ("docker", "podman", "nerdctl"):
        return _docker(head, _after_globals(args, _DOCKER_GLOBAL_VALUE))
    if head in ("docker-compose", "podman-compose"):
        return _compose(head, args)
    if head == "buildah":
        sub = args[0] if args else ""
        if _help(args):
            return []
        if sub in ("bud", "build", "build-using-dockerfile", "commit"):
            return [_build(f"buildah {sub}", args, pushes=False)]
        if sub == "push":
            value_opts = frozenset(
                {
                    "--digestfile",
                    "--authfile",
                    "--creds",
                    "-f",
                    "--format",
                    "--cert-dir",
                    "--sign-by",
                    "--retry",
                    "--retry-delay",
                    "--compression-format",
                }
            )
            pushed = Match(
                Kind.PUSH, "buildah push", refs=_refs(_positionals(args[1:], value_opts)[:1])
            )
            if any(a.split("=", 1)[0] == "--digestfile" for a in args):
                return [pushed, Match(Kind.CAPTURE, "buildah push --digestfile")]
            return [pushed]
        return []
    if words[0].endswith("/kaniko/executor") or (head == "executor" and "/" in words[0]):
        return [] if _help(args) else [_kaniko(args)]
    if head == "ko" and args and args[0] in ("build", "publish", "resolve", "apply", "create"):
        local = any(a in ("-L", "--local", "--push=false") for a in args)
        return [] if _help(args) else [_build(f"ko {args[0]}", args, pushes=not local)]
    if head == "pack" and args[:1] == ["build"] and not _help(args):
        return [_build("pack build", args, pushes="--publish" in args)]
    if head in ("buildctl", "buildctl-daemonless.sh") and args[:1] == ["build"] and not _help(args):
        return [_build("buildctl build", args, pushes="push=true" in " ".join(args))]
    if head == "depot" and args[:1] in (["build"], ["bake"]) and not _help(args):
        return [_build(f"depot {args[0]}", args, pushes="--push" in args)]
    if head == "skaffold" and args[:1] in (["build"], ["run"], ["dev"]) and not _help(args):
        return [_build(f"skaffold {args[0]}", args, pushes=True)]
    if head in ("bazel", "bazelisk") and args[:1] == ["run"]:
        targets = _positionals(args[1:])
        if targets and re.search(r"push", targets[0].rsplit(":", 1)[-1]):
            return [_build(f"bazel run {targets[0]}", args, pushes=True)]
        return []
    if head in ("mvn", "mvnw", "gradle", "gradlew"):
        return _jvm(head, args)
    if head in ("crane", "gcrane"):
        return _crane(args)
    if head == "skopeo":
        return _skopeo(args)
    if head == "regctl":
        return _regctl(args)
    if head == "oras" and args[:1] in (["cp"], ["copy"]):
        return [Match(Kind.PROMOTION, "oras copy", refs=_refs(_positionals(args[1:])[:1]))]
    if head == "cosign" and args[:1] == ["copy"]:
        return [Match(Kind.PROMOTION, "cosign copy", refs=_refs(_positionals(args[1:])[:1]))]
    if head == "kubectl" and args[:2] == ["set", "image"]:
        refs = [a.split("=", 1)[1] for a in args[2:] if "=" in a and not a.startswith("-")]
        return [Match(Kind.PROMOTION, "kubectl set image", refs=_refs(refs))]
    if head == "helm" and args[:1] in (["upgrade"], ["install"]):
        return _helm(args)
    if head == "digestgate":
        return _digestgate(args)
    if head == "gh" and args[:2] == ["release", "download"]:
        return [Match(Kind.CONSUME, "gh release download")]
    return _validation(words)


def _refs(texts: list[str]) -> tuple[Ref, ...]:
    return tuple(Ref(t) for t in texts)


def _docker(head: str, args: list[str]) -> list[Match]:
    if not args or _help(args):
        return []
    sub, rest = args[0], args[1:]
    if sub == "image" and rest:
        sub, rest = rest[0], rest[1:]
    if sub == "build":
        return [_build(f"{head} build", rest, pushes="--push" in rest)]
    if sub == "buildx" and rest:
        return _buildx(head, rest)
    if sub == "compose":
        return _compose(f"{head} compose", rest)
    if sub == "push":
        return [Match(Kind.PUSH, f"{head} push", refs=_refs(_positionals(rest)[:1]))]
    if sub == "tag":
        pos = _positionals(rest)
        if len(pos) >= 2:
            return [Match(Kind.TAG, f"{head} tag", refs=_refs(pos[:1]), target=pos[1])]
        return []
    if sub == "stack" and rest[:1] == ["deploy"]:
        return [Match(Kind.PROMOTION, f"{head} stack deploy")]
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
        return [_build(f"{head} buildx build", opts, pushes=pushes)]
    if sub == "bake":
        return [_build(f"{head} buildx bake", opts, pushes="--push" in opts)]
    if sub == "imagetools" and opts[:1] == ["create"]:
        value_opts = frozenset(
            {
                "-t",
                "--tag",
                "-f",
                "--file",
                "--annotation",
                "--builder",
                "--platform",
                "-p",
                "--progress",
            }
        )
        return [
            Match(
                Kind.PROMOTION,
                f"{head} buildx imagetools create",
                refs=_refs(_positionals(opts[1:], value_opts)),
            )
        ]
    if sub == "imagetools" and opts[:1] == ["inspect"]:
        return [Match(Kind.CAPTURE, f"{head} buildx imagetools inspect")]
    return []


def _compose(what: str, args: list[str]) -> list[Match]:
    rest = _after_globals(args, _COMPOSE_VALUE)
    if not rest or _help(rest):
        return []
    sub = rest[0]
    if sub == "build":
        return [_build(f"{what} build", rest, pushes=False)]
    if sub == "up":
        matches = [Match(Kind.PROMOTION, f"{what} up", starts_services=True)]
        if "--build" in rest:
            matches.insert(0, _build(f"{what} up --build", rest, pushes=False))
        return matches
    if sub == "push":
        return [Match(Kind.PUSH, f"{what} push")]
    if sub in ("run", "exec"):
        return _validation_inside(rest[1:])
    return []


def _docker_run(head: str, sub: str, rest: list[str]) -> list[Match]:
    joined = " ".join(rest)
    for word in rest:
        if word.startswith(KANIKO_IMAGE):
            return [_kaniko(rest)]
    matches = _validation_inside(rest)
    if "docker.sock" in joined:
        matches.append(Match(Kind.OPAQUE, f"{head} {sub} with the Docker socket mounted"))
    return matches


def _kaniko(args: list[str]) -> Match:
    return _build("kaniko executor", args, pushes="--no-push" not in args)


def _jvm(head: str, args: list[str]) -> list[Match]:
    goals = [a for a in args if not a.startswith("-")]
    for goal in goals:
        if goal.startswith("jib:build") or goal in (
            "jib",
            "spring-boot:build-image",
            "bootBuildImage",
        ):
            return [_build(f"{head} {goal}", args, pushes=goal in ("jib", "jib:build"))]
    return _validation([head, *args])


def _crane(args: list[str]) -> list[Match]:
    sub = args[0] if args else ""
    pos = _positionals(args[1:], frozenset({"--platform", "-t", "--tag", "-o", "--output"}))
    if sub in ("copy", "cp", "tag"):
        return [Match(Kind.PROMOTION, f"crane {sub}", refs=_refs(pos[:1]))]
    if sub == "digest":
        return [Match(Kind.CAPTURE, "crane digest")]
    if sub in ("mutate", "append", "rebase", "flatten"):
        return [_build(f"crane {sub}", args, pushes=True)]
    return []


def _skopeo(args: list[str]) -> list[Match]:
    sub = args[0] if args else ""
    if sub == "copy":
        value_opts = frozenset(
            {
                "--src-creds",
                "--dest-creds",
                "--authfile",
                "-f",
                "--format",
                "--src-authfile",
                "--dest-authfile",
                "--override-arch",
                "--override-os",
                "--multi-arch",
                "--sign-by",
            }
        )
        pos = _positionals(args[1:], value_opts)
        return [Match(Kind.PROMOTION, "skopeo copy", refs=_refs(pos[:1]))]
    if sub == "inspect":
        return [Match(Kind.CAPTURE, "skopeo inspect")]
    return []


def _regctl(args: list[str]) -> list[Match]:
    if args[:1] != ["image"] or len(args) < 2:
        return []
    sub = args[1]
    if sub in ("copy", "cp"):
        return [Match(Kind.PROMOTION, "regctl image copy", refs=_refs(_positionals(args[2:])[:1]))]
    if sub == "digest":
        return [Match(Kind.CAPTURE, "regctl image digest")]
    if sub == "mod":
        return [_build("regctl image mod", args, pushes=True)]
    return []


def _helm(args: list[str]) -> list[Match]:
    if "image" not in " ".join(args).lower():
        return []
    refs: list[Ref] = []
    for i, word in enumerate(args):
        value = None
        if word in ("--set", "--set-string") and i + 1 < len(args):
            value = args[i + 1]
        elif word.startswith(("--set=", "--set-string=")):
            value = word.split("=", 1)[1]
        if value is None:
            continue
        for pair in value.split(","):
            key, _, val = pair.partition("=")
            low = key.lower()
            if "image" not in low:
                continue
            if low.endswith("tag"):
                refs.append(Ref(val, "tag"))
            elif low.endswith("digest"):
                refs.append(Ref(val, "digest"))
            elif not low.endswith(("repository", "registry", "pullpolicy", "name")):
                refs.append(Ref(val))
    return [Match(Kind.PROMOTION, f"helm {args[0]}", refs=tuple(refs))]


def _digestgate(args: list[str]) -> list[Match]:
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


# ---------------------------------------------------------------- validation (test runners)

_SIMPLE_RUNNERS: Final = frozenset(
    {
        "pytest",
        "py.test",
        "tox",
        "nox",
        "jest",
        "vitest",
        "mocha",
        "ava",
        "karma",
        "rspec",
        "phpunit",
        "ctest",
        "bats",
        "behave",
        "robot",
        "newman",
        "k6",
    }
)
_SUB_RUNNERS: Final = {
    "go": ("test",),
    "cargo": ("test", "nextest"),
    "playwright": ("test",),
    "cypress": ("run",),
    "dotnet": ("test",),
    "deno": ("test",),
    "bun": ("test",),
    "swift": ("test",),
    "mix": ("test",),
}
_PY_MODULES: Final = frozenset({"pytest", "unittest", "tox", "nox"})


def _is_runner(words: list[str]) -> str | None:
    if not words:
        return None
    head = _base(words[0])
    args = words[1:]
    if head in _SIMPLE_RUNNERS:
        return head
    if head in _SUB_RUNNERS and args[:1] and args[0] in _SUB_RUNNERS[head]:
        return f"{head} {args[0]}"
    if re.fullmatch(r"python[0-9.]*", head) and len(args) >= 2 and args[0] == "-m":
        return f"python -m {args[1]}" if args[1] in _PY_MODULES else None
    if head in ("npm", "yarn", "pnpm"):
        if args[:1] in (["test"], ["t"]) or (
            args[:1] == ["run"] and len(args) > 1 and args[1].startswith("test")
        ):
            return f"{head} {' '.join(args[:2])}".strip()
        if head != "npm" and args[:1] and args[0].startswith("test"):
            return f"{head} {args[0]}"
        return None
    if head == "make":
        targets = [a for a in args if not a.startswith("-") and "=" not in a]
        if any(t.startswith("test") or t == "check" for t in targets):
            return "make " + " ".join(targets)
        return None
    if head in ("gradle", "gradlew", "mvn", "mvnw"):
        goals = {a.split(":")[-1] for a in args if not a.startswith("-")}
        if goals & {"test", "check", "verify", "integrationTest"}:
            return f"{head} {' '.join(sorted(goals & {'test', 'check', 'verify'}))}".strip()
    return None


def _validation(words: list[str]) -> list[Match]:
    runner = _is_runner(words)
    return [Match(Kind.VALIDATION, runner)] if runner else []


def _validation_inside(words: list[str]) -> list[Match]:
    """A test runner anywhere inside ``docker run IMAGE ...`` / ``compose run SERVICE ...``."""
    for i in range(len(words)):
        runner = _is_runner(list(normalize(tuple(words[i:]))))
        if runner:
            return [Match(Kind.VALIDATION, runner)]
    return []


def script_ref(argv: tuple[str, ...]) -> str | None:
    """The repository script a command runs, if it names one by relative path.

    ``./ci/build.sh``, ``ci/build.sh``, ``bash ci/build.sh``, ``source ./env.sh``: the path
    as written. Absolute paths, variables and bare command names are not repository scripts.
    """
    words = normalize(argv)
    if not words:
        return None
    head = _base(words[0])
    if head in _SHELLS:
        if any(w.startswith("-") and "c" in w[1:] and not w.startswith("--") for w in words):
            return None
        rest = [w for w in words[1:] if not w.startswith("-")]
        candidate = rest[0] if rest else ""
    else:
        candidate = words[0]
        if not (candidate.startswith("./") or candidate.endswith(_SCRIPT_SUFFIXES)):
            return None
    if not candidate or candidate.startswith(("/", "~", "$")) or "${{" in candidate:
        return None
    return candidate


_SHELLS: Final = frozenset({"bash", "sh", "zsh", "dash", "ksh", "source", "."})
