"""A typed model of the small part of Grafana's dashboard JSON ("View JSON" model, schema v1) we use.

Each class renders exactly the keys it sets (``to_json``), so the committed JSON stays small and diffs
read well. Field names follow Grafana's dashboard schema (kinds/dashboard, the panels' panelcfg.cue).
Layout is computed: a :class:`Row` places its panels left to right on the 24-column grid and wraps,
so panels cannot overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Grafana >= 12 writes schemaVersion 42 (the last schema version of the v1 dashboard API); older
# releases load it unchanged (nothing here uses what versions 41-42 migrate) and newer ones migrate it.
SCHEMA_VERSION = 42
GRID_COLUMNS = 24

Json = dict[str, Any]


@dataclass(frozen=True)
class DataSource:
    type: str
    uid: str

    def to_json(self) -> Json:
        return {"type": self.type, "uid": self.uid}


# Fixed uids: grafana/provisioning/datasources/govheal.yaml creates the datasources with these.
PROMETHEUS = DataSource("prometheus", "govheal-prometheus")
ALERTMANAGER = DataSource("alertmanager", "govheal-alertmanager")


class PanelType(StrEnum):
    """Panel plugins we use: current, non-deprecated ones only (no graph, singlestat, table-old)."""

    TIMESERIES = "timeseries"
    STAT = "stat"
    STATE_TIMELINE = "state-timeline"
    TABLE = "table"
    BARGAUGE = "bargauge"
    ROW = "row"


class Unit(StrEnum):
    """Grafana unit ids (packages/grafana-data/src/valueFormats/categories.ts) the boards use."""

    NONE = "none"            # a plain number (with value mappings: a state)
    SHORT = "short"          # a count
    PERCENT_UNIT = "percentunit"
    SECONDS = "s"
    PER_MINUTE = "cpm"
    BOOL_YES_NO = "bool_yes_no"


class Color(StrEnum):
    GREEN = "green"
    ORANGE = "orange"
    RED = "red"
    BLUE = "blue"
    TEXT = "text"


@dataclass(frozen=True)
class Step:
    color: Color
    value: float | None  # None: from -infinity


@dataclass(frozen=True)
class Thresholds:
    steps: tuple[Step, ...]

    def to_json(self) -> Json:
        return {"mode": "absolute", "steps": [{"color": s.color.value, "value": s.value} for s in self.steps]}

    @staticmethod
    def good_above(bound: float) -> Thresholds:
        """Red below ``bound``, green from it on."""
        return Thresholds((Step(Color.RED, None), Step(Color.GREEN, bound)))

    @staticmethod
    def good_below(bound: float, warn: float | None = None) -> Thresholds:
        """Green below ``bound`` (orange from ``warn`` if given), red from ``bound`` on."""
        steps = [Step(Color.GREEN, None)]
        if warn is not None:
            steps.append(Step(Color.ORANGE, warn))
        steps.append(Step(Color.RED, bound))
        return Thresholds(tuple(steps))


@dataclass(frozen=True)
class State:
    """One value mapping: a number shown as a word in a colour."""

    value: int
    text: str
    color: Color


def mappings_json(states: tuple[State, ...]) -> list[Json]:
    if not states:
        return []
    return [{"type": "value", "options": {
        str(s.value): {"text": s.text, "color": s.color.value, "index": i} for i, s in enumerate(states)}}]


@dataclass(frozen=True)
class Link:
    """A link with a URL (dashboard link or panel link); Grafana expands ${variables} in it."""

    title: str
    url: str
    tooltip: str = ""

    def dashboard_json(self) -> Json:
        return {"title": self.title, "type": "link", "url": self.url, "tooltip": self.tooltip,
                "icon": "external link", "targetBlank": True, "asDropdown": False, "includeVars": False,
                "keepTime": False, "tags": []}

    def panel_json(self) -> Json:
        return {"title": self.title, "url": self.url, "targetBlank": True}


@dataclass(frozen=True)
class Target:
    """A Prometheus query. ``instant`` for the current value (stat, table), else a range query."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False  # format: table (one row per series, labels as columns)

    def to_json(self, ref_id: str) -> Json:
        out: Json = {"refId": ref_id, "datasource": PROMETHEUS.to_json(), "expr": self.expr,
                     "instant": self.instant, "range": not self.instant}
        if self.legend:
            out["legendFormat"] = self.legend
        if self.table:
            out["format"] = "table"
        return out


@dataclass(frozen=True)
class Override:
    """Properties for the fields of one query (by refId) or one column (by name)."""

    matcher: tuple[str, str]  # ("byFrameRefID" | "byName", value)
    properties: tuple[tuple[str, Any], ...]

    def to_json(self) -> Json:
        return {"matcher": {"id": self.matcher[0], "options": self.matcher[1]},
                "properties": [{"id": k, "value": v} for k, v in self.properties]}


@dataclass(frozen=True)
class Panel:
    """One visualisation. Build it with the per-type functions in :mod:`govheal.dashboards.panels`."""

    type: PanelType
    title: str
    description: str
    targets: tuple[Target, ...]
    unit: Unit
    width: int
    height: int
    options: Json = field(default_factory=dict)
    custom: Json = field(default_factory=dict)  # fieldConfig.defaults.custom
    thresholds: Thresholds | None = None
    states: tuple[State, ...] = ()
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    no_value: str = ""
    color_mode: str = "thresholds"
    overrides: tuple[Override, ...] = ()
    transformations: tuple[Json, ...] = ()
    links: tuple[Link, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.width <= GRID_COLUMNS:
            raise ValueError(f"panel {self.title!r}: width {self.width} outside 1..{GRID_COLUMNS}")
        if self.type is not PanelType.ROW and not (self.targets and self.description):
            raise ValueError(f"panel {self.title!r}: needs at least one query and a description")

    def to_json(self, panel_id: int, x: int, y: int) -> Json:
        defaults: Json = {"unit": self.unit.value, "color": {"mode": self.color_mode}}
        if self.thresholds:
            defaults["thresholds"] = self.thresholds.to_json()
        if self.states:
            defaults["mappings"] = mappings_json(self.states)
        for key, value in (("min", self.min), ("max", self.max), ("decimals", self.decimals)):
            if value is not None:
                defaults[key] = value
        if self.no_value:
            defaults["noValue"] = self.no_value
        if self.custom:
            defaults["custom"] = self.custom
        out: Json = {
            "id": panel_id, "type": self.type.value, "title": self.title, "description": self.description,
            "datasource": PROMETHEUS.to_json(),
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "targets": [t.to_json(chr(ord("A") + i)) for i, t in enumerate(self.targets)],
            "fieldConfig": {"defaults": defaults, "overrides": [o.to_json() for o in self.overrides]},
            "options": self.options,
        }
        if self.transformations:
            out["transformations"] = list(self.transformations)
        if self.links:
            out["links"] = [link.panel_json() for link in self.links]
        return out


@dataclass(frozen=True)
class Row:
    """A titled row of panels; panels flow left to right and wrap at 24 columns."""

    title: str
    panels: tuple[Panel, ...]


class VariableKind(StrEnum):
    QUERY = "query"
    TEXTBOX = "textbox"


@dataclass(frozen=True)
class Variable:
    """A template variable: a Prometheus label-values query (multi, All = .+), or a hidden textbox."""

    name: str
    label: str
    kind: VariableKind
    query: str  # label_values(...) for a query variable, the default value for a textbox
    description: str = ""

    def to_json(self) -> Json:
        if self.kind is VariableKind.TEXTBOX:
            return {"name": self.name, "label": self.label, "type": "textbox", "description": self.description,
                    "query": self.query, "current": {"text": self.query, "value": self.query},
                    "options": [{"selected": True, "text": self.query, "value": self.query}], "hide": 2}
        return {"name": self.name, "label": self.label, "type": "query", "description": self.description,
                "datasource": PROMETHEUS.to_json(),
                "query": {"query": self.query, "refId": "PrometheusVariableQueryEditor-VariableQuery",
                          "qryType": 1},
                "definition": self.query, "refresh": 2, "multi": True, "includeAll": True, "allValue": ".+",
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "options": [], "sort": 1, "regex": "", "hide": 0}


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    tags: tuple[str, ...]
    variables: tuple[Variable, ...]
    rows: tuple[Row, ...]
    links: tuple[Link, ...] = ()
    refresh: str = "30s"
    time_from: str = "now-6h"

    def layout(self) -> list[Json]:
        """Every panel with its id and grid position: rows top to bottom, panels flowing in a row."""
        panels: list[Json] = []
        y, next_id = 0, 1
        for row in self.rows:
            panels.append({"id": next_id, "type": PanelType.ROW.value, "title": row.title, "collapsed": False,
                           "gridPos": {"x": 0, "y": y, "w": GRID_COLUMNS, "h": 1}, "panels": []})
            next_id += 1
            y += 1
            x, line_height = 0, 0
            for panel in row.panels:
                if x + panel.width > GRID_COLUMNS:
                    x, y, line_height = 0, y + line_height, 0
                panels.append(panel.to_json(next_id, x, y))
                next_id += 1
                x += panel.width
                line_height = max(line_height, panel.height)
            y += line_height
        return panels

    def to_json(self) -> Json:
        return {
            "id": None, "uid": self.uid, "title": self.title, "description": self.description,
            "tags": list(self.tags), "timezone": "browser", "editable": False, "graphTooltip": 1,
            "schemaVersion": SCHEMA_VERSION, "version": 1, "refresh": self.refresh,
            "time": {"from": self.time_from, "to": "now"}, "timepicker": {}, "fiscalYearStartMonth": 0,
            "liveNow": False, "weekStart": "",
            "links": [link.dashboard_json() for link in self.links],
            "annotations": {"list": [{
                "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
                "type": "dashboard"}]},
            "templating": {"list": [v.to_json() for v in self.variables]},
            "panels": self.layout(),
        }
