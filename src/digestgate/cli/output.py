"""Human output on stderr (respecting -q/-v and colour); machine output on stdout."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

import click


@dataclass
class Console:
    """Where commands write: ``out`` for machine output, ``info``/``warn`` for people."""

    verbose: int = 0
    quiet: bool = False
    color: bool = False

    def out(self, text: str) -> None:
        """Machine output (stdout), never suppressed."""
        click.echo(text)

    def info(self, text: str) -> None:
        """A progress or status line for people (stderr); hidden by -q."""
        if not self.quiet:
            click.echo(text, err=True)

    def detail(self, text: str) -> None:
        """Shown only with -v."""
        if self.verbose and not self.quiet:
            click.echo(text, err=True)

    def warn(self, text: str) -> None:
        """A warning (stderr); shown even with -q."""
        click.echo(self.style(f"warning: {text}", fg="yellow"), err=True)

    def style(self, text: str, **styles: object) -> str:
        """Colour ``text`` when colour is on."""
        return click.style(text, **styles) if self.color else text  # type: ignore[arg-type]

    @property
    def stderr(self) -> TextIO:
        """The stream human output goes to."""
        return sys.stderr


def console(ctx: click.Context) -> Console:
    """The Console of the running command (a default one outside the group)."""
    obj = ctx.find_object(Console)
    return obj if obj is not None else Console()
