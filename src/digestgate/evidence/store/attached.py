"""``attached``: envelopes stored next to each subject image as OCI 1.1 referrers.

Each envelope becomes an artifact manifest in the subject's own repository (image-spec 1.1
manifest.md "artifactType"; in-toto envelope.md storage type, specs 1.5): ``artifactType``
``application/vnd.in-toto.<predicate>+dsse``, the empty config, ONE layer of media type
``application/vnd.dsse.envelope.v1+json`` holding the envelope, and ``subject`` = the image.
The image store makes it discoverable: the Referrers API where the registry has it, the
``sha256-<hex>`` tag-schema fallback index where it does not (distribution-spec 1.1, specs
5.8), ``index.json`` in an OCI layout.

Reading trusts nothing the listing says: each referrer manifest is fetched by digest and
hashed, must name this subject and one of the three artifact types, and must hold exactly
one DSSE layer under the size cap, which is streamed and verified. A referrer read in full
that is not such an artifact becomes a :class:`StoreProblem` (``evidence.malformed``). One
that cannot be read in full -- more referrers than the cap, a listed manifest or layer that
is missing or does not hash to its digest, a layer over the size cap -- stops the read with
:class:`~digestgate.errors.IncompleteReadError` (exit 3): the gate never decides on a read
it cut short, and nothing is ranked or chosen by unsigned annotations (design section 8).

Deletion is not detectable here: whoever can delete referrers can hide a newer FAILED
result. The defences are ``sameRun``, evidence artifacts uploaded once per job, and VSAs
that list every envelope the gate saw (docs/threat-model.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Final

from digestgate.concurrency import run_all
from digestgate.digest import Digest
from digestgate.errors import IncompleteReadError, IntegrityError, InternalError, NotFoundError
from digestgate.evidence.store.base import (
    ANNOTATION_CREATED,
    ANNOTATION_ENVELOPE_DIGEST,
    ANNOTATION_PREDICATE_TYPE,
    MAX_ENVELOPE_SIZE,
    PREDICATE_SHORT_NAMES,
    StoredEnvelope,
    StoreProblem,
    SubjectLocation,
    check_envelope,
    envelope_problem,
    is_sigstore_bundle,
    predicate_name,
    predicate_type,
)
from digestgate.oci import media
from digestgate.oci.manifest import (
    Descriptor,
    ImageManifest,
    InvalidManifestError,
    build_artifact_manifest,
)
from digestgate.oci.open import Stores
from digestgate.oci.store import ImageStore, put_referrers
from digestgate.timeutil import format_timestamp, utcnow

#: Evidence referrers of one subject read at most; more stops the read (exit 3), never a
#: silent trim. A release attaches a handful per image (provenance, lanes, VSAs, records).
MAX_REFERRERS: Final = 256

#: The artifact types this store writes and reads.
ARTIFACT_TYPES: Final = frozenset(
    media.evidence_artifact_type(name) for name in PREDICATE_SHORT_NAMES
)

#: The artifact types read: digestgate's own, and Sigstore bundles attached beside them
#: (docs/sigstore.md), each with the one layer media type it must hold.
READ_LAYER_TYPES: Final = {
    **{artifact_type: media.DSSE_ENVELOPE for artifact_type in ARTIFACT_TYPES},
    media.SIGSTORE_BUNDLE: media.SIGSTORE_BUNDLE,
}

#: Listed artifact types that say nothing about what a referrer is: registries that drop the
#: field, or list the config's media type in its place. Such entries are fetched and judged
#: by the manifest's own ``artifactType``, so a registry's listing cannot hide evidence.
UNCLASSIFIED: Final = frozenset({None, "", media.OCI_EMPTY, media.OCI_CONFIG})

_EMPTY_CONFIG: Final = Descriptor(media.OCI_EMPTY, Digest.parse(media.EMPTY_DIGEST), 2)


class AttachedStore:
    """Envelopes attached to the subject images, in registries or OCI layouts."""

    def __init__(
        self,
        stores: Stores,
        *,
        clock: Callable[[], datetime] = utcnow,
        max_referrers: int = MAX_REFERRERS,
        max_envelope_size: int = MAX_ENVELOPE_SIZE,
    ) -> None:
        self._stores = stores
        self._clock = clock
        self.max_referrers = max_referrers
        self.max_envelope_size = max_envelope_size
        self._open: dict[str, ImageStore] = {}
        #: repository -> referrers mode the image store reported ("api", "tag-schema", ...).
        self.modes: dict[str, str] = {}

    def describe(self) -> str:
        """``attached``, with the referrers mode of each repository once known."""
        if not self.modes:
            return "attached"
        modes = ", ".join(f"{repo}: {mode}" for repo, mode in sorted(self.modes.items()))
        return f"attached ({modes})"

    def _store(self, subject: SubjectLocation) -> ImageStore:
        store = self._open.get(subject.repository)
        if store is None:
            store = self._stores.open(subject.location)
            self._open[subject.repository] = store
        return store

    def _note_mode(self, repository: str, store: ImageStore) -> None:
        # Image stores may say whether they used the Referrers API or the tag-schema
        # fallback (the registry client keeps it per registry); the interface does not
        # require it.
        mode = getattr(store, "referrers_mode", None) or getattr(
            getattr(store, "client", None), "referrers_mode", None
        )
        if isinstance(mode, str) and mode:
            self.modes[repository] = mode

    # --- writing -------------------------------------------------------------------------

    def write(
        self, envelope: bytes, *, predicate: str, subjects: Sequence[SubjectLocation]
    ) -> list[str]:
        """Attach the envelope to every subject; return ``<repo>@<referrer digest>`` each."""
        check_envelope(envelope)
        if not subjects:
            raise InternalError("attached evidence needs at least one subject")
        written: list[str] = []
        seen: set[tuple[str, Digest]] = set()
        for subject in subjects:
            key = (subject.repository, subject.digest)
            if key in seen:
                continue
            seen.add(key)
            batch = self.batch(subject)
            written.append(batch.add(envelope, predicate=predicate))
            batch.commit()
        return written

    def batch(self, subject: SubjectLocation) -> AttachBatch:
        """Collect several envelopes for one subject, attached together by ``commit()``.

        The subject is resolved and its referrers listed once for the whole batch, and a
        registry without the Referrers API updates its fallback index once for all of them.
        """
        store = self._store(subject)
        image = store.resolve(subject.digest)  # hashed: wrong bytes raise IntegrityError
        existing = evidence_referrers(store, subject)
        self._note_mode(subject.repository, store)
        return AttachBatch(self, store, subject, image, existing)

    # --- reading -------------------------------------------------------------------------

    def read(self, subjects: Sequence[SubjectLocation]) -> Iterator[StoredEnvelope | StoreProblem]:
        """The envelopes attached to each subject, each manifest and layer verified."""
        seen_subjects: set[tuple[str, Digest]] = set()
        seen_manifests: set[tuple[str, Digest]] = set()
        seen_envelopes: set[Digest] = set()
        for subject in subjects:
            key = (subject.repository, subject.digest)
            if key in seen_subjects:
                continue
            seen_subjects.add(key)
            store = self._store(subject)
            listed = evidence_referrers(store, subject)
            self._note_mode(subject.repository, store)
            if len(listed) > self.max_referrers:
                raise _incomplete(
                    f"{subject.repository}@{subject.digest}",
                    f"has {len(listed)} evidence referrers, more than the {self.max_referrers} "
                    "read at most",
                    "remove the junk referrers pushed to this repository (anyone with push "
                    "rights can add them), then run again",
                )
            for entry in listed:
                if (subject.repository, entry.digest) in seen_manifests:
                    continue
                seen_manifests.add((subject.repository, entry.digest))
                result = self._read_referrer(store, subject, entry)
                if isinstance(result, StoredEnvelope):
                    if result.digest in seen_envelopes:
                        continue
                    seen_envelopes.add(result.digest)
                yield result

    def _read_referrer(
        self, store: ImageStore, subject: SubjectLocation, entry: Descriptor
    ) -> StoredEnvelope | StoreProblem:
        origin = f"{subject.repository}@{entry.digest}"
        retry = "check the registry, then run again"
        try:
            manifest = store.get_manifest(entry.digest)
        except InvalidManifestError as exc:
            return StoreProblem(origin, f"referrer manifest unusable: {exc.message}")
        except (NotFoundError, IntegrityError) as exc:
            raise _incomplete(
                origin, f"is listed but cannot be read: {exc.message}", retry
            ) from exc
        problem = self._manifest_problem(manifest, subject.digest)
        if problem is not None:
            return StoreProblem(origin, problem)
        assert isinstance(manifest, ImageManifest)
        layer = manifest.layers[0]
        if layer.size > self.max_envelope_size:
            raise _incomplete(
                origin,
                f"holds an envelope of {layer.size} bytes, over the "
                f"{self.max_envelope_size}-byte limit",
                "remove the oversized referrer from the evidence repository, then run again",
            )
        chunks: list[bytes] = []
        try:
            with store.open_blob(layer) as stream:
                chunks.extend(stream)  # size and digest are checked by the store
        except (NotFoundError, IntegrityError) as exc:
            raise _incomplete(origin, f"envelope cannot be read: {exc.message}", retry) from exc
        raw = b"".join(chunks)
        problem = envelope_problem(raw)
        if problem is not None:
            return StoreProblem(origin, problem)
        return StoredEnvelope(raw, origin)

    def _manifest_problem(self, manifest: object, subject: Digest) -> str | None:
        if not isinstance(manifest, ImageManifest):
            return "referrer is not an image manifest"
        wanted = READ_LAYER_TYPES.get(str(manifest.artifact_type))
        if wanted is None:
            return f"unexpected artifactType {str(manifest.artifact_type)[:100]!r}"
        if manifest.subject is None or manifest.subject.digest != subject:
            return "referrer does not name this image as its subject"
        if len(manifest.layers) != 1:
            return f"expected exactly one layer, found {len(manifest.layers)}"
        layer = manifest.layers[0]
        if layer.media_type != wanted:
            return f"layer media type {layer.media_type[:100]!r} is not {wanted}"
        return None


def evidence_referrers(store: ImageStore, subject: SubjectLocation) -> list[Descriptor]:
    """The referrers of ``subject`` that are evidence: digestgate's or Sigstore bundles.

    Entries listed with one of the :data:`READ_LAYER_TYPES` count as listed; entries whose listed
    type is :data:`UNCLASSIFIED` are fetched (and hashed) and count when the manifest's own
    ``artifactType`` is ours. One that cannot be fetched might be evidence: exit 3.
    """
    found: list[Descriptor] = []
    for entry in store.referrers(subject.digest):
        if entry.artifact_type in READ_LAYER_TYPES:
            found.append(entry)
            continue
        if entry.artifact_type not in UNCLASSIFIED:
            continue  # another tool's referrer, listed as such
        try:
            manifest = store.get_manifest(entry.digest)
        except InvalidManifestError:
            continue  # not a manifest digestgate could have written
        except (NotFoundError, IntegrityError) as exc:
            raise _incomplete(
                f"{subject.repository}@{entry.digest}",
                f"is listed without an artifact type and cannot be read: {exc.message}",
                "check the registry, then run again",
            ) from exc
        if isinstance(manifest, ImageManifest) and manifest.artifact_type in READ_LAYER_TYPES:
            found.append(replace(entry, artifact_type=manifest.artifact_type))
    return found


class AttachBatch:
    """Envelopes for one subject, written by :meth:`commit` (see :meth:`AttachedStore.batch`).

    :meth:`add` builds the referrer manifest and returns where it will be (its digest is
    known before anything is written, so a record naming it can be signed in between).
    """

    def __init__(
        self,
        owner: AttachedStore,
        store: ImageStore,
        subject: SubjectLocation,
        image: Descriptor,
        existing: list[Descriptor],
    ) -> None:
        self._owner = owner
        self._store = store
        self._subject = subject
        self._image = image
        self._existing = existing
        #: (artifact type, envelope digest) -> (referrer digest, layer, envelope, manifest)
        self._pending: dict[tuple[str, Digest], tuple[Digest, Descriptor, bytes, bytes]] = {}

    def add(self, envelope: bytes, *, predicate: str) -> str:
        """Queue an envelope; return ``<repo>@<referrer digest>`` it is (or already was) at."""
        check_envelope(envelope)
        name = predicate_name(predicate)
        artifact_type = media.evidence_artifact_type(name)
        layer_type = media.DSSE_ENVELOPE
        if is_sigstore_bundle(envelope):  # carried by a promotion: stored as bundles are
            artifact_type = layer_type = media.SIGSTORE_BUNDLE
        layer = Descriptor(layer_type, Digest.of(envelope), len(envelope))
        key = (artifact_type, layer.digest)
        found = self._pending[key][0] if key in self._pending else None
        if found is None:
            found = self._already(artifact_type, layer)
        if found is None:
            raw = build_artifact_manifest(
                artifact_type=artifact_type,
                layers=[layer],
                subject=self._image,
                annotations={
                    ANNOTATION_CREATED: format_timestamp(self._owner._clock()),
                    ANNOTATION_PREDICATE_TYPE: predicate_type(name),
                    ANNOTATION_ENVELOPE_DIGEST: str(layer.digest),
                },
            )
            found = Digest.of(raw)
            self._pending[key] = (found, layer, envelope, raw)
        return f"{self._subject.repository}@{found}"

    def _already(self, artifact_type: str, layer: Descriptor) -> Digest | None:
        """A referrer already holding this envelope (so writing twice attaches once)."""
        for entry in self._existing:
            if entry.artifact_type != artifact_type:
                continue
            if entry.annotations.get(ANNOTATION_ENVELOPE_DIGEST) != str(layer.digest):
                continue
            try:
                manifest = self._store.get_manifest(entry.digest)
            except (NotFoundError, IntegrityError, InvalidManifestError):
                continue
            if (
                isinstance(manifest, ImageManifest)
                and manifest.subject is not None
                and manifest.subject.digest == self._subject.digest
                and [d.digest for d in manifest.layers] == [layer.digest]
            ):
                return manifest.digest
        return None

    def commit(self) -> None:
        """Upload the envelopes and their manifests, then make them all discoverable."""
        if not self._pending:
            return
        store = self._store
        # Envelopes are small (capped): uploading one that is already there costs less than
        # asking first, and the uploads run side by side. Each is verified by the store.
        # The empty config is shared by every referrer, so it is asked for first: uploading
        # it again re-links it, and distribution 2.8 rewrites that link in place, so a
        # concurrent writer's manifest PUT can find it empty (MANIFEST_BLOB_UNKNOWN).
        blobs = [] if store.has_blob(_EMPTY_CONFIG.digest) else [(_EMPTY_CONFIG, media.EMPTY_JSON)]
        blobs += [(layer, envelope) for _, layer, envelope, _ in self._pending.values()]
        run_all([partial(store.put_blob, blob, [content]) for blob, content in blobs])
        manifests = [(raw, media.OCI_MANIFEST) for _, _, _, raw in self._pending.values()]
        put_referrers(store, self._image, manifests)
        self._owner._note_mode(self._subject.repository, store)
        self._pending.clear()


def _incomplete(origin: str, problem: str, hint: str) -> IncompleteReadError:
    return IncompleteReadError(
        f"attached evidence: {origin} {problem}; the gate reads every referrer or decides nothing",
        hint=hint,
    )
