"""Authentication: Basic, Bearer token flow, token caching, scopes, and redaction."""

from __future__ import annotations

import httpx
import pytest

from digestgate.digest import Digest
from digestgate.errors import AuthError, RegistryError
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor
from digestgate.oci.registry.auth import mount_scopes, pull_scope, push_scope
from tests.unit.registry_fake import FakeRegistry, image, sha

CREDS = {
    "DIGESTGATE_REGISTRY_HOST": "registry.test",
    "DIGESTGATE_REGISTRY_USERNAME": "alice",
    "DIGESTGATE_REGISTRY_PASSWORD": "s3cret-pass",
}


def test_scope_strings() -> None:
    assert pull_scope("org/app") == "repository:org/app:pull"
    assert push_scope("org/app") == "repository:org/app:pull,push"
    assert mount_scopes("dst", "src") == ("repository:dst:pull,push", "repository:src:pull")


def test_basic_auth_from_challenge() -> None:
    fake = FakeRegistry(auth="basic")
    raw, _ = image()
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    with fake.client(environ=CREDS) as client:
        repo = client.repository("app")
        assert repo.resolve("v1").digest == Digest.of(raw)
        assert repo.resolve("v1").digest == Digest.of(raw)
    # One 401 taught the scheme; later requests carry Basic straight away.
    assert [r.headers.get("authorization", "")[:5] for r in fake.requests] == [
        "",
        "Basic",
        "Basic",
    ]


def test_basic_without_credentials_is_auth_error_with_hint() -> None:
    fake = FakeRegistry(auth="basic")
    with fake.client() as client, pytest.raises(AuthError) as info:
        client.repository("app").resolve("v1")
    assert info.value.exit_code == 3
    assert info.value.hint and "docker login" in info.value.hint


def test_bearer_token_is_cached_per_scope_set() -> None:
    fake = FakeRegistry(auth="bearer")
    raw, _ = image()
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    with fake.client(environ=CREDS) as client:
        repo = client.repository("app")
        for _ in range(3):
            repo.resolve("v1")
        repo.put_manifest(raw, media.OCI_MANIFEST)
        repo.put_manifest(raw, media.OCI_MANIFEST)
    assert fake.token_scopes == [["repository:app:pull"], ["repository:app:pull,push"]]
    token_calls = [r for r in fake.requests if r.url.host == "auth.test"]
    assert all(r.headers["authorization"].startswith("Basic ") for r in token_calls)
    assert token_calls[0].url.params["service"] == "fake"


def test_expired_token_is_refreshed() -> None:
    fake = FakeRegistry(auth="bearer")
    raw, _ = image()
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    now = [0.0]
    with fake.client(environ=CREDS, clock=lambda: now[0]) as client:
        repo = client.repository("app")
        repo.resolve("v1")
        now[0] = 1000.0
        repo.resolve("v1")
    assert len(fake.token_scopes) == 2


def test_mount_requests_both_scopes_in_one_token() -> None:
    fake = FakeRegistry(auth="bearer")
    data = b"layer"
    fake.add_blob("src", data)
    descriptor = Descriptor(media.OCI_LAYER_TAR_GZIP, Digest.parse(sha(data)), len(data))
    with fake.client(environ=CREDS) as client:
        assert client.repository("dst").mount_blob(descriptor, client.repository("src"))
    assert ["repository:dst:pull,push", "repository:src:pull"] in fake.token_scopes


def test_anonymous_token_flow() -> None:
    fake = FakeRegistry(auth="bearer")
    raw, _ = image()
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    with fake.client() as client:
        assert client.repository("app").resolve("v1").digest == Digest.of(raw)
    assert all("authorization" not in r.headers for r in fake.requests if r.url.host == "auth.test")


def test_401_that_never_succeeds_is_auth_error_without_secrets() -> None:
    fake = FakeRegistry(auth="bearer")

    def always_401(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == "auth.test":
            return None
        challenge = 'Bearer realm="https://auth.test/token",service="fake"'
        return httpx.Response(
            401,
            headers={"WWW-Authenticate": challenge},
            json={"errors": [{"code": "UNAUTHORIZED", "message": "Bearer tok1-opaque refused"}]},
        )

    fake.faults.append(always_401)
    with fake.client(environ=CREDS) as client, pytest.raises(AuthError) as info:
        client.repository("app").resolve("v1")
    text = f"{info.value} {info.value.hint}"
    assert "s3cret-pass" not in text and "tok1-opaque" not in text
    assert "UNAUTHORIZED" in text
    assert len(fake.token_scopes) == 1  # one fresh authentication, then give up


def test_token_endpoint_refusal_is_auth_error() -> None:
    fake = FakeRegistry(auth="bearer")
    env = dict(CREDS, DIGESTGATE_REGISTRY_PASSWORD="wrong-password")
    with fake.client(environ=env) as client, pytest.raises(AuthError) as info:
        client.repository("app").resolve("v1")
    assert "wrong-password" not in str(info.value)


def test_credentials_never_go_to_a_plain_http_realm() -> None:
    fake = FakeRegistry()
    fake.faults.append(
        lambda r: httpx.Response(
            401, headers={"WWW-Authenticate": 'Bearer realm="http://evil.example/token"'}
        )
    )
    with fake.client(environ=CREDS) as client, pytest.raises(AuthError):
        client.repository("app").resolve("v1")
    assert all(r.url.host != "evil.example" for r in fake.requests)


def test_upload_url_state_is_redacted_from_errors() -> None:
    fake = FakeRegistry()
    fake.faults.append(
        lambda r: (r.read(), httpx.Response(400, text="bad"))[1] if r.method == "PUT" else None
    )
    data = b"blob"
    descriptor = Descriptor(media.OCI_LAYER_TAR_GZIP, Digest.parse(sha(data)), len(data))
    with fake.client() as client, pytest.raises(RegistryError) as info:
        client.repository("app").put_blob(descriptor, [data])
    assert "SECRETSTATE" not in str(info.value)
    assert "_state" not in str(info.value)


@pytest.mark.parametrize(
    "target",
    [
        "https://storage.test/b?sig=SIGNED",
        "http://registry.test/b",  # same host, but the credentials would go in clear text
        "https://registry.test:8443/b",  # same host, another port: another origin
    ],
)
def test_redirect_does_not_forward_authorization_to_another_origin(target: str) -> None:
    fake = FakeRegistry(auth="basic")
    data = b"redirected blob"
    digest = sha(data)

    def redirect(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/b":
            return httpx.Response(200, content=data)
        if request.url.path.endswith(f"/blobs/{digest}") and "authorization" in request.headers:
            return httpx.Response(307, headers={"Location": target})
        return None

    fake.faults.append(redirect)
    descriptor = Descriptor(media.OCI_LAYER_TAR_GZIP, Digest.parse(digest), len(data))
    client = fake.client(environ=CREDS)
    with client, client.repository("app").open_blob(descriptor) as chunks:
        assert b"".join(chunks) == data
    [storage] = [r for r in fake.requests if r.url.path == "/b"]
    assert str(storage.url) == target
    assert "authorization" not in storage.headers


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_challenge_from_a_redirect_target_never_gets_the_credentials(scheme: str) -> None:
    # Blob storage (or anything a registry redirects to) is another origin: its 401 must not
    # become the registry's token realm, or the registry's credentials would be sent there.
    fake = FakeRegistry(auth=scheme)
    raw, blobs = image()
    fake.add_manifest("app", raw, media.OCI_MANIFEST, tag="v1")
    fake.blobs["app"] = dict(blobs)
    digest, data = next(iter(blobs.items()))

    def redirect(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == "storage.test" and request.url.path == "/blob":
            challenge = 'Bearer realm="https://storage.test/token",service="storage"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        if request.url.host == "storage.test":
            return httpx.Response(200, json={"token": "storage-token"})
        if request.url.path.endswith(f"/blobs/{digest}") and "authorization" in request.headers:
            return httpx.Response(307, headers={"Location": "https://storage.test/blob"})
        return None

    fake.faults.append(redirect)
    descriptor = Descriptor(media.OCI_LAYER_TAR_GZIP, Digest.parse(digest), len(data))
    client = fake.client(environ=CREDS)
    with client:
        repo = client.repository("app")
        repo.resolve("v1")  # the scheme (and token) are learned from the registry itself
        with pytest.raises(AuthError) as caught, repo.open_blob(descriptor) as chunks:
            b"".join(chunks)
        assert repo.resolve("v1").digest == Digest.of(raw)  # still the registry's own realm
    foreign = [r for r in fake.requests if r.url.host == "storage.test"]
    assert [str(r.url) for r in foreign] == ["https://storage.test/blob"]  # no token request
    assert all("authorization" not in r.headers for r in foreign)
    assert caught.value.exit_code == 3
    assert "storage.test" in caught.value.message


@pytest.mark.parametrize("token", ["t\u00f6ken-secret", "tok\r\nX-Injected: secret", "tok secret"])
def test_a_token_that_cannot_be_a_header_is_refused_without_showing_it(token: str) -> None:
    fake = FakeRegistry(auth="bearer")
    fake.faults.append(
        lambda r: httpx.Response(200, json={"token": token}) if r.url.host == "auth.test" else None
    )
    with fake.client(environ=CREDS) as client, pytest.raises(RegistryError) as info:
        client.repository("app").resolve("v1")
    assert info.value.exit_code == 3
    assert "secret" not in f"{info.value} {info.value.hint}"
    assert all("x-injected" not in r.headers for r in fake.requests)


@pytest.mark.parametrize("echo", ["password", "basic", "token"])
def test_a_registry_echoing_a_credential_never_gets_it_printed(echo: str) -> None:
    """A registry (or a proxy in front of it) that quotes the secret it was sent back in
    its error body must not put that secret into a CI log through digestgate's message."""
    fake = FakeRegistry(auth="basic" if echo != "token" else "bearer")
    seen: dict[str, str] = {}

    def echoing(request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        if request.url.host == "auth.test" or not header:
            return None
        value = header.partition(" ")[2]
        seen["value"] = value
        quoted = {
            "password": "s3cret-pass",
            "basic": value,  # base64 of user:password, without the scheme word
            "token": value,
        }[echo]
        message = f"denied for credential {quoted} on this repository"
        return httpx.Response(
            403, json={"errors": [{"code": "DENIED", "message": message, "detail": quoted}]}
        )

    fake.faults.append(echoing)
    with fake.client(environ=CREDS) as client, pytest.raises(RegistryError) as info:
        client.repository("app").resolve("v1")
    text = f"{info.value} {info.value.hint}"
    assert seen["value"] and seen["value"] not in text
    assert "s3cret-pass" not in text
    assert "DENIED" in text and "<redacted>" in text
