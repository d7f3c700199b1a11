"""Time ``digestgate lint`` on one ~30 kB workflow, in process.

The workflow is generated from job shapes found in real release pipelines (tests behind
wrappers, matrix builds by digest, smoke tests, ssh and heredoc compose deploys, sourced
shell functions, deploy actions, GitOps edits), repeated until the file reaches the size
asked for. One warm-up run imports the YAML parser and fills caches an installed tool would
have; then the best and the median of ``--runs`` runs of ``lint`` are printed, with
the share spent loading (YAML and the workflow model) apart from classification and rules.

    .venv/bin/python bench/lint_bench.py [--size 30000] [--runs 20] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from digestgate.linting import shell
from digestgate.linting.api import lint
from digestgate.linting.loader import Loader

HEADER = """\
name: release
on:
  push:
    branches: [main]
    tags: ["v*"]
env:
  REGISTRY: registry.example.org/acme
jobs:
"""

JOB = """\
  test-{n}:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: pipenv --python 3.12 run pytest -q tests/unit
      - run: |
          docker compose -f compose.test.yml up -d db
          poetry -C backend run pytest -m integration 2>&1 | tee report.txt
          docker compose -f compose.test.yml down -v
  build-{n}:
    needs: test-{n}
    runs-on: ubuntu-latest
    strategy:
      matrix:
        platform: [linux/amd64, linux/arm64]
    steps:
      - uses: docker/setup-buildx-action@v3
      - uses: docker/build-push-action@v6
        with:
          load: true
          tags: acme/app-{n}:test
      - run: docker run --rm acme/app-{n}:test selftest
      - id: build
        uses: docker/build-push-action@v6
        with:
          platforms: ${{{{ matrix.platform }}}}
          outputs: type=image,name=${{{{ env.REGISTRY }}}}/app-{n},push-by-digest=true,push=true
      - run: |
          mkdir -p digests
          digest="${{{{ steps.build.outputs.digest }}}}"
          touch "digests/${{digest#sha256:}}"
      - uses: actions/upload-artifact@v4
        with:
          name: digests-{n}-${{{{ strategy.job-index }}}}
          path: digests/*
  deploy-{n}:
    needs: [test-{n}, build-{n}]
    runs-on: ubuntu-latest
    steps:
      - run: |
          source ./ci/lib.sh
          promote_tag "$REGISTRY/app-{n}:main" "$REGISTRY/app-{n}:stable"
          ssh -i key deploy@host-{n} << 'EOF'
            cd /srv/app-{n}
            export TAG="${{{{ github.sha }}}}"
            docker compose pull web
            docker compose up -d --no-deps web
          EOF
      - uses: appleboy/ssh-action@v1.2.0
        with:
          host: host-{n}
          script: |
            docker pull acme/app-{n}:latest
            docker run -d --name app-{n} --restart unless-stopped acme/app-{n}:latest
      - uses: aws-actions/amazon-ecs-render-task-definition@v1
        with:
          task-definition: task.json
          container-name: app
          image: ${{{{ env.REGISTRY }}}}/app-{n}:${{{{ github.sha }}}}
      - run: |
          yq -i '.image.tag = strenv(TAG)' charts/app-{n}/values.yaml
          curl -fsS -X POST https://deploy.example.org/api -d '{{"image": "acme/app-{n}:1.2"}}'
          kubectl -n prod set image deployment/app-{n} app=acme/app-{n}:${{GITHUB_SHA::7}}
"""

LIB = """\
promote_tag() {
  crane --verbose copy "$1" "$2"
}
unused_build() {
  docker build -t never:used .
}
"""


def make_repo(root: Path, size: int) -> Path:
    """A repository with one workflow of at least ``size`` bytes (and the library it sources)."""
    (root / "ci").mkdir(parents=True)
    (root / "ci" / "lib.sh").write_text(LIB, encoding="utf-8")
    flows = root / ".github" / "workflows"
    flows.mkdir(parents=True)
    text, n = HEADER, 0
    while len(text.encode()) < size:
        text += JOB.format(n=n)
        n += 1
    path = flows / "release.yml"
    path.write_text(text, encoding="utf-8")
    return path


def _time(call: object, runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of each run (CPU time is what a busy machine cannot inflate)."""
    assert callable(call)
    call()  # warm-up: imports and bytecode, as an installed tool has them
    wall, cpu = [], []
    for _ in range(runs):
        shell.parse.cache_clear()  # each run parses the workflow's shell text afresh
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def _line(label: str, times: list[float]) -> str:
    best, median = min(times) * 1000, statistics.median(times) * 1000
    return f"{label:<28} best {best:6.1f} ms   median {median:6.1f} ms"


def main() -> int:
    """Print the in-process lint time of one generated workflow."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=30_000, help="workflow size in bytes")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="keep the generated repository here")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lint-bench-"))
    try:
        path = make_repo(root, args.size)
        result = lint(paths=[path], cwd=root)
        whole, whole_cpu = _time(lambda: lint(paths=[path], cwd=root), args.runs)
        _, load_cpu = _time(lambda: Loader(root, root).load(path), args.runs)
        kb = path.stat().st_size / 1000
        print(f"workflow: {kb:.1f} kB, {len(result.findings)} findings, {args.runs} runs")
        print(_line("lint, wall clock", whole))
        print(_line("lint, CPU", whole_cpu))
        print(_line("  of which loading, CPU", load_cpu))
        print("target: under 150 ms")
        if args.keep:
            shutil.copytree(root, args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
