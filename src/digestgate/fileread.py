"""Reading the small files users point digestgate at, without hanging on special files.

Keys, policies, release and promotion files, JUnit reports, build metadata, tag plans and
the Docker config are named by flags, environment variables or other files, so any of them
may be a FIFO, a device or a directory. Opening a FIFO for reading blocks until a writer
appears, and reading a device such as ``/dev/zero`` never ends. :func:`read_capped` opens
without blocking (``O_NONBLOCK``), checks on the open descriptor that it is a regular file,
and reads at most one byte more than the caller's cap.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from digestgate.errors import ConfigError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a special file"


def read_capped(path: Path, max_bytes: int, *, what: str) -> bytes:
    """Up to ``max_bytes + 1`` bytes of the regular file at ``path``.

    A result longer than ``max_bytes`` tells the caller the file is over its cap. A path
    that names anything but a regular file (after following symlinks), or that contains a
    NUL character, is a :class:`ConfigError` (exit 2) naming ``what``; I/O failures, including
    :class:`FileNotFoundError`, propagate as :class:`OSError` for the caller to word.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except ValueError:  # a NUL character: no file can have that name
        raise ConfigError(
            f"{what} path {str(path)[:200]!r} contains a NUL character",
            hint="pass the path of a regular file",
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(
                f"{what} {str(path)[:200]} is {_kind(mode)}, not a regular file",
                hint="pass the path of a regular file",
            )
        # O_NONBLOCK does not affect regular files: the buffered read loops to the cap or EOF.
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(max_bytes + 1)
    finally:
        os.close(fd)
