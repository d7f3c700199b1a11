"""WWW-Authenticate parsing: several challenges, quoted commas, never a crash."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from digestgate.oci.registry.challenge import parse_challenges, quote


def test_bearer_with_quoted_comma_in_scope() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:org/app:pull,push"'
    )
    [challenge] = parse_challenges([header])
    assert challenge.scheme == "bearer"
    assert challenge.get("realm") == "https://auth.example/token"
    assert challenge.get("service") == "registry.example"
    assert challenge.get("scope") == "repository:org/app:pull,push"


def test_several_challenges_in_one_header_and_across_headers() -> None:
    found = parse_challenges(
        ['Basic realm="gitea", Bearer realm="https://h/v2/token",service="h"', "Negotiate"]
    )
    assert [c.scheme for c in found] == ["basic", "bearer", "negotiate"]
    assert found[0].get("realm") == "gitea"
    assert found[1].get("service") == "h"


def test_escaped_quotes_unquoted_values_and_case() -> None:
    [challenge] = parse_challenges(['BEARER Realm=plain, error="a \\"quoted\\" word"'])
    assert challenge.scheme == "bearer"
    assert challenge.get("realm") == "plain"
    assert challenge.get("error") == 'a "quoted" word'


def test_garbage_yields_something_harmless() -> None:
    for header in ["", ",,,", '="x"', 'Bearer realm="unterminated', "=,=,Basic", "Bearer abc=="]:
        for challenge in parse_challenges([header]):
            assert challenge.scheme


_values = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40
)


@given(st.lists(st.text(), max_size=3))
def test_never_crashes(headers: list[str]) -> None:
    for challenge in parse_challenges(headers):
        assert isinstance(challenge.scheme, str)


@given(_values, _values, _values)
def test_quoted_values_round_trip(realm: str, service: str, scope: str) -> None:
    header = f"Basic realm={quote('x')}, Bearer realm={quote(realm)},service={quote(service)},"
    header += f"scope={quote(scope)}"
    challenges = parse_challenges([header])
    bearer = next(c for c in challenges if c.scheme == "bearer")
    assert bearer.get("realm") == (realm or None)
    assert bearer.get("service") == (service or None)
    assert bearer.get("scope") == (scope or None)
