"""bench/run.py's bookkeeping on made-up rounds (run: .venv/bin/python -m pytest -q bench/test_run.py): medians,
the CPU split, the noisy flag, the master's ceiling, the mixed case's second load and the targets. A mistake here
would only show at the end of a twenty-minute run."""

import argparse
import io
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run  # noqa: E402


def row(rps, p99, master_us, workers_us, others=10.0, master_pct=40.0, slow=None, cores=None):
    r = {"case": "x", "server": "s", "rps": rps, "p50_ms": p99 / 4, "p99_ms": p99, "avg_ms": p99 / 3,
         "master_cpu_pct": master_pct, "workers_cpu_pct": 80.0, "wrk_cpu_pct": 30.0, "other_cpu_pct": others,
         "cpu_us_per_req": master_us + workers_us, "master_us_per_req": master_us, "workers_us_per_req": workers_us,
         "master_peak_mb": 15.0, "workers_peak_mb": 30.0, "master_growth_mb": 2.0, "requests": int(rps * 4),
         "non2xx": 0, "errors": {"total": 0}, "master_cores": cores, "connections": 32}
    if slow:
        r["slow"] = {"rps": slow[0], "p50_ms": slow[1] / 2, "p99_ms": slow[1], "requests": int(slow[0] * 4),
                     "non2xx": 0, "errors": 0}
    return r


def test_medians_of_the_rounds_that_did_not_fail():
    runs = [row(100, 10, 30, 20, slow=(9, 400)), row(300, 30, 10, 40, slow=(10, 500)),
            {"case": "x", "server": "s", "failed": "exited"}, row(200, 20, 20, 60, slow=(8, 600))]
    m = run.median_result(runs)
    assert (m["rps"], m["p99_ms"]) == (200, 20)
    # CPU: the round with the median total (50, 50, 80 µs: the second of the two 50s would do as well)
    assert m["cpu_us_per_req"] == 50 and m["master_us_per_req"] + m["workers_us_per_req"] == 50
    assert m["requests"] == 2400
    assert m["slow"]["rps"] == 9 and m["slow"]["p99_ms"] == 500 and m["slow"]["requests"] == 108
    assert m["rounds_ok"] == 3 and len(m["rounds"]) == 4 and m["rounds"][2]["failed"] == "exited"
    assert run.cpu_per_req(m) in ("50 µs (30 + 20)", "50 µs (10 + 40)")


def test_noisy_and_the_master_ceiling():
    assert run.noisy(row(1, 1, 1, 1, others=run.NOISY_OTHERS_PCT + 1))
    assert not run.noisy(row(1, 1, 1, 1, others=run.NOISY_OTHERS_PCT))
    lines = run.master_lines({"wsgate": row(20000, 5, 45, 30, master_pct=95, cores=1),
                              "wsgate-chain": row(20000, 5, 50, 30, master_pct=60, cores=1),
                              "granian": row(30000, 5, 0, 25)})
    assert len(lines) == 2
    assert "45.0 µs" in lines[0] and "~22222 rps" in lines[0] and "THE MASTER WAS THE CEILING" in lines[0]
    assert "was not the ceiling" in lines[1]


def test_connections_grow_with_the_workers():
    opts = argparse.Namespace(connections=None, workers=16)
    assert run.case_connections(opts, run.CASES["hello"]) == 256
    assert run.case_connections(opts, run.CASES["djadmin"]) == 64
    opts.connections = 10
    assert run.case_connections(opts, run.CASES["djadmin"]) == 10


def test_targets_read_the_fast_view_and_flag_noise():
    table = {"mixed": {"wsgate": row(100, 300, 20, 20, slow=(9, 400)), "granian": row(100, 250, 0, 30)},
             "djadmin": {"wsgate": row(12, 900, 1, 80000, others=120), "granian": row(10, 900, 0, 90000)}}
    verdicts = {desc: (verdict, detail) for desc, verdict, detail in run.check_targets(table)}
    assert verdicts["mixed: wsgate's fast-view p99 ≤ granian's"][0] == "not met"
    admin = verdicts["djadmin: wsgate rps ≥ 1.0× granian"]
    assert admin[0] == "met" and "1.20×" in admin[1] and "noisy: others used 120% CPU" in admin[1]
    assert not any(desc.startswith("hello") for desc in verdicts)  # a case not measured gets no verdict


def test_markdown_of_a_saved_run(tmp_path):
    saved = {"info": {"date": "2026-12-01T15:00:00+00:00",
                      "machine": {"host": "vm", "cpus": 2, "cpu": "cpu", "kernel": "6"},
                      "versions": {"wsgate": "1"},
                      "settings": {"workers": 2, "wrk_threads": 2, "duration": 4, "warmup": 2, "rounds": 3}},
             "results": {"mixed": {"wsgate": row(100, 300, 30, 26, others=70, slow=(9, 400), cores=1)}},
             "targets": [["a target", "met", "1.00×"]]}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(saved))
    out = io.StringIO()
    run.markdown_report(str(path), out=out)
    text = out.getvalue()
    assert "| wsgate | 100 | 75.00ms | 300ms | 0 / 0 |" in text
    assert "56 µs (30 + 26) | 70% (noisy) |" in text
    assert "* wsgate: slow view 9.0 rps, p99 400ms" in text
    assert "* wsgate master: 30.0 µs of CPU per request" in text
    assert "(wrk -c32)" in text and "| a target | met | 1.00× |" in text


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
