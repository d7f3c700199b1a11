"""Shared click options for commands that talk to registries.

``@registry_options`` adds ``--insecure-registry``, ``--tls-registry``, ``--ca-bundle``,
``--registry-timeout``, ``--registry-min-rate``, ``--deadline`` and ``--docker-config`` and
hands the command one ``store_options`` argument (a :class:`~digestgate.oci.open.StoreOptions`).
Numbers must be finite and within a sane range: ``nan``, ``inf`` or ``1e308`` are exit 2
while the flags are parsed, before any connection. Each option may also come from a
``DIGESTGATE_*`` variable shown in ``--help``; credentials never do (they are read from the
Docker config or DIGESTGATE_REGISTRY_HOST/USERNAME/PASSWORD by the registry client). Those
variables are checked here, so a half configuration is exit 2 before any connection.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from digestgate.errors import UsageError
from digestgate.oci.options import StoreOptions

F = TypeVar("F", bound=Callable[..., Any])

_NAMES = (
    "insecure_registry",
    "tls_registry",
    "ca_bundle",
    "registry_timeout",
    "registry_min_rate",
    "deadline",
    "docker_config",
)

#: (lowest, lowest allowed itself, highest) per number option.
MAX_TIMEOUT = 3600.0
MAX_DEADLINE = 7 * 24 * 3600.0
MAX_MIN_RATE = 10.0 * 1024**3
_LIMITS: dict[str, tuple[float, bool, float]] = {
    "--registry-timeout": (0.0, False, MAX_TIMEOUT),
    "--registry-min-rate": (0.0, True, MAX_MIN_RATE),
    "--deadline": (0.0, False, MAX_DEADLINE),
}


def number_problem(flag: str, value: float) -> str | None:
    """Why ``value`` is not acceptable for ``flag`` (None when it is)."""
    low, inclusive, high = _LIMITS[flag]
    bound = f"{'at least' if inclusive else 'more than'} {low:g} and at most {high:g}"
    if not math.isfinite(value) or value < low or value > high or (value == low and not inclusive):
        return f"{flag} must be a number {bound}, not {value:g}"
    return None


class Number(click.ParamType[float]):
    """A finite float within the flag's range (env values are checked the same way)."""

    name = "number"

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                self.fail(f"{str(value)[:40]!r} is not a number", param, ctx)
        problem = number_problem(self.flag, number)
        if problem is not None:
            self.fail(problem.removeprefix(f"{self.flag} "), param, ctx)
        return number


def store_options_from(
    insecure_registry: Iterable[str] = (),
    tls_registry: Iterable[str] = (),
    ca_bundle: str | None = None,
    registry_timeout: float | None = None,
    docker_config: str | None = None,
    environ: Mapping[str, str] | None = None,
    registry_min_rate: float | None = None,
    deadline: float | None = None,
) -> StoreOptions:
    """Build :class:`StoreOptions` from the values of the registry options.

    Also validates the registry credential variables (``environ``, default ``os.environ``):
    a username or password without ``DIGESTGATE_REGISTRY_HOST`` is exit 2 here, before the
    command opens any connection, rather than at the first registry that asks.
    """
    if ca_bundle is not None:
        import stat

        try:
            mode = Path(ca_bundle).stat().st_mode
        except OSError as exc:
            raise UsageError(
                f"--ca-bundle {ca_bundle[:200]}: {exc.strerror or exc}", hint="pass a PEM file"
            ) from None
        if not stat.S_ISREG(mode):  # a FIFO would block the TLS library's read
            raise UsageError(
                f"--ca-bundle {ca_bundle[:200]} is not a regular file", hint="pass a PEM file"
            )
    for flag, value in (
        ("--registry-timeout", registry_timeout),
        ("--registry-min-rate", registry_min_rate),
        ("--deadline", deadline),
    ):
        problem = None if value is None else number_problem(flag, value)
        if problem is not None:
            raise UsageError(problem, hint="see digestgate COMMAND --help for the range")
    from digestgate.oci.registry.credentials import environment_credentials

    environment_credentials(os.environ if environ is None else environ)
    return StoreOptions(
        insecure_hosts=frozenset(h.strip().lower() for h in insecure_registry if h.strip()),
        tls_hosts=frozenset(h.strip().lower() for h in tls_registry if h.strip()),
        ca_bundle=ca_bundle,
        timeout=registry_timeout if registry_timeout is not None else StoreOptions.timeout,
        min_rate=registry_min_rate if registry_min_rate is not None else StoreOptions.min_rate,
        deadline=deadline,
        docker_config=docker_config,
    )


def registry_options(func: F) -> F:
    """Add the registry options; the command receives ``store_options: StoreOptions``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name, None) for name in _NAMES}
        kwargs["store_options"] = store_options_from(
            insecure_registry=values["insecure_registry"] or (),
            tls_registry=values["tls_registry"] or (),
            ca_bundle=values["ca_bundle"],
            registry_timeout=values["registry_timeout"],
            docker_config=values["docker_config"],
            registry_min_rate=values["registry_min_rate"],
            deadline=values["deadline"],
        )
        return func(*args, **kwargs)

    decorators = [
        click.option(
            "--insecure-registry",
            "insecure_registry",
            metavar="HOST",
            multiple=True,
            envvar="DIGESTGATE_INSECURE_REGISTRY",
            show_envvar=True,
            help="Use plain HTTP for this registry (host[:port]); repeatable. Loopback hosts "
            "use plain HTTP already.",
        ),
        click.option(
            "--tls-registry",
            "tls_registry",
            metavar="HOST",
            multiple=True,
            envvar="DIGESTGATE_TLS_REGISTRY",
            show_envvar=True,
            help="Use HTTPS for this loopback registry (host[:port]); repeatable.",
        ),
        click.option(
            "--ca-bundle",
            type=click.Path(exists=True, dir_okay=False),
            envvar="DIGESTGATE_CA_BUNDLE",
            show_envvar=True,
            help="PEM file of extra CA certificates trusted for registries.",
        ),
        click.option(
            "--registry-timeout",
            type=Number("--registry-timeout"),
            metavar="SECONDS",
            envvar="DIGESTGATE_REGISTRY_TIMEOUT",
            show_envvar=True,
            help="Seconds a registry has to answer a request, and the window over which "
            "--registry-min-rate is measured (default 30, at most 3600).",
        ),
        click.option(
            "--registry-min-rate",
            type=Number("--registry-min-rate"),
            metavar="BYTES",
            envvar="DIGESTGATE_REGISTRY_MIN_RATE",
            show_envvar=True,
            help="Bytes per second a transfer must average over each --registry-timeout "
            "window (default 16384; 0: only a full stall fails).",
        ),
        click.option(
            "--deadline",
            type=Number("--deadline"),
            metavar="SECONDS",
            envvar="DIGESTGATE_DEADLINE",
            show_envvar=True,
            help="Give up all registry work after this many seconds, exit 3 "
            "(default: no limit; at most 604800).",
        ),
        click.option(
            "--docker-config",
            type=click.Path(file_okay=False),
            metavar="DIR",
            envvar="DIGESTGATE_DOCKER_CONFIG",
            show_envvar=True,
            help="Directory holding the Docker config.json with registry credentials "
            "(default $DOCKER_CONFIG or ~/.docker).",
        ),
    ]
    result: Callable[..., Any] = wrapper
    for decorator in reversed(decorators):
        result = decorator(result)
    return result  # type: ignore[return-value]


def check_output_file(path: Path | None, flag: str) -> None:
    """Refuse (exit 2, before any work) an output file that could not be written later:
    an empty name, a directory, or a parent that is not an existing directory."""
    if path is None:
        return
    shown = str(path)[:200]
    if not path.name or str(path).endswith("/"):
        raise UsageError(f"{flag} {shown!r} names no file", hint=f"give {flag} a file name")
    if path.is_dir():
        raise UsageError(f"{flag} {shown} is a directory", hint=f"give {flag} a file name")
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(
            f"{flag} {shown}: the directory {str(parent)[:200]} {what}",
            hint="create the directory first, or choose another path",
        )


def release_option(help_text: str) -> Callable[[F], F]:
    """``--release FILE`` (required), passed as ``release_path: Path``."""
    return click.option(
        "--release",
        "release_path",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help=help_text,
    )


def policy_option(help_text: str) -> Callable[[F], F]:
    """``--policy FILE`` (required), passed as ``policy_path: Path``."""
    return click.option(
        "--policy",
        "policy_path",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help=help_text,
    )


def evidence_option(help_text: str) -> Callable[[F], F]:
    """``--evidence STORE`` (required, repeatable), passed as ``evidence_specs``."""
    return click.option(
        "--evidence",
        "evidence_specs",
        required=True,
        multiple=True,
        metavar="STORE",
        help=help_text,
    )
