"""Alert bridge benchmarks against the local fake Discord/Telegram servers (never the real services).

(a) accepted → delivered latency at nominal load (evenly spaced notices, below every rate limit);
(c) a 1,000-alert storm under the real limits (Discord 5 requests / 2 s per webhook; Telegram 1 message/s
per private chat, and 20/min for a group): time to drain against the theoretical minimum, messages, lost.
"""

from __future__ import annotations

import collections
import math
import re
import statistics
import tempfile
import time
from pathlib import Path

from govheal.seams import parse_config
from govheal.state import State
from govheal.testing.fake_discord import FakeDiscord
from govheal.testing.fake_telegram import FakeTelegram
from webhook_receiver.bridge import Bridge, Notice, render
from webhook_receiver.bridge.secrets import Secrets

DISCORD = [(5, 2.0)]
TG_CHAT = [(1, 1.0)]
TG_GROUP = [(1, 1.0), (20, 60.0)]


def _bridge(tmp: Path, channels: dict[str, tuple[str, str]]) -> Bridge:
    """channels: name → ("discord", url) | ("telegram", "token,chat,api")."""
    lines = ["node: bench", "state_dir: state", "agents:", "  - name: GG", "    process: {pidfile: GG.pid}",
             "    restart: {strategy: command, argv: ['true']}", "notifications:", "  channels:"]
    for name, (kind, value) in channels.items():
        (tmp / name).write_text(value.split(",")[0])
        if kind == "discord":
            lines.append(f"    {name}: {{type: discord, webhook_url_file: {name}}}")
        else:
            _, chat, api = value.split(",", 2)
            lines.append(f"    {name}: {{type: telegram, bot_token_file: {name}, chat_id: '{chat}', api_url: '{api}'}}")
    path = tmp / "govheal.yaml"
    path.write_text("\n".join(lines) + "\n")
    cfg = parse_config(path.read_text(), path)
    return Bridge(cfg, state=State.open(cfg.state_path), secrets=Secrets.load(cfg, env={}))


def _notice(i: int) -> Notice:
    return Notice(key=f"bench-{i}", severity="critical", status="firing", title=f"AgentDown: GG on bench #{i}",
                  summary=f"GG has not answered /health for 30s (id={i})", agent="GG", node="bench",
                  alertname="AgentDown", action="restarting (attempt 1 of 3)",
                  runbook_url="https://runbooks.example/govheal/AgentDown", created=time.time())


def _ids(texts: list[str]) -> collections.Counter:
    return collections.Counter(int(m) for t in texts for m in re.findall(r"\(id=(\d+)\)", t))


def _discord_ids(d: FakeDiscord) -> collections.Counter:
    return _ids([e["description"] for r in d.received for e in r["body"]["embeds"]])


def min_time(messages: int, windows: list[tuple[int, float]]) -> float:
    """Fastest possible send of ``messages`` requests under sliding windows [(count, seconds)]."""
    return max(((messages - 1) // c) * s for c, s in windows) if messages > 0 else 0.0


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def latency(samples: int, spacing: float = 1.25) -> str:
    with FakeDiscord() as d, FakeTelegram() as t, tempfile.TemporaryDirectory() as tmp:
        b = _bridge(Path(tmp), {"discord": ("discord", d.url), "telegram": ("telegram", f"{t.token},424242,"
                                                                                       f"{t.api_url}")})
        b.start()
        sent: dict[int, float] = {}
        try:
            for i in range(samples):
                sent[i] = time.monotonic()
                b.notify(_notice(i))
                time.sleep(spacing)
            deadline = time.monotonic() + 30
            while any(b.depth().values()) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            b.stop()
        rows = []
        for name, arrivals in (("discord", [(r["t"], r["body"]["embeds"]) for r in d.received]),
                               ("telegram", [(r["t"], [{"description": r["text"]}]) for r in t.received])):
            lat = [1000 * (ts - sent[i]) for ts, embeds in arrivals for i in _ids([e["description"] for e in embeds])]
            rows.append(f"| {name} | {len(lat)} | {_pct(lat, 50):.1f} | {_pct(lat, 99):.1f} | {max(lat):.1f} |")
    return "\n".join([f"(a) accepted → delivered at nominal load: {samples} notices, one every {spacing} s",
                      "", "| channel | notices | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|", *rows])


def storm(n: int) -> str:
    notices = [_notice(i) for i in range(n)]
    visible = sum(render.tg_len(render.tg_visible(render.telegram_block(x))) + 2 for x in notices)
    tg_msgs = math.ceil(visible / render.TELEGRAM_TEXT_MAX)
    with FakeDiscord() as d, FakeTelegram() as t, tempfile.TemporaryDirectory() as tmp:
        api = t.api_url
        b = _bridge(Path(tmp), {"discord": ("discord", d.url), "tg_chat": ("telegram", f"{t.token},424242,{api}"),
                                "tg_group": ("telegram", f"{t.token},-1001234567890,{api}")})
        b.start()
        done: dict[str, float] = {}
        t0 = time.monotonic()
        try:
            for x in notices:
                b.notify(x)
            deadline = t0 + 600
            while len(done) < 3 and time.monotonic() < deadline:
                for ch, depth in b.depth().items():
                    if depth == 0 and ch not in done:
                        done[ch] = time.monotonic() - t0
                time.sleep(0.02)
        finally:
            b.stop()
        chat = [r for r in t.received if r["chat_id"] == "424242"]
        group = [r for r in t.received if r["chat_id"] != "424242"]
        rows = []
        for name, msgs, ids, ideal, windows, rl in (
                ("discord (5 req / 2 s)", len(d.received), _discord_ids(d), math.ceil(n / 10), DISCORD,
                 d.rate_limited),
                ("telegram chat (1 msg/s)", len(chat), _ids([r["text"] for r in chat]), tg_msgs, TG_CHAT, None),
                ("telegram group (1/s, 20/min)", len(group), _ids([r["text"] for r in group]), tg_msgs, TG_GROUP,
                 None)):
            key = {"discord": "discord", "telegram chat": "tg_chat", "telegram group": "tg_group"}[name.split(" (")[0]]
            floor = min_time(ideal, windows)
            took = done.get(key, float("nan"))
            lost = n - len(ids)
            dups = sum(c - 1 for c in ids.values())
            rows.append(f"| {name} | {took:.1f} | {floor:.1f} | {took / floor if floor else float('nan'):.2f}x | "
                        f"{msgs} (min {ideal}) | {lost} | {dups} | {rl if rl is not None else t.rate_limited} |")
    return "\n".join([f"(c) storm of {n} alerts under the real rate limits (429s counted by the fakes)", "",
                      "| channel | drain s | theoretical min s | ratio | messages | lost | duplicates | 429s |",
                      "|---|---|---|---|---|---|---|---|", *rows])


def run(quick: bool) -> str:
    return latency(10 if quick else 60) + "\n\n" + storm(200 if quick else 1000)
