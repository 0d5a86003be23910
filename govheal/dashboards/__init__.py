"""Grafana dashboards as code: typed Python in, the committed grafana/dashboards/*.json out.

``python -m govheal.dashboards`` writes them; ``--check`` fails when the committed files differ.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from govheal.dashboards import bridge, governance
from govheal.dashboards.model import Dashboard

# file name (without .json) → board builder: the one list of boards.
BOARDS: dict[str, Callable[[], Dashboard]] = {
    "govheal-governance": governance.board,
    "govheal-alert-bridge": bridge.board,
}


def render(board: Dashboard) -> str:
    """The dashboard JSON exactly as committed (stable key order, 2-space indent, final newline)."""
    return json.dumps(board.to_json(), indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """file name → JSON text for every board."""
    return {f"{name}.json": render(build()) for name, build in BOARDS.items()}


def write(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in rendered().items():
        path = out_dir / file_name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def stale(out_dir: Path) -> list[str]:
    """Board files in ``out_dir`` that differ from what the generator writes (or are missing/extra)."""
    want = rendered()
    have = {p.name for p in out_dir.glob("*.json")} if out_dir.is_dir() else set()
    bad = [name for name, text in want.items()
           if name not in have or (out_dir / name).read_text(encoding="utf-8") != text]
    return sorted(bad + [name for name in have - set(want)])
