"""What every section model shares: the strict base, the name pattern, and regex and time zone checks."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _compile(pattern: str, what: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{what} {pattern!r} does not compile: {exc}; fix the regular expression") from None
    return pattern


def regex_field(what: str) -> Any:
    """A string that must compile as a regular expression; the error names ``what`` and the fix."""
    return Annotated[str, AfterValidator(lambda v: _compile(v, what))]


def known_zone(v: str | None) -> str | None:
    """An IANA time zone name this machine knows (reports' slots, recurring switch windows), or None."""
    if v is None:
        return v
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r}; use an IANA name such as Asia/Bangkok, Europe/Berlin or "
                         "UTC") from None
    return v
