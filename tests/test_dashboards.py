"""The Grafana boards and their provisioning, tested as JSON/YAML (Grafana itself is not installable here).

- structure: uid/title, fixed datasource uids, grid, units, descriptions, links, variables;
- every rule of grafana/dashboard-linter (lint/rules.go), each as a check below; none is switched off;
- the committed JSON is what the generator writes;
- every metric and label a query uses is in govheal/names.py, docs/metrics.md and real output;
- the provisioning files match Grafana's provisioning schema.
The queries themselves run against a live stack in tests/test_dashboards_live.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Literal

import promql_parser as pp
import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from govheal import grafana, names, resources
from govheal.dashboards import BOARDS, model, rendered, stale, write
from govheal.dashboards import __main__ as cli
from govheal.names import Source
from tests.conftest import require_binary
from tests.test_dashboards_support import (
    MAGIC,
    Query,
    base_name,
    boards,
    expand,
    grouping_labels,
    panels,
    parse,
    queries,
    selectors,
    walk,
)

REPO = Path(__file__).resolve().parent.parent
DOCS_METRICS = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
BOARDS_JSON = boards()
QUERIES = queries()
DATA_PANELS = [(name, p) for name, b in BOARDS_JSON.items() for p in panels(b)]
ALLOWED_PANEL_TYPES = {t.value for t in model.PanelType} - {"row"}
DEPRECATED_PANEL_TYPES = {"graph", "singlestat", "table-old", "grafana-singlestat-panel", "grafana-piechart-panel"}

# Grafana's unit ids (packages/grafana-data/src/valueFormats/categories.ts): the categories a govheal
# board can mean. An id not here is a typo Grafana would show as a bare number.
VALID_UNITS = {
    "none", "string", "short", "percent", "percentunit", "humidity", "dB", "hex0x", "hex", "sci", "locale",
    "bytes", "decbytes", "bits", "decbits", "kbytes", "deckbytes", "mbytes", "decmbytes", "gbytes", "decgbytes",
    "pps", "binBps", "Bps", "binbps", "bps",
    "dateTimeAsIso", "dateTimeAsIsoNoDateIfToday", "dateTimeAsUS", "dateTimeAsUSNoDateIfToday",
    "dateTimeAsLocal", "dateTimeAsLocalNoDateIfToday", "dateTimeAsSystem", "dateTimeFromNow",
    "hertz", "ns", "µs", "ms", "s", "m", "h", "d", "dtdurationms", "dtdurations", "dthms", "dtdhms", "timeticks",
    "clockms", "clocks",
    "cps", "ops", "reqps", "rps", "wps", "iops", "cpm", "opm", "rpm", "wpm", "mps", "mpm",
    "bool", "bool_yes_no", "bool_on_off",
}

# Each rule of grafana/dashboard-linter (lint/rules.go, NewRuleSet) and the check below that enforces it.
# Three rules assume a dashboard shared between Grafanas with a *templated* datasource and job/instance
# variables; govheal's boards use fixed datasource uids (issue 10) and identify agents by node/agent,
# so those checks enforce the same intent in that form (named "adapted").
LINT_RULES = {
    "template-datasource-rule": "adapted: test_lint_panel_and_template_datasource_is_the_fixed_uid",
    "template-job-rule": "adapted: test_lint_template_node_and_agent_variables (node: on every series)",
    "template-instance-rule": "adapted: test_lint_template_node_and_agent_variables (agent/channel)",
    "template-label-promql-rule": "test_lint_template_label_promql",
    "template-on-time-change-reload-rule": "test_lint_template_on_time_change_reload",
    "panel-datasource-rule": "adapted: test_lint_panel_and_template_datasource_is_the_fixed_uid",
    "panel-title-description-rule": "test_lint_panel_title_description",
    "panel-units-rule": "test_lint_panel_units (stricter: every panel, mappings included)",
    "panel-no-targets-rule": "test_lint_panel_no_targets",
    "target-logql-rule": "test_lint_no_loki_targets (no Loki datasource: nothing to parse as LogQL)",
    "target-logql-auto-rule": "test_lint_no_loki_targets",
    "target-promql-rule": "test_lint_target_promql (parser) and test_every_query_passes_promtool",
    "target-rate-interval-rule": "test_lint_target_rate_interval",
    "target-job-rule": "adapted: test_lint_target_has_node_and_agent_matchers (node)",
    "target-instance-rule": "adapted: test_lint_target_has_node_and_agent_matchers (agent/channel)",
    "target-counter-agg-rule": "test_lint_target_counter_agg",
    "uneditable-dashboard": "test_lint_uneditable_dashboard",
}
UPSTREAM_RULES = {  # grafana/dashboard-linter 4d0844b, lint/rules.go
    "template-datasource-rule", "template-job-rule", "template-instance-rule", "template-label-promql-rule",
    "template-on-time-change-reload-rule", "panel-datasource-rule", "panel-title-description-rule",
    "panel-units-rule", "panel-no-targets-rule", "target-logql-rule", "target-logql-auto-rule",
    "target-promql-rule", "target-rate-interval-rule", "target-job-rule", "target-instance-rule",
    "target-counter-agg-rule", "uneditable-dashboard",
}

# The variable that scopes each board's per-agent (or per-channel) series, besides node.
SCOPE_VARIABLES = {"govheal-governance.json": ("node", "role", "agent"),
                   "govheal-alert-bridge.json": ("node", "channel")}


def qid(q: Query) -> str:
    return q.id


# -- generation -----------------------------------------------------------------------------------------


def test_the_committed_boards_are_what_the_generator_writes():
    assert stale(resources.grafana_dashboards_dir()) == [], "run: python -m govheal.dashboards"
    assert sorted(BOARDS_JSON) == sorted(f"{name}.json" for name in BOARDS)


def test_the_regeneration_check_fails_on_a_hand_edit(tmp_path, capsys):
    write(tmp_path)
    assert cli.main(["--check", "--out", str(tmp_path)]) == 0
    board = tmp_path / "govheal-governance.json"
    board.write_text(board.read_text().replace('"Role map"', '"Role map (edited)"'))
    (tmp_path / "stray.json").write_text("{}")
    assert cli.main(["--check", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "govheal-governance.json: differs from the generator" in out and "stray.json" in out
    assert cli.main(["--out", str(tmp_path)]) == 0 and stale(tmp_path) == ["stray.json"]


def test_generation_is_deterministic():
    assert rendered() == rendered()


# -- structure ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BOARDS_JSON))
def test_board_is_a_view_json_model_with_a_stable_uid(name):
    board = BOARDS_JSON[name]
    text = (resources.grafana_dashboards_dir() / name).read_text()
    assert board["uid"] == name.removesuffix(".json")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
    assert board["title"] and board["id"] is None
    assert board["schemaVersion"] == model.SCHEMA_VERSION
    assert "__inputs" not in board and "__requires" not in board and "${DS_" not in text
    assert board["tags"] == ["govheal"]


def test_uids_and_titles_are_unique_across_boards():
    uids = [b["uid"] for b in BOARDS_JSON.values()]
    titles = [b["title"] for b in BOARDS_JSON.values()]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)


@pytest.mark.parametrize("name", sorted(BOARDS_JSON))
def test_only_current_panel_types(name):
    types = {p["type"] for p in BOARDS_JSON[name]["panels"]}
    assert types - {"row"} <= ALLOWED_PANEL_TYPES
    assert not types & DEPRECATED_PANEL_TYPES


def grid_problems(board_panels: list[dict[str, Any]]) -> list[str]:
    """Panels outside the 24-column grid or sharing a cell with another."""
    problems, taken = [], {}
    for p in board_panels:
        g = p["gridPos"]
        if g["x"] < 0 or g["w"] < 1 or g["x"] + g["w"] > 24 or g["h"] < 1:
            problems.append(f"{p['title']!r} outside the grid: {g}")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in taken:
                    problems.append(f"{p['title']!r} overlaps {taken[(x, y)]!r} at ({x}, {y})")
                taken[(x, y)] = p["title"]
    return problems


@pytest.mark.parametrize("name", sorted(BOARDS_JSON))
def test_panels_do_not_overlap_and_fit_the_grid(name):
    ids = [p["id"] for p in BOARDS_JSON[name]["panels"]]
    assert len(set(ids)) == len(ids), "panel ids are unique"
    assert grid_problems(BOARDS_JSON[name]["panels"]) == []


def test_the_grid_check_can_fail():
    a = {"title": "a", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 4}}
    b = {"title": "b", "gridPos": {"x": 6, "y": 2, "w": 12, "h": 4}}
    c = {"title": "c", "gridPos": {"x": 20, "y": 9, "w": 6, "h": 1}}
    problems = grid_problems([a, b, c])
    assert problems[0] == "'b' overlaps 'a' at (6, 2)" and "'c' outside the grid" in problems[-1]


@pytest.mark.parametrize("name,panel", DATA_PANELS, ids=lambda v: v["title"] if isinstance(v, dict) else v)
def test_every_numeric_column_of_a_table_has_a_unit(name, panel):
    if panel["type"] != "table":
        return
    units = {o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]
             if o["matcher"]["id"] == "byName" and any(p["id"] == "unit" for p in o["properties"])}
    values = {f"Value #{t['refId']}" for t in panel["targets"]}
    assert values <= units, f"value columns without a unit: {values - units}"


@pytest.mark.parametrize("name,panel", DATA_PANELS, ids=lambda v: v["title"] if isinstance(v, dict) else v)
def test_description_says_what_to_do(name, panel):
    verbs = r"\b(see|check|open|fix|read|find|enable|look|compare|is needed|expected|nothing to do)\b"
    assert re.search(verbs, panel["description"], flags=re.I), f"{panel['title']}: say what to do when red"


@pytest.mark.parametrize("name", sorted(BOARDS_JSON))
def test_links_to_the_governance_page_alertmanager_and_runbooks(name):
    urls = [link["url"] for link in BOARDS_JSON[name]["links"]]
    assert "${receiver_url}/ops/governance" in urls
    assert "${alertmanager_url}/#/alerts" in urls and "${alertmanager_url}/#/silences" in urls
    assert "${runbook_base_url}docs/runbooks.md" in urls
    variables = {v["name"]: v for v in BOARDS_JSON[name]["templating"]["list"]}
    for var in ("receiver_url", "alertmanager_url", "runbook_base_url"):
        assert variables[var]["type"] == "textbox" and variables[var]["hide"] == 2


def test_panel_runbook_links_point_at_existing_runbook_headings():
    text = (REPO / "docs" / "runbooks.md").read_text()
    anchors = {re.sub(r"[^a-z0-9-]", "", h.strip().lower().replace(" ", "-"))
               for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    seen = 0
    for _, panel in DATA_PANELS:
        for link in panel.get("links", []):
            assert link["url"].startswith("${runbook_base_url}docs/runbooks.md#")
            assert link["url"].split("#", 1)[1] in anchors, link
            seen += 1
    assert seen >= 5


def test_governance_board_has_node_role_and_agent_variables():
    variables = [v["name"] for v in BOARDS_JSON["govheal-governance.json"]["templating"]["list"]
                 if v["type"] == "query"]
    assert variables == ["node", "role", "agent"]


def test_governance_board_has_what_issue_10_lists():
    titles = " | ".join(p["title"] for _, p in DATA_PANELS)
    for wanted in ("Role map", "Agents down", "Uptime history", "Availability 24 h", "Availability 7 d",
                   "maintenance left out", "Restarts by govheal", "Heal success", "Time to recover",
                   "Circuit state", "Switches and silences", "Remediation outcomes", "UI latency",
                   "Alert delivery", "No unplanned downtime", "Daily report verified",
                   "Delivery latency", "Outbox depth", "Oldest queued notice", "failures", "Degraded channels",
                   "Watchdog last seen", "Dead-man's switch"):
        assert wanted.lower() in titles.lower(), wanted
    history = next(p for _, p in DATA_PANELS if p["title"] == "Uptime history")
    assert history["type"] == "state-timeline"
    criteria = [p for p in BOARDS_JSON["govheal-governance.json"]["panels"] if 1 <= p["gridPos"]["y"] <= 4]
    assert len(criteria) == 5 and all(p["type"] == "stat" for p in criteria), "the five criteria come first"
    for p in criteria:
        steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert {s["color"] for s in steps} == {"green", "red"}, p["title"]


def test_every_panel_is_described_in_docs_dashboards():
    text = (REPO / "docs" / "dashboards.md").read_text(encoding="utf-8")
    missing = [p["title"] for _, p in DATA_PANELS if p["title"] not in text]
    assert missing == [], f"docs/dashboards.md does not explain: {missing}"


# -- grafana/dashboard-linter's rules ---------------------------------------------------------------------


def test_lint_rules_cover_every_upstream_rule():
    assert set(LINT_RULES) == UPSTREAM_RULES
    checks = {name for name in globals() if name.startswith("test_lint_")}
    for how in LINT_RULES.values():
        assert re.search(r"test_lint_\w+", how).group(0) in checks, how


@pytest.mark.parametrize("name", sorted(BOARDS_JSON))
def test_lint_uneditable_dashboard(name):
    assert BOARDS_JSON[name]["editable"] is False


@pytest.mark.parametrize("name", sorted(BOARDS_JSON))
def test_lint_panel_and_template_datasource_is_the_fixed_uid(name):
    fixed = model.PROMETHEUS.to_json()
    for panel in panels(BOARDS_JSON[name]):
        assert panel["datasource"] == fixed, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == fixed, (panel["title"], target["refId"])
    for var in BOARDS_JSON[name]["templating"]["list"]:
        assert var["type"] != "datasource", "fixed uids, no datasource variable"
        if var["type"] == "query":
            assert var["datasource"] == fixed, var["name"]


@pytest.mark.parametrize("name", sorted(BOARDS_JSON))
def test_lint_template_node_and_agent_variables(name):
    variables = {v["name"]: v for v in BOARDS_JSON[name]["templating"]["list"]}
    for var_name in SCOPE_VARIABLES[name]:
        var = variables[var_name]
        assert var["type"] == "query", var_name
        assert var["label"] == var_name.title()
        assert var["multi"] is True and var["includeAll"] is True
        assert var["allValue"] == ".+"


@pytest.mark.parametrize("name", sorted(BOARDS_JSON))
def test_lint_template_label_promql(name):
    for var in BOARDS_JSON[name]["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"]
        assert var["definition"] == query
        m = re.fullmatch(r"(label_values|label_names|metrics|query_result)\((.+?)(?:,\s*(\w+))?\)", query)
        assert m, f"{var['name']}: {query!r} is not a Prometheus variable query"
        nodes = [n for n, _ in walk(parse(m.group(2)))]
        assert nodes, query
        if m.group(1) == "label_values":
            selector = nodes[0]
            assert isinstance(selector, pp.VectorSelector) and m.group(3), query
            assert m.group(3) in names.BY_NAME[selector.name].labels, query
            assert names.BY_NAME[selector.name].pending == "", f"{query}: its metric does not exist yet"


@pytest.mark.parametrize("name", sorted(BOARDS_JSON))
def test_lint_template_on_time_change_reload(name):
    for var in BOARDS_JSON[name]["templating"]["list"]:
        if var["type"] == "query":
            assert var["refresh"] == 2, var["name"]


@pytest.mark.parametrize("name,panel", DATA_PANELS, ids=lambda v: v["title"] if isinstance(v, dict) else v)
def test_lint_panel_title_description(name, panel):
    assert panel["title"].strip() and len(panel["description"]) >= 40


@pytest.mark.parametrize("name,panel", DATA_PANELS, ids=lambda v: v["title"] if isinstance(v, dict) else v)
def test_lint_panel_units(name, panel):
    unit = panel["fieldConfig"]["defaults"].get("unit")
    assert unit in VALID_UNITS, f"{panel['title']}: unit {unit!r}"
    for override in panel["fieldConfig"]["overrides"]:
        for prop in override["properties"]:
            if prop["id"] == "unit":
                assert prop["value"] in VALID_UNITS, (panel["title"], prop)


@pytest.mark.parametrize("name,panel", DATA_PANELS, ids=lambda v: v["title"] if isinstance(v, dict) else v)
def test_lint_panel_no_targets(name, panel):
    assert panel["targets"], panel["title"]
    assert all(t["expr"].strip() for t in panel["targets"])
    assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_lint_no_loki_targets():
    for q in QUERIES:
        assert q.target["datasource"]["type"] == "prometheus", q.id


@pytest.mark.parametrize("query", QUERIES, ids=qid)
def test_lint_target_promql(query):
    parse(query.expr)  # raises on invalid PromQL


def test_the_promql_check_can_fail():
    with pytest.raises(ValueError):
        parse('sum(rate(govheal_notifications_total{node=~"$node"[$__rate_interval]))')


@pytest.mark.parametrize("query", QUERIES, ids=qid)
def test_lint_target_rate_interval(query):
    for node, parents in walk(parse(query.expr)):
        if not isinstance(node, pp.MatrixSelector):
            continue
        parent = parents[-1] if parents else None
        if node.range == MAGIC:
            assert isinstance(parent, pp.Call), f"{query.id}: $__rate_interval used outside a function"
        elif isinstance(parent, pp.Call) and parent.func.name in ("rate", "irate"):
            pytest.fail(f"{query.id}: {parent.func.name}() should use $__rate_interval: {query.expr}")


def counter_agg_errors(expr: str) -> list[str]:
    errors = []
    for node, parents in walk(parse(expr)):
        if isinstance(node, pp.VectorSelector) and (node.name or "").endswith("_total"):
            ok = (len(parents) >= 2 and isinstance(parents[-1], pp.MatrixSelector)
                  and isinstance(parents[-2], pp.Call) and parents[-2].func.name in ("rate", "irate", "increase"))
            if not ok:
                errors.append(node.name)
    return errors


@pytest.mark.parametrize("query", QUERIES, ids=qid)
def test_lint_target_counter_agg(query):
    assert counter_agg_errors(query.expr) == []


def test_the_counter_and_rate_checks_can_fail():
    assert counter_agg_errors('sum(govheal_remediations_total{node=~"$node"})') == ["govheal_remediations_total"]
    rate_5m = [n for n, _ in walk(parse("rate(x_total[5m])")) if isinstance(n, pp.MatrixSelector)]
    assert rate_5m[0].range != MAGIC


@pytest.mark.parametrize("query", QUERIES, ids=qid)
def test_lint_target_has_node_and_agent_matchers(query):
    for sel in selectors(query.expr):
        series = names.BY_NAME[base_name(sel.name)]
        matchers = {(m.name, m.value) for m in sel.matchers.matchers if str(m.op) == "MatchOp.Re"}
        for var in SCOPE_VARIABLES[query.board]:
            if var in series.labels:
                assert (var, f"${var}") in matchers, f"{query.id}: {sel.name} lacks {var}=~\"${var}\""
        assert names.NODE in series.labels, f"{sel.name}: every series is scoped by node"


# -- PromQL accepted by Prometheus 2.42 itself ----------------------------------------------------------


def test_every_query_passes_promtool(tmp_path):
    rules = [{"record": f"dashboard:query_{i}:check", "expr": expand(q.expr, {"__rate_interval": "1m"})}
             for i, q in enumerate(QUERIES)]
    for b in BOARDS_JSON.values():
        for var in b["templating"]["list"]:
            if var["type"] == "query":
                inner = re.fullmatch(r"\w+\((.+?)(?:,\s*\w+)?\)", var["query"]["query"]).group(1)
                rules.append({"record": f"dashboard:var_{var['name']}:check", "expr": inner})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run([require_binary("promtool"), "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


# -- names: one place, documented, emitted ------------------------------------------------------------


def used_series() -> dict[str, set[str]]:
    """series name → labels the queries use on it (matchers; by/on labels are checked separately)."""
    out: dict[str, set[str]] = {}
    for q in QUERIES:
        for sel in selectors(q.expr):
            labels = {m.name for m in sel.matchers.matchers}
            out.setdefault(base_name(sel.name), set()).update(labels)
    return out


def test_every_query_uses_only_names_from_govheal_names():
    for name, labels in used_series().items():
        assert name in names.BY_NAME, f"{name} is not in govheal/names.py"
        assert labels <= set(names.BY_NAME[name].labels), (name, labels - set(names.BY_NAME[name].labels))
    known = {label for s in names.ALL for label in s.labels} | {"le"}
    for q in QUERIES:
        assert grouping_labels(q.expr) <= known, q.id


def test_every_series_used_is_documented_in_docs_metrics():
    for name in used_series():
        if names.BY_NAME[name].pending:
            continue  # documented by its producer when it lands (test_pending_series_are_few_and_say_why)
        assert documented(name), f"docs/metrics.md lacks {name}"


def documented(name: str) -> bool:
    """`name` or `name{...}` in docs/metrics.md, or a rule row's short form `level:metric:x`, `...:ops`."""
    if f"`{name}`" in DOCS_METRICS or f"`{name}{{" in DOCS_METRICS:
        return True
    prefix, _, ops = name.rpartition(":")
    return any(f"`{prefix}:" in line and f"`...:{ops}`" in line for line in DOCS_METRICS.splitlines())


def docs_row(name: str) -> str:
    rows = [line for line in DOCS_METRICS.splitlines() if line.startswith("|") and f"`{name}" in line.split("|")[1]]
    return rows[0] if rows else ""


def test_every_label_a_query_uses_is_documented_for_its_metric():
    level_labels = {"agent": {"agent", "node"}, "node": {"node"}, "channel": {"node", "channel"}}
    for name, labels in used_series().items():
        series = names.BY_NAME[name]
        if series.source is Source.RECORDING:
            assert labels <= level_labels[name.split(":")[0]], name
        elif series.source in (Source.EXPORTER, Source.RECEIVER) and not series.pending:
            row = docs_row(name)
            assert row, f"docs/metrics.md has no table row for {name}"
            undocumented = {label for label in labels - {"node"} if f"`{label}`" not in row}
            assert not undocumented, f"{name}: labels {undocumented} not in its docs/metrics.md row"


def exposition_labels(text: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ", line)
        if m and not line.startswith("#"):
            labels = set(re.findall(r'(\w+)="', m.group(2) or ""))
            out.setdefault(base_name(m.group(1)), set()).update(labels - {"le"})
    return out


@pytest.fixture(scope="module")
def real_output(tmp_path_factory) -> dict[str, set[str]]:
    """What the exporter (golden snapshot of the real collector) and a real receiver registry emit."""
    from govheal.seams import parse_config
    from webhook_receiver.app import create_app

    tmp = tmp_path_factory.mktemp("exposition")
    cfg = tmp / "govheal.yaml"
    (tmp / "hook").write_text("http://127.0.0.1:9/api/webhooks/1/x\n")
    cfg.write_text("node: n1\nstate_dir: state\ntelemetry_log: t/log\nnotifications:\n  channels:\n"
                   f"    discord: {{type: discord, webhook_url_file: {tmp / 'hook'}}}\n"
                   "agents:\n  - name: A\n    role: r\n    process: {pidfile: a.pid}\n"
                   "    restart: {strategy: command, argv: [/bin/true]}\n")
    app = create_app(parse_config(cfg.read_text(), source=cfg), start=False, token="t")
    receiver = app.test_client().get("/metrics").get_data(as_text=True)
    exporter = (REPO / "tests" / "golden" / "exporter.txt").read_text()
    found = exposition_labels(exporter)
    for name, labels in exposition_labels(receiver).items():
        found.setdefault(name, set()).update(labels)
    return found


def test_every_series_used_is_emitted_or_recorded_or_pending(real_output):
    recorded = {r["record"] for path in (REPO / "prometheus" / "rules").glob("*.yml")
                for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"] if "record" in r}
    for name, labels in used_series().items():
        series = names.BY_NAME[name]
        if series.source is Source.RECORDING:
            assert name in recorded, f"{name}: no such recording rule in prometheus/rules/"
        elif series.source in (Source.EXPORTER, Source.RECEIVER):
            if series.pending:
                assert name not in real_output, f"{name} is emitted now: drop its pending note in govheal/names.py"
                continue
            assert name in real_output, f"{name} is not in the {series.source} output"
            assert labels - {"node"} <= real_output[name], (name, labels - real_output[name])


def test_pending_series_are_few_and_say_why():
    pending = {s.name: s.pending for s in names.ALL if s.pending}
    assert set(pending) <= {"govheal_daily_report_last_success_timestamp_seconds"}  # issue 11; shrinks, never grows
    assert all("issue" in why for why in pending.values())


# -- provisioning: Grafana's schema (pkg/services/provisioning/{datasources,dashboards}, apiVersion 1) ------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProvisionedDatasource(_Strict):
    name: str
    type: Literal["prometheus", "alertmanager"]
    uid: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    access: Literal["proxy", "direct"] = "proxy"
    url: str
    orgId: int = 1
    orgName: str | None = None
    user: str | None = None
    database: str | None = None
    basicAuth: bool = False
    basicAuthUser: str | None = None
    withCredentials: bool = False
    isDefault: bool = False
    jsonData: dict[str, Any] = {}
    secureJsonData: dict[str, str] = {}
    correlations: list[dict[str, Any]] = []
    version: int | None = None
    editable: bool = False


class DatasourcesFile(_Strict):
    apiVersion: Literal[1]
    datasources: list[ProvisionedDatasource]
    deleteDatasources: list[dict[str, Any]] = []
    prune: bool = False


class ProviderOptions(_Strict):
    path: str
    foldersFromFilesStructure: bool = False


class Provider(_Strict):
    name: str
    orgId: int = 1
    folder: str = ""
    folderUid: str = ""
    type: Literal["file"] = "file"
    disableDeletion: bool = False
    updateIntervalSeconds: int = Field(10, ge=1)
    allowUiUpdates: bool = False
    options: ProviderOptions


class ProvidersFile(_Strict):
    apiVersion: Literal[1]
    providers: list[Provider]


DATASOURCES = resources.grafana_provisioning_dir() / "datasources" / "govheal.yaml"
PROVIDERS = resources.grafana_provisioning_dir() / "dashboards" / "govheal.yaml"


def test_provisioning_has_only_the_directories_grafana_reads():
    subdirs = {p.name for p in resources.grafana_provisioning_dir().iterdir() if p.is_dir()}
    assert subdirs <= {"datasources", "dashboards", "plugins", "alerting", "notifiers"} and subdirs
    for path in resources.grafana_provisioning_dir().rglob("*"):
        if path.is_file():
            assert path.suffix in (".yaml", ".yml"), path


def test_datasources_file_matches_grafanas_schema_with_fixed_uids_and_urls_from_env():
    data = DatasourcesFile.model_validate(yaml.safe_load(DATASOURCES.read_text()))
    by_type = {d.type: d for d in data.datasources}
    assert by_type["prometheus"].uid == model.PROMETHEUS.uid
    assert by_type["alertmanager"].uid == model.ALERTMANAGER.uid
    assert by_type["prometheus"].url == "${GOVHEAL_PROMETHEUS_URL}"
    assert by_type["alertmanager"].url == "${GOVHEAL_ALERTMANAGER_URL}"
    assert by_type["prometheus"].jsonData["timeInterval"] == "${GOVHEAL_SCRAPE_INTERVAL}"
    assert by_type["alertmanager"].jsonData["implementation"] == "prometheus"
    assert all(d.access == "proxy" for d in data.datasources), "Alertmanager datasources work only as proxy"
    assert sum(d.isDefault for d in data.datasources) <= 1, "one default per org (validateDefaultUniqueness)"


def test_dashboard_provider_matches_grafanas_schema():
    data = ProvidersFile.model_validate(yaml.safe_load(PROVIDERS.read_text()))
    (provider,) = data.providers
    assert provider.options.path == "${GOVHEAL_GRAFANA_DASHBOARDS}"
    assert provider.allowUiUpdates is False
    assert not (provider.options.foldersFromFilesStructure and (provider.folder or provider.folderUid))


def test_the_schema_check_can_fail():
    bad = yaml.safe_load(DATASOURCES.read_text())
    bad["datasources"][0]["jsondata"] = {}  # wrong case: Grafana would ignore it silently
    with pytest.raises(ValueError, match="jsondata"):
        DatasourcesFile.model_validate(bad)


def grafana_expand(text: str, env: dict[str, str]) -> str:
    """Grafana's provisioning expansion: $VAR and ${VAR} in values; $$ is a literal $."""
    text = text.replace("$$", "\0")
    text = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), text)
    return text.replace("\0", "$")


def test_env_vars_in_provisioning_are_only_in_values_and_all_set_by_govheal_up(tmp_path):
    install = grafana.Install(Path("/opt/grafana/bin/grafana"), Path("/opt/grafana"))
    plan = grafana.plan(install, tmp_path, prometheus_url="http://127.0.0.1:1", alertmanager_url="http://127.0.0.1:2",
                        scrape_interval="1s", port=3999)
    for path in (DATASOURCES, PROVIDERS):
        text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        for line in text.splitlines():
            if "$" in line:
                key, _, value = line.partition(":")
                assert "$" not in key and "${" in value, f"{path.name}: {line!r}"
        used = set(re.findall(r"\$\{(\w+)\}", text))
        assert used <= set(plan.env), f"{path.name}: {used - set(plan.env)} not set by govheal.grafana.plan"
        expanded = yaml.safe_load(grafana_expand(text, plan.env))
        assert "${" not in json.dumps(expanded)
    providers = yaml.safe_load(grafana_expand(PROVIDERS.read_text(), plan.env))
    assert sorted(p.name for p in Path(providers["providers"][0]["options"]["path"]).glob("*.json")) == \
        sorted(BOARDS_JSON)


def test_boards_refer_only_to_provisioned_datasource_uids():
    provisioned = {d["uid"] for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    for name in BOARDS_JSON:
        uids = set(re.findall(r'"uid": "([^"]+)"', (resources.grafana_dashboards_dir() / name).read_text()))
        assert uids - {BOARDS_JSON[name]["uid"], "-- Grafana --"} <= provisioned, name


def test_package_has_the_grafana_files():
    """The provisioning and boards are bundled (govheal/bundled/grafana → grafana/) where govheal.grafana looks."""
    assert (resources.grafana_provisioning_dir() / "datasources").is_dir()
    assert sorted(p.name for p in resources.grafana_dashboards_dir().glob("*.json")) == sorted(BOARDS_JSON)
