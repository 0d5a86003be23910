"""Typed model of the Alertmanager webhook body ("version 4"), mirroring ``notify/webhook/webhook.go``.

Unknown keys are ignored (newer Alertmanagers add ``notification_reason``, ``routeLabels``); anything
that does not fit raises :class:`PayloadError` naming the field, e.g. ``alerts[0].labels``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from govheal.config import field_path

MAX_ALERTS = 10_000


def incident_id(fingerprint: str, starts_at: str) -> str:
    """The one incident identity, shared by the inbox, the remediator (its dedupe key) and the bridge (the
    message key): an alert's fingerprint and start. Nothing parses it back: its parts are stored beside it."""
    return f"{fingerprint}:{starts_at}"


class PayloadError(Exception):
    """The request body is not an Alertmanager v4 payload; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, field: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status

    def as_json(self) -> dict[str, str]:
        out = {"error": self.message}
        if self.field:
            out["field"] = self.field
        return out


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


def _check_time(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not an RFC 3339 time such as 2026-11-29T15:39:23.117Z") from None
    return value


class Alert(_Model):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = Field(min_length=1, max_length=128)

    @field_validator("startsAt")
    @classmethod
    def _starts_is_time(cls, v: str) -> str:
        return _check_time(v)

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, v: dict[str, str]) -> dict[str, str]:
        if not v.get("alertname"):
            raise ValueError("an alert needs the label alertname")
        return v

    @property
    def incident(self) -> str:
        return incident_id(self.fingerprint, self.startsAt)

    @property
    def alertname(self) -> str:
        return self.labels["alertname"]


class Payload(_Model):
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    alerts: list[Alert] = Field(max_length=MAX_ALERTS)
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    groupKey: str = ""
    truncatedAlerts: int = Field(0, ge=0)




def _message(err: dict[str, Any]) -> str:
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error" and err["loc"] == ("version",):
        given = err.get("input")
        if not isinstance(given, str):
            return f"version must be the string \"4\" (quoted), got {json.dumps(given)[:40]}"
        return f"unsupported payload version {json.dumps(given)[:40]}; this receiver reads Alertmanager version \"4\""
    return msg


def _has_lone_surrogate(data: Any) -> bool:
    """JSON may escape half a surrogate pair (``"\\ud800"``); such a string cannot be stored or sent on."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_payload(body: bytes) -> Payload:
    """Bytes of a POST body → :class:`Payload`, or :class:`PayloadError` (400 unreadable, 422 wrong shape)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not valid UTF-8 (byte {exc.start}); send UTF-8 JSON", "body") from None
    if not text.strip():
        raise PayloadError("empty body; send the Alertmanager webhook JSON (version \"4\")", "body")
    try:
        data = json.loads(text)
    except RecursionError:
        raise PayloadError("body is nested too deeply to be an Alertmanager payload", "body") from None
    except ValueError as exc:
        raise PayloadError(f"body is not JSON: {exc}", "body") from None
    if ("\\ud" in text or "\\uD" in text) and _has_lone_surrogate(data):
        raise PayloadError("body contains a \\u escape of a lone UTF-16 surrogate (not a character)", "body")
    if not isinstance(data, dict):
        raise PayloadError(f"expected a JSON object, got {type(data).__name__}", "body", 422)
    try:
        return Payload.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise PayloadError(_message(first), field_path(tuple(first["loc"])), 422) from None
    except RecursionError:
        raise PayloadError("body is nested too deeply to be an Alertmanager payload", "body") from None
