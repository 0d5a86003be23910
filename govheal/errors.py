"""User-facing errors: the CLI prints the message (no traceback) and exits with the code."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from govheal.config.problems import Problem


class GovhealError(Exception):
    """Something the operator can fix; the message says what and how."""

    exit_code = 1


class UsageError(GovhealError):
    exit_code = 2


class ConfigError(Exception):
    """One or more problems in a config file; ``str()`` lists them, one per line. Here, not with the config
    models, so that the CLI can catch it without importing them (a command that reads no config starts fast)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def path_problem(path: object, exc: BaseException) -> str:
    """Why ``path`` cannot be created or opened, in the operator's words (``mkdir`` under a file says
    "File exists"; we say which ancestor is not a directory)."""
    import errno
    from pathlib import Path

    p = Path(str(path))
    mkdir_failed = getattr(exc, "errno", None) in (errno.EEXIST, errno.ENOTDIR)
    for parent in ((p, *p.parents) if mkdir_failed else p.parents):
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is not a directory"
            break
    return getattr(exc, "strerror", None) or str(exc)
