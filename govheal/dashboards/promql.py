"""PromQL built from :mod:`govheal.names`, with the board's variables as matchers on every selector.

A selector names a :class:`~govheal.names.Series`, never a bare string, so a renamed metric breaks the
generator (and its tests) instead of a panel. Matching on a label the series does not carry raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from govheal import names
from govheal.names import Series

RATE_INTERVAL = "$__rate_interval"


@dataclass(frozen=True)
class Not:
    """A negative matcher value: ``label!="v"`` (or ``!~"a|b"`` for a tuple)."""

    value: str | tuple[str, ...]


Value = str | tuple[str, ...] | Not


@dataclass(frozen=True)
class Scope:
    """The labels that have a dashboard variable of the same name (node, agent, role, channel)."""

    variables: tuple[str, ...]

    def sel(self, series: Series, suffix: str = "", **match: Value) -> str:
        """``name{var=~"$var" for each variable the series carries, label="v" / label=~"a|b"}``."""
        name = series.name
        if suffix:
            name = getattr(series, suffix)  # bucket / sum / count of a histogram
        parts = [f'{label}=~"${label}"' for label in self.variables if label in series.labels]
        for label, value in match.items():
            if label not in series.labels:
                raise ValueError(f"{series.name} has no label {label!r} (labels: {', '.join(series.labels)})")
            negative = isinstance(value, Not)
            raw = value.value if isinstance(value, Not) else value
            if isinstance(raw, tuple):
                text, op = "|".join(raw), "!~" if negative else "=~"
            else:
                text, op = raw, "!=" if negative else "="
            parts.append(f'{label}{op}"{text}"')
        return name + "{" + ", ".join(parts) + "}"

    def in_role(self, expr: str) -> str:
        """Keep only the agents of the selected roles (role lives on govheal_agent_info)."""
        return f"({expr}) and on (agent, node) {self.sel(names.AGENT_INFO)}"


def rate(selector: str, window: str = RATE_INTERVAL) -> str:
    return f"rate({selector}[{window}])"


def increase(selector: str, window: str = RATE_INTERVAL) -> str:
    return f"increase({selector}[{window}])"


def by(labels: tuple[str, ...] | str, op: str, expr: str) -> str:
    labels = (labels,) if isinstance(labels, str) else labels
    return f"{op} by ({', '.join(labels)}) ({expr})"


def quantile(q: float, buckets_rate: str, labels: tuple[str, ...] = ()) -> str:
    return f"histogram_quantile({q}, {by(('le', *labels), 'sum', buckets_rate)})"
