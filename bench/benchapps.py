"""The plain WSGI applications the benchmark serves (cases hello, big, upload and mixed).

Each callable does the least its case needs, so the table measures the servers, not the apps.
"""

import time

HELLO = b"Hello, World!"
BIG = b"x" * (1024 * 1024)  # built once: the 1 MB case measures moving bytes, not making them
CHUNK = 64 * 1024


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def make_hello(global_conf, **local_conf):
    """hello as a PasteDeploy app factory (`use = call:benchapps:make_hello`), for the static case's INI file."""
    return hello


def big(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BIG)))])
    return [BIG]


def upload(environ, start_response):
    """Reads the whole request body in 64 KiB pieces and answers how many bytes came."""
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    total = 0
    while remaining > 0:
        piece = stream.read(min(CHUNK, remaining))
        if not piece:
            break
        total += len(piece)
        remaining -= len(piece)
    body = b"%d\n" % total
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


SLOW_SECONDS = 0.2  # the mixed case's slow view: a slow query or a remote call, the worker waiting


def mixed(environ, start_response):
    """The mixed case: /slow answers after 200 ms, anything else at once (hello's answer)."""
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(SLOW_SECONDS)
    return hello(environ, start_response)


def make_app(global_conf, app="hello"):
    """paste.app_factory for the cases served from an INI file (bench/chain.ini): the callable named `app`."""
    return globals()[app]
