"""Which children of a multi-platform image a lane ran: ``attest test-result --platform``.

Each ``--platform OS/ARCH[/VARIANT]`` (or ``all``) adds, for every index among the lane's
subjects, the child of that platform as a subject named ``NAME@PLATFORM`` with the child's
digest, taken from the platforms ``capture`` recorded from the index bytes. A platform the
index does not offer is refused here, before anything is signed. Provenance names every
recorded child the same way (:func:`recorded_children`), so the gate can take an index's
platforms from a signed statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from digestgate.errors import UsageError
from digestgate.evidence.model import Subject
from digestgate.evidence.store.base import SubjectLocation
from digestgate.platforms import PlatformError, parse_platform, subject_name
from digestgate.release import Release

#: ``--platform all``: the lane ran every platform of each index it covered.
ALL: Final = "all"


def wanted_platforms(values: Sequence[str]) -> tuple[str, ...]:
    """The ``--platform`` values checked: ``all`` alone, or distinct platform names."""
    if ALL in values:
        if len(set(values)) > 1:
            raise UsageError("--platform all already names every platform; give it alone")
        return (ALL,)
    result: list[str] = []
    for value in values:
        try:
            platform = parse_platform(value)
        except PlatformError as exc:
            raise UsageError(f"--platform: {exc}") from None
        if platform not in result:
            result.append(platform)
    return tuple(result)


def recorded_children(release: Release, name: str) -> list[Subject]:
    """Every child ``capture`` recorded for ``name`` as a ``NAME@PLATFORM`` subject (none for
    a single image)."""
    recorded = release.artifacts[name].platforms or ()
    return [Subject(subject_name(name, p.platform), p.digest) for p in recorded]


def platform_subjects(
    release: Release, subjects: Sequence[SubjectLocation], values: Sequence[str]
) -> list[Subject]:
    """The child subjects for ``values`` (empty when no ``--platform`` was given)."""
    wanted = wanted_platforms(values)
    if not wanted:
        return []
    children: list[Subject] = []
    indexes = 0
    for subject in subjects:
        recorded = release.artifacts[subject.name].platforms
        if recorded is None:
            continue
        indexes += 1
        by_name = {p.platform: p for p in recorded}
        names = list(by_name) if wanted == (ALL,) else list(wanted)
        for platform in names:
            child = by_name.get(platform)
            if child is None:
                raise UsageError(
                    f"{subject.name} offers no {platform} image (it has "
                    f"{', '.join(by_name) or 'none'})",
                    hint="name a platform the index lists, or leave that artifact out",
                )
            children.append(Subject(subject_name(subject.name, platform), child.digest))
    if indexes == 0:
        raise UsageError(
            "--platform applies to multi-platform images; the release records platforms for "
            "none of this lane's artifacts",
            hint="capture the index again (without --offline) so its platforms are recorded",
        )
    return children
