"""Classify ``uses:`` actions: known builds, pushes, tests and harmless helpers, builds
inferred from their inputs, and digestgate's own action. Every name here is in docs/lint.md.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Final

from digestgate.linting.config import LintConfig
from digestgate.linting.deploy import EXPRESSION, role_of
from digestgate.linting.match import Kind, Match, Ref
from digestgate.linting.tools import KANIKO_IMAGE, digestgate_matches

#: Actions known not to build, push or deploy images (docs/lint.md lists them).
HARMLESS_ACTIONS: Final = (
    "actions/checkout",
    "actions/upload-artifact",
    "actions/download-artifact",
    "forgejo/upload-artifact",
    "forgejo/download-artifact",
    "christopherhx/gitea-upload-artifact",
    "christopherhx/gitea-download-artifact",
    "actions/cache",
    "actions/cache/restore",
    "actions/cache/save",
    "actions/setup-*",
    "actions/attest-build-provenance",
    "actions/attest",
    "actions/create-release",
    "actions/upload-release-asset",
    "docker/login-action",
    "docker/setup-buildx-action",
    "docker/setup-qemu-action",
    "docker/metadata-action",
    "docker/setup-compose-action",
    "docker/setup-docker-action",
    "sigstore/cosign-installer",
    "imjasonh/setup-crane",
    "oras-project/setup-oras",
    "regclient/actions/regctl-installer",
    "ko-build/setup-ko",
    "imranismail/setup-kustomize",
    "buildpacks/github-actions/setup-pack",
    "depot/setup-action",
    "azure/setup-helm",
    "azure/setup-kubectl",
    "azure/login",
    "azure/docker-login",
    "azure/k8s-set-context",
    "azure/aks-set-context",
    "aws-actions/configure-aws-credentials",
    "aws-actions/amazon-ecr-login",
    "google-github-actions/auth",
    "google-github-actions/setup-gcloud",
    "google-github-actions/get-gke-credentials",
    "webfactory/ssh-agent",
    "shimataro/ssh-key-action",
    "appleboy/scp-action",
    "pnpm/action-setup",
    "astral-sh/setup-uv",
    "snok/install-poetry",
    "dtolnay/rust-toolchain",
    "actions-rust-lang/setup-rust-toolchain",
    "swatinem/rust-cache",
    "ruby/setup-ruby",
    "shivammathur/setup-php",
    "oven-sh/setup-bun",
    "denoland/setup-deno",
    "arduino/setup-task",
    "codecov/codecov-action",
    "softprops/action-gh-release",
    "dorny/paths-filter",
    "github/codeql-action/*",
    "aquasecurity/trivy-action",
    "anchore/scan-action",
    "anchore/sbom-action",
    "slackapi/slack-github-action",
)
#: Known image builds, and whether they push: ``input`` (when ``push``/``outputs`` say so),
#: ``always`` (unless ``push: false``) or ``never`` (a separate push action publishes).
BUILD_ACTIONS: Final[dict[str, str]] = {
    "docker/build-push-action": "input",
    "docker/bake-action": "input",
    "depot/build-push-action": "input",
    "depot/bake-action": "input",
    "int128/kaniko-action": "input",
    "redhat-actions/buildah-build": "never",
    "aevea/action-kaniko": "always",
    "mr-smithers-excellent/docker-build-push": "always",
    "elgohr/publish-docker-github-action": "always",
    "whoan/docker-build-with-cache-action": "always",
    "macbre/push-to-ghcr": "always",
    "vaultvulp/gp-docker-action": "always",
}
#: Step outputs of build actions that hold the digest of the image they built.
DIGEST_OUTPUTS: Final[dict[str, tuple[str, ...]]] = {
    "docker/build-push-action": ("digest", "imageid"),
    "depot/build-push-action": ("digest", "imageid"),
    "int128/kaniko-action": ("digest",),
    "redhat-actions/push-to-registry": ("digest",),
}
#: Step outputs that carry the digest inside JSON metadata (capture, not a reference).
METADATA_OUTPUTS: Final[dict[str, tuple[str, ...]]] = {
    "docker/build-push-action": ("metadata",),
    "docker/bake-action": ("metadata",),
    "depot/build-push-action": ("metadata",),
    "depot/bake-action": ("metadata",),
}
#: Deploy actions and the inputs that hold the image they deploy (tags and digests too).
DEPLOY_ACTIONS: Final[dict[str, tuple[str, ...]]] = {
    "aws-actions/amazon-ecs-render-task-definition": ("image",),
    "aws-actions/amazon-ecs-deploy-task-definition": (),
    "google-github-actions/deploy-cloudrun": ("image",),
    "google-github-actions/deploy-gke": ("image",),
    "azure/webapps-deploy": ("images",),
    "azure/container-apps-deploy-action": ("imagetodeploy",),
    "azure/aci-deploy": ("image",),
    "azure/k8s-deploy": ("images",),
    "azure/functions-container-action": ("image",),
}
#: Inputs of deploy actions that build from source instead of taking an image.
_SOURCE_DEPLOY_INPUTS: Final = frozenset({"source", "appsourcepath"})
#: Actions that run a shell script on another host over ssh, and the inputs holding it.
SSH_ACTIONS: Final[dict[str, tuple[str, ...]]] = {
    "appleboy/ssh-action": ("script",),
    "garygrossgarten/github-action-ssh": ("command",),
    "fifsky/ssh-action": ("command",),
    "d3rhase/ssh-command-action": ("command",),
    "jderusse/ga-ssh": ("script",),
    "tiyee/action-ssh": ("command",),
    "nekiro/ssh-job": ("command",),
    "cross-the-world/ssh-pipeline": ("script",),
    "easingthemes/ssh-deploy": ("script-before", "script-after"),
}
_DEPLOY_NAME: Final = re.compile(
    r"deploy|release|rollout|ecs|k8s|kube|helm|cloud-?run|webapp|container-?app|argo|fly"
)
_IMAGE_KEYS: Final = frozenset(
    {"image", "images", "image-uri", "image-url", "imagetodeploy", "container-image",
     "docker-image", "image-tag", "image-digest"}
)  # fmt: skip
#: one image of a list input: words separated by spaces, commas or lines; ${{ }} kept whole
_WORDS: Final = re.compile(rf"(?:{EXPRESSION}|[^\s,])+")
PUSH_ACTIONS: Final = ("redhat-actions/push-to-registry",)
VALIDATION_ACTIONS: Final = ("cypress-io/github-action",)
#: Hosts whose ``https://HOST/owner/repo@ref`` references mirror the same actions.
MIRROR_HOSTS: Final = ("github.com", "gitea.com", "code.forgejo.org", "data.forgejo.org")
#: digestgate's own composite action (action.yml at the repository root): its ``command``
#: input names the subcommand it runs, so it is classified like the command line would be.
DIGESTGATE_ACTIONS: Final = ("digestgate/digestgate",)

#: Inputs that describe what to build, and what to build it as (generic build inference).
_SOURCE_INPUTS: Final = frozenset(
    {"context", "dockerfile", "build-args", "buildargs", "platforms", "cache-from",
     "cache-to", "targets", "containerfile", "containerfiles"}
)  # fmt: skip
_IMAGE_INPUTS: Final = frozenset(
    {"push", "tags", "tag", "image", "image-name", "images", "registry", "destination",
     "destinations", "repository", "outputs"}
)  # fmt: skip


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


def truthy(value: str | None) -> bool:
    """An action input that YAML/Actions would read as true (``false``/``0``/empty are not)."""
    if value is None:
        return False
    text = value.strip().lower()
    return text not in ("", "false", "0", "no") and not text.startswith("false")


def _inputs(with_: dict[str, str]) -> dict[str, str]:
    return {k.lower().replace("_", "-"): v for k, v in with_.items()}


def _build_pushes(policy: str, inputs: dict[str, str]) -> bool:
    outputs = inputs.get("outputs", "").replace(" ", "")
    if truthy(inputs.get("load")) and "push" not in inputs:
        return False
    if policy == "never":
        return False
    if "push" in inputs:
        return truthy(inputs["push"]) or "push=true" in outputs
    if policy == "always":
        return True
    return "push=true" in outputs or "type=registry" in outputs


def _inferred_build(name: str, inputs: dict[str, str]) -> Match | None:
    """An unknown action whose inputs describe an image build (context/Dockerfile + tags)."""
    source = set(inputs) & _SOURCE_INPUTS
    if "file" in inputs and re.search(r"(?i)(docker|container)file", inputs["file"]):
        source.add("file")
    if not source or not set(inputs) & _IMAGE_INPUTS:
        return None
    pushes = _build_pushes("input" if "push" in inputs else "always", inputs)
    what = f"{name} (an image build, judged from its inputs)"
    return Match(Kind.BUILD, what, pushes=pushes, tags=_tags(inputs))


def _tags(inputs: dict[str, str]) -> tuple[str, ...]:
    """The image names a build action gives its result (``tags``, one per line or comma)."""
    text = inputs.get("tags") or inputs.get("tag") or ""
    return tuple(t.strip() for t in re.split(r"[\n,]", text) if t.strip())


def classify_action(ref: ActionRef, with_: dict[str, str], config: LintConfig) -> list[Match]:
    """Classify a remote or docker action; local ones are expanded by the caller."""
    if ref.kind == "docker":
        if ref.name.startswith(KANIKO_IMAGE):
            pushes = "--no-push" not in with_.get("args", "")
            return [Match(Kind.BUILD, "kaniko executor image", pushes=pushes)]
        return [Match(Kind.OPAQUE, f"container action {ref.raw}")]
    name = ref.name
    inputs = _inputs(with_)
    if name in DIGESTGATE_ACTIONS:
        return _digestgate_action(with_)
    if name in BUILD_ACTIONS:
        pushes = _build_pushes(BUILD_ACTIONS[name], inputs)
        return [Match(Kind.BUILD, name, pushes=pushes, tags=_tags(inputs))]
    if name in PUSH_ACTIONS:
        return [Match(Kind.PUSH, name)]
    if name in SSH_ACTIONS:
        return []  # its script is read and classified command by command (facts)
    deployed = _deploy(name, inputs)
    if deployed:
        return deployed
    if name in VALIDATION_ACTIONS:
        return [Match(Kind.VALIDATION, name)]
    if name.endswith("download-artifact"):
        wanted = (with_.get("name", "") + " " + with_.get("path", "")).lower()
        return [Match(Kind.CONSUME, name)] if "release" in wanted else []
    if _matches(name, HARMLESS_ACTIONS) or _matches(name, config.harmless_actions):
        return []
    inferred = _inferred_build(name, inputs)
    if inferred is not None:
        return [inferred]
    return [Match(Kind.OPAQUE, f"action {ref.raw}")]


def _deploy(name: str, inputs: dict[str, str]) -> list[Match]:
    """A deploy action: its image inputs are what goes live (a tag there is DG102)."""
    if name in DEPLOY_ACTIONS:
        keys = DEPLOY_ACTIONS[name]
    elif _DEPLOY_NAME.search(name.rsplit("/", 1)[-1]) and set(inputs) & _IMAGE_KEYS:
        keys = tuple(sorted(set(inputs) & _IMAGE_KEYS))
    else:
        return []
    refs = tuple(
        Ref(image, role_of(key)) for key in keys for image in _WORDS.findall(inputs.get(key, ""))
    )
    matches = [Match(Kind.PROMOTION, name, refs=refs)]
    if set(inputs) & _SOURCE_DEPLOY_INPUTS:
        matches.insert(0, Match(Kind.BUILD, f"{name} (builds from source)", pushes=True))
    return matches


def _digestgate_action(with_: dict[str, str]) -> list[Match]:
    command = with_.get("command", "").strip()
    if command.startswith("attest-"):
        return digestgate_matches(["attest", command.removeprefix("attest-")])
    return digestgate_matches([command])
