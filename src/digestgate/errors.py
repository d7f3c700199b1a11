"""One error hierarchy for the whole package; the exit code belongs to the class.

Library code raises these (never ``sys.exit``); the CLI maps them to exit codes in one place.
Third-party exceptions are translated at the adapter edge with ``raise ... from exc``.
Messages are one line, never contain secrets, and ``hint`` says what to do next.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes (README, design section 3). Never renumber."""

    OK = 0
    BLOCKED = 1
    USAGE = 2
    OPERATIONAL = 3
    INTERNAL = 4


class DigestgateError(Exception):
    """Root of every error digestgate raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(DigestgateError):
    """Bad flags or arguments: exit 2."""

    exit_code = ExitCode.USAGE


class ConfigError(DigestgateError):
    """An unreadable or invalid policy, release, key or config file: exit 2."""

    exit_code = ExitCode.USAGE


class InvalidReferenceError(UsageError):
    """A malformed image reference or digest given by the user."""


class InputError(UsageError):
    """An input file (JUnit report, metadata file, ...) is malformed: exit 2, never a pass."""


class BlockedError(DigestgateError):
    """The gate denied, verification failed, or lint found violations: exit 1."""

    exit_code = ExitCode.BLOCKED


class OperationalError(DigestgateError):
    """Could not decide: registry, network or storage failure after retries: exit 3."""

    exit_code = ExitCode.OPERATIONAL


class RegistryError(OperationalError):
    """The registry answered with an error, or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code


class NotFoundError(RegistryError):
    """A manifest, blob or tag does not exist where it was looked for."""


class AuthError(RegistryError):
    """Credentials were missing or refused (401/403 that never succeeds)."""


class IntegrityError(OperationalError):
    """Bytes did not hash to the digest, or not to the size, they were asked for.

    A store that serves wrong bytes is faulty: every command stops with exit 3 (the gate
    fetches once more first, since a short or corrupted answer may be transient).
    """


class IncompleteReadError(OperationalError):
    """Evidence, or a listing of it, could not be read in full: an I/O error, a size or
    count cap, a page limit. The gate never decides on such a read (design section 8): it
    stops with exit 3 naming the store and the limit, never a pass and never a signed FAILED.
    """


class ConcurrentChangeError(OperationalError):
    """Another writer changed what this run was changing (a tag moved between our read and
    our write, or after our write): this run cannot vouch for the result (exit 3)."""

    def __init__(
        self, message: str, *, hint: str | None = None, current: object | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.current = current
        """What the contested thing holds now (a Digest, or None when absent/unknown)."""


class StorageError(OperationalError):
    """A local file or layout could not be read or written."""


class InternalError(DigestgateError):
    """A bug: exit 4."""

    exit_code = ExitCode.INTERNAL
