"""The composition root: every seam's registry, and the config model built from them.

The base (govheal/config/) knows what a matcher, a restart strategy and a channel have in common; the
registries know the entries: govheal/matchers.py MATCHERS, remediator/strategies STRATEGIES and
webhook_receiver/bridge/notifiers NOTIFIERS. This top-floor module hands them to
:func:`govheal.config.build_config_model`. Every CLI, ``govheal up`` and the tests load config through
:func:`load_config` / :func:`parse_config` here.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from govheal import config as base
from govheal.matchers import MATCHERS
from remediator.strategies import STRATEGIES
from webhook_receiver.bridge.notifiers import NOTIFIERS


@functools.cache
def seams() -> base.Seams:
    return base.Seams(
        process={name: m.spec for name, m in MATCHERS.items()},
        restart={name: s.Spec for name, s in STRATEGIES.items()},
        channel={name: n.Spec for name, n in NOTIFIERS.items()},
    )


def config_model() -> type[base.Config]:
    """The model of a govheal.yaml (cached)."""
    return base.build_config_model(seams())


def parse_config(text: str, source: Path | None = None) -> base.Config:
    """Validate config text; :class:`govheal.config.ConfigError` lists every problem with file:line."""
    return base.parse_config(text, source, seams=seams())


def load_config(path: str | os.PathLike[str] | None = None) -> base.Config:
    """``path``, else $GOVHEAL_CONFIG, ./govheal.yaml, the bundled demo fleet; validated."""
    return base.load_config(path, seams=seams())
