"""The loader and rules never crash on arbitrary YAML text: they only report findings."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digestgate.linting.config import LintConfig
from digestgate.linting.findings import RULES
from digestgate.linting.loader import Loader
from digestgate.linting.rules import check_workflow

WORDS = [
    "on",
    "jobs",
    "steps",
    "run",
    "uses",
    "needs",
    "if",
    "with",
    "env",
    "outputs",
    "strategy",
    "matrix",
    "push",
    "tags",
    "release",
    "workflow_call",
    "build",
    "test",
    "id",
    "name",
    "./x",
    "./.github/workflows/a.yml",
    "docker build .",
    "pytest",
    "crane copy a:1 b",
    "always()",
    "${{ needs.build.outputs.digest }}",
    "a@sha256:0",
]
FIXTURE_OK = [HealthCheck.function_scoped_fixture]
scalars = st.one_of(
    st.sampled_from(WORDS), st.text(max_size=20), st.integers(), st.booleans(), st.none()
)
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(WORDS), inner, max_size=5),
    ),
    max_leaves=30,
)


def _lint(text: str, root: Path) -> None:
    loader = Loader(root, root)
    workflow, findings = loader.parse(text, "wf.yml")
    if workflow is not None:
        findings = findings + check_workflow(workflow, LintConfig())
    assert all(f.rule in RULES and f.line >= 1 for f in findings)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(tree=trees)
def test_workflow_shaped_yaml_never_crashes(tree: object, tmp_path: Path) -> None:
    _lint(yaml.safe_dump(tree), tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str, tmp_path: Path) -> None:
    _lint(text, tmp_path)


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE_OK)
@given(
    script=st.text(
        alphabet=st.sampled_from(list("docker build $(){}`'\"\\|&;<>#\n=@:")), max_size=80
    )
)
def test_arbitrary_run_bodies_never_crash(script: str, tmp_path: Path) -> None:
    tree = {"on": "push", "jobs": {"t": {"steps": [{"run": "pytest"}, {"run": script}]}}}
    _lint(yaml.safe_dump(tree), tmp_path)


FRAGMENTS = [
    "ssh -i k u@h",
    "<< 'EOF'",
    "<<-X",
    "EOF",
    "X",
    "bash -s",
    "f() {",
    "function g {",
    "}",
    "{",
    "f a:1",
    "g",
    "source ./ci/lib.sh",
    "docker compose -f c.yml up -d",
    "docker compose down",
    "docker run -d --name x --restart always a:1",
    "docker build -t a:1 .",
    "yq -i '.image.tag = strenv(T)' v.yaml",
    "sed -i 's|image: .*|image: a:$T|' d.yaml",
    'curl -d \'{"image": "${{ x }}${{ y }}"}\' u',
    "cd /srv",
    "cd app",
    '"$@"',
    "${a[@]}",
    "2>&1",
    "echo x=1 >> $GITHUB_OUTPUT",
    "echo ::set-output name=a::b:1",
]


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(
    parts=st.lists(st.sampled_from(FRAGMENTS), max_size=14),
    seps=st.lists(st.sampled_from([" ", "\n", "; ", " && ", " | ", "\n  "]), max_size=14),
    where=st.sampled_from(["run", "script"]),
)
def test_remote_scripts_functions_and_heredocs_never_crash(
    parts: list[str], seps: list[str], where: str, tmp_path: Path
) -> None:
    text = "".join(p + (seps[i] if i < len(seps) else "\n") for i, p in enumerate(parts))
    step = (
        {"run": text}
        if where == "run"
        else {"uses": "appleboy/ssh-action@v1", "with": {"script": text}}
    )
    tree = {"on": {"push": {"tags": ["v*"]}}, "jobs": {"t": {"steps": [{"run": "pytest"}, step]}}}
    _lint(yaml.safe_dump(tree), tmp_path)
