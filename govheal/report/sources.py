"""The report's view of Prometheus and Alertmanager: the few calls it makes, behind one small interface.

Adapter: these two classes are the interface the report codes against (``query``, ``query_range``,
``rule_group_interval``, ``post_alerts``). They are to be rebuilt on ``govheal/client.py`` (the one
Prometheus/Alertmanager client of the architecture step) once it lands; until then they speak the
documented HTTP API on one injected ``requests.Session``, with the same error shape (server, request, fix).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import requests

from govheal.errors import GovhealError
from govheal.types import display_url

TIMEOUT = (3.05, 30.0)
Labels = dict[str, str]


class SourceError(GovhealError):
    """A Prometheus or Alertmanager request failed; the message names the server, the request and the fix."""


def _fail(server: str, url: str, what: str, why: str, fix: str) -> SourceError:
    return SourceError(f"{server} {display_url(url)}: {what}: {why}; {fix}")


class Prometheus:
    def __init__(self, url: str, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = session or requests.Session()

    def _get(self, path: str, params: dict[str, Any], what: str) -> Any:
        try:
            resp = self.http.post(self.url + path, data=params, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise _fail("Prometheus", self.url, what, f"{type(exc).__name__}", "is it running? (prometheus.url in "
                        "the config, or --prometheus)") from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or body.get("status") != "success":
            why = body.get("error") or f"HTTP {resp.status_code}"
            raise _fail("Prometheus", self.url, what, why, "check the query and that the govheal rules are loaded")
        return body["data"]

    def query(self, expr: str, at: float) -> list[tuple[Labels, float]]:
        """Instant vector (or scalar as one unlabelled sample); NaN values are dropped."""
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"}, f"query {expr[:80]!r}")
        if data["resultType"] == "scalar":
            rows = [({}, data["result"])]
        else:
            rows = [(r["metric"], r["value"]) for r in data["result"]]
        out = []
        for labels, (_, value) in rows:
            v = float(value)
            if not math.isnan(v):
                out.append(({k: v2 for k, v2 in labels.items() if k != "__name__"}, v))
        return out

    def query_range(self, expr: str, start: float, end: float,
                    step: float) -> list[tuple[Labels, list[tuple[float, float]]]]:
        data = self._get("/api/v1/query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                                 "step": f"{step:g}"}, f"range query {expr[:80]!r}")
        return [({k: v for k, v in r["metric"].items() if k != "__name__"},
                 [(float(t), float(v)) for t, v in r["values"]]) for r in data["result"]]

    def rule_group_interval(self, name: str) -> float | None:
        """The evaluation interval of a loaded rule group (seconds), None when no such group is loaded."""
        try:
            resp = self.http.get(self.url + "/api/v1/rules", params={"type": "record"}, timeout=TIMEOUT)
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise _fail("Prometheus", self.url, "list rules", type(exc).__name__, "is it running?") from None
        for group in body.get("data", {}).get("groups", []):
            if group.get("name") == name:
                return float(group["interval"])
        return None


class Alertmanager:
    def __init__(self, url: str, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = session or requests.Session()

    def post_alerts(self, alerts: Sequence[dict[str, Any]]) -> None:
        """``POST /api/v2/alerts`` (Alertmanager answers 200 with an empty body)."""
        try:
            resp = self.http.post(self.url + "/api/v2/alerts", json=list(alerts), timeout=(3.05, 10.0))
        except requests.RequestException as exc:
            raise _fail("Alertmanager", self.url, "post alerts", type(exc).__name__,
                        "is it running? (alertmanager.urls in the config, or --alertmanager)") from None
        if resp.status_code != 200:
            raise _fail("Alertmanager", self.url, "post alerts", f"HTTP {resp.status_code}: {resp.text[:200]}",
                        "check the Alertmanager log")

