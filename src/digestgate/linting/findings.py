"""Lint findings and the rule table (stable ids, names, severities, fix hints).

The ids are a contract: tests, SARIF output and inline suppressions name them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final


class Severity(StrEnum):
    """How much a finding matters; ``error`` makes ``digestgate lint`` exit 1."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Rule:
    """One lint rule: id, short name, default severity, summary and fix hint."""

    id: str
    name: str
    severity: Severity
    summary: str
    hint: str


RULES: Final[dict[str, Rule]] = {
    r.id: r
    for r in (
        Rule(
            "DG100",
            "invalid-workflow",
            Severity.ERROR,
            "The workflow file cannot be read as a workflow.",
            "fix the file so that it is valid YAML with a top-level mapping and a 'jobs' mapping",
        ),
        Rule(
            "DG101",
            "build-after-validation",
            Severity.ERROR,
            "An image is built after validation on the release path.",
            "build each image once before validation, capture its digest, and promote that digest",
        ),
        Rule(
            "DG102",
            "promote-by-tag",
            Severity.ERROR,
            "A promotion or deployment references an image by tag, not by digest.",
            "reference the image as REPO@sha256:<64 hex> (use the digest captured at build time)",
        ),
        Rule(
            "DG103",
            "promotion-not-gated",
            Severity.ERROR,
            "A promotion can run without every validation job having succeeded.",
            "make the promotion job need every validation job and drop always()/failure()/"
            "!cancelled() unless guarded by needs.<job>.result == 'success'",
        ),
        Rule(
            "DG104",
            "digest-not-captured",
            Severity.WARNING,
            "A pushed image's digest is never passed on.",
            "give the build step an id and pass steps.<id>.outputs.digest on, or use "
            "--metadata-file/--iidfile, or run 'digestgate capture'",
        ),
        Rule(
            "DG105",
            "release-rebuild",
            Severity.ERROR,
            "A release or tag workflow builds images instead of promoting validated digests.",
            "promote the digests validated on the branch ('digestgate promote') instead of "
            "rebuilding on release",
        ),
        Rule(
            "DG106",
            "opaque-step",
            Severity.WARNING,
            "A step after validation cannot be inspected; it may build an image.",
            "replace it with visible commands, pin a known action, or list it under "
            "harmless-actions in .digestgate/lint.yaml",
        ),
        Rule(
            "DG199",
            "suppression-without-reason",
            Severity.WARNING,
            "An inline suppression gives no reason.",
            "write the reason after the bracket: # digestgate: ignore[DG101] why it is safe",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding at a position of a file (path relative to the reporting root)."""

    rule: str
    severity: Severity
    file: str
    line: int
    column: int
    message: str

    @property
    def name(self) -> str:
        """The rule's short name."""
        return RULES[self.rule].name

    @property
    def hint(self) -> str:
        """What to do about it."""
        return RULES[self.rule].hint

    def sort_key(self) -> tuple[str, int, int, str, str]:
        """Deterministic order: file, line, column, rule id, message."""
        return (self.file, self.line, self.column, self.rule, self.message)

    def escalated(self) -> Finding:
        """The same finding as an error (``--strict``)."""
        return replace(self, severity=Severity.ERROR)


def make(rule: str, file: str, line: int, column: int, message: str) -> Finding:
    """A finding of ``rule`` with the rule's default severity."""
    return Finding(rule, RULES[rule].severity, file, line, column, message)
