"""Registry authentication: anonymous, Basic, and the Docker Bearer token flow.

The scheme is learned from the registry's first 401 challenge (specs 5.10): ``Basic`` means
send the credentials on every request; ``Bearer`` means ask the challenge's ``realm`` for a
token covering the request's scopes, sending the credentials (if any) to the realm only, and
to a realm on another host than the registry only over HTTPS (docs/registry-auth.md).
Tokens are cached per scope set until shortly before they expire. A cross-repository mount
asks for both ``repository:<target>:pull,push`` and ``repository:<source>:pull`` in one
token request, because the reference registry needs pull on the source to mount.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from digestgate.errors import AuthError, RegistryError
from digestgate.oci.registry import tokenservice
from digestgate.oci.registry.challenge import Challenge
from digestgate.oci.registry.credentials import Credentials
from digestgate.oci.registry.errors import (
    auth_hint,
    error_for,
    json_object,
    redact_url,
    register_secret,
)
from digestgate.oci.registry.handles import Scopes, TransportHandle

#: distribution token.md: ``expires_in`` defaults to 60 s and is never less.
DEFAULT_TOKEN_LIFETIME: Final = 60.0
#: Refresh this long before the stated expiry, so a token never expires in flight.
EXPIRY_MARGIN: Final = 10.0
_TOKEN_RE: Final = re.compile(r"[\x21-\x7e]+")


def pull_scope(repository: str) -> str:
    """``repository:<name>:pull``: the scope every read needs."""
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    """``repository:<name>:pull,push``: the scope every write needs."""
    return f"repository:{repository}:pull,push"


def mount_scopes(target: str, source: str) -> Scopes:
    """Both scopes a cross-repository mount needs, in one token request (specs 5.5)."""
    return (push_scope(target), pull_scope(source))


@dataclass(frozen=True)
class _Token:
    value: str
    expires: float


class Authenticator:
    """What a registry asked for, the credentials to answer with, and the tokens obtained."""

    def __init__(
        self,
        registry: str,
        credentials: Callable[[], Credentials | None],
        clock: Callable[[], float],
    ) -> None:
        self.registry = registry
        self._load_credentials = credentials
        self._clock = clock
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self.scheme: str | None = None
        self._realm: str | None = None
        self._service: str | None = None
        self._tokens: dict[frozenset[str], _Token] = {}
        #: Every scope set a token was requested for (tests and -v output read it).
        self.token_requests: list[Scopes] = []

    def credentials(self) -> Credentials | None:
        """The credentials for this registry, looked up once and only when needed."""
        with self._lock:
            if not self._credentials_loaded:
                self._credentials = self._load_credentials()
                self._credentials_loaded = True
            return self._credentials

    def header(self, scopes: Scopes) -> str | None:
        """The ``Authorization`` value for a request with these scopes, when one is ready."""
        if self.scheme == "basic":
            creds = self.credentials()
            if creds is None or creds.identity_token:
                return None
            raw = f"{creds.username}:{creds.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if self.scheme == "bearer":
            with self._lock:
                token = self._tokens.get(frozenset(scopes))
            if token is not None and token.expires > self._clock():
                return "Bearer " + token.value
        return None

    def needs_token(self, scopes: Scopes) -> bool:
        """True when the registry uses tokens and none is cached for these scopes."""
        return self.scheme == "bearer" and self.header(scopes) is None

    def on_challenge(
        self, challenges: Iterable[Challenge], scopes: Scopes, t: TransportHandle
    ) -> None:
        """Answer a 401: learn the scheme, then prepare credentials or fetch a fresh token."""
        by_scheme = {c.scheme: c for c in challenges}
        bearer = by_scheme.get("bearer")
        if bearer is not None and bearer.get("realm"):
            self.scheme = "bearer"
            self._realm = bearer.get("realm")
            self._service = bearer.get("service")
            # Our own scopes, not the challenge's: a mount needs two and the challenge names
            # one. A request without scopes (the /v2/ ping) takes what the challenge asks.
            extra = bearer.get("scope")
            wanted = scopes or ((extra,) if extra else ())
            self.fetch_token(wanted, t, key=scopes)
            return
        if "basic" in by_scheme:
            self.scheme = "basic"
            if self.header(scopes) is None:
                raise AuthError(
                    f"{self.registry} requires credentials and none were found",
                    hint=auth_hint(self.registry),
                    status=401,
                )
            return
        raise AuthError(
            f"{self.registry} asked for an authentication scheme digestgate does not support",
            hint="digestgate supports Basic and Bearer token authentication",
            status=401,
        )

    def fetch_token(self, scopes: Scopes, t: TransportHandle, *, key: Scopes | None = None) -> None:
        """Ask the realm for a token covering ``scopes`` and cache it."""
        realm = self._realm
        if realm is None:
            raise RegistryError(f"{self.registry}: no token realm known")
        creds = self.credentials()
        realm_url = tokenservice.realm_url(t, realm, with_credentials=creds is not None)
        self.token_requests.append(tuple(scopes))
        params: list[tuple[str, str]] = []
        if self._service:
            params.append(("service", self._service))
        params.extend(("scope", s) for s in scopes)
        if creds is not None and creds.identity_token:
            # oauth.md: an identity token is a refresh token for the POST grant.
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "digestgate",
                "scope": " ".join(scopes),
            }
            if self._service:
                form["service"] = self._service
            status, body = tokenservice.request(t, "POST", realm_url, data=form)
        else:
            basic = (creds.username, creds.password) if creds is not None else None
            status, body = tokenservice.request(t, "GET", realm_url, params=params, basic=basic)
        if status != 200:
            err = error_for("GET", redact_url(realm), status, body, registry=self.registry)
            if status in (400, 401, 403):
                raise AuthError(
                    f"the token service of {self.registry} refused the request (HTTP {status})",
                    hint=auth_hint(self.registry),
                    status=status,
                ) from err
            raise err
        value, lifetime = _parse_token(body, self.registry)
        with self._lock:
            self._tokens[frozenset(key if key is not None else scopes)] = _Token(
                value, self._clock() + max(lifetime, DEFAULT_TOKEN_LIFETIME) - EXPIRY_MARGIN
            )


def _parse_token(body: bytes, registry: str) -> tuple[str, float]:
    bad = RegistryError(
        f"the token service of {registry} answered without a usable token",
        hint="the token endpoint is misconfigured",
    )
    doc = json_object(body, bad)
    value = doc.get("token") or doc.get("access_token")
    # It goes into an Authorization header: visible ASCII only (RFC 6750 b64token is a
    # subset), so it can neither break the request nor end up quoted in an error message.
    if not isinstance(value, str) or not _TOKEN_RE.fullmatch(value):
        raise bad
    refresh = doc.get("refresh_token")
    register_secret(value, refresh if isinstance(refresh, str) else "")
    lifetime = doc.get("expires_in")
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool):
        lifetime = DEFAULT_TOKEN_LIFETIME
    return value, float(lifetime)
