"""Channel secrets from files named in config or env; redacted wherever text leaves the bridge."""

from __future__ import annotations


class Secrets:
    """Placeholder; completed below."""
