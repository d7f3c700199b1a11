"""Copying every artifact of a promotion by digest: concurrently, verified, all or nothing.

Step 3 of :mod:`digestgate.promotion.promote`: each artifact is copied to its target and its target
manifest is read back and hashed; the first failure keeps its error class and says what
reached the target and that no tag moved.
"""

from __future__ import annotations

import copy as _copy
import functools
import math
import threading
from collections.abc import Callable, Sequence

from digestgate.concurrency import run_all
from digestgate.errors import DigestgateError, IntegrityError, NotFoundError
from digestgate.oci.manifest import Descriptor
from digestgate.oci.open import Stores
from digestgate.oci.store import ImageStore
from digestgate.promotion.copy import CopyReport, ProgressSink, copy_image
from digestgate.promotion.model import ArtifactState, PromotionResult


class _SharedProgress:
    """Adds the byte totals of concurrent copies into one progress display."""

    def __init__(self, inner: ProgressSink) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._total = 0
        self._done = 0

    def start(self, total_bytes: int) -> None:
        with self._lock:
            self._total += total_bytes
            self._inner.start(self._total)
            self._inner.advance(self._done)

    def advance(self, n: int) -> None:
        with self._lock:
            self._done += n
            self._inner.advance(n)

    def done(self) -> None:
        """Per-copy end: the display ends once, after every artifact."""


def copy_all(
    artifacts: Sequence[ArtifactState],
    stores: Stores,
    concurrency: int,
    progress: ProgressSink | None,
    result: PromotionResult,
    attach: Callable[[ArtifactState], None],
) -> None:
    """Copy, verify and ``attach`` evidence to every artifact, concurrently.

    Evidence and the promotion record are attached as soon as an artifact's copy is
    verified, overlapping the other copies: they name the digest, not a tag, so they are
    true whatever happens next (tags move only after every artifact is done).
    """
    workers = min(concurrency, len(artifacts))
    per_artifact = max(1, math.ceil(concurrency / workers))
    shared = _SharedProgress(progress) if progress is not None else None
    for artifact in artifacts:
        result.reports[artifact.name] = CopyReport()

    def one(artifact: ArtifactState) -> None:
        target = stores.open(artifact.target_location, create=True)
        artifact.target = target
        copy_image(
            artifact.source,
            target,
            artifact.descriptor,
            concurrency=per_artifact,
            progress=shared,
            report=result.reports[artifact.name],
        )
        _verify_copy(target, artifact.descriptor)
        attach(artifact)

    def copied() -> str:
        return "copied so far: " + "; ".join(
            f"{n}: {r.summary()}" for n, r in result.reports.items()
        )

    try:
        _each(artifacts, concurrency, one, "copying", copied)
    finally:
        if progress is not None:
            progress.done()


def _each(
    artifacts: Sequence[ArtifactState],
    concurrency: int,
    task: Callable[[ArtifactState], None],
    doing: str,
    so_far: Callable[[], str],
) -> None:
    """Run ``task`` for every artifact (bounded); re-raise the first failure, annotated.

    The error keeps its class (so its exit code); its message names the artifact, what
    reached the target, and that no tag moved.
    """
    failed: list[tuple[str, BaseException]] = []

    def call(artifact: ArtifactState) -> None:
        try:
            task(artifact)
        except BaseException as exc:
            failed.append((artifact.name, exc))
            raise

    try:
        run_all([functools.partial(call, a) for a in artifacts], workers=concurrency)
    except DigestgateError as error:
        name = next(n for n, e in failed if e is error)
        raise _annotated(error, name, doing, so_far()) from error


def _annotated(error: DigestgateError, name: str, doing: str, detail: str) -> DigestgateError:
    """The error, same class and exit code, saying what reached the target and what to do."""
    annotated = _copy.copy(error)
    annotated.message = (
        f"promotion stopped {doing} {name}: {error.message} "
        + (f"({detail}); " if detail else "; ")
        + "no tag was changed"
    )
    annotated.hint = (
        error.hint + "; then " if error.hint else ""
    ) + "run the same promote again: content already copied is skipped"
    return annotated


def _verify_copy(target: ImageStore, descriptor: Descriptor) -> None:
    """Fetch the target manifest by digest, hashing it: ``copy_image`` skips a manifest the
    target already holds, so this is the check that the target really serves those bytes."""
    try:
        target.resolve(descriptor.digest)  # wrong bytes raise IntegrityError
    except NotFoundError as exc:
        raise IntegrityError(
            f"{target.location} does not hold {descriptor.digest} after copying it",
            hint="the target dropped the manifest; check the registry",
        ) from exc
