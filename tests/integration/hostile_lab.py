"""Every file digestgate reads, each reachable through the real CLI with bytes a test chooses.

A :class:`Lab` is a complete release (two images in OCI layouts and in an in-process
registry, keys, a policy, signed evidence). Each :class:`Reader` puts the given bytes where
one reader of digestgate finds them (a release file, an evidence file, a referrer manifest,
a registry's fallback index, ...) and runs the command that reads them. The hostile-input
tests feed these readers generated documents and special files.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from digestgate.cli import options as cli_options
from digestgate.digest import Digest
from digestgate.oci import media
from digestgate.oci.layout import LayoutStore
from digestgate.oci.manifest import Descriptor, build_artifact_manifest, build_index
from digestgate.oci.registry import transport as transport_module
from digestgate.oci.registry import urls
from digestgate.promotion.tagplan import TagPlan
from tests.conftest import CliResult, run_cli
from tests.fixtures.deadline import within
from tests.integration.test_gate_adversarial import World
from tests.unit.gatekit import POLICY, REPO, REVISION, RUN, release_json
from tests.unit.registry_fake import FakeRegistry, image

DATA = Path(__file__).resolve().parent.parent / "data"
HOST = "registry.example.org"
BACKEND = "org/staging/backend"
#: Generous: a genuine hang never ends, a slow shared CI machine still finishes in time.
DEADLINE = 30.0
Kind = Literal["json", "yaml", "xml"]
#: A hostile document may leave a valid one (a harmless mutation): usage readers may pass.
USAGE = frozenset({0, 1, 2})
#: Store readers see nothing else: never a pass, never a usage error.
STORE = frozenset({1, 3})


@dataclass(frozen=True)
class Reader:
    """One reader: the format it expects, a valid document, and how to feed it bytes."""

    name: str
    kind: Kind
    valid: bytes
    #: Puts the bytes where the reader finds them.
    place: Callable[[bytes], object]
    #: Runs the command that reads them.
    command: Callable[[], CliResult]
    #: Exit codes a hostile document may produce (never 4).
    codes: frozenset[int]
    #: The file the user names, for the special-file tests (None: not a path of its own).
    path: Path | None = None

    def feed(self, data: bytes) -> CliResult:
        """Place ``data`` and run the command."""
        self.place(data)
        return self.command()


def check_handled(result: CliResult, codes: frozenset[int]) -> None:
    """The run ended in an allowed exit code, without a crash, with at most one error line."""
    where = f"exit {result.code}\nstdout: {result.stdout[-800:]}\nstderr: {result.stderr[-800:]}"
    assert result.code != 4, where
    assert "internal error" not in result.stderr, where
    assert "Traceback" not in result.stderr, where
    assert result.code in codes, where
    lines = result.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("digestgate: error: ")]
    if result.code in (2, 3):
        assert len(errors) == 1, where
    for i in errors:  # one line: what follows is the hint, or nothing
        assert i + 1 == len(lines) or lines[i + 1].startswith("  hint: "), where


def _with_evidence(policy: str, namespace: str) -> str:
    """``policy`` with each artifact's evidence read from NAMESPACE/NAME."""
    for name in ("backend", "frontend"):
        lines = policy.splitlines(keepends=True)
        for i, line in enumerate(lines):
            if line.startswith(f"  {name}: {{repository: ") and line.rstrip().endswith("}"):
                evidence = f', evidence: ["{namespace}/{name}"]}}'
                lines[i] = line.rstrip()[:-1] + evidence + "\n"
        policy = "".join(lines)
    return policy


def _writer(path: Path) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or (path.exists() and not path.is_file()):
            path.unlink()
        path.write_bytes(data)

    return write


class Lab:
    """A release, its keys, policy and evidence, in layouts and in a fake registry."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.world = World(root)
        self.registry = FakeRegistry()
        original = cli_options.store_options_from

        def patched(*args: Any, **kwargs: Any) -> Any:
            options = original(*args, **kwargs)
            transport = httpx.MockTransport(self.registry.handle)
            return dataclasses.replace(options, transport=transport, retries=0)

        monkeypatch.setattr(cli_options, "store_options_from", patched)
        # Loading the system CA bundle is most of a run against the in-process registry.
        monkeypatch.setattr(transport_module, "ssl_context", functools.cache(urls.ssl_context))
        self.digests: dict[str, Digest] = {}
        for name in ("backend", "frontend"):
            raw, blobs = image(name.encode())
            for blob in blobs.values():
                self.registry.add_blob(f"org/staging/{name}", blob)
            added = self.registry.add_manifest(f"org/staging/{name}", raw, media.OCI_MANIFEST)
            self.digests[name] = Digest.parse(added)
        self.image_raw = self.registry.manifests[(BACKEND, str(self.digests["backend"]))][0]
        self.subject = Descriptor(media.OCI_MANIFEST, self.digests["backend"], len(self.image_raw))
        # The attached store reads the exact repositories the policy names (artifacts.*.evidence).
        self.registry_policy = root / "policy-registry.yaml"
        self.registry_policy.write_text(
            _with_evidence(POLICY.replace("keys/", ""), f"{HOST}/org/staging")
        )
        self.layout_policy = root / "policy-layout.yaml"
        self.layout_policy.write_text(
            _with_evidence(self.world.policy.read_text(), f"oci:{root / 'images'}")
        )
        self.registry_release = root / "release-registry.json"
        self.write_registry_release(self.digests["backend"])
        self.layout = root / "images" / "backend"
        self.layout_index = (self.layout / "index.json").read_bytes()
        self.layout_subject = LayoutStore.open(str(self.layout), create=False).resolve(
            self.world.digests["backend"]
        )
        self.envelope = self.world.files["e2e"].read_bytes()
        # A complete referrer in the registry, so a valid index or manifest reads in full.
        self.registry.add_blob(BACKEND, self.envelope)
        self.referrer = self.referrer_manifest(self.envelope, self.subject)
        self.registry.add_manifest(BACKEND, self.referrer, media.OCI_MANIFEST)

    # -- the readers ----------------------------------------------------------------------------

    def readers(self) -> dict[str, Reader]:
        """Every reader, by name."""
        w = self.world
        referrer = self.referrer
        config = {"auths": {HOST: {"auth": base64.b64encode(b"alice:s3cret-pass").decode()}}}
        metadata = (DATA / "buildx" / "single-platform.metadata.json").read_bytes()
        junit = (DATA / "junit" / "pytest-pass.xml").read_bytes()
        release, promoted = w.release.read_bytes(), self.promoted_doc()
        files: list[tuple[str, Kind, bytes, str, Callable[[], CliResult], frozenset[int]]] = [
            ("release", "json", release, "in/release.json", self.gate_release, USAGE),
            ("promoted", "json", promoted, "in/promoted.json", self.gate_promoted, USAGE),
            ("drift", "json", promoted, "in/drift.json", self.drift, USAGE),
            ("policy", "yaml", w.policy.read_bytes(), "hostile.yaml", self.gate_policy, USAGE),
            ("workflow", "yaml", self.workflow_doc(), "wf/ci.yml", self.lint, USAGE),
            ("metadata", "json", metadata, "in/metadata.json", self.capture, frozenset({0, 2})),
            ("tag-plan", "json", self.tag_plan_doc(), "out/p.json.tagplan", self.promote, USAGE),
            ("docker-config", "json", json.dumps(config).encode(), "docker/config.json",
             self.resolve, frozenset({0, 2, 3})),
            ("junit", "xml", junit, "in/junit.xml", self.attest, frozenset({0, 2})),
            ("evidence-file", "json", self.envelope, "only/hostile.json", self.gate_only, STORE),
        ]  # fmt: skip
        readers = {
            name: Reader(name, kind, valid, _writer(self.root / rel), run, codes, self.root / rel)
            for name, kind, valid, rel, run, codes in files
        }
        placed: list[tuple[str, bytes, Callable[[bytes], object], Callable[[], CliResult]]] = [
            ("layout-referrer", referrer, self.layout_referrer, self.gate_layout),
            ("layout-envelope", self.envelope, self.layout_envelope, self.gate_layout),
            ("layout-manifest", self.image_raw, self.layout_manifest, self.gate_layout),
            ("registry-index", self.index_of(referrer), self.fallback, self.gate_registry),
            ("registry-referrer", referrer, self.registry_referrer, self.gate_registry),
            ("registry-envelope", self.envelope, self.registry_envelope, self.gate_registry),
            ("registry-manifest", self.image_raw, self.registry_manifest, self.gate_registry),
        ]
        for name, valid, place, run in placed:
            readers[name] = Reader(name, "json", valid, place, run, STORE)
        return readers

    # -- valid documents --------------------------------------------------------------------------

    def promoted_doc(self) -> bytes:
        doc = {
            "apiVersion": "digestgate/v1",
            "kind": "Promotion",
            "source": {"repository": REPO, "revision": REVISION, "ref": "refs/heads/main",
                       "runId": RUN},
            "policy": {"digest": str(Digest.of(b"policy"))},
            "time": "2026-11-26T10:00:00Z",
            "artifacts": {
                name: {"image": f"{HOST}/org/prod/{name}@{digest}",
                       "from": f"{HOST}/org/staging/{name}@{digest}",
                       "tags": [{"tag": "v1.0.0", "previous": None}]}
                for name, digest in self.digests.items()
            },
        }  # fmt: skip
        return json.dumps(doc, indent=2).encode()

    def workflow_doc(self) -> bytes:
        return (
            b"name: release\non:\n  push:\n    branches: [main]\njobs:\n  build:\n"
            b"    runs-on: ubuntu-latest\n    timeout-minutes: 30\n    steps:\n"
            b"      - uses: actions/checkout@v4\n      - run: make test\n"
            b"        env: {RETRIES: 3, RATIO: 0.5}\n"
        )

    def tag_plan_doc(self) -> bytes:
        path = self.root / "plan-template"
        plan = TagPlan(path)
        plan.record(f"oci:{self.root / 'target' / 'backend'}", "v1", self.world.digests["backend"],
                    None)  # fmt: skip
        data = path.read_bytes()
        path.unlink()
        return data

    def referrer_manifest(self, envelope: bytes, subject: Descriptor) -> bytes:
        layer = Descriptor(media.DSSE_ENVELOPE, Digest.of(envelope), len(envelope))
        return build_artifact_manifest(
            artifact_type=media.evidence_artifact_type("test-result"),
            layers=[layer],
            subject=subject,
        )

    def index_of(self, raw_manifest: bytes) -> bytes:
        entry = Descriptor(
            media.OCI_MANIFEST,
            Digest.of(raw_manifest),
            len(raw_manifest),
            artifact_type=media.evidence_artifact_type("test-result"),
        )
        return build_index([entry])

    # -- placing bytes ----------------------------------------------------------------------------

    def _layout_reset(self) -> LayoutStore:
        (self.layout / "index.json").write_bytes(self.layout_index)
        return LayoutStore.open(str(self.layout), create=False)

    def _layout_blob(self, data: bytes) -> Digest:
        digest = Digest.of(data)
        path = self.layout / "blobs" / "sha256" / digest.hex
        if not path.exists():
            path.write_bytes(data)
        return digest

    def layout_referrer(self, data: bytes) -> Digest:
        """``data`` is a manifest listed in the layout's index.json (as a referrer would be)."""
        self._layout_reset()
        digest = self._layout_blob(data)
        index = json.loads(self.layout_index)
        index["manifests"].append(
            {"mediaType": media.OCI_MANIFEST, "digest": str(digest), "size": len(data)}
        )
        (self.layout / "index.json").write_text(json.dumps(index))
        return digest

    def layout_envelope(self, data: bytes) -> None:
        """``data`` is the envelope layer of a well-formed referrer of the backend image."""
        store = self._layout_reset()
        self._layout_blob(data)
        raw = self.referrer_manifest(data, self.layout_subject)
        store.put_referrer(raw, media.OCI_MANIFEST, self.layout_subject)

    def layout_manifest(self, data: bytes) -> None:
        """``data`` is the backend image's manifest, named by the release."""
        digest = self.layout_referrer(data)  # listed in index.json the same way
        self.world.write_release({
            "backend": self.world.image("backend", digest),
            "frontend": self.world.image("frontend"),
        })  # fmt: skip

    def fallback(self, data: bytes) -> None:
        """``data`` is the backend's ``sha256-<hex>`` fallback index in the registry."""
        tag = f"sha256-{self.digests['backend'].hex}"
        self.registry.manifests[(BACKEND, tag)] = (data, media.OCI_INDEX)

    def registry_referrer(self, data: bytes) -> None:
        """``data`` is a referrer manifest listed by a well-formed fallback index."""
        self.registry.manifests[(BACKEND, str(Digest.of(data)))] = (data, media.OCI_MANIFEST)
        self.fallback(self.index_of(data))

    def registry_envelope(self, data: bytes) -> None:
        """``data`` is the envelope blob of a well-formed referrer."""
        self.registry.add_blob(BACKEND, data)
        self.registry_referrer(self.referrer_manifest(data, self.subject))

    def registry_manifest(self, data: bytes) -> None:
        """``data`` is the backend image's manifest in the registry, named by the release."""
        digest = self.registry.add_manifest(BACKEND, data, media.OCI_MANIFEST)
        self.write_registry_release(Digest.parse(digest))

    def write_registry_release(self, backend: Digest) -> None:
        images = {
            "backend": f"{HOST}/{BACKEND}@{backend}",
            "frontend": f"{HOST}/org/staging/frontend@{self.digests['frontend']}",
        }
        self.registry_release.write_bytes(release_json(images))

    # -- commands ---------------------------------------------------------------------------------

    def cli(self, *args: str) -> CliResult:
        """Run digestgate, failing the test instead of hanging."""
        with within(DEADLINE):
            return run_cli(*args)

    def gate(self, release: Path, policy: Path, evidence: str, *extra: str) -> CliResult:
        report = str(self.root / "report.json")
        return self.cli(
            "gate", "--release", str(release), "--policy", str(policy), "--evidence", evidence,
            "--report", report, *extra,
        )  # fmt: skip

    def gate_release(self) -> CliResult:
        w = self.world
        return self.gate(self.root / "in/release.json", w.policy, f"dir:{w.evidence}", "--offline")

    def gate_promoted(self) -> CliResult:
        promoted = self.root / "in/promoted.json"
        return self.gate(promoted, self.registry_policy, f"dir:{self.world.evidence}")

    def drift(self) -> CliResult:
        return self.cli("drift", str(self.root / "in/drift.json"))

    def gate_policy(self) -> CliResult:
        w = self.world  # the policy sits beside the keys its paths name
        return self.gate(w.release, self.root / "hostile.yaml", f"dir:{w.evidence}")

    def lint(self) -> CliResult:
        return self.cli("lint", str(self.root / "wf/ci.yml"))

    def capture(self) -> CliResult:
        release = self.root / "captured.json"
        release.unlink(missing_ok=True)
        return self.cli(
            "capture", "backend", "--metadata-file", str(self.root / "in/metadata.json"),
            "--offline", "--release", str(release), "--source-repo", REPO, "--revision",
            REVISION, "--ref", "refs/heads/main", "--run-id", RUN,
        )  # fmt: skip

    def promote(self) -> CliResult:
        w = self.world
        return self.cli(
            "promote", "--release", str(w.release), "--policy", str(w.policy), "--evidence",
            f"dir:{w.evidence}", "--to", f"oci:{self.root / 'target'}", "--vsa-key",
            str(w.keys["gate"]), "--out", str(self.root / "out/p.json"),
        )  # fmt: skip

    def resolve(self) -> CliResult:
        self.registry.auth = "basic"
        try:
            return self.cli(
                "resolve", f"{HOST}/{BACKEND}@{self.digests['backend']}",
                "--docker-config", str(self.root / "docker"),
            )  # fmt: skip
        finally:
            self.registry.auth = None

    def attest(self) -> CliResult:
        w = self.world
        return self.cli(
            "attest", "test-result", "--release", str(w.release), "--lane", "fast-check",
            "--junit", str(self.root / "in/junit.xml"), "--key", str(w.keys["tests"]),
            "--evidence", f"dir:{self.root / 'attested'}",
        )  # fmt: skip

    def gate_only(self) -> CliResult:
        w = self.world
        return self.gate(w.release, w.policy, f"dir:{self.root / 'only'}", "--offline")

    def gate_layout(self) -> CliResult:
        return self.gate(self.world.release, self.layout_policy, "attached")

    def gate_registry(self) -> CliResult:
        return self.gate(self.registry_release, self.registry_policy, "attached")
