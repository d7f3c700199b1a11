"""An in-memory OCI registry behind ``httpx.MockTransport``, for fault injection.

It implements the parts of distribution-spec 1.1 the client uses (manifests, blobs,
monolithic and chunked uploads, mounts, tag lists with pagination), optionally the native
Referrers API (with ``OCI-Filters-Applied`` and pagination), and Basic or Bearer auth with
scope checks. ``faults`` lets a test replace any answer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.client import RegistryClient

Fault = Callable[[httpx.Request], httpx.Response | None]

_ROUTE = re.compile(
    r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs/uploads|blobs|tags/list|referrers)"
    r"(?:/(?P<rest>.*))?$"
)
REGISTRY = "registry.test"
REALM = "https://auth.test/token"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeRegistry:
    auth: str | None = None  # None, "basic" or "bearer"
    username: str = "alice"
    password: str = "s3cret-pass"
    referrers_api: bool = False
    referrers_page: int = 1000
    filters_applied: bool = True
    tags_page: int = 1000
    ranges: bool = True  # answer ``Range: bytes=N-`` on blob GETs with 206
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    blobs: dict[str, dict[str, bytes]] = field(default_factory=dict)
    uploads: dict[str, bytearray] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    token_scopes: list[list[str]] = field(default_factory=list)
    tokens: dict[str, list[str]] = field(default_factory=dict)
    _next: int = 0

    # -- helpers for tests -------------------------------------------------------------------

    def client(self, **kwargs: Any) -> RegistryClient:
        options = kwargs.pop("options", None) or StoreOptions(
            transport=httpx.MockTransport(self.handle), retries=3, backoff=0.0
        )
        kwargs.setdefault("sleep", lambda _s: None)
        kwargs.setdefault("environ", {})
        return RegistryClient(REGISTRY, options, **kwargs)

    def add_blob(self, name: str, data: bytes) -> str:
        digest = sha(data)
        self.blobs.setdefault(name, {})[digest] = data
        return digest

    def add_manifest(self, name: str, raw: bytes, media_type: str, tag: str | None = None) -> str:
        digest = sha(raw)
        self.manifests[(name, digest)] = (raw, media_type)
        if tag:
            self.manifests[(name, tag)] = (raw, media_type)
        return digest

    def count(self, method: str, fragment: str = "") -> int:
        return sum(1 for r in self.requests if r.method == method and fragment in str(r.url))

    # -- the handler -------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for fault in self.faults:
            answer = fault(request)
            if answer is not None:
                return answer
        if request.url.host == "auth.test":
            return self._token(request)
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        path = request.url.path
        if path == "/v2/":
            return httpx.Response(200)
        match = _ROUTE.match(path)
        if match is None:
            return _error(404, "NAME_UNKNOWN")
        name, kind, rest = match["name"], match["kind"], match["rest"] or ""
        handler = getattr(self, "_" + kind.replace("/", "_"))
        result: httpx.Response = handler(request, name, rest)
        return result

    def _token(self, request: httpx.Request) -> httpx.Response:
        scopes = request.url.params.get_list("scope")
        self.token_scopes.append(scopes)
        header = request.headers.get("authorization")
        if header is not None and header != _basic(self.username, self.password):
            return httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED"}]})
        self._next += 1
        token = f"tok{self._next}-opaque"
        self.tokens[token] = scopes
        return httpx.Response(200, json={"token": token, "expires_in": 300})

    def _needed(self, request: httpx.Request) -> tuple[str | None, str]:
        match = _ROUTE.match(request.url.path)
        action = "pull" if request.method in ("GET", "HEAD") else "push"
        return (match["name"] if match else None), action

    def _check_auth(self, request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("authorization")
        if self.auth == "basic":
            if header == _basic(self.username, self.password):
                return None
            return _error(401, "UNAUTHORIZED", {"WWW-Authenticate": 'Basic realm="fake"'})
        if self.auth == "bearer":
            name, action = self._needed(request)
            granted = self.tokens.get((header or "").removeprefix("Bearer "), None)
            if granted is not None and (name is None or _allows(granted, name, action)):
                return None
            scope = f"repository:{name}:{'pull' if action == 'pull' else 'pull,push'}"
            challenge = f'Bearer realm="{REALM}",service="fake",scope="{scope}"'
            return _error(401, "UNAUTHORIZED", {"WWW-Authenticate": challenge})
        return None

    def _mount_allowed(self, request: httpx.Request, source: str) -> bool:
        if self.auth != "bearer":
            return True
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return _allows(self.tokens.get(token, []), source, "pull")

    # -- routes ------------------------------------------------------------------------------

    def _manifests(self, request: httpx.Request, name: str, ref: str) -> httpx.Response:
        if request.method in ("GET", "HEAD"):
            found = self.manifests.get((name, ref))
            if found is None:
                return _error(404, "MANIFEST_UNKNOWN")
            raw, media_type = found
            headers = {"Content-Type": media_type, "Docker-Content-Digest": sha(raw)}
            if request.method == "HEAD":
                headers["Content-Length"] = str(len(raw))
                return httpx.Response(200, headers=headers)
            return httpx.Response(200, headers=headers, content=raw)
        if request.method == "PUT":
            raw = request.read()
            media_type = request.headers.get("content-type", "")
            digest = sha(raw)
            if ref.startswith("sha256:") and ref != digest:
                return _error(400, "DIGEST_INVALID")
            self.add_manifest(name, raw, media_type, None if ref.startswith("sha256:") else ref)
            headers = {
                "Docker-Content-Digest": digest,
                "Location": f"/v2/{name}/manifests/{digest}",
            }
            subject = json.loads(raw).get("subject")
            if self.referrers_api and isinstance(subject, dict):
                headers["OCI-Subject"] = subject["digest"]
            return httpx.Response(201, headers=headers)
        return _error(405, "UNSUPPORTED")

    def _blobs(self, request: httpx.Request, name: str, digest: str) -> httpx.Response:
        data = self.blobs.get(name, {}).get(digest)
        if data is None:
            return _error(404, "BLOB_UNKNOWN")
        headers = {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream"}
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return httpx.Response(200, headers=headers)
        wanted = re.fullmatch(r"bytes=(\d+)-", request.headers.get("range", ""))
        if self.ranges and wanted and int(wanted[1]) < len(data):
            start = int(wanted[1])
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            return httpx.Response(206, headers=headers, content=data[start:])
        return httpx.Response(200, headers=headers, content=data)

    def _new_session(self, name: str) -> httpx.Response:
        self._next += 1
        uuid = f"u{self._next}"
        self.uploads[uuid] = bytearray()
        location = f"/v2/{name}/blobs/uploads/{uuid}?_state=SECRETSTATE{uuid}"
        return httpx.Response(202, headers={"Location": location, "Range": "0-0"})

    def _blobs_uploads(self, request: httpx.Request, name: str, uuid: str) -> httpx.Response:
        params = request.url.params
        if request.method == "POST":
            mount, source = params.get("mount"), params.get("from")
            known = self.blobs.get(source or "", {})
            if mount and source and mount in known and self._mount_allowed(request, source):
                self.blobs.setdefault(name, {})[mount] = known[mount]
                return httpx.Response(201, headers={"Location": f"/v2/{name}/blobs/{mount}"})
            return self._new_session(name)
        buffer = self.uploads.get(uuid)
        if buffer is None:
            return _error(404, "BLOB_UPLOAD_UNKNOWN")
        if request.method == "DELETE":
            del self.uploads[uuid]
            return httpx.Response(204)
        if request.method == "GET":  # the session's status (what it holds so far)
            self._next += 1
            location = f"/v2/{name}/blobs/uploads/{uuid}?_state=SECRETSTATE{self._next}"
            held = f"0-{len(buffer) - 1}" if buffer else "0-0"
            return httpx.Response(204, headers={"Location": location, "Range": held})
        body = request.read()
        if request.method == "PATCH":
            start = int(request.headers["content-range"].split("-")[0])
            if start != len(buffer):
                return httpx.Response(416)
            buffer.extend(body)
            self._next += 1
            location = f"/v2/{name}/blobs/uploads/{uuid}?_state=SECRETSTATE{self._next}"
            return httpx.Response(
                202, headers={"Location": location, "Range": f"0-{len(buffer) - 1}"}
            )
        if request.method == "PUT":
            buffer.extend(body)
            digest = params.get("digest")
            if digest != sha(bytes(buffer)):
                return _error(400, "DIGEST_INVALID")
            self.blobs.setdefault(name, {})[digest] = bytes(buffer)
            del self.uploads[uuid]
            return httpx.Response(201, headers={"Location": f"/v2/{name}/blobs/{digest}"})
        return _error(405, "UNSUPPORTED")

    def _tags_list(self, request: httpx.Request, name: str, _rest: str) -> httpx.Response:
        tags = sorted(t for (n, t) in self.manifests if n == name and not t.startswith("sha"))
        if not tags:
            return _error(404, "NAME_UNKNOWN")
        last = request.url.params.get("last")
        if last:
            tags = [t for t in tags if t > last]
        page, rest = tags[: self.tags_page], tags[self.tags_page :]
        headers = {}
        if rest:
            headers["Link"] = (
                f'</v2/{name}/tags/list?last={page[-1]}&n={self.tags_page}>; rel="next"'
            )
        return httpx.Response(200, headers=headers, json={"name": name, "tags": page})

    def _referrers(self, request: httpx.Request, name: str, subject: str) -> httpx.Response:
        if not self.referrers_api:
            return httpx.Response(404, text="404 page not found")
        entries = []
        for (n, ref), (raw, media_type) in sorted(self.manifests.items()):
            if n != name or not ref.startswith("sha256:"):
                continue
            doc = json.loads(raw)
            if (doc.get("subject") or {}).get("digest") != subject:
                continue
            entry: dict[str, Any] = {"mediaType": media_type, "digest": ref, "size": len(raw)}
            artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
            if artifact_type:
                entry["artifactType"] = artifact_type
            if doc.get("annotations"):
                entry["annotations"] = doc["annotations"]
            entries.append(entry)
        headers = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
        wanted = request.url.params.get("artifactType")
        if wanted and self.filters_applied:
            entries = [e for e in entries if e.get("artifactType") == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        skip = int(request.url.params.get("skip", "0"))
        page = entries[skip : skip + self.referrers_page]
        if skip + self.referrers_page < len(entries):
            query = f"skip={skip + self.referrers_page}"
            if wanted:
                query += f"&artifactType={wanted}"
            headers["Link"] = f'</v2/{name}/referrers/{subject}?{query}>; rel="next"'
        body = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": page,
        }
        return httpx.Response(200, headers=headers, content=json.dumps(body).encode())


def rewrite_referrer_listing(
    fake: FakeRegistry, artifact_type: str | None, repo: str = "app"
) -> None:
    """The registry lists every referrer of ``repo`` with ``artifact_type`` (None: the
    field left out), a quirk seen in the field."""

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method != "GET" or "/referrers/" not in request.url.path:
            return None
        answer = fake._referrers(request, repo, request.url.path.rsplit("/", 1)[1])
        doc = json.loads(answer.content)
        for entry in doc["manifests"]:
            entry.pop("artifactType", None)
            if artifact_type is not None:
                entry["artifactType"] = artifact_type
        return httpx.Response(200, headers=dict(answer.headers), json=doc)

    fake.faults.append(fault)


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _allows(granted: list[str], name: str, action: str) -> bool:
    for scope in granted:
        kind, _, rest = scope.partition(":")
        repo, _, actions = rest.rpartition(":")
        if kind == "repository" and repo == name and action in actions.split(","):
            return True
    return False


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"errors": [{"code": code, "message": code.lower().replace("_", " ")}]}
    return httpx.Response(status, headers=headers, json=body)


def image(
    layer: bytes = b"layer-bytes", *, config: bytes = b'{"architecture":"amd64"}'
) -> tuple[bytes, dict[str, bytes]]:
    """The bytes of an OCI image manifest and its blobs (digest -> bytes)."""
    blobs = {sha(config): config, sha(layer): layer}
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha(layer),
                "size": len(layer),
            }
        ],
    }
    return json.dumps(doc, indent=1).encode(), blobs
