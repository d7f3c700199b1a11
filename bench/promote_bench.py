"""Promotion benchmark: digestgate promote vs skopeo copy, same registry and across registries.

Starts two local registries (``docker-registry``), each behind a byte-counting TCP relay, so
the bytes every client sends are counted the same way. For each size it builds a 3-layer
image, pushes it to ``A/staging/app`` with digestgate's copy engine (so skopeo's blob-info
cache has never seen its blobs: a fresh random seed per run keeps skopeo's first copy cold
without touching the system-wide cache), then times, each to a fresh target repository:

* same registry: the whole ``digestgate promote`` process (gate included: real policy,
  signed provenance and lane result) vs ``skopeo copy`` cold and warm (a second copy, whose
  cache now knows the blobs), with bytes sent for each;
* the copy phase alone (``copy_image`` in-process) vs a bare mount floor (httpx: one
  mount per blob, then the manifest PUT);
* the whole-process promotion minus an import-only floor: a process that imports exactly
  the modules ``promote`` imported (read from ``python -X importtime``), then exits;
* across registries: ``digestgate promote`` vs ``skopeo copy`` throughput, the peak RSS of
  the digestgate process (``wait4`` ru_maxrss) and each client's CPU seconds (user + sys)
  per GiB, once through the byte-counting relays and once straight to the registries (so
  the relays are not mistaken for the limit);

and finally a release of 50 small artifacts promoted across registries with concurrency 8
vs one at a time (API, gate included: promote always runs it). Usage:

    .venv/bin/python -m bench.promote_bench --sizes 256M,1G
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from tests.fixtures import images
from tests.fixtures.registry import RegistryServer
from tests.fixtures.skopeo import run_skopeo
from tests.unit.gatekit import REPO, REVISION, RUN, lane, provenance, release_json

from digestgate.digest import Digest
from digestgate.evidence.dsse import sign_envelope
from digestgate.evidence.keys import generate_keypair, load_signer
from digestgate.evidence.model import PAYLOAD_TYPE
from digestgate.evidence.store.dirstore import DirStore
from digestgate.oci.layout import LayoutStore
from digestgate.oci.manifest import ImageManifest
from digestgate.oci.open import Stores
from digestgate.policy import load_policy
from digestgate.promotion.copy import copy_image
from digestgate.promotion.promote import promote
from digestgate.reference import parse_location
from digestgate.release import Release, ReleaseArtifact, Source
from digestgate.timeutil import utcnow

MiB = 1024 * 1024
POLICY = f"""\
apiVersion: digestgate/v1
kind: Policy
keys: {{build: build.pub, tests: tests.pub, gate: gate.pub}}
artifacts:
  app: {{repository: "127.0.0.1:*/**"}}
source:
  repository: {REPO}
  refs: ["refs/heads/main"]
  events: ["push"]
provenance: {{signers: [build]}}
lanes:
  e2e: {{signers: [tests]}}
maxAge: 7d
gate: {{signers: [gate]}}
promotion: {{immutableTags: ["v*"]}}
"""


class Relay:
    """A TCP relay in front of a registry that counts the bytes clients send through it."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.sent = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        buffer = memoryview(bytearray(1024 * 1024))
        try:
            while n := src.recv_into(buffer):
                dst.sendall(buffer[:n])
                if count:
                    with self._lock:
                        self.sent += n
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            src.close()

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.sent = 0


def child_cpu() -> float:
    """User + system CPU seconds of every child process reaped so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def direct(relay: Relay) -> str:
    """The registry behind a relay, addressed without it."""
    return f"{relay.upstream[0]}:{relay.upstream[1]}"


def parse_size(text: str) -> int:
    """``256M`` / ``1G`` / bytes."""
    units = {"K": 1024, "M": MiB, "G": 1024 * MiB}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def run_process(command: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run a process; return (wall seconds, peak RSS in KiB); fail loudly on a non-zero exit."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or os.environ.copy()
    )
    out, err = b"", b""
    assert process.stdout is not None and process.stderr is not None
    # Drain pipes in threads so a chatty process never blocks; wait4 gives its own rusage.
    chunks: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda: chunks.__setitem__("out", process.stdout.read())),  # type: ignore[union-attr]
        threading.Thread(target=lambda: chunks.__setitem__("err", process.stderr.read())),  # type: ignore[union-attr]
    ]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    for reader in readers:
        reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    out, err = chunks.get("out", b""), chunks.get("err", b"")
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} exited {process.returncode}:\n{err[-3000:]!r}")
    del out
    return elapsed, usage.ru_maxrss


def skopeo_copy(source: str, target: str) -> tuple[float, int]:
    """``skopeo copy`` between plain-HTTP registries, timed with its peak RSS."""
    start = time.perf_counter()
    run_skopeo(
        "copy", "--quiet", "--preserve-digests",
        "--src-no-creds", "--src-tls-verify=false",
        "--dest-no-creds", "--dest-tls-verify=false",
        f"docker://{source}", f"docker://{target}",
    )  # fmt: skip
    return time.perf_counter() - start, 0


class World:
    """Keys, policy and evidence for one artifact ``app`` at one digest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.keys: dict[str, Path] = {}
        for name in ("build", "tests", "gate"):
            pair = generate_keypair()
            (root / f"{name}.key").write_bytes(pair.private_pem)
            (root / f"{name}.pub").write_bytes(pair.public_pem)
            self.keys[name] = root / f"{name}.key"
        (root / "policy.yaml").write_text(POLICY)

    def release(self, image: str, digest: Digest, label: str = "") -> Path:
        """release.json and a dir: store with signed provenance and a lane result."""
        tag = digest.hex[:12] + label
        evidence = self.root / f"evidence-{tag}"
        evidence.mkdir(exist_ok=True)
        finished = utcnow() - timedelta(hours=1)
        for kind, statement, key in (
            ("prov", provenance({"app": digest}, finished=finished), "build"),
            ("e2e", lane("e2e", {"app": digest}, finished=finished), "tests"),
        ):
            signer = load_signer(str(self.keys[key]), {})
            raw = sign_envelope(json.dumps(statement).encode(), PAYLOAD_TYPE, [signer])
            (evidence / f"{kind}.json").write_bytes(raw)
        path = self.root / f"release-{tag}.json"
        path.write_bytes(release_json({"app": image}))
        return path

    def promote_command(self, release: Path, target: str) -> list[str]:
        evidence = self.root / f"evidence-{release.stem.removeprefix('release-')}"
        return [
            sys.executable, "-m", "digestgate", "promote",
            "--release", str(release),
            "--policy", str(self.root / "policy.yaml"),
            "--evidence", f"dir:{evidence}",
            "--to", target,
            "--vsa-key", str(self.keys["gate"]),
            "--tag", "v1",
        ]  # fmt: skip


def mount_floor(host: str, source_repo: str, target_repo: str, manifest: ImageManifest) -> float:
    """The least a same-registry promotion must do: one mount per blob, one manifest PUT."""
    with httpx.Client(base_url=f"http://{host}") as client:
        start = time.perf_counter()
        for blob in manifest.blobs:
            r = client.post(
                f"/v2/{target_repo}/blobs/uploads/",
                params={"mount": str(blob.digest), "from": source_repo},
            )
            assert r.status_code == 201, r.status_code
        r = client.put(
            f"/v2/{target_repo}/manifests/{manifest.digest}",
            content=manifest.raw,
            headers={"Content-Type": manifest.media_type},
        )
        assert r.status_code == 201, r.status_code
        return time.perf_counter() - start


@contextmanager
def registries(root: Path) -> Iterator[tuple[Relay, Relay]]:
    servers = [RegistryServer(root / name, "plain") for name in ("a", "b")]
    try:
        relays = tuple(Relay(server.start()) for server in servers)
        yield relays  # type: ignore[misc]
    finally:
        for server in servers:
            server.stop()


def bench_size(size: int, a: Relay, b: Relay, world: World, root: Path) -> dict[str, Any]:
    """Every measurement for one image size."""
    seed = random.randrange(1 << 30)
    layout = root / f"layout-{seed}"
    info = images.make_large_image(layout, size, 3, seed=seed)
    digest = Digest.parse(info.digest)
    staging = f"{a.host}/staging-{seed}/app"
    with Stores() as stores:
        source = LayoutStore.open(str(layout), create=False)
        copy_image(source, stores.open(parse_location(staging)), source.resolve(digest))
    release = world.release(f"{staging}@{digest}", digest)
    row: dict[str, Any] = {"size": size, "bytes": info.total_size}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    a.reset()
    row["dg_same"], _ = run_process(world.promote_command(release, f"{a.host}/dg-{seed}"), env)
    row["dg_same_sent"] = a.sent
    a.reset()
    row["sk_cold"], _ = skopeo_copy(f"{staging}@{digest}", f"{a.host}/skc-{seed}/app:v1")
    row["sk_cold_sent"] = a.sent
    a.reset()
    row["sk_warm"], _ = skopeo_copy(f"{staging}@{digest}", f"{a.host}/skw-{seed}/app:v1")
    row["sk_warm_sent"] = a.sent

    with Stores() as stores:
        src = stores.open(parse_location(staging))
        descriptor = src.resolve(digest)
        manifest = src.get_manifest(digest)
        assert isinstance(manifest, ImageManifest)
        start = time.perf_counter()
        copy_image(src, stores.open(parse_location(f"{a.host}/api-{seed}/app")), descriptor)
        row["copy_phase"] = time.perf_counter() - start
    row["floor"] = mount_floor(a.host, f"staging-{seed}/app", f"floor-{seed}/app", manifest)

    row["import_floor"] = import_floor(world.promote_command(release, f"{a.host}/if-{seed}"), env)

    b.reset()
    cpu = child_cpu()
    row["dg_cross"], row["dg_cross_rss"] = run_process(
        world.promote_command(release, f"{b.host}/dg-{seed}"), env
    )
    row["dg_cross_cpu"] = child_cpu() - cpu
    row["dg_cross_sent"] = b.sent
    b.reset()
    cpu = child_cpu()
    row["sk_cross"], _ = skopeo_copy(f"{staging}@{digest}", f"{b.host}/sk-{seed}/app:v1")
    row["sk_cross_cpu"] = child_cpu() - cpu
    row["sk_cross_sent"] = b.sent

    # The same copies straight to the registries, without the relays.
    unrelayed = world.release(f"{direct(a)}/staging-{seed}/app@{digest}", digest, "-direct")
    cpu = child_cpu()
    row["dg_direct"], _ = run_process(
        world.promote_command(unrelayed, f"{direct(b)}/dgd-{seed}"), env
    )
    row["dg_direct_cpu"] = child_cpu() - cpu
    cpu = child_cpu()
    row["sk_direct"], _ = skopeo_copy(
        f"{direct(a)}/staging-{seed}/app@{digest}", f"{direct(b)}/skd-{seed}/app:v1"
    )
    row["sk_direct_cpu"] = child_cpu() - cpu
    return row


def import_floor(command: Sequence[str], env: dict[str, str], runs: int = 3) -> float:
    """Best wall time of a process that imports what ``command`` imported, then exits."""
    traced = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], capture_output=True, env=env, check=True
    )
    names = [
        line.rsplit("|", 1)[1].strip()
        for line in traced.stderr.decode("utf-8", "replace").splitlines()
        if line.startswith("import time:") and "|" in line and "cumulative" not in line
    ]
    script = (
        "import importlib\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        pass\n"
    )
    return min(run_process([command[0], "-c", script], env)[0] for _ in range(runs))


def bench_many(a: Relay, b: Relay, world: World, root: Path, count: int) -> dict[str, float]:
    """``count`` small artifacts promoted across registries (gate included: promote always
    runs it), concurrently vs one at a time."""
    seed = random.randrange(1 << 30)
    signer = load_signer(str(world.keys["gate"]), {})
    release = Release(Source(REPO, REVISION, "refs/heads/main", RUN))
    digests: dict[str, Digest] = {}
    with Stores() as stores:
        for n in range(count):
            name = f"svc{n:02d}"
            layout = root / f"small-{seed}-{n}"
            info = images.make_image(layout, seed=seed + n, layers=2, layer_size=64 * 1024)
            digest = Digest.parse(info.digest)
            location = parse_location(f"{a.host}/many-{seed}/{name}@{digest}")
            src = LayoutStore.open(str(layout), create=False)
            copy_image(src, stores.open(location), src.resolve(digest))
            release = release.with_artifact(ReleaseArtifact.pinned(name, location, None, None))
            digests[name] = digest
    many = root / f"many-{seed}"
    many.mkdir()
    for name in ("build", "tests", "gate"):
        (many / f"{name}.pub").write_bytes((world.root / f"{name}.pub").read_bytes())
    artifacts = "".join(f'  {n}: {{repository: "127.0.0.1:*/**"}}\n' for n in digests)
    text = POLICY.replace('  app: {repository: "127.0.0.1:*/**"}\n', artifacts)
    (many / "policy.yaml").write_text(text)
    policy = load_policy(many / "policy.yaml")
    evidence = DirStore(many / "evidence")
    finished = utcnow() - timedelta(hours=1)
    statements = [(provenance({n: d}, finished=finished), "build") for n, d in digests.items()]
    statements.append((lane("e2e", digests, finished=finished), "tests"))
    for statement, key in statements:
        raw = sign_envelope(
            json.dumps(statement).encode(), PAYLOAD_TYPE, [load_signer(str(world.keys[key]), {})]
        )
        evidence.write(raw, predicate="provenance", subjects=[])
    times: dict[str, float] = {}
    for label, concurrency in (("concurrent", 8), ("sequential", 1)):
        with Stores() as stores:
            start = time.perf_counter()
            promote(
                release=release, policy=policy, evidence_stores=[evidence],
                target=f"{b.host}/{label}-{seed}", tags=("v1",), stores=stores, signer=signer,
                now=utcnow(), concurrency=concurrency,
            )  # fmt: skip
            times[label] = time.perf_counter() - start
    return times


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def report(rows: Sequence[dict[str, Any]], many: dict[str, float], count: int) -> None:
    """Print every figure, side by side with the peer."""
    for r in rows:
        print(f"\n== image of {human(r['size'])} (3 layers) ==")
        print("same registry (whole process)     time      bytes sent")
        for label, key in (
            ("digestgate promote (gate incl.)", "dg_same"),
            ("skopeo copy, cold cache", "sk_cold"),
            ("skopeo copy, warm cache", "sk_warm"),
        ):
            ratio = "" if key == "dg_same" else f"   -> digestgate {r[key] / r['dg_same']:.1f}x"
            print(f"  {label:31} {r[key]:7.2f} s  {human(r[key + '_sent']):>10}{ratio}")
        print(
            f"  import-only floor (promote's imports) {r['import_floor']:5.2f} s"
            f"   -> promote {r['dg_same'] - r['import_floor']:.2f} s above it"
        )
        print("copy phase vs mount floor")
        print(f"  digestgate copy_image           {r['copy_phase'] * 1000:7.1f} ms")
        print(
            f"  bare mount floor (httpx)        {r['floor'] * 1000:7.1f} ms"
            f"   -> copy phase {r['copy_phase'] / r['floor']:.2f}x the floor"
        )
        gib = r["bytes"] / (1024 * MiB)
        for title, dg, sk in (
            ("across registries, through the relays (whole process)", "dg_cross", "sk_cross"),
            ("across registries, straight to the registries", "dg_direct", "sk_direct"),
        ):
            print(title)
            print(
                f"  digestgate promote              {r[dg]:7.2f} s  "
                f"{r['bytes'] / r[dg] / MiB:6.0f} MiB/s  CPU {r[dg + '_cpu'] / gib:5.2f} s/GiB"
                + (f"  peak RSS {r['dg_cross_rss'] / 1024:.0f} MiB" if dg == "dg_cross" else "")
            )
            print(
                f"  skopeo copy                     {r[sk]:7.2f} s  "
                f"{r['bytes'] / r[sk] / MiB:6.0f} MiB/s  CPU {r[sk + '_cpu'] / gib:5.2f} s/GiB"
                f"   -> digestgate {r[sk] / r[dg]:.1f}x"
            )
    print(f"\n== {count} small artifacts across registries (API, gate included) ==")
    print(f"  concurrency 8                   {many['concurrent']:7.2f} s")
    print(
        f"  one at a time                   {many['sequential']:7.2f} s"
        f"   -> {many['sequential'] / many['concurrent']:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256M,1G", help="image sizes, e.g. 256M,1G")
    parser.add_argument("--artifacts", type=int, default=50, help="small artifacts (last part)")
    parser.add_argument("--keep", type=Path, help="work directory to keep (default: temp)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="promote-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    world_dir = root / "world"
    world_dir.mkdir(exist_ok=True)
    world = World(world_dir)
    with registries(root) as (a, b):
        # One untimed promotion first, so bytecode caches exist as for an installed tool.
        rows = []
        sizes = [parse_size(s) for s in args.sizes.split(",")]
        bench_size(1 * MiB, a, b, world, root)
        for size in sizes:
            rows.append(bench_size(size, a, b, world, root))
            print(f"done: {human(size)}", file=sys.stderr)
        many = bench_many(a, b, world, root, args.artifacts)
    report(rows, many, args.artifacts)
    if args.keep is None:
        subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    main()
