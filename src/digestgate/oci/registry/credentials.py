"""Registry credentials from the environment and the Docker client configuration.

Every credential is bound to the registry host it was configured for (design section 8);
none is ever offered to a host that only unsigned input (a release, a promoted.json, a
command-line reference) named. Precedence, first match wins (looked up only when a
registry asks for authentication):

1. ``DIGESTGATE_REGISTRY_USERNAME`` and ``DIGESTGATE_REGISTRY_PASSWORD``, for the one host
   named by ``DIGESTGATE_REGISTRY_HOST`` only. A username or password without a host, or
   one without the other, is a configuration error (exit 2), checked before any command
   opens a connection.
2. ``credHelpers[<host>]`` in the Docker config: ``docker-credential-<name> get``.
3. ``auths[<host>]`` in the Docker config with inline credentials: ``auth`` (base64
   ``user:password``), ``username``/``password``, or ``identitytoken``.
4. ``credsStore``, asked only for a host that has an ``auths`` entry (the empty entry
   ``docker login`` leaves when a store holds the secret). Docker asks the store for any
   host; digestgate does not, because a store or helper may answer for hosts nobody
   configured, and the host to ask about can come from unsigned input.
5. Anonymous.

Hosts are compared the way Docker compares config keys: scheme and path dropped, lowercase,
Docker Hub aliases folded into ``docker.io``, and the port is part of the host
(``registry.example`` and ``registry.example:5000`` are different hosts). The Docker config
is ``--docker-config DIR``/config.json, else ``$DOCKER_CONFIG/config.json``, else
``~/.docker/config.json`` (docker/cli config.go). A helper answering "credentials not
found", or not installed, means anonymous; a helper that fails otherwise (or hangs past its
timeout) is an error. Secrets never appear in reprs or messages.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from digestgate.errors import AuthError, ConfigError, DigestgateError
from digestgate.jsonutil import JSONFormatError, loads_strict
from digestgate.oci.registry.errors import register_secret
from digestgate.reference import parse_registry_reference

log = logging.getLogger("digestgate.registry")

ENV_USERNAME: Final = "DIGESTGATE_REGISTRY_USERNAME"
ENV_PASSWORD: Final = "DIGESTGATE_REGISTRY_PASSWORD"  # noqa: S105 - a variable name
ENV_HOST: Final = "DIGESTGATE_REGISTRY_HOST"
HELPER_TIMEOUT: Final = 20.0
_HELPER_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HUB: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True)
class Credentials:
    """A username and password, or an identity (refresh) token; never shown."""

    username: str
    password: str = field(repr=False)
    identity_token: str | None = field(default=None, repr=False)
    source: str = "unknown"

    def __post_init__(self) -> None:
        basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        register_secret(self.password, self.identity_token or "", basic)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, source={self.source!r})"


def normalize_host(key: str) -> str:
    """``https://Host:443/v1/`` -> ``host:443``; Docker Hub aliases -> ``docker.io``."""
    text = key.strip()
    for prefix in ("https://", "http://"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
    host = text.split("/", 1)[0].lower()
    return "docker.io" if host in _HUB else host


@dataclass(frozen=True)
class BoundCredentials:
    """Credentials from the environment and the one registry host they belong to."""

    host: str
    credentials: Credentials


def bound_host(text: str) -> str:
    """``DIGESTGATE_REGISTRY_HOST`` as a normalised ``host[:port]``; anything else is exit 2.

    One host, not a list: like a Docker config key, one credential belongs to one registry.
    The host must be one an image reference can name (a single label without ``.`` or
    ``:`` other than ``localhost`` means a Docker Hub namespace there, never a registry).
    Errors never echo the value: a mistaken ``user:password@host`` must not be printed.
    """
    if "," in text or " " in text.strip():
        raise ConfigError(
            f"{ENV_HOST} must name one registry host, not a list",
            hint="give one host[:port]; for several registries log in to each with "
            "`docker login HOST` and leave these variables unset",
        )
    host = normalize_host(text)
    try:
        registry = parse_registry_reference(f"{host}/x").registry if host else ""
    except DigestgateError:
        registry = ""
    if not host or normalize_host(registry) != host:
        raise ConfigError(
            f"{ENV_HOST} is not a registry host[:port]",
            hint="name the registry as in image references, e.g. ghcr.io or "
            "registry.example.org:5000",
        )
    return host


def environment_credentials(environ: Mapping[str, str]) -> BoundCredentials | None:
    """``DIGESTGATE_REGISTRY_USERNAME``/``_PASSWORD`` with their host, or None when unset.

    Credentials without a host would go to whichever registry asks, including hosts named
    only by unsigned input: a username or password without ``DIGESTGATE_REGISTRY_HOST`` is
    a configuration error, and so is one without the other. Empty values count as unset
    (CI systems pass an absent secret as an empty string).
    """
    username = environ.get(ENV_USERNAME, "")
    password = environ.get(ENV_PASSWORD, "")
    if not username and not password:
        return None
    given = ENV_USERNAME if username else ENV_PASSWORD
    host_text = environ.get(ENV_HOST, "")
    if not host_text.strip():
        raise ConfigError(
            f"{given} is set but {ENV_HOST} is not: registry credentials from the "
            "environment are only sent to the registry host they belong to",
            hint=f"set {ENV_HOST} to that registry (host[:port], e.g. ghcr.io), or unset "
            f"{ENV_USERNAME} and {ENV_PASSWORD} to use the Docker config",
        )
    host = bound_host(host_text)
    if not username or not password:
        missing = ENV_PASSWORD if username else ENV_USERNAME
        raise ConfigError(
            f"{given} is set but {missing} is not",
            hint=f"set both {ENV_USERNAME} and {ENV_PASSWORD} (for {host}), or neither",
        )
    return BoundCredentials(host, Credentials(username, password, None, f"{ENV_HOST}={host}"))


def _config_path(docker_config: str | None, environ: Mapping[str, str]) -> Path:
    if docker_config:
        return Path(docker_config) / "config.json"
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"]) / "config.json"
    return Path.home() / ".docker" / "config.json"


#: Largest Docker config.json read (a few KiB in practice, even with many registries).
MAX_DOCKER_CONFIG: Final = 4 * 1024 * 1024


def load_docker_config(docker_config: str | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """The Docker config as a dict (empty when the file does not exist)."""
    from digestgate.fileread import read_capped

    path = _config_path(docker_config, environ)
    try:
        data = read_capped(path, MAX_DOCKER_CONFIG, what="Docker config")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(
            f"cannot read Docker config {path}: {exc.strerror}", hint="check its permissions"
        ) from None
    if len(data) > MAX_DOCKER_CONFIG:
        raise ConfigError(
            f"Docker config {path} is larger than {MAX_DOCKER_CONFIG} bytes",
            hint="fix or remove the file",
        )
    try:
        doc = loads_strict(data)
    except JSONFormatError as exc:
        raise ConfigError(
            f"Docker config {path} is not valid JSON: {exc}", hint="fix or remove the file"
        ) from None
    return doc if isinstance(doc, dict) else {}


def _lookup(table: Any, host: str) -> tuple[str, Any] | None:
    if not isinstance(table, dict):
        return None
    for key, value in table.items():
        if isinstance(key, str) and normalize_host(key) == host:
            return key, value
    return None


def _from_auth_entry(entry: Any, key: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    source = f"docker config auths[{key}]"
    token = entry.get("identitytoken")
    auth = entry.get("auth")
    username = entry.get("username")
    password = entry.get("password")
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise ConfigError(
                f"Docker config auths[{key}].auth is not base64 of user:password",
                hint=f"run `docker login {key}` again",
            ) from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise ConfigError(
                f"Docker config auths[{key}].auth is not user:password",
                hint=f"run `docker login {key}` again",
            )
    if isinstance(token, str) and token:
        return Credentials(str(username or ""), "", token, source)
    if isinstance(username, str) and isinstance(password, str) and username:
        return Credentials(username, password, None, source)
    return None


def run_helper(
    name: str, server_url: str, *, timeout: float = HELPER_TIMEOUT
) -> Credentials | None:
    """``docker-credential-<name> get`` for ``server_url``; None when it has nothing."""
    if not _HELPER_NAME_RE.fullmatch(name):
        raise ConfigError(f"invalid credential helper name {name[:64]!r}")
    program = f"docker-credential-{name}"
    try:
        proc = subprocess.run(
            [program, "get"],
            input=server_url.encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        log.warning("credential helper %s is not installed; continuing anonymously", program)
        return None
    except subprocess.TimeoutExpired:
        raise AuthError(
            f"credential helper {program} did not answer within {timeout:g}s",
            hint="unlock the credential store, or set DIGESTGATE_REGISTRY_HOST with "
            "DIGESTGATE_REGISTRY_USERNAME/PASSWORD",
        ) from None
    except OSError as exc:
        raise AuthError(f"cannot run credential helper {program}: {exc.strerror}") from None
    output = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        if "credentials not found" in output.lower():
            return None
        raise AuthError(
            f"credential helper {program} failed with exit code {proc.returncode}",
            hint=f"run it by hand (`echo HOST | {program} get`) to see why",
        )
    try:
        doc = loads_strict(output.encode())
    except JSONFormatError:
        raise AuthError(
            f"credential helper {program} printed something that is not JSON",
            hint=f"run it by hand (`echo HOST | {program} get`) to see what it prints",
        ) from None
    username = doc.get("Username") if isinstance(doc, dict) else None
    secret = doc.get("Secret") if isinstance(doc, dict) else None
    if not isinstance(username, str) or not isinstance(secret, str) or not secret:
        return None
    source = f"credential helper {program}"
    if username == "<token>":  # docker-credential-helpers: an identity token, not a password
        return Credentials("", "", secret, source)
    return Credentials(username, secret, None, source)


def lookup_credentials(
    registry: str,
    *,
    docker_config: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials | None:
    """Credentials for ``registry`` (``host[:port]``) following the documented precedence.

    Only credentials configured for this very host are returned: the environment's when
    ``DIGESTGATE_REGISTRY_HOST`` names it, else the Docker config's entries for it.
    """
    env = os.environ if environ is None else environ
    host = normalize_host(registry)
    bound = environment_credentials(env)
    if bound is not None and bound.host == host:
        return bound.credentials
    config = load_docker_config(docker_config, env)
    helper = _lookup(config.get("credHelpers"), host)
    if helper is not None and isinstance(helper[1], str) and helper[1]:
        return run_helper(helper[1], helper[0])
    entry = _lookup(config.get("auths"), host)
    if entry is None:
        # Nothing names this host: the credsStore is not asked (module docstring, step 4).
        return None
    found = _from_auth_entry(entry[1], entry[0])
    if found is not None:
        return found
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        return run_helper(store, entry[0])
    return None
