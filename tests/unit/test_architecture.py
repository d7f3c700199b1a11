"""The shape of the package: no import circles, small modules, a light top level, and a
public API that is exactly what docs/api.md promises."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import digestgate

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "digestgate"
MAX_MODULE_LINES = 500


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module an import of ``name`` loads: the longest known prefix."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Every import between digestgate modules: top level, inside functions and under
    ``TYPE_CHECKING`` alike (``ast.walk`` sees them all)."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
            for target in targets:
                owner = _owner(target, modules)
                if owner is not None and owner != module:
                    graph[module].add(owner)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(set(graph) | {t for ts in graph.values() for t in ts}):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_import_circles_anywhere_in_the_package() -> None:
    assert cycles(import_graph()) == []


def test_the_circle_check_finds_a_circle() -> None:
    """The check itself works: a two-module circle, and one through TYPE_CHECKING, are seen."""
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    graph = import_graph()
    # a real edge that exists only under TYPE_CHECKING is counted
    assert "digestgate.capturing.capture" in graph["digestgate"]


def test_layers_point_down() -> None:
    """The pure layers never reach up into the verbs, the CLI or the HTTP client."""
    graph = import_graph()
    upper = ("digestgate.cli", "digestgate.gating", "digestgate.promotion", "digestgate.capturing")
    for module, targets in graph.items():
        if module.startswith(("digestgate.rules", "digestgate.policy", "digestgate.oci")):
            assert not [t for t in targets if t.startswith(upper)], module
        if module.startswith("digestgate.rules"):
            assert not [t for t in targets if t.startswith("digestgate.oci.registry")], module
        if not module.startswith(("digestgate.cli", "digestgate.__main__")):
            assert not [t for t in targets if t.startswith("digestgate.cli")], module


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("digestgate"):
                offenders += [
                    f"{module} imports {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_")
                    and not a.name.startswith("__")
                    and node.module != "digestgate._version"
                ]
    assert offenders == []


def test_every_module_stays_under_500_lines() -> None:
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) >= MAX_MODULE_LINES
    }
    assert long == {}


def test_no_flat_promote_modules_and_no_demo_in_the_library() -> None:
    assert not list(PACKAGE.glob("promote*.py"))
    assert not (PACKAGE / "demo.py").exists()


@pytest.mark.parametrize("name", sorted(digestgate.__all__))
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(digestgate, name) is not None


def test_the_public_names_are_the_documented_ones() -> None:
    documented = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [n for n in digestgate.__all__ if f"`{n}`" not in documented]
    assert missing == []


def test_verbs_take_keyword_arguments_only() -> None:
    import inspect

    for name in (
        "capture",
        "attest_provenance",
        "attest_test_result",
        "gate",
        "promote",
        "verify",
        "drift",
        "lint",
    ):
        parameters = inspect.signature(getattr(digestgate, name)).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters), name


def test_importing_the_package_and_asking_the_version_loads_nothing_else() -> None:
    code = (
        "import sys, digestgate; digestgate.__version__; "
        "print(sorted(m for m in sys.modules if m.startswith('digestgate')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['digestgate', 'digestgate._version']"


def test_no_library_module_prints() -> None:
    """Results are values; only the CLI and the renderers write to a terminal."""
    writers = []
    for module, path in _modules().items():
        if module.startswith(("digestgate.cli", "digestgate.report", "digestgate.linting.output")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            prints = isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
            stream = (
                isinstance(node, ast.Attribute)
                and node.attr in ("stdout", "stderr")
                and getattr(node.value, "id", None) == "sys"
            )
            if prints or stream:
                writers.append(module)
    assert writers == []


def test_version_answers_before_click_is_imported_and_says_what_click_says() -> None:
    from tests.conftest import run_cli

    code = (
        "import sys; sys.argv = ['digestgate', '--version']; "
        "from digestgate.cli.entry import main; main(); "
        "print(sorted(m for m in sys.modules if m.startswith(('digestgate', 'click'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == run_cli("--version").stdout.strip()
    assert (
        out[1] == "['digestgate', 'digestgate._version', 'digestgate.cli', 'digestgate.cli.entry']"
    )


def test_registry_commands_do_not_load_the_http_clients_own_command_line() -> None:
    """httpx imports its CLI (click, rich, pygments) on ``import httpx`` when those are
    installed; the console script keeps it out, and httpx still works."""
    code = (
        "import sys; sys.argv = ['digestgate', 'resolve', 'oci:/nonexistent@sha256:' + '0' * 64]\n"
        "from digestgate.cli.entry import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "import httpx\n"
        "print(sorted(m for m in sys.modules if m.startswith(('rich', 'pygments', 'httpx._main'))),"
        " callable(httpx.Client))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "['httpx._main'] True"


def test_key_only_gating_and_the_cli_never_import_sigstore() -> None:
    """sigstore is an optional extra: only a policy naming a Sigstore identity loads it."""
    bundle = '{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}'
    code = (
        "import sys; from tests.unit.gatekit import policy; "
        "from digestgate.gating.gate import evidence_verifier; "
        "import digestgate.cli.main, digestgate.evidence.sigstore; "
        "verify = evidence_verifier(policy()); verify(b'{}', 'a'); "
        f"verify({bundle!r}.encode(), 'b'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('sigstore')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"
