"""The import graph reads like the architecture (docs/architecture.md, "Floors"): it only points down.

Walks every import (module level and inside functions) of govheal/, exporter/, remediator/,
webhook_receiver/ and bench/ with ``ast`` and fails on an upward import, on a module of govheal/ that no
floor lists, on an import cycle, and on a benchmark importing a test module. Adding a module to govheal/:
put its name in BASE or TOP below (the base is what every other floor may stand on).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The base floor: imports nothing of exporter, remediator, webhook_receiver, bench, tests or TOP.
BASE = {
    "govheal",
    "govheal.client",
    "govheal.config",
    "govheal.config.agents",
    "govheal.config.build",
    "govheal.config.checks",
    "govheal.config.common",
    "govheal.config.load",
    "govheal.config.ops",
    "govheal.config.problems",
    "govheal.config.root",
    "govheal.config.seams",
    "govheal.config.servers",
    "govheal.endpoints",
    "govheal.errors",
    "govheal.fsmode",
    "govheal.matchers",
    "govheal.governance",
    "govheal.governance.defaults",
    "govheal.governance.effective",
    "govheal.governance.recurrence",
    "govheal.governance.schedule",
    "govheal.governance.service",
    "govheal.governance.silences",
    "govheal.names",
    "govheal.net",
    "govheal.probe",
    "govheal.procs",
    "govheal.resources",
    "govheal.slots",
    "govheal.state",
    "govheal.store",
    "govheal.serving",
    "govheal.supervise",
    "govheal.switches",
    "govheal.tools",
    "govheal.types",
    "govheal.yamlpos",
}
# The components: stand on the base, never on the top.
MIDDLE = ("exporter", "remediator", "webhook_receiver")
# The top floor of govheal/: the CLI, `govheal up` and its starter, commands; may import anything but
# bench/ and tests/. govheal.testing (fakes shared by tests and benchmarks) counts as top.
TOP = {
    "govheal.__main__",
    "govheal.cli",
    "govheal.chain",
    "govheal.demo_agent",
    "govheal.grafana",
    "govheal.seams",  # the composition root: hands the registries of the components to the base config
    "govheal.stack",
}
TOP_PACKAGES = ("govheal.commands", "govheal.dashboards", "govheal.deploy", "govheal.report", "govheal.testing")
PACKAGES = ("govheal", *MIDDLE, "bench")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "bundled" not in path.parts:
                found[module_name(path)] = path
    return found


MODULES = modules()


def imports(name: str, path: Path) -> set[str]:
    """The modules ``name`` imports (absolute; ``from pkg import mod`` counts as pkg.mod when it is one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            out.add(target)
            out |= {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES}
    return {m for m in out if m.split(".")[0] in (*PACKAGES, "tests")}


GRAPH = {name: imports(name, path) for name, path in MODULES.items()}


def floor(name: str) -> str:
    if name in BASE:
        return "base"
    if name in TOP or name.startswith(tuple(p + "." for p in TOP_PACKAGES)) or name in TOP_PACKAGES:
        return "top"
    root = name.split(".")[0]
    if root in MIDDLE:
        return "middle"
    if root in ("bench", "tests"):
        return root
    return "unlisted"


def test_every_govheal_module_is_on_a_floor():
    unlisted = sorted(m for m in MODULES if floor(m) == "unlisted")
    assert unlisted == [], f"add each to BASE or TOP in tests/test_layers.py: {unlisted}"


def test_the_base_imports_only_the_base():
    upward = sorted(f"{m} imports {i}" for m in MODULES if floor(m) == "base" for i in GRAPH[m]
                    if (i in MODULES and floor(i) != "base") or i.split(".")[0] in ("tests", "bench"))
    assert upward == [], "the base floor must not import upward:\n" + "\n".join(upward)


def test_components_never_import_the_top_floor():
    upward = sorted(f"{m} imports {i}" for m in MODULES if floor(m) == "middle" for i in GRAPH[m]
                    if floor(i) in ("top", "bench", "tests"))
    assert upward == [], "exporter/remediator/webhook_receiver must not import the CLI, up or tests:\n" + \
        "\n".join(upward)


def test_nothing_in_the_package_imports_bench_or_tests_and_bench_imports_no_tests():
    bad = sorted(f"{m} imports {i}" for m in MODULES for i in GRAPH[m]
                 if i.split(".")[0] == "tests" or (i.split(".")[0] == "bench" and floor(m) != "bench"))
    assert bad == [], "\n".join(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def package_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Module → imported modules, ignoring a package importing its own submodules (``__init__`` re-exports)."""
    return {m: {i for i in deps if not i.startswith(m + ".")} for m, deps in graph.items()}


def test_no_import_cycles():
    found = cycles(package_edges(GRAPH))
    assert found == [], "import cycles (break one link each):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_walker_sees_what_it_must():
    """The checks above can fail: the walker finds lazy imports, relative imports and `from pkg import mod`."""
    assert "govheal.resources" in GRAPH["govheal.config.load"], "a function-level import"
    assert "govheal.chain" in GRAPH["govheal.stack"], "from govheal import chain"
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert floor("govheal.stack") == "top" and floor("govheal.config") == "base" and floor("exporter.cli") == "middle"


# -- one client speaks HTTP to Prometheus and Alertmanager -----------------------------------------

API_PATHS = ("/api/v1/", "/api/v2/", "/-/ready", "/-/healthy", "/-/reload")
# the client itself, and the tests of the client (they assert on its requests and messages)
MAY_NAME_THE_API = {"govheal/client.py", "tests/test_client.py", "tests/test_client_live.py", "tests/test_layers.py"}


def code_strings(path: Path) -> list[tuple[int, str]]:
    """String constants in code (docstrings excluded: prose may name an endpoint)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_only_the_client_names_the_prometheus_and_alertmanager_apis():
    files = [p for p in MODULES.values()] + sorted((REPO / "tests").rglob("*.py"))
    found = sorted(f"{p.relative_to(REPO)}:{line}: {text!r}" for p in files
                   if str(p.relative_to(REPO)) not in MAY_NAME_THE_API
                   for line, text in code_strings(p) if any(api in text for api in API_PATHS))
    assert found == [], "speak to Prometheus/Alertmanager through govheal/client.py:\n" + "\n".join(found)
    assert any("/api/v2/silences" in t for _, t in code_strings(REPO / "govheal" / "client.py")), "the scan works"
