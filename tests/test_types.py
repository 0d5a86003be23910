from __future__ import annotations

import pytest

from govheal.types import format_duration, parse_duration, parse_http_url, parse_listen, split_listen


@pytest.mark.parametrize(("text", "seconds"), [
    ("500ms", 0.5), ("5s", 5.0), ("2m", 120.0), ("1h30m", 5400.0), ("1d", 86400.0), (3, 3.0), (0.25, 0.25),
    ("1m30s", 90.0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5", "5x", "1m 30s", "-1s", -1, True, None, "s"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("seconds", [0.5, 5.0, 120.0, 5400.0, 90.0, 1.5])
def test_format_duration_round_trips(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


def test_listen_and_urls():
    assert split_listen(parse_listen("127.0.0.1:0")) == ("127.0.0.1", 0)
    assert split_listen("[::1]:9826") == ("::1", 9826)
    for bad in ("127.0.0.1", ":9", "h:99999", 9826):
        with pytest.raises(ValueError):
            parse_listen(bad)
    assert parse_http_url("http://127.0.0.1:1/health")
    for bad in ("ftp://x", "http://", "127.0.0.1:1/x", "http://h:notaport/"):
        with pytest.raises(ValueError):
            parse_http_url(bad)


def test_display_url_hides_credentials():
    from govheal.types import display_url

    assert display_url("https://ops:s3cret@127.0.0.1:8443/health?x=1") == "https://***@127.0.0.1:8443/health?x=1"
    assert display_url("http://127.0.0.1:1/health") == "http://127.0.0.1:1/health"
