"""Addresses and headers of a registry: scheme choice, URL joining, ``Link``, ``Retry-After``.

Pure helpers used by the transport and the protocol code; nothing here sends a request.
"""

from __future__ import annotations

import email.utils
import ipaddress
import re
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Final

import httpx

from digestgate.errors import ConfigError, RegistryError
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.errors import redact_url

_DOCKER_HUB_API: Final = "registry-1.docker.io"
_LINK_NEXT_RE: Final = re.compile(r'<([^>]*)>\s*;[^,]*\brel\s*=\s*"?next"?', re.IGNORECASE)
#: An absolute path that joining leaves as it is: no dot segment, no empty segment, nothing
#: to quote or decode. Anything else goes through ``httpx.URL.join``.
_PLAIN_PATH: Final = re.compile(r"(?:/[A-Za-z0-9_~:-][A-Za-z0-9._~:-]*)+/?|/")


def path_joiner(base: httpx.URL) -> Callable[[str], httpx.URL]:
    """``base.join`` for a registry's own paths, without reparsing the URL each time.

    A base of scheme and authority only, joined with a plain absolute path (the only kind
    the protocol code builds from validated names, tags and digests), is that base with the
    path: the parsed base is reused with the path put in. Any other path is joined, and so
    is every path on an httpx other than the one this was checked against (it reaches into
    the URL's parsed form).
    """
    parsed = getattr(base, "_uri_reference", None)
    quick = (
        httpx.__version__ == "0.28.1"
        and isinstance(parsed, tuple)
        and hasattr(parsed, "_replace")
        and base.raw_path == b"/"
        and not base.fragment
    )
    if not quick:
        return base.join

    def join(path: str) -> httpx.URL:
        if not _PLAIN_PATH.fullmatch(path):
            return base.join(path)
        url = httpx.URL.__new__(httpx.URL)
        url._uri_reference = parsed._replace(path=path)  # type: ignore[union-attr]
        return url

    return join


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


def check_redirect(response: httpx.Response) -> None:
    """Fail as ``httpx.Client`` does on a redirect whose ``Location`` it cannot resolve.

    The client resolves a redirect target as soon as the answer arrives, following or not
    (``Client._redirect_url``): a ``Location`` it cannot parse is
    :class:`httpx.RemoteProtocolError`. Requests sent on a transport directly keep that.
    """
    if not response.has_redirect_location:
        return
    request = response.request
    try:
        url = httpx.URL(response.headers["Location"])
    except httpx.InvalidURL as exc:
        raise httpx.RemoteProtocolError(
            f"Invalid URL in location header: {exc}.", request=request
        ) from None
    if url.is_relative_url:
        request.url.join(url)  # raises as the client's own join would


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


def listed(registry: str, hosts: Iterable[str]) -> bool:
    """True when ``registry`` (host:port) or its host is among ``hosts``."""
    names = {h.strip().lower() for h in hosts}
    return registry.lower() in names or split_host(registry).lower() in names


def base_url(registry: str, options: StoreOptions) -> str:
    """``http://`` only for loopback and insecure hosts (unless listed as TLS), else https."""
    host = _DOCKER_HUB_API if registry == "docker.io" else registry
    plain = is_loopback(split_host(registry)) or listed(registry, options.insecure_hosts)
    if listed(registry, options.tls_hosts):
        plain = False
    return f"{'http' if plain else 'https'}://{host}"


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The verifying TLS context: system CAs plus ``ca_bundle`` (a bad bundle is exit 2)."""
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


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay or HTTP date), else None."""
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
