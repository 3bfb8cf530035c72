"""wsgate._speedups, the optional C half of wsgate.http11, held to the
pure-Python functions it stands for: on thousands of plain, twisted and random
requests and responses its answer, whenever it gives one, is exactly the
Python one; it leaks no memory and survives any input; WSGATE_NO_SPEEDUPS
turns it off.

`make test` sets WSGATE_TEST_SPEEDUPS=1 for the .venv, whose interpreter
`make build` builds the module for: then a missing module fails. Other
interpreters (make test-pythons) have no module and skip these tests; they
run http11's tests on the pure-Python functions, as WSGATE_NO_SPEEDUPS=1
does for the .venv (make test-no-speedups).
"""

import gc
import os
import random
import re
import subprocess
import sys

import pytest

from wsgate import http11 as H

try:
    from wsgate import _speedups as SP
except ImportError:
    SP = None

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(H.__file__)))


@pytest.fixture(autouse=True)
def speedups():
    if SP is None:
        if os.environ.get("WSGATE_TEST_SPEEDUPS"):
            pytest.fail("WSGATE_TEST_SPEEDUPS is set and wsgate._speedups does not import: `make build` builds it")
        pytest.skip("wsgate._speedups is not built for this interpreter")
    if H.SPEEDUPS is None:  # WSGATE_NO_SPEEDUPS: http11 left it unconfigured
        SP.configure(H._methods, H._keys, H._servers, H._names, H._py_parse, H._py_head, H._date_line,
                     H.MAX_HEAD, H.MAX_BODY)
    # The caches the C side reads are bounded (http11._KEYS_MAX), and other
    # tests' made-up names may have filled them: then the C side declines
    # every request with a name they lack, and the share below would not
    # show. Emptied, they fill again with this file's names.
    for cache in (H._keys, H._servers, H._names):
        cache.clear()


def http11_in_use(env):
    """What a fresh interpreter's wsgate.http11 takes with this environment."""
    out = subprocess.run([sys.executable, "-c", "from wsgate import http11; print(http11.parse.__module__)"],
                         cwd=PYTHON_DIR, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_http11_takes_the_module_unless_told_not_to():
    env = {k: v for k, v in os.environ.items() if k != "WSGATE_NO_SPEEDUPS"}
    env["PYTHONPATH"] = PYTHON_DIR
    assert http11_in_use(env) == "wsgate._speedups"
    env["WSGATE_NO_SPEEDUPS"] = "1"
    assert http11_in_use(env) == "wsgate.http11"


CONN = {"wsgi.url_scheme": "http", "REMOTE_ADDR": "192.0.2.7", "REMOTE_PORT": "40404", "wsgi.run_once": False}
CONN_TLS = {"wsgi.url_scheme": "https", "HTTPS": "on", "REMOTE_ADDR": "::1", "REMOTE_PORT": "1"}

# Each pool: what a plain request has, then (after None) what makes the
# Python parser defer, refuse or decode it another way; pick() takes one of
# the latter now and then.
METHODS = ["GET", "GET", "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "get",
           None, "CONNECT", "G T", "", "G\x01T"]
TARGET_BITS = ["a", "Z", "0", "-", ".", "_", "~", "%2F", "%2f", "%20", "%C3%A9", "%ff", "%00", "%25", "\xe9", ";", "=",
               "@", ":", "!", "$", "&", "'", "(", "*", "+", ",", "\"", "<", "{", "|", "\\", "#", "/",
               None, "%", "%4", "%zz", "\t", "?"]
QUERY_BITS = ["a=1", "&", "b=%zz", "%", "?", "=", "+", "%41", "#", "/", "\xff", ";", "", None, "\t"]
HOSTS = ["localhost", "example.com:8080", "EXAMPLE.org", "[::1]", "[::1]:9000", "127.0.0.1:80", "h:", "a:b:c", "::1",
         "h_1.example", "[fe80::1%25eth0]:1", "[a]b:80", "h:abc", "x!$&'()*+,;=~", None, "", "a b", "caf\xe9"]
HEADERS = [
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "Accept: */*", "Accept-Language: en-US,en;q=0.5",
    "Cookie: sessionid=abc123", "Cookie: csrftoken=x; theme=dark", "Referer: http://example.com/a?b",
    "X-Forwarded-For: 203.0.113.9", "Authorization: Basic dTpw", "If-None-Match: \"v1\"", "Cache-Control: max-age=0",
    "Pragma: no-cache", "Pragma: No-Cache", "Pragma: x", "X_Custom: underscore", "X-Custom_Name: underscore", "X-Empty:",
    "X-Blank: \t ", "X-Latin: caf\xe9", "X-Tabs:\ta\tb\t", "X-Spaces:   a  b   ", "Content-Type: text/plain",
    "Content-Type: application/json", "Connection: keep-alive", "Connection: Keep-Alive", "Keep-Alive: timeout=5",
    "X-!#$%&'*+.^`|~: tokens",
    None, "Connection: close", "Expect: 100-continue", "Upgrade: websocket", "Transfer-Encoding: chunked",
    "Bad Name: x", "NoColon", " Folded: x", "Content-Length: +5", "Content-Length: 05", "X-Ctl: a\x01b", "X-Del: a\x7fb",
]


def pick(rng, pool):
    """A plain entry of pool, or one after its None now and then."""
    cut = pool.index(None)
    if rng.randrange(30) == 0:
        return rng.choice(pool[cut + 1:])
    return rng.choice(pool[:cut])


TWISTS = [b"\r", b"\n", b" ", b"\t", b":", b"\x00", b"\x7f", b"\xff", b"%", b"\r\n", b"\r\n\r\n", b"?", b"/"]


def plain_request(rng):
    target = "/" + "".join(pick(rng, TARGET_BITS) for _ in range(rng.randrange(8)))
    if rng.randrange(2):
        target += "?" + "".join(pick(rng, QUERY_BITS) for _ in range(rng.randrange(6)))
    lines = [pick(rng, METHODS) + " " + target + " HTTP/1.1"]
    hosts = rng.choice([1, 1, 1, 1, 1, 1, 1, 1, 0, 2])
    headers = ["%s: %s" % (rng.choice(["Host", "host", "HOST"]), pick(rng, HOSTS)) for _ in range(hosts)]
    headers += [pick(rng, HEADERS) for _ in range(rng.randrange(8))]
    body = b""
    if rng.randrange(3) == 0:
        body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 7, 100])))
        headers.append("%s: %s%d%s" % (rng.choice(["Content-Length", "content-length"]), rng.choice(["", " ", "\t"]),
                                       len(body) + rng.choice([0, 0, 0, 0, 0, 1]), rng.choice(["", " "])))
    rng.shuffle(headers)
    for h in headers:
        name, _, value = h.partition(":")
        name = rng.choice([name, name.lower(), name.upper()])
        lines.append(name + ":" + value)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def twisted(rng, raw):
    """raw with a few bytes changed, inserted or cut off."""
    raw = bytearray(raw)
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(raw) + 1)
        what = rng.randrange(4)
        if what == 0:
            raw[i:i] = rng.choice(TWISTS)
        elif what == 1 and i < len(raw):
            raw[i] = rng.randrange(256)
        elif what == 2:
            del raw[i:i + rng.randrange(1, 4)]
        else:
            del raw[i:]
    return bytes(raw)


def outcome(f, *args):
    try:
        return ("result", f(*args))
    except Exception as exc:  # the same exception, from either
        return ("raised", type(exc), str(exc))


def check_parse(raw, pos=0, conn=CONN, max_head=H.MAX_HEAD, max_body=H.MAX_BODY, as_bytes=True):
    buf = bytes(raw) if as_bytes else bytearray(raw)
    want = outcome(H._py_parse, buf, pos, conn, max_head, max_body)  # first: it fills the caches the C side reads
    fast = SP.try_parse(buf, pos, conn, max_head, max_body)
    if fast is not None:
        assert want == ("result", fast), raw
    assert outcome(SP.parse, buf, pos, conn, max_head, max_body) == want, raw
    return fast is not None


def test_the_c_parser_gives_the_python_answer_on_many_requests():
    rng = random.Random(12)
    taken = plain = 0
    for i in range(6000):
        raw = plain_request(rng)
        if i % 3 == 2:
            raw = twisted(rng, raw)
        else:
            plain += 1
        pos = rng.choice([0, 0, 0, 3])
        raw = b"xyz"[:pos] + raw
        taken += check_parse(raw, pos, rng.choice([CONN, CONN, CONN_TLS]),
                             rng.choice([H.MAX_HEAD, H.MAX_HEAD, H.MAX_HEAD, 40, 200]),
                             rng.choice([H.MAX_BODY, H.MAX_BODY, H.MAX_BODY, 50]), as_bytes=bool(i % 2))
        if i % 7 == 0:  # a request after another in the buffer, and a second read of the same one
            check_parse(raw + plain_request(rng), pos)
    # Not vacuous: the C parser took a good share of the plain requests itself.
    assert taken > plain // 4, (taken, plain)


def test_the_c_parser_gives_the_python_answer_on_random_bytes():
    rng = random.Random(7)
    alphabet = b"GET /?%:\r\n HTTP/1.1Host:a0\t\x00\xff"
    for _ in range(5000):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randrange(60)))
        check_parse(raw)
        check_parse(b"GET / HTTP/1.1\r\nHost: a\r\n" + raw + b"\r\n\r\n")


def test_the_c_parser_leaves_odd_arguments_to_python():
    req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    check_parse(req)  # the caches know Host and "a"
    for args in [(memoryview(req), 0, CONN), (req.decode(), 0, CONN), (None, 0, CONN), (req, -1, CONN),
                 (req, 10 ** 30, CONN), (req, 0, None), (req, 0, {"wsgi.url_scheme": 1}), (req, 0, CONN, 0),
                 (req, 0, CONN, -5), (req, 0, CONN, 10 ** 30), (req, 0, CONN, H.MAX_HEAD, -1), (req, 1.0, CONN)]:
        assert outcome(SP.parse, *args) == outcome(H._py_parse, *args), args
    # A mount point and keywords are the Python parser's.
    assert SP.try_parse(req, 0, CONN) is not None
    assert SP.try_parse(req, 0, CONN, H.MAX_HEAD, H.MAX_BODY, "/m") is None
    assert SP.parse(req, 0, CONN, mount="/m") == H._py_parse(req, 0, CONN, mount="/m")
    assert SP.parse(b"GET /m/x HTTP/1.1\r\nHost: a\r\n\r\n", 0, CONN, H.MAX_HEAD, H.MAX_BODY, "/m")[0]["SCRIPT_NAME"] == "/m"


STATUSES = ["200 OK", "204 No Content", "304 Not Modified", "404 Nicht Gefunden", "101 Switching", "500 \xe9rreur",
            "200 \u20ac", "20", "301 Moved"]
NAMES = ["Content-Type", "content-type", "Content-Length", "CONTENT-LENGTH", "Date", "date", "X-Frame-OPTIONS",
         "Set-Cookie", "Vary", "ETag", "x-a"]
VALUES = ["text/plain", "13", "0", "+7", "-1", "x", " 5", "5 ", " DENY\t", "a=b; Path=/", "", "caf\xe9", "\u20ac",
          "Sun, 06 Nov 1994 08:49:37 GMT", "99999999999999999999"]


def without_date(head):
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: -\r\n", head) if isinstance(head, bytes) else head


def test_the_c_response_head_gives_the_python_bytes():
    rng = random.Random(3)
    taken = 0
    for i in range(6000):
        status = rng.choice(STATUSES)
        headers = [(rng.choice(NAMES), rng.choice(VALUES)) for _ in range(rng.randrange(5))]
        if i % 11 == 0:
            headers = [list(h) for h in headers]  # lists, not tuples: the Python function's
        if i % 13 == 0:
            headers = tuple(headers)
        length = rng.choice([None, None, 0, 13, 10 ** 20])
        chunked = rng.choice([False, True])
        want = outcome(H._py_head, status, headers, length, chunked)
        fast = SP.try_head(status, headers, length, chunked)
        if fast is not None:
            taken += 1
            assert without_date(want[1]) == without_date(fast), (status, headers, length, chunked)
        got = outcome(SP.response_head, status, headers, length, chunked)
        assert (got[0], without_date(got[1])) + got[2:] == (want[0], without_date(want[1])) + want[2:]
    assert taken > 1000


def test_the_c_response_head_dates_it_now():
    for _ in range(3):  # a second may turn between the two
        want = H.http_date()
        head = SP.response_head("200 OK", [("Content-Type", "text/plain")], 2, False)
        if b"\r\nDate: " + want + b"\r\n" in head:
            break
    else:
        pytest.fail("no Date: %s in %r" % (want, head))
    # An explicit date is the Python function's.
    assert b"Date: D\r\n" in SP.response_head("200 OK", [], None, False, b"D")


def test_no_reference_leaks():
    reqs = [b"GET /a%20b?q=1 HTTP/1.1\r\nHost: a:1\r\nCookie: a=1\r\nCookie: b=2\r\nPragma: no-cache\r\n\r\n",
            b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc",
            b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
            b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nab",
            b"GET / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\n", b"\xff\r\n\r\n"]
    heads = [("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")], None, False),
             ("404 X", [("Date", "d"), ("X-A", " v ")], 5, False), ("200 OK", [("Content-Length", "+1")], None, True),
             ("200 \u20ac", [], None, False), ("304 N", [("Content-Type", "t")], None, True)]

    good, lengths = {"Content-Type", "Content-Length", "X-A"}, {"Content-Length"}

    def run(n):
        for _ in range(n):
            for r in reqs:
                SP.parse(r, 0, CONN)
                SP.parse(bytearray(r), 0, CONN, 64, 8)
            for h in heads:
                outcome(SP.response_head, *h)
                SP.checked_length(h[1], good, lengths)

    run(200)
    gc.collect()
    before = sys.getallocatedblocks()
    run(3000)
    gc.collect()
    assert sys.getallocatedblocks() - before < 100


def start_response_outcome(headers, checked_length):
    """What LentResponse.start_response makes of headers with this
    checked_length (None: the Python loop alone)."""
    from wsgate import lend

    class Conn:
        id = 1
    saved = lend._checked_length
    lend._checked_length = checked_length
    try:
        resp = lend.LentResponse(None, Conn(), False)
        try:
            resp.start_response("200 OK", headers)
        except Exception as exc:
            return ("raised", type(exc), str(exc))
        return ("ok", resp.declared, resp.has_length)
    finally:
        lend._checked_length = saved


def test_the_c_header_check_gives_start_responses_verdict():
    from wsgate import lend
    rng = random.Random(5)
    names = ["Content-Type", "Content-Length", "content-length", "X-A", "Set-Cookie", "Bad Name", "Connection",
             "X_B", "", "É", 7]
    values = ["text/plain", "13", "+7", " 5", "", "a\tb", "a\x01b", "a\nb", "a\x7f", "caf\xe9", "\u20ac", "x" * 100, 5,
              b"13"]
    taken = 0
    for i in range(4000):
        headers = [(rng.choice(names), rng.choice(values)) for _ in range(rng.randrange(5))]
        if i % 17 == 0:
            headers = [list(h) for h in headers]
        if i % 19 == 0:
            headers = tuple(headers)
        # The Python loop first: it fills the sets of names seen valid that the C check reads.
        want = start_response_outcome(headers, None)
        fast = SP.checked_length(headers, lend._GOOD_NAMES, lend._LENGTH_NAMES)
        if fast is not False:
            taken += 1
            assert want[0] == "ok", (headers, want)
        assert start_response_outcome(headers, SP.checked_length) == want, headers
    assert taken > 500
