"""Hand-made report snapshots for the pure tests (render, judge, digest): every section has something in it."""

from __future__ import annotations

import dataclasses

from govheal.report.model import (
    AgentHealth,
    AgentStats,
    Bounds,
    Canary,
    CanaryDelivery,
    CanaryTarget,
    ChannelStats,
    Destination,
    Incident,
    Remediation,
    RunInfo,
    Snapshot,
    StepResult,
    Switch,
    UiProbe,
    Window,
)

T0 = 1796115600.0  # 2026-12-01 09:00:00 UTC
W = 43200.0
BOUNDS = Bounds(heal_success_min=0.98, ui_latency_max=0.25, delivery_max=3.0, downtime_max=120.0, coverage_min=0.999)


def run_info(**kw) -> RunInfo:
    base = dict(slot_id="2026-12-01_09", date="2026-12-01", slot="09", slot_time="09:00", timezone="UTC",
                scheduled_at=T0, started_at=T0 + 4, lateness=4.0, catch_up=False, manual=False, node="mac-studio",
                run_id="mac-studio-4242-a1b2c3", version="0.1.0")
    return RunInfo(**{**base, **kw})


def canary(**kw) -> Canary:
    post = T0 + 5
    base = dict(canary_id="2026-12-01_09-c0ffee", deadline=30.0,
                targets=(CanaryTarget(0, "http://127.0.0.1:9093", post, post + 0.004, post + 0.21, post + 0.25),),
                handed_at=post + 0.213,
                deliveries=(CanaryDelivery("discord", "sent", post + 0.6),
                            CanaryDelivery("telegram", "sent", post + 0.9)))
    return Canary(**{**base, **kw})


def passing() -> Snapshot:
    end = T0 + 4
    agents = (
        AgentStats("GG", "mac-studio", W, observed=W, healthy=W - 3, maintenance=0, restarts=1, govheal_restarts=1),
        AgentStats("Mary", "mac-studio", W, observed=W - 3600, healthy=W - 3600, maintenance=3600, restarts=0,
                   govheal_restarts=0),
    )
    return Snapshot(
        run=run_info(), window=Window(end - W, end, 1.0), bounds=BOUNDS,
        destination=Destination("/Volumes/Ext/02luka/reports", "/Volumes/Ext/02luka/reports"),
        prometheus_url="http://127.0.0.1:9090",
        health=(AgentHealth("GG", "mac-studio", "orchestrator", True, True),
                AgentHealth("Mary", "mac-studio", "research-assistant", True, True)),
        agents=agents, node_seen=W,
        incidents=(Incident("GG", end - 7200, end - 7197),),
        remediation=Remediation(healed=1, ttr_mean=1.4, ttr_p50=1.4, ttr_p99=1.4),
        channels=(ChannelStats("discord", 4, 0, 0, 0.31, 0.42), ChannelStats("telegram", 4, 0, 0, 0.55, 0.8)),
        canary=canary(),
        ui=UiProbe("http://127.0.0.1:9827/ops/governance", True, 200, tuple([0.008] * 19 + [0.012])),
        switches=(Switch("Mary", "maintenance", "ops@mac-studio", "disk swap", end + 3600),
                  Switch("GC", "mute", "ops", "noisy during migration", end + 5 * 86400)),
        steps=(StepResult("memory-sync", ("/usr/local/bin/memsync", "--push"), "/Users/ops", 300.0, 0, 2.5, "",
                          "synced 12 files"),),
    )


def failing() -> Snapshot:
    s = passing()
    gg = dataclasses.replace(s.agents[0], healthy=W - 400, restarts=5, govheal_restarts=5, circuit="open",
                             circuit_opened=True)
    return dataclasses.replace(
        s,
        run=run_info(started_at=T0 + 9000, lateness=9000.0, catch_up=True, missed=("2026-11-30_21",)),
        agents=(gg, s.agents[1]), node_seen=W - 1800,
        incidents=(Incident("GG", T0 - 3000, T0 - 2700), Incident("GG", T0 - 100, T0 - 90)),
        remediation=Remediation(healed=4, failed=1, ttr_mean=3.1, ttr_p50=1.5, ttr_p99=9.0),
        canary=canary(deliveries=(CanaryDelivery("discord", "sent", T0 + 5.6),
                                  CanaryDelivery("telegram", "queued", None, "HTTP 502"))),
        ui=UiProbe("http://127.0.0.1:9827/ops/governance", False, 401, (),
                   error="the page refused the report's token (HTTP 401 at login): it must be the receiver's read "
                         "or admin token (reports.ui_token_file, admin.read_token_file)"),
        steps=(*s.steps, StepResult("backup", ("/usr/local/bin/backup",), "/Users/ops", 60.0, None, 60.0,
                                    "timed out after 60 s (killed)", "copying...")),
        destination=Destination("/Volumes/Ext/02luka/reports", "/Users/ops/.govheal/state/reports-pending",
                                "volume /Volumes/Ext is not mounted (reports.dir /Volumes/Ext/02luka/reports): the "
                                "report is kept in /Users/ops/.govheal/state/reports-pending until it is back"),
    )
