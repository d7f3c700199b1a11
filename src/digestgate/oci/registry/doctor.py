"""What a registry supports, found by asking it, and what digestgate does about each answer.

Read-only probes always run: the registry answers ``/v2/`` (and with which authentication),
and whether it implements the Referrers API. With ``write=True`` the probes also write to the
repository: a small blob uploaded in chunks, a cross-repository mount from ``mount_from``
(when given), and a probe manifest tagged :data:`PROBE_TAG` twice with different content to
see whether the registry refuses to move the tag. The blob and the two probe manifests stay
in the repository (most registries cannot delete a tag).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Final, Literal

import httpx

from digestgate.digest import Digest
from digestgate.errors import AuthError, DigestgateError
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.client import RegistryClient
from digestgate.oci.registry.repository import RegistryRepository

#: The tag the immutability probe writes twice.
PROBE_TAG: Final = "digestgate-doctor-probe"
#: The probe manifests' artifact type: nothing reads it as evidence.
PROBE_ARTIFACT_TYPE: Final = "application/vnd.dev.digestgate.doctor.v1+json"

Outcome = Literal["yes", "no", "unknown", "skipped"]


@dataclass(frozen=True)
class Check:
    """One capability: the answer, what was seen, and what digestgate does about it."""

    name: str
    outcome: Outcome
    seen: str
    consequence: str

    def to_json(self) -> dict[str, str]:
        """JSON form."""
        return {
            "check": self.name,
            "outcome": self.outcome,
            "seen": self.seen,
            "digestgate": self.consequence,
        }


def diagnose(
    registry: str,
    repository: str,
    *,
    options: StoreOptions,
    write: bool = False,
    mount_from: str | None = None,
) -> list[Check]:
    """Probe ``registry/repository``; every answer becomes a :class:`Check`.

    A registry that cannot be reached at all raises (exit 3) instead.
    """
    client = RegistryClient(registry, options, chunk_threshold=0, chunk_size=16)
    try:
        repo = client.repository(repository)
        checks = [_base(client), _referrers(client, repository)]
        if not write:
            skipped = "not probed (pass --write to let doctor write probe data)"
            checks += [
                Check("chunked-upload", "skipped", skipped, ""),
                Check("cross-repository-mount", "skipped", skipped, ""),
                Check("tag-immutability", "skipped", skipped, ""),
            ]
            return checks
        blob = secrets.token_bytes(48)
        descriptor = Descriptor("application/octet-stream", Digest.of(blob), len(blob))
        checks.append(_chunked(repo, descriptor, blob))
        checks.append(_mount(client, repository, mount_from))
        checks.append(_immutability(repo))
        return checks
    finally:
        client.close()


def _base(client: RegistryClient) -> Check:
    t = client.transport
    try:
        response = t.client_for(t.base).get(str(t.url("/v2/")))
    except httpx.HTTPError as exc:
        raise t.unreachable(exc) from None
    scheme = response.headers.get("www-authenticate", "").split(" ", 1)[0].lower() or "none"
    response.close()
    seen = f"GET /v2/ answered {response.status_code}; authentication: {scheme}"
    ok = response.status_code in (200, 401)
    return Check(
        "distribution-api",
        "yes" if ok else "no",
        seen,
        "registry access works as the distribution spec says"
        if ok
        else "not a distribution-spec registry at this address: check the host and port",
    )


def _referrers(client: RegistryClient, repository: str) -> Check:
    empty = Digest.parse(media.EMPTY_DIGEST)
    repo = client.repository(repository)
    url = repo.url(f"referrers/{empty}")
    try:
        fetched = client.transport.fetch("GET", url, scopes=repo.pull, cap=64 * 1024, absent=(404,))
    except DigestgateError as exc:
        return Check("referrers-api", "unknown", exc.message, "")
    if fetched is None:
        return Check(
            "referrers-api",
            "no",
            "GET /v2/<name>/referrers/<digest> answered 404",
            "evidence is listed in the sha256-<hex> tag index (read, merge, write, re-read "
            "after a settle pause); registries without conditional writes leave a narrow race "
            "between concurrent writers (docs/promotion.md)",
        )
    return Check(
        "referrers-api",
        "yes",
        f"GET /v2/<name>/referrers/<digest> answered 200 ({fetched[1][:40]!r}...)",
        "evidence is found through the Referrers API; each write is read back, and the "
        "sha256-<hex> tag index is read beside it for registries that do not list what they "
        "said they indexed",
    )


def _chunked(repo: RegistryRepository, descriptor: Descriptor, blob: bytes) -> Check:
    try:
        repo.put_blob(descriptor, [blob])
    except AuthError as exc:
        return Check("chunked-upload", "unknown", f"no push access: {exc.message}", "")
    except DigestgateError as exc:
        return Check(
            "chunked-upload",
            "no",
            exc.message,
            "blobs over the chunk threshold (64 MiB) cannot be uploaded to this registry; "
            "smaller ones go in one request",
        )
    return Check(
        "chunked-upload",
        "yes",
        f"a {len(blob)}-byte blob was uploaded in PATCH chunks",
        "blobs over 64 MiB are uploaded in chunks and resume where the registry says after a "
        "broken connection",
    )


def _mount(client: RegistryClient, repository: str, source: str | None) -> Check:
    if source is None:
        return Check(
            "cross-repository-mount",
            "skipped",
            "not probed (pass --mount-from REPOSITORY on the same registry)",
            "",
        )
    target = client.repository(repository)
    origin = client.repository(source)
    blob = secrets.token_bytes(32)
    descriptor = Descriptor("application/octet-stream", Digest.of(blob), len(blob))
    try:
        origin.put_blob(descriptor, [blob])
        mounted = target.mount_blob(descriptor, origin)
    except DigestgateError as exc:
        return Check("cross-repository-mount", "unknown", exc.message, "")
    if mounted:
        return Check(
            "cross-repository-mount",
            "yes",
            f"POST ?mount=...&from={source} answered 201",
            "a promotion within this registry copies no layer bytes: it mounts them",
        )
    return Check(
        "cross-repository-mount",
        "no",
        f"POST ?mount=...&from={source} did not mount (202: an upload session instead)",
        "layers are streamed through digestgate and verified, as between two registries",
    )


def _probe_manifest(note: str) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "artifactType": PROBE_ARTIFACT_TYPE,
            "config": {"mediaType": media.OCI_EMPTY, "digest": media.EMPTY_DIGEST, "size": 2},
            "layers": [{"mediaType": media.OCI_EMPTY, "digest": media.EMPTY_DIGEST, "size": 2}],
            "annotations": {"dev.digestgate.doctor": note},
        },
        separators=(",", ":"),
    ).encode()


def _immutability(repo: RegistryRepository) -> Check:
    empty = Descriptor(media.OCI_EMPTY, Digest.parse(media.EMPTY_DIGEST), 2)
    first, second = (_probe_manifest(f"{n}-{secrets.token_hex(8)}") for n in ("one", "two"))
    try:
        if not repo.has_blob(empty.digest):
            repo.put_blob(empty, [media.EMPTY_JSON])
        repo.put_raw_manifest(PROBE_TAG, first, media.OCI_MANIFEST, Digest.of(first))
    except DigestgateError as exc:
        existing = _tag_exists(repo)
        if existing:
            return _immutable(f"writing {PROBE_TAG} again was refused: {exc.message}")
        return Check("tag-immutability", "unknown", f"cannot write a tag: {exc.message}", "")
    try:
        repo.put_raw_manifest(PROBE_TAG, second, media.OCI_MANIFEST, Digest.of(second))
    except DigestgateError as exc:
        return _immutable(f"moving {PROBE_TAG} was refused: {exc.message}")
    return Check(
        "tag-immutability",
        "no",
        f"{PROBE_TAG} was written, then moved to other content",
        "digestgate refuses to move policy immutableTags itself and re-reads every tag after "
        "writing, but a concurrent writer can still move a tag last: turn on the registry's "
        "tag immutability (Harbor immutable-tag rules, ECR IMMUTABLE) for release tags",
    )


def _immutable(seen: str) -> Check:
    return Check(
        "tag-immutability",
        "yes",
        seen,
        "the registry enforces immutable tags: no writer can move a release tag",
    )


def _tag_exists(repo: RegistryRepository) -> bool:
    try:
        return repo.get_tag(PROBE_TAG) is not None
    except DigestgateError:
        return False
