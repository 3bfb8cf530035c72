"""Unit test of the wrk report parser (run: .venv/bin/python -m pytest -q bench/test_wrkparse.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wrkparse  # noqa: E402

CLEAN = """\
Running 3s test @ http://127.0.0.1:18001/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.18ms  533.96us  10.50ms   72.87%
    Req/Sec     7.33k     0.95k    8.65k    53.33%
  Latency Distribution
     50%    2.12ms
     75%    2.47ms
     90%    2.90ms
     99%    3.64ms
  43718 requests in 3.00s, 3.25MB read
Requests/sec:  14561.30
Transfer/sec:      1.08MB
"""

WITH_ERRORS = """\
Running 10s test @ http://127.0.0.1:18002/upload
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   464.12us  358.25us    1.20s    82.25%
    Req/Sec    13.43k     2.00k   19.76k    80.00%
  Latency Distribution
     50%  381.00us
     75%  599.00us
     90%  843.00us
     99%    1.52s
  80090 requests in 1.00m, 5.96MB read
  Socket errors: connect 1, read 80088, write 2, timeout 3
  Non-2xx or 3xx responses: 17
Requests/sec:  26671.22
Transfer/sec:      1.98MB
"""


def test_clean_report():
    r = wrkparse.parse(CLEAN)
    assert r["rps"] == pytest.approx(14561.30)
    assert r["requests"] == 43718
    assert r["seconds"] == pytest.approx(3.0)
    assert r["avg_ms"] == pytest.approx(2.18)
    assert r["p50_ms"] == pytest.approx(2.12)
    assert r["p99_ms"] == pytest.approx(3.64)
    assert r["errors"]["total"] == 0
    assert r["non2xx"] == 0
    assert r["bytes_read"] == round(3.25 * 2**20)


def test_units_and_errors():
    r = wrkparse.parse(WITH_ERRORS)
    assert r["p50_ms"] == pytest.approx(0.381)
    assert r["p99_ms"] == pytest.approx(1520.0)
    assert r["avg_ms"] == pytest.approx(0.46412)
    assert r["seconds"] == pytest.approx(60.0)
    assert r["errors"] == {"connect": 1, "read": 80088, "write": 2, "timeout": 3, "total": 80094}
    assert r["non2xx"] == 17
    assert r["bytes_read"] == round(5.96 * 2**20)


SMALL = CLEAN.replace("43718 requests in 3.00s, 3.25MB read", "12 requests in 3.00s, 838.00B read")


def test_bytes_read_units():
    assert wrkparse.parse(SMALL)["bytes_read"] == 838
    big = CLEAN.replace("3.25MB read", "1.50GB read")
    assert wrkparse.parse(big)["bytes_read"] == round(1.5 * 2**30)
    kb = CLEAN.replace("3.25MB read", "12.25KB read")
    assert wrkparse.parse(kb)["bytes_read"] == round(12.25 * 1024)


def test_not_a_report():
    with pytest.raises(wrkparse.WrkParseError):
        wrkparse.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_missing_latency_distribution():
    without = "\n".join(line for line in CLEAN.splitlines() if "%" not in line or "Req/Sec" in line)
    with pytest.raises(wrkparse.WrkParseError):
        wrkparse.parse(without)
