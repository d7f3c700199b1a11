"""The tag plan of a promotion: each tag's previous digest, kept on disk while tags move.

``promote --out FILE`` records, in ``FILE.tagplan`` and before it moves a tag, the digest
that tag pointed to (null: absent). The plan is removed once ``FILE`` is written. When
tagging fails midway the plan stays, and the re-run reads it: a tag the failed run already
moved points at the wanted digest now, so the re-run records the plan's previous digest for
it instead of the wanted digest it finds. Entries are keyed by repository, tag and wanted
digest, so a plan never speaks for another promotion's digest.

A re-run after a *successful* promotion finds every tag already at its digest, and the plan
gone; the promotion record it is about to overwrite (``FILE`` itself) still knows what each
tag pointed to before, so the plan is seeded from it (:meth:`TagPlan.load`'s ``record``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from digestgate.atomicfile import write_atomic
from digestgate.digest import Digest
from digestgate.errors import ConfigError, DigestgateError, StorageError
from digestgate.fileread import read_capped
from digestgate.jsonutil import JSONFormatError, dumps_canonical, loads_strict

if TYPE_CHECKING:
    from digestgate.release import Promotion

KIND: Final = "TagPlan"
API_VERSION: Final = "digestgate/v1"
#: The plan is our own small file; anything larger is not one.
MAX_PLAN_SIZE: Final = 4 * 1024 * 1024

Key = tuple[str, str, Digest]  # repository, tag, wanted digest


def plan_path(out: Path) -> Path:
    """Where the tag plan of a promotion writing ``out`` lives."""
    return out.with_name(out.name + ".tagplan")


@dataclass
class TagPlan:
    """Tags about to move (or moved by a run that failed), with their previous digests."""

    path: Path
    entries: dict[Key, Digest | None] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, *, record: Promotion | None = None) -> TagPlan:
        """The plan at ``path`` (an absent file is an empty plan), seeded with the previous
        digests a promotion ``record`` of the same digests holds for the tags it set."""
        entries: dict[Key, Digest | None] = {}
        if record is not None:
            for artifact in record.artifacts.values():
                location = artifact.location
                if location is None or location.digest is None:
                    continue
                for tag in artifact.tags:
                    entries[(location.name, tag.tag, location.digest)] = tag.previous
        try:
            data = read_capped(path, MAX_PLAN_SIZE, what="tag plan")
        except FileNotFoundError:
            return cls(path, entries)
        except OSError as exc:
            raise StorageError(
                f"cannot read the tag plan {path}: {exc.strerror or exc}",
                hint="check its permissions",
            ) from exc
        entries.update(_parse(data, path))  # a failed run's plan is newer than the record
        return cls(path, entries)

    def previous(
        self, repository: str, tag: str, wanted: Digest, current: Digest | None
    ) -> Digest | None:
        """What the tag pointed to before this promotion, given where it points now.

        A tag already at ``wanted`` that the plan lists was moved by an earlier, failed run:
        its planned previous digest is the truth. Otherwise the current digest is.
        """
        key = (repository, tag, wanted)
        if current == wanted and key in self.entries:
            return self.entries[key]
        return current

    def record(self, repository: str, tag: str, wanted: Digest, previous: Digest | None) -> None:
        """Note a tag about to move and save the plan (atomically) before it does."""
        self.record_all([(repository, tag, wanted, previous)])

    def record_all(self, moves: Sequence[tuple[str, str, Digest, Digest | None]]) -> None:
        """Note tags about to move (repository, tag, wanted, previous) and save the plan
        (atomically, once) before any of them does."""
        fresh = {(r, t, w): p for r, t, w, p in moves if self.entries.get((r, t, w), ()) != p}
        if not fresh:
            return
        self.entries.update(fresh)
        doc = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "tags": [
                {"repository": r, "tag": t, "digest": str(d), "previous": _text(p)}
                for (r, t, d), p in sorted(self.entries.items(), key=lambda i: str(i[0]))
            ],
        }
        try:
            write_atomic(self.path, dumps_canonical(doc) + b"\n")
        except OSError as exc:
            raise StorageError(
                f"cannot write the tag plan {self.path}: {exc.strerror or exc}",
                hint="no tag was moved by this step; check the --out directory, then run again",
            ) from exc

    def remove(self) -> None:
        """Forget the plan: the promotion record now holds the previous digests."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot remove the tag plan {self.path}: {exc.strerror or exc}",
                hint="the promotion is complete; remove the file by hand",
            ) from exc


def _text(digest: Digest | None) -> str | None:
    return str(digest) if digest is not None else None


def _parse(data: bytes, path: Path) -> dict[Key, Digest | None]:
    def bad(reason: str) -> ConfigError:
        return ConfigError(
            f"{path} is not a digestgate tag plan: {reason}",
            hint="it is left by a promotion whose tagging failed; remove it only if that "
            "promotion is abandoned",
        )

    if len(data) > MAX_PLAN_SIZE:
        raise bad(f"larger than {MAX_PLAN_SIZE} bytes")
    try:
        doc: Any = loads_strict(data)
    except JSONFormatError as exc:
        raise bad(str(exc)) from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("apiVersion") != API_VERSION:
        raise bad(f"kind must be {KIND} and apiVersion {API_VERSION}")
    tags = doc.get("tags")
    if not isinstance(tags, list):
        raise bad("'tags' must be a list")
    entries: dict[Key, Digest | None] = {}
    for item in tags:
        if not isinstance(item, dict):
            raise bad("every tag entry must be an object")
        repository, tag, digest, previous = (
            item.get("repository"),
            item.get("tag"),
            item.get("digest"),
            item.get("previous"),
        )
        if not (isinstance(repository, str) and isinstance(tag, str) and isinstance(digest, str)):
            raise bad("every tag entry needs 'repository', 'tag' and 'digest'")
        if previous is not None and not isinstance(previous, str):
            raise bad("'previous' must be a digest or null")
        try:
            key = (repository, tag, Digest.parse(digest))
            entries[key] = Digest.parse(previous) if previous is not None else None
        except DigestgateError as exc:
            raise bad(exc.message) from None
    return entries
