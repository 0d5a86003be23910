"""A whole report run on an injected clock with its I/O replaced (tests/test_report_live.py runs the real
thing): catch-up, exactly once per slot, never overwriting a verified report, the missing volume, the digest
in the bridge's outbox, exit codes, and the metrics the receiver exports from the store."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from govheal.report import output
from govheal.report.fetch import PromStats
from govheal.report.model import AgentHealth, AgentStats, UiProbe, Window
from govheal.report.run import DailyRun, Options, Sources
from govheal.seams import load_config
from govheal.slots import ReportCollector, SlotStore
from govheal.store import connect, db_path
from tests.report_snapshots import canary


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cfg(tmp_path: Path):
    (tmp_path / "govheal.yaml").write_text("""
node: n1
state_dir: state
notifications:
  channels:
    discord: {type: discord}
reports:
  dir: reports
  timezone: UTC
agents:
  - name: GG
    health: {url: "http://127.0.0.1:9/health"}
""")
    return load_config(tmp_path / "govheal.yaml")


def sources(*, unseen: float = 0.0, mounted: bool = True, fail: bool = False) -> Sources:
    def prom(config, url, start, end):
        if fail:
            raise RuntimeError("boom")
        w = end - start
        seen = w - unseen
        return PromStats(Window(start, end, 1.0), agents=(AgentStats("GG", "n1", w, seen, seen, 0, 0, 0),),
                         node_seen=w)

    return Sources(health=lambda c: (AgentHealth("GG", "n1", "", True, True),), prometheus=prom,
                   canary=lambda c, ams, cid: canary(canary_id=cid), steps=lambda c: (),
                   ui=lambda c: UiProbe("http://x/ops/governance", True, 200, (0.01,) * 20),
                   is_mount=lambda p: mounted)


def daily(cfg, clock, src=None, **opts):
    return DailyRun(cfg, Options(digest_wait=0, **opts), sources=src or sources(), clock=clock).run()


def outbox(cfg) -> list[dict]:
    db = sqlite3.connect(db_path(cfg.state_path))
    return [json.loads(r[0]) for r in db.execute("SELECT notice FROM outbox_items ORDER BY id")]


def test_a_missed_0900_runs_once_at_the_next_start_stamped_as_a_catch_up(cfg) -> None:
    clock = Clock(at("2026-11-30T21:00:03"))
    assert daily(cfg, clock).slot_id == "2026-11-30_21"  # on time
    clock.now = at("2026-12-01T11:30:00")  # the Mac slept through 09:00
    out = daily(cfg, clock)
    assert out.exit_code == 0 and out.slot_id == "2026-12-01_09"
    text = Path(out.path).read_text()
    assert "CATCH-UP: this slot ran 2h30m00s late" in text
    assert "Window: 2026-11-30 21:00:00 → 2026-12-01 11:30:00" in text, "back to the last report: no gap"
    digest = outbox(cfg)[-1]
    assert digest["title"] == "Daily ops report 2026-12-01 09 on n1: PASS (CATCH-UP, 2h30m00s late)"
    row = SlotStore(connect(db_path(cfg.state_path))).get("2026-12-01_09")
    assert row and row.catch_up and row.lateness == 2.5 * 3600 and row.verified
    for later in ("2026-12-01T11:45:00", "2026-12-01T20:59:00"):  # never two catch-ups for one slot
        clock.now = at(later)
        again = daily(cfg, clock)
        assert again.exit_code == 0 and again.path is None and "already produced" in again.message
    clock.now = at("2026-12-01T21:00:02")
    assert daily(cfg, clock).slot_id == "2026-12-01_21"
    assert sorted(p.name for p in (cfg.path("reports")).iterdir()) == [
        f"CLS_DAILY_{s}.{x}" for s in ("2026-11-30_21", "2026-12-01_09", "2026-12-01_21") for x in ("json", "log")]


def test_slots_nobody_ran_are_recorded_as_missed_and_named_in_the_catch_up(cfg) -> None:
    clock = Clock(at("2026-11-30T21:00:03"))
    daily(cfg, clock)
    clock.now = at("2026-12-02T08:00:00")  # off over 12-01 09 and 21
    out = daily(cfg, clock)
    assert out.slot_id == "2026-12-01_21"
    assert "Missed: 2026-12-01_09" in Path(out.path).read_text()
    store = SlotStore(connect(db_path(cfg.state_path)))
    missed = store.get("2026-12-01_09")
    assert missed and missed.state == "missed" and missed.summary == {"superseded_by": "2026-12-01_21"}


def test_a_verified_slot_is_never_produced_again_and_a_failed_one_may_be_rerun(cfg) -> None:
    clock = Clock(at("2026-12-01T09:00:05"))
    assert daily(cfg, clock).exit_code == 0
    clock.now += 60
    again = daily(cfg, clock, date="2026-12-01", slot="09")
    assert again.exit_code == 0 and again.path is None and "never overwritten" in again.message
    failed = daily(cfg, clock, src=sources(unseen=600), date="2026-12-01", slot="09")  # still the verified one
    assert failed.path is None
    clock.now = at("2026-12-01T21:00:05")
    first = daily(cfg, clock, src=sources(unseen=600))
    assert first.exit_code == 1 and first.verdict and first.verdict.failures == ("report_verified",)
    rerun = daily(cfg, clock, date="2026-12-01", slot="21")
    assert rerun.exit_code == 0 and rerun.path == first.path, "a failed report is replaced by the operator's re-run"
    assert json.loads(Path(rerun.path).with_suffix(".json").read_text())["passed"]


def test_a_verified_file_is_never_overwritten_even_by_a_fresh_state(cfg, tmp_path) -> None:
    clock = Clock(at("2026-12-01T09:00:05"))
    path = Path(daily(cfg, clock).path)
    before = path.read_text()
    for f in cfg.state_path.iterdir():
        f.unlink()
    with pytest.raises(output.VerifiedExists, match="never overwritten"):
        daily(cfg, clock)
    assert path.read_text() == before


def test_a_missing_volume_is_an_error_naming_it_and_the_report_waits_locally_until_it_is_back(cfg) -> None:
    cfg = cfg.model_copy(update={"reports": cfg.reports.model_copy(update={"volume": "/Volumes/Backup"})})
    clock = Clock(at("2026-12-01T09:00:05"))
    out = daily(cfg, clock, src=sources(mounted=False))
    assert out.exit_code == 1 and out.verdict and "report_verified" in out.verdict.failures
    pending = cfg.state_path / "reports-pending"
    assert Path(out.path).parent == pending and not (cfg.path("reports") / Path(out.path).name).exists()
    assert "volume /Volumes/Backup is not mounted" in Path(out.path).read_text()
    clock.now = at("2026-12-01T21:00:05")
    later = daily(cfg, clock, src=sources(mounted=True))
    assert later.exit_code == 0
    assert (cfg.path("reports") / "CLS_DAILY_2026-12-01_09.log").exists(), "moved once the volume is back"
    assert not pending.exists()


def test_a_volume_path_under_volumes_is_recognised_without_configuring_it(cfg, tmp_path) -> None:
    cfg = cfg.model_copy(update={"reports": cfg.reports.model_copy(update={"dir": "/Volumes/NoSuchDrive/r"})})
    t = output.target(cfg, is_mount=lambda p: False)
    assert t.volume == Path("/Volumes/NoSuchDrive") and "volume /Volumes/NoSuchDrive is not mounted" in t.problem
    assert not Path("/Volumes/NoSuchDrive").exists(), "nothing created where the volume should be"


def test_a_crash_while_fetching_leaves_the_slot_failed_not_stuck(cfg) -> None:
    clock = Clock(at("2026-12-01T09:00:05"))
    with pytest.raises(RuntimeError):
        daily(cfg, clock, src=sources(fail=True))
    row = SlotStore(connect(db_path(cfg.state_path))).get("2026-12-01_09")
    assert row and row.state == "failed" and "boom" in row.summary["error"]
    assert daily(cfg, clock, date="2026-12-01", slot="09").exit_code == 0


def test_the_digest_is_info_on_pass_and_crit_on_fail_in_the_outbox(cfg) -> None:
    clock = Clock(at("2026-12-01T09:00:05"))
    daily(cfg, clock)
    clock.now = at("2026-12-01T21:00:05")
    bad = dataclasses.replace(sources(), ui=lambda c: UiProbe("http://x/ops/governance", True, 200, (0.4,) * 20))
    assert daily(cfg, clock, src=bad).exit_code == 1
    pass_, fail = outbox(cfg)
    assert pass_["severity"] == "info" and "PASS" in pass_["title"]
    assert fail["severity"] == "critical" and fail["summary"] == "Failed: governance UI latency."
    assert daily(cfg, Clock(at("2026-12-02T09:00:05")), send=False).exit_code == 0
    assert len(outbox(cfg)) == 2, "--no-send queues nothing"


def test_the_receiver_exports_the_last_success_and_each_criterion_from_the_store(cfg) -> None:
    conn = connect(db_path(cfg.state_path))
    created = at("2026-11-30T08:00:00")
    reg = CollectorRegistry()
    reg.register(ReportCollector(SlotStore(conn, clock=Clock(created))))
    v = reg.get_sample_value
    assert v("govheal_daily_report_last_success_timestamp_seconds") == created, "before the first: install time"
    assert v("govheal_daily_report_verified") is None
    clock = Clock(at("2026-12-01T09:00:05"))
    daily(cfg, clock)
    assert v("govheal_daily_report_last_success_timestamp_seconds") == clock.now
    clock.now = at("2026-12-01T21:00:05")
    daily(cfg, clock, src=sources(unseen=600))
    assert v("govheal_daily_report_last_success_timestamp_seconds") == at("2026-12-01T09:00:05")
    assert v("govheal_daily_report_verified") == 0
    assert v("govheal_daily_report_criterion_pass", {"criterion": "heal_success"}) == 1
    assert v("govheal_daily_report_criterion_pass", {"criterion": "report_verified"}) == 0
    assert v("govheal_daily_report_criterion_value", {"criterion": "ui_latency"}) == pytest.approx(0.01)
    assert v("govheal_daily_report_lateness_seconds") == 5


def test_the_cli_says_what_is_wrong_with_a_date_or_window_and_exits_2(cfg, capsys) -> None:
    from govheal.cli import main

    assert main(["report", "daily", "--config", str(cfg.source), "--date", "2026-13-01", "--slot", "09"]) == 2
    assert "--date 2026-13-01: not a calendar date; write YYYY-MM-DD" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["report", "daily", "--config", str(cfg.source), "--window", "soon"])
    assert exc.value.code == 2 and "'soon' is not a duration" in capsys.readouterr().err
