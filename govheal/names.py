"""Metric, label and recording-rule names in one place: the dashboards build every query from these.

A name here is a promise that something emits it: tests check each against docs/metrics.md, the
exporter's and receiver's real exposition, and the recording rules in prometheus/rules/, so a rename
fails a test instead of leaving a Grafana panel silently empty. Base layer: imports nothing of govheal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Source(StrEnum):
    """Who produces a series."""

    EXPORTER = "exporter"      # govheal exporter /metrics
    RECEIVER = "receiver"      # govheal receiver /metrics (receiver, bridge and remediator registries)
    PROMETHEUS = "prometheus"  # Prometheus itself (up, ALERTS)
    RECORDING = "recording"    # a recording rule in prometheus/rules/*.yml


class Kind(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class Series:
    """One metric or recording rule: its name, the labels a query may use, who emits it."""

    name: str
    labels: tuple[str, ...]
    source: Source
    kind: Kind = Kind.GAUGE
    # Why the series does not exist yet, when its producer has not landed (shown by the live test).
    pending: str = ""

    def __str__(self) -> str:
        return self.name

    @property
    def bucket(self) -> str:
        assert self.kind is Kind.HISTOGRAM, f"{self.name} is not a histogram"
        return self.name + "_bucket"

    @property
    def sum(self) -> str:
        assert self.kind is Kind.HISTOGRAM, f"{self.name} is not a histogram"
        return self.name + "_sum"

    @property
    def count(self) -> str:
        assert self.kind is Kind.HISTOGRAM, f"{self.name} is not a histogram"
        return self.name + "_count"


# -- label names --------------------------------------------------------------------------------------
AGENT, NODE, ROLE, KIND = "agent", "node", "role", "kind"
CHANNEL, OUTCOME, ACTION, STATE, REASON, STATUS = "channel", "outcome", "action", "state", "reason", "status"
JOB, ALERTNAME, ALERTSTATE = "job", "alertname", "alertstate"

_A = (AGENT, NODE)
_E, _R, _P, _REC = Source.EXPORTER, Source.RECEIVER, Source.PROMETHEUS, Source.RECORDING

# -- exporter (docs/metrics.md "Exporter") ---------------------------------------------------------------
AGENT_INFO = Series("govheal_agent_info", (*_A, ROLE, "critical", "matcher"), _E)
AGENT_UP = Series("govheal_agent_up", _A, _E)
AGENT_HEALTHY = Series("govheal_agent_healthy", _A, _E)
AGENT_ENABLED = Series("govheal_agent_enabled", _A, _E)
AGENT_START_TIME = Series("govheal_agent_start_time_seconds", _A, _E)
AGENT_PROBE_DURATION = Series("govheal_agent_probe_duration_seconds", _A, _E)
AGENT_PROBE_FAILURE = Series("govheal_agent_probe_failure", (*_A, REASON), _E)
AGENT_SWITCH = Series("govheal_agent_switch", (*_A, KIND), _E)

# -- remediator (served by the receiver) -------------------------------------------------------------
REMEDIATIONS = Series("govheal_remediations_total", (*_A, ACTION, OUTCOME), _R, Kind.COUNTER)
REMEDIATION_DURATION = Series("govheal_remediation_duration_seconds", (*_A, ACTION), _R, Kind.HISTOGRAM)
CIRCUIT_STATE = Series("govheal_circuit_state", (*_A, STATE), _R)
REMEDIATION_SKIPS = Series("govheal_remediation_skips_total", (*_A, REASON), _R, Kind.COUNTER)

# -- receiver and alert bridge -----------------------------------------------------------------------
# These carry no node of their own: Prometheus adds the scrape target's (prometheus.yml), so queries
# may match on it.
WEBHOOK_REQUESTS = Series("govheal_webhook_requests_total", (NODE, STATUS), _R, Kind.COUNTER)
WEBHOOK_REQUEST_DURATION = Series("govheal_webhook_request_duration_seconds", (NODE,), _R, Kind.HISTOGRAM)
WEBHOOK_ALERTS = Series("govheal_webhook_alerts_total", (NODE, OUTCOME), _R, Kind.COUNTER)
DISPATCH_QUEUE_DEPTH = Series("govheal_dispatch_queue_depth", (NODE,), _R)
DISPATCH_ERRORS = Series("govheal_dispatch_errors_total", (NODE, "stage"), _R, Kind.COUNTER)
WATCHDOG_LAST_SEEN = Series("govheal_watchdog_last_seen_timestamp_seconds", (NODE,), _R)
PIPELINE_SILENT = Series("govheal_alert_pipeline_silent", (NODE,), _R)
NOTIFICATIONS = Series("govheal_notifications_total", (NODE, CHANNEL, OUTCOME), _R, Kind.COUNTER)
DELIVERY = Series("govheal_notification_delivery_seconds", (NODE, CHANNEL), _R, Kind.HISTOGRAM)
OUTBOX_DEPTH = Series("govheal_outbox_depth", (NODE, CHANNEL), _R)
OUTBOX_OLDEST_AGE = Series("govheal_outbox_oldest_age_seconds", (NODE, CHANNEL), _R)
CHANNEL_DEGRADED = Series("govheal_channel_degraded", (NODE, CHANNEL), _R)

# -- daily ops cycle (issue 11) ----------------------------------------------------------------------
# The receiver reads them from the store (govheal/slots.py); all but the first exist once a report ran.
DAILY_REPORT_LAST_SUCCESS = Series("govheal_daily_report_last_success_timestamp_seconds", (NODE,), _R)
DAILY_REPORT_LAST_RUN = Series("govheal_daily_report_last_run_timestamp_seconds", (NODE,), _R)
DAILY_REPORT_VERIFIED = Series("govheal_daily_report_verified", (NODE,), _R)
DAILY_REPORT_LATENESS = Series("govheal_daily_report_lateness_seconds", (NODE,), _R)
DAILY_REPORT_CRITERION_PASS = Series("govheal_daily_report_criterion_pass", (NODE, "criterion"), _R)
DAILY_REPORT_CRITERION_VALUE = Series("govheal_daily_report_criterion_value", (NODE, "criterion"), _R)

# -- Prometheus built-ins ----------------------------------------------------------------------------
UP = Series("up", (JOB, NODE, "instance"), _P)
ALERTS = Series("ALERTS", (ALERTNAME, ALERTSTATE, NODE, "severity"), _P)

# -- recording rules (prometheus/rules/*.yml, docs/metrics.md "Recording rules") ---------------------
AVAILABILITY_1D = Series("agent:govheal_agent_availability:avg1d", _A, _REC)
RESTARTS_1D = Series("agent:govheal_restarts:increase1d", _A, _REC)
RESTARTS_SEEN_10M = Series("agent:govheal_agent_restarts:changes10m", _A, _REC)
HEAL_SUCCESS_1D = Series("node:govheal_heal_success:ratio1d", (NODE,), _REC)
RECOVERY_MEAN_1D = Series("agent:govheal_remediation_duration_seconds:mean1d", _A, _REC)
RECOVERY_P50_1D = Series("node:govheal_remediation_duration_seconds:p50_1d", (NODE,), _REC)
RECOVERY_P99_1D = Series("node:govheal_remediation_duration_seconds:p99_1d", (NODE,), _REC)
AGENTS_UP = Series("node:govheal_agents_up:sum", (NODE,), _REC)
AGENTS_ENABLED = Series("node:govheal_agents_enabled:sum", (NODE,), _REC)
DELIVERY_P50_1H = Series("channel:govheal_notification_delivery_seconds:p50_1h", (NODE, CHANNEL), _REC)
DELIVERY_P99_1H = Series("channel:govheal_notification_delivery_seconds:p99_1h", (NODE, CHANNEL), _REC)
# prometheus/rules/governance.yml: availability with maintenance left out, unplanned downtime
HEALTHY_UNLESS_MAINTENANCE = Series("agent:govheal_agent_healthy:unless_maintenance", _A, _REC)
AVAILABILITY_UNLESS_MAINTENANCE_1D = Series("agent:govheal_agent_availability_unless_maintenance:avg1d", _A, _REC)
AVAILABILITY_UNLESS_MAINTENANCE_7D = Series("agent:govheal_agent_availability_unless_maintenance:avg7d", _A, _REC)
OK_TIMESTAMP = Series("agent:govheal_agent_ok:timestamp_seconds", _A, _REC)
OBSERVED_TIMESTAMP = Series("agent:govheal_agent_observed:timestamp_seconds", _A, _REC)
UNPLANNED_DOWNTIME = Series("agent:govheal_agent_unplanned_downtime:seconds", _A, _REC)
# prometheus/rules/recording.yml group govheal-report: the daily report's step series (one sample per evaluation)
REPORT_EXPORTER_UP_STEP = Series("node:govheal_exporter_up:step", (NODE,), _REC)
REPORT_HEALTHY_STEP = Series("agent:govheal_agent_healthy:step", _A, _REC)
REPORT_MAINTENANCE_STEP = Series("agent:govheal_agent_maintenance:step", _A, _REC)

ALL: tuple[Series, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Series))
BY_NAME: dict[str, Series] = {s.name: s for s in ALL}

# Values of labels the boards filter on (docs/metrics.md lists them; the live test checks them).
REMEDIATION_OUTCOMES = ("healed", "already_recovered", "failed", "skipped", "duplicate", "circuit_open",
                        "failover_started", "failover_failed")
ATTEMPT_OUTCOMES = ("healed", "failed", "failover_failed")  # actions that ran (the heal ratio's denominator)
CIRCUIT_STATES = ("closed", "half_open", "open")
SWITCH_KINDS = ("mute", "pause", "maintenance")
NOTIFICATION_OUTCOMES = ("sent", "failed", "retried", "merged", "dropped_permanent")
EXPORTER_JOB, RECEIVER_JOB = "govheal-exporter", "govheal-receiver"
