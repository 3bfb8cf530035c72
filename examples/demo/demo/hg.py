"""Mercurial's hgweb embedded in Django, behind Django's users.

The view at /hg/ hands every request to hgweb with wsgate.django's
call_wsgi_app, so hgweb sees /hg as SCRIPT_NAME and the rest as PATH_INFO,
and its REMOTE_USER is the Django user of the request:

* in a browser, the user of the Django session;
* for the `hg` client, which speaks HTTP basic authentication, the Django user
  whose name and password it sends; the view checks them against Django's
  users before hgweb runs, and refuses wrong ones with 401.

Anyone may browse and clone. Pushing needs a Django user: the permission hook
below refuses a push that comes without REMOTE_USER, and the view turns that
refusal into a basic-authentication challenge the `hg` client answers with the
credentials of its URL (http://user:password@host/hg/demo).
"""

import base64
import binascii
import os
import threading

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from mercurial.hgweb import common as hgweb_common
from mercurial.hgweb import hgwebdir

from wsgate.django import call_wsgi_app

REALM = "wsgate demo (Django users)"
REPOSITORIES = "hg"  # under DEMO_VAR_DIR


def repositories_path():
    return os.path.join(settings.DEMO_VAR_DIR, REPOSITORIES)


def demo_repository_path():
    return os.path.join(repositories_path(), "demo")


def write_hgrc(path):
    """The repository's own hgweb settings: pushes over plain HTTP (the demo
    has no TLS) from any user hgweb is given; who counts as a user is decided
    by Django, in the view."""
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
    """hgweb permission hook: a push needs REMOTE_USER. (hgweb's own
    `allow-push = *` lets anonymous pushes through.)"""
    if op == b"push" and not req.remoteuser:
        raise hgweb_common.ErrorResponse(hgweb_common.HTTP_UNAUTHORIZED, b"push needs a Django user")


if require_user_to_push not in hgweb_common.permhooks:
    hgweb_common.permhooks.append(require_user_to_push)

_apps = {}  # repositories directory -> its hgweb
_apps_lock = threading.Lock()


def hgweb_app():
    """One hgweb for every repository under DEMO_VAR_DIR/hg, made on first use."""
    root = os.fsencode(repositories_path())
    with _apps_lock:
        if root not in _apps:
            _apps[root] = hgwebdir({b"/": os.path.join(root, b"*")})
        return _apps[root]


def challenge(message):
    response = HttpResponse(message + "\n", status=401, content_type="text/plain")
    response["WWW-Authenticate"] = f'Basic realm="{REALM}"'
    return response


class BadCredentials(Exception):
    pass


def basic_auth_user(request):
    """The Django user named by the request's HTTP basic credentials, None when
    it sends none; BadCredentials when they are malformed or wrong."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise BadCredentials("only HTTP basic authentication is accepted")
    try:
        username, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise BadCredentials("malformed basic credentials")
    if not sep:
        raise BadCredentials("malformed basic credentials")
    user = authenticate(request, username=username, password=password)
    if user is None:
        raise BadCredentials("wrong user name or password")
    return user


def not_set_up(what):
    """503 for a site whose first-run setup has not been done."""
    return HttpResponse(
        f"The demo's {what} is missing: run `wsgate manage development.ini demo_setup` "
        "in examples/demo (`make demo` does).\n",
        status=503,
        content_type="text/plain",
    )


@csrf_exempt  # the hg client posts bundles; it has no CSRF token, and no session either
def hg_view(request, path_info):
    if not os.path.isdir(repositories_path()):
        return not_set_up(f"Mercurial repository directory {repositories_path()}")
    try:
        user = basic_auth_user(request)
    except BadCredentials as e:
        return challenge(str(e))
    if user is not None:
        request.user = user  # call_wsgi_app gives hgweb this user as REMOTE_USER
    # The password stops here: hgweb gets the user, never the credentials.
    request.META.pop("HTTP_AUTHORIZATION", None)
    response = call_wsgi_app(hgweb_app(), request, path_info)
    if response.status_code == 401 and not response.has_header("WWW-Authenticate"):
        # hgweb refuses without saying how to authenticate; say it, so that
        # the hg client retries with the credentials of its URL.
        response["WWW-Authenticate"] = f'Basic realm="{REALM}"'
    return response
