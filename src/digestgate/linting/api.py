"""Lint workflow files: load, check, suppress, and promote warnings under ``--strict``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from digestgate.errors import ConfigError, UsageError
from digestgate.linting import suppress
from digestgate.linting.config import DEFAULT_PATH, LintConfig, parse_config
from digestgate.linting.findings import Finding, Severity
from digestgate.linting.loader import WORKFLOW_DIRS, Loader, repository_root, workflow_files
from digestgate.linting.rules import check_workflow


@dataclass(frozen=True)
class LintResult:
    """Sorted findings and the files that were checked."""

    findings: tuple[Finding, ...]
    files: tuple[str, ...]

    @property
    def failed(self) -> bool:
        """Whether an error-severity finding exists (exit 1)."""
        return any(f.severity is Severity.ERROR for f in self.findings)


def default_paths(base: Path) -> list[Path]:
    """The workflow folders that exist under ``base``."""
    return [base / d for d in WORKFLOW_DIRS if (base / d).is_dir()]


def load_config(path: Path) -> LintConfig:
    """Read a lint configuration file (exit 2 when it is unreadable or invalid)."""
    from digestgate.fileread import read_capped
    from digestgate.yamlsource import MAX_BYTES, load_yaml

    try:
        data = read_capped(path, MAX_BYTES, what="lint configuration")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", hint="check the path") from None
    return parse_config(load_yaml(data, source=str(path)), str(path))


def find_config(base: Path) -> LintConfig:
    """The repository's ``.digestgate/lint.yaml`` if there is one, else the defaults."""
    candidate = base / DEFAULT_PATH
    return load_config(candidate) if candidate.is_file() else LintConfig()


def lint(
    *,
    paths: list[Path],
    cwd: Path,
    root: Path | None = None,
    config: LintConfig | None = None,
    strict: bool = False,
) -> LintResult:
    """Lint workflow files and directories; ``root`` overrides the repository root.

    Paths are reported relative to ``root`` (else ``cwd``). Without ``config``, each
    repository's ``.digestgate/lint.yaml`` is used when present.
    """
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise UsageError(
                f"{path}: no such file or directory",
                hint="give workflow files or directories, or run in the repository root",
            )
        files.extend(workflow_files(path) if path.is_dir() else [path])
    display_root = root or cwd
    findings: list[Finding] = []
    checked: list[str] = []
    loaders: dict[Path, Loader] = {}
    configs: dict[Path, LintConfig] = {}
    for file in files:
        repo = root.resolve() if root else repository_root(file, cwd)
        loader = loaders.setdefault(repo, Loader(repo, display_root))
        effective = config
        if effective is None:
            if repo not in configs:
                configs[repo] = find_config(repo)
            effective = configs[repo]
        workflow, found = loader.load(file)
        display = loader.display(file)
        checked.append(display)
        if workflow is not None:
            found = found + check_workflow(workflow, effective)
            found = suppress.apply(found, display, workflow.lines)
        findings.extend(found)
    if strict:
        findings = [f.escalated() for f in findings]
    unique = {(f.rule, f.file, f.line, f.column, f.message): f for f in findings}
    return LintResult(tuple(sorted(unique.values(), key=Finding.sort_key)), tuple(checked))
