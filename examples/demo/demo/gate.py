"""Django decides, Go serves: the single sign-on of the demo's views before
they hand a request to another application of the site (wsgate's `delegate`
composite, development.ini) with `wsgate.django.delegate`.

A delegating view answers with headers only; wsgate drops that answer (the
Django worker is free at once) and gives the same request, body included,
to the application the headers name, with the SCRIPT_NAME, PATH_INFO and
REMOTE_USER they say. The client never sees them.
"""

import base64
import binascii
import os

from django.contrib.auth import authenticate
from django.http import HttpResponse

from wsgate.django import delegate

REALM = "wsgate demo (Django users)"


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


def client_user(request):
    """Who a version-control client (basic credentials) or a browser (the
    Django session) is: a user, or None. BadCredentials for wrong ones."""
    user = basic_auth_user(request)
    if user is None and request.user.is_authenticated:
        user = request.user
    return user


def not_set_up(what):
    """503 for a site whose first-run setup has not been done."""
    return HttpResponse(
        f"The demo's {what} is missing: run `wsgate manage development.ini demo_setup` "
        "in examples/demo (`make demo` does).\n",
        status=503,
        content_type="text/plain",
    )


def version_control(request, target, path_info, repositories, push):
    """The sign-on of a version-control mount (/hg/, /git/): wrong
    credentials and anonymous pushes are challenged (the hg and git clients
    send the credentials of their URL only then); the rest is handed to
    target with the user, if any. The request body (a bundle, a pack) is
    never read here: the target gets it whole."""
    if not os.path.isdir(repositories):
        return not_set_up(f"repository directory {repositories}")
    try:
        user = client_user(request)
    except BadCredentials as e:
        return challenge(str(e))
    if user is None and push:
        return challenge("push needs a Django user")
    if user is not None:
        request.user = user  # delegate names it as REMOTE_USER
    return delegate(target, request, path_info)
