"""Referrers: the OCI 1.1 Referrers API and the ``sha256-<hex>`` tag-schema fallback.

Listing (distribution-spec 1.1 "Listing Referrers"): ``GET /v2/<name>/referrers/<digest>``;
200 is the answer (an index, paginated with ``Link``); 404 means the registry lacks the API,
so the index tagged ``<alg>-<hex>`` is read instead (404 there: no referrers). That tag is
read beside an API listing too (a registry may have claimed a referrer it does not list),
and a tag that resolves to the subject itself is no index. The first
lookup decides the mode for the whole client (``client.referrers_mode``). The artifact-type
filter is always re-applied here: a registry's ``OCI-Filters-Applied`` claim costs nothing to
check. A listing is read in full or not at all: more than 1000 descriptors, or pages left
after the 10th, is :class:`~digestgate.errors.IncompleteReadError` (exit 3), never a
silently shortened list (design section 8).

Writing (distribution-spec 1.1 "Pushing Manifests with Subject"): the manifest is put by
digest; an ``OCI-Subject`` answer naming the subject says the registry indexed it, and the
Referrers API is read back to confirm it (some registries send the header without listing
the referrer). Otherwise, and for any referrer the listing lacks, the fallback index is
maintained by read, merge, write, then re-read to verify the entry is there, retried with
jitter when a concurrent writer replaced the index. The check comes after a settle pause of
about two write cycles, so a writer that read the old index just before our write has landed
by then. All referrers of one subject written together (:func:`put_referrers`) share one
such cycle and one pause.

Remaining race: registries without conditional writes (the reference registry has no
``If-Match`` on manifests) cannot make read-modify-write atomic. Our entries can still be lost
in exactly one case: another writer reads the index before our write lands and writes its
copy back more than one settle pause (at least ``SETTLE_MIN``, about two of our write
cycles) after our write, i.e. after our final check. So two writers following this protocol
both stay listed whenever each one's read-to-write time is shorter than the other's pause; a
stalled writer can drop our entries after we returned. The loss is detectable (the referrer
manifest itself stays stored by digest and a later ``put_referrer`` re-adds it) and can only
make evidence missing, never make a gate pass.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from functools import partial
from typing import Final

import httpx

from digestgate.concurrency import run_all
from digestgate.digest import Digest
from digestgate.errors import IncompleteReadError, InternalError, NotFoundError, OperationalError
from digestgate.oci import media
from digestgate.oci.manifest import (
    MAX_MANIFEST_SIZE,
    Descriptor,
    ImageIndex,
    ImageManifest,
    Manifest,
    build_index,
    parse_manifest,
)
from digestgate.oci.registry.handles import RepositoryHandle
from digestgate.oci.registry.settling import current as current_settling
from digestgate.oci.registry.urls import next_link

log = logging.getLogger("digestgate.registry")

MAX_REFERRERS: Final = 1000
MAX_PAGES: Final = 10
WRITE_ATTEMPTS: Final = 6
SETTLE_MIN: Final = 0.05
SETTLE_MAX: Final = 2.0


def _matches(descriptor: Descriptor, artifact_type: str | None) -> bool:
    return artifact_type is None or descriptor.artifact_type == artifact_type


def _incomplete(repo: RepositoryHandle, subject: Digest, problem: str) -> IncompleteReadError:
    return IncompleteReadError(
        f"the referrers of {subject} in {repo.name} {problem}; digestgate reads a listing in "
        "full or not at all",
        hint="remove the junk referrers pushed to this repository (anyone with push rights "
        "can add them), then run again",
    )


def _cap(found: list[Descriptor], repo: RepositoryHandle, subject: Digest) -> list[Descriptor]:
    if len(found) > MAX_REFERRERS:
        raise _incomplete(repo, subject, f"number more than {MAX_REFERRERS}")
    return found


def _as_index(manifest: Manifest, what: str) -> ImageIndex:
    if not isinstance(manifest, ImageIndex):
        raise OperationalError(
            f"{what} is not an image index",
            hint="the registry holds something else under the referrers name; remove it",
        )
    return manifest


def _api(
    repo: RepositoryHandle, subject: Digest, artifact_type: str | None
) -> list[Descriptor] | None:
    """The Referrers API answer, or None when the registry does not implement it (404)."""
    t = repo.transport
    url: httpx.URL | None = repo.url(f"referrers/{subject}")
    if artifact_type:
        assert url is not None
        url = url.copy_merge_params({"artifactType": artifact_type})
    found: list[Descriptor] = []
    pages = 0
    while url is not None and len(found) <= MAX_REFERRERS:
        if pages == MAX_PAGES:
            raise _incomplete(repo, subject, f"span more than {MAX_PAGES} pages")
        pages += 1
        fetched = t.fetch(
            "GET",
            url,
            scopes=repo.pull,
            headers={"Accept": media.OCI_INDEX},
            cap=MAX_MANIFEST_SIZE,
            absent=(404,) if pages == 1 else (),
        )
        if fetched is None:
            return None
        response, raw = fetched
        what = f"the referrers of {subject.short} in {repo.name}"
        index = _as_index(parse_manifest(raw, response.headers.get("content-type")), what)
        found.extend(d for d in index.manifests if _matches(d, artifact_type))
        url = next_link(response)
    return _cap(found, repo, subject)


def read_fallback(repo: RepositoryHandle, subject: Digest) -> list[Descriptor]:
    """The entries of the ``<alg>-<hex>`` fallback index (empty when the tag is absent).

    Some registries answer that tag with the subject itself: that is no fallback index (for
    an index subject, its platform manifests would otherwise read as referrers).
    """
    try:
        manifest = repo.fetch_manifest(subject.tag_form)
    except NotFoundError:
        return []
    if manifest.digest == subject:
        log.debug("%s:%s resolves to the subject itself", repo.name, subject.tag_form)
        return []
    index = _as_index(manifest, f"the referrers index {repo.name}:{subject.tag_form}")
    return list(index.manifests)


def list_referrers(
    repo: RepositoryHandle, subject: Digest, artifact_type: str | None = None
) -> list[Descriptor]:
    """Referrers of ``subject``, by whichever mode the registry supports."""
    client = repo.client
    fallback = _cap(read_fallback(repo, subject), repo, subject)
    found: list[Descriptor] | None = None
    if client.referrers_mode != "tag-schema":
        found = _api(repo, subject, artifact_type)
        client.referrers_mode = "tag-schema" if found is None else "api"
    # The fallback index counts beside an API listing: a registry that claimed to index a
    # referrer (``OCI-Subject``) and then did not list it had it written there instead.
    listed = {d.digest for d in found or ()}
    merged = [*(found or ()), *(d for d in fallback if d.digest not in listed)]
    return _cap([d for d in merged if _matches(d, artifact_type)], repo, subject)


def referrer_descriptor(manifest: Manifest) -> Descriptor:
    """The index entry for a referrer: artifactType (else config type) and annotations."""
    artifact_type = manifest.artifact_type
    if artifact_type is None and isinstance(manifest, ImageManifest):
        artifact_type = manifest.config.media_type
    return Descriptor(
        manifest.media_type,
        manifest.digest,
        len(manifest.raw),
        annotations=dict(manifest.annotations),
        artifact_type=artifact_type,
    )


def put_referrer(
    repo: RepositoryHandle, raw: bytes, media_type: str, subject: Descriptor
) -> Descriptor:
    """Store a referrer by digest and make sure it is listed for ``subject``."""
    return put_referrers(repo, subject, [(raw, media_type)])[0]


def put_referrers(
    repo: RepositoryHandle, subject: Descriptor, manifests: Sequence[tuple[bytes, str]]
) -> list[Descriptor]:
    """Store referrers of one subject by digest, then list them all with one index update.

    Each manifest is put by digest; those the registry did not index itself (no
    ``OCI-Subject`` naming the subject) are added to the fallback index in a single
    read-merge-write-verify cycle, so a batch costs one settle pause, not one per referrer.
    """
    parsed = [parse_manifest(raw, media_type) for raw, media_type in manifests]
    for manifest in parsed:
        if manifest.subject is None or manifest.subject.digest != subject.digest:
            raise InternalError(
                f"referrer {manifest.digest.short} does not name {subject.digest.short} as subject"
            )
    answers = run_all(
        [
            partial(repo.put_raw_manifest, str(m.digest), m.raw, m.media_type, m.digest)
            for m in parsed
        ]
    )
    unindexed: list[Descriptor] = []
    claimed: list[Descriptor] = []
    for manifest, headers in zip(parsed, answers, strict=True):
        said = headers.get("oci-subject", "").strip() == str(subject.digest)
        (claimed if said else unindexed).append(referrer_descriptor(manifest))
    if claimed:
        unindexed.extend(_not_listed(repo, subject.digest, claimed))
    if unindexed:
        _add_to_fallback(repo, subject.digest, unindexed)
    return [manifest.descriptor for manifest in parsed]


def _not_listed(
    repo: RepositoryHandle, subject: Digest, claimed: Sequence[Descriptor]
) -> list[Descriptor]:
    """Of the referrers the registry said it indexed (``OCI-Subject``), those its Referrers
    API does not list: the header alone is not trusted, the listing is read back."""
    listed = _api(repo, subject, None)
    if listed is None:  # the header without the API behind it
        repo.client.referrers_mode = "tag-schema"
        return list(claimed)
    if repo.client.referrers_mode is None:
        repo.client.referrers_mode = "api"
    digests = {d.digest for d in listed}
    missing = [d for d in claimed if d.digest not in digests]
    if missing:
        log.debug("%s claimed to index %d referrer(s) it does not list", repo.name, len(missing))
    return missing


def _missing(repo: RepositoryHandle, subject: Digest, entries: Sequence[Descriptor]) -> bool:
    listed = {d.digest for d in read_fallback(repo, subject)}
    return any(entry.digest not in listed for entry in entries)


def _add_to_fallback(
    repo: RepositoryHandle, subject: Digest, entries: Sequence[Descriptor], *, defer: bool = True
) -> None:
    """Merge ``entries`` into the fallback index; return once they have stayed listed.

    The check that counts comes after a settle pause of about two of our write cycles
    (at least ``SETTLE_MIN``): a writer that read the index before our write and writes
    back within that time has replaced it by then, and the lost entries are merged again.
    Inside a :func:`~digestgate.oci.registry.settling.deferred_checks` scope the first
    check is queued there instead of waited for here.
    """
    tag = subject.tag_form
    sleep = repo.client.sleep
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        started = time.monotonic()
        current = read_fallback(repo, subject)
        listed = {d.digest for d in current}
        new = [entry for entry in entries if entry.digest not in listed]
        if new:
            raw = build_index([*current, *new])
            repo.put_raw_manifest(tag, raw, media.OCI_INDEX, Digest.of(raw))
        cycle = time.monotonic() - started
        pause = min(SETTLE_MAX, max(SETTLE_MIN, 2 * cycle)) * random.uniform(1.0, 1.5)  # noqa: S311
        settling = current_settling()
        if defer and settling is not None:
            settling.add(time.monotonic() + pause, partial(_recheck, repo, subject, entries))
            return
        sleep(pause)
        if not _missing(repo, subject, entries):
            return
        log.debug("referrers index %s lost our entries (attempt %d); retrying", tag, attempt)
        sleep(random.uniform(0.02, 0.2) * attempt)  # noqa: S311 - jitter between writers
    raise OperationalError(
        f"could not record {len(entries)} referrer(s) of {subject.short} in {repo.name}:{tag} "
        f"after {WRITE_ATTEMPTS} attempts",
        hint="other writers keep replacing the referrers index; retry later",
    )


def _recheck(repo: RepositoryHandle, subject: Digest, entries: Sequence[Descriptor]) -> None:
    """A deferred check: entries another writer dropped are written (and checked) again."""
    if _missing(repo, subject, entries):
        log.debug("referrers index %s lost our entries; writing them again", subject.tag_form)
        _add_to_fallback(repo, subject, entries, defer=False)
