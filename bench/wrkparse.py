"""Parse the text report of `wrk --latency` into numbers.

wrk prints human units (``381.00us``, ``2.12ms``, ``12.34k``); this module turns them back into
milliseconds and plain counts. Kept apart from run.py so bench/test_wrkparse.py can test it alone.
"""

import re

_TIME_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}

_PERCENTILE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.M)
_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_READ = re.compile(r"^\s*\d+ requests in [^,]+, ([\d.]+)([KMGTP]?)B read", re.M)
_BINARY = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}
_AVG_LATENCY = re.compile(r"^\s*Latency\s+([\d.]+)(us|ms|s|m|h)\s", re.M)


class WrkParseError(ValueError):
    """The text is not a wrk report with --latency (wrk failed, or printed something else)."""


def to_ms(value, unit):
    return float(value) * _TIME_MS[unit]


def parse(text):
    """Returns {rps, requests, seconds, bytes_read, avg_ms, p50_ms, p75_ms, p90_ms, p99_ms, errors{...}, non2xx}.

    `bytes_read` is what wrk read in all (headers and bodies; wrk rounds it to 3 significant digits), so
    bytes_read / requests tells a full page from a short redirect. `errors` holds wrk's socket errors (connect, read, write, timeout) and their total; `non2xx` counts
    responses with a status outside 2xx/3xx. Raises WrkParseError when a required figure is missing.
    """
    rps = _RPS.search(text)
    requests = _REQUESTS.search(text)
    if not rps or not requests:
        raise WrkParseError("no 'Requests/sec' or 'N requests in' line in wrk output: %r" % text[-400:])
    percentiles = {p: to_ms(v, u) for p, v, u in _PERCENTILE.findall(text)}
    if "50" not in percentiles or "99" not in percentiles:
        raise WrkParseError("no latency distribution (was wrk run with --latency?): %r" % text[-400:])
    avg = _AVG_LATENCY.search(text)
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    socket_errors = _SOCKET_ERRORS.search(text)
    if socket_errors:
        for key, value in zip(("connect", "read", "write", "timeout"), socket_errors.groups()):
            errors[key] = int(value)
    errors["total"] = sum(errors.values())
    non2xx = _NON_2XX.search(text)
    read = _READ.search(text)
    return {
        "rps": float(rps.group(1)),
        "requests": int(requests.group(1)),
        "seconds": to_ms(requests.group(2), requests.group(3)) / 1000.0,
        "bytes_read": round(float(read.group(1)) * _BINARY[read.group(2)]) if read else None,
        "avg_ms": to_ms(*avg.groups()) if avg else None,
        "p50_ms": percentiles["50"],
        "p75_ms": percentiles.get("75"),
        "p90_ms": percentiles.get("90"),
        "p99_ms": percentiles["99"],
        "errors": errors,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }
