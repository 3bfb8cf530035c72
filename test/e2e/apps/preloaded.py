"""The application of the preload tests (test/e2e/ops_inside_test.go):
it reads $E2E_RECORD_DIR/version at import (a reload that imports again sees
a new one) and holds a few hundred thousand objects its workers may share.
"""

import os

RECORD_DIR = os.environ.get("E2E_RECORD_DIR", ".")


def _version():
    try:
        with open(os.path.join(RECORD_DIR, "version")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return "1"


VERSION = _version()  # read at import: a reload that imports again sees a new one
# Memory a preloader's workers share: a few hundred thousand objects.
BIG = [("row %d " % i) * 4 for i in range(300000)]


def versioned(environ, start_response):
    """Answers the version read at import, and the worker's pid."""
    body = ("%s %d" % (VERSION, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
