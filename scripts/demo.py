"""The end-to-end demo: build once, capture, attest (a platform no lane ran is blocked first),
gate, promote, verify; then two more blocks.

Runs the real commands (in-process, through the same error boundary as the console script)
on OCI image layout directories, so it needs no server and no network. Each command is
printed as it would be typed. The demo checks every outcome itself (exit codes, finding ids,
promoted digests) and exits 0 only when every step behaved as expected.

``--registry`` runs the same story against a local ``docker-registry`` it starts on
127.0.0.1 (the Debian ``docker-registry`` package must be installed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from digestgate.cli.main import run
from digestgate.oci.open import Stores
from digestgate.reference import parse_location
from digestgate.samples import sample_image, sample_index

REVISION: Final = "3f2b9c1d4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c"
SOURCE_REPO: Final = "https://git.example.org/org/app"

POLICY: Final = """\
apiVersion: digestgate/v1
kind: Policy
keys:
  build: keys/build.pub
  tests: keys/tests.pub
  gate: keys/gate.pub
artifacts:
  backend:  {{repository: "{prefix}*/backend", evidence: ["{prefix}staging/backend"]}}
  frontend: {{repository: "{prefix}*/frontend", evidence: ["{prefix}staging/frontend"]}}
source:
  repository: {repo}
  refs: ["refs/heads/main", "refs/tags/v*"]
  events: ["push", "workflow_dispatch"]
provenance:
  signers: [build]
lanes:
  fast-check:  {{signers: [tests]}}
  integration: {{signers: [tests], together: true}}
  e2e:         {{signers: [tests], together: true}}
maxAge: 7d
sameRevision: true
sameRun: true
gate:
  signers: [gate]
  maxAge: 30d
promotion:
  immutableTags: ["v*"]
"""

JUNIT: Final = """\
<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="{lane}" tests="3" failures="0" errors="0" skipped="0">
<testcase classname="{lane}" name="test_health"/>
<testcase classname="{lane}" name="test_login"/>
<testcase classname="{lane}" name="test_checkout"/>
</testsuite></testsuites>
"""


class DemoFailure(Exception):
    """A step did not behave as the story expects."""


class Story:
    """Prints the story and runs commands, checking their exit codes."""

    def __init__(self, workdir: Path, color: bool) -> None:
        self.workdir = workdir
        self.color = color
        self.step = 0
        self.checks = 0

    def _c(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def heading(self, text: str) -> None:
        self.step += 1
        print(f"\n{self._c(f'{self.step}. {text}', '1')}", flush=True)

    def say(self, text: str) -> None:
        print(f"   {text}", flush=True)

    def ok(self, text: str) -> None:
        self.checks += 1
        print(f"   {self._c('ok', '32')}  {text}", flush=True)

    def digestgate(self, *args: str, expect: int = 0) -> None:
        print(self._c(f"   $ digestgate {shlex.join(args)}", "36"), flush=True)
        code = run(["--no-color", *args])
        sys.stdout.flush()
        sys.stderr.flush()
        if code != expect:
            raise DemoFailure(f"`digestgate {args[0]}` exited {code}, expected {expect}")
        self.ok(f"exit code {code} as expected")


def _findings(report: Path) -> set[str]:
    data = json.loads(report.read_text())
    ids = {f["id"] for f in data.get("findings", [])}
    for artifact in data.get("artifacts", {}).values():
        ids.update(f["id"] for f in artifact.get("findings", []))
    return ids


def _build(location: str, variant: str, *, index: bool) -> str:
    """Build a small sample image at ``location`` (tag main); return ``location@digest``."""
    ref = parse_location(location)
    files = {"app/VERSION": variant.encode(), "app/main": f"#!{variant}\n".encode()}
    with Stores() as stores:
        store = stores.open(ref, create=True)
        if index:
            descriptor = sample_index(store, files, tag="main")
        else:
            descriptor = sample_image(store, files, tag="main")
    return f"{location}@{descriptor.digest}"


def tell(story: Story, prefix: str) -> None:
    """The whole story; raises DemoFailure when anything behaves unexpectedly."""
    staging, production = f"{prefix}staging", f"{prefix}production"
    Path("policy.yaml").write_text(POLICY.format(prefix=prefix, repo=SOURCE_REPO))
    for name in ("junit-fast-check.xml", "junit-integration.xml", "junit-e2e.xml"):
        Path(name).write_text(JUNIT.format(lane=name[6:-4]))

    story.heading("Build once: the backend (two platforms) and the frontend, pushed to staging")
    backend = _build(f"{staging}/backend", "backend 1.0", index=True)
    frontend = _build(f"{staging}/frontend", "frontend 1.0", index=False)
    story.say(f"backend   {backend}")
    story.say(f"frontend  {frontend}")

    story.heading("One signing key per role: build, tests, gate")
    for role in ("build", "tests", "gate"):
        story.digestgate("keygen", "--out", f"keys/{role}")

    story.heading("Capture both digests into release.json (the promotion input)")
    source = [
        "--source-repo",
        SOURCE_REPO,
        "--revision",
        REVISION,
        "--ref",
        "refs/heads/main",
        "--run-id",
        "4242",
    ]
    story.digestgate("capture", "backend", backend, "--release", "release.json", *source)
    story.digestgate("capture", "frontend", frontend, "--release", "release.json")

    story.heading("Signed provenance, then three validation lanes")
    evidence = ["--evidence", "dir:evidence", "--evidence", "attached"]
    story.digestgate(
        "attest",
        "provenance",
        "--release",
        "release.json",
        "--event",
        "push",
        "--key",
        "keys/build.key",
        *evidence,
    )

    def lane(name: str, *artifacts: str, platforms: tuple[str, ...] = ()) -> None:
        only = [arg for artifact in artifacts for arg in ("--artifact", artifact)]
        ran = [arg for platform in platforms for arg in ("--platform", platform)]
        story.digestgate(
            "attest", "test-result", "--release", "release.json", "--lane", name, *only,
            *ran, "--junit", f"junit-{name}.xml", "--key", "keys/tests.key", *evidence,
        )  # fmt: skip

    lane("fast-check", "backend", platforms=("linux/amd64",))  # the amd64 runner only
    lane("fast-check", "frontend")
    lane("integration", platforms=("all",))  # no --artifact: one statement covering both
    lane("e2e", platforms=("all",))

    story.heading("Blocked: nobody ran the backend's fast-check on linux/arm64")
    story.digestgate(
        "gate", "--release", "release.json", "--policy", "policy.yaml",
        "--evidence", "dir:evidence", "--report", "platform-report.json", expect=1,
    )  # fmt: skip
    found = _findings(Path("platform-report.json"))
    if found != {"lane.platform-missing"}:
        raise DemoFailure(f"the untested arm64 image was blocked with {sorted(found)}")
    story.ok("blocked with lane.platform-missing: a lane counts only for the platforms it ran")
    story.say("the arm64 runner runs fast-check against the arm64 image and signs its result:")
    lane("fast-check", "backend", platforms=("linux/arm64",))

    story.heading("Gate: every requirement, for every artifact and platform")
    story.digestgate(
        "gate",
        "--release",
        "release.json",
        "--policy",
        "policy.yaml",
        "--evidence",
        "dir:evidence",
        "--report",
        "gate-report.json",
    )
    if _findings(Path("gate-report.json")):
        raise DemoFailure(
            f"the passing gate reported {sorted(_findings(Path('gate-report.json')))}"
        )
    story.ok("gate PASSED with no findings")

    story.heading("Promote: the gate runs again, then exactly these bytes are copied")
    story.digestgate(
        "promote",
        "--release",
        "release.json",
        "--policy",
        "policy.yaml",
        "--evidence",
        "dir:evidence",
        "--to",
        production,
        "--tag",
        "v1.0.0",
        "--vsa-key",
        "keys/gate.key",
        "--out",
        "promoted.json",
    )
    promoted = json.loads(Path("promoted.json").read_text())
    for name, original in (("backend", backend), ("frontend", frontend)):
        image = promoted["artifacts"][name]["image"]
        if image.rpartition("@")[2] != original.rpartition("@")[2]:
            raise DemoFailure(f"{name} was promoted as {image}, not {original}")
        story.ok(f"{name} promoted with the captured digest: {image}")

    story.heading("Deploy side: verify each promoted digest against the pinned policy")
    for name in ("backend", "frontend"):
        story.digestgate(
            "verify",
            promoted["artifacts"][name]["image"],
            "--policy",
            "policy.yaml",
            "--evidence",
            "attached",
        )
    story.digestgate(
        "gate",
        "--release",
        "promoted.json",
        "--policy",
        "policy.yaml",
        "--evidence",
        "attached",
        "--report",
        "promoted-report.json",
    )

    story.heading("Blocked: the frontend is rebuilt after validation (a new digest)")
    rebuilt = _build(f"{staging}/frontend", "frontend 1.0 (rebuilt)", index=False)
    shutil.copy("release.json", "release-rebuilt.json")
    story.digestgate(
        "capture", "frontend", rebuilt, "--release", "release-rebuilt.json", "--replace"
    )
    story.digestgate(
        "promote",
        "--release",
        "release-rebuilt.json",
        "--policy",
        "policy.yaml",
        "--evidence",
        "dir:evidence",
        "--to",
        production,
        "--vsa-key",
        "keys/gate.key",
        "--report",
        "rebuilt-report.json",
        expect=1,
    )
    found = _findings(Path("rebuilt-report.json"))
    for expected in ("provenance.missing", "lane.missing"):
        if expected not in found:
            raise DemoFailure(f"the rebuilt frontend was blocked without {expected}: {found}")
    story.ok(f"blocked with {', '.join(sorted(found))}")

    story.heading("Blocked: a promotion input that names a tag instead of a digest")
    data = json.loads(Path("release.json").read_text())
    data["artifacts"]["backend"]["image"] = f"{staging}/backend:main"
    Path("release-tag.json").write_text(json.dumps(data, indent=2))
    story.digestgate(
        "gate",
        "--release",
        "release-tag.json",
        "--policy",
        "policy.yaml",
        "--evidence",
        "dir:evidence",
        "--report",
        "tag-report.json",
        expect=1,
    )
    if "reference.not-digest" not in _findings(Path("tag-report.json")):
        raise DemoFailure("the tag reference was not reported as reference.not-digest")
    story.ok("blocked with reference.not-digest")


@contextlib.contextmanager
def local_registry(workdir: Path) -> Iterator[str]:
    """Start ``docker-registry`` on 127.0.0.1 with its own config; yield ``host:port``."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise DemoFailure(
            "docker-registry is not installed (apt-get install docker-registry), "
            "or run the demo without --registry"
        )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {workdir / 'registry-data'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                    break
            except OSError as exc:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise DemoFailure("the local registry did not start") from exc
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when every step behaved as expected."""
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.splitlines()[0])
    parser.add_argument("--registry", action="store_true", help="use a local docker-registry")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: temp)")
    args = parser.parse_args(argv)
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    started = time.monotonic()
    workdir = Path(args.keep or tempfile.mkdtemp(prefix="digestgate-demo-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    previous = Path.cwd()
    story = Story(workdir, color)
    print(f"digestgate demo in {workdir}")
    try:
        os.chdir(workdir)
        with contextlib.ExitStack() as stack:
            prefix = "oci:"
            if args.registry:
                host = stack.enter_context(local_registry(workdir))
                prefix = f"{host}/"
            tell(story, prefix)
    except DemoFailure as exc:
        print(f"\ndemo FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        os.chdir(previous)
    elapsed = time.monotonic() - started
    print(
        f"\nEvery step behaved as expected ({story.checks} checks, {elapsed:.1f} s). "
        f"The promoted release is {workdir / 'promoted.json'}"
    )
    if not args.keep:
        print(f"(the working directory {workdir} is left for you to inspect)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
