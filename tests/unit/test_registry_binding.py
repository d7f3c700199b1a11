"""Registry credentials are bound to the host they were configured for (design section 8).

The environment's credentials go only to ``DIGESTGATE_REGISTRY_HOST``; Docker config entries
only to their own host; a credsStore is asked only about hosts the config names; a token
realm on another host gets credentials only over HTTPS. Every check counts what the
receiving side saw, never just "no exception".
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import httpx
import pytest

from digestgate.cli.options import store_options_from
from digestgate.digest import Digest
from digestgate.errors import AuthError, ConfigError, ExitCode, RegistryError
from digestgate.oci import media
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.client import RegistryClient
from digestgate.oci.registry.credentials import environment_credentials, lookup_credentials
from tests.unit.registry_fake import FakeRegistry, image

USER, PASSWORD = "alice", "s3cret-pass"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def env(
    host: str | None, username: str | None = USER, password: str | None = PASSWORD
) -> dict[str, str]:
    values = {
        "DIGESTGATE_REGISTRY_HOST": host,
        "DIGESTGATE_REGISTRY_USERNAME": username,
        "DIGESTGATE_REGISTRY_PASSWORD": password,
    }
    return {k: v for k, v in values.items() if v is not None}


def secrets_in(requests: list[httpx.Request]) -> list[str]:
    """Every request that carried the password, in a header, the URL or the body."""
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    found = []
    for r in requests:
        text = f"{r.url} {dict(r.headers)} {r.read()!r}"
        if PASSWORD in text or encoded in text:
            found.append(f"{r.method} {r.url}")
    return found


# --- which host the environment's credentials belong to ---------------------------------


@pytest.mark.parametrize(
    ("bound", "registry", "used"),
    [
        ("reg.example", "reg.example", True),
        ("https://Reg.Example/v2/", "reg.example", True),  # normalised like a Docker config key
        ("reg.example", "Reg.Example", True),
        ("index.docker.io", "docker.io", True),  # Docker Hub aliases are one host
        ("reg.example", "other.example", False),
        ("reg.example", "reg.example:5000", False),  # the port is part of the host
        ("reg.example:5000", "reg.example", False),
        ("reg.example:5000", "reg.example:5001", False),
        ("127.0.0.1:5000", "localhost:5000", False),  # names are compared, not addresses
    ],
)
def test_environment_credentials_go_only_to_their_host(
    bound: str, registry: str, used: bool, tmp_path: Path
) -> None:
    creds = lookup_credentials(registry, docker_config=str(tmp_path), environ=env(bound))
    if used:
        assert creds is not None and (creds.username, creds.password) == (USER, PASSWORD)
    else:
        assert creds is None


def test_another_host_keeps_its_own_docker_config_entry(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {"b.example": {"username": "bob", "password": "bobs-pw"}}})
    )
    creds = lookup_credentials("b.example", docker_config=str(tmp_path), environ=env("a.example"))
    assert creds is not None and (creds.username, creds.password) == ("bob", "bobs-pw")
    mine = lookup_credentials("a.example", docker_config=str(tmp_path), environ=env("a.example"))
    assert mine is not None and mine.username == USER


@pytest.mark.parametrize(
    "environ",
    [
        env(None),
        env(None, password=None),
        env(None, username=None),
        env(""),  # CI passes an unset variable as an empty string
        env("   "),
    ],
)
def test_username_or_password_without_host_is_exit_2(environ: dict[str, str]) -> None:
    for check in (
        lambda: environment_credentials(environ),
        lambda: lookup_credentials("reg.example", environ=environ),
        lambda: store_options_from(environ=environ),
    ):
        with pytest.raises(ConfigError) as info:
            check()
        assert info.value.exit_code == ExitCode.USAGE
        assert "DIGESTGATE_REGISTRY_HOST is not" in info.value.message
        assert info.value.hint and "set DIGESTGATE_REGISTRY_HOST" in info.value.hint
        assert PASSWORD not in f"{info.value} {info.value.hint}"


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        (env("reg.example", password=None), "DIGESTGATE_REGISTRY_PASSWORD"),
        (env("reg.example", password=""), "DIGESTGATE_REGISTRY_PASSWORD"),
        (env("reg.example", username=None), "DIGESTGATE_REGISTRY_USERNAME"),
    ],
)
def test_half_a_pair_is_exit_2_naming_the_missing_variable(
    environ: dict[str, str], missing: str
) -> None:
    with pytest.raises(ConfigError) as info:
        store_options_from(environ=environ)
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.message.endswith(f"but {missing} is not")
    assert PASSWORD not in f"{info.value} {info.value.hint}"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a.example,b.example", "must name one registry host, not a list"),
        ("a.example b.example", "must name one registry host, not a list"),
        # A single label names a Docker Hub namespace in references, never a registry.
        ("registry", "is not a registry host[:port]"),
        ("user:hunter2@reg.example", "is not a registry host[:port]"),
        ("hunter2:reg.example", "is not a registry host[:port]"),
        ("reg_example.com", "is not a registry host[:port]"),
        ("https://", "is not a registry host[:port]"),
    ],
)
def test_host_must_be_one_registry_host_and_is_never_echoed(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        environment_credentials(env(value))
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.message == f"DIGESTGATE_REGISTRY_HOST {problem}"
    text = f"{info.value} {info.value.hint}"
    assert "hunter2" not in text and PASSWORD not in text


def test_no_credentials_means_nothing_to_bind() -> None:
    assert environment_credentials({}) is None
    assert environment_credentials({"DIGESTGATE_REGISTRY_HOST": "reg.example"}) is None
    assert environment_credentials(env("reg.example", "", "")) is None
    store_options_from(environ={"DIGESTGATE_REGISTRY_HOST": "reg.example"})


# --- Docker config: credsStore and credHelpers ------------------------------------------


def _answering_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """A helper that answers for ANY host (as some do) and records what it was asked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    asked = tmp_path / f"{name}.asked"
    helper = bin_dir / f"docker-credential-{name}"
    helper.write_text(
        f"#!/bin/sh\ncat >> {asked}\necho >> {asked}\n"
        'echo \'{"Username":"store-user","Secret":"store-secret"}\'\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return asked


def test_creds_store_is_asked_only_about_hosts_the_config_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _answering_helper(tmp_path, monkeypatch, "anyhost")
    config = {
        "auths": {"reg.example": {}, "https://index.docker.io/v1/": {}},
        "credsStore": "anyhost",
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    cfg = str(tmp_path)
    assert lookup_credentials("evil.example", docker_config=cfg, environ={}) is None
    assert lookup_credentials("reg.example:5000", docker_config=cfg, environ={}) is None
    assert not asked.exists()  # never even asked about hosts nobody logged in to
    creds = lookup_credentials("reg.example", docker_config=cfg, environ={})
    assert creds is not None and creds.username == "store-user"
    hub = lookup_credentials("docker.io", docker_config=cfg, environ={})
    assert hub is not None
    # The store is asked with the key `docker login` recorded.
    assert asked.read_text().split() == ["reg.example", "https://index.docker.io/v1/"]


def test_cred_helper_answers_only_for_its_own_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _answering_helper(tmp_path, monkeypatch, "perhost")
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {"reg.example": "perhost"}}))
    assert lookup_credentials("evil.example", docker_config=str(tmp_path), environ={}) is None
    assert not asked.exists()
    assert lookup_credentials("reg.example", docker_config=str(tmp_path), environ={}) is not None


# --- what the registry side receives --------------------------------------------------------


@pytest.mark.parametrize("bound", ["other.test", "registry.test:5000"])
def test_basic_registry_never_receives_credentials_bound_elsewhere(bound: str) -> None:
    fake = FakeRegistry(auth="basic")
    raw, _ = image()
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    with fake.client(environ=env(bound)) as client, pytest.raises(AuthError) as info:
        client.repository("app").resolve("v1")
    assert info.value.exit_code == ExitCode.OPERATIONAL
    assert "requires credentials and none were found" in info.value.message
    assert fake.requests and all("authorization" not in r.headers for r in fake.requests)
    with fake.client(environ=env("registry.test")) as client:  # the bound host still works
        assert client.repository("app").resolve("v1").digest == Digest.of(raw)
    assert fake.requests[-1].headers["authorization"] == BASIC


def test_bearer_registry_gets_an_anonymous_token_request_when_bound_elsewhere() -> None:
    fake = FakeRegistry(auth="bearer")
    raw, _ = image()
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    with fake.client(environ=env("other.test")) as client:
        client.repository("app").resolve("v1")
    token_calls = [r for r in fake.requests if r.url.host == "auth.test"]
    assert len(token_calls) == 1 and "authorization" not in token_calls[0].headers
    assert secrets_in(fake.requests) == []
    assert not any(r.headers.get("authorization", "").startswith("Basic") for r in fake.requests)


# --- token realms ----------------------------------------------------------------------------


def _realm_fault(realm: str) -> FakeRegistry:
    """A registry whose challenge names ``realm``; any host answers a token request."""
    fake = FakeRegistry()

    def answer(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/token":
            return httpx.Response(200, json={"token": "realm-token", "expires_in": 300})
        if request.headers.get("authorization") == "Bearer realm-token":
            return None
        challenge = f'Bearer realm="{realm}",service="svc"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    fake.faults.append(answer)
    raw, _ = image()
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    return fake


def _client(
    fake: FakeRegistry, registry: str, environ: dict[str, str], insecure: tuple[str, ...]
) -> RegistryClient:
    store_options = StoreOptions(
        transport=httpx.MockTransport(fake.handle),
        retries=0,
        insecure_hosts=frozenset(insecure),
    )
    return RegistryClient(registry, store_options, sleep=lambda _s: None, environ=environ)


def test_what_a_token_realm_on_another_host_receives() -> None:
    fake = _realm_fault("https://auth.test/token?account=x")
    with fake.client(environ=env("registry.test")) as client:
        client.repository("app").resolve("v1")
    [token] = [r for r in fake.requests if r.url.host == "auth.test"]
    assert token.method == "GET"
    assert token.headers["authorization"] == BASIC  # the credentials, over HTTPS only
    assert sorted(token.url.params.multi_items()) == [
        ("account", "x"),  # the realm's own query is kept
        ("scope", "repository:app:pull"),
        ("service", "svc"),
    ]
    assert "cookie" not in token.headers and token.read() == b""
    registry_side = [r for r in fake.requests if r.url.host == "registry.test"]
    assert [r.headers.get("authorization") for r in registry_side] == [None, "Bearer realm-token"]


def test_an_identity_token_goes_to_the_realm_as_a_refresh_grant(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {"registry.test": {"identitytoken": "refresh-s3cret"}}})
    )
    fake = _realm_fault("https://auth.test/token")
    options = StoreOptions(
        transport=httpx.MockTransport(fake.handle), retries=0, docker_config=str(tmp_path)
    )
    with fake.client(options=options) as client:
        client.repository("app").resolve("v1")
    [token] = [r for r in fake.requests if r.url.host == "auth.test"]
    assert token.method == "POST" and "authorization" not in token.headers
    form = dict(httpx.QueryParams(token.read().decode()))
    assert form == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-s3cret",
        "client_id": "digestgate",
        "scope": "repository:app:pull",
        "service": "svc",
    }
    registry_side = [r for r in fake.requests if r.url.host == "registry.test"]
    assert all("refresh-s3cret" not in str(dict(r.headers)) for r in registry_side)


@pytest.mark.parametrize(
    ("registry", "realm", "insecure"),
    [
        ("registry.test", "http://auth.test/token", ()),
        ("registry.test", "http://auth.test/token", ("auth.test",)),  # listing it does not help
        ("127.0.0.1:5000", "http://localhost:5001/token", ()),  # another name, both loopback
        ("127.0.0.1:5000", "http://127.0.0.2:5001/token", ()),
        ("registry.test", "http://registry.test:8080/token", ()),  # same host, not loopback
    ],
)
def test_credentials_never_go_to_a_plain_http_realm_on_another_host(
    registry: str, realm: str, insecure: tuple[str, ...]
) -> None:
    fake = _realm_fault(realm)
    client = _client(fake, registry, env(registry), insecure)
    with client, pytest.raises(AuthError) as info:
        client.repository("app").resolve("v1")
    assert info.value.exit_code == ExitCode.OPERATIONAL
    assert "not HTTPS" in info.value.message
    assert [r.url.path for r in fake.requests] == ["/v2/app/manifests/v1"]  # realm never asked
    assert secrets_in(fake.requests) == []


@pytest.mark.parametrize(
    ("registry", "realm", "insecure"),
    [
        ("127.0.0.1:5000", "http://127.0.0.1:5001/token", ()),  # the same loopback host
        ("[::1]:5000", "http://[::1]:5001/token", ()),
        ("reg.internal:5000", "http://reg.internal:5001/token", ("reg.internal",)),
        ("registry.test", "https://auth.test/token", ()),
    ],
)
def test_credentials_go_to_an_allowed_realm(
    registry: str, realm: str, insecure: tuple[str, ...]
) -> None:
    fake = _realm_fault(realm)
    client = _client(fake, registry, env(registry), insecure)
    with client:
        client.repository("app").resolve("v1")
    [token] = [r for r in fake.requests if r.url.path == "/token"]
    assert token.headers["authorization"] == BASIC


def test_an_anonymous_token_request_may_use_a_plain_http_realm() -> None:
    # Nothing secret is sent, so nothing is refused: public registries keep working.
    fake = _realm_fault("http://auth.test/token")
    with fake.client() as client:
        client.repository("app").resolve("v1")
    [token] = [r for r in fake.requests if r.url.host == "auth.test"]
    assert "authorization" not in token.headers


@pytest.mark.parametrize(
    "realm",
    [
        "http://[bad",
        "ftp://auth.test/token",
        "/token",
        "https://user:hunter2@auth.test/token",
        "",
    ],
)
@pytest.mark.parametrize("environ", [env("registry.test"), {}])
def test_a_malformed_realm_is_exit_3_without_contacting_it(
    realm: str, environ: dict[str, str]
) -> None:
    fake = _realm_fault(realm)
    with fake.client(environ=environ) as client, pytest.raises(AuthError) as info:
        client.repository("app").resolve("v1")
    assert info.value.exit_code == ExitCode.OPERATIONAL
    assert [r.url.path for r in fake.requests] == ["/v2/app/manifests/v1"]
    assert "hunter2" not in info.value.message and PASSWORD not in info.value.message


def test_a_redirect_from_the_realm_is_not_followed() -> None:
    fake = _realm_fault("https://auth.test/token")

    def redirect(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == "auth.test":
            return httpx.Response(307, headers={"Location": "https://elsewhere.test/token"})
        return None

    fake.faults.insert(0, redirect)
    with fake.client(environ=env("registry.test")) as client, pytest.raises(RegistryError) as info:
        client.repository("app").resolve("v1")
    assert info.value.exit_code == ExitCode.OPERATIONAL
    assert "HTTP 307" in info.value.message
    assert all(r.url.host != "elsewhere.test" for r in fake.requests)
