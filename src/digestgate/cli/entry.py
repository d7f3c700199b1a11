"""The console script and ``python -m digestgate``: ``--version`` answers before anything
else is imported (a deploy script may ask it on every run); every other command goes to
:func:`digestgate.cli.main.main`."""

import sys


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        from digestgate._version import __version__

        sys.stdout.write(f"digestgate, version {__version__}\n")
        return
    from digestgate.cli.main import main as run

    run()
