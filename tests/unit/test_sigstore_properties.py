"""Property tests for the Sigstore parsers and checks: the role-overlap check is sound (two
identities it calls disjoint never match one certificate), DER text round-trips, and
subject-name mapping never picks among several artifacts."""

from __future__ import annotations

from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from digestgate.evidence.sigstore import der_utf8
from digestgate.policy.model import Glob
from digestgate.policy.sigstore import SigstoreIdentity, may_overlap

ISSUER = "https://token.actions.githubusercontent.com"
REPO = "https://github.com/org/app"

# Patterns and texts over a tiny alphabet, so that matches and overlaps are frequent.
PATTERN = st.text(alphabet="ab/*?@", min_size=1, max_size=8).filter(lambda p: "***" not in p)
TEXT = st.text(alphabet="ab/@", max_size=8)


def identity(pattern: str) -> SigstoreIdentity:
    return SigstoreIdentity(
        "x", ISSUER, Glob.compile(pattern), REPO, None, Path("root.json"), b"{}", "k"
    )


@settings(max_examples=600, deadline=None)
@given(PATTERN, PATTERN, st.lists(TEXT, max_size=12))
@example("a*", "*b", ["ab"])
@example("a/*@b", "a/b@*", ["a/b@b"])
def test_identities_called_disjoint_never_match_one_name(
    first: str, second: str, texts: list[str]
) -> None:
    a, b = identity(first), identity(second)
    if may_overlap(a, b):
        return
    for text in texts:
        assert not (a.identity.matches(text) and b.identity.matches(text)), (first, second, text)


def _instance(draw: st.DrawFn, pattern: str) -> str:
    """A text built to match ``pattern`` (wildcards replaced by random runs)."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(draw(st.text(alphabet="ab/@", max_size=4)))
            i += 2
        elif pattern[i] == "*":
            out.append(draw(st.text(alphabet="ab@", max_size=3)))
            i += 1
        elif pattern[i] == "?":
            out.append(draw(st.sampled_from("ab@")))
            i += 1
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


@settings(max_examples=1000, deadline=None)
@given(PATTERN, PATTERN, st.data())
def test_a_name_built_for_one_identity_matches_another_only_if_they_may_overlap(
    first: str, second: str, data: st.DataObject
) -> None:
    a, b = identity(first), identity(second)
    name = data.draw(st.composite(lambda draw: _instance(draw, first))())
    if a.identity.matches(name) and b.identity.matches(name):
        assert may_overlap(a, b), (first, second, name)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_der_utf8_round_trips(text: str) -> None:
    data = text.encode("utf-8")
    if len(data) < 128:
        encoded = bytes([0x0C, len(data)]) + data
    else:
        size = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
        encoded = bytes([0x0C, 0x80 | len(size)]) + size + data
    assert der_utf8(encoded) == text
    assert der_utf8(encoded + b"x") is None  # trailing bytes: not one UTF8String
    assert der_utf8(b"\x13" + encoded[1:]) is None  # another string type
