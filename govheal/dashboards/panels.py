"""One function per panel type: the options each visualisation needs, with our defaults.

Option names follow the panels' schemas in Grafana (public/app/plugins/panel/*/panelcfg.cue).
"""

from __future__ import annotations

from govheal.dashboards.model import (
    Color,
    Link,
    Override,
    Panel,
    PanelType,
    State,
    Step,
    Target,
    Thresholds,
    Unit,
    mappings_json,
)

_REDUCE_LAST = {"calcs": ["lastNotNull"], "fields": "", "values": False}
_LEGEND = {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []}
_TOOLTIP = {"mode": "multi", "sort": "desc"}


def stat(title: str, description: str, targets: tuple[Target, ...], unit: Unit, *, width: int = 6,
         height: int = 4, thresholds: Thresholds | None = None, states: tuple[State, ...] = (),
         text_mode: str = "value", decimals: int | None = None, no_value: str = "",
         links: tuple[Link, ...] = ()) -> Panel:
    """The current value, its background coloured by thresholds or value mappings."""
    return Panel(PanelType.STAT, title, description, targets, unit, width, height,
                 options={"reduceOptions": _REDUCE_LAST, "colorMode": "background", "graphMode": "none",
                          "justifyMode": "auto", "textMode": text_mode, "orientation": "auto",
                          "wideLayout": True, "showPercentChange": False},
                 thresholds=thresholds or Thresholds((Step(Color.GREEN, None),)), states=states,
                 decimals=decimals, no_value=no_value, links=links)


def timeseries(title: str, description: str, targets: tuple[Target, ...], unit: Unit, *, width: int = 12,
               height: int = 8, bound: Thresholds | None = None, bars: bool = False, stack: bool = False,
               min: float | None = 0, decimals: int | None = None, links: tuple[Link, ...] = ()) -> Panel:
    """Lines (or bars) over time; ``bound`` is drawn as a dashed threshold line."""
    custom = {"drawStyle": "bars" if bars else "line", "lineWidth": 1, "fillOpacity": 60 if bars else 10,
              "showPoints": "never", "spanNulls": False, "lineInterpolation": "linear",
              "stacking": {"mode": "normal" if stack else "none", "group": "A"},
              "thresholdsStyle": {"mode": "dashed" if bound else "off"}}
    return Panel(PanelType.TIMESERIES, title, description, targets, unit, width, height,
                 options={"legend": _LEGEND, "tooltip": _TOOLTIP}, custom=custom,
                 thresholds=bound or Thresholds((Step(Color.GREEN, None),)),
                 color_mode="palette-classic", min=min, decimals=decimals, links=links)


def state_timeline(title: str, description: str, targets: tuple[Target, ...], states: tuple[State, ...], *,
                   width: int = 24, height: int = 8, unit: Unit = Unit.NONE, links: tuple[Link, ...] = ()) -> Panel:
    """One band per series, coloured by the state its value maps to."""
    return Panel(PanelType.STATE_TIMELINE, title, description, targets, unit, width, height,
                 options={"mergeValues": True, "showValue": "auto", "alignValue": "left", "rowHeight": 0.9,
                          "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                          "tooltip": {"mode": "single", "sort": "none"}},
                 custom={"fillOpacity": 70, "lineWidth": 0}, states=states,
                 thresholds=Thresholds((Step(Color.GREEN, None),)), links=links)


def bargauge(title: str, description: str, targets: tuple[Target, ...], unit: Unit, thresholds: Thresholds, *,
             width: int = 12, height: int = 8, min: float | None = None, max: float | None = None,
             decimals: int | None = None, links: tuple[Link, ...] = ()) -> Panel:
    """One horizontal bar per series (current value), coloured by thresholds."""
    return Panel(PanelType.BARGAUGE, title, description, targets, unit, width, height,
                 options={"reduceOptions": _REDUCE_LAST, "orientation": "horizontal", "displayMode": "basic",
                          "showUnfilled": True, "valueMode": "color", "namePlacement": "left", "sizing": "auto",
                          "minVizHeight": 16, "minVizWidth": 8, "maxVizHeight": 300},
                 thresholds=thresholds, min=min, max=max, decimals=decimals, links=links)


def table(title: str, description: str, targets: tuple[Target, ...], columns: dict[str, str],
          units: dict[str, Unit], states: dict[str, tuple[State, ...]], *, width: int = 24, height: int = 8,
          links: tuple[Link, ...] = ()) -> Panel:
    """Instant queries as one table: the queries' rows merged on their labels.

    ``columns`` renames fields (``"Value #A": "Up"``; labels by their name) and fixes their order;
    ``units`` gives every value column its unit, ``states`` its value mappings (a coloured cell).
    """
    overrides = []
    for field_name in columns:
        props: list[tuple[str, object]] = []
        if field_name in units:
            props.append(("unit", units[field_name].value))
        if field_name in states:
            props += [("mappings", mappings_json(states[field_name])),
                      ("custom.cellOptions", {"type": "color-background", "mode": "basic"})]
        if props:
            overrides.append(Override(("byName", field_name), tuple(props)))
    organize = {"id": "organize", "options": {
        "excludeByName": {"Time": True},
        "indexByName": {name: i for i, name in enumerate(columns)},
        "renameByName": columns}}
    return Panel(PanelType.TABLE, title, description, targets, Unit.SHORT, width, height,
                 options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"]}},
                 custom={"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True},
                 overrides=tuple(overrides), transformations=({"id": "merge", "options": {}}, organize),
                 thresholds=Thresholds((Step(Color.GREEN, None),)), links=links)
