"""``digestgate lint``: check workflows for builds after validation and tag promotions."""

from __future__ import annotations

from pathlib import Path

import click

from digestgate.cli.output import console
from digestgate.errors import ExitCode


@click.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif", "github"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("--strict", is_flag=True, help="Treat warnings (e.g. DG106 opaque steps) as errors.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Lint configuration (default: .digestgate/lint.yaml of the repository).",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    help="Repository root for local workflows, actions and scripts; reported paths are "
    "relative to it.",
)
@click.pass_context
def command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    fmt: str,
    strict: bool,
    config_path: Path | None,
    root: Path | None,
) -> int:
    """Check workflows: no image build after validation, promotion by digest.

    PATH may be workflow files or directories (default: .github/workflows,
    .gitea/workflows and .forgejo/workflows under the current directory).
    Exit 1 when an error is found, 0 otherwise.
    """
    from digestgate.errors import UsageError
    from digestgate.linting.api import default_paths, lint, load_config
    from digestgate.linting.output import render

    out = console(ctx)
    cwd = Path.cwd()
    if root is not None and not root.is_dir():
        raise UsageError(f"{root}: not a directory", hint="--root names the repository root")
    targets = list(paths) or default_paths(root or cwd)
    if not targets:
        raise UsageError(
            "no workflow directory found (.github/workflows, .gitea/workflows, .forgejo/workflows)",
            hint="run in the repository root or give workflow files as arguments",
        )
    config = load_config(config_path) if config_path is not None else None
    result = lint(paths=targets, cwd=cwd, root=root, config=config, strict=strict)
    if not result.files and not result.findings:
        # Checking nothing is not a pass: a typo in the path must not turn CI green.
        shown = ", ".join(str(t)[:120] for t in targets[:3])
        raise UsageError(
            f"no workflow file (*.yml, *.yaml) found in {shown}",
            hint="give the workflow files or the directory that holds them",
        )
    report = render(result, fmt)
    if report:
        out.out(report)
    errors = sum(1 for f in result.findings if f.severity.value == "error")
    out.info(
        f"digestgate lint: {len(result.files)} file(s), {errors} error(s), "
        f"{len(result.findings) - errors} warning(s)"
    )
    return int(ExitCode.BLOCKED if result.failed else ExitCode.OK)
