"""Compose deploys: which files they read, from which directory, and the images in them."""

from __future__ import annotations

from pathlib import Path

from digestgate.linting.api import lint
from digestgate.linting.compose import (
    ComposeFile,
    Service,
    candidates,
    command_dirs,
    compose_refs,
    parse_compose,
)
from digestgate.linting.match import ComposeUse
from digestgate.linting.shell import commands
from digestgate.yamlsource import load_yaml

TEXT = """\
services:
  web:
    image: r/web:${TAG:-latest}
  api:
    build: ./api
    image: r/api:dev
  cache:
    image: redis@sha256:1a5444087d4513e783dd19e68b8f393fb605bfe211196a7be6c9531334161609
"""


def test_parse_keeps_each_image_and_its_line() -> None:
    parsed = parse_compose(load_yaml(TEXT, source="c.yml"), "c.yml")
    assert parsed.services == (
        Service("web", "r/web:${TAG:-latest}", 3, builds=False),
        Service("api", "r/api:dev", 6, builds=True),
        Service("cache", parsed.services[2].image, 8, builds=False),
    )
    assert parse_compose(load_yaml("x: 1", source="c.yml"), "c.yml").error


def test_working_directory_follows_cd_and_stops_outside_the_repository() -> None:
    cmds = commands("cd deploy\ndocker compose up\ncd ../prod\nx\ncd /srv\nx\nssh h 'docker ps'")
    assert command_dirs(cmds, None) == ["", "deploy", "deploy", "prod", "prod", None, None, None]
    assert command_dirs(commands("x"), "${{ matrix.dir }}") == [None]


def test_candidates_default_names_and_outside_paths() -> None:
    assert candidates(("a.yml", "/etc/b.yml"), "deploy") == ["deploy/a.yml", None]
    assert candidates((), "") == [
        "compose.yaml",
        "compose.yml",
        "docker-compose.yaml",
        "docker-compose.yml",
    ]
    assert candidates(("a.yml",), None) == [None]


def test_refs_name_the_file_and_line_and_skip_what_compose_builds() -> None:
    files = {"c.yml": parse_compose(load_yaml(TEXT, source="c.yml"), "c.yml")}
    refs = compose_refs(ComposeUse(("c.yml",), (), builds=False), "", files)
    assert [(r.text, r.origin) for r in refs] == [
        ("r/web:${TAG:-latest}", "c.yml:3"),
        (files["c.yml"].services[2].image, "c.yml:8"),
    ]
    only_web = compose_refs(ComposeUse(("c.yml",), ("web",), builds=False), "", files)
    assert [r.text for r in only_web] == ["r/web:${TAG:-latest}"]


def test_a_file_that_is_not_in_the_repository_is_one_absent_ref() -> None:
    files: dict[str, ComposeFile | None] = {"docker-compose.yml": None}
    (ref,) = compose_refs(ComposeUse((), (), builds=False), None, files)
    assert (ref.text, ref.role) == ("docker-compose.yml", "absent")
    assert compose_refs(ComposeUse((), (), builds=True), None, files) == ()


def test_a_compose_file_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services: [web\n", encoding="utf-8")
    flow = tmp_path / ".github" / "workflows" / "deploy.yml"
    flow.parent.mkdir(parents=True)
    flow.write_text(
        "on: push\njobs:\n  d:\n    runs-on: [self-hosted]\n    steps:\n"
        "      - run: docker compose up -d\n",
        encoding="utf-8",
    )
    (finding,) = lint(paths=[flow], cwd=tmp_path).findings
    assert (finding.rule, finding.line) == ("DG102", 6)
    assert finding.message.startswith(
        "docker compose up: the compose file 'compose.yaml' cannot be read "
        "(compose.yaml:2:1: invalid YAML"
    )
