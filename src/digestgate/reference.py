"""Image locations: registry references and OCI image layout references (pure parsing).

Grammar (distribution reference, OCI distribution-spec 1.1 section "Pulling manifests"):

* registry: ``HOST[:PORT]/REPO[:TAG][@DIGEST]``. A first component without ``.`` or ``:``
  that is not ``localhost`` is a Docker Hub path: ``alpine`` is ``docker.io/library/alpine``.
* layout: ``oci:DIR[:TAG][@DIGEST]``. The digest is split off at the last ``@``; a tag is the
  text after the last ``:`` of the final path segment. One layout directory is one repository.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, replace
from typing import Final

from digestgate.digest import Digest
from digestgate.errors import InvalidReferenceError, UsageError

DOCKER_HUB: Final = "docker.io"
_HUB_ALIASES: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_COMPONENT: Final = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_COMPONENT_RE: Final = re.compile(_COMPONENT)
_REPOSITORY_RE: Final = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_HOST_RE: Final = re.compile(
    r"(?:(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
    r"(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*"
    r"|\[[0-9A-Fa-f:.]+\])"
    r"(?::[0-9]{1,5})?"
)
TAG_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
ARTIFACT_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: What str.isspace() calls whitespace (``\s`` on str patterns is the same set), and C0 controls.
_SPACE_OR_CONTROL: Final = re.compile(r"[\s\x00-\x1f]")
_MAX_NAME: Final = 255


def _bad(text: str, reason: str, hint: str | None = None) -> InvalidReferenceError:
    shown = text if len(text) <= 120 else text[:117] + "..."
    return InvalidReferenceError(
        f"invalid image reference {shown!r}: {reason}",
        hint=hint or "use HOST/REPO@sha256:<64 hex> or oci:DIR@sha256:<64 hex>",
    )


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it matches the OCI tag grammar, else raise."""
    if not TAG_RE.fullmatch(tag):
        raise InvalidReferenceError(
            f"invalid tag {tag[:140]!r}",
            hint="a tag is 1-128 of [A-Za-z0-9_.-] and does not start with '.' or '-'",
        )
    return tag


def validate_artifact_name(name: str) -> str:
    """Artifact names become path segments and output keys: ``[a-z0-9][a-z0-9._-]{0,63}``."""
    if not isinstance(name, str) or not ARTIFACT_NAME_RE.fullmatch(name):
        raise UsageError(
            f"invalid artifact name {str(name)[:80]!r}",
            hint="use 1-64 of lowercase letters, digits, '.', '_' or '-', starting with a "
            "letter or digit (for example: backend)",
        )
    return name


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A registry location: ``registry/repository`` plus an optional tag and digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """``registry/repository``, the repository's full name."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when known, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or "latest"

    def with_digest(self, digest: Digest) -> ImageReference:
        """The same repository pinned to ``digest`` (tag dropped)."""
        return ImageReference(self.registry, self.repository, None, digest)

    def with_tag(self, tag: str) -> ImageReference:
        """The same repository at ``tag`` (digest dropped)."""
        return ImageReference(self.registry, self.repository, validate_tag(tag), None)

    def repo(self, repository: str) -> ImageReference:
        """Another repository on the same registry."""
        return replace(self, repository=repository, tag=None, digest=None)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True, slots=True)
class LayoutReference:
    """An OCI image layout directory (one repository) plus an optional tag and digest."""

    path: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """``oci:DIR``: the layout's name as a repository."""
        return f"oci:{self.path}"

    def with_digest(self, digest: Digest) -> LayoutReference:
        """The same layout pinned to ``digest`` (tag dropped)."""
        return LayoutReference(self.path, None, digest)

    def with_tag(self, tag: str) -> LayoutReference:
        """The same layout at ``tag`` (digest dropped)."""
        return LayoutReference(self.path, validate_tag(tag), None)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


Location = ImageReference | LayoutReference


def _split_digest(text: str, body: str) -> tuple[str, Digest | None]:
    if "@" not in body:
        return body, None
    body, _, digest_text = body.rpartition("@")
    try:
        return body, Digest.parse(digest_text)
    except InvalidReferenceError as exc:
        raise _bad(text, exc.message.removeprefix("invalid digest ")) from exc


def parse_registry_reference(text: str) -> ImageReference:
    """Parse ``HOST[:PORT]/REPO[:TAG][@DIGEST]`` with Docker Hub normalisation."""
    if not isinstance(text, str) or not text:
        raise _bad(str(text), "empty")
    if text != text.strip() or _SPACE_OR_CONTROL.search(text):
        raise _bad(text, "contains whitespace or control characters")
    if "://" in text:
        raise _bad(text, "a reference has no scheme", "drop the 'https://' prefix")
    body, digest = _split_digest(text, text)
    tag: str | None = None
    slash = body.rfind("/")
    colon = body.rfind(":")
    if colon > slash:
        body, tag = body[:colon], body[colon + 1 :]
        if not TAG_RE.fullmatch(tag):
            raise _bad(text, f"invalid tag {tag[:140]!r}")
    first, sep, rest = body.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, repository = first, rest
        if not _HOST_RE.fullmatch(registry):
            raise _bad(text, f"invalid registry host {registry!r}")
        port = registry.rpartition("]")[2].rpartition(":")[2] if ":" in registry else ""
        if port and not 1 <= int(port) <= 65535:
            raise _bad(text, f"port {port} is not between 1 and 65535")
    else:
        registry, repository = DOCKER_HUB, body
    if registry.lower() in _HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in repository:
            repository = f"library/{repository}"
    if not repository:
        raise _bad(text, "missing repository name")
    if not _REPOSITORY_RE.fullmatch(repository):
        raise _bad(
            text,
            f"invalid repository {repository[:140]!r}",
            "repository components are lowercase letters and digits joined by '.', '_', '__' "
            "or '-', separated by '/'",
        )
    if len(registry) + 1 + len(repository) > _MAX_NAME:
        raise _bad(text, f"name longer than {_MAX_NAME} characters")
    return ImageReference(registry, repository, tag, digest)


def normalise_layout_path(path: str) -> str:
    """``DIR`` without ``.`` segments, ``a/..`` pairs, repeated or trailing slashes.

    Lexical, like ``posixpath.normpath`` (leading ``..`` stay): the path that is matched
    against the policy's patterns is the path that is opened.
    """
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/") if normal.startswith("//") else normal


def parse_layout_reference(text: str) -> LayoutReference:
    """Parse ``oci:DIR[:TAG][@DIGEST]``; ``DIR`` is normalised (:func:`normalise_layout_path`)."""
    if not text.startswith("oci:"):
        raise _bad(text, "a layout reference starts with 'oci:'")
    if any(ord(c) < 0x20 for c in text):
        raise _bad(text, "contains control characters")
    body, digest = _split_digest(text, text[4:])
    tag: str | None = None
    slash = body.rfind("/")
    colon = body.rfind(":")
    if colon > slash:
        body, tag = body[:colon], body[colon + 1 :]
        if not TAG_RE.fullmatch(tag):
            raise _bad(text, f"invalid tag {tag[:140]!r}")
    if not body:
        raise _bad(text, "missing the layout directory", "write oci:DIR, e.g. oci:./images/app")
    return LayoutReference(normalise_layout_path(body), tag, digest)


def parse_location(text: str) -> Location:
    """Parse a registry or ``oci:`` reference."""
    if isinstance(text, str) and text.startswith("oci:"):
        return parse_layout_reference(text)
    return parse_registry_reference(text)
