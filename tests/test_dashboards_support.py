"""Shared by the dashboard tests: the committed boards, their panels and queries, PromQL walking.

Queries are parsed with a real PromQL parser (promql-parser, a Rust port of Prometheus's parser), after
replacing Grafana's own variables outside quotes the way grafana/dashboard-linter does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import promql_parser as pp

from govheal.resources import grafana_dashboards_dir

# Like grafana/dashboard-linter: Grafana's interval variables become durations nobody writes by hand, so
# a range equal to RATE_INTERVAL_MAGIC in the parsed query means "$__rate_interval was used here".
# (The linter's millisecond values overflow this parser; these are whole seconds.)
RATE_INTERVAL_MAGIC = "8869990s"
MAGIC = timedelta(seconds=8869990)
GLOBALS = {"__rate_interval": RATE_INTERVAL_MAGIC, "__interval": "4867856s", "__range": "6069770s",
           "__range_s": "9397795485", "__range_ms": "6737667980", "__interval_ms": "7781188786"}
_VAR = re.compile(r"\$(\w+)|\$\{([^}]+)\}|\[\[([^\[\]]+)\]\]")


def boards() -> dict[str, dict[str, Any]]:
    """file name → the committed dashboard JSON."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(grafana_dashboards_dir().glob("*.json"))}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that shows data (rows left out), nested ones included."""
    out = []
    for p in board["panels"]:
        if p["type"] == "row":
            out += p.get("panels", [])
        else:
            out.append(p)
    return out


@dataclass(frozen=True)
class Query:
    board: str
    panel: dict[str, Any]
    target: dict[str, Any]

    @property
    def expr(self) -> str:
        return self.target["expr"]

    @property
    def id(self) -> str:
        return f"{self.board}:{self.panel['title']}:{self.target['refId']}"


def queries() -> list[Query]:
    return [Query(name, p, t) for name, b in boards().items() for p in panels(b) for t in p.get("targets", [])]


def expand(expr: str, values: dict[str, str] | None = None) -> str:
    """Replace $var / ${var} / [[var]] outside double-quoted strings (inside them they are regexes)."""
    table = {**GLOBALS, **(values or {})}
    parts = expr.split('"')
    for i in range(0, len(parts), 2):
        parts[i] = _VAR.sub(lambda m: table.get(next(g for g in m.groups() if g), m.group(0)), parts[i])
    return '"'.join(parts)


def parse(expr: str) -> Any:
    return pp.parse(expand(expr))


def children(node: Any) -> list[Any]:
    if isinstance(node, pp.AggregateExpr):
        return [node.expr] + ([node.param] if isinstance(node.param, pp.Expr) else [])
    if isinstance(node, pp.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, pp.UnaryExpr | pp.ParenExpr | pp.SubqueryExpr):
        return [node.expr]
    if isinstance(node, pp.Call):
        return list(node.args)
    if isinstance(node, pp.MatrixSelector):
        return [node.vector_selector]
    return []


def walk(node: Any, parents: tuple[Any, ...] = ()) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """Every node with its ancestors (nearest last), depth first."""
    yield node, parents
    for child in children(node):
        yield from walk(child, (*parents, node))


def selectors(expr: str) -> list[Any]:
    return [n for n, _ in walk(parse(expr)) if isinstance(n, pp.VectorSelector)]


def grouping_labels(expr: str) -> set[str]:
    """Labels named in by (...), on (...)/ignoring (...) and group_left/right (...)."""
    out: set[str] = set()
    for node, _ in walk(parse(expr)):
        if isinstance(node, pp.AggregateExpr) and node.modifier is not None:
            out |= set(node.modifier.labels)
        if isinstance(node, pp.BinaryExpr) and node.modifier is not None:
            if node.modifier.matching is not None:
                out |= set(node.modifier.matching.labels)
            out |= set(node.modifier.group_labels or ())
    return out


def base_name(metric: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", metric)
