"""Time ``digestgate gate --offline`` on a large release against a signature-checking floor.

The release has N artifacts (default 500) with 4 envelopes each (provenance and three lane
results) in a ``dir:`` store. The floor is a bare Python process that imports the signing
library and verifies the same envelopes in a loop (read, decode, PAE, Ed25519 verify): the
least any verifier of these files must do. Both are whole processes, best of a few runs.

    .venv/bin/python bench/gate_bench.py [--artifacts 500] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from digestgate.ci import detect_ci, with_overrides
from digestgate.digest import Digest
from digestgate.evidence.dsse import sign_envelope
from digestgate.evidence.keys import generate_keypair, load_signer
from digestgate.evidence.model import PAYLOAD_TYPE, PROVENANCE, TEST_RESULT, Subject
from digestgate.evidence.statements import (
    provenance_predicate,
    statement_bytes,
    test_result_predicate,
)
from digestgate.reference import parse_location
from digestgate.release import Release, ReleaseArtifact, Source, save_release
from digestgate.timeutil import utcnow

REPO = "https://git.example.org/org/app"
REVISION = "a1" * 20
RUN = "4242"
LANES = ("fast-check", "integration", "e2e")

FLOOR = r"""
import base64, hashlib, json, sys
from pathlib import Path
from cryptography.hazmat.primitives.serialization import (
    Encoding, PublicFormat, load_pem_public_key,
)
hint = sys.argv[1] == "hint"
keys = [load_pem_public_key(Path(p).read_bytes()) for p in sys.argv[3:]]
ids = [
    hashlib.sha256(k.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()
    for k in keys
]
count = 0
for path in sorted(Path(sys.argv[2]).glob("*.json")):
    env = json.loads(path.read_bytes())
    payload = base64.b64decode(env["payload"])
    ptype = env["payloadType"].encode()
    pae = b"DSSEv1 %d %b %d %b" % (len(ptype), ptype, len(payload), payload)
    for sig in env["signatures"]:
        raw = base64.b64decode(sig["sig"])
        order = keys
        if hint and sig.get("keyid") in ids:  # the hinted key first, then the others
            first = ids.index(sig["keyid"])
            order = [keys[first], *keys[:first], *keys[first + 1 :]]
        for key in order:
            try:
                key.verify(raw, pae)
            except Exception:
                continue
            count += 1
            break
    json.loads(payload)
print(count)
"""


def build(root: Path, artifacts: int) -> list[str]:
    """Write keys, policy, release and evidence; return the gate command line."""
    keys = {}
    for name in ("build", "tests"):
        pair = generate_keypair()
        (root / f"{name}.key").write_bytes(pair.private_pem)
        (root / f"{name}.pub").write_bytes(pair.public_pem)
        keys[name] = load_signer(str(root / f"{name}.key"), {})
    names = [f"svc{i:04d}" for i in range(artifacts)]
    digests = {n: Digest.of(n.encode()) for n in names}
    lanes = "".join(f"  {lane}: {{signers: [tests]}}\n" for lane in LANES)
    arts = "".join(f'  {n}: {{repository: "registry.example.org/org/*/{n}"}}\n' for n in names)
    (root / "policy.yaml").write_text(
        "apiVersion: digestgate/v1\nkind: Policy\n"
        "keys: {build: build.pub, tests: tests.pub}\n"
        f"artifacts:\n{arts}"
        f"source:\n  repository: {REPO}\n  refs: [refs/heads/main]\n"
        "provenance: {signers: [build]}\n"
        f"lanes:\n{lanes}"
    )
    source = Source(REPO, REVISION, "refs/heads/main", RUN)
    artifacts_by_name = {
        n: ReleaseArtifact.pinned(
            n, parse_location(f"registry.example.org/org/staging/{n}@{d}"), None, None
        )
        for n, d in digests.items()
    }
    save_release(root / "release.json", Release(source, artifacts_by_name))
    evidence = root / "evidence"
    evidence.mkdir()
    finished = utcnow() - timedelta(hours=1)
    ci = with_overrides(
        detect_ci({}),
        repository_url=REPO,
        revision=REVISION,
        ref="refs/heads/main",
        run_id=RUN,
        event_name="push",
    )
    provenance = provenance_predicate(ci, started_on=None, finished_on=finished)
    for n, d in digests.items():
        subject = [Subject(n, d)]
        docs = [("provenance", statement_bytes(subject, PROVENANCE, provenance), "build")]
        for lane in LANES:
            predicate = test_result_predicate(
                lane=lane,
                result="PASSED",
                revision=REVISION,
                run_id=RUN,
                finished_on=finished,
                url=None,
                counts=None,
                failed_tests=(),
                configuration=(),
            )
            docs.append((lane, statement_bytes(subject, TEST_RESULT, predicate), "tests"))
        for kind, payload, signer in docs:
            envelope = sign_envelope(payload, PAYLOAD_TYPE, [keys[signer]])
            (evidence / f"{n}-{kind}.json").write_bytes(envelope)
    return [
        sys.executable, "-m", "digestgate", "-q", "gate", "--offline",
        "--release", str(root / "release.json"), "--policy", str(root / "policy.yaml"),
        "--evidence", f"dir:{evidence}", "--report", str(root / "report.json"),
    ]  # fmt: skip


def best(commands: list[list[str]], runs: int, expect: int) -> list[float]:
    """The fastest of ``runs`` whole-process timings of each command after a warm-up run.

    The commands take turns (one run of each per round), so a machine whose load changes
    while the benchmark runs slows them alike instead of skewing their ratio.

    Bytecode caching is allowed (an installed tool has its .pyc files), so the warm-up
    writes them when PYTHONDONTWRITEBYTECODE would otherwise recompile every import.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for command in commands:
        subprocess.run(command, capture_output=True, check=False, env=env)
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for command, taken in zip(commands, times, strict=True):
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, check=False, env=env)
            taken.append(time.perf_counter() - start)
            if done.returncode != expect:
                raise SystemExit(
                    f"{command[2:5]} exited {done.returncode}: {done.stderr[-2000:]!r}"
                )
    return [min(taken) for taken in times]


def main() -> None:
    """Build the data set, time both processes and print them side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="Build the data set here and keep it.")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="gate-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        gate = build(root, args.artifacts)
        pubs = [str(root / "build.pub"), str(root / "tests.pub")]
        evidence = str(root / "evidence")
        floor = [sys.executable, "-c", FLOOR, "order", evidence, *pubs]
        hinted = [sys.executable, "-c", FLOOR, "hint", evidence, *pubs]
        floor_time, hinted_time, gate_time = best([floor, hinted, gate], args.runs, 0)
        envelopes = 4 * args.artifacts
        print(f"release: {args.artifacts} artifacts, {envelopes} envelopes (dir: store)")
        print(f"{'floor (verify loop)':<28}{floor_time:8.3f} s   (keys tried in order)")
        print(f"{'floor, key id hint first':<28}{hinted_time:8.3f} s   (one check per signature)")
        print(
            f"{'digestgate gate':<28}{gate_time:8.3f} s   ({gate_time / floor_time:.2f}x floor, "
            f"{gate_time / hinted_time:.2f}x the hinted floor)"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
