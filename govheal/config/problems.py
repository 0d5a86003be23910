"""Operator-facing problems: each pydantic error becomes ``file:line: field: message`` with the fix
(did-you-mean for an unknown key, the seam's names for an unknown strategy or channel type)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from govheal.config.root import Config
from govheal.config.seams import Seams, _tag
from govheal.yamlpos import line_for


class Problem(BaseModel):
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


def field_path(loc: Iterable[str | int]) -> str:
    """pydantic's ``('agents', 0, 'health')`` → ``agents[0].health``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _strip(ann: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` → X."""
    while True:
        if get_origin(ann) is Annotated:
            ann = get_args(ann)[0]
        elif get_origin(ann) in (Union, UnionType) and type(None) in get_args(ann):
            rest = [a for a in get_args(ann) if a is not type(None)]
            if len(rest) != 1:
                return ann
            ann = rest[0]
        else:
            return ann


def _union_members(ann: Any) -> dict[str, Any]:
    """The members of a union of models by the names pydantic puts in an error location (tag or class name)."""
    if get_origin(ann) not in (Union, UnionType):
        return {}
    out: dict[str, Any] = {}
    for member in get_args(ann):
        if isinstance(member, type) and issubclass(member, BaseModel):
            out[member.__name__] = member
            for key in member.model_fields:
                if (tag := _tag(member, key)) is not None:
                    out[tag] = member
    return out


def _walk(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[tuple[str | int, ...], type[BaseModel] | None]:
    """Follow an error location through the model: drop pydantic's union tags ("command", "function-after[…]")
    and return the clean location and the model that holds its last key (for did-you-mean suggestions)."""
    out: list[str | int] = []
    ann: Any = root
    holder: type[BaseModel] | None = None
    for part in loc:
        if isinstance(part, str) and "[" in part:
            continue
        ann = _strip(ann)
        members = _union_members(ann)
        if members and isinstance(part, str) and part in members:
            ann = members[part]
            continue
        out.append(part)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            holder = ann
            f = ann.model_fields.get(part) if isinstance(part, str) else None
            ann = f.annotation if f is not None else None
        elif get_origin(ann) in (list, tuple):
            ann = get_args(ann)[0]
        elif get_origin(ann) is dict:
            ann = get_args(ann)[1]
        else:
            ann = None
    return tuple(out), holder


_HINTS: dict[str, str] = {
    "string_pattern_mismatch": "use letters, digits, '_', '.', '-' (starting with a letter or digit, at most 63)",
    "bool_parsing": "use true or false",
    "bool_type": "use true or false",
    "int_parsing": "use a whole number",
    "int_type": "use a whole number",
    "float_parsing": "use a number",
    "dict_type": "use a mapping (key: value)",
    "string_type": "use a string (quote it)",
}


def _tag_names(seams: Seams, discriminator: str) -> list[str]:
    return list(seams.restart if discriminator == "strategy" else seams.channel)


def _problem_from_error(err: dict[str, Any], file: str, lines: dict, model: type[Config]) -> Problem:
    loc, holder = _walk(model, tuple(err["loc"]))
    kind = err["type"]
    field = field_path(loc)
    line = line_for(lines, loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        choices = list(holder.model_fields) if holder else []
        close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(choices)}"
        msg = f"unknown key {key!r}; {hint}"
    elif kind == "missing":
        msg = "required key is missing; add it"
    elif kind == "union_tag_invalid":
        key = err["ctx"]["discriminator"].strip("'")
        names = _tag_names(model.seams, key)
        tag = err["ctx"]["tag"]
        msg = (f"unknown restart strategy {tag!r}; use one of: {', '.join(names)}" if key == "strategy"
               else f"unknown value {tag!r}; use one of: {', '.join(repr(n) for n in names)}")
        line = line_for(lines, (*loc, key))
        field = field_path((*loc, key))
    elif kind == "union_tag_not_found":
        key = err["ctx"]["discriminator"].strip("'")
        msg = f"missing {key!r}; use one of: {', '.join(_tag_names(model.seams, key))}"
    elif kind == "string_pattern_mismatch":
        msg = f"{err.get('input')!r} is not a valid name; {_HINTS[kind]}"
    elif kind == "list_type" and loc[-1] in ("argv",):
        msg = f"must be a list of arguments, not a shell string (got {err.get('input')!r}); write e.g. [gg, --serve]"
    elif kind == "list_type":
        msg = f"must be a list (got {err.get('input')!r}); write e.g. [a, b]"
    elif kind == "too_short" and loc == ("agents",):
        msg = "the fleet is empty; add at least one agent under agents:"
    elif kind == "too_short":
        msg = f"must not be empty (got {err.get('input')!r})"
    elif kind == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        msg = f"unknown value {err.get('input')!r}; use one of: {allowed.replace(' or ', ', ')}"
    elif kind in ("less_than_equal", "greater_than_equal", "greater_than", "less_than"):
        bound = err["msg"].removeprefix("Input should be ")
        msg = f"must be {bound} (got {err.get('input')!r})"
    else:
        text = err["msg"].removeprefix("Value error, ")
        typed = kind.endswith(("_type", "_parsing")) or kind in _HINTS
        msg = f"{text} (got {err.get('input')!r})" if typed else text
        if kind in _HINTS:
            msg = f"{msg}; {_HINTS[kind]}"
    return Problem(file=file, line=line, field=field, message=msg)
