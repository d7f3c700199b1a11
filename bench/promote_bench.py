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

and finally a release of 50 small artifacts promoted straight from registry A to B (no relays:
their Python threads would compete with the in-process promotion for the GIL) with
concurrency 8 vs one at a time (API, gate included: promote always runs it), beside a bare
httpx floor sending only the requests this evidence needs and ``skopeo copy`` of the same
images 8 at a time; each with its request count (every request an httpcore connection pool
handles), the client's
CPU seconds and the registries' (``/proc/<pid>/stat``). Usage:

    .venv/bin/python -m bench.promote_bench --sizes 256M,1G
    .venv/bin/python -m bench.promote_bench --only-many
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpcore
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
from digestgate.oci import media
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

    def __init__(self, server: RegistryServer) -> None:
        self.server = server
        host, port = server.start().rsplit(":", 1)
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


def registry_cpu(relays: Sequence[Relay]) -> float:
    """User + system CPU seconds the registry processes behind ``relays`` have used so far."""
    ticks = 0
    for relay in relays:
        assert relay.server.process is not None
        stat = Path(f"/proc/{relay.server.process.pid}/stat").read_text()
        # Fields 14 and 15 (utime, stime); the command name in parentheses may hold spaces.
        fields = stat.rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> float:
    """CPU seconds every process on the machine has used so far (``/proc/stat``: all but
    idle and iowait), to tell a busy machine from a slow client."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


@contextmanager
def counting_requests() -> Iterator[Callable[[], int]]:
    """Count the HTTP requests this process sends meanwhile, whatever the client.

    Wraps ``httpcore.ConnectionPool.handle_request``: a bare ``httpx.Client`` and
    digestgate's registry transport (which hands requests to its pool directly; retries and
    auth challenges included) both send every request through it. Yields a reader.
    """
    original = httpcore.ConnectionPool.handle_request
    sent = 0
    lock = threading.Lock()

    def handle(self: httpcore.ConnectionPool, request: httpcore.Request) -> httpcore.Response:
        nonlocal sent
        with lock:
            sent += 1
        return original(self, request)

    httpcore.ConnectionPool.handle_request = handle  # type: ignore[method-assign]
    try:
        yield lambda: sent
    finally:
        httpcore.ConnectionPool.handle_request = original  # type: ignore[method-assign]


@dataclass
class Run:
    """One timed run: wall and CPU seconds, and the requests sent (None: not counted)."""

    wall: float = 0.0
    client_cpu: float = 0.0
    registry_cpu: float = 0.0
    machine_cpu: float = 0.0
    requests: int | None = None


@contextmanager
def measured(relays: Sequence[Relay], in_process: bool = True) -> Iterator[Run]:
    """Time the block: wall seconds, the registries' CPU, and the client's CPU (this
    process's own, or with ``in_process=False`` its reaped children's) and requests."""
    run = Run()
    client = time.process_time if in_process else child_cpu
    with counting_requests() as requests:
        machine, registry, cpu = machine_cpu(), registry_cpu(relays), client()
        start = time.perf_counter()
        yield run
        run.wall = time.perf_counter() - start
        run.client_cpu = client() - cpu
        run.registry_cpu = registry_cpu(relays) - registry
        run.machine_cpu = machine_cpu() - machine
        run.requests = requests() if in_process else None


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
        relays = tuple(Relay(server) for server in servers)
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


#: The evidence a promotion attaches to each image, as referrer artifact types.
EVIDENCE_KINDS = ("provenance", "test-result", "vsa", "promotion")


def descriptor(media_type: str, data: bytes, **extra: str) -> dict[str, Any]:
    """An OCI descriptor of ``data``."""
    return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data), **extra}


def upload(client: httpx.Client, repo: str, data: bytes) -> None:
    """A monolithic blob upload: POST, then PUT the body to ``<location>&digest=``."""
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.status_code
    r = client.put(f"{r.headers['Location']}&digest={Digest.of(data)}", content=data)
    assert r.status_code == 201, r.status_code


def put_manifest(client: httpx.Client, repo: str, reference: str, data: bytes, kind: str) -> None:
    """PUT a manifest of media type ``kind`` under a digest or tag."""
    r = client.put(
        f"/v2/{repo}/manifests/{reference}", content=data, headers={"Content-Type": kind}
    )
    assert r.status_code == 201, r.status_code


def get_manifest(client: httpx.Client, repo: str, reference: str, status: int = 200) -> bytes:
    """GET a manifest by digest or tag, expecting ``status``; its bytes."""
    r = client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": media.MANIFEST_ACCEPT})
    assert r.status_code == status, r.status_code
    return r.content


def floor_artifact(
    source: httpx.Client, target: httpx.Client, from_repo: str, digest: Digest, to_repo: str,
    joint: bytes,
) -> None:  # fmt: skip
    """The requests any promoter attaching this evidence must send for one artifact, in turn."""
    raw = get_manifest(source, from_repo, str(digest))
    manifest = json.loads(raw)
    for blob in [manifest["config"], *manifest["layers"]]:
        r = target.head(f"/v2/{to_repo}/blobs/{blob['digest']}")
        assert r.status_code == 404, r.status_code
        r = source.get(f"/v2/{from_repo}/blobs/{blob['digest']}")
        assert r.status_code == 200, r.status_code
        upload(target, to_repo, r.content)
    put_manifest(target, to_repo, str(digest), raw, manifest["mediaType"])
    get_manifest(target, to_repo, str(digest))
    subject = descriptor(manifest["mediaType"], raw)
    empty = {"mediaType": media.OCI_EMPTY, "digest": media.EMPTY_DIGEST, "size": 2}
    upload(target, to_repo, media.EMPTY_JSON)
    referrers = []
    for kind in EVIDENCE_KINDS:
        envelope = joint if kind == "test-result" else random.randbytes(2048)
        upload(target, to_repo, envelope)
        artifact_type = media.evidence_artifact_type(kind)
        referrer = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": media.OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": empty,
                "layers": [descriptor(media.DSSE_ENVELOPE, envelope)],
                "subject": subject,
            }
        ).encode()
        put_manifest(target, to_repo, str(Digest.of(referrer)), referrer, media.OCI_MANIFEST)
        referrers.append(descriptor(media.OCI_MANIFEST, referrer, artifactType=artifact_type))
    fallback = f"sha256-{digest.hex}"
    get_manifest(target, to_repo, fallback, status=404)
    index = {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": referrers}
    put_manifest(target, to_repo, fallback, json.dumps(index).encode(), media.OCI_INDEX)
    get_manifest(target, to_repo, fallback)
    get_manifest(target, to_repo, "v1", status=404)
    put_manifest(target, to_repo, "v1", raw, manifest["mediaType"])
    get_manifest(target, to_repo, "v1")


def bare_floor(a: str, b: str, sources: dict[str, Digest], to_prefix: str) -> None:
    """``floor_artifact`` for every ``repo: digest`` of ``sources``, 8 at a time."""
    joint = random.randbytes(2048)
    with (
        httpx.Client(base_url=f"http://{a}") as source,
        httpx.Client(base_url=f"http://{b}") as target,
        ThreadPoolExecutor(8) as pool,
    ):
        tasks = [
            pool.submit(floor_artifact, source, target, repo, digest, f"{to_prefix}/{repo}", joint)
            for repo, digest in sources.items()
        ]
        for task in tasks:
            task.result()


def skopeo_many(a: str, b: str, sources: dict[str, Digest], to_prefix: str) -> None:
    """``skopeo copy`` of every ``repo: digest`` of ``sources`` to ``b``, 8 processes at a time."""
    with ThreadPoolExecutor(8) as pool:
        tasks = [
            pool.submit(skopeo_copy, f"{a}/{repo}@{digest}", f"{b}/{to_prefix}/{repo}:v1")
            for repo, digest in sources.items()
        ]
        for task in tasks:
            task.result()


def bench_many(a: Relay, b: Relay, world: World, root: Path, count: int) -> dict[str, Run]:
    """``count`` small artifacts promoted straight from A to B (gate included: promote always
    runs it), concurrently and one at a time, beside a bare floor and skopeo."""
    seed = random.randrange(1 << 30)
    source, target = direct(a), direct(b)
    signer = load_signer(str(world.keys["gate"]), {})
    release = Release(Source(REPO, REVISION, "refs/heads/main", RUN))
    digests: dict[str, Digest] = {}
    sources: dict[str, Digest] = {}
    with Stores() as stores:
        for n in range(count):
            name = f"svc{n:02d}"
            layout = root / f"small-{seed}-{n}"
            info = images.make_image(layout, seed=seed + n, layers=2, layer_size=64 * 1024)
            digest = Digest.parse(info.digest)
            location = parse_location(f"{source}/many-{seed}/{name}@{digest}")
            src = LayoutStore.open(str(layout), create=False)
            copy_image(src, stores.open(location), src.resolve(digest))
            release = release.with_artifact(ReleaseArtifact.pinned(name, location, None, None))
            digests[name] = digest
            sources[f"many-{seed}/{name}"] = digest
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

    def run_promote(label: str, concurrency: int) -> None:
        # Each run reads its own copy of the evidence: promote adds its VSAs to the store.
        store = many / f"evidence-{label}"
        shutil.copytree(many / "evidence", store)
        with Stores() as stores:
            promote(
                release=release, policy=policy, evidence_stores=[DirStore(store)],
                target=f"{target}/{label}-{seed}", tags=("v1",), stores=stores, signer=signer,
                now=utcnow(), concurrency=concurrency,
            )  # fmt: skip

    # Untimed: whatever the first promotion and skopeo process load or cache on first use.
    run_promote("warmup", 8)
    run_skopeo("--version")
    runs: dict[str, Run] = {}
    for label, concurrency in (("concurrent", 8), ("sequential", 1)):
        with measured((a, b)) as runs[label]:
            run_promote(label, concurrency)
    with measured((a, b)) as runs["floor"]:
        bare_floor(source, target, sources, f"floor-{seed}")
    with measured((a, b), in_process=False) as runs["skopeo"]:
        skopeo_many(source, target, sources, f"skopeo-{seed}")
    return runs


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def report(rows: Sequence[dict[str, Any]], many: dict[str, Run], count: int) -> None:
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
    print(f"\n== {count} small artifacts across registries (straight to the registries) ==")
    print(f"{'':41}time  requests  client CPU  registry CPU  cores busy (machine)")
    best, one, floor, skopeo = (
        many[k].wall for k in ("concurrent", "sequential", "floor", "skopeo")
    )
    for label, key, note in (
        ("digestgate promote, concurrency 8", "concurrent", ""),
        ("digestgate promote, one at a time", "sequential", f"-> {one / best:.1f}x concurrency 8"),
        ("bare floor (httpx, concurrency 8)", "floor", f"-> digestgate {best / floor:.2f}x floor"),
        ("skopeo copy, 8 at a time (no evidence)", "skopeo", f"-> digestgate {skopeo / best:.2f}x"),
    ):  # fmt: skip
        run = many[key]
        requests = "-" if run.requests is None else str(run.requests)
        ours = (run.client_cpu + run.registry_cpu) / run.wall
        busy = f"{ours:.2f} ({run.machine_cpu / run.wall:.2f})"
        print(
            f"  {label:38} {run.wall:5.2f} s  {requests:>8}  {run.client_cpu:8.2f} s  "
            f"{run.registry_cpu:10.2f} s  {busy:>19}   {note}".rstrip()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256M,1G", help="image sizes, e.g. 256M,1G")
    parser.add_argument("--artifacts", type=int, default=50, help="small artifacts (last part)")
    parser.add_argument("--keep", type=Path, help="work directory to keep (default: temp)")
    parser.add_argument("--only-many", action="store_true", help="only the small artifacts")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="promote-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    world_dir = root / "world"
    world_dir.mkdir(exist_ok=True)
    world = World(world_dir)
    with registries(root) as (a, b):
        # One untimed promotion first, so bytecode caches exist as for an installed tool.
        rows = []
        sizes = [] if args.only_many else [parse_size(s) for s in args.sizes.split(",")]
        if sizes:
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
