"""govheal.yaml: typed, strict models and a loader whose errors name file, line, field and fix.

Every section is a pydantic model with ``extra="forbid"``: a misspelt key is an error with a
did-you-mean, never silently ignored. Cross-field rules (unique names, ``depends_on`` targets and
cycles, fallbacks) are checked after the per-field pass, and every problem is reported at once.

Relative paths in the file are resolved against the directory of the file itself (as Prometheus
does), so a config and its state directory can move together. See docs/config.md.

Modules: ``common`` (the strict base, shared checks), the section models ``agents``, ``servers``, ``ops``
and ``root`` (``Config``), ``seams`` + ``build`` (the file's model from the registries), ``problems`` +
``checks`` (what the operator reads), ``load`` (parse and load). Import from here.
"""

from govheal.config.agents import Agent, Detection, HealthCheck, PolicySpec, RestartSpec
from govheal.config.build import build_config_model
from govheal.config.common import Strict, regex_field
from govheal.config.load import load_config, parse_config
from govheal.config.ops import ReportsSpec, ReportStep
from govheal.config.problems import field_path
from govheal.config.root import Config
from govheal.config.seams import Seams
from govheal.config.servers import ChannelSpec
from govheal.errors import ConfigError

__all__ = [
    "Agent",
    "ChannelSpec",
    "Config",
    "ConfigError",
    "Detection",
    "HealthCheck",
    "PolicySpec",
    "ReportStep",
    "ReportsSpec",
    "RestartSpec",
    "Seams",
    "Strict",
    "build_config_model",
    "field_path",
    "load_config",
    "parse_config",
    "regex_field",
]
