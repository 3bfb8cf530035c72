"""Applications the gateway tests serve through real workers."""

import hashlib
import json
import os
import sys
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


def send_file(environ, start_response):
    f = open(environ["QUERY_STRING"], "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f)


def die(environ, start_response):
    os._exit(1)


def sleepy(environ, start_response):
    time.sleep(float(environ["QUERY_STRING"] or "60"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slept"]


def raises(environ, start_response):
    raise RuntimeError("boom")


def garbage(environ, start_response):
    os.write(3, b"\xff" * 64)  # the worker's own socket to the master
    time.sleep(30)


def latin1_header(environ, start_response):
    start_response("200 OK", [("X-Path", environ["PATH_INFO"])])
    return [environ["PATH_INFO"].encode("latin-1")]


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
    def close(self):
        time.sleep(0.3)  # the master has the answer and sends the next request meanwhile
        os._exit(1)


def dies_when_idle(environ, start_response):
    """Answers, then the worker dies while idle, from its iterable's close()."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return _ExitAfterClose([b"bye from %d" % os.getpid()])
