"""The report's render on hand-made snapshots: golden files (GOVHEAL_REGEN_GOLDEN=1 rewrites them), the
fixed sections, the JSON twin and the digest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from govheal.report import digest
from govheal.report.judge import judge
from govheal.report.render import SECTIONS, render_json, render_text
from tests.report_snapshots import failing, passing

GOLDEN = Path(__file__).parent / "golden" / "report"


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("GOVHEAL_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with GOVHEAL_REGEN_GOLDEN=1 to create it"
    assert text == path.read_text(), f"{name} changed; if intended, regenerate with GOVHEAL_REGEN_GOLDEN=1"


@pytest.mark.parametrize(("name", "make"), [("passing", passing), ("failing", failing)])
def test_the_report_text_matches_its_golden_file(name, make) -> None:
    s = make()
    golden(f"CLS_DAILY_{name}.log", render_text(s, judge(s)))


@pytest.mark.parametrize(("name", "make"), [("passing", passing), ("failing", failing)])
def test_the_json_twin_matches_its_golden_file(name, make) -> None:
    s = make()
    golden(f"CLS_DAILY_{name}.json", json.dumps(render_json(s, judge(s)), indent=2, sort_keys=True,
                                                ensure_ascii=False) + "\n")


@pytest.mark.parametrize("make", [passing, failing])
def test_every_section_is_there_in_order_even_when_empty(make) -> None:
    text = render_text(make(), judge(make()))
    at = [text.index(f"== {n}. {title} ==") for n, title in enumerate(SECTIONS, start=1)]
    assert at == sorted(at)


def test_a_passing_report_says_pass_with_measured_values_and_bounds() -> None:
    s = passing()
    v = judge(s)
    assert v.passed, v.failures
    text = render_text(s, v)
    assert text.splitlines()[2].startswith("RESULT: PASS: 5 of 5 criteria")
    assert "PASS  heal success                   100.0 % (1 of 1 healed)" in text
    assert "≥ 98 %" in text and "< 250 ms" in text and "< 3.0 s" in text and "none > 2m00s" in text


def test_a_failing_catch_up_names_what_failed_and_how_late_it_is() -> None:
    s = failing()
    v = judge(s)
    text = render_text(s, v)
    assert not v.passed
    assert set(v.failures) == {"heal_success", "ui_latency", "no_unplanned_downtime", "report_verified",
                               "step backup"}
    assert "CATCH-UP: this slot ran 2h30m00s late" in text
    assert "Missed: 2026-11-30_21" in text
    assert "governance UI latency: http://127.0.0.1:9827/ops/governance: the page refused the report's token" in text
    assert "volume /Volumes/Ext is not mounted" in text
    assert "telegram: queued" in text and "FAIL backup" in text


def test_the_digest_is_info_when_all_pass_and_crit_naming_the_failures_otherwise() -> None:
    ok = passing()
    n = digest.notice(ok, judge(ok), "/r/CLS_DAILY_2026-12-01_09.log")
    assert n.severity == "info" and "PASS" in n.title and n.key == "report:2026-12-01_09"
    bad = failing()
    n = digest.notice(bad, judge(bad), "/r/x.log")
    assert n.severity == "critical" and "FAIL (CATCH-UP, 2h30m00s late)" in n.title
    assert n.summary.startswith("Failed: heal success, governance UI latency, no unplanned downtime, report "
                                "generated and verified, step backup.")
    assert "ran 2h30m00s late" in n.summary
    assert ("FAIL step backup", "timed out after 60 s (killed)") in n.fields
