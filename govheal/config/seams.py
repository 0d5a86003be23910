"""The extension seams as the config sees them: :class:`Seams`, name → config model of each seam's entries.

The bases (``ProcessSpec``, ``RestartSpec``, ``ChannelSpec``) say what every entry has in common; each entry
declares its own model beside its implementation (govheal/matchers.py, remediator/strategies/<name>.py,
webhook_receiver/bridge/notifiers/<name>.py). govheal/seams.py (the top floor) hands the registries in:
this package imports none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args, get_origin

from pydantic import BaseModel

from govheal.config.agents import RestartSpec
from govheal.config.servers import ChannelSpec


@dataclass(frozen=True, eq=False)
class Seams:
    """name → config model of every entry of each seam (govheal/seams.py builds the real one)."""

    process: Mapping[str, type[BaseModel]]  # govheal/matchers.py MATCHERS: name → Matcher.spec
    restart: Mapping[str, type[RestartSpec]]  # remediator/strategies STRATEGIES: name → Strategy.Spec
    channel: Mapping[str, type[ChannelSpec]]  # webhook_receiver/bridge/notifiers NOTIFIERS: name → Notifier.Spec

    def _key(self) -> tuple:
        return tuple(tuple(m.items()) for m in (self.process, self.restart, self.channel))

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Seams) and self._key() == other._key()


def _tag(model: type[BaseModel], field: str) -> str | None:
    """The single Literal value of ``model.field`` (a discriminated union's tag), if it is one."""
    f = model.model_fields.get(field)
    args = get_args(f.annotation) if f is not None and get_origin(f.annotation) is Literal else ()
    return args[0] if len(args) == 1 else None
