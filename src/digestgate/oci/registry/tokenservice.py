"""Requests to a Bearer token service (the ``realm`` of a registry's challenge, specs 5.10).

The realm comes from the registry, so it is checked before anything is sent there
(:func:`realm_url`), and token requests keep to the same deadlines and retries as registry
requests (:func:`request`).
"""

from __future__ import annotations

import re
from typing import Final

import httpx

from digestgate.errors import AuthError, DigestgateError
from digestgate.oci.registry.errors import (
    BrokenBodyError,
    DeadlineError,
    redact_text,
    redact_url,
)
from digestgate.oci.registry.handles import TransportHandle
from digestgate.oci.registry.urls import is_loopback, listed, retry_after
from digestgate.oci.registry.wallclock import WATCH, scope

MAX_TOKEN_RESPONSE: Final = 256 * 1024
#: A DNS name or an IP literal (httpx gives IPv6 hosts without brackets).
_REALM_HOST_RE: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]+")


def realm_url(t: TransportHandle, realm: str, *, with_credentials: bool) -> httpx.URL:
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
            f"{t.registry} named a token service that is not an http(s) URL: "
            f"{redact_text(redact_url(realm), 120)!r}",
            hint="the registry's WWW-Authenticate challenge is malformed; check the "
            "registry address",
        )
    if url.scheme == "https" or not with_credentials:
        return url
    host = url.host.lower()
    if host != (t.base.host or "").lower():
        raise AuthError(
            f"the token service {redact_url(url)} of {t.registry} is on another host and not HTTPS",
            hint="digestgate sends credentials to a token service on another host only "
            "over HTTPS; the registry's token realm must be https://",
        )
    netloc = f"{host}:{url.port}" if url.port else host
    if is_loopback(host) or listed(netloc, t.options.insecure_hosts):
        return url
    raise AuthError(
        f"the token service {redact_url(url)} of {t.registry} is not HTTPS",
        hint="refusing to send credentials in clear text; list the host with "
        "--insecure-registry only if that is intended",
    )


def request(
    t: TransportHandle,
    method: str,
    realm: httpx.URL,
    *,
    params: list[tuple[str, str]] | None = None,
    data: dict[str, str] | None = None,
    basic: tuple[str, str] | None = None,
) -> tuple[int, bytes]:
    """A request to a token service (retried like any other); status and capped body.

    ``realm`` has passed :func:`realm_url`. A redirect is not followed: it ends the
    request like any other answer that is not 200.
    """
    attempts = 1 + max(0, t.options.retries)
    what = f"{method} {redact_url(realm)}"
    for attempt in range(1, attempts + 1):
        t.check_deadline(what)
        # The realm's own query is kept (as Docker clients do); ours is added to it.
        url = realm.copy_merge_params(tuple(params or ()))
        client = t.client_for(url)
        outgoing = client.build_request(method, url, data=data)
        if basic is not None:
            outgoing = next(httpx.BasicAuth(*basic).auth_flow(outgoing))
        watch = t.watch()
        wait: float | None = None
        try:
            t.sent += 1
            with scope(watch):
                response = client.send(outgoing, stream=True)
            response.extensions[WATCH] = watch
            status = response.status_code
            if status == 429 or status >= 500:
                wait = retry_after(response.headers.get("retry-after"))
                if attempt < attempts:
                    t.read_error_body(response)
                    t.pause(attempt, wait, what)
                    continue
            try:
                return status, t.read_capped(response, MAX_TOKEN_RESPONSE)
            finally:
                response.close()
        except httpx.TransportError as exc:
            error: DigestgateError = t.lost(exc, watch, what)
        except BrokenBodyError as exc:
            error = exc
        if isinstance(error, DeadlineError) or attempt >= attempts:
            raise error
        t.pause(attempt, None, what)
    raise AssertionError("unreachable")  # pragma: no cover
