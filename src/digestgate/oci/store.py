"""The image store interface, implemented by the registry client and the OCI layout.

One store is one repository (a registry repository or one layout directory). Every method
that returns content has verified it: manifests hash to the digest asked for, blobs are
checked for digest and size at the end of the stream. Copy code talks only to this
interface, so it copies between any pair of stores.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from digestgate.digest import Digest
from digestgate.oci.manifest import Descriptor, Manifest
from digestgate.reference import Location


@runtime_checkable
class ImageStore(Protocol):
    """Content-addressed access to one repository."""

    @property
    def location(self) -> Location:
        """The repository (no tag, no digest)."""
        ...

    def resolve(self, reference: str | Digest) -> Descriptor:
        """Fetch the manifest at a tag or digest, hash its exact bytes, describe it.

        Raises :class:`~digestgate.errors.NotFoundError` when absent and
        :class:`~digestgate.errors.IntegrityError` when a by-digest fetch hashes otherwise.
        """
        ...

    def get_manifest(self, digest: Digest) -> Manifest:
        """The manifest or index with this digest, verified against it."""
        ...

    def has_manifest(self, digest: Digest) -> bool:
        """True when a manifest with this digest is present."""
        ...

    def put_manifest(self, raw: bytes, media_type: str, *, tag: str | None = None) -> Descriptor:
        """Store these exact bytes by digest (and at ``tag`` when given); verify the answer."""
        ...

    def has_blob(self, digest: Digest) -> bool:
        """True when the blob is present."""
        ...

    def open_blob(
        self, descriptor: Descriptor, *, hashed: bool = True
    ) -> AbstractContextManager[Iterator[bytes]]:
        """Stream a blob in chunks; digest and size are verified when the stream ends.

        A mismatch raises :class:`~digestgate.errors.IntegrityError` from the iterator, so a
        consumer that writes chunks somewhere must discard them on error. ``hashed=False``
        checks the size only: for a consumer that hashes every byte itself before anything
        is committed, as :meth:`put_blob` does (a copy then hashes each byte once).
        """
        ...

    def put_blob(self, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
        """Upload a blob from chunks, verifying digest and size before it becomes visible:
        bytes that do not hash to the digest are never stored, whatever their source."""
        ...

    def mount_blob(self, descriptor: Descriptor, source: ImageStore) -> bool:
        """Make ``source``'s blob present here without moving bytes, when possible.

        Returns False when this pair cannot mount (different registries, layout), in which
        case the caller streams the blob. Never uploads bytes itself.
        """
        ...

    def get_tag(self, tag: str) -> Descriptor | None:
        """The manifest a tag points to (hashed), or None when the tag does not exist."""
        ...

    def set_tag(self, tag: str, descriptor: Descriptor) -> None:
        """Point ``tag`` at an existing manifest, then re-read it to verify."""
        ...

    def list_tags(self) -> list[str]:
        """All tags, sorted."""
        ...

    def referrers(self, subject: Digest, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``subject`` (Referrers API or tag-schema fallback)."""
        ...

    def put_referrer(self, raw: bytes, media_type: str, subject: Descriptor) -> Descriptor:
        """Store a manifest whose ``subject`` is ``subject`` and make it discoverable."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


def put_referrers(
    store: ImageStore, subject: Descriptor, manifests: Sequence[tuple[bytes, str]]
) -> None:
    """Put referrers of one subject together where the store can (a registry then updates
    its fallback index once, with one settle pause), else one by one."""
    many = getattr(store, "put_referrers", None)
    if callable(many):
        many(subject, manifests)
        return
    for raw, media_type in manifests:
        store.put_referrer(raw, media_type, subject)
