"""A docker run of an image built earlier in the same job validates that build."""

from __future__ import annotations

from pathlib import Path

from digestgate.linting.api import lint

FLOW = """\
on: push
env:
  TEST_TAG: acme/app:test
jobs:
  image:
    runs-on: ubuntu-latest
    steps:
      - uses: docker/build-push-action@v6
        with:
          load: true
          tags: ${{ env.TEST_TAG }}
      - run: docker run --rm "$TEST_TAG" selftest
      - id: push
        uses: docker/build-push-action@v6
        with:
          push: true
          tags: ghcr.io/acme/app:${{ github.sha }}
      - run: echo "${{ steps.push.outputs.digest }}" > digest.txt
"""


def _findings(tmp_path: Path, text: str) -> list[tuple[str, int, str]]:
    flow = tmp_path / ".github" / "workflows" / "ci.yml"
    flow.parent.mkdir(parents=True, exist_ok=True)
    flow.write_text(text, encoding="utf-8")
    result = lint(paths=[flow], cwd=tmp_path)
    return [(f.rule, f.line, f.message) for f in result.findings]


def test_running_the_fresh_build_validates_it(tmp_path: Path) -> None:
    assert _findings(tmp_path, FLOW) == [
        (
            "DG101",
            14,
            "image build 'docker/build-push-action' follows validation 'docker run of the "
            "image built at line 8' (line 12) in job 'image'",
        )
    ]


def test_running_another_image_validates_nothing(tmp_path: Path) -> None:
    text = FLOW.replace('docker run --rm "$TEST_TAG" selftest', "docker run --rm redis:7 ping")
    assert _findings(tmp_path, text) == []
