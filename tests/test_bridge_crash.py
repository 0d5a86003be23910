"""SIGKILL a process holding 200 queued notices mid-delivery, start it again: every notice is delivered,
and a duplicate can only come from the one request that was in flight at the kill (the documented
at-least-once window). Run as ``python -m tests.test_bridge_crash`` it is the small bridge driver."""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from govheal.testing.fake_discord import FakeDiscord
from govheal.testing.fake_telegram import FakeTelegram
from tests.test_bridge_delivery import bridge_config, discord_texts, ids_in, make_bridge, notice, wait_for

ROOT = Path(__file__).resolve().parent.parent


def driver(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--discord-url", required=True)
    p.add_argument("--telegram", required=True, help="token,chat,api_url")
    p.add_argument("--pacing", required=True, help="JSON {channel: [[count, seconds]]}")
    p.add_argument("--enqueue", type=int, default=0)
    args = p.parse_args(argv)
    cfg = bridge_config(args.dir, args.discord_url, tuple(args.telegram.split(",", 2)))
    bridge = make_bridge(cfg, pacing=json.loads(args.pacing))
    for i in range(args.enqueue):
        bridge.notify(notice(i))
    bridge.start()
    print("started", flush=True)
    while any(bridge.depth().values()):
        time.sleep(0.05)
    bridge.stop()
    print("drained", flush=True)
    return 0


def requests_with(ids_per_request: list[collections.Counter], dup: set[int]) -> list[int]:
    return [i for i, ids in enumerate(ids_per_request) if dup & set(ids)]


def assert_exactly_once_except_in_flight(per_request: list[collections.Counter], n: int) -> int:
    total = sum(per_request, collections.Counter())
    assert set(total) == set(range(n)), f"lost: {sorted(set(range(n)) - set(total))[:10]}"
    dup = {i for i, c in total.items() if c > 1}
    if dup:  # only the batch in flight at the kill may repeat, and only once
        carriers = requests_with(per_request, dup)
        assert len(carriers) == 2 and set(per_request[carriers[0]]) == dup, (sorted(dup), carriers)
        assert max(total.values()) == 2
    return len(dup)


@pytest.mark.live
def test_sigkill_with_200_queued_then_restart_delivers_each_exactly_once(tmp_path: Path) -> None:
    with FakeDiscord(limit=2, period=0.5) as d, FakeTelegram(per_chat=(1, 0.4)) as t:
        pacing = json.dumps({"discord": [[2, 0.5]], "telegram": [[1, 0.4]]})
        argv = [sys.executable, "-m", "tests.test_bridge_crash", "--dir", str(tmp_path), "--discord-url", d.url,
                "--telegram", f"{t.token},424242,{t.api_url}", "--pacing", pacing]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        first = subprocess.Popen([*argv, "--enqueue", "200"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert first.stdout.readline().strip() == "started"
            wait_for(lambda: len(d.received) >= 4 and len(t.received) >= 2, timeout=60, what="delivery under way")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        assert len(d.received) < 20, "the kill came too late to prove anything"
        second = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0 and "drained" in second.stdout, second.stderr[-2000:]
    per_discord = [ids_in([e["description"] for e in r["body"]["embeds"]]) for r in d.received]
    per_telegram = [ids_in([r["text"]]) for r in t.received]
    assert ids_in(discord_texts(d)).total() >= 200
    dup_d = assert_exactly_once_except_in_flight(per_discord, 200)
    dup_t = assert_exactly_once_except_in_flight(per_telegram, 200)
    print(f"duplicates after SIGKILL: discord {dup_d}, telegram {dup_t}")


if __name__ == "__main__":
    raise SystemExit(driver())
