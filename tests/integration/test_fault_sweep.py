"""A seeded fault sweep over a two-image promotion between two real registries.

The release (a two-platform backend index and a frontend image) is read from the source
registry and promoted to the target registry, each behind its own fault proxy, many times
over, with random faults on both sides. After every run, whatever its outcome:

- every tag at the target names a complete image: each manifest it names and each blob
  those name is present and hashes right (read back directly, past the proxies);
- the immutable tag set before the sweep still names its digest, and ``v1.0`` names the
  release's digest or nothing;
- every run ended in a documented way (exit 1 or 3, or success), never an internal error.

A final fault-free run then converges to the exact expected state: the tags, their digests
(confirmed by skopeo) and the evidence attached to each digest. The seed is in every failure
message; ``DIGESTGATE_SWEEP_SEED`` and ``DIGESTGATE_SWEEP_RUNS`` replay or extend a sweep.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from digestgate.digest import Digest
from digestgate.errors import DigestgateError, ExitCode, InternalError
from digestgate.evidence.dsse import verify_envelope
from digestgate.evidence.model import VerifiedEvidence, read_vsa
from digestgate.oci.manifest import Descriptor, ImageIndex, ImageManifest
from digestgate.oci.open import Stores
from digestgate.oci.options import StoreOptions
from digestgate.oci.store import ImageStore
from digestgate.promotion.promote import PromotionResult, promote
from digestgate.reference import Location, parse_location
from digestgate.release import Release
from tests.fixtures import images
from tests.fixtures.faultproxy import FaultProxy, Hang, Trickle, all_kinds
from tests.fixtures.registry import Registry
from tests.fixtures.skopeo import inspect_digest, push_layout
from tests.unit.test_promote import (
    NOW,
    Gated,
    Keys,
    attached_envelopes,
    make_keys,
    outcome_for,
    payload_of,
    release_of,
)

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

SEED = int(os.environ.get("DIGESTGATE_SWEEP_SEED", "20261127"))
RUNS = int(os.environ.get("DIGESTGATE_SWEEP_RUNS", "20"))
#: Shares of requests that get a fault, on each side; each run draws one, so a run that
#: does not retry stops early, late or not at all.
RATES = (0.005, 0.01, 0.02, 0.04, 0.08)
NAMES = ("backend", "frontend")
TAGS = ("v1.0", "latest")
#: Quick limits for faulty runs: a hang or a trickle costs about a second, not thirty.
#: Even runs retry nothing, so one fault stops them at a random point and the invariants
#: are checked against half-done promotions; odd runs retry as usual.
FRAGILE = StoreOptions(timeout=1.0, retries=0, backoff=0.01)
RETRYING = StoreOptions(timeout=1.0, retries=2, backoff=0.01)


@dataclass
class Sweep:
    keys: Keys
    release: Release
    outcome: Gated
    old: dict[str, Digest]
    target: str
    src: FaultProxy
    dst: FaultProxy
    registry2: Registry
    repo: str

    def promote(self, options: StoreOptions) -> PromotionResult:
        with Stores(options) as stores:
            return promote(
                release=self.release,
                policy=self.outcome.policy,
                evidence_stores=[self.outcome.store],
                target=self.target,
                tags=TAGS,
                stores=stores,
                signer=self.keys.signer,
                now=NOW,
            )


def _stage(registry: Registry, host: str, repo: str, tmp: Path, seed: int) -> Release:
    """Push the two images to ``registry``; the release names them through ``host``."""
    backend = images.make_index(tmp / "backend", tag="b", seed=seed)
    frontend = images.make_image(tmp / "frontend", tag="f", seed=seed + 1, layers=3)
    locations: dict[str, Location] = {}
    for name, info in (("backend", backend), ("frontend", frontend)):
        digest = push_layout(tmp / name, info.digest, registry, f"{repo}/staging/{name}")
        locations[name] = parse_location(f"{host}/{repo}/staging/{name}@{digest}")
    return release_of(locations)


@pytest.fixture
def sweep(registry: Registry, registry2: Registry, repo: str, tmp_path: Path) -> Iterator[Sweep]:
    with FaultProxy(registry.host) as src, FaultProxy(registry2.host) as dst:
        keys = make_keys(tmp_path / "keys")
        # An earlier release already holds the immutable v0.9 and the mutable latest.
        old = _stage(registry, src.host, repo, tmp_path / "old", seed=900)
        old_outcome = outcome_for(keys, old)
        target = f"{dst.host}/{repo}/prod"
        with Stores(StoreOptions()) as stores:
            promote(
                release=old,
                policy=old_outcome.policy,
                evidence_stores=[old_outcome.store],
                target=target,
                tags=("v0.9", "latest"),
                stores=stores,
                signer=keys.signer,
                now=NOW,
            )
        release = _stage(registry, src.host, repo, tmp_path / "new", seed=910)
        yield Sweep(
            keys,
            release,
            outcome_for(keys, release),
            {name: old.artifacts[name].digest for name in NAMES},  # type: ignore[misc]
            target,
            src,
            dst,
            registry2,
            repo,
        )


def _complete(store: ImageStore, descriptor: Descriptor) -> None:
    """Every manifest and blob below ``descriptor`` is present and hashes right."""
    manifest = store.get_manifest(descriptor.digest)
    if isinstance(manifest, ImageIndex):
        for child in manifest.manifests:
            _complete(store, child)
        return
    assert isinstance(manifest, ImageManifest)
    for blob in manifest.blobs:
        with store.open_blob(blob) as chunks:
            for _ in chunks:
                pass


def _tags(sweep: Sweep) -> dict[str, dict[str, Digest]]:
    """Every tag of each target repository and the digest it names, each image verified
    complete, read directly from the target registry (no faults, nothing cached)."""
    found: dict[str, dict[str, Digest]] = {}
    with Stores(StoreOptions()) as stores:
        for name in NAMES:
            store = stores.open(parse_location(f"{sweep.registry2.host}/{sweep.repo}/prod/{name}"))
            found[name] = {}
            for tag in store.list_tags():
                descriptor = store.resolve(tag)
                _complete(store, descriptor)
                found[name][tag] = descriptor.digest
    return found


def _check_invariants(sweep: Sweep) -> None:
    for name, tags in _tags(sweep).items():
        new = sweep.release.artifacts[name].digest
        assert tags.get("v0.9") == sweep.old[name], f"{name}: immutable v0.9 moved"
        assert tags.get("v1.0", new) == new, f"{name}: v1.0 names {tags.get('v1.0')}"
        assert tags.get("latest") in (sweep.old[name], new), f"{name}: latest is foreign"


def test_random_faults_never_leave_an_incomplete_or_moved_tag(sweep: Sweep) -> None:
    rng = random.Random(SEED)
    kinds = [*all_kinds(), Hang(2.0), Trickle(rate=64, headers=True)]
    outcomes: list[str] = []
    stops: list[str] = []
    began = time.monotonic()
    for run in range(RUNS):
        seeds = (rng.randrange(2**32), rng.randrange(2**32))
        rate = rng.choice(RATES)
        sweep.src.clear()
        sweep.dst.clear()
        sweep.src.random(seeds[0], rate, kinds)
        sweep.dst.random(seeds[1], rate, kinds)
        context = f"seed {SEED}, run {run} (rate {rate}, proxy seeds {seeds[0]}, {seeds[1]})"
        try:
            sweep.promote(RETRYING if run % 2 else FRAGILE)
            outcomes.append("ok")
        except InternalError as exc:
            pytest.fail(f"{context}: internal error {exc}")
        except DigestgateError as exc:
            assert exc.exit_code in (ExitCode.BLOCKED, ExitCode.OPERATIONAL), context
            outcomes.append(f"exit {int(exc.exit_code)}")
            stops.append(exc.message[:70])
        except Exception as exc:
            pytest.fail(f"{context}: {type(exc).__name__}: {exc} escaped as a traceback")
        try:
            _check_invariants(sweep)
        except AssertionError as exc:
            faults = sweep.src.faults() + sweep.dst.faults()
            raise AssertionError(f"{context}: {exc}; faults: {faults}") from exc
    swept = time.monotonic() - began
    # The faults were real: runs stopped half-way, and retrying runs got through.
    assert "exit 3" in outcomes[::2], f"seed {SEED}: no run stopped half-way: {outcomes}"
    assert "ok" in outcomes[1::2], f"seed {SEED}: no retrying run got through: {outcomes}"

    sweep.src.clear()
    sweep.dst.clear()
    result = sweep.promote(StoreOptions())
    assert result.promotion is not None and result.gate is not None
    tags = _tags(sweep)
    for name in NAMES:
        new = sweep.release.artifacts[name].digest
        assert tags[name].pop("v0.9") == sweep.old[name]
        assert {t: d for t, d in tags[name].items() if not t.startswith("sha256-")} == {
            "v1.0": new,
            "latest": new,
        }, f"seed {SEED}"
        for tag in ("v0.9", "v1.0", "latest"):
            ref = f"{sweep.repo}/prod/{name}:{tag}"
            want = sweep.old[name] if tag == "v0.9" else new
            assert inspect_digest(sweep.registry2, ref) == str(want), f"seed {SEED}: {ref}"
        _check_evidence(sweep, result, name, RUNS)
    print(f"fault sweep: seed {SEED}, {RUNS} runs in {swept:.1f}s: {outcomes}")
    print("\n".join(f"  stopped: {stop}" for stop in stops))


def _check_evidence(sweep: Sweep, result: PromotionResult, name: str, runs: int) -> None:
    """The final run's evidence is listed once each: the statements the gate relied on, its
    VSA and its promotion record. Every other entry is a gate-signed VSA (decision or
    record) of an earlier run about this digest: each run's gate lists the VSAs earlier runs
    left in the evidence directory, so each run that reached the target adds one of each."""
    assert result.promotion is not None and result.gate is not None
    target = result.promotion.artifacts[name].location
    digest = sweep.release.artifacts[name].digest
    with Stores(StoreOptions()) as stores:
        direct = parse_location(str(target).replace(sweep.dst.host, sweep.registry2.host, 1))
        found = attached_envelopes(stores, name, direct)
    digests = [Digest.of(raw) for raw in found]
    assert len(digests) == len(set(digests)), f"seed {SEED}: {name} evidence listed twice"
    carried = {
        e.envelope_digest for e in sweep.outcome.evidence[name] if digest in e.statement.digests
    }
    gate_vsa = Digest.of(result.gate.vsas[name])
    assert carried | {gate_vsa} <= set(digests), f"seed {SEED}: {name} evidence missing"
    records = []
    for raw in found:
        if Digest.of(raw) in carried:
            continue
        verified = verify_envelope(raw, {"gate": sweep.keys.public}, origin="target")
        assert isinstance(verified, VerifiedEvidence), f"seed {SEED}: {name} foreign entry"
        # the index (and, in a gate VSA, the children it validated: ``backend@linux/...``)
        others = {s.name for s in verified.statement.subjects if s.digest != digest}
        assert digest in verified.statement.digests, f"seed {SEED}: {name} wrong subject"
        assert all(n.startswith(f"{name}@") for n in others), f"seed {SEED}: {name} subjects"
        assert _kind(raw) in ("gate", "promotion"), f"seed {SEED}: {name} entry {_kind(raw)}"
        if _kind(raw) == "promotion":
            assert read_vsa(verified.statement).resource_uri == str(target)
            inputs = payload_of(raw)["predicate"]["inputAttestations"]
            if any(item["digest"]["sha256"] == gate_vsa.hex for item in inputs):
                records.append(raw)
    assert len(records) == 1, f"seed {SEED}: {name}: {len(records)} records of the last run"
    assert len(found) - len(carried) <= 2 * (runs + 1), f"seed {SEED}: {name} entries pile up"


def _kind(raw: bytes) -> object:
    return payload_of(raw)["predicate"].get("digestgate_kind")
