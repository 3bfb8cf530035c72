"""The application behind the Go components' end-to-end tests (compress,
accesslog, requestid). Standard library only.

/page       a 60 KB HTML page, the same bytes on every call
/json       a JSON document (application/json)
/small      100 bytes of text: under compress's default min_size
/png        bytes labelled image/png (not on the allow-list)
/range      the page, honouring a single "Range: bytes=a-b" with a 206
/stream     text/plain sent in three pieces; with ?hold=ID the app waits after the first piece until the test
            creates $E2E_RECORD_DIR/ID.release, so the client sees the first piece only if it was streamed
/file       this file, as text/plain, through wsgi.file_wrapper (the server's sendfile path)
/raise      raises before start_response (the server answers 500 and logs the traceback)
/environ    the request's HTTP_X_REQUEST_ID, HTTP_ACCEPT_ENCODING and REMOTE_ADDR as JSON;
            it also writes the id to wsgi.errors
"""
import json
import os
import time


def page_bytes():
    lines = ["<!doctype html><html><head><title>components</title></head><body>"]
    for i in range(1500):
        lines.append("<p>paragraph %d: the quick brown fox jumps over the lazy dog %d times.</p>" % (i, i * 7 % 13))
    lines.append("</body></html>")
    return "\n".join(lines).encode("utf-8")


PAGE = page_bytes()


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/page":
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                  ("Content-Length", str(len(PAGE))), ("ETag", '"page-v1"')])
        return [PAGE]
    if path == "/json":
        body = json.dumps({"items": [{"n": i, "name": "item %d" % i} for i in range(400)]}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/small":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"s" * 99 + b"\n"]
    if path == "/png":
        start_response("200 OK", [("Content-Type", "image/png")])
        return [PAGE[:20000]]
    if path == "/range":
        return range_response(environ, start_response)
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return stream(environ.get("QUERY_STRING", "").partition("hold=")[2])
    if path == "/file":
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return environ["wsgi.file_wrapper"](open(__file__, "rb"), 8192)
    if path == "/raise":
        raise RuntimeError("raised on purpose for request %s" % environ.get("HTTP_X_REQUEST_ID"))
    if path == "/environ":
        rid = environ.get("HTTP_X_REQUEST_ID")
        environ["wsgi.errors"].write("handling request %s\n" % rid)
        environ["wsgi.errors"].flush()
        body = json.dumps({key: environ.get(key) for key in (
            "HTTP_X_REQUEST_ID", "HTTP_ACCEPT_ENCODING", "REMOTE_ADDR")}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]


def stream(hold):
    for i in range(3):
        if i == 1 and hold:
            release = os.path.join(os.environ["E2E_RECORD_DIR"], hold + ".release")
            while not os.path.exists(release):
                time.sleep(0.005)
        yield ("piece %d\n" % i).encode() * 600


def range_response(environ, start_response):
    spec = environ.get("HTTP_RANGE", "")
    if not spec.startswith("bytes=") or "," in spec:
        start_response("200 OK", [("Content-Type", "text/html"), ("Accept-Ranges", "bytes"),
                                  ("Content-Length", str(len(PAGE)))])
        return [PAGE]
    first, _, last = spec[len("bytes="):].partition("-")
    first = int(first)
    last = min(int(last) if last else len(PAGE) - 1, len(PAGE) - 1)
    part = PAGE[first:last + 1]
    start_response("206 Partial Content", [
        ("Content-Type", "text/html"), ("Accept-Ranges", "bytes"),
        ("Content-Range", "bytes %d-%d/%d" % (first, last, len(PAGE))), ("Content-Length", str(len(part)))])
    return [part]


def make_app(global_conf, **local_conf):
    return app
