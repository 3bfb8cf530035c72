"""WSGI applications the worker tests serve. Each one is wrapped in
wsgiref.validate.validator (except where the wrapper would hide what is
tested), so a PEP 3333 violation by the worker fails the request."""

import hashlib
import json
import sys
from wsgiref.validate import validator

STR_KEYS = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
            "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "HTTP_HOST", "HTTP_X_DUP",
            "wsgi.url_scheme")


@validator
def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, ", b"world!\n"]


def hello_raw(environ, start_response):
    """Unwrapped: the validator's iterator wrapper would hide the list."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, ", b"world!\n"]


@validator
def environ_dump(environ, start_response):
    out = {k: environ[k] for k in STR_KEYS if k in environ}
    for k in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.version"):
        out[k] = environ[k]
    out["http_content_type"] = "HTTP_CONTENT_TYPE" in environ
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


@validator
def echo(environ, start_response):
    """Reads the body the way QUERY_STRING says and answers its length and hash."""
    inp = environ["wsgi.input"]
    mode = environ["QUERY_STRING"]
    chunks = []
    if mode == "read7":
        while True:
            c = inp.read(7)
            if not c:
                break
            chunks.append(c)
    elif mode == "read70001":  # larger than a frame of the small path, crossing frames
        while True:
            c = inp.read(70001)
            if not c:
                break
            chunks.append(c)
    elif mode == "readline":
        while True:
            c = inp.readline()
            if not c:
                break
            chunks.append(c)
    elif mode == "readline5":
        while True:
            c = inp.readline(5)
            assert len(c) <= 5
            if not c:
                break
            chunks.append(c)
    elif mode == "iter":
        chunks = list(inp)
    elif mode == "readlines":
        chunks = inp.readlines()
    elif mode == "none":
        pass
    body = b"".join(chunks)
    text = ("%d %s\n" % (len(body), hashlib.sha256(body).hexdigest())).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [text]


def read_all(environ, start_response):
    """read() with no size (the validator insists on a size, so unwrapped)."""
    body = environ["wsgi.input"].read()
    again = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d %s %d" % (len(body), hashlib.sha256(body).hexdigest().encode(), len(again))]


@validator
def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        yield b""  # empty blocks do not send the headers early
        for i in range(3):
            yield b"block %d\n" % i
    return gen()


@validator
def write_callable(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    return [b"returned"]


@validator
def error_after_headers(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        yield b"partial"
        try:
            raise RuntimeError("boom after headers")
        except RuntimeError:
            # PEP 3333: start_response re-raises once the headers are out.
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
    return gen()


@validator
def error_before_headers(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("changed my mind")
    except ValueError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"sorry"]


def raises(environ, start_response):
    raise KeyError("app bug")


def crlf_header(environ, start_response):
    start_response("200 OK", [("X-Bad", "a\r\nSet-Cookie: evil=1")])
    return [b"never"]


def hop_by_hop(environ, start_response):
    start_response("200 OK", [("Connection", "close")])
    return [b"never"]


class Closing:
    def __init__(self, environ, fail):
        self.environ = environ
        self.fail = fail

    def __iter__(self):
        yield b"one"
        if self.fail:
            raise RuntimeError("iteration failed")
        yield b"two"

    def close(self):
        self.environ["wsgi.errors"].write("close called\n")


def closing(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Closing(environ, environ["QUERY_STRING"] == "fail")


def file_wrapper(environ, start_response):
    """Not validated: the validator hides the wrapper from the worker."""
    path, _, offset = environ["QUERY_STRING"].partition("&")
    f = open(path, "rb")
    if offset:
        f.seek(int(offset))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f, 4096)


@validator
def no_content(environ, start_response):
    start_response("204 No Content", [])
    return [b"dropped"]


@validator
def errors_log(environ, start_response):
    environ["wsgi.errors"].write("first line\nsecond ")
    environ["wsgi.errors"].writelines(["line\n", "tail"])
    environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"logged"]


def exit_now(environ, start_response):
    import os
    os._exit(9)


not_callable = 42


def bad_header_name(environ, start_response):
    start_response("200 OK", [("X Space", "v")])
    return [b"never"]


def control_char(environ, start_response):
    start_response("200 OK", [("X-Ctl", "a\x01b")])
    return [b"never"]


class Endless:
    def __init__(self, environ):
        self.environ = environ

    def __iter__(self):
        while True:
            yield b"x" * 65536

    def close(self):
        self.environ["wsgi.errors"].write("close called\n")


def endless(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return Endless(environ)


def big(environ, start_response):
    """A list body of QUERY_STRING bytes (0, 1, … 255, 0, …), as Django's
    responses are lists: a large one may go to the client directly."""
    size = int(environ["QUERY_STRING"])
    body = (bytes(range(256)) * (size // 256 + 1))[:size]
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
    return [body]
