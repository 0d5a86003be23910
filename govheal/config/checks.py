"""Rules across agents (unique names, ``depends_on`` targets and cycles, fallback and channel agents),
checked on the raw data so they are reported beside the field errors."""

from __future__ import annotations

import difflib
from typing import Any

from govheal.config.problems import Problem, field_path
from govheal.yamlpos import line_for


def _cross_checks(data: dict[str, Any], file: str, lines: dict) -> list[Problem]:
    """Rules across agents, checked on the raw data so they are reported beside field errors."""
    problems: list[Problem] = []

    def add(loc: tuple[str | int, ...], msg: str) -> None:
        problems.append(Problem(file=file, line=line_for(lines, loc), field=field_path(loc), message=msg))

    agents = data.get("agents")
    if not isinstance(agents, list):
        return problems
    entries = [(i, a) for i, a in enumerate(agents) if isinstance(a, dict) and isinstance(a.get("name"), str)]
    names: dict[str, int] = {}
    for i, agent in entries:
        name = agent["name"]
        if name in names:
            add(("agents", i, "name"), f"duplicate agent name {name!r} (also agents[{names[name]}]); "
                "names must be unique")
        else:
            names[name] = i
    graph: dict[str, list[str]] = {}
    for i, agent in entries:
        deps = agent.get("depends_on") or []
        deps = deps if isinstance(deps, list) else []
        graph.setdefault(agent["name"], [])
        for j, dep in enumerate(deps):
            if not isinstance(dep, str):
                continue
            if dep == agent["name"]:
                add(("agents", i, "depends_on", j), "an agent cannot depend on itself; remove it")
            elif dep not in names:
                close = difflib.get_close_matches(dep, list(names), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known agents: {', '.join(names)}"
                add(("agents", i, "depends_on", j), f"unknown agent {dep!r}; {hint}")
            else:
                graph[agent["name"]].append(dep)
        fallback = agent.get("fallback")
        fb = fallback.get("agent") if isinstance(fallback, dict) else None
        if isinstance(fb, str):
            if fb == agent["name"]:
                add(("agents", i, "fallback", "agent"), "an agent cannot be its own fallback")
            elif fb not in names:
                add(("agents", i, "fallback", "agent"), f"unknown agent {fb!r}; known agents: {', '.join(names)}")
    channels = data.get("notifications", {}).get("channels") if isinstance(data.get("notifications"), dict) else None
    for ch_name, ch in (channels or {}).items() if isinstance(channels, dict) else ():
        wanted = ch.get("agents") if isinstance(ch, dict) else None
        for j, name in enumerate(wanted if isinstance(wanted, list) else []):
            if isinstance(name, str) and name not in names:
                add(("notifications", "channels", ch_name, "agents", j),
                    f"unknown agent {name!r}; known agents: {', '.join(names)}")
    cycle = _find_cycle(graph)
    if cycle:
        add(("agents", names[cycle[0]], "depends_on"),
            f"depends_on cycle: {' → '.join([*cycle, cycle[0]])}; break one of the links")
    return problems


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        color[n] = grey
        stack.append(n)
        for m in graph.get(n, []):
            if color[m] == grey:
                return stack[stack.index(m):]
            if color[m] == white and (found := visit(m)):
                return found
        stack.pop()
        color[n] = black
        return None

    for node in graph:
        if color[node] == white and (found := visit(node)):
            return found
    return None
