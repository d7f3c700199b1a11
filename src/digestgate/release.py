"""``release.json`` and ``promoted.json``: the promotion input and the promotion record.

Formats (design section 4)::

    Release:   {apiVersion: digestgate/v1, kind: Release,
                source: {repository, revision, ref, runId},
                artifacts: {NAME: {image, mediaType, size, platforms?}}}
    Promotion: {apiVersion, kind: Promotion, source, policy: {digest}, time,
                artifacts: {NAME: {image, from, tags: [{tag, previous: digest|null}], platforms?,
                                   referrers?: {carried: [...], left: [...]}}}}

A file whose structure is wrong is a :class:`~digestgate.errors.ConfigError` (exit 2) naming
the field. An artifact ``image`` that is a tag reference or a malformed reference is *not*:
its raw text is kept with a per-artifact problem (``not-digest`` / ``invalid``) so the gate
can block with ``reference.not-digest`` / ``reference.invalid``. ``mediaType`` and ``size``
are optional when reading a Release (a hand-written file may omit them; the gate confirms
the digest against the store anyway) and always written by ``capture``. ``platforms``
(an image index's children: ``[{platform: OS/ARCH[/VARIANT], digest}]``, see
:mod:`digestgate.platforms`) is written by ``capture`` for an index and carried by ``promote``.

The file is not signed (design section 8): everything that matters in it is cross-checked
against signed evidence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from digestgate.atomicfile import write_atomic
from digestgate.digest import Digest
from digestgate.errors import ConfigError, DigestgateError, StorageError
from digestgate.fileread import read_capped
from digestgate.jsonutil import JSONFormatError, dumps_pretty, loads_strict
from digestgate.oci import media
from digestgate.platforms import PlatformImage, parse_platform_list
from digestgate.reference import Location, parse_location, validate_artifact_name, validate_tag
from digestgate.timeutil import format_timestamp, parse_timestamp

API_VERSION: Final = "digestgate/v1"
#: A release file is small; anything bigger is refused before parsing.
MAX_RELEASE_SIZE: Final = 4 * 1024 * 1024

ReferenceProblem = Literal["not-digest", "invalid"]

_REVISION_RE: Final = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Source:
    """Where a release was built from: repository URL, commit, ref and CI run id."""

    repository: str
    revision: str
    ref: str
    run_id: str

    def to_json(self) -> dict[str, str]:
        """JSON form (``runId`` camel-cased as in the file)."""
        return {
            "repository": self.repository,
            "revision": self.revision,
            "ref": self.ref,
            "runId": self.run_id,
        }


def source_problem(field_name: str, value: str) -> str | None:
    """Why a source field value is unacceptable, or None (shared with ``capture`` flags)."""
    if not value or value != value.strip() or any(c.isspace() or ord(c) < 0x20 for c in value):
        return "must be non-empty text without whitespace"
    if field_name == "revision" and not _REVISION_RE.fullmatch(value):
        return "must be a full commit id (40 or 64 lowercase hex)"
    if field_name == "ref" and not value.startswith("refs/"):
        return "must be a full ref such as refs/heads/main or refs/tags/v1.0"
    return None


@dataclass(frozen=True, slots=True)
class ArtifactImage:
    """An artifact's image reference as written, and whether it is pinned by digest.

    ``location`` is set (with a digest) only when ``reference_problem`` is None.
    """

    name: str
    image_text: str
    location: Location | None
    reference_problem: ReferenceProblem | None
    reference_message: str | None = None

    @property
    def digest(self) -> Digest | None:
        """The pinned digest, when the reference is usable."""
        return self.location.digest if self.location is not None else None


def pinned_image(
    name: str, text: str
) -> tuple[Location | None, ReferenceProblem | None, str | None]:
    """Parse an image reference into (location, problem, message), never raising.

    A tag-only reference is ``not-digest``, an unparsable one ``invalid``.
    """
    try:
        location = parse_location(text)
    except DigestgateError as exc:
        return None, "invalid", f"{name}: {exc.message}"
    if location.digest is None:
        return None, "not-digest", f"{name}: {text[:200]!r} is not pinned by digest"
    return location, None, None


@dataclass(frozen=True, slots=True)
class ReleaseArtifact(ArtifactImage):
    """One artifact of a release: image by digest, manifest media type and size."""

    media_type: str | None = None
    size: int | None = None
    platforms: tuple[PlatformImage, ...] | None = None
    """An index's children by platform (None: not recorded, or not an index)."""

    @classmethod
    def pinned(
        cls,
        name: str,
        location: Location,
        media_type: str | None,
        size: int | None,
        platforms: tuple[PlatformImage, ...] | None = None,
    ) -> ReleaseArtifact:
        """An artifact for a location known to carry a digest (what ``capture`` records)."""
        validate_artifact_name(name)
        if location.digest is None:
            raise ValueError("location without digest")
        return cls(name, str(location), location, None, None, media_type, size, platforms)

    def to_json(self) -> dict[str, Any]:
        """JSON form (the raw image text is written back unchanged)."""
        out: dict[str, Any] = {"image": self.image_text}
        if self.media_type is not None:
            out["mediaType"] = self.media_type
        if self.size is not None:
            out["size"] = self.size
        if self.platforms is not None:
            out["platforms"] = [p.to_json() for p in self.platforms]
        return out


@dataclass(frozen=True, slots=True)
class PromotedTag:
    """A tag applied by a promotion, with the digest it pointed to before (or None)."""

    tag: str
    previous: Digest | None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"tag": self.tag, "previous": str(self.previous) if self.previous else None}


@dataclass(frozen=True, slots=True)
class PromotionArtifact(ArtifactImage):
    """One promoted artifact: target image by digest, the source it came from, its tags."""

    source_location: Location | None = None
    tags: tuple[PromotedTag, ...] = ()
    platforms: tuple[PlatformImage, ...] | None = None
    referrers: Mapping[str, Any] | None = None
    """Other tools' referrers ``{carried: [...], left: [...]}`` (a record; never decides)."""

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {
            "image": self.image_text,
            "from": str(self.source_location),
            "tags": [t.to_json() for t in self.tags],
        }
        if self.platforms is not None:
            out["platforms"] = [p.to_json() for p in self.platforms]
        if self.referrers is not None:
            out["referrers"] = dict(self.referrers)
        return out


@dataclass(frozen=True, slots=True)
class Release:
    """The promotion input: artifacts built from one source revision, each by digest."""

    source: Source
    artifacts: Mapping[str, ReleaseArtifact] = field(default_factory=dict)
    kind: Literal["Release"] = "Release"

    def with_artifact(self, artifact: ReleaseArtifact) -> Release:
        """A copy with ``artifact`` added or replaced."""
        artifacts = dict(self.artifacts)
        artifacts[artifact.name] = artifact
        return replace(self, artifacts=artifacts)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "source": self.source.to_json(),
            "artifacts": {n: a.to_json() for n, a in sorted(self.artifacts.items())},
        }


@dataclass(frozen=True, slots=True)
class Promotion:
    """What ``promote`` did: target digests, their sources, tags, policy and time."""

    source: Source
    policy_digest: Digest
    time: datetime
    artifacts: Mapping[str, PromotionArtifact] = field(default_factory=dict)
    kind: Literal["Promotion"] = "Promotion"

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "source": self.source.to_json(),
            "policy": {"digest": str(self.policy_digest)},
            "time": format_timestamp(self.time),
            "artifacts": {n: a.to_json() for n, a in sorted(self.artifacts.items())},
        }


# --- reading ---------------------------------------------------------------------------


class _Reader:
    """Field-by-field validation that names the offending field in every error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, reason: str) -> ConfigError:
        return ConfigError(
            f"invalid release file {self.path}: {where}: {reason}",
            hint="fix the file, or recreate it with `digestgate capture`",
        )

    def obj(self, value: Any, where: str, keys: set[str], required: set[str]) -> dict[str, Any]:
        doc = self.mapping(value, where)
        unknown = sorted(set(doc) - keys)
        if unknown:
            raise self.fail(where, f"unknown field {unknown[0][:60]!r}")
        missing = sorted(required - set(doc))
        if missing:
            raise self.fail(where, f"missing field {missing[0]!r}")
        return doc

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "must be an object")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, "must be a non-empty string")
        return value

    def digest(self, value: Any, where: str) -> Digest:
        try:
            return Digest.parse(self.text(value, where))
        except DigestgateError as exc:
            raise self.fail(where, exc.message) from None

    def name(self, value: str, where: str) -> str:
        try:
            return validate_artifact_name(value)
        except DigestgateError as exc:
            raise self.fail(where, exc.message) from None

    def source(self, value: Any) -> Source:
        doc = self.obj(value, "source", _SOURCE_KEYS, _SOURCE_KEYS)
        fields = {k: self.text(doc[k], f"source.{k}") for k in sorted(_SOURCE_KEYS)}
        for key in ("repository", "revision", "ref", "runId"):
            problem = source_problem(key, fields[key])
            if problem:
                raise self.fail(f"source.{key}", problem)
        return Source(fields["repository"], fields["revision"], fields["ref"], fields["runId"])

    def release_artifact(self, name: str, value: Any) -> ReleaseArtifact:
        where = f"artifacts.{name}"
        doc = self.obj(value, where, {"image", "mediaType", "size", "platforms"}, {"image"})
        image = self.text(doc["image"], f"{where}.image")
        media_type = doc.get("mediaType")
        if media_type is not None:
            media_type = self.text(media_type, f"{where}.mediaType")
        size = doc.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise self.fail(f"{where}.size", "must be a non-negative integer")
        pinned = pinned_image(name, image)
        platforms = self.platforms(doc, where, media_type, pinned[0])
        return ReleaseArtifact(name, image, *pinned, media_type, size, platforms)

    def platforms(
        self, doc: dict[str, Any], where: str, media_type: str | None, location: Location | None
    ) -> tuple[PlatformImage, ...] | None:
        if doc.get("platforms") is None:
            return None
        if media_type is not None and media_type not in media.IMAGE_INDEXES:
            reason = f"only an image index has platforms, not {media_type[:80]!r}"
            raise self.fail(f"{where}.platforms", reason)
        found = parse_platform_list(doc["platforms"], f"{where}.platforms", self.fail)
        if location is not None and any(p.digest == location.digest for p in found):
            raise self.fail(f"{where}.platforms", "names the index's own digest as a platform")
        return found

    def promotion_artifact(self, name: str, value: Any) -> PromotionArtifact:
        where = f"artifacts.{name}"
        keys = {"image", "from", "tags"}
        doc = self.obj(value, where, keys | {"platforms", "referrers"}, keys)
        image = self.text(doc["image"], f"{where}.image")
        source_text = self.text(doc["from"], f"{where}.from")
        try:
            source_location = parse_location(source_text)
        except DigestgateError as exc:
            raise self.fail(f"{where}.from", exc.message) from None
        if source_location.digest is None:
            raise self.fail(f"{where}.from", "must be pinned by digest")
        if not isinstance(doc["tags"], list):
            raise self.fail(f"{where}.tags", "must be a list")
        tags = []
        for i, entry in enumerate(doc["tags"]):
            tag_where = f"{where}.tags[{i}]"
            tag_doc = self.obj(entry, tag_where, {"tag", "previous"}, {"tag", "previous"})
            tag = self.text(tag_doc["tag"], f"{tag_where}.tag")
            try:
                validate_tag(tag)
            except DigestgateError as exc:
                raise self.fail(f"{tag_where}.tag", exc.message) from None
            previous = tag_doc["previous"]
            tags.append(
                PromotedTag(
                    tag,
                    None if previous is None else self.digest(previous, f"{tag_where}.previous"),
                )
            )
        location, problem, message = pinned_image(name, image)
        if location is not None and location.digest != source_location.digest:
            # A promotion copies by digest: the target and the source are the same bytes.
            raise self.fail(f"{where}.from", "names another digest than image")
        platforms = self.platforms(doc, where, None, location)
        referrers = doc.get("referrers")
        if referrers is not None:
            lists = self.obj(referrers, f"{where}.referrers", {"carried", "left"}, set())
            if not all(isinstance(v, list) for v in lists.values()):
                raise self.fail(f"{where}.referrers", "carried and left must be lists")
        return PromotionArtifact(
            name,
            image,
            location,
            problem,
            message,
            source_location,
            tuple(tags),
            platforms,
            referrers,
        )

    def document(self, doc: Any) -> Release | Promotion:
        if not isinstance(doc, dict):
            raise self.fail("top level", "must be a JSON object")
        kind = doc.get("kind")
        if doc.get("apiVersion") != API_VERSION:
            raise self.fail("apiVersion", f"must be {API_VERSION!r}")
        if kind == "Release":
            keys = {"apiVersion", "kind", "source", "artifacts"}
            self.obj(doc, "top level", keys, keys)
            source = self.source(doc["source"])
            artifacts_doc = self.mapping(doc["artifacts"], "artifacts")
            release_artifacts = {
                n: self.release_artifact(self.name(n, "artifacts"), v)
                for n, v in sorted(artifacts_doc.items())
            }
            return Release(source, release_artifacts)
        if kind == "Promotion":
            keys = {"apiVersion", "kind", "source", "policy", "time", "artifacts"}
            self.obj(doc, "top level", keys, keys)
            source = self.source(doc["source"])
            policy = self.obj(doc["policy"], "policy", {"digest"}, {"digest"})
            time_text = self.text(doc["time"], "time")
            try:
                moment = parse_timestamp(time_text)
            except ValueError as exc:
                raise self.fail("time", str(exc)) from None
            artifacts_doc = self.mapping(doc["artifacts"], "artifacts")
            promoted = {
                n: self.promotion_artifact(self.name(n, "artifacts"), v)
                for n, v in sorted(artifacts_doc.items())
            }
            return Promotion(
                source, self.digest(policy["digest"], "policy.digest"), moment, promoted
            )
        raise self.fail("kind", "must be 'Release' or 'Promotion'")


_SOURCE_KEYS: Final = {"repository", "revision", "ref", "runId"}


def parse_release(data: bytes, path: str | Path = "release.json") -> Release | Promotion:
    """Parse release file bytes (``path`` only names the file in errors)."""
    reader = _Reader(Path(path))
    if len(data) > MAX_RELEASE_SIZE:
        raise reader.fail("file", f"larger than {MAX_RELEASE_SIZE} bytes")
    try:
        doc = loads_strict(data)
    except JSONFormatError as exc:
        raise reader.fail("file", f"not valid JSON: {exc}") from None
    return reader.document(doc)


def load_release(path: str | Path) -> Release | Promotion:
    """Read and validate ``release.json`` or ``promoted.json``."""
    target = Path(path)
    try:
        data = read_capped(target, MAX_RELEASE_SIZE, what="release file")
    except OSError as exc:
        raise ConfigError(
            f"cannot read release file {target}: {exc.strerror or exc}",
            hint="create it with `digestgate capture NAME IMAGE@DIGEST --release FILE`",
        ) from None
    return parse_release(data, target)


def dump_release(release: Release | Promotion) -> bytes:
    """Deterministic JSON bytes (sorted keys, 2-space indent, trailing newline)."""
    return dumps_pretty(release.to_json()).encode()


def save_release(path: str | Path, release: Release | Promotion) -> None:
    """Write atomically (temp file, fsync, rename)."""
    target = Path(path)
    try:
        write_atomic(target, dump_release(release))
    except OSError as exc:
        raise StorageError(
            f"cannot write release file {target}: {exc.strerror or exc}",
            hint="check that the directory exists and is writable",
        ) from exc
