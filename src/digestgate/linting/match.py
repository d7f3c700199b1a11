"""What a classification says: the :class:`Kind` of a command or action, and its :class:`Match`.

The command classifiers (:mod:`digestgate.linting.tools`, :mod:`digestgate.linting.testrunners`)
and the dispatch in :mod:`digestgate.linting.classify` all produce these values, and
:mod:`digestgate.linting.facts` and :mod:`digestgate.linting.rules` read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What a command or action does, as far as the release path is concerned."""

    BUILD = "build"
    VALIDATION = "validation"
    PROMOTION = "promotion"
    PUSH = "push"  # docker push and friends: publication in a build job, promotion elsewhere
    TAG = "tag"  # docker tag SRC DST: promotion when the job builds nothing
    CAPTURE = "capture"  # passes a digest on
    CONSUME = "consume"  # consumes a validated release (digestgate promote/verify/gate)
    OPAQUE = "opaque"  # cannot be inspected
    RUN = "run"  # docker run IMAGE: a smoke test of a fresh build, or a deployment
    STOP = "stop"  # stops what a run or compose up started (a test environment ends)
    LOAD = "load"  # docker load: an image built elsewhere in the job (publication, not copy)


@dataclass(frozen=True, slots=True)
class Ref:
    """An image reference a promotion uses.

    ``role``: ``image`` (a reference), ``tag`` or ``digest`` (a value set as such, e.g. a
    helm value or a manifest field), or ``absent`` (``text`` names a file the deploy reads
    its images from that is not in the repository). ``origin`` says where it was written
    when that is not the command itself (``compose.yml:4``).
    """

    text: str
    role: str = "image"
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """One classification of a command or action."""

    kind: Kind
    what: str
    refs: tuple[Ref, ...] = ()
    pushes: bool = False
    captured: bool = False
    target: str | None = None
    #: starts services (compose up): a test environment inside a validation job
    starts_services: bool = False
    #: names a build gives its image (-t/--tag), to tell which later push publishes it
    tags: tuple[str, ...] = ()
    #: docker run: detached (-d), and marked long-lived (--restart or --name)
    detached: bool = False
    long_lived: bool = False
    #: compose up / stack deploy: the files (-f/-c) and services it names, and --build
    compose: ComposeUse | None = None
    #: a build whose result is started right away (compose up --build): it ships
    started: bool = False
    #: an opaque job or local action that cannot be read at all (DG106 wherever it runs)
    unreadable: bool = False


@dataclass(frozen=True, slots=True)
class ComposeUse:
    """What a ``compose up``/``stack deploy`` reads: files, services, and whether it builds."""

    files: tuple[str, ...]
    services: tuple[str, ...]
    builds: bool
