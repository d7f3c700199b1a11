"""Entry point: global options, lazy subcommand loading and the single error boundary.

Subcommand modules are imported only when their command runs, so ``--version`` and
``--help`` never import the HTTP client, the YAML parser or the signing library.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback
from typing import Final

import click

from digestgate._version import __version__
from digestgate.cli.output import Console
from digestgate.errors import DigestgateError, ExitCode

#: name -> (module, one-line help). Order is the order ``--help`` lists them in.
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "resolve": ("digestgate.cli.resolve", "Print REPO@sha256:... for a reference."),
    "keygen": ("digestgate.cli.keygen", "Generate a signing key pair (PKCS#8 PEM)."),
    "capture": ("digestgate.cli.capture", "Record an artifact's digest in release.json."),
    "attest": ("digestgate.cli.attest", "Sign provenance or a lane result for a release."),
    "gate": ("digestgate.cli.gate", "Decide whether a release may be promoted."),
    "promote": ("digestgate.cli.promote", "Gate, then copy a release by digest to a target."),
    "verify": ("digestgate.cli.verify", "Deploy-side check: a PASSED gate VSA for a digest."),
    "policy": ("digestgate.cli.policy", "Print a policy's digest (what deployments pin)."),
    "drift": ("digestgate.cli.drift", "Check that promoted tags still point to their digests."),
    "lint": ("digestgate.cli.lint", "Check workflows: no image build after validation."),
    "doctor": ("digestgate.cli.doctor", "Report what a registry supports, and what it means."),
}


def name_envvars(command: click.Command, prefix: str) -> None:
    """Let every option also come from ``PREFIX_<FLAG>`` (``DIGESTGATE_GATE_POLICY``).

    Named after the long flag, not the Python parameter, so the variable matches what users
    type. Options that name their own variable (registry options) keep it.
    """
    for param in command.params:
        if isinstance(param, click.Option) and param.envvar is None:
            flags = [opt for opt in param.opts if opt.startswith("--")]
            if flags:
                flag = max(flags, key=len)[2:]
                param.envvar = f"{prefix}_{flag.upper().replace('-', '_')}"
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            name_envvars(sub, f"{prefix}_{name.upper().replace('-', '_')}")


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command = getattr(module, "command", None)
        if not isinstance(command, click.Command):
            raise click.ClickException(f"command {cmd_name!r} is not available in this build")
        name_envvars(command, f"DIGESTGATE_{cmd_name.upper()}")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 passed, 1 blocked, 2 usage/config error, 3 operational failure, "
    "4 internal error. Options may also be set as DIGESTGATE_<COMMAND>_<OPTION>.",
)
@click.version_option(__version__, "--version", prog_name="digestgate")
@click.option("-v", "--verbose", count=True, help="More detail; -vv shows tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and machine output.")
@click.option("--no-color", is_flag=True, help="No colour (also NO_COLOR).")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, no_color: bool) -> None:
    """digestgate: ship exactly the image bytes you built and validated."""
    color = not no_color and "NO_COLOR" not in os.environ and sys.stderr.isatty()
    ctx.obj = Console(verbose=verbose, quiet=quiet, color=color)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (the single error boundary)."""
    verbose = sum(
        a.count("v")
        for a in (argv if argv is not None else sys.argv[1:])
        if a.startswith("-") and not a.startswith("--") and set(a[1:]) == {"v"}
    ) + sum(1 for a in (argv if argv is not None else sys.argv[1:]) if a == "--verbose")
    from digestgate import interrupt

    interrupt.reset()
    interrupt.install()
    try:
        result = cli.main(args=argv, prog_name="digestgate", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except interrupt.Interrupted as exc:
        return _interrupted(exc.signum)
    except click.exceptions.Abort:
        return _interrupted(signal.SIGTERM if interrupt.requested() else signal.SIGINT)
    except click.ClickException as exc:
        _usage(exc)
        return int(ExitCode.USAGE)
    except DigestgateError as exc:
        _report(exc, verbose)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return _interrupted(signal.SIGTERM if interrupt.requested() else signal.SIGINT)
    except Exception as exc:  # the boundary: a bug, not a traceback for the user
        click.echo(f"digestgate: internal error: {type(exc).__name__}: {exc}", err=True)
        if verbose >= 2:
            traceback.print_exc()
        else:
            click.echo("  hint: rerun with -vv for the traceback and report it", err=True)
        return int(ExitCode.INTERNAL)
    return int(result) if isinstance(result, int) else 0


def _usage(exc: click.ClickException) -> None:
    """A flag or argument click refused, in the one-line form every error has.

    Click quotes unexpected arguments and unknown options back; an unquoted ``$KEY`` in a
    workflow turns a key's lines into such arguments, so a message that looks like key
    material is replaced (evidence.keys.looks_like_key_material).
    """
    from digestgate.evidence.keys import looks_like_key_material

    message = " ".join(exc.format_message().split())
    if looks_like_key_material(message):
        click.echo(
            "digestgate: error: the command line holds what looks like key material; "
            "click's message is not shown",
            err=True,
        )
        click.echo(
            "  hint: pass keys as file:PATH or env:VAR, and quote arguments (the shell "
            "splits an unquoted PEM into several)",
            err=True,
        )
        return
    click.echo(f"digestgate: error: {message}", err=True)
    ctx = getattr(exc, "ctx", None)
    where = f"{ctx.command_path} --help" if ctx is not None else "digestgate --help"
    click.echo(f"  hint: see `{where}` for the accepted flags and values", err=True)


def _interrupted(signum: int) -> int:
    """Stopped by a signal: what was written is complete, nothing after it was (128 + N)."""
    name = signal.Signals(signum).name
    click.echo(
        f"digestgate: interrupted by {name}; transfers in flight were abandoned and their "
        "partial files removed, and no tag was moved after the signal",
        err=True,
    )
    click.echo("  hint: run the same command again: completed copies are skipped", err=True)
    return 128 + signum


def _report(exc: DigestgateError, verbose: int) -> None:
    click.echo(f"digestgate: error: {exc.message}", err=True)
    if exc.hint:
        click.echo(f"  hint: {exc.hint}", err=True)
    if verbose >= 2:
        traceback.print_exception(exc)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
