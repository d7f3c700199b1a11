"""policy.yaml: strict validation with file:line:col messages, defaults, globs, digest."""

from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from digestgate.errors import ConfigError
from digestgate.policy import Glob, Policy, load_policy, parse_policy, policy_digest
from digestgate.policy.model import GlobError
from tests.unit.gatekit import POLICY, fake_key_loader, policy

MINIMAL = """\
apiVersion: digestgate/v1
kind: Policy
keys: {build: build.pub, tests: tests.pub}
artifacts:
  backend: {repository: "registry.example.org/org/*/backend"}
source:
  repository: https://git.example.org/org/app/
  refs: [refs/heads/main]
provenance: {signers: [build]}
lanes:
  e2e: {signers: [tests]}
"""


def parse(text: str) -> Policy:
    return parse_policy(
        text.encode(), source="policy.yaml", base_dir=Path("/etc/dg"), key_loader=fake_key_loader
    )


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert info.value.exit_code == 2
    assert info.value.hint
    return info.value


def test_full_policy_loads() -> None:
    pol = policy()
    assert set(pol.artifacts) == {"backend", "frontend"}
    assert pol.keys["build"].origin == "/policy/keys/build.pub"
    assert pol.provenance.signers == ("build", "build2")
    assert pol.lanes["e2e"].together and not pol.lanes["fast-check"].together
    assert pol.max_age == timedelta(days=7)
    assert pol.gate is not None and pol.gate.max_age == timedelta(days=30)
    roots = {name: fake_key_loader(Path(f"{name}.pub")).spki_der for name in pol.keys}
    assert pol.digest == policy_digest(POLICY.encode(), roots)
    assert pol.artifacts["backend"].repository.matches("registry.example.org/org/prod/backend")
    assert not pol.artifacts["backend"].repository.matches("registry.example.org/org/a/b/backend")


def test_defaults() -> None:
    pol = parse(MINIMAL)
    assert pol.provenance.threshold == 1
    assert pol.provenance.builder is None
    assert pol.source.events == ("push", "workflow_dispatch")
    assert pol.source.repository == "https://git.example.org/org/app"
    assert pol.max_age == timedelta(days=7)
    assert pol.same_revision and pol.same_run
    assert pol.deny == frozenset()
    assert pol.gate is None
    assert pol.promotion.immutable_tags == ()


def test_policy_text_digest_is_sha256_of_the_exact_bytes(tmp_path: Path) -> None:
    raw = MINIMAL.encode() + b"# trailing comment\n"
    file = tmp_path / "policy.yaml"
    file.write_bytes(raw)
    pol = load_policy(file, key_loader=fake_key_loader)
    assert pol.text_digest is not None and pol.text_digest.hex == hashlib.sha256(raw).hexdigest()
    assert pol.keys["build"].origin == str(tmp_path / "build.pub")
    assert pol.digest != parse(MINIMAL).digest


def test_unreadable_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("old", "new", "where", "words"),
    [
        ("kind: Policy", "kind: Policy\nextra: 1", "3:1", "unknown field 'extra' in the policy"),
        ("apiVersion: digestgate/v1", "apiVersion: digestgate/v2", "1:13", "unknown apiVersion"),
        ("kind: Policy", "kind: Release", "2:7", "kind must be Policy"),
        (
            '{repository: "registry.example.org/org/*/backend"}',
            '{repository: "r/*/b", tag: x}',
            "5:34",
            "unknown field 'tag' in artifacts.backend",
        ),
        (
            "provenance: {signers: [build]}",
            "provenance: {signers: []}",
            "9:23",
            "must not be empty",
        ),
        ("provenance: {signers: [build]}", "provenance: {signers: [ci]}", "9:24", "not a key name"),
        (
            "provenance: {signers: [build]}",
            "provenance: {signers: [build], threshold: 2}",
            "9:43",
            "between 1 and the number of signers (1)",
        ),
        (
            "provenance: {signers: [build]}",
            "provenance: {signers: [build], threshold: 0}",
            "9:43",
            "between 1",
        ),
        (
            "provenance: {signers: [build]}",
            "provenance: {signers: [build, build]}",
            "9:31",
            "listed twice",
        ),
        ("e2e: {signers: [tests]}", "E2E: {signers: [tests]}", "11:3", "invalid lane name 'E2E'"),
        (
            "e2e: {signers: [tests]}",
            "e2e: {signers: [tests], together: yes}",
            "11:37",
            "true or false",
        ),
        ("  backend: {", "  Backend: {", "5:3", "invalid artifact name 'Backend'"),
        ("refs: [refs/heads/main]", "refs: ['refs/heads/[a-z]*']", "8:10", "invalid pattern"),
        ("refs: [refs/heads/main]", "refs: []", "8:9", "must not be empty"),
        ("refs: [refs/heads/main]", "refs: refs/heads/main", "8:9", "must be a list"),
        ("kind: Policy", "kind: Policy\nmaxAge: 7 days", "3:9", "invalid duration"),
        ("kind: Policy", "kind: Policy\nmaxAge: 0d", "3:9", "longer than zero"),
        ("kind: Policy", "kind: Policy\nmaxAge: 999999999d", "3:9", "at most"),
        (
            "kind: Policy",
            "kind: Policy\ngate: {signers: [build], maxAge: 36501d}",
            "3:34",
            "at most",
        ),
        ("kind: Policy", "kind: Policy\ndeny: [sha256:ABC]", "3:8", "invalid digest"),
        ("kind: Policy", "kind: Policy\ngate: {signers: [gate]}", "3:18", "not a key name"),
        ("kind: Policy", "kind: Policy\nsameRun: 'true'", "3:10", "true or false"),
        ("keys: {build: build.pub, tests: tests.pub}", "keys: {}", "3:7", "keys must map"),
        (
            "keys: {build: build.pub, tests: tests.pub}",
            "keys: {build: 7, tests: t}",
            "3:15",
            "non-empty",
        ),
    ],
)
def test_errors_name_position_and_problem(old: str, new: str, where: str, words: str) -> None:
    assert old in MINIMAL
    exc = error(MINIMAL.replace(old, new, 1))
    assert exc.message.startswith(f"policy.yaml:{where}: "), exc.message
    assert words in exc.message


@pytest.mark.parametrize("section", ["artifacts", "lanes"])
def test_missing_required_sections(section: str) -> None:
    lines = MINIMAL.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{section}:"))
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    exc = error("\n".join(lines[:start] + lines[end:]) + "\n")
    assert f"needs '{section}'" in exc.message


@pytest.mark.parametrize("section", ["lanes: {}", "artifacts: {}", "lanes: []"])
def test_empty_required_sections(section: str) -> None:
    name = section.split(":")[0]
    lines = [ln for ln in MINIMAL.splitlines() if not ln.startswith((f"{name}:", "  "))]
    text = "\n".join(lines) + f"\n{section}\n"
    exc = error(text)
    assert "at least one" in exc.message


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n", "a: [\n", "\x00\x01"])
def test_not_a_policy(text: str) -> None:
    exc = error(text)
    assert exc.message.startswith("policy.yaml:")


def test_glob_grammar() -> None:
    assert Glob.compile("refs/tags/v*").matches("refs/tags/v1.2.3")
    assert not Glob.compile("refs/tags/v*").matches("refs/tags/v1/evil")
    assert Glob.compile("registry.example.org/**").matches("registry.example.org/a/b/c")
    assert Glob.compile("v?").matches("v1") and not Glob.compile("v?").matches("v12")
    assert Glob.compile("a.b").matches("a.b") and not Glob.compile("a.b").matches("axb")
    for bad in ["", "a b", "[ab]", "{a,b}", "a\\b", "***"]:
        with pytest.raises(GlobError):
            Glob.compile(bad)


YAMLISH = st.text(
    alphabet=st.sampled_from(list("abkeysrtiflnp:-[]{}',\"\n #&*!|>0123456789.@/ ")), max_size=200
)


@settings(max_examples=300, deadline=None)
@given(YAMLISH)
def test_loading_never_raises_anything_but_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse(text)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(MINIMAL) - 1), YAMLISH)
def test_mutated_policy_never_raises_anything_but_config_error(at: int, insert: str) -> None:
    with contextlib.suppress(ConfigError):
        parse(MINIMAL[:at] + insert + MINIMAL[at:])


def _reference_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            # A leading "*" never matches the empty segment before an absolute path's root
            # (Glob's rule: "*/x" does not match "/x"); only "**" may span the root.
            parts.append("(?!/)[^/]*" if i == 0 else "[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts), re.DOTALL)


GLOB_TEXT = st.text(alphabet="ab/.*?", min_size=1, max_size=12).filter(lambda p: "***" not in p)


@settings(max_examples=400, deadline=None)
@given(GLOB_TEXT, st.text(alphabet="ab/.", max_size=14))
@example("*/??", "/aa")
def test_glob_matcher_agrees_with_a_regex(pattern: str, text: str) -> None:
    # Texts with empty, "." or ".." segments follow an extra rule (tested below).
    assume(not any(seg in ("", ".", "..") for seg in text.removeprefix("/").split("/")))
    expected = _reference_regex(pattern).fullmatch(text) is not None
    assert Glob.compile(pattern).matches(text) == expected


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("oci:*/backend", "oci:../backend", False),
        ("oci:*/backend", "oci:./backend", False),
        ("oci:*/backend", "oci:/backend", False),
        ("oci:*/backend", "oci:staging/backend", True),
        ("oci:**/backend", "oci:../backend", False),
        ("oci:**/backend", "oci:a/../../backend", False),
        ("oci:**/backend", "oci:/tmp/x/backend", True),
        ("oci:../*/backend", "oci:../staging/backend", True),  # written literally: allowed
        ("oci:?/backend", "oci:./backend", False),
        ("oci:?/backend", "oci:a/backend", True),
        ("a/*/b", "a//b", False),
        ("a/**", "a/x/../y", False),
        ("a/*", "a/..", False),
        ("a/.*", "a/..", True),  # the literal "." is the pattern's, "*" matches one "."
        ("**/backend", "oci:/abs/backend", True),
        ("registry.example.org/org/*/backend", "registry.example.org/org/../backend", False),
    ],
)
def test_wildcards_never_match_a_whole_dot_or_empty_segment(
    pattern: str, text: str, expected: bool
) -> None:
    assert Glob.compile(pattern).matches(text) is expected


def test_glob_matching_is_not_exponential() -> None:
    glob = Glob.compile("**a**a**a**a**a**a**a**a**b")
    assert not glob.matches("a" * 200)
