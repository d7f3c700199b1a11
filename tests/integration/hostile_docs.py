"""Hostile JSON, YAML and XML: named payloads and Hypothesis strategies that mutate a valid one.

Each mutation starts from a document the reader accepts and breaks one thing: a value
replaced by a huge integer, an overflowing float, deep nesting, an alias cycle or bomb, a
wrong type, a duplicate key; or the bytes truncated, prefixed with a byte order mark,
re-encoded, or given a NUL or an invalid UTF-8 sequence.
"""

from __future__ import annotations

import json
from typing import Any, Final

from hypothesis import strategies as st

from tests.integration.hostile_lab import Kind

#: Far past every depth limit (JSON 64, YAML 64) and past Python's recursion limit.
_DEEP: Final = 5000
#: Past the composer's recursion limit. PyYAML scans up to 1024 characters ahead while flow
#: collections open (quadratic in the open ones), so this costs most of a second, and more
#: levels cost no more.
_DEEP_YAML: Final = 1000


def _nest(opening: str, closing: str, depth: int, inner: str = "") -> str:
    return opening * depth + inner + closing * depth


#: Values that replace one value of a JSON document (raw JSON text).
JSON_VALUES: Final = {
    "int-5000-digits": "9" * 5000,
    "negative-int-4301-digits": "-" + "1" * 4301,
    "int-101-digits": "1" * 101,
    "float-overflow": "1e999",
    "negative-float-overflow": "-1e999",
    "long-float-overflow": "1" * 400 + ".5",
    "nan": "NaN",
    "infinity": "Infinity",
    "deep-arrays": _nest("[", "]", _DEEP),
    "deep-objects": _nest('{"a":', "}", _DEEP, "1"),
    "lone-surrogate": '"\\ud800"',
    "nul-escape": '"\\u0000"',
    "null": "null",
    "list": "[]",
    "object": "{}",
    "bool": "true",
    "float": "1.5",
    "negative": "-1",
    "long-string": '"' + "x" * 100_000 + '"',
}

#: Values also tried as a whole document.
_WHOLE_JSON: Final = ("int-5000-digits", "float-overflow", "deep-arrays", "null", "list")

#: Values that replace one scalar of a YAML document (flow style, fits after ``key: ``).
YAML_VALUES: Final = {
    "int-5000-digits": "9" * 5000,
    "hex-5000-digits": "0x" + "f" * 5000,
    "octal-5000-digits": "0o" + "7" * 5000,
    "float-overflow": "1.0e999",
    "inf": ".inf",
    "negative-inf": "-.Inf",
    "nan": ".NaN",
    "deep-flow-sequences": _nest("[", "]", _DEEP_YAML),
    "deep-flow-mappings": _nest("{a: ", "}", 200, "1"),
    "nesting-65": _nest("[", "]", 65),
    "alias-cycle": "&cycle [*cycle]",
    "alias-cycle-mapping": "&loop {k: *loop}",
    "alias-bomb": "["
    + ", ".join(
        [f"&a0 [{', '.join(['x'] * 10)}]"]
        + [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    )
    + "]",
    "undefined-alias": "*nowhere",
    "python-tag": "!!python/object/apply:os.system ['true']",
    "binary-tag": "!!binary AAAA",
    "custom-tag": "!custom value",
    "complex-key": "{[a, b]: 1}",
    "nul-escape": '"\\0"',
    "null": "null",
    "list": "[]",
    "mapping": "{}",
    "bool": "true",
    "long-string": "x" * 100_000,
}

#: Whole XML documents handed to a JUnit reader.
XML_DOCUMENTS: Final = {
    "billion-laughs": (
        '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a0 "aaaaaaaaaa">'
        + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
        + ']><testsuite name="&a9;"><testcase name="t"/></testsuite>'
    ),
    "external-entity": (
        '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<testsuite><testcase name="&x;"/></testsuite>'
    ),
    "count-5000-digits": f'<testsuite failures="{"9" * 5000}"><testcase name="t"/></testsuite>',
    "negative-count": '<testsuite errors="-1"><testcase name="t"/></testsuite>',
    "unicode-digit-count": '<testsuite failures="\u0663"><testcase name="t"/></testsuite>',
    "deep-elements": "<testsuite>" + _nest("<x>", "</x>", 50_000) + "</testsuite>",
    "deep-suites": _nest("<testsuite>", "</testsuite>", 20_000, '<testcase name="t"/>'),
    "nested-testcase": '<testsuite><testcase name="a"><testcase name="b"/></testcase></testsuite>',
    "suite-in-testcase": '<testsuite><testcase name="a"><testsuite/></testcase></testsuite>',
    "unknown-status": '<testsuite><testcase name="a" status="flaky"/></testsuite>',
    "mixed-case-testcase": '<testsuite><TestCase name="a"/><testcase name="b"/></testsuite>',
    "wrong-root": "<html><body>502</body></html>",
    "empty": "",
    "no-cases": '<testsuites name="x"/>',
    "truncated": '<testsuite name="s"><testcase name="a">',
}


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value of a parsed JSON document (the root is the empty path)."""
    found: list[tuple[Any, ...]] = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _paths(value, (*prefix, i))
    return found


_MARK: Final = "\u2063hostile\u2063"


def _replace_json(valid: bytes, path: tuple[Any, ...], raw_value: str) -> bytes:
    doc = json.loads(valid)
    if not path:
        return raw_value.encode()
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = _MARK
    return json.dumps(doc).replace(json.dumps(_MARK), raw_value).encode()


def _duplicate_json(valid: bytes, path: tuple[Any, ...]) -> bytes | None:
    doc = json.loads(valid)
    target = doc
    for step in path:
        target = target[step]
    if not isinstance(target, dict) or not target:
        return None
    key = next(iter(target))
    target[_MARK] = "second"
    return json.dumps(doc).replace(json.dumps(_MARK), json.dumps(key)).encode()


def _replace_yaml_line(valid: bytes, line: int, raw_value: str) -> bytes:
    lines = valid.decode().split("\n")
    candidates = [i for i, text in enumerate(lines) if ": " in text and not text.endswith(":")]
    if not candidates:
        return raw_value.encode()
    i = candidates[line % len(candidates)]
    head = lines[i].split(": ", 1)[0]
    lines[i] = f"{head}: {raw_value}"
    return "\n".join(lines).encode()


def _insert_xml(valid: bytes, where: int, fragment: str) -> bytes:
    cuts = [i + 1 for i, byte in enumerate(valid) if byte == ord(">")]
    cut = cuts[where % len(cuts)] if cuts else 0
    return valid[:cut] + fragment.encode() + valid[cut:]


def _bytes(valid: bytes) -> st.SearchStrategy[bytes]:
    """Byte-level damage that any format must survive."""
    position = st.integers(min_value=0, max_value=max(len(valid) - 1, 0))
    return st.one_of(
        position.map(lambda i: valid[:i]),
        st.just(b"\xef\xbb\xbf" + valid),
        st.just(valid.decode("utf-8", "replace").encode("utf-16")),
        st.tuples(position, st.sampled_from([b"\x00", b"\xff", b"\xc0\x80", b"\xed\xa0\x80"])).map(
            lambda t: valid[: t[0]] + t[1] + valid[t[0] :]
        ),
        st.binary(max_size=300),
    )


def _json(valid: bytes) -> st.SearchStrategy[bytes]:
    paths = _paths(json.loads(valid))
    path = st.sampled_from(paths)
    replaced = st.tuples(path, st.sampled_from(sorted(JSON_VALUES.values()))).map(
        lambda t: _replace_json(valid, t[0], t[1])
    )
    duplicated = path.map(lambda p: _duplicate_json(valid, p)).filter(lambda d: d is not None)
    return st.one_of(replaced, duplicated.map(lambda d: d or b""), _bytes(valid))


def _yaml(valid: bytes) -> st.SearchStrategy[bytes]:
    replaced = st.tuples(st.integers(0, 1000), st.sampled_from(sorted(YAML_VALUES.values()))).map(
        lambda t: _replace_yaml_line(valid, t[0], t[1])
    )
    duplicate = st.just(valid + valid.split(b"\n", 1)[0] + b"\n")
    return st.one_of(replaced, duplicate, _bytes(valid))


_XML_FRAGMENTS: Final = [
    f'<x a="{"9" * 5000}"/>',
    _nest("<x>", "</x>", 2000),
    '<testcase name="inner"/>',
    "<failure/>",
    "<error/>",
    '<testsuite failures="1"/>',
    "<![CDATA[</testsuite>]]>",
    "&undefined;",
    "\x00",
    "<?pi x?>",
    "</testsuite>",
]


def _xml(valid: bytes) -> st.SearchStrategy[bytes]:
    inserted = st.tuples(st.integers(0, 1000), st.sampled_from(_XML_FRAGMENTS)).map(
        lambda t: _insert_xml(valid, t[0], t[1])
    )
    whole = st.sampled_from(sorted(XML_DOCUMENTS.values())).map(str.encode)
    return st.one_of(inserted, whole, _bytes(valid))


def mutations(kind: Kind, valid: bytes) -> st.SearchStrategy[bytes]:
    """Hostile variants of ``valid`` for a reader of ``kind``."""
    if kind == "json":
        return _json(valid)
    if kind == "yaml":
        return _yaml(valid)
    return _xml(valid)


def named(kind: Kind, valid: bytes) -> dict[str, bytes]:
    """The named payloads of ``kind`` applied to ``valid`` (deterministic)."""
    if kind == "json":
        return {
            **{f"value:{n}": _replace_json(valid, _paths(json.loads(valid))[1], v)
               for n, v in JSON_VALUES.items()},
            **{f"document:{n}": JSON_VALUES[n].encode() for n in _WHOLE_JSON},
            "duplicate-key": _duplicate_json(valid, ()) or b"{}",
            "truncated": valid[: len(valid) // 2],
            "bom": b"\xef\xbb\xbf" + valid,
            "utf-16": valid.decode().encode("utf-16"),
            "invalid-utf8": valid[:10] + b"\xff" + valid[10:],
        }  # fmt: skip
    if kind == "yaml":
        return {
            **{f"value:{n}": _replace_yaml_line(valid, 0, v) for n, v in YAML_VALUES.items()},
            "deep-block-mappings": "".join(f"{'  ' * i}k{i}:\n" for i in range(400)).encode(),
            "truncated": valid[: len(valid) // 2],
            "bom": b"\xef\xbb\xbf" + valid,
            "invalid-utf8": valid[:10] + b"\xff" + valid[10:],
            "nul": valid[:10] + b"\x00" + valid[10:],
        }
    return {n: v.encode() for n, v in XML_DOCUMENTS.items()}
