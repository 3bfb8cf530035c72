"""Applications the gateway tests serve through real workers."""

import hashlib
import io
import json
import os
import time
from wsgiref.validate import validator


@validator
def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from %d" % os.getpid()]


@validator
def environ_json(environ, start_response):
    out = {k: v for k, v in environ.items() if isinstance(v, str)}
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@validator
def upload_hash(environ, start_response):
    inp = environ["wsgi.input"]
    h = hashlib.sha256()
    n = 0
    while True:
        block = inp.read(100000)
        if not block:
            break
        h.update(block)
        n += len(block)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%d %s" % (n, h.hexdigest())).encode()]


def sleepy(environ, start_response):
    time.sleep(float(environ["QUERY_STRING"] or "60"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slept"]


def raises(environ, start_response):
    raise RuntimeError("boom")


def latin1_header(environ, start_response):
    start_response("200 OK", [("X-Path", environ["PATH_INFO"])])
    return [environ["PATH_INFO"].encode("latin-1")]


def untyped(environ, start_response):
    """No Content-Type unless ?type= names one; a body net/http would sniff
    as HTML."""
    headers = [("Content-Type", environ["QUERY_STRING"][5:])] if environ["QUERY_STRING"] else []
    start_response("200 OK", headers)
    return [b"<html><body>not sniffed</body></html>"]


def router(environ, start_response):
    """/slow-die: say so on wsgi.errors, then die after a moment; else hello."""
    if environ["PATH_INFO"] == "/slow-die":
        environ["wsgi.errors"].write("dying soon\n")
        environ["wsgi.errors"].flush()
        time.sleep(0.5)
        os._exit(1)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from %d" % os.getpid()]


def nap(environ, start_response):
    """Say on wsgi.errors that the nap begins, then sleep QUERY_STRING seconds."""
    environ["wsgi.errors"].write("napping %s\n" % environ["QUERY_STRING"])
    environ["wsgi.errors"].flush()
    time.sleep(float(environ["QUERY_STRING"]))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"napped %d" % os.getpid()]


def big_request(environ, start_response):
    """The length of one big header, and the length and hash of the body."""
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d %d %s" % (len(environ.get("HTTP_X_BIG", "")), len(body), hashlib.sha256(body).hexdigest().encode())]


def nap_echo(environ, start_response):
    """QUERY_STRING is SECONDS/ID: sleep, then answer the id (and the body read)."""
    secs, _, ident = environ["QUERY_STRING"].partition("/")
    body = environ["wsgi.input"].read()
    time.sleep(float(secs))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [ident.encode() + b" " + body]


class _ExitAfterClose(list):
    """A response whose close() waits for PATH.release, then kills the worker."""

    def __init__(self, blocks, path):
        super().__init__(blocks)
        self.path = path

    def close(self):
        while not os.path.exists(self.path + ".release"):
            time.sleep(0.005)  # the app's own wait for the test's signal
        os._exit(1)


class _ReadSpy(io.FileIO):
    """A real file that leaves PATH.read behind if Python reads from it."""

    def read(self, size=-1):
        with open(self.name + ".read", "a") as f:
            f.write("%d\n" % size)
        return super().read(size)

    def readinto(self, b):
        with open(self.name + ".read", "a") as f:
            f.write("readinto\n")
        return super().readinto(b)


def send_spied_file(environ, start_response):
    """The file QUERY_STRING names through wsgi.file_wrapper; reading it in
    Python (instead of the master's sendfile) leaves QUERY_STRING.read."""
    f = _ReadSpy(environ["QUERY_STRING"], "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f)


def routes(environ, start_response):
    """/hello: the worker's pid. /hold?P: write P.started, wait until P.release
    exists, answer the pid (/hold-die: exit instead). /answer-then-die?P:
    answer the pid, then, once P.release exists, exit while idle.
    /garbage?P: write the pid to P.pid, then bytes that are no frame to the
    master, then wait to be killed. /die: exit mid-request.
    /read-some: read 10 bytes of the body and answer the pid, leaving the
    rest unread."""
    path, q = environ["PATH_INFO"], environ["QUERY_STRING"]
    if path in ("/hold", "/hold-die"):
        with open(q + ".started", "w") as f:
            f.write(str(os.getpid()))
        while not os.path.exists(q + ".release"):
            time.sleep(0.005)  # the app's own wait for the test's signal
        if path == "/hold-die":
            os._exit(1)
    elif path == "/answer-then-die":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _ExitAfterClose([b"%d" % os.getpid()], q)
    elif path == "/garbage":
        with open(q + ".pid", "w") as f:
            f.write(str(os.getpid()))
        os.write(3, b"\xff" * 64)  # the worker's own socket to the master
        time.sleep(3600)  # only the master's kill ends this worker
    elif path == "/die":
        os._exit(1)
    elif path == "/read-some":
        got = environ["wsgi.input"].read(10)
        if len(got) != 10:
            raise RuntimeError("read %d bytes of the body, want 10" % len(got))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d" % os.getpid()]
