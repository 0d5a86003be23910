"""Rendered messages: golden files (GOVHEAL_REGEN_GOLDEN=1 rewrites them), escaping, limits, safe trimming."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from govheal.testing.fake_discord import embed_errors
from govheal.testing.fake_telegram import parse_html, utf16_len
from webhook_receiver.bridge import render
from webhook_receiver.bridge.model import Notice

GOLDEN = Path(__file__).parent / "golden" / "bridge"
NASTY = "$(rm -rf /); `id` && echo <b>x</b> & <script>alert(1)</script> **bold** _it_ [x](http://e.vil) @everyone 🔥🚒"

CASES = {
    "firing": Notice(key="am:abc123", severity="critical", status="firing", title="AgentDown: GG on mac-studio",
                     summary="GG has not answered /health for 30s", agent="GG", node="mac-studio",
                     alertname="AgentDown", action="restarting (attempt 1 of 3)",
                     runbook_url="https://runbooks.example/govheal/AgentDown", description="Health probe failed.",
                     fields=(("job", "govheal"), ("instance", "127.0.0.1:9826")), created=1_790_000_000.0),
    "recovered": Notice(key="am:abc123", severity="critical", status="recovered", title="AgentDown: GG on mac-studio",
                        summary="GG has not answered /health for 30s", agent="GG", node="mac-studio",
                        action="restarted in 2.3 s, PID 812 → 905", created=1_790_000_000.0),
    "gave_up": Notice(key="am:def", severity="warning", status="gave_up", title="AgentFlapping: GC on n1",
                      summary="GC restarted 3 times in 10m", agent="GC", node="n1",
                      action="gave up after 3 attempts — circuit open, failover started", created=1_790_000_000.0),
    "nasty": Notice(key="am:<nasty>&", severity="info", status="info", title=f"Alert {NASTY}", summary=NASTY,
                    agent="G&G<1>", node="n*1_", action=NASTY, runbook_url="javascript:alert(1)",
                    description=NASTY, fields=((NASTY, NASTY),), created=1_790_000_000.0),
    "truncated": Notice(key="am:trunc", severity="critical", status="firing", title="AgentDown: GG on n1",
                        summary="GG is down", agent="GG", node="n1", alertname="AgentDown",
                        action="restart requested", created=1_790_000_000.0, left_out=40),
    "huge": Notice(key="am:huge", severity="critical", status="firing", title="AgentDown: GG on n1",
                   summary="S" * 5000, agent="GG", node="n1", action="restarting",
                   description=("line <&> of a very long description\n" * 300), created=1_790_000_000.0),
}


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("GOVHEAL_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with GOVHEAL_REGEN_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


@pytest.mark.parametrize("case", sorted(CASES))
def test_discord_payload_matches_golden(case: str) -> None:
    check_golden(f"{case}.discord.json",
                 json.dumps(render.discord_payload([CASES[case]]), indent=2, ensure_ascii=False) + "\n")


@pytest.mark.parametrize("case", sorted(CASES))
def test_telegram_html_matches_golden(case: str) -> None:
    check_golden(f"{case}.telegram.html", render.telegram_text([CASES[case]]).html + "\n")


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rendering_is_accepted_by_the_services_rules(case: str) -> None:
    n = CASES[case]
    assert embed_errors(render.discord_payload([n])) == {}
    tg = render.telegram_text([n])
    plain = parse_html(tg.html)  # raises on anything Telegram would reject
    assert utf16_len(plain) <= render.TELEGRAM_TEXT_MAX
    assert tg.plain == plain  # the plain-text retry shows exactly what the HTML would have shown


def test_untrusted_text_cannot_inject_markup_or_mentions() -> None:
    n = CASES["nasty"]
    html = render.telegram_text([n]).html
    assert "<script>" not in html and "<b>x</b>" not in html and "&lt;script&gt;" in html
    assert parse_html(html).count("<b>x</b>") >= 2  # shown literally, not interpreted
    payload = render.discord_payload([n])
    assert payload["allowed_mentions"] == {"parse": []}
    embed = payload["embeds"][0]
    assert "[x](http" not in embed["description"] and r"\[x\](http" in embed["description"]
    assert "javascript:" not in json.dumps(payload) and "javascript:" not in html  # unsafe runbook URL dropped
    assert "🔥🚒" in html and "🔥🚒" in embed["description"]


def test_ten_kilobyte_description_is_trimmed_keeping_identity_and_markup_whole() -> None:
    n = CASES["huge"]
    embed = render.discord_embed(n)
    assert render.embed_size(embed) <= render.DISCORD_TOTAL_MAX
    assert len(embed["description"]) <= render.DISCORD_DESCRIPTION_MAX
    assert embed["title"].startswith("CRIT · FIRING · AgentDown: GG on n1")
    assert {f["name"]: f["value"] for f in embed["fields"]}["Agent"] == "GG"
    tg = render.telegram_text([n])
    assert utf16_len(tg.html) <= render.TELEGRAM_NOTICE_MAX
    plain = parse_html(tg.html)
    assert "AgentDown: GG on n1" in plain and "agent GG · node n1" in plain and "am:huge" in plain
    assert "…" in plain
    assert "&lt;&amp;&gt;" in tg.html and "&l…" not in tg.html  # never cut inside an entity


def test_merged_discord_embeds_have_no_url_so_none_is_deduplicated() -> None:
    payload = render.discord_payload([CASES["firing"], CASES["gave_up"]])
    assert all("url" not in e for e in payload["embeds"])


def test_packing_respects_ten_embeds_and_six_thousand_characters() -> None:
    small = [CASES["firing"]] * 25
    assert render.pack_discord(small) == 10
    big = [CASES["huge"]] * 3
    assert render.pack_discord(big) == 1
    assert render.pack_telegram(big) == 1
    n = render.pack_telegram(small)
    assert 1 < n < 25 and utf16_len(parse_html(render.telegram_text(small[:n]).html)) <= render.TELEGRAM_BUDGET
    assert utf16_len(parse_html(render.telegram_text(small[: n + 1]).html)) > render.TELEGRAM_BUDGET


def test_colours_and_labels_follow_severity_and_status() -> None:
    assert render.discord_embed(CASES["firing"])["color"] == render.COLOR["critical"]
    assert render.discord_embed(CASES["recovered"])["color"] == render.COLOR["good"]
    assert render.discord_embed(CASES["gave_up"])["title"].startswith("WARN · GAVE UP")


def test_trim_cuts_at_a_word_boundary_with_an_ellipsis() -> None:
    assert render.trim("alpha beta gamma delta", 15) == "alpha beta…"
    assert render.trim("short", 15) == "short"
    assert len(render.trim("x" * 100, 10)) == 10


def test_an_unknown_severity_renders_as_info_instead_of_failing() -> None:
    odd = Notice(key="k", severity="page-me", status="firing", title="T", summary="s")  # type: ignore[arg-type]
    assert render.discord_embed(odd)["color"] == render.COLOR["info"]
    assert render.telegram_text([odd]).html.startswith("🔵 <b>INFO · FIRING · T</b>")


def test_info_only_messages_are_silent_and_anything_louder_is_not() -> None:
    assert render.discord_payload([CASES["nasty"]])["flags"] == render.DISCORD_SUPPRESS_NOTIFICATIONS
    assert "flags" not in render.discord_payload([CASES["nasty"], CASES["firing"]])
    assert render.telegram_text([CASES["nasty"]]).silent
    assert not render.telegram_text([CASES["gave_up"]]).silent


def test_a_repo_relative_runbook_is_shown_as_text_and_a_joined_one_as_a_link() -> None:
    from dataclasses import replace

    from webhook_receiver.bridge import with_runbook_base

    n = replace(CASES["firing"], runbook_url="docs/runbooks.md#agentdown")
    fields = render.discord_payload([n])["embeds"][0]["fields"]
    assert {"name": "Runbook", "value": "docs/runbooks.md#agentdown"} in fields
    assert "Runbook: <code>docs/runbooks.md#agentdown</code>" in render.telegram_text([n]).html

    linked = with_runbook_base(n, "https://github.com/acme/govheal/blob/main")
    assert linked.runbook_url == "https://github.com/acme/govheal/blob/main/docs/runbooks.md#agentdown"
    assert '<a href="https://github.com/acme/govheal/blob/main/docs/runbooks.md#agentdown">Runbook</a>' in \
        render.telegram_text([linked]).html
    assert with_runbook_base(CASES["firing"], "https://x.example/").runbook_url == CASES["firing"].runbook_url
    assert with_runbook_base(CASES["nasty"], "https://x.example/").runbook_url == "javascript:alert(1)"  # dropped later
    assert "javascript:" not in json.dumps(render.discord_payload([CASES["nasty"]]))


def test_a_message_for_a_truncated_group_says_how_many_alerts_were_left_out() -> None:
    n = CASES["truncated"]
    assert "and 40 more alerts of this group" in parse_html(render.telegram_text([n]).html)
    fields = render.discord_payload([n])["embeds"][0]["fields"]
    assert {"name": "Not shown", "value": render.left_out(n), "inline": False} in fields
    assert "and 40 more" in render.left_out(n)
    one = Notice(**{**n.to_dict(), "fields": (), "left_out": 1})
    assert "and 1 more alert of" in render.left_out(one)


FORGED = "x\r\n✅ INFO · RESOLVED · AgentDown: GG on n1\rgovheal: restarted\u2028ok"


def test_cr_lf_in_labels_and_annotations_cannot_forge_a_line_in_either_channel() -> None:
    n = Notice(key=f"k{FORGED}", severity="critical", status="firing", title=f"AgentDown: {FORGED}",
               summary=FORGED, agent=FORGED, node=FORGED, alertname="AgentDown", action="restart requested",
               runbook_url=FORGED, description=f"first line\n{FORGED}", fields=(("instance", FORGED),),
               created=1_790_000_000.0)
    html = render.telegram_text([n]).html
    plain = parse_html(html)
    outside_quote = parse_html(re.sub(r"(?s)<blockquote>.*?</blockquote>", "", html))
    assert not [line for line in outside_quote.splitlines() if "RESOLVED" in line and not line.startswith("🔴")
                and "\\n" not in line], outside_quote
    assert not any(line.startswith(("✅", "govheal: restarted")) for line in outside_quote.splitlines())
    assert "x\\r\\n✅ INFO · RESOLVED" in plain  # shown, escaped as the log shows it
    assert re.search(r"<blockquote>first line\nx\n✅ INFO · RESOLVED[^<]*</blockquote>", html)  # its lines, quoted
    embed = render.discord_payload([n])["embeds"][0]
    single = [embed["title"], embed["footer"]["text"], *(f["name"] + f["value"] for f in embed["fields"])]
    assert not any(c in s for s in single for c in "\r\n\u2028"), single
    summary = embed["description"].split("\n\n", 1)[0]
    assert "\n" not in summary and "\r" not in summary
    assert r"x\\r\\n✅ INFO" in summary  # the escape's backslashes are escaped for markdown: shown as \r\n
    assert embed_errors(render.discord_payload([n])) == {}
