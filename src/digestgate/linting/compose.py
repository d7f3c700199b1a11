"""Compose files a deploy starts: which files a command reads, where they are, their images.

``docker compose up`` and ``docker stack deploy`` deploy the images their compose files
name. The loader reads the files that are in the repository (:func:`candidates` says which
paths a command may read, from ``-f``/``-c`` and the working directory a preceding ``cd``
sets); the rules check every ``image:`` of them. A file outside the repository (an absolute
path, a remote host's directory) is unknown: the deploy pulls whatever tag it names.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from digestgate.linting.match import ComposeUse, Ref
from digestgate.linting.shell import Command
from digestgate.yamlsource import YMap, YNode, YScalar

DEFAULT_FILES: Final = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


@dataclass(frozen=True, slots=True)
class Service:
    """One service of a compose file: its ``image:`` (and where), and whether it builds."""

    name: str
    image: str | None
    line: int
    builds: bool


@dataclass(frozen=True, slots=True)
class ComposeFile:
    """A compose file of the repository; ``error`` when it is not a compose file."""

    path: str
    services: tuple[Service, ...]
    error: str | None = None


def parse_compose(node: YNode | None, path: str) -> ComposeFile:
    """The services of a compose document (already loaded with positions)."""
    services = node.get("services") if isinstance(node, YMap) else None
    if not isinstance(services, YMap):
        return ComposeFile(path, (), "it has no 'services' mapping")
    found: list[Service] = []
    for name, body in services.items():
        if not isinstance(body, YMap):
            continue
        image = body.get("image")
        text = image.text if isinstance(image, YScalar) and image.value is not None else None
        line = image.pos.line if image is not None else body.pos.line
        found.append(Service(name, text, line, body.get("build") is not None))
    return ComposeFile(path, tuple(found))


def working_dirs(cds: list[tuple[str, ...] | None], start: str | None) -> list[str | None]:
    """The working directory (relative to the repository root) before each command.

    ``cds`` has the ``cd`` target words of each command (None for other commands). A
    directory outside the repository (absolute, ``~``, a variable) is None from there on.
    """
    current = start
    out: list[str | None] = []
    for cd in cds:
        out.append(current)
        if cd is None:
            continue
        target = cd[0] if cd else "~"
        if current is None or target.startswith(("/", "~", "$")) or target == "-":
            current = None
        else:
            norm = posixpath.normpath(posixpath.join(current, target))
            current = None if norm.startswith("..") else ("" if norm == "." else norm)
    return out


def candidates(files: tuple[str, ...], cwd: str | None) -> list[str | None]:
    """Repository paths a compose command reads (None: a file outside the repository).

    With no ``-f``, the first of the default names that exists is read, so all are listed.
    """
    if cwd is None:
        return [None]
    names = files or DEFAULT_FILES
    out: list[str | None] = []
    for name in names:
        if name.startswith(("/", "~", "$")) or name == "-":
            out.append(None)
            continue
        norm = posixpath.normpath(posixpath.join(cwd, name))
        out.append(None if norm.startswith("..") else norm)
    return out


def command_dirs(commands: Sequence[Command], working_directory: str | None) -> list[str | None]:
    """The working directory of each command of a run block; remote commands: unknown."""
    start: str | None = working_directory or ""
    if start and ("${{" in start or start.startswith(("/", "~", "$"))):
        start = None
    elif start:
        start = posixpath.normpath(start)
    local = [c for c in commands if not c.remote]
    cds = [tuple(c.argv[1:]) if c.argv[:1] == ("cd",) else None for c in local]
    dirs = iter(working_dirs(cds, start))
    return [None if c.remote else next(dirs) for c in commands]


def compose_refs(
    use: ComposeUse, cwd: str | None, files: Mapping[str, ComposeFile | None]
) -> tuple[Ref, ...]:
    """The images a compose deploy starts, each with the file and line that names it.

    A file that is not in the repository is one ``absent`` ref (unless the command builds
    its services from source): its images cannot be checked.
    """
    paths = candidates(use.files, cwd)
    if not use.files:
        present: list[str | None] = [p for p in paths if p is not None and files.get(p)]
        paths = present[:1] or [None]
    refs: list[Ref] = []
    for path in paths:
        found = files.get(path) if path is not None else None
        if found is None or found.error:
            if not use.builds:
                name = path or (use.files[0] if use.files else "docker-compose.yml")
                error = found.error if found is not None else None
                refs.append(Ref(found.path if found is not None else name, "absent", error))
            continue
        for service in found.services:
            if use.services and service.name not in use.services:
                continue
            if service.image is None or service.builds:
                continue  # built from source by compose
            refs.append(Ref(service.image, origin=f"{found.path}:{service.line}"))
    return tuple(refs)
