"""HTTP for one registry host: scheme choice, TLS, deadlines, auth, retries, redirects.

Every request runs under a wall-clock :class:`~digestgate.oci.registry.wallclock.Watch`
(headers within the timeout, then a minimum transfer rate) and under the session's overall
deadline. Replayable requests (no body, or a body held in memory) are retried with
exponential backoff and jitter on 429 and 503 (honouring ``Retry-After``, capped), other 5xx,
connection errors and requests that were too slow; :meth:`Transport.fetch` retries the
request and the read of its body together, so an answer that breaks off mid-body is fetched
again. Streaming uploads are never resent here: the upload code queries the session and
resumes or restarts it. Redirects are followed by hand and ``Authorization`` is only ever
sent to the registry's own origin (distribution-spec main, "Pulling blobs"); credentials go
to a token service on another host only over HTTPS (:meth:`Transport.token_realm`).
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final

import httpx

from digestgate._version import __version__
from digestgate.errors import AuthError, RegistryError
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.auth import Authenticator
from digestgate.oci.registry.challenge import parse_challenges
from digestgate.oci.registry.credentials import Credentials
from digestgate.oci.registry.errors import (
    MAX_ERROR_BODY,
    BrokenBodyError,
    DeadlineError,
    TransientError,
    auth_hint,
    error_for,
    redact_text,
    redact_url,
)
from digestgate.oci.registry.handles import Scopes
from digestgate.oci.registry.urls import (
    base_url,
    header_int,
    is_loopback,
    join_url,
    next_link,
    path_joiner,
    retry_after,
    split_host,
    ssl_context,
)
from digestgate.oci.registry.wallclock import (
    WATCH,
    Route,
    Watch,
    network_transport,
    scope,
    scoped_body,
    scoped_read,
    send_direct,
)

__all__ = [
    "Transport",
    "base_url",
    "header_int",
    "is_loopback",
    "join_url",
    "next_link",
    "split_host",
]

log = logging.getLogger("digestgate.registry")

USER_AGENT: Final = f"digestgate/{__version__}"
MAX_REDIRECTS: Final = 5
RETRY_AFTER_CAP: Final = 30.0
BACKOFF_CAP: Final = 20.0
#: A socket timeout this close to the request's deadline was that deadline firing.
TIMER_SLACK: Final = 0.05


def _what(method: str, url: httpx.URL) -> str:
    return f"{method} {redact_url(url)}"


class Transport:
    """An ``httpx.Client`` bound to one registry, with auth, deadlines and retries."""

    def __init__(
        self,
        registry: str,
        options: StoreOptions,
        credentials: Callable[[], Credentials | None],
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        deadline_at: float | None = None,
    ) -> None:
        self.registry = registry
        self.options = options
        self.base = httpx.URL(base_url(registry, options))
        self._origin = (self.base.scheme, self.base.host, self.base.port)
        self._join = path_joiner(self.base)
        self._sleep = sleep
        self._clock = clock
        #: When all registry work must be done (on ``clock``); None: no overall deadline.
        self.deadline_at = deadline_at
        self.auth = Authenticator(registry, credentials, clock)
        # A plain-HTTP registry's client never carries an https request (see client_for),
        # so it needs no TLS context: loading the CA bundle costs ~50 ms per process.
        self._route = self._new_route(
            ssl_context(options.ca_bundle) if self.base.scheme == "https" else None
        )
        self.client = self._route.client
        self._tls_route: Route | None = None
        #: Number of requests actually sent (tests count retries with it).
        self.sent = 0

    def _new_route(self, context: ssl.SSLContext | None) -> Route:
        transport = self.options.transport
        if transport is None:
            transport = network_transport(context)
        return Route.of(transport, self.options.timeout, {"User-Agent": USER_AGENT})

    def _route_for(self, url: httpx.URL | str) -> Route:
        """https URLs always go through a verifying client.

        A plain-HTTP registry may still redirect to (or name a token service on) https; that
        client is created the first time it is needed.
        """
        if self._origin[0] == "https":
            return self._route
        scheme = url.scheme if isinstance(url, httpx.URL) else httpx.URL(url).scheme
        if scheme != "https":
            return self._route
        if self._tls_route is None:
            self._tls_route = self._new_route(ssl_context(self.options.ca_bundle))
        return self._tls_route

    def client_for(self, url: httpx.URL | str) -> httpx.Client:
        """The client for a request: https URLs always go through a verifying client."""
        return self._route_for(url).client

    def url(self, path: str) -> httpx.URL:
        """An absolute URL on this registry."""
        return self._join(path)

    def same_origin(self, url: httpx.URL) -> bool:
        """True for URLs on the registry's own scheme, host and port."""
        return (url.scheme, url.host, url.port) == self._origin

    # -- deadlines and pauses ------------------------------------------------------------------

    def watch(self) -> Watch:
        """A fresh watch for one request (see :mod:`~digestgate.oci.registry.wallclock`)."""
        return Watch(self.options.timeout, self.options.min_rate, self.deadline_at, self._clock)

    def overdue(self, what: str, *, waiting: float | None = None) -> DeadlineError:
        """The error for registry work that reached the overall deadline during ``what``."""
        total = self.options.deadline
        limit = f"the deadline of {total:g} s" if total is not None else "the deadline"
        during = f"while waiting {waiting:.1f} s to retry {what}" if waiting else f"during {what}"
        return DeadlineError(
            f"{limit} for registry work passed {during}",
            hint=f"{self.registry} is slow or failing; raise --deadline (DIGESTGATE_DEADLINE) "
            "or try again later: a re-run continues where this one stopped",
        )

    def check_deadline(self, what: str) -> None:
        if self.deadline_at is not None and self._clock() >= self.deadline_at:
            raise self.overdue(what)

    def pause(self, attempt: int, retry_after: float | None, what: str) -> None:
        """Wait before attempt ``attempt + 1``: ``Retry-After`` (capped) or jittered backoff.

        A wait that would end past the overall deadline is not started.
        """
        if retry_after is not None:
            delay = min(retry_after, RETRY_AFTER_CAP)
        else:
            base = min(BACKOFF_CAP, self.options.backoff * (2 ** (attempt - 1)))
            delay = base * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
        if self.deadline_at is not None and self._clock() + delay >= self.deadline_at:
            raise self.overdue(what, waiting=delay)
        log.debug("retrying %s in %.2fs (attempt %d)", what, delay, attempt + 1)
        self._sleep(delay)

    def lost(self, exc: Exception, watch: Watch, what: str, *, body: bool = False) -> RegistryError:
        """The error for a transport failure of a request (``body``: while reading it)."""
        if isinstance(exc, httpx.TimeoutException):
            watch.remaining(slack=TIMER_SLACK)  # a socket timeout set to the deadline
        if watch.expired == "overall":
            return self.overdue(what)
        kind = BrokenBodyError if body else TransientError
        if watch.expired == "request":
            limit = watch.limit
            if watch.streamed:
                rate = watch.min_rate / 1024
                message = f"{what}: slower than {rate:g} KiB/s for {limit:g} s"
            else:
                message = f"{what}: no answer within {limit:g} s"
            return kind(
                message,
                hint=f"{self.registry} or the network is stalled or very slow; check it, or "
                "raise --registry-timeout / lower --registry-min-rate for a slow link",
            )
        if body:
            detail = redact_text(str(exc), 160) or type(exc).__name__
            return kind(
                f"{what}: the answer broke off: {type(exc).__name__}: {detail}",
                hint=f"the connection to {self.registry} is unreliable; try again",
            )
        return self.unreachable(exc)

    # -- requests ------------------------------------------------------------------------------

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
            self.sent += 1
            response = send_direct(self._route_for(url), method, url, hdrs, content)
            if log.isEnabledFor(logging.DEBUG):
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
        """Send a request with auth, a deadline and retries; the caller must close the response.

        The response may have any status except a 401 (which becomes :class:`AuthError` once
        a fresh authentication did not help); a transport failure or a request too slow that
        outlives the retries becomes :class:`TransientError`, the overall deadline
        :class:`DeadlineError`. ``idempotent=False`` (an upload chunk) is sent once: the
        registry may have applied it even when the answer was lost. Read the body with
        :meth:`read_capped` or :meth:`stream`, which keep to the request's deadline.
        """
        replayable = content is None or isinstance(content, bytes)
        attempts = 1 + max(0, self.options.retries) if replayable and idempotent else 1
        attempt = 0
        fresh_auth = False
        while True:
            if self.deadline_at is not None and self._clock() >= self.deadline_at:
                raise self.overdue(_what(method, url))
            hdrs = dict(headers or {})
            if self.same_origin(url):
                if self.auth.needs_token(scopes):
                    self.auth.fetch_token(scopes, self)
                    fresh_auth = True
                value = self.auth.header(scopes)
                if value:
                    hdrs["Authorization"] = value
            watch = self.watch()
            body = content if replayable else scoped_body(watch, content)  # type: ignore[arg-type]
            try:
                with scope(watch):
                    response = self._send_once(method, url, hdrs, body, follow_redirects)
            except httpx.TransportError as exc:
                error = self.lost(exc, watch, _what(method, url))
                attempt += 1
                if isinstance(error, DeadlineError) or attempt >= attempts:
                    raise error from exc
                self.pause(attempt, None, _what(method, url))
                continue
            response.extensions[WATCH] = watch
            status = response.status_code
            if status == 401:
                body_bytes = self.read_error_body(response)
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
                    raise self._auth_failed(method, url, body_bytes)
                challenges = parse_challenges(response.headers.get_list("www-authenticate"))
                self.auth.on_challenge(challenges, scopes, self)
                fresh_auth = True
                continue
            if (status == 429 or status >= 500) and attempt + 1 < attempts:
                wait = retry_after(response.headers.get("retry-after"))
                self.read_error_body(response)
                attempt += 1
                self.pause(attempt, wait if status in (429, 503) else None, _what(method, url))
                continue
            return response

    def fetch(
        self,
        method: str,
        url: httpx.URL,
        *,
        scopes: Scopes,
        cap: int,
        headers: Mapping[str, str] | None = None,
        absent: tuple[int, ...] = (),
        check: Callable[[httpx.Response], None] | None = None,
    ) -> tuple[httpx.Response, bytes] | None:
        """A small document: the request and the read of its body, retried together.

        Returns the (closed) 200 response and its body, None for a status in ``absent``;
        any other status raises :meth:`fail`. ``check`` may refuse a response before its
        body is read. A body that breaks off or comes too slowly is fetched again.
        """
        attempts = 1 + max(0, self.options.retries)
        for attempt in range(1, attempts + 1):
            response = self.send(method, url, scopes=scopes, headers=headers)
            try:
                if response.status_code in absent:
                    return None
                if response.status_code != 200:
                    raise self.fail(response)
                if check is not None:
                    check(response)
                return response, self.read_capped(response, cap)
            except BrokenBodyError:
                if attempt >= attempts:
                    raise
            finally:
                response.close()
            self.pause(attempt, None, _what(method, url))
        raise AssertionError("unreachable")  # pragma: no cover

    def _auth_failed(self, method: str, url: httpx.URL, body: bytes) -> AuthError:
        err = error_for(method, url, 401, body, registry=self.registry)
        return AuthError(
            f"{err.message}: access denied after authenticating",
            hint=auth_hint(self.registry),
            status=401,
            code=err.code,
        )

    def unreachable(self, exc: Exception) -> TransientError:
        """The error for a registry that could not be reached (after retries)."""
        detail = redact_text(str(exc), 160) or type(exc).__name__
        return TransientError(
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

    def stream(self, response: httpx.Response) -> Iterator[bytes]:
        """A body in the chunks the network delivers, under its request's watch.

        Chunks are not gathered into larger ones: progress counts as bytes arrive, so a link
        just above the minimum rate is never mistaken for a stalled one. A break is
        :class:`BrokenBodyError` (:class:`DeadlineError` once the overall deadline passed).
        """
        watch = response.extensions.get(WATCH)
        if not isinstance(watch, Watch):
            watch = self.watch()
        try:
            yield from scoped_read(watch, iter(response.iter_bytes()))
        except httpx.TransportError as exc:
            what = _what(response.request.method, response.request.url)
            raise self.lost(exc, watch, what, body=True) from exc

    def read_capped(self, response: httpx.Response, cap: int, *, truncate: bool = False) -> bytes:
        """Read a streamed body, refusing (or cutting, with ``truncate``) beyond ``cap``."""
        parts: list[bytes] = []
        size = 0
        for chunk in self.stream(response):
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
        return b"".join(parts)

    def fail(self, response: httpx.Response) -> RegistryError:
        """The error for an unexpected answer (reads a capped body and closes it)."""
        wait = retry_after(response.headers.get("retry-after"))
        body = self.read_error_body(response)
        return error_for(
            response.request.method,
            response.request.url,
            response.status_code,
            body,
            registry=self.registry,
            retry_after=wait if response.status_code in (429, 503) else None,
        )

    def close(self) -> None:
        """Close the connection pools."""
        self.client.close()
        if self._tls_route is not None:
            self._tls_route.client.close()
