"""Placeholder of the worker's HTTP/1.1 parser (replaced by the http11 branch)."""

import re
import time
from urllib.parse import unquote_to_bytes

NEED_MORE = "need-more"
DEFER = "defer"

_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (/[!-~]*) HTTP/1\.1\Z").match
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z").match
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]").search
_KEYS = {}


def parse(buf, pos, conn, max_body=65536, max_head=65536):
    end = buf.find(b"\r\n\r\n", pos)
    if end < 0:
        return NEED_MORE if len(buf) - pos < max_head else DEFER
    lines = bytes(buf[pos:end]).split(b"\r\n")
    m = _LINE(lines[0])
    if m is None:
        return DEFER
    environ = dict(conn)
    method, target = m.group(1), m.group(2)
    path, _, query = target.partition(b"?")
    if b"#" in target or (b"%" in path and re.search(rb"%(?![0-9A-Fa-f]{2})", path)):
        return DEFER
    environ["REQUEST_METHOD"] = method.decode("latin-1")
    environ["SCRIPT_NAME"] = ""
    environ["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1")
    environ["QUERY_STRING"] = query.decode("latin-1")
    environ["REQUEST_URI"] = target.decode("latin-1")
    environ["SERVER_PROTOCOL"] = "HTTP/1.1"
    host = None
    length = 0
    seen = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _NAME(name):
            return DEFER
        value = value.strip(b" \t")
        if _BAD_VALUE(value):
            return DEFER
        lname = name.lower()
        if lname in (b"connection", b"expect", b"upgrade", b"transfer-encoding", b"te") or b"_" in name:
            if lname == b"connection" and value.lower() == b"keep-alive":
                pass
            else:
                return DEFER
        v = value.decode("latin-1")
        if lname == b"host":
            if host is not None:
                return DEFER
            host = v
            environ["HTTP_HOST"] = v
            continue
        if lname == b"content-length":
            if lname in seen or not value.isdigit():
                return DEFER
            length = int(value)
            seen[lname] = True
            environ["CONTENT_LENGTH"] = v
            continue
        key = _KEYS.get(lname)
        if key is None:
            key = "CONTENT_TYPE" if lname == b"content-type" else "HTTP_" + lname.decode("latin-1").upper().replace("-", "_")
            _KEYS[lname] = key
        if key in environ and lname in seen:
            environ[key] += ("; " if lname == b"cookie" else ", ") + v
        else:
            environ[key] = v
            seen[lname] = True
    if not host:
        return DEFER
    h, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not h or not port.isdigit():
        h, port = host, ""
    environ["SERVER_NAME"] = h.strip("[]")
    environ["SERVER_PORT"] = port or "80"
    if length > max_body:
        return DEFER
    start = end + 4
    if len(buf) < start + length:
        return NEED_MORE
    return environ, bytes(buf[start:start + length]), start + length


_date = [0, b""]


def http_date():
    now = int(time.time())
    if _date[0] != now:
        _date[0] = now
        _date[1] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode()
    return _date[1]


def response_head(status, headers, length, chunked, date):
    out = [b"HTTP/1.1 ", status.encode("latin-1"), b"\r\n"]
    for name, value in headers:
        out.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")))
    if length is not None:
        out.append(b"Content-Length: %d\r\n" % length)
    if chunked:
        out.append(b"Transfer-Encoding: chunked\r\n")
    out.append(b"Date: " + date + b"\r\n\r\n")
    return b"".join(out)
