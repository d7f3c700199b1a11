"""Digests: validation on construction, parsing, streaming hashes."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digestgate.digest import Digest, DigestHasher, hash_stream
from digestgate.errors import IntegrityError, InvalidReferenceError

HEX = "0123456789abcdef"
sha256_hex = st.text(alphabet=HEX, min_size=64, max_size=64)
sha512_hex = st.text(alphabet=HEX, min_size=128, max_size=128)


@given(sha256_hex)
def test_sha256_round_trip(hexpart: str) -> None:
    d = Digest.parse(f"sha256:{hexpart}")
    assert str(d) == f"sha256:{hexpart}"
    assert Digest.parse(str(d)) == d


@given(sha512_hex)
def test_sha512_round_trip(hexpart: str) -> None:
    assert str(Digest.parse(f"sha512:{hexpart}")) == f"sha512:{hexpart}"


@given(sha256_hex, st.integers(min_value=0, max_value=63))
def test_uppercase_mutation_rejected(hexpart: str, index: int) -> None:
    mutated = hexpart[:index] + hexpart[index].upper() + hexpart[index + 1 :]
    if mutated == hexpart:  # a digit has no upper case: force a letter
        mutated = hexpart[:index] + "A" + hexpart[index + 1 :]
    with pytest.raises(InvalidReferenceError):
        Digest.parse(f"sha256:{mutated}")


@given(sha256_hex, st.integers(min_value=1, max_value=63))
def test_truncation_rejected(hexpart: str, cut: int) -> None:
    with pytest.raises(InvalidReferenceError):
        Digest.parse(f"sha256:{hexpart[:cut]}")


@given(sha256_hex, st.text(alphabet=HEX, min_size=1, max_size=8))
def test_extension_rejected(hexpart: str, extra: str) -> None:
    with pytest.raises(InvalidReferenceError):
        Digest.parse(f"sha256:{hexpart}{extra}")


@given(
    sha256_hex,
    st.integers(min_value=0, max_value=63),
    st.characters(exclude_characters=HEX, codec="utf-8"),
)
def test_alphabet_mutation_rejected(hexpart: str, index: int, char: str) -> None:
    with pytest.raises(InvalidReferenceError):
        Digest.parse(f"sha256:{hexpart[:index]}{char}{hexpart[index + 1 :]}")


@given(
    sha256_hex,
    st.text(min_size=0, max_size=10).filter(lambda a: a not in ("sha256", "sha512")),
)
def test_algorithm_mutation_rejected(hexpart: str, algorithm: str) -> None:
    with pytest.raises(InvalidReferenceError):
        Digest.parse(f"{algorithm}:{hexpart}")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("abc", "missing the 'sha256:' prefix"),
        ("md5:" + "0" * 32, "unsupported algorithm"),
        ("sha256:" + "A" * 64, "uppercase"),
        ("sha256:" + "z" * 64, "not hexadecimal"),
        ("sha256:" + "0" * 63, "need 64 lowercase hex"),
    ],
)
def test_errors_name_the_problem(text: str, reason: str) -> None:
    with pytest.raises(InvalidReferenceError, match=reason) as info:
        Digest.parse(text)
    assert info.value.hint


def test_constructor_validates() -> None:
    with pytest.raises(InvalidReferenceError):
        Digest("sha256", "0" * 63)
    with pytest.raises(InvalidReferenceError):
        Digest("md5", "0" * 32)  # type: ignore[arg-type]


def test_of_matches_hashlib() -> None:
    data = b"hello world"
    assert Digest.of(data).hex == hashlib.sha256(data).hexdigest()
    assert Digest.of(data, "sha512").hex == hashlib.sha512(data).hexdigest()


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_stream_hash_equals_whole(chunks: list[bytes]) -> None:
    digest, size = hash_stream(chunks)
    whole = b"".join(chunks)
    assert digest == Digest.of(whole)
    assert size == len(whole)


def test_hasher_check_size_and_digest() -> None:
    data = b"x" * 100
    good = Digest.of(data)
    hasher = DigestHasher()
    hasher.update(data)
    hasher.check(good, 100, what="blob")
    with pytest.raises(IntegrityError, match="got 100 bytes, expected 99"):
        hasher.check(good, 99, what="blob")
    with pytest.raises(IntegrityError, match="does not match"):
        hasher.check(Digest.of(b"other"), 100, what="blob")


def test_verify_and_forms() -> None:
    d = Digest.of(b"a")
    d.verify(b"a")
    with pytest.raises(IntegrityError):
        d.verify(b"b")
    assert d.tag_form == f"sha256-{d.hex}"
    assert d.short == f"sha256:{d.hex[:12]}"
