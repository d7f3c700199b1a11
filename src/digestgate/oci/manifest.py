"""Descriptors, image manifests and image indexes (pure), each keeping its exact bytes.

Covers OCI image-spec 1.1 (manifest.md, image-index.md, descriptor.md) and the Docker
schema 2 equivalents. The digest of a manifest is always computed from ``raw``; nothing is
re-serialised. Parsing never indexes raw JSON blindly: every field is type-checked.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from digestgate.digest import Digest
from digestgate.errors import DigestgateError, InvalidReferenceError, OperationalError
from digestgate.jsonutil import JSONFormatError, dumps_canonical, loads_strict
from digestgate.oci import media

#: A manifest over 4 MiB is refused (distribution-spec: clients SHOULD handle at least 4 MiB).
MAX_MANIFEST_SIZE: Final = 4 * 1024 * 1024


class InvalidManifestError(OperationalError):
    """A manifest or index that is malformed, oversized or of an unknown media type."""


def _fail(what: str, reason: str) -> InvalidManifestError:
    return InvalidManifestError(
        f"invalid {what}: {reason}", hint="the store holds content digestgate cannot use"
    )


def _str(obj: Mapping[str, Any], key: str, what: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise _fail(what, f"missing {key!r}")
        return None
    if not isinstance(value, str):
        raise _fail(what, f"{key!r} must be a string")
    return value


def _annotations(obj: Mapping[str, Any], what: str) -> dict[str, str]:
    value = obj.get("annotations")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _fail(what, "annotations must map strings to strings")
    return dict(value)


@dataclass(frozen=True, slots=True)
class Platform:
    """An index entry's platform (image-index.md)."""

    architecture: str
    os: str
    variant: str | None = None
    os_version: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    def to_json(self) -> dict[str, Any]:
        """JSON form for an index entry."""
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        return out


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A content descriptor: media type, digest and size, plus optional metadata."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    data: bytes | None = None

    @classmethod
    def from_json(cls, obj: Any, what: str = "descriptor") -> Descriptor:
        """Validate and build a descriptor from parsed JSON."""
        if not isinstance(obj, dict):
            raise _fail(what, "not an object")
        media_type = _str(obj, "mediaType", what)
        digest_text = _str(obj, "digest", what)
        size = obj.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _fail(what, "'size' must be a non-negative integer")
        assert media_type is not None and digest_text is not None
        try:
            digest = Digest.parse(digest_text)
        except InvalidReferenceError as exc:
            raise _fail(what, exc.message) from None
        platform = None
        raw_platform = obj.get("platform")
        if raw_platform is not None:
            if not isinstance(raw_platform, dict):
                raise _fail(what, "'platform' must be an object")
            arch = _str(raw_platform, "architecture", what)
            os_name = _str(raw_platform, "os", what)
            assert arch is not None and os_name is not None
            platform = Platform(
                arch,
                os_name,
                _str(raw_platform, "variant", what, required=False),
                _str(raw_platform, "os.version", what, required=False),
            )
        urls = obj.get("urls") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise _fail(what, "'urls' must be a list of strings")
        data = None
        raw_data = _str(obj, "data", what, required=False)
        if raw_data is not None:
            try:
                data = base64.b64decode(raw_data, validate=True)
            except (binascii.Error, ValueError):
                raise _fail(what, "'data' is not base64") from None
            if len(data) != size or Digest.of(data, digest.algorithm) != digest:
                raise _fail(what, "embedded 'data' does not match its digest and size")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations=_annotations(obj, what),
            artifact_type=_str(obj, "artifactType", what, required=False),
            platform=platform,
            urls=tuple(urls),
            data=data,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON form (only the fields that are set)."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.urls:
            out["urls"] = list(self.urls)
        if self.data is not None:
            out["data"] = base64.b64encode(self.data).decode()
        return out

    @property
    def is_index(self) -> bool:
        """True for an OCI index or a Docker manifest list."""
        return self.media_type in media.IMAGE_INDEXES


@dataclass(frozen=True, slots=True)
class _Parsed:
    raw: bytes
    media_type: str
    digest: Digest
    artifact_type: str | None
    subject: Descriptor | None
    annotations: Mapping[str, str]

    @property
    def descriptor(self) -> Descriptor:
        """A descriptor of these exact bytes."""
        return Descriptor(
            self.media_type, self.digest, len(self.raw), artifact_type=self.artifact_type
        )


@dataclass(frozen=True, slots=True)
class ImageManifest(_Parsed):
    """An image manifest (OCI or Docker schema 2)."""

    config: Descriptor
    layers: tuple[Descriptor, ...]

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """The config and the layers: every blob this manifest needs."""
        return (self.config, *self.layers)


@dataclass(frozen=True, slots=True)
class ImageIndex(_Parsed):
    """An image index (OCI) or manifest list (Docker)."""

    manifests: tuple[Descriptor, ...]


Manifest = ImageManifest | ImageIndex


def parse_manifest(
    raw: bytes, media_type: str | None = None, *, expected: Digest | None = None
) -> Manifest:
    """Parse manifest bytes, checking size, digest (when ``expected``) and media type.

    ``media_type`` is what the store said (``Content-Type``); parameters are ignored. When the
    body names a ``mediaType`` too, the two must agree (distribution-spec 1.1, "Pulling
    manifests").
    """
    if len(raw) > MAX_MANIFEST_SIZE:
        raise _fail("manifest", f"{len(raw)} bytes is over the {MAX_MANIFEST_SIZE}-byte limit")
    digest = Digest.of(raw, expected.algorithm if expected else "sha256")
    if expected is not None and digest != expected:
        raise _mismatch(expected, digest)
    try:
        obj = loads_strict(raw)
    except JSONFormatError as exc:
        raise _fail("manifest", str(exc)) from None
    if not isinstance(obj, dict):
        raise _fail("manifest", "not a JSON object")
    if obj.get("schemaVersion") != 2:
        raise _fail("manifest", "schemaVersion must be 2")
    header = (media_type or "").split(";", 1)[0].strip().lower() or None
    body_type = _str(obj, "mediaType", "manifest", required=False)
    if header and body_type and header != body_type:
        raise _fail("manifest", f"served as {header} but declares {body_type}")
    kind = body_type or header
    if kind is None:
        kind = media.OCI_INDEX if "manifests" in obj else media.OCI_MANIFEST
    if kind not in media.MANIFESTS:
        raise _fail("manifest", f"unsupported media type {kind[:100]!r}")
    subject = None
    if obj.get("subject") is not None:
        subject = Descriptor.from_json(obj["subject"], "manifest subject")
    common: dict[str, Any] = {
        "raw": raw,
        "media_type": kind,
        "digest": digest,
        "artifact_type": _str(obj, "artifactType", "manifest", required=False),
        "subject": subject,
        "annotations": _annotations(obj, "manifest"),
    }
    if kind in media.IMAGE_INDEXES:
        entries = obj.get("manifests")
        if not isinstance(entries, list):
            raise _fail("index", "'manifests' must be a list")
        return ImageIndex(
            **common,
            manifests=tuple(Descriptor.from_json(e, "index entry") for e in entries),
        )
    layers = obj.get("layers", [])
    if not isinstance(layers, list):
        raise _fail("manifest", "'layers' must be a list")
    return ImageManifest(
        **common,
        config=Descriptor.from_json(obj.get("config"), "manifest config"),
        layers=tuple(Descriptor.from_json(entry, "manifest layer") for entry in layers),
    )


def _mismatch(expected: Digest, actual: Digest) -> DigestgateError:
    from digestgate.errors import IntegrityError

    return IntegrityError(
        f"manifest does not match its digest: expected {expected}, got {actual}",
        hint="the store served different bytes; do not use this content",
    )


def build_artifact_manifest(
    *,
    artifact_type: str,
    layers: list[Descriptor],
    subject: Descriptor | None,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    """Bytes of an OCI 1.1 artifact manifest with the empty config (image-spec manifest.md)."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {
            "mediaType": media.OCI_EMPTY,
            "digest": media.EMPTY_DIGEST,
            "size": 2,
            "data": "e30=",
        },
        "layers": [d.to_json() for d in layers],
    }
    if subject is not None:
        doc["subject"] = Descriptor(subject.media_type, subject.digest, subject.size).to_json()
    if annotations:
        doc["annotations"] = dict(annotations)
    return dumps_canonical(doc)


def build_index(manifests: list[Descriptor], annotations: Mapping[str, str] | None = None) -> bytes:
    """Bytes of an OCI image index listing ``manifests``."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media.OCI_INDEX,
        "manifests": [d.to_json() for d in manifests],
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return dumps_canonical(doc)
