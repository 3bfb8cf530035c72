"""Mercurial's hgweb as an application of its own (its own worker pool),
which the demo's Django view at /hg/ hands requests to once it has decided
who the client is (demo/hg.py). No Django here: hgweb gets the user as
REMOTE_USER from wsgate.

    [app:hgweb]
    use = call:demo.hgweb:make_hgweb_app
    repositories = %(var_dir)s/hg
"""

import os
import threading

from mercurial.hgweb import common as hgweb_common
from mercurial.hgweb import hgwebdir


def write_hgrc(path):
    """The repository's own hgweb settings: pushes over plain HTTP (the demo
    has no TLS) from any user wsgate names; who that is, Django decides."""
    with open(os.path.join(path, ".hg", "hgrc"), "w") as f:
        f.write(
            "# Written by `wsgate manage … demo_setup`.\n"
            "[web]\n"
            "description = The wsgate demo repository\n"
            "contact = wsgate demo <demo@example.com>\n"
            "push_ssl = false\n"
            "allow-push = *\n"
        )


def require_user_to_push(hgweb, req, op):
    """hgweb permission hook: a push needs REMOTE_USER. (The Django view
    already asks for a login before delegating a push; this holds even if
    a push came another way.)"""
    if op == b"push" and not req.remoteuser:
        raise hgweb_common.ErrorResponse(hgweb_common.HTTP_UNAUTHORIZED, b"push needs a Django user")


def make_hgweb_app(global_conf, repositories):
    """paste.app_factory: one hgweb for every repository under repositories,
    made at the first request (the directory may not exist before the first
    run's `demo_setup`; the Django view says so until it does)."""
    if require_user_to_push not in hgweb_common.permhooks:
        hgweb_common.permhooks.append(require_user_to_push)
    made = []
    lock = threading.Lock()

    def hgweb_app(environ, start_response):
        with lock:
            if not made:
                made.append(hgwebdir({b"/": os.path.join(os.fsencode(repositories), b"*")}))
        return made[0](environ, start_response)

    return hgweb_app
