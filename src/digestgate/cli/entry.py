"""The console script and ``python -m digestgate``: ``--version`` answers before anything
else is imported (a deploy script may ask it on every run); every other command goes to
:func:`digestgate.cli.main.main`.

httpx imports its own command-line client (``httpx._main``: click, rich, pygments) when
``import httpx`` runs, if those happen to be installed (the ``sigstore`` extra brings rich):
60-90 ms on every registry command for code this process never calls. The process is
digestgate's own, so that module is marked absent before anything imports httpx; httpx then
installs the stub it uses when its CLI dependencies are missing."""

import sys


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        from digestgate._version import __version__

        sys.stdout.write(f"digestgate, version {__version__}\n")
        return
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from digestgate.cli.main import main as run

    run()
