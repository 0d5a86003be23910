"""build_config_model: the file's model, with each seam's entries in ``process:``, ``restart:`` and the
channels (a flat model of every matcher's keys; discriminated unions on ``strategy`` and ``type``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, create_model

from govheal.config.agents import Agent, ProcessSpec
from govheal.config.root import Config
from govheal.config.seams import Seams, _tag
from govheal.config.servers import NotificationsSpec


def _tagged_union(models: Mapping[str, type[BaseModel]], field: str, seam: str) -> Any:
    for name, model in models.items():
        if _tag(model, field) != name:
            raise TypeError(f"{seam} {name!r}: its model's {field!r} must be Literal[{name!r}] "
                            f"(got {model.model_fields.get(field)})")
    members = tuple(models.values())
    return Annotated[Union[members], Field(discriminator=field)]  # noqa: UP007 - built at run time


def _process_model(matchers: Mapping[str, type[BaseModel]]) -> type[ProcessSpec]:
    """One flat model with every matcher's fields: its key optional, its options with their defaults."""
    fields: dict[str, Any] = {}
    for name, model in matchers.items():
        if name not in model.model_fields:
            raise TypeError(f"matcher {name!r}: its model must have a field named {name!r}")
        for key, f in model.model_fields.items():
            ann = Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation
            spec = (ann | None, Field(None, description=f.description)) if key == name else \
                (ann, Field(f.default, description=f.description))
            if key in fields and key != name:
                raise TypeError(f"matcher {name!r}: option {key!r} is declared by another matcher too")
            fields[key] = spec
    model = create_model("ProcessSpec", __base__=ProcessSpec, **fields)
    model.matchers = MappingProxyType(dict(matchers))
    return model


@functools.cache
def build_config_model(seams: Seams) -> type[Config]:
    """The model of a govheal.yaml whose ``process:``, ``restart:`` and channels are those of ``seams``."""
    process = _process_model(seams.process)
    restart = _tagged_union(seams.restart, "strategy", "restart strategy")
    channel = _tagged_union(seams.channel, "type", "channel type")
    agent = create_model("Agent", __base__=Agent, process=(process | None, None), restart=(restart | None, None))
    notifications = create_model("NotificationsSpec", __base__=NotificationsSpec,
                                 channels=(dict[str, channel], Field(default_factory=dict)))
    model = create_model("Config", __base__=Config, agents=(list[agent], Field(min_length=1)),
                         notifications=(notifications, Field(default_factory=notifications)))
    model.seams = seams
    return model
