"""DG104 judges a build step's outputs by what they hold, not by the fact that one is used."""

from __future__ import annotations

from pathlib import Path

import pytest

from digestgate.linting.api import lint

FLOW = """\
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      out: ${{ steps.build.outputs.NAME }}
    steps:
      - id: build
        run: |
          docker buildx build --push -t r.example.org/a:${GITHUB_SHA} .
          echo "NAME=VALUE" >> "$GITHUB_OUTPUT"
"""


@pytest.mark.parametrize(
    ("output", "value", "dg104"),
    [
        ("image", "r.example.org/a:${GITHUB_SHA}", True),
        ("tag", "${GITHUB_SHA}", True),
        ("digest", "$(cat digest.txt)", False),
        ("ref", "r.example.org/a@$(cat digest.txt)", False),
        ("pinned", "sha256:${HEX}", False),
    ],
)
def test_only_an_output_holding_a_digest_passes_it_on(
    tmp_path: Path, output: str, value: str, dg104: bool
) -> None:
    flow = tmp_path / ".github" / "workflows" / "ci.yml"
    flow.parent.mkdir(parents=True)
    flow.write_text(FLOW.replace("NAME", output).replace("VALUE", value), encoding="utf-8")
    rules = [(f.rule, f.line) for f in lint(paths=[flow], cwd=tmp_path).findings]
    assert rules == ([("DG104", 10)] if dg104 else [])
