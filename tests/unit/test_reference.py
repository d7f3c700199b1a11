"""References: registry and oci: layout parsing, formatting, Docker Hub normalisation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digestgate.digest import Digest
from digestgate.errors import InvalidReferenceError, UsageError
from digestgate.reference import (
    ImageReference,
    LayoutReference,
    normalise_layout_path,
    parse_layout_reference,
    parse_location,
    parse_registry_reference,
    validate_artifact_name,
)

D = "sha256:" + "ab" * 32

component = st.from_regex(r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8}){0,2}", fullmatch=True)
repository = st.lists(component, min_size=1, max_size=4).map("/".join)
host = st.sampled_from(
    ["registry.example.org", "localhost:5000", "127.0.0.1:8443", "ghcr.io", "a-b.c.d:1"]
)
tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,20}", fullmatch=True)
digest = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map(
    lambda h: Digest("sha256", h)
)


@given(host, repository, st.none() | tag, st.none() | digest)
def test_registry_round_trip(h: str, repo: str, t: str | None, d: Digest | None) -> None:
    ref = ImageReference(h, repo, t, d)
    assert parse_registry_reference(str(ref)) == ref


@given(st.from_regex(r"[./a-zA-Z0-9_-]{1,30}", fullmatch=True), st.none() | tag, st.none() | digest)
def test_layout_round_trip(path: str, t: str | None, d: Digest | None) -> None:
    ref = LayoutReference(normalise_layout_path(path), t, d)
    assert parse_layout_reference(str(ref)) == ref
    assert normalise_layout_path(ref.path) == ref.path


@pytest.mark.parametrize(
    ("text", "registry", "repo", "tag"),
    [
        ("alpine", "docker.io", "library/alpine", None),
        ("alpine:3.20", "docker.io", "library/alpine", "3.20"),
        ("org/app", "docker.io", "org/app", None),
        ("index.docker.io/alpine", "docker.io", "library/alpine", None),
        ("localhost/app", "localhost", "app", None),
        ("localhost:5000/org/app:v1", "localhost:5000", "org/app", "v1"),
        ("[::1]:5000/app", "[::1]:5000", "app", None),
        ("registry.example.org/org/app/backend", "registry.example.org", "org/app/backend", None),
    ],
)
def test_normalisation(text: str, registry: str, repo: str, tag: str | None) -> None:
    ref = parse_registry_reference(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repo, tag)


def test_digest_and_tag() -> None:
    ref = parse_registry_reference(f"r.example/app:v1@{D}")
    assert ref.tag == "v1"
    assert str(ref.digest) == D
    assert ref.reference == D
    assert str(ref.with_digest(Digest.parse(D))) == f"r.example/app@{D}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        " alpine",
        "Alpine",
        "r.example/App",
        "r.example/app:",
        "r.example/app@sha256:abc",
        f"r.example/app@sha256:{'AB' * 32}",
        "https://r.example/app",
        "r.example/app:-bad",
        "r.example/app\n",
        "r.example//app",
        "r.example/app/",
        "bad_host.example/app",
        "r.example/" + "a" * 300,
    ],
)
def test_malformed_registry_references(text: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_registry_reference(text)
    assert info.value.hint


def test_layout_references() -> None:
    ref = parse_layout_reference(f"oci:./out/app:v1@{D}")
    assert (ref.path, ref.tag, str(ref.digest)) == ("out/app", "v1", D)
    assert parse_layout_reference("oci:/tmp/x").tag is None
    assert isinstance(parse_location("oci:dir"), LayoutReference)
    assert isinstance(parse_location("r.example/app"), ImageReference)
    for bad in ("oci:", f"oci:@{D}", "oci:dir@sha256:12", "oci:dir:bad tag"):
        with pytest.raises(InvalidReferenceError):
            parse_layout_reference(bad)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("oci:./images/app", "images/app"),
        ("oci:images//app/", "images/app"),
        ("oci:a/./b/../c", "a/c"),
        ("oci:../backend", "../backend"),
        ("oci:staging/../../backend", "../backend"),
        ("oci://tmp/x", "/tmp/x"),
        ("oci:/tmp/../x", "/x"),
    ],
)
def test_layout_paths_are_normalised(text: str, path: str) -> None:
    # The path matched against the policy's patterns is the path that is opened.
    assert parse_layout_reference(text).path == path


@pytest.mark.parametrize("name", ["backend", "frontend", "api.v2", "a", "x_y-z", "0" * 64])
def test_artifact_names_accepted(name: str) -> None:
    assert validate_artifact_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "..", ".", "a/b", "../x", "Backend", "a\nb", "-x", "a" * 65, "a b", "é"]
)
def test_artifact_names_refused(name: str) -> None:
    with pytest.raises(UsageError):
        validate_artifact_name(name)


@pytest.mark.parametrize("port", ["0", "65536", "99999"])
def test_a_port_outside_1_to_65535_is_refused_at_parse_time(port: str) -> None:
    # Not a registry to try and retry: exit 2 before any connection.
    with pytest.raises(InvalidReferenceError, match=f"port {port} is not between 1 and 65535"):
        parse_registry_reference(f"127.0.0.1:{port}/app:tag")
    assert parse_registry_reference("127.0.0.1:65535/app:tag").registry == "127.0.0.1:65535"


def test_every_whitespace_or_control_character_is_refused_in_a_reference() -> None:
    import sys

    from digestgate.reference import _SPACE_OR_CONTROL

    # The check is one regex; it must refuse exactly what str.isspace() or a C0 control is.
    odd = [
        c
        for c in range(sys.maxunicode + 1)
        if (chr(c).isspace() or c < 0x20) != bool(_SPACE_OR_CONTROL.search(chr(c)))
    ]
    assert odd == []
    for char in ("\u00a0", "\u2028", "\x1f", "\x00", "\u3000"):
        with pytest.raises(InvalidReferenceError, match="whitespace or control"):
            parse_registry_reference(f"ghcr.io/org/app{char}:v1")
