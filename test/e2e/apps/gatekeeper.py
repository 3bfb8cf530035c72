"""WSGI applications for the end-to-end tests of sendfile, delegate, proxy
and cgi (test/e2e/gatekeeper_serve_test.go): a gate that decides who the
client is and hands the work to Go, Python file downloads to compare it
with, and Mercurial's hgweb as a delegation target.

Downloads record how long they held their worker (from the call to the
close() of the response) in E2E_RECORD_DIR/<id>.worker, in seconds.
"""

import base64
import binascii
import os
import time
from urllib.parse import parse_qs, quote

RECORD_DIR = os.environ.get("E2E_RECORD_DIR", "")
USERS = {"alice": "wonderland"}
REALM = "gatekeeper test"


def query(environ):
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}


def record(name, text):
    path = os.path.join(RECORD_DIR, name)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


class Timed:
    """A response iterable that records, at close(), how long the worker
    was held by it."""

    def __init__(self, ident, chunks, started, inner=None):
        self.ident, self.chunks, self.started, self.inner = ident, chunks, started, inner

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        if self.inner is not None and hasattr(self.inner, "close"):
            self.inner.close()
        if self.ident:
            record(self.ident + ".worker", "%.6f" % (time.monotonic() - self.started))


def read_file(f, size=1 << 16):
    while True:
        chunk = f.read(size)
        if not chunk:
            f.close()
            return
        yield chunk


def basic_user(environ):
    """The user of valid Basic credentials; None without any; False for
    wrong ones."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    try:
        user, _, password = base64.b64decode(encoded.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    if scheme.lower() != "basic" or USERS.get(user) != password:
        return False
    return user


def is_write(mount, environ):
    """Whether a Mercurial or git request changes the repository."""
    q = query(environ)
    if mount == "/hg":
        return q.get("cmd") in ("unbundle", "pushkey")
    return environ["PATH_INFO"].endswith("/git-receive-pack") or q.get("service") == "git-receive-pack"


def gate(environ, start_response):
    """/download?… answers by the means ?via= names; /hg/… and /git/… check
    the login and delegate; /delegate?to= delegates as the query says."""
    started = time.monotonic()
    path = environ["PATH_INFO"]
    q = query(environ)
    if path == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello from the gate\n"]
    if path == "/download":
        ident, name = q.get("id", ""), q.get("path", "")
        headers = [("Content-Type", "application/octet-stream"), ("Content-Disposition", "attachment; filename=big.bin")]
        via = q["via"]
        if via == "sendfile":
            start_response("200 OK", headers + [("X-Sendfile", name)])
            return Timed(ident, [b""], started)
        if via == "accel":
            start_response("200 OK", headers + [("X-Accel-Redirect", q["uri"])])
            return Timed(ident, [b""], started)
        f = open(name, "rb")
        headers.append(("Content-Length", str(os.fstat(f.fileno()).st_size)))
        start_response("200 OK", headers)
        if via == "file_wrapper":
            inner = environ["wsgi.file_wrapper"](f, 1 << 16)
            return Timed(ident, inner, started, inner)
        return Timed(ident, read_file(f), started)  # via=python: read and yield
    if path == "/delegate":
        headers = [("X-Wsgate-Delegate", q["to"]), ("Content-Type", "text/plain")]
        for key, header in (("user", "X-Wsgate-Remote-User"), ("script", "X-Wsgate-Script-Name"), ("pathinfo", "X-Wsgate-Path-Info")):
            if key in q:
                headers.append((header, q[key]))
        start_response("200 OK", headers)
        return [b"the gate's own body, never sent\n"]
    for mount, target in (("/hg", "hgweb"), ("/git", "git")):
        if path == mount or path.startswith(mount + "/"):
            user = basic_user(environ)
            if user is False or (user is None and is_write(mount, environ)):
                start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="%s"' % REALM), ("Content-Type", "text/plain")])
                return [b"log in first\n"]
            headers = [
                ("X-Wsgate-Delegate", target),
                ("X-Wsgate-Script-Name", quote(environ["SCRIPT_NAME"] + mount)),
                ("X-Wsgate-Path-Info", quote(path[len(mount):])),
            ]
            if user:
                headers.append(("X-Wsgate-Remote-User", user))
            start_response("200 OK", headers)
            return [b""]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]


def make_gate(global_conf):
    return gate


def make_hgweb(global_conf, repos):
    """hgweb for every repository under repos; pushes over plain HTTP from
    whoever REMOTE_USER names (hgweb refuses anonymous ones by allow-push)."""
    from mercurial.hgweb import hgwebdir

    return hgwebdir({b"/": os.path.join(os.fsencode(repos), b"*")})
