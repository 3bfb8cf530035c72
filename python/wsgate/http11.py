"""The worker's HTTP/1.1 half, for connections the master lends it
(docs/architecture.md, "The worker's HTTP/1.1 parser").

parse() reads one request from the bytes a client sent and builds the same
CGI environ the master's appendEnviron (internal/gateway/environ.go) builds
from net/http's parse of those bytes. It accepts only the plain, common
shape of a request (origin-form target, HTTP/1.1, CRLF lines, token names, one
Host, a Content-Length body under a limit, keep-alive) and answers DEFER for
everything else, so that the master, which holds the connection again with the
bytes, gives its own verdict (400, 431, 501, an Upgrade, a chunked body).
Deferring is always safe; accepting must be exact. A differential test sends
thousands of requests to the real master and holds parse() to its environ
(test/e2e/http11_differential_test.go).

response_head() and chunk() write what net/http writes for a WSGI response:
the status line, the application's headers, Date, and the framing.

Standard library only; CPython 3.9+. parse() runs once per request in the
worker's hot loop: it searches the head's end once, checks its bytes with one
bytes.translate, decodes it as latin-1 once, splits it once, and maps header
names (and Host values) to environ entries through bounded caches.
"""

import os
import re
import time
from urllib.parse import unquote

# Results of parse() other than a request.
NEED_MORE = "NEED_MORE"  # a valid prefix: read more bytes, then call again
DEFER = "DEFER"  # not the worker's to serve: hand the connection back

# wsgate's default --max-header-size, and the body limit the worker reads
# into memory before calling the application.
MAX_HEAD = 65536
MAX_BODY = 65536
# The bound of each cache below: a client inventing names cannot grow one
# without end.
_KEYS_MAX = 1024

# RFC 9110 token: a method and a header name (net/http: validMethod,
# validHeaderFieldByte).
_token = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z").match
# The bytes a line of a head may hold: HTAB, SP, VCHAR and obs-text; no
# other control byte, no DEL (net/http refuses them in a target or a header
# value; bytes 0x80-0xFF pass through as latin-1). Deleting these from a head
# must leave exactly the CR LF pairs between its lines.
_LINE_BYTES = bytes(c for c in range(256) if c == 9 or 0x20 <= c < 0x7f or c >= 0x80)
_host_ok = re.compile(r"[0-9A-Za-z!$%&'()*+,\-.:;=\[\]_~]+\Z").match
_bad_escape = re.compile(r"%(?![0-9A-Fa-f]{2})").search
_digits = re.compile(r"[0-9]{1,18}\Z").match

# Header names whose environ entry is not the plain HTTP_NAME one.
_DROP = 0  # a name with "_": the master drops it (environ.go)
_HOST = 1  # HTTP_HOST, SERVER_NAME, SERVER_PORT; exactly one
_LENGTH = 2  # CONTENT_LENGTH and the body; at most one
_COOKIE = 3  # joined with "; " as the master joins cookies
_CONNECTION = 4  # keep-alive only
_PRAGMA = 5  # net/http adds Cache-Control: no-cache for Pragma: no-cache
_REFUSE = 6  # the master's business: Expect, Upgrade, Transfer-Encoding

_SPECIAL = {
    "HOST": _HOST,
    "CONTENT-LENGTH": _LENGTH,
    "COOKIE": _COOKIE,
    "CONNECTION": _CONNECTION,
    "PRAGMA": _PRAGMA,
    "EXPECT": _REFUSE,
    "UPGRADE": _REFUSE,
    "TRANSFER-ENCODING": _REFUSE,
    "CONTENT-TYPE": "CONTENT_TYPE",  # a plain entry, under its CGI name
}

# Methods seen, all tokens.
_methods = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}


def _method(method):
    if method == "CONNECT" or not _token(method):
        return False  # CONNECT: net/http's tunnel rules
    if len(_methods) < _KEYS_MAX:
        _methods.add(method)
    return True


# Header name as sent → environ key (str) or one of the codes above.
_keys = {}


def _key(name):
    """The environ key or code of a header name; None if it is no token."""
    if not _token(name):
        return None
    upper = name.upper()
    if "_" in name:
        key = _DROP
    else:
        key = _SPECIAL.get(upper) or "HTTP_" + upper.replace("-", "_")
    if len(_keys) < _KEYS_MAX:
        _keys[name] = key
    return key


def conn_constants(environ):
    """The conn argument of parse(), from the environ the master built for
    the connection's first request: what comes from the connection rather
    than the request."""
    return {k: environ[k] for k in ("wsgi.url_scheme", "HTTPS", "REMOTE_ADDR", "REMOTE_PORT") if k in environ}


def parse(buf, pos, conn, max_head=MAX_HEAD, max_body=MAX_BODY, mount=""):
    """One request from buf[pos:]: (environ, body, end), NEED_MORE or DEFER.

    environ holds the CGI keys and wsgi.url_scheme exactly as the master
    sends them (latin-1 str); body is the request body (bytes); end is the
    index after the request in buf; buf is bytes or a bytearray. conn holds
    the connection's constants (conn_constants(), and whatever else every
    environ of the connection holds, e.g. the worker's wsgi.* entries: no
    HTTP_* or CGI request key), copied into every environ. max_head bounds the
    request line and headers with their final CRLF CRLF: give the master's
    --max-header-size or less. A body longer than max_body is deferred.
    mount is the application's mount point (the master's Handler mount, ""
    for the root).
    """
    end = buf.find(b"\r\n\r\n", pos, pos + max_head)
    if end < 0:
        return _incomplete(buf, pos, max_head)
    head = buf[pos:end]
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    if len(head.translate(None, _LINE_BYTES)) != 2 * len(lines) - 2:
        return DEFER  # a bare CR or LF, a control byte or DEL
    request_line = lines[0].split(" ")
    if len(request_line) != 3 or request_line[2] != "HTTP/1.1":
        return DEFER
    method, target, _ = request_line
    if method not in _methods and not _method(method):
        return DEFER
    if target[:1] != "/" or "\t" in target:
        return DEFER  # not origin-form ("*", absolute-form), or a HTAB
    # The connection's entries first: a header's key (HTTP_*, CONTENT_TYPE)
    # is never one of them, and copying a whole dict is cheaper than
    # inserting its entries one by one.
    environ = conn.copy()
    host = length = pragma = None
    del lines[0]
    for line in lines:
        name, colon, value = line.partition(":")
        key = _keys.get(name)
        if key is None:
            key = _key(name)
            if key is None:
                return DEFER  # not a token (obs-fold, a space before ":")
        if not colon:
            return DEFER
        value = value.strip(" \t")
        if key.__class__ is str:
            if key in environ:
                environ[key] += ", " + value
            else:
                environ[key] = value
        elif key == _HOST:
            if host is not None:
                return DEFER
            host = value
        elif key == _LENGTH:
            if length is not None or not _digits(value):
                return DEFER
            length = value
        elif key == _COOKIE:
            if "HTTP_COOKIE" in environ:
                environ["HTTP_COOKIE"] += "; " + value
            else:
                environ["HTTP_COOKIE"] = value
        elif key == _CONNECTION:
            if "HTTP_CONNECTION" in environ or value.lower() != "keep-alive":
                return DEFER
            environ["HTTP_CONNECTION"] = value
        elif key == _PRAGMA:
            if pragma is None:
                pragma = value
                environ["HTTP_PRAGMA"] = value
            else:
                environ["HTTP_PRAGMA"] += ", " + value
        elif key == _REFUSE:
            return DEFER
        # _DROP: nothing
    if host is None:
        return DEFER
    server = _servers.get(host)
    if server is None:
        server = _server(host)
        if server is None:
            return DEFER
    server_name, port = server
    start = end + 4
    if length is None:
        body = b""
    else:
        n = int(length)
        if n > max_body:
            return DEFER
        if start + n > len(buf):
            return NEED_MORE
        body = bytes(buf[start:start + n])
        start += n
        environ["CONTENT_LENGTH"] = length
    if pragma == "no-cache" and "HTTP_CACHE_CONTROL" not in environ:
        environ["HTTP_CACHE_CONTROL"] = "no-cache"  # net/http's fixPragmaCacheControl
    path, _, query = target.partition("?")
    if "%" in path:
        if _bad_escape(path):
            return DEFER  # net/http answers 400
        path = unquote(path, encoding="latin-1")
    script_name = ""
    if mount and path.startswith(mount) and (len(path) == len(mount) or path[len(mount)] == "/"):
        script_name, path = mount, path[len(mount):]
    environ["REQUEST_METHOD"] = method
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = path
    environ["QUERY_STRING"] = query
    environ["REQUEST_URI"] = target
    environ["SERVER_PROTOCOL"] = "HTTP/1.1"
    environ["SERVER_NAME"] = server_name
    environ["SERVER_PORT"] = port or ("443" if conn.get("wsgi.url_scheme") == "https" else "80")
    environ["HTTP_HOST"] = host
    return environ, body, start


def _incomplete(buf, pos, max_head):
    """NEED_MORE for the prefix of a request that may still be served, else
    DEFER: too long for max_head, or a line already complete and wrong (the
    master would answer it at once: the worker must not sit waiting)."""
    chunk = bytes(buf[pos:pos + max_head])
    # The fewest bytes that could end the head: the rest of CR LF CR LF.
    done = 3 if chunk.endswith(b"\r\n\r") else 2 if chunk.endswith(b"\r\n") else chunk.endswith(b"\r")
    if len(chunk) + 4 - done > max_head:
        return DEFER
    lines = chunk.split(b"\r\n")
    if len(chunk.translate(None, _LINE_BYTES)) != 2 * len(lines) - 2 + chunk.endswith(b"\r"):
        return DEFER  # a bare CR or LF, a control byte or DEL
    last = lines.pop()
    if chunk[:1] in (b"\r", b"\n"):
        return DEFER
    if lines:
        line = lines[0].decode("latin-1").split(" ")
        if len(line) != 3 or line[2] != "HTTP/1.1" or not _token(line[0]) or line[0] == "CONNECT":
            return DEFER
        if line[1][:1] != "/" or "\t" in line[1]:
            return DEFER
        for line in lines[1:]:
            name, colon, _ = line.decode("latin-1").partition(":")
            if not colon or not _token(name):
                return DEFER
    if last[:1] in (b" ", b"\t"):
        return DEFER  # obs-fold
    return NEED_MORE


# Host header → (SERVER_NAME, SERVER_PORT or "").
_servers = {}


def _server(host):
    """SERVER_NAME and SERVER_PORT of a Host value, None to defer it."""
    if not _host_ok(host):
        return None  # net/http answers 400
    server = _split_host_port(host)
    if not server[0]:
        return None  # empty: the master would name its local address
    if len(_servers) < _KEYS_MAX:
        _servers[host] = server
    return server


def _split_host_port(hostport):
    """SERVER_NAME and SERVER_PORT from Host, as environ.go's splitHostPort:
    net.SplitHostPort, else the whole value without its brackets and no
    port."""
    i = hostport.rfind(":")
    if i >= 0:
        j = k = 0
        if hostport[0] == "[":
            end = hostport.find("]")
            if end >= 0 and end + 1 == i:
                host, j, k = hostport[1:end], 1, end + 1
            else:
                host = None
        else:
            host = hostport[:i]
            if ":" in host:
                host = None
        if host is not None and "[" not in hostport[j:] and "]" not in hostport[k:]:
            return host, hostport[i + 1:]
    if hostport.startswith("["):
        hostport = hostport[1:]
    if hostport.endswith("]"):
        hostport = hostport[:-1]
    return hostport, ""


# --- responses ---------------------------------------------------------------

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_date = [-1, b"", ""]  # the second, its date as bytes and as the "Date: ...\r\n" line
_time = time.time


def http_date():
    """The IMF-fixdate of now (RFC 9110 5.6.7), as bytes: made at most once a
    second."""
    now = int(_time())
    if now != _date[0]:
        _new_date(now)
    return _date[1]


def _date_line():
    """"Date: <http_date()>\r\n", made at most once a second."""
    now = int(_time())
    if now != _date[0]:
        _new_date(now)
    return _date[2]


def _new_date(now):
    t = time.gmtime(now)
    text = "%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)
    _date[1] = text.encode("ascii")
    _date[2] = "Date: " + text + "\r\n"
    _date[0] = now


# Response header name → (canonical name, code, "Canonical-Name: "): net/http
# writes the canonical form (textproto.CanonicalMIMEHeaderKey).
_PLAIN, _CLEN, _DATE, _CTYPE = 0, 1, 2, 3
_RESPONSE_SPECIAL = {"Content-Length": _CLEN, "Date": _DATE, "Content-Type": _CTYPE}
_names = {}
# net/http takes an application's Content-Length if strconv.ParseInt does.
_go_int = re.compile(r"[+-]?[0-9]{1,18}\Z").match


def _canonical(name):
    canonical = "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
    entry = (canonical, _RESPONSE_SPECIAL.get(canonical, _PLAIN), canonical + ": ")
    if len(_names) < _KEYS_MAX:
        _names[name] = entry
    return entry


def no_body(status):
    """Whether a response of this status carries no body (1xx, 204, 304)."""
    code = status[:3]
    return code == "204" or code == "304" or code[0] == "1"


def app_length(headers):
    """The application's own Content-Length as net/http takes it (the first
    one, if strconv.ParseInt reads it as 0 or more), else None: then the
    body is framed by response_head's length or chunked."""
    for name, value in headers:
        if (_names.get(name) or _canonical(name))[1] == _CLEN:
            return length_value(value)
    return None


def length_value(value):
    """A Content-Length value as net/http takes it: its number if
    strconv.ParseInt reads it as 0 or more, else None."""
    if value.isdigit() and value.isascii() and len(value) <= 18:
        return int(value)  # the common spelling, without the regular expression
    return int(value) if _go_int(value) and int(value) >= 0 else None


def response_head(status, headers, length=None, chunked=False, date=None):
    """The bytes of the response head net/http writes for a WSGI response.

    status and headers are what the application gave start_response (checked
    by worker.Response.start_response: no hop-by-hop header, no control
    character). length is the body's length when it is known before the head
    goes out (the whole body in hand), else None; chunked asks for chunked
    framing (then frame the body with chunk() and end it with LAST_CHUNK).
    An application's own valid Content-Length (app_length()) wins over
    both: then the body goes out as it is, that many bytes. date is
    http_date() (given so a caller can reuse one), None to take it here.
    A 204 or 304 gets neither Content-Length nor Transfer-Encoding, as in
    net/http. Give length=None for a HEAD request unless the application
    gave a Content-Length (net/http cannot know the length either).
    The application's reason phrase is kept (net/http writes its own).
    """
    code = status[:3]
    empty = code == "204" or code == "304" or code[0] == "1"
    lines = ["HTTP/1.1 ", status, "\r\n"]
    app_length = has_date = None
    names = _names
    for name, value in headers:
        entry = names.get(name)
        if entry is None:
            entry = _canonical(name)
        if entry[1]:
            kind = entry[1]
            if kind == _CLEN:
                if empty:
                    continue
                if app_length is None:
                    app_length = value if _go_int(value) and int(value) >= 0 else ""
                if not app_length:
                    continue  # net/http drops an invalid one (every copy)
            elif kind == _DATE:
                has_date = True
            elif code == "304":
                continue  # Content-Type: net/http suppresses it on a 304
        lines += entry[2], value.strip(" \t"), "\r\n"
    if not has_date:
        lines.append(_date_line() if date is None else "Date: " + date.decode("ascii") + "\r\n")
    if not empty and not app_length:
        if chunked:
            lines.append("Transfer-Encoding: chunked\r\n")
        elif length is not None:
            lines += "Content-Length: ", str(length), "\r\n"
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


LAST_CHUNK = b"0\r\n\r\n"


def chunk(data):
    """data framed as one chunk of a chunked body (b"" for empty data: an
    empty chunk would end the body)."""
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)


def chunk_parts(data):
    """chunk() as three buffers for sendmsg, without copying data."""
    return (b"%x\r\n" % len(data), data, b"\r\n")


# The optional C module (python/wsgate/_speedups.c, docs/architecture.md "The
# C speedups"): its parse and response_head serve the plain request and
# response themselves and call the Python functions above for everything
# else. `make` builds it for one interpreter; any other one, and
# WSGATE_NO_SPEEDUPS=1, keeps the Python functions.
_py_parse, _py_head = parse, response_head
SPEEDUPS = None  # the C module, when it is in use
if os.environ.get("WSGATE_NO_SPEEDUPS"):
    SPEEDUPS_STATE = "Python (WSGATE_NO_SPEEDUPS is set)"
else:
    try:
        from wsgate import _speedups
    except ImportError:
        SPEEDUPS_STATE = "Python (no wsgate._speedups built for this interpreter)"
    else:
        _speedups.configure(_methods, _keys, _servers, _names, _py_parse, _py_head, _date_line, MAX_HEAD, MAX_BODY)
        parse, response_head = _speedups.parse, _speedups.response_head
        SPEEDUPS = _speedups
        SPEEDUPS_STATE = "C (wsgate._speedups)"
