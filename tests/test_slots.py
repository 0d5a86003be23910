"""govheal/slots.py: a slot is claimed once, even by racing processes; dead claims are taken over; the
receiver exports the report metrics the DailyReportMissing rule reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from govheal.slots import ReportCollector, SlotStore
from govheal.store import connect

CLAIM = """
import sys, time
from pathlib import Path
from govheal.slots import SlotStore
from govheal.store import connect
store = SlotStore(connect(Path(sys.argv[1])))
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
print(store.claim("2026-12-01_09", sys.argv[3], lease=60).won)
"""


def test_six_processes_racing_for_one_slot_give_it_to_exactly_one(tmp_path: Path) -> None:
    import time

    db = tmp_path / "govheal.sqlite3"
    SlotStore(connect(db))  # migrated once; the race is over the claim, not the schema
    go = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM, str(db), str(go), f"run-{i}"], stdout=subprocess.PIPE,
                              text=True) for i in range(6)]
    won = [p.communicate(timeout=30)[0].strip() for p in procs]
    assert sorted(won) == ["False"] * 5 + ["True"], won


def test_a_claim_whose_process_is_gone_or_whose_lease_ran_out_is_taken_over(tmp_path: Path) -> None:
    now = [1000.0]
    store = SlotStore(connect(tmp_path / "s.sqlite3"), clock=lambda: now[0])
    assert store.claim("s", "a", lease=60).won
    assert store.claim("s", "b", lease=60).reason == "running"
    store.conn.execute("UPDATE report_slots SET pid = 999999999")  # the holder died (no such pid)
    took = store.claim("s", "b", lease=60)
    assert took.won and took.reason == "took_over"
    now[0] += 61
    store.conn.execute("UPDATE report_slots SET host = 'elsewhere'")  # a pid we cannot check: the lease decides
    assert store.claim("s", "c", lease=60).reason == "took_over"
    assert not store.finish("s", "b", verified=True, path=None, summary={}), "b lost the claim"
    assert store.finish("s", "c", verified=True, path="/r", summary={})


def test_verified_is_final_failed_may_be_rerun_and_missed_never_overwrites(tmp_path: Path) -> None:
    store = SlotStore(connect(tmp_path / "s.sqlite3"))
    assert store.claim("v", "a", lease=60).won and store.finish("v", "a", verified=True, path="/r", summary={})
    assert store.claim("v", "b", lease=60, rerun=True).reason == "verified"
    assert store.claim("f", "a", lease=60).won and store.finish("f", "a", verified=False, path="/r", summary={})
    assert store.claim("f", "b", lease=60).reason == "finished"
    assert store.claim("f", "b", lease=60, rerun=True).reason == "rerun"
    assert not store.mark_missed("v", 0.0, "x")
    assert store.mark_missed("m", 0.0, "x") and store.get("m").state == "missed"


def test_the_collector_survives_a_state_without_reports(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    reg = CollectorRegistry()
    reg.register(ReportCollector(SlotStore(connect(tmp_path / "s.sqlite3"), clock=lambda: 42.0)))
    text = generate_latest(reg).decode()
    assert "govheal_daily_report_last_success_timestamp_seconds 42.0" in text
    assert "govheal_daily_report_verified" not in text


def test_the_receivers_metrics_carry_the_daily_report_families_and_pass_promtool(tmp_path: Path) -> None:
    from tests.conftest import require_binary
    from tests.test_receiver import Rig

    rig = Rig(tmp_path)
    try:
        store = SlotStore(connect(rig.config.state_path / "govheal.sqlite3"))
        store.claim("2026-12-01_09", "r", lease=60)
        store.finish("2026-12-01_09", "r", verified=True, path="/r", summary={
            "criteria": {"heal_success": {"passed": True, "value": 1.0}, "ui_latency": {"passed": False,
                                                                                         "value": 0.4}}})
        text = rig.client.get("/metrics").get_data(as_text=True)
    finally:
        rig.close()
    assert 'govheal_daily_report_criterion_pass{criterion="ui_latency"} 0.0' in text
    assert "govheal_daily_report_last_success_timestamp_seconds" in text
    done = subprocess.run([require_binary("promtool"), "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
