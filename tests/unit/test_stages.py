"""Stages and enforcement, pure: policy parsing, the record reader, the stage rule."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digestgate.errors import ConfigError
from digestgate.evidence.model import VSA, EvidenceFormatError, Statement, Subject
from digestgate.evidence.statements import statement_bytes, vsa_predicate
from digestgate.policy.stages import StageRequirement
from digestgate.rules.enforcement import is_warn_only, vsa_result, warn_fields
from digestgate.rules.stages import check_stage, format_span, read_stage_record, record_fields
from tests.unit.gatekit import BACKEND, FRONTEND, HOUR, NOW, POLICY, policy, verified

BOTH = frozenset({Subject("backend", BACKEND), Subject("frontend", FRONTEND)})


def test_defaults_are_no_stage_and_enforce() -> None:
    p = policy()
    assert (p.stage.name, p.stage.requires, p.enforcement) == (None, None, "enforce")


def test_stage_requires_and_enforcement_are_read() -> None:
    p = policy(
        POLICY + "stage: prod\nrequires: {stage: staging, minSoak: 90m}\nenforcement: warn\n"
    )
    assert p.stage.name == "prod"
    assert p.stage.requires == StageRequirement("staging", timedelta(minutes=90), ("gate",))
    assert p.enforcement == "warn"


def test_requires_without_min_soak_needs_no_soak() -> None:
    p = policy(POLICY + "requires: {stage: staging}\n")
    assert p.stage.requires == StageRequirement("staging", timedelta(0), ("gate",))


def test_requires_signers_replace_the_gate_signers() -> None:
    text = POLICY.replace("  gate: keys/gate.pub\n", "  gate: keys/gate.pub\n  stg: keys/stg.pub\n")
    p = policy(text + "requires: {stage: staging, signers: [stg]}\n")
    assert p.stage.requires is not None and p.stage.requires.signers == ("stg",)


@pytest.mark.parametrize(
    ("signers", "message"),
    [
        ("[tests]", "key 'tests' signs promotion records (requires.signers) and build or lane"),
        ("[build]", "key 'build' signs promotion records"),
        ("[nobody]", "'nobody' is not a key name"),
        ("[]", "requires.signers must not be empty"),
    ],
)
def test_requires_signers_are_gate_role_keys(signers: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        policy(POLICY + f"requires: {{stage: staging, signers: {signers}}}\n")
    assert message in caught.value.message


def test_the_same_key_material_under_another_name_is_refused() -> None:
    # gatekit's fake keys take their material from the file name: t2 is the tests key
    text = POLICY.replace(
        "  gate: keys/gate.pub\n", "  gate: keys/gate.pub\n  t2: keys/tests.pub\n"
    )
    with pytest.raises(ConfigError) as caught:
        policy(text + "requires: {stage: staging, signers: [t2]}\n")
    assert "(the same key material as 'tests')" in caught.value.message


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("stage: [a]\n", "stage must be a non-empty string"),
        ("stage: ../prod\n", "invalid stage"),
        ("requires: staging\n", "requires must be a mapping"),
        ("requires: {stage: staging, minSoak: 0s}\n", "requires.minSoak must be longer than zero"),
        ("enforcement: WARN\n", "enforcement must be enforce or warn"),
    ],
)
def test_bad_values_name_the_field_and_line(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        policy(POLICY + extra)
    assert message in caught.value.message
    assert caught.value.message.startswith("policy.yaml:")


def test_the_stage_settings_change_the_policy_digest() -> None:
    assert policy().digest != policy(POLICY + "enforcement: warn\n").digest


@given(st.text(max_size=40), st.sampled_from(["stage: ", "requires: ", "enforcement: "]))
@settings(max_examples=150, deadline=None)
def test_any_value_is_accepted_or_a_config_error(value: str, key: str) -> None:
    with contextlib.suppress(ConfigError):
        policy(POLICY + key + json.dumps(value) + "\n")


def record(**extra: Any) -> Statement:
    predicate = vsa_predicate(
        result="PASSED",
        policy_digest=BACKEND,
        policy_uri="staging.yaml",
        resource_uri="oci:t/backend",
        input_attestations=[],
        time_verified=NOW - 2 * HOUR,
        kind="promotion",
        source="oci:s/backend",
        findings=(),
    )
    predicate.update(extra)
    return Statement.parse(statement_bytes([Subject("backend", BACKEND)], VSA, predicate))


def test_record_fields_round_trip() -> None:
    parsed = read_stage_record(record(**record_fields("staging", BOTH)))
    assert (parsed.stage, parsed.release) == ("staging", BOTH)
    assert read_stage_record(record()).release is None


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


@given(JSONISH, JSONISH)
@settings(max_examples=200, deadline=None)
def test_hostile_stage_fields_are_malformed_never_a_crash(stage: Any, release: Any) -> None:
    with contextlib.suppress(EvidenceFormatError):
        read_stage_record(record(digestgate_stage=stage, digestgate_release=release))


def outcome(doc_signers: tuple[str, ...] = ("gate",), **fields: Any) -> Any:
    p = policy(POLICY + "stage: production\nrequires: {stage: staging, minSoak: 1h}\n")
    assert p.stage.requires is not None
    statement = record(**(fields or record_fields("staging", BOTH)))
    ev = verified(json.loads(statement.raw), doc_signers)
    return check_stage(p.stage.requires, Subject("backend", BACKEND), BOTH, [ev], NOW)


def test_the_rule_counts_a_soaked_gate_record() -> None:
    result = outcome()
    assert result.passed and result.findings == ()
    assert result.reason == "promoted to staging; soaked 2h (at least 1h required)"


@pytest.mark.parametrize(
    ("signers", "fields", "expected"),
    [
        (("tests",), None, "stage.untrusted-signer"),
        (("build",), None, "stage.untrusted-signer"),
        (("gate",), record_fields("dev", BOTH), "stage.missing"),
        (("gate",), record_fields("staging", {Subject("backend", BACKEND)}), "stage.missing"),
        (("gate",), {"digestgate_stage": "staging"}, "stage.missing"),
        (
            ("gate",),
            {**record_fields("staging", BOTH), "verificationResult": "FAILED"},
            "stage.missing",
        ),
        (
            ("gate",),
            {**record_fields("staging", BOTH), "verifier": {"id": "https://example.org/other"}},
            "stage.missing",
        ),
        (("gate",), {**record_fields("staging", BOTH), "digestgate_kind": "gate"}, "stage.missing"),
    ],
)
def test_the_rule_refuses(
    signers: tuple[str, ...], fields: dict[str, Any] | None, expected: str
) -> None:
    result = outcome(signers, **(fields or {}))
    assert not result.passed
    assert [f.id for f in result.findings] == [expected]


def test_a_gate_signed_record_too_young_names_both_durations() -> None:
    p = policy(POLICY + "stage: production\nrequires: {stage: staging, minSoak: 3h}\n")
    assert p.stage.requires is not None
    ev = verified(json.loads(record(**record_fields("staging", BOTH)).raw), ("gate",))
    result = check_stage(p.stage.requires, Subject("backend", BACKEND), BOTH, [ev], NOW)
    assert [f.id for f in result.findings] == ["stage.soak-too-short"]
    assert "promoted to staging 2h ago; 3h of soak is required" in result.findings[0].message


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=40), "40s"),
        (timedelta(minutes=12, seconds=5), "12m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=3, hours=4), "3d4h"),
        (timedelta(seconds=-5), "0s"),
    ],
)
def test_format_span(span: timedelta, text: str) -> None:
    assert format_span(span) == text


def test_warn_mode_never_signs_passed_and_the_marker_is_recognised() -> None:
    assert vsa_result(True, "enforce") == "PASSED"
    assert vsa_result(True, "warn") == vsa_result(False, "warn") == "FAILED"
    assert is_warn_only(warn_fields(True))
    assert is_warn_only({"digestgate_enforcement": "something-else"})
    assert not is_warn_only({"digestgate_enforcement": "enforce"})
    assert not is_warn_only({})


@pytest.mark.parametrize(
    ("pinned", "passes"), [((BACKEND,), True), ((FRONTEND,), False), ((FRONTEND, BACKEND), True)]
)
def test_requires_policies_pins_the_policy_a_record_was_made_under(
    pinned: tuple[Any, ...], passes: bool
) -> None:
    """A record by a trusted key, for this release and stage, made under another policy (an
    older, laxer one, say) does not count when requires.policies pins the earlier stage's."""
    listed = ", ".join(f'"{d}"' for d in pinned)
    p = policy(POLICY + f"stage: production\nrequires: {{stage: staging, policies: [{listed}]}}\n")
    assert p.stage.requires is not None and p.stage.requires.policies == pinned
    statement = record(**record_fields("staging", BOTH))  # made under policy BACKEND
    ev = verified(json.loads(statement.raw), ("gate",))
    result = check_stage(p.stage.requires, Subject("backend", BACKEND), BOTH, [ev], NOW)
    assert result.passed is passes
    if not passes:
        assert [f.id for f in result.findings] == ["stage.missing"]
        assert "not one of requires.policies" in result.findings[0].message


@pytest.mark.parametrize(
    ("value", "message"),
    [("[]", "requires.policies must not be empty"), ('["v1"]', "requires.policies"), ("x", "list")],
)
def test_requires_policies_must_be_digests(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        policy(POLICY + f"requires: {{stage: staging, policies: {value}}}\n")
    assert message in caught.value.message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("order", [1, -1])
def test_a_fresh_re_promotion_never_shortens_the_soak_of_an_older_record(order: int) -> None:
    # The oldest counting record decides: promoting again (a re-run) adds a young record.
    from digestgate.timeutil import format_timestamp

    p = policy(POLICY + "stage: production\nrequires: {stage: staging, minSoak: 1h}\n")
    assert p.stage.requires is not None
    fields = record_fields("staging", BOTH)
    young = record(**fields, timeVerified=format_timestamp(NOW - timedelta(minutes=1)))
    old = record(**fields)  # 2h before NOW
    evidence = [verified(json.loads(s.raw), ("gate",)) for s in (old, young)][::order]
    result = check_stage(p.stage.requires, Subject("backend", BACKEND), BOTH, evidence, NOW)
    assert result.passed and result.findings == ()
    assert result.reason == "promoted to staging; soaked 2h (at least 1h required)"
