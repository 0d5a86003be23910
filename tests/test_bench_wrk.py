"""bench/governance.py reads wrk's report (the benchmark itself is not a test; its parser is)."""

from __future__ import annotations

import pytest

from bench.governance import parse_wrk

REPORT = """Running 15s test @ http://127.0.0.1:40123/api/agents
  2 threads and 20 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.61ms    1.37ms  31.20ms   86.12%
    Req/Sec     2.18k   150.33     2.51k    71.33%
  Latency Distribution
     50%    4.40ms
     75%    5.02ms
     90%    5.93ms
     99%  812.00us
  65123 requests in 15.00s, 3.19GB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:   4341.53
Transfer/sec:    217.80MB
"""


def test_it_reads_counts_rates_and_latencies_in_every_unit() -> None:
    r = parse_wrk(REPORT)
    assert r["n"] == 65123 and r["rate"] == pytest.approx(4341.53)
    assert r["p50"] == pytest.approx(0.0044) and r["p99"] == pytest.approx(0.000812)
    assert r["max"] == pytest.approx(0.0312)
    assert r["errors"] == 7  # 4 non-2xx and 3 socket errors: an error is never a fast success


def test_an_unexpected_report_is_an_error_not_a_zero() -> None:
    with pytest.raises(ValueError, match="unexpected output"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")
