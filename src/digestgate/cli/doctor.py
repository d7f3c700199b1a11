"""``digestgate doctor REGISTRY/REPOSITORY``: what the registry supports, and what digestgate
does about each answer."""

from __future__ import annotations

import json
from typing import Any

import click

from digestgate.cli.options import registry_options
from digestgate.cli.output import console


@click.command("doctor")
@click.argument("repository", metavar="REGISTRY/REPOSITORY")
@click.option(
    "--write",
    is_flag=True,
    help="Also probe chunked uploads, mounts and tag immutability by writing probe data "
    "(a blob and two small manifests tagged digestgate-doctor-probe stay in the repository).",
)
@click.option(
    "--mount-from",
    metavar="REPOSITORY",
    help="With --write: probe a cross-repository mount from this repository (same registry).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON on stdout.")
@registry_options
@click.pass_context
def command(
    ctx: click.Context,
    repository: str,
    write: bool,
    mount_from: str | None,
    as_json: bool,
    store_options: Any,
) -> None:
    """Report what REGISTRY/REPOSITORY supports: the Referrers API, chunked uploads,
    cross-repository mounts and tag immutability, and what digestgate does about each.

    Without --write nothing is written. Exit 0 when the checks ran (whatever they found),
    2 for a bad reference, 3 when the registry cannot be reached.
    """
    from digestgate.errors import UsageError
    from digestgate.oci.registry.doctor import diagnose
    from digestgate.reference import parse_registry_reference

    out = console(ctx)
    where = parse_registry_reference(repository)
    if where.tag is not None or where.digest is not None:
        raise UsageError(
            f"{repository[:200]} names a tag or digest", hint="give REGISTRY/REPOSITORY only"
        )
    if mount_from is not None and not write:
        raise UsageError("--mount-from needs --write", hint="add --write, or drop --mount-from")
    if mount_from is not None:
        source = parse_registry_reference(f"{where.registry}/{mount_from}")
        if source.repository != mount_from or source.tag or source.digest:
            raise UsageError(
                f"--mount-from {mount_from[:200]!r} is not a repository name",
                hint="give a repository on the same registry, e.g. org/app/staging-backend",
            )
    checks = diagnose(
        where.registry,
        where.repository,
        options=store_options,
        write=write,
        mount_from=mount_from,
    )
    if as_json:
        out.out(json.dumps([c.to_json() for c in checks], indent=2))
        return
    width = max(len(c.name) for c in checks)
    for check in checks:
        out.out(f"{check.name:<{width}}  {check.outcome:<7}  {check.seen}")
        if check.consequence:
            out.out(f"{'':<{width}}  {'':<7}  -> {check.consequence}")
