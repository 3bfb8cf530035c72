"""WSGI test application for wsgate's end-to-end tests.

`app` dispatches on the first segment of PATH_INFO. Nearly every route is
wrapped in wsgiref.validate.validator, so any PEP 3333 violation by the server
(a wrong environ type, a missing key, a bad wsgi.input) fails the request with
an AssertionError. The few routes that must misbehave on purpose (hop-by-hop
or CR/LF headers, file_wrapper handed to the server unwrapped) are marked raw.

Routes record what they observed (pids, close() calls, re-raised exc_info)
as files in the directory named by the E2E_RECORD_DIR environment variable,
so the Go tests can check what happened inside the worker.
"""

import ctypes
import gc
import hashlib
import io
import json
import os
import signal
import sys
import time
from urllib.parse import parse_qs
from wsgiref.validate import validator

RECORD_DIR = os.environ.get("E2E_RECORD_DIR", "")


def record(name, text):
    """Write a record file atomically (the tests poll for it to appear)."""
    if not RECORD_DIR:
        raise RuntimeError("E2E_RECORD_DIR is not set")
    path = os.path.join(RECORD_DIR, name)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def query(environ):
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def text(start_response, body, status="200 OK", extra=()):
    if isinstance(body, str):
        body = body.encode("utf-8")
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))] + list(extra))
    return [body]


def as_json(start_response, obj):
    body = json.dumps(obj, sort_keys=True).encode("ascii")
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


# --- environ -----------------------------------------------------------------


def environ_view(environ, start_response):
    """Every CGI/HTTP key with its value, plus the wsgi.* facts, as JSON.

    Strings go out as JSON \\u escapes, so the latin-1 code points of
    PATH_INFO reach the test exactly."""
    out = {}
    for key, value in environ.items():
        if key.startswith("wsgi."):
            continue
        if not isinstance(value, str):
            out[key] = {"not-a-str": type(value).__name__}
            continue
        out[key] = value
    out["wsgi.version"] = list(environ["wsgi.version"])
    out["wsgi.url_scheme"] = environ["wsgi.url_scheme"]
    for flag in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once"):
        out[flag] = environ[flag]
    out["has wsgi.file_wrapper"] = "wsgi.file_wrapper" in environ
    out["pid"] = os.getpid()
    out["cwd"] = os.getcwd()
    return as_json(start_response, out)


# --- wsgi.input --------------------------------------------------------------


READ_MODES = ("chunks", "small", "all", "exact", "readline", "readline_n", "readlines", "iter")


def read_view(environ, start_response):
    """Read the body the way ?mode= says, then check EOF stays EOF.

    Without CONTENT_LENGTH (a chunked request) every mode reads until the
    stream says EOF; with it, "exact" reads exactly CONTENT_LENGTH bytes."""
    mode = query(environ).get("mode", "chunks")
    if mode not in READ_MODES:
        return text(start_response, "unknown mode %r\n" % mode, status="400 Bad Request")
    inp = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH", "")
    pieces = []
    if mode == "chunks":
        while True:
            b = inp.read(65536)
            if not b:
                break
            pieces.append(b)
    elif mode == "small":
        while True:
            b = inp.read(7)
            if not b:
                break
            pieces.append(b)
    elif mode == "all":
        # read() without a size is allowed by the stream but not by the
        # validator's wrapper, so call the server's own object.
        pieces.append(getattr(inp, "input", inp).read())
    elif mode == "exact":
        pieces.append(inp.read(int(length)))
    elif mode == "readline":
        while True:
            line = inp.readline()
            if not line:
                break
            pieces.append(line)
    elif mode == "readline_n":
        while True:
            line = inp.readline(5)
            if not line:
                break
            if len(line) > 5:
                raise AssertionError("readline(5) returned %d bytes" % len(line))
            pieces.append(line)
    elif mode == "readlines":
        pieces.extend(inp.readlines())
    else:  # iter
        for line in inp:
            pieces.append(line)
    data = b"".join(pieces)
    after = [inp.read(1), inp.read(65536), inp.readline()]
    return as_json(start_response, {
        "sha256": hashlib.sha256(data).hexdigest(),
        "length": len(data),
        "pieces": len(pieces),
        "lines_ok": all(p.endswith(b"\n") for p in pieces[:-1]) if mode in ("readline", "readlines", "iter") else True,
        "eof_sticky": after == [b"", b"", b""],
        "content_length": length,
    })


def _socket_inodes():
    """The inodes of the sockets this process has open."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue  # closed meanwhile (listdir's own descriptor)
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def _connection_inode(environ):
    """The inode of the server side of this request's TCP connection: the
    socket whose remote port is the client's."""
    remote = int(environ["REMOTE_PORT"])
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == remote:
                    return fields[9]
    raise AssertionError("no TCP connection from port %d" % remote)


def lent_view(environ, start_response):
    """Read the body in 64 KiB pieces (at most ?limit= bytes) and say, with
    its length and hash, how many of the reads left this worker holding the
    client's own socket (wsgate's BODY_LOAN), and whether it still holds it
    once done reading."""
    q = query(environ)
    limit = int(q.get("limit", "-1"))
    inp = environ["wsgi.input"]
    seen = []
    pieces = []
    total = 0
    while limit < 0 or total < limit:
        b = inp.read(65536 if limit < 0 else min(65536, limit - total))
        if not b:
            break
        pieces.append(b)
        total += len(b)
        seen.append(_socket_inodes())
    conn = _connection_inode(environ)
    data = b"".join(pieces)
    return as_json(start_response, {
        "sha256": hashlib.sha256(data).hexdigest(),
        "length": len(data),
        "lent_reads": sum(conn in inodes for inodes in seen),
        "held_after": conn in _socket_inodes(),
        "pid": os.getpid(),
    })


def echo_view(environ, start_response):
    """Stream the body back as it arrives: request and response flow at the
    same time, which a server that waits for one before the other deadlocks on."""
    inp = environ["wsgi.input"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def body():
        while True:
            b = inp.read(32768)
            if not b:
                return
            yield b

    return body()


# --- responses ---------------------------------------------------------------


def hello_view(environ, start_response):
    return text(start_response, "hello world\n")


def pid_view(environ, start_response):
    return text(start_response, str(os.getpid()))


def gc_view(environ, start_response):
    """How many objects the collector's permanent generation holds, and
    whether this module's functions are among them (gc.get_objects() lists
    only the generations it still walks)."""
    walked = any(o is pid_view for o in gc.get_objects())
    return text(start_response, "frozen=%d app-walked=%s" % (gc.get_freeze_count(), walked))


def write_view(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"one-")
    write(b"two-")
    return [b"three"]


def stream_view(environ, start_response):
    """n pieces and no Content-Length: the server must frame it itself.

    With ?hold=id the app yields the first piece, then waits for the test to
    create id.release before the rest: the client can only see that piece
    if the server transmits each block without waiting for the next."""
    q = query(environ)
    n = int(q.get("n", "5"))
    hold = q.get("hold")

    def body():
        for i in range(n):
            if i == 1 and hold:
                release = os.path.join(RECORD_DIR, hold + ".release")
                while not os.path.exists(release):
                    time.sleep(0.005)
            yield ("piece %d\n" % i).encode()

    start_response("200 OK", [("Content-Type", "text/plain")])
    return body()


def status_view(environ, start_response):
    """A body-less status with body bytes the server must not send."""
    q = query(environ)
    status = q["status"]
    headers = [] if status.startswith(("204", "304")) else [("Content-Type", "text/plain")]
    start_response(status, headers)
    return [b"MUST-NOT-BE-SENT"]


def excinfo_view(environ, start_response):
    q = query(environ)
    if q.get("when") == "before":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            1 / 0
        except ZeroDivisionError:
            start_response("500 Internal Server Error",
                           [("Content-Type", "text/plain"), ("X-Replaced", "yes")], sys.exc_info())
        return [b"replaced body"]

    if q.get("when") == "empty":
        # Only empty blocks so far: PEP 3333 says the headers are not sent
        # yet, so exc_info may still replace them.
        def empty_first():
            yield b""
            try:
                1 / 0
            except ZeroDivisionError:
                start_response("500 Internal Server Error",
                               [("Content-Type", "text/plain"), ("X-Replaced", "yes")], sys.exc_info())
            yield b"replaced after an empty block"

        start_response("200 OK", [("Content-Type", "text/plain")])
        return empty_first()

    ident = q["id"]

    def body():
        yield b"first chunk, headers are out\n"
        try:
            1 / 0
        except ZeroDivisionError:
            try:
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
            except ZeroDivisionError:
                record(ident, "reraised")
                raise
            record(ident, "not reraised")
        yield b"must not be reached\n"

    start_response("200 OK", [("Content-Type", "text/plain")])
    return body()


class ClosingBody:
    """An iterable whose close() leaves a record of how many pieces went out."""

    def __init__(self, ident, mode, count):
        self.ident, self.mode, self.count, self.sent = ident, mode, count, 0

    def __iter__(self):
        chunk = b"x" * 65536
        for _ in range(self.count):
            if self.mode == "raise" and self.sent == 1:
                raise RuntimeError("e2e: app fails mid-stream")
            self.sent += 1
            yield chunk

    def close(self):
        record("closed-" + self.ident, str(self.sent))


def close_view(environ, start_response):
    q = query(environ)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return ClosingBody(q["id"], q.get("mode", "normal"), int(q.get("n", "3")))


def lazy_view(environ, start_response):
    """A generator application: start_response runs at the first next(),
    after the server got the iterable back."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Lazy", "yes")])
    yield b"lazy "
    yield b"body"


def cookies_view(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Set-Cookie", "a=1; Path=/"),
                              ("Set-Cookie", "b=2, c=3; Path=/"),
                              ("X-Latin1", "caf\xe9")])
    return [b"cookies"]


def badlength_view(environ, start_response):
    """Declare one Content-Length, send another number of bytes."""
    q = query(environ)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", q["declared"])])
    return [b"x" * int(q["actual"])]


def errors_view(environ, start_response):
    environ["wsgi.errors"].write("e2e wsgi.errors marker %s\n" % query(environ)["id"])
    environ["wsgi.errors"].flush()
    return text(start_response, "logged")


# --- supervision -------------------------------------------------------------


def block_view(environ, start_response):
    """Hold a worker until the test creates <id>.release (or forever)."""
    ident = query(environ)["id"]
    record(ident + ".started", str(os.getpid()))
    release = os.path.join(RECORD_DIR, ident + ".release")
    while not os.path.exists(release):
        time.sleep(0.005)
    return text(start_response, str(os.getpid()))


def sleep_view(environ, start_response):
    """Answer after ?ms= milliseconds of sleep: a slow request that needs no test to release it."""
    time.sleep(int(query(environ)["ms"]) / 1000)
    return text(start_response, str(os.getpid()))


def crash_view(environ, start_response):
    """Kill this worker the way ?how= says, before or after the headers."""
    q = query(environ)
    record(q["id"] + ".pid", str(os.getpid()))

    def die():
        how = q["how"]
        sys.stdout.flush()
        sys.stderr.flush()
        if how == "exit":
            os._exit(7)
        elif how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif how == "segv":
            ctypes.string_at(0)
        raise ValueError("unknown crash %r" % how)

    if q.get("after") != "headers":
        die()

    def body():
        yield b"first chunk before the crash\n"
        die()

    start_response("200 OK", [("Content-Type", "text/plain")])
    return body()


def big_view(environ, start_response):
    """A large list body (the worker may write it to the client itself):
    ?size= bytes of a pattern that differs per position, its SHA-256 and the
    worker's pid in headers; ?declared= overrides Content-Length; ?body=stream
    makes it a generator of 64 KiB pieces."""
    q = query(environ)
    size = int(q["size"])
    unit = hashlib.sha256(q.get("seed", "").encode()).digest() * 2048  # 64 KiB
    body = (unit * (size // len(unit) + 1))[:size]
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", q.get("declared", str(size))),
                              ("X-Sha256", hashlib.sha256(body).hexdigest()), ("X-Pid", str(os.getpid()))])
    if q.get("body") == "stream":
        return (body[i:i + 65536] for i in range(0, size, 65536))
    return [body]


# --- raw routes (no validator: they misbehave on purpose) ------------------------


def hop_view(environ, start_response):
    q = query(environ)
    start_response("200 OK", [("Content-Type", "text/plain"), (q["name"], q["value"])])
    return [b"hop-by-hop header sent by the app\n"]


def header_view(environ, start_response):
    """Any header value the query names, even one PEP 3333 forbids."""
    q = query(environ)
    start_response("200 OK", [("Content-Type", "text/plain"), (q["name"], q["value"])])
    return [b"header sent by the app\n"]


def misbehave_view(environ, start_response):
    """Break the WSGI contract the way ?how= says; the server must answer 500
    and log it, and keep its worker."""
    how = query(environ)["how"]
    if how == "raise":
        raise ValueError("e2e: the app raised before start_response")
    if how == "none":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return None
    if how == "nostart":
        return [b"body without start_response"]
    if how == "str":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["a str, not bytes"]
    if how == "badstatus":
        start_response("OK", [("Content-Type", "text/plain")])
        return [b"status without a code"]
    if how == "twice":
        start_response("200 OK", [("Content-Type", "text/plain")])
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [b"start_response twice without exc_info"]
    raise ValueError("unknown misbehaviour %r" % how)


def crlf_view(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-Injected", "a\r\nSet-Cookie: e2e=pwned")])
    return [b"header injection\n"]


def file_view(environ, start_response):
    """Return a real file (or a BytesIO with ?like=bytesio) through
    wsgi.file_wrapper, from ?seek= on, so the server may use sendfile."""
    q = query(environ)
    f = open(q["path"], "rb")
    size = os.fstat(f.fileno()).st_size
    offset = int(q.get("seek", "0"))
    f.seek(offset)
    if q.get("like") == "bytesio":
        data = f.read()
        f.close()
        f = io.BytesIO(data)
    headers = [("Content-Type", "application/octet-stream"), ("X-Worker-Pid", str(os.getpid()))]
    if q.get("length") != "none":
        headers.append(("Content-Length", str(size - offset)))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 8192)


VALIDATED = {
    "environ": environ_view,
    "read": read_view,
    "lent": lent_view,
    "echo": echo_view,
    "hello": hello_view,
    "pid": pid_view,
    "gc": gc_view,
    "write": write_view,
    "stream": stream_view,
    "status": status_view,
    "excinfo": excinfo_view,
    "close": close_view,
    "errors": errors_view,
    "lazy": lazy_view,
    "cookies": cookies_view,
    "badlength": badlength_view,
    "block": block_view, "sleep": sleep_view,
    "crash": crash_view,
    "vfile": file_view,
}
RAW = {
    "big": big_view,  # a list, as Django's responses are: the validator's iterator would hide it
    "hop": hop_view,
    "header": header_view,
    "misbehave": misbehave_view,
    "crlf": crlf_view,
    "file": file_view,
}
ROUTES = {name: validator(view) for name, view in VALIDATED.items()}
ROUTES.update(RAW)


def app(environ, start_response):
    if environ.get("REQUEST_URI") == "*":  # OPTIONS *: answered with the environ
        return environ_view(environ, start_response)
    name = environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)[0]
    view = ROUTES.get(name)
    if view is None:
        return text(start_response, "no route %r\n" % name, status="404 Not Found")
    return view(environ, start_response)


# --- PasteDeploy factories (apps/pep3333.ini) --------------------------------


def make_app(global_conf, **local_conf):
    """paste.app_factory: the same application, served from an INI file."""
    return app


def make_tagger(app, global_conf, tag):
    """paste.filter_app_factory-style filter: tags every response, so a test
    sees the filter ran, and passes the environ through untouched."""

    def tagger(environ, start_response):
        def tagging_start_response(status, headers, exc_info=None):
            return start_response(status, headers + [("X-Tag", tag)], exc_info)

        return app(environ, tagging_start_response)

    return tagger


def make_tagger_filter(global_conf, tag):
    """paste.filter_factory: returns the filter for make_tagger."""
    return lambda next_app: make_tagger(next_app, global_conf, tag)
