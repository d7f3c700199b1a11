"""Where this run has put or found each blob on one registry.

A blob already in another repository of the same registry is mounted (one ``POST`` with
``mount`` and ``from``, distribution-spec 1.1 "Mounting a blob from another repository")
instead of being uploaded again: the base layers that a backend and a frontend share, the
empty config of every evidence referrer, a lane result about several artifacts. Only what
the registry itself confirmed is remembered (a committed upload, a mount, a HEAD that found
the blob); a mount from there that the registry declines or refuses forgets the home, and
the blob is uploaded as it would have been.
"""

from __future__ import annotations

import threading
from typing import Final

from digestgate.digest import Digest

#: At most this many blobs remembered per registry (a promotion touches far fewer).
MAX_HOMES: Final = 100_000


class BlobHomes:
    """Blob digest -> a repository of this registry known to hold it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._homes: dict[Digest, str] = {}

    def note(self, digest: Digest, repository: str) -> None:
        """The registry confirmed ``repository`` holds ``digest``."""
        with self._lock:
            if digest in self._homes or len(self._homes) < MAX_HOMES:
                self._homes[digest] = repository

    def forget(self, digest: Digest) -> None:
        """The home of ``digest`` no longer serves it (a mount there was declined)."""
        with self._lock:
            self._homes.pop(digest, None)

    def home(self, digest: Digest, other_than: str) -> str | None:
        """A repository other than ``other_than`` known to hold ``digest``, if any."""
        with self._lock:
            found = self._homes.get(digest)
        return found if found != other_than else None
