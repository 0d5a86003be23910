"""Defaults shared by the page, the API and the CLI: the page's URL and the host's time zone."""

from __future__ import annotations

import os
from pathlib import Path

from govheal.config import Config


def local_zone() -> str:
    """The host's IANA zone name (TZ, /etc/timezone, the /etc/localtime link), else UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if (tz and "/" in tz) or tz == "UTC":
        return tz
    try:
        name = Path("/etc/timezone").read_text().strip()
        if name:
            return name
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return "UTC"


def page_url(config: Config) -> str:
    if config.admin.page_url:
        return config.admin.page_url.rstrip("/")
    return f"http://{config.listen.receiver}/ops/governance"
