"""User-facing errors: the CLI prints the message (no traceback) and exits with the code."""

from __future__ import annotations


class GovhealError(Exception):
    """Something the operator can fix; the message says what and how."""

    exit_code = 1


class UsageError(GovhealError):
    exit_code = 2
