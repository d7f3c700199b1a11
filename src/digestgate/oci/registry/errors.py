"""Turn registry answers into digestgate errors, with secrets redacted.

Messages name the method, the URL path (never its query string: upload URLs carry session
state such as ``_state=``, and redirect targets carry signatures) and a one-line summary of the
OCI error body (distribution-spec 1.1 "Error Codes"). Bodies are read with a size cap.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from digestgate.errors import AuthError, NotFoundError, RegistryError
from digestgate.jsonutil import JSONFormatError, loads_strict

#: Error bodies larger than this are cut: they are only summarised.
MAX_ERROR_BODY: Final = 64 * 1024

_SECRET_RE: Final = re.compile(
    r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+|"
    r"((?:access_|refresh_|id)?token|password|secret|_state|signature|sig)=[^&\s\"']+"
)
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]+")


def redact_url(url: object) -> str:
    """``scheme://host/path`` with any query string and user info replaced."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<url>"
    netloc = parts.netloc.rpartition("@")[2]
    query = "<redacted>" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


#: Credential values this process holds (passwords, identity and access tokens, and their
#: Basic-header encodings). A registry or token service that echoes one back in an error
#: body must not get it printed to a CI log, which outlives the secret's masking.
_KNOWN_SECRETS: set[str] = set()
#: Shorter values are not scrubbed: they would match ordinary words in every message.
MIN_SECRET_LENGTH: Final = 4


def register_secret(*values: str) -> None:
    """Remember credential values so that :func:`redact_text` removes them from any text."""
    for value in values:
        if len(value) >= MIN_SECRET_LENGTH:
            _KNOWN_SECRETS.add(value)


def redact_text(text: str, limit: int = 300) -> str:
    """One line of untrusted text, with known credentials and anything resembling one
    removed."""
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "<redacted>")
    text = _CONTROL_RE.sub(" ", text)
    text = _SECRET_RE.sub(lambda m: (m.group(1) or m.group(2)) + " <redacted>", text)
    text = re.sub(r"\?\S*", "?<redacted>", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TransientError(RegistryError):
    """A failure a later attempt may not meet: 429, a 5xx, a lost connection, a request
    that was too slow. ``retry_after`` is what the registry asked to wait, if anything."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, hint=hint, status=status, code=code)
        self.retry_after = retry_after


class BrokenBodyError(TransientError):
    """An answer's body broke off, or came too slowly, while it was being read: the request
    and the read are retried together."""


class DeadlineError(RegistryError):
    """The overall deadline for registry work (``--deadline``) passed: never retried."""


def json_object(body: bytes, bad: Exception) -> dict[str, Any]:
    """Parse a registry's JSON answer strictly; raise ``bad`` unless it is an object."""
    try:
        doc = loads_strict(body)
    except JSONFormatError:
        raise bad from None
    if not isinstance(doc, dict):
        raise bad
    return doc


def summarize_body(body: bytes) -> tuple[str, str | None]:
    """A one-line summary of an error body and its first OCI error code, if any."""
    if not body:
        return "", None
    try:
        doc = loads_strict(body[:MAX_ERROR_BODY])
    except JSONFormatError:
        return redact_text(body[:300].decode("utf-8", "replace").strip()), None
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list) or not errors:
        return "", None
    parts: list[str] = []
    first_code: str | None = None
    for item in errors[:3]:
        if not isinstance(item, dict):
            continue
        code = item.get("code")
        message = item.get("message")
        code_text = code if isinstance(code, str) else "UNKNOWN"
        first_code = first_code or code_text
        text = code_text
        if isinstance(message, str) and message:
            text += f": {message}"
        parts.append(redact_text(text, 150))
    if len(errors) > 3:
        parts.append(f"(+{len(errors) - 3} more)")
    return "; ".join(parts), first_code


def error_for(
    method: str,
    url: object,
    status: int,
    body: bytes,
    *,
    registry: str,
    retry_after: float | None = None,
) -> RegistryError:
    """The error a failed answer stands for: 404 NotFound, 401/403 Auth, 429/5xx Transient,
    else Registry."""
    summary, code = summarize_body(body)
    message = f"{method} {redact_url(url)}: HTTP {status}"
    if summary:
        message += f" ({summary})"
    if status == 404:
        return NotFoundError(
            message, hint="check the repository, tag or digest", status=status, code=code
        )
    if status in (401, 403):
        return AuthError(message, hint=auth_hint(registry), status=status, code=code)
    if status == 429 or status >= 500:
        hint = "the registry is overloaded or failing; retry later"
        return TransientError(message, hint=hint, status=status, code=code, retry_after=retry_after)
    return RegistryError(message, hint="the registry refused the request", status=status, code=code)


def auth_hint(registry: str) -> str:
    """What to do about refused credentials for ``registry``."""
    return (
        f"log in with `docker login {registry}` (or a credential helper), or set "
        f"DIGESTGATE_REGISTRY_HOST={registry} with DIGESTGATE_REGISTRY_USERNAME and "
        "DIGESTGATE_REGISTRY_PASSWORD; check that the account may access this repository"
    )
