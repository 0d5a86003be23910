"""The five criteria at and around their bounds; nothing measured is never a pass."""

from __future__ import annotations

import dataclasses

import pytest

from govheal.report.judge import canary_problems, coverage, judge
from govheal.report.model import CanaryDelivery, CanaryTarget, ChannelStats, Incident, Remediation, UiProbe, Window
from tests.report_snapshots import T0, W, canary, passing


def crit(s, name):
    return next(c for c in judge(s).criteria if c.name == name)


@pytest.mark.parametrize(("healed", "failed", "ok"), [(49, 1, True), (97, 3, False), (0, 0, True)])
def test_heal_success_is_judged_against_98_percent(healed, failed, ok) -> None:
    s = dataclasses.replace(passing(), remediation=Remediation(healed=healed, failed=failed))
    c = crit(s, "heal_success")
    assert c.passed is ok
    if healed + failed == 0:
        assert c.measured == "no remediation ran" and c.value is None


def test_heal_success_without_prometheus_data_fails() -> None:
    s = dataclasses.replace(passing(), window=Window(T0 - W, T0, None), node_seen=None, agents=(),
                            problems=("Prometheus http://x: query: connection refused",))
    for name in ("heal_success", "no_unplanned_downtime", "report_verified"):
        assert not crit(s, name).passed, name


@pytest.mark.parametrize(("p99", "ok"), [(0.249, True), (0.25, False), (0.3, False)])
def test_the_ui_must_answer_under_250_ms_at_the_99th_percentile(p99, ok) -> None:
    # nearest rank: of 100 samples p99 is the 99th smallest, so two slow ones make it
    s = dataclasses.replace(passing(), ui=UiProbe("http://x/ops/governance", True, 200, (0.01,) * 98 + (p99, p99)))
    assert crit(s, "ui_latency").passed is ok


@pytest.mark.parametrize("probe", [
    UiProbe("http://x/ops/governance", False, 401, (), error="the page refused the report's token (HTTP 401 at "
            "login)"),
    UiProbe("http://x/ops/governance", False, None, (), error="unreachable (ConnectionError)"),
    UiProbe("http://x/ops/governance", False, 302, (0.001,) * 5, error="the page sent the logged-in report to "
            "/ops/governance/login (HTTP 302)"),  # fast answers that are not the page: still no pass
    UiProbe("http://x/ops/governance", True, 200, ()),
], ids=["refused", "unreachable", "redirected", "no-sample"])
def test_a_page_that_was_not_measured_is_a_fail_with_its_reason_never_a_pass(probe) -> None:
    c = crit(dataclasses.replace(passing(), ui=probe), "ui_latency")
    assert not c.passed and c.value is None
    assert c.measured == "not measured" and c.detail == f"http://x/ops/governance: {probe.error or 'no sample'}"


def test_alert_delivery_takes_the_worst_of_the_canary_and_the_window_p99() -> None:
    s = dataclasses.replace(passing(), channels=(ChannelStats("discord", 9, 0, 0, 1.0, 3.5),))
    c = crit(s, "alert_delivery")
    assert not c.passed and c.value == 3.5 and "discord p99" in c.measured
    quiet = dataclasses.replace(passing(), channels=(), canary=None)
    assert not crit(quiet, "alert_delivery").passed, "nothing measured is not a pass"


def test_a_channel_without_sends_in_the_window_does_not_count() -> None:
    s = dataclasses.replace(passing(), channels=(ChannelStats("discord", 0, 2, 0, None, None),))
    assert crit(s, "alert_delivery").passed


@pytest.mark.parametrize(("seconds", "ok"), [(120, True), (121, False)])
def test_unplanned_downtime_longer_than_2_minutes_fails(seconds, ok) -> None:
    s = dataclasses.replace(passing(), incidents=(Incident("GG", T0 - 1000, T0 - 1000 + seconds),))
    c = crit(s, "no_unplanned_downtime")
    assert c.passed is ok and c.value == seconds


def test_coverage_allows_one_step_of_alignment_and_no_more() -> None:
    s = passing()
    _, complete, gaps = coverage(dataclasses.replace(s, node_seen=W - 1.0))
    assert complete and not gaps
    _, complete, gaps = coverage(dataclasses.replace(s, node_seen=W - 60))
    assert not complete and "Prometheus unseen for 60.0 s" in gaps[0]
    assert not crit(dataclasses.replace(s, node_seen=W - 60), "report_verified").passed


def test_coverage_counts_an_agent_that_was_not_seen() -> None:
    s = passing()
    gg = dataclasses.replace(s.agents[0], observed=W - 600, healthy=W - 600)
    _, complete, gaps = coverage(dataclasses.replace(s, agents=(gg, s.agents[1])))
    assert not complete and gaps == ["GG unseen for 10m00s (1.4 % of the window)"]
    assert gg.availability == pytest.approx((W - 600) / W), "unseen time is not proven healthy"


def test_maintenance_is_left_out_of_availability() -> None:
    mary = passing().agents[1]
    assert mary.maintenance == 3600 and mary.availability == 1.0 and mary.downtime == 0


@pytest.mark.parametrize(("change", "problem"), [
    (dict(targets=(CanaryTarget(0, "http://am", T0, None, None, error="HTTP 500"),)), "refused the post"),
    (dict(targets=(CanaryTarget(0, "http://am", T0, T0, None),)), "not seen at the receiver"),
    (dict(targets=(CanaryTarget(0, "http://am", T0, T0, T0 + 31),)), "reached the receiver after 31.0 s"),
    (dict(deliveries=(CanaryDelivery("discord", "missing", None, "never queued"),)), "discord: missing"),
    (dict(deliveries=(CanaryDelivery("discord", "sent", T0 + 45),)), "delivered after"),
    (dict(handed_at=None), "did not hand the TEST message"),
    (dict(error="no Alertmanager to post to"), "no Alertmanager"),
])
def test_the_canary_fails_on_any_missing_or_late_hop(change, problem) -> None:
    c = dataclasses.replace(canary(), **change)
    found = canary_problems(c)
    assert found and problem in " ".join(found)
    s = dataclasses.replace(passing(), canary=c)
    assert not judge(s).canary_passed and not crit(s, "report_verified").passed


def test_the_passing_canary_has_no_problem() -> None:
    assert canary_problems(canary()) == []
    assert canary_problems(None) == ["canary disabled (reports.canary.enabled)"]


def test_a_failing_step_fails_the_report_but_no_criterion() -> None:
    s = passing()
    bad = dataclasses.replace(s.steps[0], exit_code=1, error="exit code 1")
    v = judge(dataclasses.replace(s, steps=(bad,)))
    assert v.failures == ("step memory-sync",) and all(c.passed for c in v.criteria)
