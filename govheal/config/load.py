"""Reading a govheal.yaml: parse_config (text) and load_config (a file, found by default_config_path);
either raises one :class:`ConfigError` listing every problem, sorted by line."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from govheal.config.build import build_config_model
from govheal.config.checks import _cross_checks
from govheal.config.problems import Problem, _problem_from_error
from govheal.config.root import Config
from govheal.config.seams import Seams
from govheal.errors import ConfigError
from govheal.yamlpos import YamlSyntaxError, load_with_lines


def parse_config(text: str, source: Path | None = None, *, seams: Seams) -> Config:
    """Validate config text against the model built from ``seams``; raise :class:`ConfigError` listing every
    problem. Callers use :func:`govheal.seams.parse_config`, which passes the real registries."""
    file = str(source) if source else "<config>"
    try:
        data, lines = load_with_lines(text)
    except YamlSyntaxError as exc:
        raise ConfigError([Problem(file=file, line=exc.line, field="", message=exc.message)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem(file=file, line=1, field="",
                                   message="the file must be a YAML mapping with an 'agents' list")])
    problems = _cross_checks(data, file, lines)
    model = build_config_model(seams)
    try:
        cfg = model.model_validate(data)
        cfg._source = source
    except ValidationError as exc:
        problems = [_problem_from_error(e, file, lines, model) for e in exc.errors()] + problems
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        raise ConfigError(_dedupe(problems))
    return cfg


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out


def default_config_path() -> Path:
    """--config wins; then $GOVHEAL_CONFIG; then ./govheal.yaml; then the bundled demo fleet."""
    env = os.environ.get("GOVHEAL_CONFIG")
    if env:
        return Path(env)
    local = Path("govheal.yaml")
    if local.is_file():
        return local
    from govheal.resources import example_config

    return example_config()


def load_config(path: str | os.PathLike[str] | None = None, *, seams: Seams) -> Config:
    """Read and validate a file (see :func:`parse_config`; callers use :func:`govheal.seams.load_config`)."""
    p = Path(path) if path is not None else default_config_path()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(file=str(p), line=None, field="",
                                   message="file not found; pass --config FILE or set GOVHEAL_CONFIG")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        why = "it is a directory" if p.is_dir() else ("it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError)
                                                     else getattr(exc, "strerror", None) or str(exc))
        raise ConfigError([Problem(file=str(p), line=None, field="",
                                   message=f"cannot read: {why}; pass --config with a govheal.yaml file")]) from None
    return parse_config(text, source=p.resolve(), seams=seams)
