"""Image references in promotions: by digest, by tag, or unknown; following outputs and env.

A reference that is one expression or variable (``${{ needs.build.outputs.image }}``,
``$IMAGE``) is resolved through job outputs, step outputs (``$GITHUB_OUTPUT`` writes,
build-push-action, ``digestgate capture``), ``env:`` blocks and shell assignments. What
cannot be resolved is not reported unless its text shows a tag.
"""

from __future__ import annotations

import re
from typing import Final

from digestgate.linting.facts import KNOWN_DIGEST, JobFacts
from digestgate.linting.model import Step, Workflow

_EXPR: Final = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_WHOLE_EXPR: Final = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
_WHOLE_VAR: Final = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
#: expressions, parameter expansions (``${x}``, ``${arr[@]}``), variables, special parameters
#: (``$@``, ``$1``) and command substitutions: opaque text whose ``@`` or ``:`` means nothing
_ANY_VAR: Final = re.compile(
    r"\$\{\{.*?\}\}|\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\$[@*#?$!0-9-]|\$\(\.\.\.\)"
)
_DIGEST: Final = re.compile(r"sha256:[0-9a-f]{64}")
_TRANSPORTS: Final = (
    "containers-storage:",
    "docker-archive:",
    "oci-archive:",
    "dir:",
    "docker-daemon:",
    "oci:",
    "ostree:",
    "sif:",
    "tarball:",
)
_MAX_DEPTH: Final = 8


class Resolver:
    """Resolves expressions and variables of one workflow to the text they stand for."""

    def __init__(self, workflow: Workflow, facts: dict[str, JobFacts]) -> None:
        self.workflow = workflow
        self.facts = facts

    def resolve(self, text: str, job_id: str, step: Step | None, depth: int = 0) -> str | None:
        """The text a whole-expression or whole-variable value stands for, if known."""
        if depth > _MAX_DEPTH:
            return None
        text = text.strip()
        expr = _WHOLE_EXPR.fullmatch(text)
        if expr:
            return self._expression(expr.group(1), job_id, step, depth)
        var = _WHOLE_VAR.fullmatch(text)
        if var:
            return self._variable(var.group(1), job_id, step, depth)
        return None

    def value(self, text: str, job_id: str, step: Step | None, depth: int) -> str | None:
        """``text`` resolved when it is one expression or variable, else itself."""
        if is_dynamic(text):
            return self.resolve(text, job_id, step, depth + 1)
        return text

    def _expression(self, expr: str, job_id: str, step: Step | None, depth: int) -> str | None:
        parts = expr.split(".")
        if len(parts) == 4 and parts[0] == "needs" and parts[2] == "outputs":
            job = self.workflow.jobs.get(parts[1])
            if job is not None and job.called is not None:
                # outputs of a called workflow: on.workflow_call.outputs.<name>.value
                called = job.called.call_outputs.get(parts[3])
                inner = Resolver(job.called, {})
                return inner.value(called.value, "", None, depth) if called else None
            output = job.outputs.get(parts[3]) if job else None
            return self.value(output.value, parts[1], None, depth) if output else None
        if len(parts) == 4 and parts[0] == "jobs" and parts[2] == "outputs":
            job = self.workflow.jobs.get(parts[1])
            output = job.outputs.get(parts[3]) if job else None
            return self.value(output.value, parts[1], None, depth) if output else None
        if len(parts) == 4 and parts[0] == "steps" and parts[2] == "outputs":
            facts = self.facts.get(job_id)
            written = facts.step_outputs.get(parts[1], {}) if facts else {}
            found = written.get(parts[3])
            return self.value(found, job_id, None, depth) if found is not None else None
        if len(parts) == 2 and parts[0] == "env":
            return self._variable(parts[1], job_id, step, depth)
        return None

    def _variable(self, name: str, job_id: str, step: Step | None, depth: int) -> str | None:
        job = self.workflow.jobs.get(job_id)
        for scope in (step.env if step else {}, job.env if job else {}, self.workflow.env):
            if name in scope:
                return self.value(scope[name].value, job_id, step, depth)
        facts = self.facts.get(job_id)
        if facts:
            for assignment in reversed(facts.assigns):
                if assignment.name == name and (step is None or assignment.step is step):
                    return self.value(assignment.value, job_id, step, depth)
            for written in reversed(facts.env_writes):  # $GITHUB_ENV of earlier steps
                if written.name == name and written.step is not step:
                    return self.value(written.value, job_id, written.step, depth)
        return None


def is_dynamic(text: str) -> bool:
    """Whether the whole text is one expression or variable."""
    text = text.strip()
    return bool(_WHOLE_EXPR.fullmatch(text) or _WHOLE_VAR.fullmatch(text))


def _digesty(text: str) -> bool:
    return "digest" in text.lower() or text.lower().startswith("sha256")


def digest_problem(
    text: str, resolver: Resolver, job_id: str, step: Step | None, depth: int = 0
) -> str | None:
    """Why ``text`` (what follows ``@``) is not a real sha256 digest, or None."""
    text = text.strip()
    if is_dynamic(text):
        resolved = resolver.resolve(text, job_id, step, depth + 1)
        if resolved is None or depth > _MAX_DEPTH:
            return None
        return digest_problem(resolved, resolver, job_id, step, depth + 1)
    if text == KNOWN_DIGEST or (text.startswith("sha256:") and _ANY_VAR.search(text)):
        return None
    if _DIGEST.fullmatch(text):
        if len(set(text[7:])) == 1:
            return f"'{text[:20]}...' is a placeholder digest"
        return None
    variable = _ANY_VAR.search(text)
    if variable and _could_be_digest(text[: variable.start()]):
        return None  # e.g. '${DIGEST}': the value is not known here
    if text.startswith("sha256:"):
        return f"'{_short(text)}' is a placeholder or malformed digest (need 64 hex digits)"
    return f"'{_short(text)}' is not a sha256 digest"


def _could_be_digest(prefix: str) -> bool:
    """Whether literal text before a variable may still start a digest (``sha256:`` or none)."""
    return "sha256:".startswith(prefix) or prefix.startswith("sha256:")


def ref_problem(
    text: str, resolver: Resolver, job_id: str, step: Step | None, depth: int = 0
) -> str | None:
    """Why the image reference ``text`` is not pinned by digest, or None (fine or unknown)."""
    ref = text.strip().strip("'\"")
    if ref.startswith("docker://"):
        ref = ref[len("docker://") :]
    if not ref or ref.startswith("-") or ref.startswith(_TRANSPORTS) or depth > _MAX_DEPTH:
        return None
    if is_dynamic(ref):
        resolved = resolver.resolve(ref, job_id, step, depth + 1)
        return (
            None if resolved is None else ref_problem(resolved, resolver, job_id, step, depth + 1)
        )
    at = _last_outside_vars(ref, "@")
    if at >= 0:
        return digest_problem(ref[at + 1 :], resolver, job_id, step, depth + 1)
    masked = _ANY_VAR.sub(lambda m: "\0" * len(m.group(0)), ref)
    slash = masked.rfind("/")
    last, masked_last = ref[slash + 1 :], masked[slash + 1 :]
    if ":" in masked_last:
        tag = last[masked_last.index(":") + 1 :]
        if _digesty(tag):
            return f"'{_short(ref)}' puts a digest after ':' (a tag); use '@' instead"
        return f"'{_short(ref)}' references the image by tag"
    if "\0" in masked_last:
        return None  # the name or tag is a variable the linter cannot see
    return f"'{_short(ref)}' has neither tag nor digest (it means :latest)"


def _last_outside_vars(text: str, char: str) -> int:
    """Index of the last ``char`` of ``text`` that is not inside a variable or expression."""
    masked = _ANY_VAR.sub(lambda m: "_" * len(m.group(0)), text)
    return masked.rfind(char)


def tag_value_problem(text: str) -> str:
    """A value set as an image tag (helm ``--set image.tag=...``)."""
    if _digesty(text):
        return f"'{_short(text)}' passes a digest as an image tag; set the digest field instead"
    return f"'{_short(text)}' sets the image by tag"


def digest_var_problem(
    name: str, value: str, resolver: Resolver, job_id: str, step: Step | None
) -> str | None:
    """Why a variable named like a digest holds something else, or None."""
    text = value.strip().strip("'\"")
    if not text:
        return None
    if is_dynamic(text):
        resolved = resolver.resolve(text, job_id, step, 1)
        if resolved is None:
            return None
        text = resolved
    if _last_outside_vars(text, "@") >= 0:
        problem = ref_problem(text, resolver, job_id, step, 1)
    elif text.startswith("sha256:"):
        problem = digest_problem(text, resolver, job_id, step, 1)
    elif _ANY_VAR.search(text) or text.startswith("captured@"):
        tail = _ANY_VAR.sub("x", text).rsplit("/", 1)[-1]
        problem = f"'{_short(text)}' is a tag" if ":" in tail else None
    else:
        problem = f"'{_short(text)}' is not a digest"
    return f"{name} should hold a digest: {problem}" if problem else None


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."
