"""``capture``: record one artifact's digest in the release file (orchestration only).

Where the digest comes from (design section 3):

* ``SOURCE`` pinned by digest: the manifest is fetched and hashed to confirm it exists and is
  what the digest says (absent: exit 3 NotFound; wrong bytes: IntegrityError).
* ``SOURCE`` by tag: resolved by fetching and hashing, only with ``--allow-tag``. Inside CI
  the flag is required as well and a warning says the tag may have moved since the push.
* ``--metadata-file``: docker buildx ``--metadata-file`` / build-push-action ``metadata``
  JSON (specs 7.1). ``containerimage.digest`` is the digest; ``image.name`` (comma-separated
  when several) names the repository, tags dropped; ``containerimage.descriptor`` when present
  must agree. The digest is then confirmed against the registry unless ``--offline``, which
  records media type and size from the descriptor instead (and so needs it).

For an image index, each child's platform and digest is recorded too (``platforms``), read
from the index bytes the digest was computed from; ``--offline`` records none (the gate then
reads them from the registry, and refuses an index whose platforms it cannot know).

The release's ``source`` comes from flags, else from the CI environment; flags win. A
release file only ever holds one source: capturing for another repository, revision, ref or
run into an existing file is refused, as is re-capturing a name with another image unless
``--replace``. The same image again changes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from digestgate.atomicfile import directory_lock
from digestgate.ci import detect_ci
from digestgate.digest import Digest
from digestgate.errors import (
    ConfigError,
    DigestgateError,
    InputError,
    IntegrityError,
    StorageError,
    UsageError,
)
from digestgate.fileread import read_capped
from digestgate.jsonutil import JSONFormatError, loads_strict
from digestgate.oci.manifest import Descriptor, ImageIndex
from digestgate.oci.open import Stores
from digestgate.platforms import PlatformError, PlatformImage, index_platforms
from digestgate.reference import (
    ImageReference,
    Location,
    parse_location,
    parse_registry_reference,
    validate_artifact_name,
)
from digestgate.release import (
    Promotion,
    Release,
    ReleaseArtifact,
    Source,
    load_release,
    save_release,
    source_problem,
)

#: buildx metadata carries build-record provenance; generous, but bounded.
MAX_METADATA_SIZE: Final = 32 * 1024 * 1024

_SOURCE_FLAGS: Final = {
    "repository": "--source-repo",
    "revision": "--revision",
    "ref": "--ref",
    "runId": "--run-id",
}


@dataclass(frozen=True, slots=True)
class BuildMetadata:
    """What capture needs from a buildx metadata file."""

    digest: Digest
    names: tuple[ImageReference, ...]
    descriptor: Descriptor | None


@dataclass(frozen=True)
class CaptureRequest:
    """Everything ``capture`` was asked to do."""

    name: str
    release_path: Path
    source_ref: str | None = None
    metadata_file: Path | None = None
    image: str | None = None
    allow_tag: bool = False
    replace: bool = False
    offline: bool = False
    source_flags: Mapping[str, str | None] = field(default_factory=dict)
    """``repository``/``revision``/``ref``/``runId`` given as flags (None when absent)."""


@dataclass(frozen=True)
class CaptureResult:
    """The recorded artifact, whether the file changed, and warnings for the user."""

    artifact: ReleaseArtifact
    location: Location
    changed: bool
    warnings: tuple[str, ...] = ()

    @property
    def digest(self) -> Digest:
        """The captured digest."""
        assert self.location.digest is not None
        return self.location.digest

    @property
    def outputs(self) -> dict[str, str]:
        """``NAME-digest`` and ``NAME-image`` for ``$GITHUB_OUTPUT``."""
        name = self.artifact.name
        return {f"{name}-digest": str(self.digest), f"{name}-image": str(self.location)}


# --- CI environment ----------------------------------------------------------------------


def in_ci(environ: Mapping[str, str]) -> bool:
    """True inside GitHub, Gitea or Forgejo Actions (or any CI that sets ``CI=true``)."""
    return detect_ci(environ).in_ci


def _ci_source(environ: Mapping[str, str]) -> dict[str, str | None]:
    """Source fields from the runner's variables (specs 9.6-9.8); empty outside CI."""
    ctx = detect_ci(environ)
    if not ctx.in_ci:
        return {}
    return {
        "repository": ctx.repository_url,
        "revision": ctx.revision,
        "ref": ctx.ref,
        "runId": ctx.run_id,
    }


def resolve_source(
    flags: Mapping[str, str | None], environ: Mapping[str, str], existing: Source | None
) -> Source:
    """The release source: flags over the CI environment, consistent with ``existing``."""
    wanted = {k: v for k, v in _ci_source(environ).items() if v}
    wanted.update({k: v for k, v in flags.items() if v})
    for key, value in wanted.items():
        problem = source_problem(key, value)
        if problem:
            raise UsageError(f"{_SOURCE_FLAGS[key]} {value[:80]!r}: {problem}")
    if existing is not None:
        recorded = existing.to_json()
        for key in ("repository", "revision", "ref", "runId"):
            if key in wanted and wanted[key] != recorded[key]:
                raise UsageError(
                    f"the release file records {key} {recorded[key]!r}, this capture is for "
                    f"{wanted[key]!r}",
                    hint="a release holds artifacts of one source revision and run; capture "
                    "into a new release file",
                )
        return existing
    missing = [flag for key, flag in _SOURCE_FLAGS.items() if key not in wanted]
    if missing:
        raise UsageError(
            f"the new release needs its source: missing {', '.join(missing)}",
            hint="run inside GitHub/Gitea/Forgejo Actions, or pass the flags",
        )
    return Source(wanted["repository"], wanted["revision"], wanted["ref"], wanted["runId"])


# --- buildx metadata ---------------------------------------------------------------------


def parse_build_metadata(data: bytes, origin: str = "metadata file") -> BuildMetadata:
    """Read ``containerimage.digest``, ``image.name`` and ``containerimage.descriptor``."""

    def bad(reason: str, hint: str | None = None) -> InputError:
        return InputError(
            f"{origin}: {reason}",
            hint=hint
            or "pass the file docker buildx --metadata-file (or build-push-action's "
            "`metadata` output) wrote",
        )

    if len(data) > MAX_METADATA_SIZE:
        raise bad(f"larger than {MAX_METADATA_SIZE} bytes")
    try:
        doc: Any = loads_strict(data)
    except JSONFormatError as exc:
        raise bad(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise bad("not a JSON object")
    digest_text = doc.get("containerimage.digest")
    if not isinstance(digest_text, str):
        raise bad("no 'containerimage.digest'", "the build did not push an image")
    try:
        digest = Digest.parse(digest_text)
    except DigestgateError as exc:
        raise bad(f"containerimage.digest: {exc.message}") from None
    names_text = doc.get("image.name")
    if not isinstance(names_text, str) or not names_text.strip():
        raise bad("no 'image.name'", "push with a name (tags:), or pass SOURCE instead")
    names: list[ImageReference] = []
    for part in names_text.split(","):
        text = part.strip()
        if not text:
            continue
        try:
            reference = parse_registry_reference(text)
        except DigestgateError as exc:
            raise bad(f"image.name: {exc.message}") from None
        if reference.digest is not None and reference.digest != digest:
            raise bad(f"image.name {text[:120]!r} names another digest than {digest}")
        names.append(reference)
    if not names:
        raise bad("no 'image.name'", "push with a name (tags:), or pass SOURCE instead")
    descriptor = None
    if doc.get("containerimage.descriptor") is not None:
        try:
            descriptor = Descriptor.from_json(
                doc["containerimage.descriptor"], "containerimage.descriptor"
            )
        except DigestgateError as exc:
            raise bad(exc.message) from None
        if descriptor.digest != digest:
            raise bad(
                f"containerimage.descriptor names {descriptor.digest}, "
                f"containerimage.digest {digest}"
            )
    return BuildMetadata(digest, tuple(names), descriptor)


def pick_image(metadata: BuildMetadata, wanted: str | None) -> ImageReference:
    """The pushed name matching ``wanted`` (a repository, tag ignored), else the first."""
    if wanted is None:
        return metadata.names[0].with_digest(metadata.digest)
    target = parse_registry_reference(wanted).name
    for reference in metadata.names:
        if reference.name == target:
            return reference.with_digest(metadata.digest)
    names = ", ".join(sorted({r.name for r in metadata.names}))
    raise UsageError(
        f"--image {wanted[:120]!r} is not among the pushed names", hint=f"pushed: {names}"
    )


# --- the verb ----------------------------------------------------------------------------


def _confirm(stores: Stores, location: Location, expected: Descriptor | None) -> Descriptor:
    """Fetch and hash the manifest at ``location``'s digest (or tag); check the descriptor."""
    store = stores.open(location)
    # By digest, resolve hashes the bytes and raises IntegrityError when they differ.
    found = store.resolve(location.digest if location.digest is not None else _tag(location))
    if expected is not None and (
        found.media_type != expected.media_type or found.size != expected.size
    ):
        raise IntegrityError(
            f"{location}: the registry serves {found.media_type} of {found.size} bytes, the "
            f"metadata file says {expected.media_type} of {expected.size} bytes",
            hint="the metadata file does not describe what was pushed",
        )
    return found


def _platforms(
    stores: Stores, location: Location, descriptor: Descriptor
) -> tuple[PlatformImage, ...] | None:
    """An index's children by platform, from the bytes that hash to its digest."""
    if not descriptor.is_index:
        return None
    manifest = stores.open(location).get_manifest(descriptor.digest)  # hashed against it
    if not isinstance(manifest, ImageIndex):
        raise IntegrityError(f"{location}: described as an index but is an image manifest")
    try:
        return index_platforms(manifest)
    except PlatformError as exc:
        raise InputError(
            f"{location}: {exc}",
            hint="push an index whose image entries each name their platform",
        ) from None


def _tag(location: Location) -> str:
    return location.tag or "latest"


def _precheck(request: CaptureRequest, ci: bool) -> Location | None:
    """Refuse bad flag combinations and unpinned SOURCEs before any I/O."""
    if request.metadata_file is not None:
        if request.source_ref is not None:
            raise UsageError("give SOURCE or --metadata-file, not both")
        return None
    if request.source_ref is None:
        raise UsageError(
            "nothing to capture", hint="give SOURCE (IMAGE@sha256:...) or --metadata-file FILE"
        )
    for flag, given in (("--offline", request.offline), ("--image", request.image is not None)):
        if given:
            raise UsageError(f"{flag} applies to --metadata-file only")
    location = parse_location(request.source_ref)
    if location.digest is None and not request.allow_tag:
        where = " inside CI" if ci else ""
        raise UsageError(
            f"{request.source_ref[:120]!r} is a tag, not a digest; refused{where}",
            hint="capture IMAGE@sha256:... (or --metadata-file); --allow-tag resolves the tag now",
        )
    return location


def _pin(
    request: CaptureRequest, location: Location | None, stores: Stores, ci: bool
) -> tuple[Location, Descriptor, list[str]]:
    """The image pinned by digest, its descriptor, and warnings."""
    warnings: list[str] = []
    if location is None:
        assert request.metadata_file is not None
        try:
            data = read_capped(request.metadata_file, MAX_METADATA_SIZE, what="metadata file")
        except OSError as exc:
            raise InputError(
                f"cannot read metadata file {request.metadata_file}: {exc.strerror or exc}"
            ) from None
        metadata = parse_build_metadata(data, str(request.metadata_file))
        pinned: Location = pick_image(metadata, request.image)
        if request.offline:
            if metadata.descriptor is None:
                raise UsageError(
                    "--offline needs 'containerimage.descriptor' in the metadata file",
                    hint="drop --offline so the registry is asked for media type and size",
                )
            return pinned, metadata.descriptor, warnings
        return pinned, _confirm(stores, pinned, metadata.descriptor), warnings
    if location.digest is None and ci:
        warnings.append(
            f"resolving tag {str(location)[:120]!r}: it may have moved since the push; "
            "prefer the digest the build printed"
        )
    found = _confirm(stores, location, None)
    return location.with_digest(found.digest), found, warnings


def _existing_release(path: Path) -> Release | None:
    if not path.exists():
        return None
    loaded = load_release(path)
    if isinstance(loaded, Promotion):
        raise ConfigError(
            f"{path} is a promotion record, not a release",
            hint="capture into the release file the build writes",
        )
    return loaded


def capture(
    *, request: CaptureRequest, stores: Stores, environ: Mapping[str, str]
) -> CaptureResult:
    """Pin the image, then add it to the release file (atomically)."""
    validate_artifact_name(request.name)
    ci = in_ci(environ)
    source_location = _precheck(request, ci)
    directory = request.release_path.parent
    with contextlib.ExitStack() as stack:
        try:  # one capture at a time per directory: concurrent captures lose no artifact
            directory.mkdir(parents=True, exist_ok=True)
            stack.enter_context(directory_lock(directory))
        except OSError as exc:
            raise StorageError(
                f"cannot use {directory} for the release file: {exc.strerror or exc}",
                hint="check that the directory exists and is writable",
            ) from exc
        return _capture_locked(request, stores, environ, ci, source_location)


def _capture_locked(
    request: CaptureRequest,
    stores: Stores,
    environ: Mapping[str, str],
    ci: bool,
    source_location: Location | None,
) -> CaptureResult:
    release = _existing_release(request.release_path)
    source = resolve_source(request.source_flags, environ, release.source if release else None)
    location, descriptor, warnings = _pin(request, source_location, stores, ci)
    platforms = None if request.offline else _platforms(stores, location, descriptor)
    if request.offline and descriptor.is_index:
        warnings.append(
            f"{request.name} is an image index captured --offline: its platforms are not "
            "recorded, so only an online gate can require each of them"
        )
    artifact = ReleaseArtifact.pinned(
        request.name, location, descriptor.media_type, descriptor.size, platforms
    )
    previous = release.artifacts.get(request.name) if release else None
    if (
        previous is not None
        and previous.location is not None
        and (previous.location.name == location.name and previous.digest == location.digest)
    ):
        return CaptureResult(previous, location, False, tuple(warnings))
    if previous is not None and not request.replace:
        raise UsageError(
            f"{request.name} is already recorded as {previous.image_text[:200]}",
            hint="pass --replace to record the new image, or capture it under another name",
        )
    updated = (release or Release(source)).with_artifact(artifact)
    save_release(request.release_path, updated)
    return CaptureResult(artifact, location, True, tuple(warnings))
