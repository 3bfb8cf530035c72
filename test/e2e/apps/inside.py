"""Applications for the tests of seeing inside a worker and of its memory
(test/e2e/ops_inside_test.go).

- leaky: every request keeps 1 MiB forever, and answers the worker's pid.
- gil: /gil?id=X holds the GIL in C code (a regular expression that backtracks).
- chatty: writes a line to stderr and one to wsgi.errors.
- hang: /hang?id=X writes $E2E_RECORD_DIR/X.started, then sleeps inside
  wsgate_e2e_distinctive_sleeper until X.release exists; other paths answer
  the worker's pid at once.
"""

import os
import time

RECORD_DIR = os.environ.get("E2E_RECORD_DIR", ".")
_kept = []


def leaky(environ, start_response):
    _kept.append(b"x" * (1 << 20))  # filled, so resident
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def wsgate_e2e_distinctive_sleeper(ident):
    open(os.path.join(RECORD_DIR, ident + ".started"), "w").close()
    release = os.path.join(RECORD_DIR, ident + ".release")
    while not os.path.exists(release):
        time.sleep(0.05)


def hang(environ, start_response):
    if environ["PATH_INFO"] == "/hang":
        ident = environ.get("QUERY_STRING", "").partition("id=")[2] or "hang"
        wsgate_e2e_distinctive_sleeper(ident)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def chatty(environ, start_response):
    """Writes a line to its stderr and one to wsgi.errors, then answers its pid."""
    import sys
    sys.stderr.write("chatty on stderr\n")
    sys.stderr.flush()
    environ["wsgi.errors"].write("chatty on wsgi.errors\n")
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]



def wsgate_e2e_gil_holder():
    """A regular expression that backtracks for ages inside the re module's
    C code, which holds the GIL all along."""
    import re
    re.match(r"(a+)+$", "a" * 64 + "b")


def gil(environ, start_response):
    """/gil?id=X: writes X.started, then holds the GIL in C (for ever, in practice)."""
    ident = environ.get("QUERY_STRING", "").partition("id=")[2] or "gil"
    open(os.path.join(RECORD_DIR, ident + ".started"), "w").close()
    wsgate_e2e_gil_holder()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done"]


def make_app(global_conf, name="hang"):
    """PasteDeploy factory (use = call:inside:make_app): the app named by `name`."""
    return globals()[name]
