"""Promotions against the real registry, through the fault proxy: two concurrent runs held
at their first tag write, and a run stopped by SIGTERM in the middle of a blob.

The proxy (tests/fixtures/faultproxy.py) stands in front of the test registry as the
promotion target (or source); the registry behind it is the real CNCF distribution.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from digestgate.digest import Digest
from digestgate.evidence.dsse import sign_envelope
from digestgate.evidence.keys import generate_keypair, load_signer
from digestgate.evidence.model import PAYLOAD_TYPE
from digestgate.oci.layout import LayoutStore
from digestgate.oci.open import Stores
from digestgate.reference import parse_location
from digestgate.timeutil import utcnow
from tests.fixtures import images
from tests.fixtures.faultproxy import FaultProxy, Trickle
from tests.fixtures.registry import Registry
from tests.fixtures.skopeo import push_layout
from tests.unit.gatekit import lane, provenance, release_json

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

NAMES = ("backend", "frontend")
POLICY = """\
apiVersion: digestgate/v1
kind: Policy
keys: {build: build.pub, tests: tests.pub, gate: gate.pub}
artifacts:
  backend: {repository: "**/backend"}
  frontend: {repository: "**/frontend"}
source: {repository: "https://git.example.org/org/app", refs: ["refs/heads/main"]}
provenance: {signers: [build]}
lanes:
  e2e: {signers: [tests], together: true}
gate: {signers: [gate]}
promotion: {immutableTags: ["v*"]}
"""
#: The first write of one of the promotion's own tags (not a sha256-<hex> referrers index).
OUR_TAG_WRITE = r"^/v2/.+/manifests/(latest|v1)$"


class Setup:
    """Keys, a policy, and releases whose images are in the registry's staging namespace."""

    def __init__(self, root: Path, registry: Registry, repo: str) -> None:
        self.root = root
        self.registry = registry
        self.repo = repo
        for role in ("build", "tests", "gate"):
            pair = generate_keypair()
            (root / f"{role}.key").write_bytes(pair.private_pem)
            (root / f"{role}.pub").write_bytes(pair.public_pem)
        (root / "policy.yaml").write_text(POLICY)

    def release(
        self, label: str, *, layer_size: int = 4096, source_host: str | None = None
    ) -> tuple[Path, Path, dict[str, Digest]]:
        """Build, push and attest one release; return its file, evidence dir and digests."""
        digests: dict[str, Digest] = {}
        host = source_host or self.registry.host
        for seed, name in enumerate(NAMES, start=hash(label) % 1000):
            layout = self.root / f"{label}-{name}"
            info = images.make_image(layout, seed=seed, layers=1, layer_size=layer_size)
            pushed = push_layout(layout, info.digest, self.registry, f"{self.repo}/staging/{name}")
            digests[name] = Digest.parse(pushed)
        path = self.root / f"release-{label}.json"
        path.write_bytes(
            release_json({n: f"{host}/{self.repo}/staging/{n}@{d}" for n, d in digests.items()})
        )
        evidence = self.root / f"evidence-{label}"
        evidence.mkdir()
        when = utcnow() - timedelta(hours=1)
        statements = [(provenance({n: d}, finished=when), "build") for n, d in digests.items()]
        statements.append((lane("e2e", digests, finished=when), "tests"))
        for i, (statement, role) in enumerate(statements):
            signer = load_signer(str(self.root / f"{role}.key"), {})
            raw = sign_envelope(json.dumps(statement).encode(), PAYLOAD_TYPE, [signer])
            (evidence / f"{i}.json").write_bytes(raw)
        return path, evidence, digests

    def promote(
        self, release: Path, evidence: Path, target: str, out: Path
    ) -> subprocess.Popen[str]:
        argv = [
            sys.executable, "-m", "digestgate", "promote", "--release", str(release),
            "--policy", str(self.root / "policy.yaml"), "--evidence", f"dir:{evidence}",
            "--to", target, "--vsa-key", str(self.root / "gate.key"),
            "--tag", "latest", "--tag", "v1", "--out", str(out),
        ]  # fmt: skip
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def target_tags(host: str, namespace: str) -> dict[tuple[str, str], Digest | None]:
    result: dict[tuple[str, str], Digest | None] = {}
    with Stores() as stores:
        for name in NAMES:
            store = stores.open(parse_location(f"{host}/{namespace}/{name}"))
            for tag in ("latest", "v1"):
                found = store.get_tag(tag)
                result[name, tag] = found.digest if found else None
    return result


def test_two_promotions_held_at_their_first_tag_write_never_leave_a_false_record(
    tmp_path: Path, registry: Registry, repo: str
) -> None:
    setup = Setup(tmp_path, registry, repo)
    runs = {label: setup.release(label) for label in ("a", "b")}
    outcomes: dict[str, int] = {}
    with FaultProxy(registry.host) as proxy:
        for trial in range(16):
            namespace = f"{repo}/prod{trial}"
            gate = proxy.hold(method="PUT", path=OUR_TAG_WRITE, times=2)
            target = f"{proxy.host}/{namespace}"
            procs = {
                label: setup.promote(release, evidence, target, tmp_path / f"{label}{trial}.json")
                for label, (release, evidence, _) in runs.items()
            }
            assert gate.wait(2, timeout=90), {k: p.poll() for k, p in procs.items()}
            gate.release()
            codes = {label: proc.wait(timeout=120) for label, proc in procs.items()}
            final = target_tags(registry.host, namespace)
            for label, proc in procs.items():
                code = codes[label]
                stderr = proc.stderr.read() if proc.stderr else ""
                assert code in (0, 1, 3), stderr
                outcomes[f"{label}:{code}"] = outcomes.get(f"{label}:{code}", 0) + 1
                record = tmp_path / f"{label}{trial}.json"
                if code == 0:
                    doc = json.loads(record.read_text())
                    digests = runs[label][2]
                    for name in NAMES:
                        for tag in doc["artifacts"][name]["tags"]:
                            assert final[name, tag["tag"]] == digests[name], (trial, label, final)
                else:
                    assert not record.exists(), stderr
            assert sum(code == 0 for code in codes.values()) <= 1, (trial, codes)
    print("outcomes over 16 trials:", outcomes)
    assert outcomes.get("a:0", 0) + outcomes.get("b:0", 0) >= 8, outcomes


def test_sigterm_mid_blob_stops_cleanly_and_a_rerun_completes(
    tmp_path: Path, registry: Registry, repo: str
) -> None:
    setup = Setup(tmp_path, registry, repo)
    with FaultProxy(registry.host) as proxy:
        release, evidence, digests = setup.release(
            "big", layer_size=2 * 1024 * 1024, source_host=proxy.host
        )
        # The source's large blobs trickle: the copy into the layout takes minutes.
        proxy.add(Trickle(64 * 1024), method="GET", path=r"/blobs/sha256:", times=None)
        target = tmp_path / "production"
        out = tmp_path / "promoted.json"
        proc = setup.promote(release, evidence, f"oci:{target}", out)
        deadline = time.monotonic() + 90
        while not list(target.rglob(".tmp-*")):  # a blob is being written
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the copy never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        stderr = proc.stderr.read() if proc.stderr else ""
        assert code == 128 + signal.SIGTERM, stderr
        assert "interrupted by SIGTERM" in stderr
        assert list(target.rglob(".tmp-*")) == []  # the partial blob was removed
        for name in NAMES:
            layout = target / name
            if layout.exists():
                assert LayoutStore.open(str(layout), create=False).list_tags() == []
        assert not out.exists()
        proxy.clear()
        again = setup.promote(release, evidence, f"oci:{target}", out)
        assert again.wait(timeout=120) == 0, again.stderr.read() if again.stderr else ""
    for name in NAMES:
        tagged = LayoutStore.open(str(target / name), create=False).get_tag("v1")
        assert tagged is not None and tagged.digest == digests[name]
