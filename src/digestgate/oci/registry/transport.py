"""HTTP for one registry host: scheme choice, TLS, timeouts, auth, retries, redirects.

Every request has a timeout. Replayable requests (no body, or a body held in memory) are
retried with exponential backoff and jitter on 429 (honouring ``Retry-After``, capped), 5xx
and connection errors. Streaming uploads are never resent here: the upload code restarts the
whole session instead. Redirects are followed by hand and ``Authorization`` is only ever sent
to the registry's own origin (distribution-spec main, "Pulling blobs"); credentials go to a
token service on another host only over HTTPS (:meth:`Transport.token_realm`).
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Final

import httpx

from digestgate import __version__
from digestgate.errors import AuthError, ConfigError, RegistryError
from digestgate.oci.open import StoreOptions
from digestgate.oci.registry.auth import Authenticator, Scopes
from digestgate.oci.registry.challenge import parse_challenges
from digestgate.oci.registry.credentials import Credentials
from digestgate.oci.registry.errors import (
    MAX_ERROR_BODY,
    auth_hint,
    error_for,
    redact_text,
    redact_url,
)

log = logging.getLogger("digestgate.registry")

USER_AGENT: Final = f"digestgate/{__version__}"
MAX_REDIRECTS: Final = 5
RETRY_AFTER_CAP: Final = 30.0
BACKOFF_CAP: Final = 20.0
MAX_TOKEN_RESPONSE: Final = 256 * 1024
_DOCKER_HUB_API: Final = "registry-1.docker.io"
_LINK_NEXT_RE: Final = re.compile(r'<([^>]*)>\s*;[^,]*\brel\s*=\s*"?next"?', re.IGNORECASE)
#: A DNS name or an IP literal (httpx gives IPv6 hosts without brackets).
_REALM_HOST_RE: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]+")


def join_url(response: httpx.Response, value: str, what: str) -> httpx.URL:
    """A URL a registry sent (absolute or relative), resolved against its request.

    A malformed one is the registry's fault: :class:`RegistryError`, never a traceback.
    """
    try:
        return response.request.url.join(value)
    except (httpx.InvalidURL, ValueError) as exc:
        raise RegistryError(
            f"{response.request.method} {redact_url(response.request.url)}: "
            f"the registry sent a malformed {what}",
            hint="the registry does not follow the distribution spec",
        ) from exc


def header_int(value: str | None) -> int | None:
    """A non-negative integer header value (ASCII digits only), else None.

    More than 18 digits (over any size a registry can mean) reads as 10**18, so a hostile
    header is still "too large" for every cap and never reaches Python's int-digit limit.
    """
    if value and value.isascii() and value.isdigit():
        return int(value) if len(value) <= 18 else 10**18
    return None


def next_link(response: httpx.Response) -> httpx.URL | None:
    """The ``Link: <...>; rel="next"`` target (RFC 8288), resolved against the request."""
    for value in response.headers.get_list("link"):
        match = _LINK_NEXT_RE.search(value)
        if match:
            return join_url(response, match.group(1), "Link header")
    return None


def split_host(registry: str) -> str:
    """The host part of ``host[:port]`` (brackets removed from IPv6 literals)."""
    if registry.startswith("["):
        return registry[1:].partition("]")[0]
    return registry.rpartition(":")[0] if registry.count(":") == 1 else registry


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listed(registry: str, hosts: Iterable[str]) -> bool:
    names = {h.strip().lower() for h in hosts}
    return registry.lower() in names or split_host(registry).lower() in names


def base_url(registry: str, options: StoreOptions) -> str:
    """``http://`` only for loopback and insecure hosts (unless listed as TLS), else https."""
    host = _DOCKER_HUB_API if registry == "docker.io" else registry
    plain = is_loopback(split_host(registry)) or _listed(registry, options.insecure_hosts)
    if _listed(registry, options.tls_hosts):
        plain = False
    return f"{'http' if plain else 'https'}://{host}"


def _ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_bundle:
        try:
            context.load_verify_locations(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load CA bundle {ca_bundle}: {exc}",
                hint="--ca-bundle needs a readable PEM file of CA certificates",
            ) from exc
    return context


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Transport:
    """An ``httpx.Client`` bound to one registry, with auth and retries."""

    def __init__(
        self,
        registry: str,
        options: StoreOptions,
        credentials: Callable[[], Credentials | None],
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.options = options
        self.base = httpx.URL(base_url(registry, options))
        self._sleep = sleep
        self.auth = Authenticator(registry, credentials, clock)
        # A plain-HTTP registry's client never carries an https request (see _client_for),
        # so it needs no TLS context: loading the CA bundle costs ~50 ms per process.
        self.client = self._new_client(
            _ssl_context(options.ca_bundle) if self.base.scheme == "https" else False
        )
        self._tls_client: httpx.Client | None = None
        #: Number of requests actually sent (tests count retries with it).
        self.sent = 0

    def _new_client(self, verify: ssl.SSLContext | bool) -> httpx.Client:
        return httpx.Client(
            transport=self.options.transport,
            verify=verify,
            timeout=httpx.Timeout(self.options.timeout),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            trust_env=False,
        )

    def _client_for(self, url: httpx.URL | str) -> httpx.Client:
        """The client for a request: https URLs always go through a verifying client.

        A plain-HTTP registry may still redirect to (or name a token service on) https; that
        client is created the first time it is needed.
        """
        if self.base.scheme == "https" or httpx.URL(url).scheme != "https":
            return self.client
        if self._tls_client is None:
            self._tls_client = self._new_client(_ssl_context(self.options.ca_bundle))
        return self._tls_client

    def url(self, path: str) -> httpx.URL:
        """An absolute URL on this registry."""
        return self.base.join(path)

    def same_origin(self, url: httpx.URL) -> bool:
        """True for URLs on the registry's own scheme, host and port."""
        return (url.scheme, url.host, url.port) == (
            self.base.scheme,
            self.base.host,
            self.base.port,
        )

    def token_realm(self, realm: str, *, with_credentials: bool) -> httpx.URL:
        """The token service URL a challenge named, checked before anything is sent there.

        It must be an absolute ``http(s)`` URL without user info. Credentials go to a realm
        on another host only over HTTPS, as Docker clients do (Docker Hub's registry sends
        clients to auth.docker.io); over plain HTTP only to the registry's own host, and
        only where that host may be plain HTTP (loopback, or ``--insecure-registry``).
        """
        try:
            url = httpx.URL(realm)
        except (httpx.InvalidURL, ValueError):
            url = None
        if (
            url is None
            or url.scheme not in ("http", "https")
            or not _REALM_HOST_RE.fullmatch(url.host)
            or url.userinfo
        ):
            raise AuthError(
                f"{self.registry} named a token service that is not an http(s) URL: "
                f"{redact_text(redact_url(realm), 120)!r}",
                hint="the registry's WWW-Authenticate challenge is malformed; check the "
                "registry address",
            )
        if url.scheme == "https" or not with_credentials:
            return url
        host = url.host.lower()
        if host != (self.base.host or "").lower():
            raise AuthError(
                f"the token service {redact_url(url)} of {self.registry} is on another host "
                "and not HTTPS",
                hint="digestgate sends credentials to a token service on another host only "
                "over HTTPS; the registry's token realm must be https://",
            )
        netloc = f"{host}:{url.port}" if url.port else host
        if is_loopback(host) or _listed(netloc, self.options.insecure_hosts):
            return url
        raise AuthError(
            f"the token service {redact_url(url)} of {self.registry} is not HTTPS",
            hint="refusing to send credentials in clear text; list the host with "
            "--insecure-registry only if that is intended",
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> None:
        if retry_after is not None:
            delay = min(retry_after, RETRY_AFTER_CAP)
        else:
            base = min(BACKOFF_CAP, self.options.backoff * (2 ** (attempt - 1)))
            delay = base * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
        log.debug("retrying %s in %.2fs (attempt %d)", self.registry, delay, attempt + 1)
        self._sleep(delay)

    def _send_once(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str],
        content: bytes | Iterable[bytes] | None,
        follow_redirects: bool,
    ) -> httpx.Response:
        hops = 0
        while True:
            hdrs = dict(headers)
            if not self.same_origin(url):
                hdrs.pop("Authorization", None)
            client = self._client_for(url)
            request = client.build_request(method, url, headers=hdrs, content=content)
            self.sent += 1
            response = client.send(request, stream=True)
            log.debug("%s %s -> %d", method, redact_url(url), response.status_code)
            location = response.headers.get("location")
            if not (follow_redirects and response.is_redirect and location):
                return response
            response.close()
            hops += 1
            if hops > MAX_REDIRECTS:
                raise RegistryError(
                    f"{method} {redact_url(url)}: more than {MAX_REDIRECTS} redirects",
                    hint="the registry or its storage redirects in a loop",
                )
            url = join_url(response, location, "redirect Location")

    def send(
        self,
        method: str,
        url: httpx.URL,
        *,
        scopes: Scopes,
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        follow_redirects: bool = False,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send a request with auth and retries; the caller must close the response.

        The response may have any status except a 401 (which becomes :class:`AuthError` once
        a fresh authentication did not help); a transport failure that outlives the retries
        becomes :class:`RegistryError`. ``idempotent=False`` (an upload chunk) is sent once:
        the registry may have applied it even when the answer was lost.
        """
        replayable = content is None or isinstance(content, bytes)
        attempts = 1 + max(0, self.options.retries) if replayable and idempotent else 1
        attempt = 0
        fresh_auth = False
        while True:
            hdrs = dict(headers or {})
            if self.same_origin(url):
                if self.auth.needs_token(scopes):
                    self.auth.fetch_token(scopes, self)
                    fresh_auth = True
                value = self.auth.header(scopes)
                if value:
                    hdrs["Authorization"] = value
            try:
                response = self._send_once(method, url, hdrs, content, follow_redirects)
            except httpx.TransportError as exc:
                attempt += 1
                if attempt >= attempts:
                    raise self.unreachable(exc) from exc
                self._backoff(attempt, None)
                continue
            status = response.status_code
            if status == 401:
                body = self.read_error_body(response)
                answered = response.request.url
                if not self.same_origin(answered):
                    # A redirect target (blob storage, say) asked for credentials. Its
                    # challenge never becomes this registry's realm: the registry's
                    # credentials stay with the registry (distribution-spec main, "Pulling
                    # blobs"; go-containerregistry behaves the same).
                    raise AuthError(
                        f"{method} {redact_url(url)}: redirected to {answered.host}, which asks "
                        "for authentication; this registry's credentials are never sent there",
                        hint="the registry redirects to storage that needs its own access; "
                        "ask its operator to serve pre-signed redirects",
                        status=401,
                    )
                if fresh_auth or not replayable:
                    raise self._auth_failed(method, url, body)
                challenges = parse_challenges(response.headers.get_list("www-authenticate"))
                self.auth.on_challenge(challenges, scopes, self)
                fresh_auth = True
                continue
            if (status == 429 or status >= 500) and attempt + 1 < attempts:
                retry_after = _retry_after(response.headers.get("retry-after"))
                self.read_error_body(response)
                attempt += 1
                self._backoff(attempt, retry_after if status in (429, 503) else None)
                continue
            return response

    def _auth_failed(self, method: str, url: httpx.URL, body: bytes) -> AuthError:
        err = error_for(method, url, 401, body, registry=self.registry)
        return AuthError(
            f"{err.message}: access denied after authenticating",
            hint=auth_hint(self.registry),
            status=401,
            code=err.code,
        )

    def unreachable(self, exc: Exception) -> RegistryError:
        """The error for a registry that could not be reached (after retries)."""
        detail = redact_text(str(exc), 160) or type(exc).__name__
        return RegistryError(
            f"cannot reach registry {self.registry}: {type(exc).__name__}: {detail}",
            hint="check the address and the network; for a plain-HTTP or self-signed "
            "registry use --insecure-registry, --tls-registry or --ca-bundle",
        )

    def read_error_body(self, response: httpx.Response) -> bytes:
        """Up to 64 KiB of a response body, then close it."""
        try:
            return self.read_capped(response, MAX_ERROR_BODY, truncate=True)
        except RegistryError:
            return b""
        finally:
            response.close()

    def read_capped(self, response: httpx.Response, cap: int, *, truncate: bool = False) -> bytes:
        """Read a streamed body, refusing (or cutting, with ``truncate``) beyond ``cap``."""
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > cap:
                    if truncate:
                        parts.append(chunk[: cap - (size - len(chunk))])
                        break
                    raise RegistryError(
                        f"{response.request.method} {redact_url(response.request.url)}: "
                        f"response larger than {cap} bytes",
                        hint="the registry served more than digestgate accepts",
                    )
                parts.append(chunk)
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc
        return b"".join(parts)

    def fail(self, response: httpx.Response) -> RegistryError:
        """The error for an unexpected answer (reads a capped body and closes it)."""
        body = self.read_error_body(response)
        return error_for(
            response.request.method,
            response.request.url,
            response.status_code,
            body,
            registry=self.registry,
        )

    def token_request(
        self,
        method: str,
        realm: httpx.URL,
        *,
        params: list[tuple[str, str]] | None = None,
        data: dict[str, str] | None = None,
        basic: tuple[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """A request to a token service (retried like any other); status and capped body.

        ``realm`` has passed :meth:`token_realm`. A redirect is not followed: it ends the
        request like any other answer that is not 200.
        """
        attempts = 1 + max(0, self.options.retries)
        for attempt in range(1, attempts + 1):
            # The realm's own query is kept (as Docker clients do); ours is added to it.
            url = realm.copy_merge_params(tuple(params or ()))
            client = self._client_for(url)
            request = client.build_request(method, url, data=data)
            if basic is not None:
                request = next(httpx.BasicAuth(*basic).auth_flow(request))
            try:
                self.sent += 1
                response = client.send(request, stream=True)
            except httpx.TransportError as exc:
                if attempt >= attempts:
                    raise self.unreachable(exc) from exc
                self._backoff(attempt, None)
                continue
            if (response.status_code == 429 or response.status_code >= 500) and (
                attempt < attempts
            ):
                self.read_error_body(response)
                self._backoff(attempt, _retry_after(response.headers.get("retry-after")))
                continue
            try:
                return response.status_code, self.read_capped(response, MAX_TOKEN_RESPONSE)
            finally:
                response.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the connection pools."""
        self.client.close()
        if self._tls_client is not None:
            self._tls_client.close()
