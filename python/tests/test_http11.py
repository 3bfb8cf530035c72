"""wsgate.http11: the worker's HTTP/1.1 parser and response writer.

What the master does with the same bytes is checked against the real binary
by test/e2e/http11_differential_test.go; these tests pin each rule down.
"""

import email.utils
import time

import pytest

from wsgate import http11 as H
from wsgate.http11 import DEFER, NEED_MORE

CONN = {"wsgi.url_scheme": "http", "REMOTE_ADDR": "192.0.2.7", "REMOTE_PORT": "40404"}

GET = (b"GET /a/b?x=1 HTTP/1.1\r\n"
       b"Host: example.com:8080\r\n"
       b"User-Agent: test/1.0\r\n"
       b"Accept: */*\r\n"
       b"Connection: keep-alive\r\n"
       b"\r\n")

POST = (b"POST /form HTTP/1.1\r\n"
        b"Host: example.com\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 7\r\n"
        b"\r\n"
        b"a=1&b=2")


def parse(raw, conn=CONN, **kw):
    return H.parse(bytearray(raw), 0, conn, **kw)


def environ_of(raw, **kw):
    r = parse(raw, **kw)
    assert isinstance(r, tuple), "parse answered %r for %r" % (r, raw)
    return r[0]


def with_headers(*lines, target=b"/", method=b"GET"):
    return method + b" " + target + b" HTTP/1.1\r\n" + b"".join(l + b"\r\n" for l in lines) + b"\r\n"


def test_get_gives_the_masters_environ():
    environ, body, end = parse(GET)
    assert body == b"" and end == len(GET)
    assert environ == {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/a/b",
        "QUERY_STRING": "x=1",
        "REQUEST_URI": "/a/b?x=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "8080",
        "REMOTE_ADDR": "192.0.2.7",
        "REMOTE_PORT": "40404",
        "HTTP_HOST": "example.com:8080",
        "HTTP_USER_AGENT": "test/1.0",
        "HTTP_ACCEPT": "*/*",
        "HTTP_CONNECTION": "keep-alive",
    }


def test_post_body_and_content_headers():
    environ, body, end = parse(POST)
    assert body == b"a=1&b=2" and end == len(POST)
    assert environ["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert environ["CONTENT_LENGTH"] == "7"
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ


def test_content_length_zero_and_leading_zeros_are_passed_as_sent():
    assert environ_of(with_headers(b"Host: h", b"Content-Length: 0"))["CONTENT_LENGTH"] == "0"
    environ, body, _ = parse(with_headers(b"Host: h", b"Content-Length: 003") + b"abcdef")
    assert environ["CONTENT_LENGTH"] == "003" and body == b"abc"
    assert "CONTENT_LENGTH" not in environ_of(with_headers(b"Host: h"))


@pytest.mark.parametrize("raw", [GET, POST], ids=["GET", "POST"])
def test_every_prefix_needs_more(raw):
    for i in range(len(raw)):
        assert parse(raw[:i]) is NEED_MORE, raw[:i]
    assert isinstance(parse(raw), tuple)


def test_pipelined_requests_in_one_buffer():
    buf = bytearray(GET + POST + GET + POST[:-3])
    pos, seen = 0, []
    while True:
        r = H.parse(buf, pos, CONN)
        if not isinstance(r, tuple):
            break
        environ, body, pos = r
        seen.append((environ["REQUEST_METHOD"], body))
    assert r is NEED_MORE
    assert seen == [("GET", b""), ("POST", b"a=1&b=2"), ("GET", b"")]
    assert pos == len(GET + POST + GET)
    buf += b"b=2"
    environ, body, end = H.parse(buf, pos, CONN)
    assert body == b"a=1&b=2" and end == len(buf)


def test_path_is_percent_decoded_to_latin1_bytes():
    environ = environ_of(with_headers(b"Host: h", target=b"/a%2Fb/%C3%A9%ff/x%20y?q=%zz&r=%2F"))
    assert environ["PATH_INFO"] == "/a/b/\xc3\xa9\xff/x y"
    assert environ["QUERY_STRING"] == "q=%zz&r=%2F"  # raw, bad escapes and all
    assert environ["REQUEST_URI"] == "/a%2Fb/%C3%A9%ff/x%20y?q=%zz&r=%2F"


def test_raw_high_bytes_and_odd_characters_in_the_target():
    environ = environ_of(with_headers(b"Host: h", target=b"/caf\xc3\xa9/a#b/\"<>{}|\\^`?x#y??"))
    assert environ["PATH_INFO"] == "/caf\xc3\xa9/a#b/\"<>{}|\\^`"
    assert environ["QUERY_STRING"] == "x#y??"
    assert environ["REQUEST_URI"] == "/caf\xc3\xa9/a#b/\"<>{}|\\^`?x#y??"
    assert environ_of(with_headers(b"Host: h", target=b"/a?"))["QUERY_STRING"] == ""
    assert environ_of(with_headers(b"Host: h", target=b"//x//y"))["PATH_INFO"] == "//x//y"


@pytest.mark.parametrize("target", [b"/%", b"/%4", b"/%zz", b"/a%g1", b"/%%41"])
def test_invalid_escape_in_the_path_is_deferred(target):
    # net/http answers 400 (url.ParseRequestURI).
    assert parse(with_headers(b"Host: h", target=target)) is DEFER


def test_repeated_headers_are_joined_as_the_master_joins_them():
    environ = environ_of(with_headers(
        b"Host: h", b"Accept: a", b"accept: b", b"ACCEPT:c",
        b"Cookie: x=1", b"cookie: y=2",
        b"Content-Type: text/plain", b"content-type: charset=x",
    ))
    assert environ["HTTP_ACCEPT"] == "a, b, c"
    assert environ["HTTP_COOKIE"] == "x=1; y=2"
    assert environ["CONTENT_TYPE"] == "text/plain, charset=x"


def test_values_lose_surrounding_blanks_and_keep_inner_ones_and_latin1():
    environ = environ_of(with_headers(b"Host: h", b"X-A: \t a \t b \t ", b"X-B:", b"X-C: caf\xe9", b"X-D:\tx"))
    assert environ["HTTP_X_A"] == "a \t b"
    assert environ["HTTP_X_B"] == ""
    assert environ["HTTP_X_C"] == "caf\xe9"
    assert environ["HTTP_X_D"] == "x"


def test_names_with_underscore_are_dropped_as_the_master_drops_them():
    environ = environ_of(with_headers(b"Host: h", b"X_Forwarded_For: evil", b"X-Forwarded-For: good"))
    assert environ["HTTP_X_FORWARDED_FOR"] == "good"
    assert not [k for k in environ if "Forwarded_For" in k or "X_FORWARDED_FOR" == k[5:] and k[:5] != "HTTP_"]


def test_pragma_no_cache_adds_cache_control_as_net_http_does():
    assert environ_of(with_headers(b"Host: h", b"Pragma: no-cache"))["HTTP_CACHE_CONTROL"] == "no-cache"
    environ = environ_of(with_headers(b"Host: h", b"Pragma: no-cache", b"Cache-Control: max-age=0"))
    assert environ["HTTP_CACHE_CONTROL"] == "max-age=0"
    assert "HTTP_CACHE_CONTROL" not in environ_of(with_headers(b"Host: h", b"Pragma: No-Cache"))
    assert "HTTP_CACHE_CONTROL" not in environ_of(with_headers(b"Host: h", b"Pragma: x", b"Pragma: no-cache"))
    assert environ_of(with_headers(b"Host: h", b"Pragma: no-cache", b"Pragma: x"))["HTTP_PRAGMA"] == "no-cache, x"


@pytest.mark.parametrize("host, name, port", [
    ("example.com", "example.com", "80"),
    ("example.com:8080", "example.com", "8080"),
    ("example.com:", "example.com", "80"),
    ("EXAMPLE.com:08", "EXAMPLE.com", "08"),
    ("h:abc", "h", "abc"),
    ("127.0.0.1:9", "127.0.0.1", "9"),
    ("[::1]", "::1", "80"),
    ("[::1]:8443", "::1", "8443"),
    ("[::1]:", "::1", "80"),
    ("[fe80::1%25eth0]:1", "fe80::1%25eth0", "1"),
    ("::1", "::1", "80"),  # unbracketed: too many colons, the whole value
    ("a:b:c", "a:b:c", "80"),
    ("[a]b:80", "a]b:80", "80"),  # not host:port: the value without its "["
    ("[::1]]", "::1]", "80"),
])
def test_server_name_and_port_from_host(host, name, port):
    environ = environ_of(with_headers(b"Host: " + host.encode()))
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"], environ["HTTP_HOST"]) == (name, port, host)


def test_https_connection_defaults_to_port_443():
    conn = dict(CONN, **{"wsgi.url_scheme": "https", "HTTPS": "on"})
    environ = environ_of(with_headers(b"Host: h"), conn=conn)
    assert environ["SERVER_PORT"] == "443" and environ["HTTPS"] == "on"


def test_conn_constants_from_a_masters_environ():
    first = dict(environ_of(GET), HTTP_X="y", PATH_INFO="/p")
    assert H.conn_constants(first) == CONN


def test_mount_splits_script_name_as_the_handler_does():
    assert (environ_of(with_headers(b"Host: h", target=b"/app/x"), mount="/app")["SCRIPT_NAME"],
            environ_of(with_headers(b"Host: h", target=b"/app/x"), mount="/app")["PATH_INFO"]) == ("/app", "/x")
    environ = environ_of(with_headers(b"Host: h", target=b"/app"), mount="/app")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/app", "")
    environ = environ_of(with_headers(b"Host: h", target=b"/apple"), mount="/app")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("", "/apple")
    environ = environ_of(with_headers(b"Host: h", target=b"/%61pp/x"), mount="/app")  # decoded, then mounted
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/app", "/x")


DEFERRED = {
    "http/1.0": b"GET / HTTP/1.0\r\nHost: h\r\n\r\n",
    "http/2.0": b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "lowercase version": b"GET / http/1.1\r\nHost: h\r\n\r\n",
    "extra field": b"GET / HTTP/1.1 x\r\nHost: h\r\n\r\n",
    "two spaces": b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
    "space in target": b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
    "tab in target": b"GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n",
    "method not a token": b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
    "method with high byte": b"G\xc9T / HTTP/1.1\r\nHost: h\r\n\r\n",
    "CONNECT": b"CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n",
    "asterisk": b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "absolute-form": b"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "authority-form": b"GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n",
    "connection close": with_headers(b"Host: h", b"Connection: close"),
    "connection upgrade": with_headers(b"Host: h", b"Connection: Upgrade"),
    "connection keep-alive twice": with_headers(b"Host: h", b"Connection: keep-alive", b"Connection: keep-alive"),
    "connection list": with_headers(b"Host: h", b"Connection: keep-alive, te"),
    "expect": with_headers(b"Host: h", b"Expect: 100-continue", b"Content-Length: 1") + b"x",
    "upgrade": with_headers(b"Host: h", b"Upgrade: websocket"),
    "transfer-encoding": with_headers(b"Host: h", b"Transfer-Encoding: chunked") + b"0\r\n\r\n",
    "transfer-encoding identity": with_headers(b"Host: h", b"transfer-encoding: identity"),
    "content-length plus": with_headers(b"Host: h", b"Content-Length: +1") + b"x",
    "content-length minus": with_headers(b"Host: h", b"Content-Length: -1"),
    "content-length empty": with_headers(b"Host: h", b"Content-Length:"),
    "content-length hex": with_headers(b"Host: h", b"Content-Length: 0x1") + b"x",
    "content-length list": with_headers(b"Host: h", b"Content-Length: 1, 1") + b"x",
    "content-length inner space": with_headers(b"Host: h", b"Content-Length: 1 1") + b"x" * 11,
    "content-length twice, same": with_headers(b"Host: h", b"Content-Length: 1", b"Content-Length: 1") + b"x",
    "content-length twice, different": with_headers(b"Host: h", b"Content-Length: 1", b"Content-Length: 2") + b"xx",
    "content-length huge": with_headers(b"Host: h", b"Content-Length: 99999999999999999999999"),
    "body over the limit": with_headers(b"Host: h", b"Content-Length: 65537") + b"x" * 65537,
    "missing host": with_headers(b"Accept: */*"),
    "no headers": b"GET / HTTP/1.1\r\n\r\n",
    "two hosts": with_headers(b"Host: h", b"host: h"),
    "empty host": with_headers(b"Host:"),
    "host without name": with_headers(b"Host: :80"),
    "host with space": with_headers(b"Host: a b"),
    "host with at": with_headers(b"Host: u@h"),
    "host with slash": with_headers(b"Host: h/x"),
    "host with high byte": with_headers(b"Host: h\xe9"),
    "obs-fold": with_headers(b"Host: h", b"X-A: a", b" b"),
    "obs-fold tab": with_headers(b"Host: h", b"X-A: a", b"\tb"),
    "leading blank line": b"\r\n" + with_headers(b"Host: h"),
    "space before colon": with_headers(b"Host: h", b"X-A : a"),
    "space in name": with_headers(b"Host: h", b"X A: a"),
    "name not a token": with_headers(b"Host: h", b"X(A): a"),
    "empty name": with_headers(b"Host: h", b": a"),
    "no colon": with_headers(b"Host: h", b"Accept"),
    "NUL in value": with_headers(b"Host: h", b"X-A: a\x00b"),
    "CTL in value": with_headers(b"Host: h", b"X-A: a\x01b"),
    "DEL in value": with_headers(b"Host: h", b"X-A: a\x7fb"),
    "ESC in value": with_headers(b"Host: h", b"X-A: \x1b[0m"),
    "bare CR in value": with_headers(b"Host: h", b"X-A: a\rb"),
    "bare LF in value": with_headers(b"Host: h", b"X-A: a\nb"),
    "bare LF line ends": b"GET / HTTP/1.1\nHost: h\n\n",
    "bare LF mixed": b"GET / HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n",
    "bare CR line end": b"GET / HTTP/1.1\rHost: h\r\n\r\n",
    "NUL in target": b"GET /a\x00 HTTP/1.1\r\nHost: h\r\n\r\n",
    "DEL in target": b"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(DEFERRED))
def test_deferred(name):
    assert parse(DEFERRED[name]) is DEFER


def test_head_over_the_limit_is_deferred_complete_or_not():
    big = with_headers(b"Host: h", b"X-Big: " + b"b" * 70000)
    assert parse(big) is DEFER
    assert parse(big[:66000]) is DEFER  # no end in sight within the limit
    small = with_headers(b"Host: h", b"X-Big: " + b"b" * 1000)
    assert isinstance(parse(small), tuple)
    assert parse(small, max_head=len(small)) != DEFER
    assert parse(small, max_head=len(small) - 1) is DEFER
    assert parse(small[:-2], max_head=len(small) - 1) is DEFER


def test_body_limit_is_the_callers():
    raw = with_headers(b"Host: h", b"Content-Length: 10") + b"0123456789"
    assert parse(raw, max_body=9) is DEFER
    assert parse(raw, max_body=10)[1] == b"0123456789"


def test_a_wrong_line_defers_before_the_head_is_complete():
    # The master answers these at once: the worker must not wait for more.
    assert parse(b"GET / HTTP/1.0\r\n") is DEFER
    assert parse(b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n") is DEFER
    assert parse(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: \x00\r\n") is DEFER
    assert parse(b"GET / HTTP/1.1\nHost") is DEFER
    assert parse(b"GET / HTTP/1.1\r\nHost: h\r\n X") is DEFER
    assert parse(b"\r\n") is DEFER
    assert parse(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: \x01") is DEFER
    assert parse(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r") is NEED_MORE


def test_parse_starts_at_pos_and_reads_bytearray_slices():
    buf = bytearray(b"garbage" + GET)
    environ, _, end = H.parse(buf, 7, CONN)
    assert environ["PATH_INFO"] == "/a/b" and end == len(buf)


def test_header_name_cache_stays_bounded():
    for i in range(H._KEYS_MAX + 50):
        environ_of(with_headers(b"Host: h%d" % i, b"X-N%d: v" % i))
    assert len(H._keys) <= H._KEYS_MAX and len(H._servers) <= H._KEYS_MAX
    assert environ_of(with_headers(b"Host: h", b"X-Never-Seen-Before: v"))["HTTP_X_NEVER_SEEN_BEFORE"] == "v"


# --- responses ---------------------------------------------------------------

def head_lines(head):
    assert head.endswith(b"\r\n\r\n")
    status, *lines = head[:-4].decode("latin-1").split("\r\n")
    return status, [tuple(l.split(": ", 1)) for l in lines]


def test_response_head_with_length():
    status, lines = head_lines(H.response_head("200 OK", [("Content-Type", "text/plain")], 5, False, b"DATE"))
    assert status == "HTTP/1.1 200 OK"
    assert lines == [("Content-Type", "text/plain"), ("Date", "DATE"), ("Content-Length", "5")]


def test_response_head_chunked_and_no_framing():
    _, lines = head_lines(H.response_head("200 OK", [], None, True, b"D"))
    assert lines == [("Date", "D"), ("Transfer-Encoding", "chunked")]
    _, lines = head_lines(H.response_head("200 OK", [], None, False, b"D"))
    assert lines == [("Date", "D")]


def test_application_content_length_wins_and_invalid_one_is_dropped():
    _, lines = head_lines(H.response_head("200 OK", [("content-length", "3")], 5, True, b"D"))
    assert lines == [("Content-Length", "3"), ("Date", "D")]
    _, lines = head_lines(H.response_head("200 OK", [("Content-Length", "x"), ("Content-Length", "3")], 5, False, b"D"))
    assert lines == [("Date", "D"), ("Content-Length", "5")]
    _, lines = head_lines(H.response_head("200 OK", [("Content-Length", "-1")], None, True, b"D"))
    assert lines == [("Date", "D"), ("Transfer-Encoding", "chunked")]


def test_no_body_statuses_get_no_framing_and_304_no_content_type():
    for status in ("204 No Content", "304 Not Modified"):
        _, lines = head_lines(H.response_head(status, [("Content-Length", "3"), ("Content-Type", "text/plain")],
                                              3, True, b"D"))
        names = [n for n, _ in lines]
        assert "Content-Length" not in names and "Transfer-Encoding" not in names
        assert ("Content-Type" in names) == (status[:3] == "204")


def test_application_date_canonical_names_trimmed_latin1_values_and_reason_phrase():
    head = H.response_head("404 Nicht Gefunden", [("date", "Sun, 06 Nov 1994 08:49:37 GMT"), ("x-frame-OPTIONS", " DENY\t"),
                                                   ("Set-Cookie", "a=1"), ("set-cookie", "b=\xe9")], 0, False, b"D")
    status, lines = head_lines(head)
    assert status == "HTTP/1.1 404 Nicht Gefunden"
    assert lines == [("Date", "Sun, 06 Nov 1994 08:49:37 GMT"), ("X-Frame-Options", "DENY"),
                     ("Set-Cookie", "a=1"), ("Set-Cookie", "b=\xe9"), ("Content-Length", "0")]
    assert b"b=\xe9\r\n" in head


def test_app_length_and_no_body_say_how_to_frame():
    assert H.app_length([("X-A", "1"), ("content-length", "12")]) == 12
    assert H.app_length([("Content-Length", "+7")]) == 7  # strconv.ParseInt takes it
    assert H.app_length([("Content-Length", "x"), ("Content-Length", "3")]) is None  # the first decides
    assert H.app_length([("Content-Length", "-1")]) is None
    assert H.app_length([]) is None
    assert H.no_body("204 No Content") and H.no_body("304 Not Modified") and H.no_body("100 Continue")
    assert not H.no_body("200 OK") and not H.no_body("404 Not Found")


def test_http_date_is_imf_fixdate_of_now():
    before = int(time.time())
    d = H.http_date()
    after = int(time.time())
    assert len(d) == 29 and d.endswith(b" GMT")
    when = email.utils.parsedate_to_datetime(d.decode()).timestamp()
    assert before <= when <= after
    assert H.http_date() is d or int(time.time()) != before


def test_chunk_framing():
    assert H.chunk(b"hello") == b"5\r\nhello\r\n"
    assert H.chunk(b"x" * 300) == b"12c\r\n" + b"x" * 300 + b"\r\n"
    assert H.chunk(b"") == b""
    assert b"".join(H.chunk_parts(b"abc")) == H.chunk(b"abc")
    assert H.LAST_CHUNK == b"0\r\n\r\n"
